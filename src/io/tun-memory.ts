// The in-memory twin of the TUN device (docs/STYLE.md 3): the "host" side injects packets as if
// the kernel routed them into the interface and collects what the device writes. Batches are
// delivered exactly like the Linux TUN (back to back in one buffer, offsets array), so the
// device's batch code runs unchanged in unit tests.

import { copyBytes } from '../core/bytes.js';
import {
  TUN_BATCH_DEFAULT,
  TUN_MAX_PACKET,
  TunBase,
  checkBatchSize,
  checkMtu,
  checkWriteRange,
  tunBatchBufferSize,
  type Tun,
  type TunCloseReason,
} from './tun.js';
import { TunError, checkFunction } from './errors.js';

/** Options for {@link MemoryTun}. */
export interface MemoryTunOptions {
  /** Interface name reported by `name` (default 'mem0'). */
  readonly name?: string;
  /** MTU reported by `mtu` (default 1420). */
  readonly mtu?: number;
  /** Packets per delivered batch at most (default 64). */
  readonly batchSize?: number;
  /**
   * When injected packets reach the device: 'microtask' (default; everything injected in one
   * synchronous run arrives as batches on the next microtask) or 'manual' (only on flush()).
   */
  readonly delivery?: 'microtask' | 'manual';
  /** Packets write() accepts before it starts dropping, until takeWritten() (default unbounded). */
  readonly writeCapacity?: number;
}

/** An in-memory Tun. Host-side methods: inject, flush, takeWritten, onWrite, simulateDelete. */
export class MemoryTun extends TunBase implements Tun {
  readonly #buf: Uint8Array;
  readonly #offsets: Uint32Array;
  readonly #batchSize: number;
  readonly #delivery: 'microtask' | 'manual';
  readonly #writeCapacity: number;
  readonly #pending: Uint8Array[] = [];
  #written: Uint8Array[] = [];
  #name: string;
  #mtu: number;
  #scheduled = false;
  #onWrite: ((packet: Uint8Array) => void) | undefined;

  constructor(options: MemoryTunOptions = {}) {
    super();
    this.#name = options.name ?? 'mem0';
    this.#mtu = options.mtu ?? 1420;
    this.#batchSize = checkBatchSize(options.batchSize ?? TUN_BATCH_DEFAULT);
    this.#delivery = options.delivery ?? 'microtask';
    this.#writeCapacity = options.writeCapacity ?? Infinity;
    this.#buf = new Uint8Array(tunBatchBufferSize(this.#batchSize));
    this.#offsets = new Uint32Array(this.#batchSize + 1);
  }

  get name(): string {
    return this.#name;
  }

  get mtu(): number {
    if (this.closed) throw new TunError('ERR_TUN_CLOSED', `TUN ${this.#name} is closed`);
    return this.#mtu;
  }

  setMtu(mtu: number): void {
    checkMtu(mtu);
    if (this.closed) throw new TunError('ERR_TUN_CLOSED', `TUN ${this.#name} is closed`);
    this.#mtu = mtu;
  }

  write(packet: Uint8Array, offset = 0, length = packet.length - offset): boolean {
    checkWriteRange(packet, offset, length);
    const version = length === 0 ? 0 : packet[offset]! >> 4;
    if (this.closed || (version !== 4 && version !== 6)) {
      // A closed device, or a packet the kernel refuses (EINVAL: empty, or not IPv4/IPv6 by its
      // first nibble). Like the kernel it takes packets larger than the MTU: that limit is the
      // sender's.
      this.counters.txErrors++;
      return false;
    }
    const copy = copyBytes(packet.subarray(offset, offset + length));
    if (this.#onWrite !== undefined) {
      this.counters.txPackets++;
      this.#onWrite(copy);
      return true;
    }
    if (this.#written.length >= this.#writeCapacity) {
      this.counters.txDropped++;
      return false;
    }
    this.counters.txPackets++;
    this.#written.push(copy);
    return true;
  }

  close(): void {
    this.finish({ kind: 'closed' });
  }

  // ---- host side ----

  /** Queues a copy of `packet` as if the kernel routed it into the interface (1..65535 bytes). */
  inject(packet: Uint8Array): void {
    if (!(packet instanceof Uint8Array)) throw new TypeError(`expected packet to be a Uint8Array, got ${typeof packet}`);
    if (packet.length === 0 || packet.length > TUN_MAX_PACKET) {
      throw new RangeError(`expected a packet of 1..${TUN_MAX_PACKET} bytes, got ${packet.length}`);
    }
    if (this.closed) return;
    this.#pending.push(copyBytes(packet));
    if (this.#delivery === 'microtask' && !this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => {
        this.#scheduled = false;
        this.flush();
      });
    }
  }

  /** Delivers every injected packet now, in batches of at most batchSize. Returns packets delivered. */
  flush(): number {
    let delivered = 0;
    while (this.#pending.length > 0 && !this.closed) {
      let count = 0;
      let off = 0;
      while (count < this.#batchSize && this.#pending.length > 0) {
        const next = this.#pending[0]!;
        if (off + next.length > this.#buf.length) break;
        this.#pending.shift();
        this.#offsets[count] = off;
        this.#buf.set(next, off);
        off += next.length;
        count++;
      }
      this.#offsets[count] = off;
      this.counters.rxBatches++;
      this.counters.rxPackets += count;
      delivered += count;
      this.batchHandler?.(this.#buf, this.#offsets, count);
    }
    return delivered;
  }

  /** Packets injected and not yet delivered. */
  get pendingCount(): number {
    return this.#pending.length;
  }

  /** Returns and forgets the packets the device wrote (copies), oldest first. */
  takeWritten(): Uint8Array[] {
    const out = this.#written;
    this.#written = [];
    return out;
  }

  /** Routes every future write() to `handler` (a copy, called synchronously) instead of the queue. */
  onWrite(handler: (packet: Uint8Array) => void): void {
    checkFunction('handler', handler);
    this.#onWrite = handler;
  }

  /** Behaves as if the interface were deleted: closes and reports { kind: 'deleted' }. */
  simulateDelete(): void {
    this.finish({
      kind: 'deleted',
      error: new TunError('ERR_TUN_CLOSED', `TUN ${this.#name} is gone (simulated deletion)`, { errno: 'EBADFD' }),
    });
  }

  protected override finish(reason: TunCloseReason): void {
    this.#pending.length = 0;
    super.finish(reason);
  }
}
