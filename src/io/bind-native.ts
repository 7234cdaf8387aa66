// The batched UDP transport: an IPv4 and an IPv6 (V6ONLY) socket on one port, created by the
// native addon (native/udp.cc). A readable wakeup drains up to `batchSize` datagrams with one
// recvmmsg into a preallocated buffer and calls JS once; sends are copied into a batch that
// leaves with one sendmmsg when the current JS task ends (a microtask) or when flush() is
// called. Same contract as UdpBind (wireguard-go's StdNetBind semantics) without node:dgram's
// per-datagram callback, Buffer, rinfo object and send request. Linux only.
//
// Buffer ownership: send() copies, so it returns 'sent' (the caller may reuse `data`) or
// 'dropped'; never 'queued'. A datagram the kernel refuses at flush time (full send buffer after
// a 2 ms wait, unreachable, too big) is counted in stats.txDropped (its bytes stay in txBytes,
// which counts what was accepted into the batch). Received datagrams are views
// into the batch buffer: onReceive handlers get a copy (the Bind contract), onReceiveBatch
// handlers the view itself.

import { formatIp, parseIp } from '../core/ip.js';
import { BindError, bindErrorFrom, checkFunction, errnoOf } from './errors.js';
import { loadNativeAddon, type NativeAddon, type UdpArrays } from './native.js';
import {
  checkFwmark,
  checkPort,
  newBindStats,
  socketBindSettings,
  type Bind,
  type BindStats,
  type Endpoint,
  type ReceiveHandler,
  type SendResult,
  type SocketBindOptions,
} from './bind.js';

/** Options for {@link NativeBind}. */
export interface NativeBindOptions extends SocketBindOptions {
  /** Most datagrams read per wakeup (default 64). */
  readonly batchSize?: number;
  /**
   * UDP GSO (UDP_SEGMENT) on send: a train of equal-size datagrams to one peer leaves as one
   * message the kernel segments (default true; off where the kernel lacks it).
   */
  readonly gso?: boolean;
  /**
   * UDP GRO on receive (kernels 5.12+; default true): a train of datagrams from one peer is read
   * at once and split back into datagrams by the addon.
   */
  readonly gro?: boolean;
}

const DEFAULT_BATCH = 64;
// A receive slot holds any UDP payload; only the pages a datagram touches become resident.
const SLOT_SIZE = 65536;
const MAX_DATAGRAM = 65535;
const MAX_TX = 128;
const GRO_SEGMENTS = 64; // the kernel's UDP_MAX_SEGMENTS
const TX_BYTES = 256 * 1024; // always room for the largest datagram after a flush
const ENDPOINT_CACHE_LIMIT = 4096;

/** A destination as the addon wants it: family, address bytes, port. */
interface Encoded {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly port: number;
}

interface Open {
  readonly handle: object;
  readonly port: number;
  readonly v4: boolean;
  readonly v6: boolean;
  readonly gso?: boolean;
  readonly gro?: boolean;
}

/** A Bind over the addon's batched sockets. `new NativeBind(options)`, then `await bind.open(port)`. */
export class NativeBind implements Bind {
  readonly #ipv4Address: string | null;
  readonly #ipv6Address: string | null;
  readonly #socketBufferSize: number;
  readonly #stats = newBindStats();
  readonly #arrays: UdpArrays;
  #addon: NativeAddon | undefined;
  #open: Open | undefined;
  #handler: ReceiveHandler | undefined;
  #end: (() => void) | undefined;
  #copy = true;
  #fwmark = 0;
  #txCount = 0;
  #txUsed = 0;
  #flushQueued = false;
  // Received sources, so a datagram's endpoint is a cached object instead of a new string.
  readonly #v4Endpoints = new Map<number, Endpoint>();
  readonly #v6Endpoints = new Map<string, Endpoint>();
  #lastV6: Endpoint | undefined;
  readonly #lastV6Bytes = new Uint8Array(16);
  // Endpoint object -> its encoded destination (endpoints are immutable and reused per peer).
  readonly #encoded = new WeakMap<object, Encoded>();

  constructor(options: NativeBindOptions = {}) {
    ({ ipv4Address: this.#ipv4Address, ipv6Address: this.#ipv6Address, socketBufferSize: this.#socketBufferSize } = socketBindSettings(options));
    const batch = options.batchSize ?? DEFAULT_BATCH;
    if (!Number.isInteger(batch) || batch < 1 || batch > 1024) {
      throw new RangeError(`expected batchSize to be an integer in 1..1024, got ${batch}`);
    }
    this.#arrays = {
      rxBuf: new Uint8Array(batch * SLOT_SIZE),
      slotSize: SLOT_SIZE,
      // With GRO one read can hold up to 64 datagrams.
      rxMeta: new Uint32Array(3 * batch * (options.gro === false ? 1 : GRO_SEGMENTS)),
      rxAddr: new Uint8Array(16 * batch * (options.gro === false ? 1 : GRO_SEGMENTS)),
      maxBatch: batch,
      onBatch: this.#onBatch,
      txBuf: new Uint8Array(TX_BYTES),
      txMeta: new Uint32Array(3 * MAX_TX),
      txAddr: new Uint8Array(16 * MAX_TX),
      maxTx: MAX_TX,
      gso: options.gso ?? true,
      gro: options.gro ?? true,
    };
  }

  get port(): number {
    return this.#open?.port ?? 0;
  }

  get fwmark(): number {
    return this.#fwmark;
  }

  get stats(): BindStats {
    return this.#stats;
  }

  /** The UDP offloads in use (false when closed, refused by the kernel, or turned off). */
  get offloads(): { gso: boolean; gro: boolean } {
    return { gso: this.#open?.gso ?? false, gro: this.#open?.gro ?? false };
  }

  /** Which families are bound: an IPv6-less machine opens IPv4 only. */
  get families(): { ipv4: boolean; ipv6: boolean } {
    return { ipv4: this.#open?.v4 ?? false, ipv6: this.#open?.v6 ?? false };
  }

  /** The sizes the kernel granted (SO_RCVBUF, SO_SNDBUF; the kernel doubles the request). */
  get socketBufferSizes(): { recv: number; send: number } | undefined {
    const o = this.#open;
    if (o === undefined) return undefined;
    const [recv, send] = this.#addon!.udpBufferSizes(o.handle);
    return { recv, send };
  }

  open(port: number): Promise<number> {
    checkPort(port);
    if (this.#open !== undefined) throw new TypeError('expected a closed Bind, got an open one');
    try {
      this.#open = this.#openPair(port);
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.resolve(this.#open.port);
  }

  rebind(port: number): Promise<number> {
    checkPort(port);
    const old = this.#open;
    if (old === undefined) return this.open(port);
    if (port !== 0 && port === old.port) return Promise.resolve(port);
    let next: Open;
    try {
      next = this.#openPair(port);
    } catch (err) {
      return Promise.reject(err);
    }
    this.flush();
    this.#open = next;
    this.#addon!.udpClose(old.handle);
    return Promise.resolve(next.port);
  }

  #openPair(port: number): Open {
    const addon = (this.#addon ??= loadNativeAddon('udp'));
    let opened: Open;
    try {
      opened = addon.udpOpen(this.#ipv4Address, this.#ipv6Address, port, this.#socketBufferSize, this.#arrays);
    } catch (err) {
      if (err instanceof TypeError || err instanceof RangeError) throw err;
      throw bindErrorFrom(err, `udp on port ${port}`);
    }
    if (this.#fwmark !== 0) {
      try {
        addon.udpSetMark(opened.handle, this.#fwmark);
      } catch (err) {
        addon.udpClose(opened.handle);
        throw fwmarkError(this.#fwmark, err);
      }
    }
    return opened;
  }

  onReceive(handler: ReceiveHandler): void {
    checkFunction('handler', handler);
    this.#handler = handler;
    this.#end = undefined;
    this.#copy = true;
  }

  onReceiveBatch(handler: ReceiveHandler, end: () => void): void {
    checkFunction('handler', handler);
    checkFunction('end', end);
    this.#handler = handler;
    this.#end = end;
    this.#copy = false;
  }

  // Called by the addon once per wakeup with `count` datagrams described in rxMeta/rxAddr.
  readonly #onBatch = (count: number): void => {
    const handler = this.#handler;
    if (handler === undefined) return;
    const { rxBuf, rxMeta } = this.#arrays;
    const stats = this.#stats;
    stats.rxPackets += count;
    for (let i = 0; i < count; i++) {
      const off = rxMeta[3 * i]!;
      const len = rxMeta[3 * i + 1]!;
      stats.rxBytes += len;
      const from = this.#source(i, rxMeta[3 * i + 2]!);
      const data = this.#copy ? rxBuf.slice(off, off + len) : rxBuf.subarray(off, off + len);
      handler(data, from);
    }
    this.#end?.();
  };

  // The Endpoint for received entry i (word = port | family << 16), from the caches.
  #source(i: number, word: number): Endpoint {
    const a = this.#arrays.rxAddr;
    const at = 16 * i;
    const port = word & 0xffff;
    if (word >>> 16 === 4) {
      const key = ((a[at]! << 24) | (a[at + 1]! << 16) | (a[at + 2]! << 8) | a[at + 3]!) >>> 0;
      const id = key * 65536 + port;
      let e = this.#v4Endpoints.get(id);
      if (e === undefined) {
        if (this.#v4Endpoints.size >= ENDPOINT_CACHE_LIMIT) this.#v4Endpoints.clear();
        const bytes = a.slice(at, at + 4);
        e = this.#remember(formatIp(bytes), port, 4, bytes);
        this.#v4Endpoints.set(id, e);
      }
      return e;
    }
    const last = this.#lastV6;
    const lastBytes = this.#lastV6Bytes;
    if (last !== undefined && last.port === port) {
      let same = true;
      for (let k = 0; k < 16; k++) {
        if (lastBytes[k] !== a[at + k]) {
          same = false;
          break;
        }
      }
      if (same) return last;
    }
    const bytes = a.slice(at, at + 16);
    const address = formatIp(bytes);
    const id = `${address}#${port}`;
    let e = this.#v6Endpoints.get(id);
    if (e === undefined) {
      if (this.#v6Endpoints.size >= ENDPOINT_CACHE_LIMIT) this.#v6Endpoints.clear();
      e = this.#remember(address, port, 6, bytes);
      this.#v6Endpoints.set(id, e);
    }
    this.#lastV6 = e;
    lastBytes.set(bytes);
    return e;
  }

  // A new immutable Endpoint whose encoding is known, so replies to it need no parsing.
  #remember(address: string, port: number, family: 4 | 6, bytes: Uint8Array): Endpoint {
    const e: Endpoint = Object.freeze({ address, port });
    this.#encoded.set(e, { family, bytes, port });
    return e;
  }

  #encode(to: Endpoint): Encoded | undefined {
    let enc = this.#encoded.get(to);
    if (enc !== undefined && enc.port === to.port) return enc;
    const port = to.port;
    if (typeof to.address !== 'string' || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
    const ip = parseIp(to.address);
    if (ip === undefined) return undefined;
    let mapped = ip.length === 16 && ip[10] === 0xff && ip[11] === 0xff;
    for (let i = 0; mapped && i < 10; i++) mapped = ip[i] === 0;
    // The IPv6 socket is V6ONLY: an IPv4-mapped destination leaves over the IPv4 one.
    enc = ip.length === 4 || mapped ? { family: 4, bytes: ip.subarray(ip.length - 4), port } : { family: 6, bytes: ip, port };
    this.#encoded.set(to, enc);
    return enc;
  }

  send(data: Uint8Array, to: Endpoint): SendResult {
    const o = this.#open;
    const len = data.length;
    const enc = o === undefined ? undefined : this.#encode(to);
    if (enc === undefined || !(enc.family === 4 ? o!.v4 : o!.v6) || len > MAX_DATAGRAM) {
      this.#stats.txDropped++;
      return 'dropped';
    }
    const { txBuf, txMeta, txAddr } = this.#arrays;
    if (this.#txCount === MAX_TX || this.#txUsed + len > TX_BYTES) this.flush();
    const n = this.#txCount;
    const off = this.#txUsed;
    txBuf.set(data, off);
    txMeta[3 * n] = off;
    txMeta[3 * n + 1] = len;
    txMeta[3 * n + 2] = enc.port | (enc.family << 16);
    txAddr.set(enc.bytes, 16 * n);
    this.#txUsed = off + len;
    this.#txCount = n + 1;
    this.#stats.txBytes += len;
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushTask);
    }
    return 'sent';
  }

  readonly #flushTask = (): void => {
    this.#flushQueued = false;
    this.flush();
  };

  /** Sends the batched datagrams now (also done automatically when the current JS task ends). */
  flush(): void {
    const n = this.#txCount;
    if (n === 0) return;
    this.#txCount = 0;
    this.#txUsed = 0;
    const o = this.#open;
    const sent = o === undefined ? 0 : this.#addon!.udpFlush(o.handle, n);
    this.#stats.txPackets += sent;
    this.#stats.txDropped += n - sent;
  }

  setFwmark(mark: number): boolean {
    checkFwmark(mark);
    const previous = this.#fwmark;
    this.#fwmark = mark;
    const o = this.#open;
    if (o === undefined || (mark === 0 && previous === 0)) return true;
    try {
      this.#addon!.udpSetMark(o.handle, mark);
    } catch (err) {
      throw fwmarkError(mark, err);
    }
    return true;
  }

  close(): void {
    const o = this.#open;
    if (o === undefined) return;
    this.flush();
    this.#open = undefined;
    this.#addon!.udpClose(o.handle);
  }
}

function fwmarkError(mark: number, err: unknown): BindError {
  return new BindError('ERR_BIND_FWMARK', `cannot set fwmark ${mark}: ${(err as Error).message}`, { cause: err, errno: errnoOf(err) });
}
