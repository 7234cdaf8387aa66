// The Linux TUN device through the native addon (native/tun.cc): /dev/net/tun with
// IFF_TUN | IFF_NO_PI, non-blocking, uv_poll readiness, up to batchSize packets per wakeup read
// into one preallocated buffer and handed over as a single batch; writes never block.
//
// Deletion (`ip link del`): the kernel reports POLLERR / EBADFD on the fd; the Tun closes itself
// and calls onClose({ kind: 'deleted' }). Moving the interface to another network namespace
// keeps the fd working; name and MTU follow the device there (TUNGETIFF / TUNGETDEVNETNS).

import { loadNativeAddon, type NativeAddon } from './native.js';
import { TunError, errnoOf, type TunErrorCode } from './errors.js';
import { interfaceNameProblem, MAX_INTERFACE_NAME_BYTES } from './interface-name.js';
import { segmentSuperPacket, TunGroBatch } from './offload.js';
import {
  TUN_BATCH_DEFAULT,
  TUN_MAX_PACKET,
  TunBase,
  checkBatchSize,
  checkMtu,
  checkWriteRange,
  tunBatchBufferSize,
  type Tun,
  type TunOptions,
} from './tun.js';

const EAGAIN = 11;
const EBADFD = 77;

const ERRNO_NAMES: Record<number, string> = { 5: 'EIO', 9: 'EBADF', 32: 'EPIPE', 77: 'EBADFD', 19: 'ENODEV' };

function openErrorCode(errno: string | undefined): TunErrorCode {
  switch (errno) {
    case 'ENOENT': return 'ERR_TUN_NO_DEVICE';
    case 'EPERM':
    case 'EACCES': return 'ERR_TUN_PERMISSION';
    case 'ENAMETOOLONG': return 'ERR_TUN_NAME_TOO_LONG';
    case 'EBUSY':
    case 'EEXIST':
    case 'EINVAL': return 'ERR_TUN_NAME_TAKEN';
    default: return 'ERR_TUN_OPEN';
  }
}

/**
 * Checks an interface name the way the kernel will (dev_valid_name): at most 15 bytes, no '/',
 * ':' or whitespace, not '.' or '..'. '' means "let the kernel choose". Throws TunError.
 */
export function checkInterfaceName(name: string): void {
  if (typeof name !== 'string') throw new TypeError(`expected name to be a string, got ${typeof name}`);
  const problem = interfaceNameProblem(name);
  if (problem === 'too-long') {
    throw new TunError('ERR_TUN_NAME_TOO_LONG', `interface name ${JSON.stringify(name)} is ${Buffer.byteLength(name)} bytes; at most ${MAX_INTERFACE_NAME_BYTES} allowed`, { errno: 'ENAMETOOLONG' });
  }
  if (problem === 'invalid') {
    throw new TunError('ERR_TUN_NAME_INVALID', `interface name ${JSON.stringify(name)} is not valid (no '/', ':', whitespace; not '.' or '..')`);
  }
}

/** Room for the packets cut from one read batch before they are handed over (then reused). */
const SEGMENT_BUFFER_BYTES = 512 * 1024;
const SEGMENT_MAX_PACKETS = 1024;
/** The write batch (GRO): bytes of packet copies and writes per flush at most. */
const GRO_BUFFER_BYTES = 512 * 1024;
const GRO_MAX_WRITES = 256;

/** A TUN device backed by the native addon. Create with {@link openTun}. */
export class LinuxTun extends TunBase implements Tun {
  readonly #addon: NativeAddon;
  readonly #handle: object;
  readonly #buf: Uint8Array;
  readonly #offsets: Uint32Array;
  #name: string;
  /** TUN_F_* offloads in effect, or -1: no virtio header (plain packets). */
  readonly offloads: number;
  // With a virtio header: segmented packets for the handler, and the write batch (GRO).
  readonly #segBuf: Uint8Array | undefined;
  readonly #segOffsets: Uint32Array | undefined;
  readonly #gro: TunGroBatch | undefined;
  readonly #groResult = new Int32Array(4);
  #flushQueued = false;

  /** Use {@link openTun}. */
  constructor(options: TunOptions = {}) {
    super();
    const name = options.name ?? '';
    checkInterfaceName(name);
    const batchSize = checkBatchSize(options.batchSize ?? TUN_BATCH_DEFAULT);
    this.#addon = loadNativeAddon('tun');
    const ab = new ArrayBuffer(tunBatchBufferSize(batchSize));
    this.#buf = new Uint8Array(ab);
    this.#offsets = new Uint32Array(batchSize + 1);
    let opened: { handle: object; name: string; offloads?: number };
    try {
      opened = this.#addon.open(name, ab, this.#offsets, batchSize, this.#batch, this.#lost, options.offload ?? true);
    } catch (err) {
      const errno = errnoOf(err);
      throw new TunError(openErrorCode(errno), `cannot create TUN ${JSON.stringify(name)}: ${(err as Error).message}`, { cause: err, errno });
    }
    this.#handle = opened.handle;
    this.#name = opened.name;
    this.offloads = opened.offloads ?? -1;
    if (this.offloads >= 0) {
      this.#segBuf = new Uint8Array(SEGMENT_BUFFER_BYTES);
      this.#segOffsets = new Uint32Array(SEGMENT_MAX_PACKETS + 1);
      this.#gro = new TunGroBatch(GRO_BUFFER_BYTES, GRO_MAX_WRITES);
    }
  }

  // Called by the addon once per wakeup; arrow functions so no bind per call.
  readonly #batch = (count: number): void => {
    this.counters.rxBatches++;
    if (this.#segBuf !== undefined) {
      this.#segmentBatch(count);
      return;
    }
    this.counters.rxPackets += count;
    this.batchHandler?.(this.#buf, this.#offsets, count);
  };

  // Every packet read carries a virtio header: cut super-packets into plain packets (checksums
  // completed) in #segBuf, handing over a batch whenever it fills.
  #segmentBatch(count: number): void {
    const out = this.#segBuf!;
    const offs = this.#segOffsets!;
    const src = this.#buf;
    let n = 0;
    let at = 0;
    for (let i = 0; i < count; i++) {
      const start = this.#offsets[i]!;
      const end = this.#offsets[i + 1]!;
      let r = segmentSuperPacket(src, start, end, out, at, offs, n);
      if (r === -2 && n > 0) {
        this.#deliver(out, offs, n);
        n = 0;
        at = 0;
        r = segmentSuperPacket(src, start, end, out, at, offs, n);
      }
      if (r < 0) {
        this.counters.rxOffloadDropped++;
        continue;
      }
      n += r;
      at = offs[n]!;
    }
    if (n > 0) this.#deliver(out, offs, n);
  }

  #deliver(out: Uint8Array, offs: Uint32Array, n: number): void {
    this.counters.rxPackets += n;
    this.batchHandler?.(out, offs, n);
  }

  // The writes of one task leave together, coalesced, when it ends.
  readonly #flush = (): void => {
    this.#flushGro();
  };

  #flushGro(): void {
    this.#flushQueued = false;
    const gro = this.#gro!;
    const writes = gro.finish();
    if (writes === 0) return;
    const res = this.#groResult;
    if (!this.closed) {
      this.#addon.writeBatch(this.#handle, gro.buf, gro.spec, writes, res);
    } else {
      res[0] = 0; res[1] = 0; res[2] = writes; res[3] = 9;
    }
    gro.reset();
    this.counters.txDropped += res[1]!;
    this.counters.txErrors += res[2]!;
    this.counters.txCoalesced += gro.coalescedWrites;
    if (res[3] === EBADFD && !this.closed) this.#closeNative(EBADFD);
  }

  readonly #lost = (errno: number): void => {
    const errnoName = ERRNO_NAMES[errno] ?? `errno ${errno}`;
    this.finish({
      kind: 'deleted',
      error: new TunError('ERR_TUN_CLOSED', `TUN ${this.#name} is gone (${errnoName}): the interface was deleted or its fd failed`, { errno: errnoName }),
    });
  };

  get name(): string {
    if (!this.closed) {
      try {
        this.#name = this.#addon.name(this.#handle);
      } catch {
        // keep the last known name
      }
    }
    return this.#name;
  }

  get mtu(): number {
    if (this.closed) throw new TunError('ERR_TUN_CLOSED', `TUN ${this.#name} is closed`);
    try {
      return this.#addon.getMtu(this.#handle);
    } catch (err) {
      throw new TunError('ERR_TUN_MTU', `cannot read the MTU of ${this.#name}: ${(err as Error).message}`, { cause: err, errno: errnoOf(err) });
    }
  }

  setMtu(mtu: number): void {
    checkMtu(mtu);
    if (this.closed) throw new TunError('ERR_TUN_CLOSED', `TUN ${this.#name} is closed`);
    try {
      this.#addon.setMtu(this.#handle, mtu);
    } catch (err) {
      throw new TunError('ERR_TUN_MTU', `cannot set the MTU of ${this.#name} to ${mtu}: ${(err as Error).message}`, { cause: err, errno: errnoOf(err) });
    }
  }

  write(packet: Uint8Array, offset = 0, length = packet.length - offset): boolean {
    checkWriteRange(packet, offset, length);
    // Packets queued earlier in this task go first.
    if (this.#flushQueued) this.#flushGro();
    const n = this.#addon.write(this.#handle, packet, offset, length);
    if (n >= 0) {
      this.counters.txPackets++;
      return true;
    }
    if (n === -EAGAIN) this.counters.txDropped++;
    else this.counters.txErrors++;
    // The poll callback normally reports deletion first; a write can see it earlier (EBADFD: the
    // fd lost its interface). EIO only means the interface is down: drop, stay open.
    if (n === -EBADFD && !this.closed) this.#closeNative(-n);
    return false;
  }

  enqueue(packet: Uint8Array): boolean {
    const gro = this.#gro;
    if (gro === undefined) return this.write(packet);
    const len = packet.length;
    if (this.closed || len < 20 || len > TUN_MAX_PACKET || (packet[0]! >>> 4 !== 4 && packet[0]! >>> 4 !== 6)) {
      this.counters.txErrors++;
      return false;
    }
    if (!gro.add(packet)) {
      this.#flushGro();
      gro.add(packet);
    }
    this.counters.txPackets++;
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flush);
    }
    return true;
  }

  #closeNative(errno: number): void {
    this.#addon.close(this.#handle);
    this.#lost(errno);
  }

  close(): void {
    if (this.closed) return;
    if (this.#gro !== undefined) this.#flushGro();
    this.#addon.close(this.#handle);
    this.finish({ kind: 'closed' });
  }
}

/**
 * Creates (or attaches to a persistent) TUN interface. Needs Linux, /dev/net/tun and
 * CAP_NET_ADMIN. The interface starts down with no address; configure it with `ip`.
 * Throws TunError (ERR_TUN_UNSUPPORTED, ERR_TUN_NO_DEVICE, ERR_TUN_PERMISSION,
 * ERR_TUN_NAME_TOO_LONG, ERR_TUN_NAME_INVALID, ERR_TUN_NAME_TAKEN, ERR_TUN_OPEN).
 */
export function openTun(options: TunOptions = {}): LinuxTun {
  return new LinuxTun(options);
}
