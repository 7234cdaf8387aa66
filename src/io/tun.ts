// The TUN interface the device loop reads IP packets from and writes them to. Implementations:
// tun-linux.ts (the native addon, /dev/net/tun) and tun-memory.ts (an in-memory twin for tests).

import { checkFunction, type TunError } from './errors.js';

/**
 * Receives one batch of packets read in one wakeup. Packets sit back to back in `buf`:
 * packet i is `buf.subarray(offsets[i], offsets[i + 1])` for 0 <= i < count (so `offsets` holds
 * count + 1 meaningful entries). `buf` and `offsets` are reused for the next batch: they are
 * valid only during the call; the handler may modify packet bytes in place.
 */
export type TunBatchHandler = (buf: Uint8Array, offsets: Uint32Array, count: number) => void;

/**
 * Why a TUN stopped: `deleted` when the interface disappeared under us (`ip link del`) or its
 * fd broke (`error` says how); `closed` when close() was called.
 */
export type TunCloseReason =
  | { readonly kind: 'deleted'; readonly error: TunError }
  | { readonly kind: 'closed' };

/** Counters, monotonically increasing. */
export interface TunStats {
  /** Packets handed to the batch handler. */
  readonly rxPackets: number;
  /** Batches (wakeups that produced at least one packet). */
  readonly rxBatches: number;
  /** Packets accepted by write(). */
  readonly txPackets: number;
  /** Packets write() dropped because the device queue was full (EAGAIN). */
  readonly txDropped: number;
  /** Packets write() rejected for another reason (malformed, device gone, closed). */
  readonly txErrors: number;
  /** Offload super-packets read with a malformed or unsupported virtio header, dropped. */
  readonly rxOffloadDropped: number;
  /** Writes that carried several coalesced TCP segments (GRO; one per write). */
  readonly txCoalesced: number;
}

/** A layer-3 TUN device: IP packets without any packet-information header. */
export interface Tun {
  /** The interface name now (the kernel's choice when none was asked for; follows renames). */
  readonly name: string;
  /**
   * The interface MTU in bytes. On Linux this asks the kernel (one ioctl) so changes made with
   * `ip link set mtu` show; read it per batch, not per packet. Throws TunError ERR_TUN_MTU or
   * ERR_TUN_CLOSED.
   */
  readonly mtu: number;
  /** Sets the MTU (576..65535 for IPv4-capable use; the kernel decides). Throws TunError ERR_TUN_MTU. */
  setMtu(mtu: number): void;
  /** Sets the batch handler (replacing any previous one). Packets read with no handler are dropped. */
  onPackets(handler: TunBatchHandler): void;
  /**
   * Writes one IP packet: `packet[offset, offset + length)` (defaults: all of it). Never blocks.
   * Returns false when the packet was dropped (queue full, malformed, device gone); counted in stats.
   */
  write(packet: Uint8Array, offset?: number, length?: number): boolean;
  /**
   * Optional: queues an IP packet for a write when the current JS task ends, so the packets of
   * one task leave together (Linux with offloads coalesces TCP segments of one flow into one
   * write). The bytes are copied; returns false only for a packet rejected up front. Drops and
   * errors at the write are counted in stats (txDropped, txErrors).
   */
  enqueue?(packet: Uint8Array): boolean;
  /** Sets the handler called exactly once when the device stops (deleted, or close()). */
  onClose(handler: (reason: TunCloseReason) => void): void;
  /** True once the device is closed or gone. */
  readonly closed: boolean;
  /** Counters; the object is live (read fields when needed). */
  readonly stats: TunStats;
  /** Closes the fd (a non-persistent kernel interface disappears). Idempotent. */
  close(): void;
}

/** Options for opening a TUN device. */
export interface TunOptions {
  /** Interface name, at most 15 bytes; '' or undefined lets the kernel choose (tunN). */
  readonly name?: string;
  /** Packets read per wakeup at most (1..1024, default 64). */
  readonly batchSize?: number;
  /**
   * Linux: use TUN offloads (IFF_VNET_HDR with checksum, TSO and USO; default true). The kernel
   * then hands over up to 64 KiB TCP/UDP super-packets, which the TUN cuts into MTU-sized packets
   * before the batch handler sees them, and writes within one task are coalesced per TCP flow.
   * Falls back to plain packets when the kernel refuses. Ignored by the in-memory TUN.
   */
  readonly offload?: boolean;
}

/** Default and limits for TunOptions.batchSize. */
export const TUN_BATCH_DEFAULT = 64;
export const TUN_BATCH_MAX = 1024;
/** Largest packet a TUN can carry (the kernel caps the MTU at 65535). */
export const TUN_MAX_PACKET = 65535;

/**
 * Bytes of the shared batch buffer for `batchSize`: room for a batch of typical packets plus one
 * maximal packet. A batch ends when less than TUN_MAX_PACKET bytes remain, so no read truncates.
 */
export function tunBatchBufferSize(batchSize: number): number {
  return Math.min(batchSize * 2048, 4 * 1024 * 1024) + TUN_MAX_PACKET + 64; // + a virtio header
}

/** Validates an MTU for setMtu (68..65535, RFC 791's minimum up to the TUN maximum); throws RangeError. */
export function checkMtu(mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > TUN_MAX_PACKET) {
    throw new RangeError(`expected mtu to be an integer in 68..${TUN_MAX_PACKET}, got ${mtu}`);
  }
  return mtu;
}

/**
 * The handler bookkeeping both Tun implementations share: batch and close handlers, counters,
 * and the once-only transition to closed.
 */
export abstract class TunBase {
  /** Mutable counters behind `stats`. */
  protected readonly counters: { -readonly [K in keyof TunStats]: number } = {
    rxPackets: 0, rxBatches: 0, txPackets: 0, txDropped: 0, txErrors: 0, rxOffloadDropped: 0, txCoalesced: 0,
  };
  /** The current batch handler (undefined: packets are dropped). */
  protected batchHandler: TunBatchHandler | undefined;
  #onClose: ((reason: TunCloseReason) => void) | undefined;
  #closed = false;

  onPackets(handler: TunBatchHandler): void {
    checkFunction('handler', handler);
    this.batchHandler = handler;
  }

  onClose(handler: (reason: TunCloseReason) => void): void {
    checkFunction('handler', handler);
    this.#onClose = handler;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get stats(): TunStats {
    return this.counters;
  }

  /** Marks the device closed and calls the close handler, once; later calls do nothing. */
  protected finish(reason: TunCloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    const handler = this.#onClose;
    this.#onClose = undefined;
    this.batchHandler = undefined;
    handler?.(reason);
  }
}

/** Validates TunOptions.batchSize; throws RangeError. */
export function checkBatchSize(batchSize: number): number {
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > TUN_BATCH_MAX) {
    throw new RangeError(`expected batchSize to be an integer in 1..${TUN_BATCH_MAX}, got ${batchSize}`);
  }
  return batchSize;
}

/** Validates write()'s (offset, length) against the packet; throws RangeError/TypeError. */
export function checkWriteRange(packet: Uint8Array, offset: number, length: number): void {
  if (!(packet instanceof Uint8Array)) {
    throw new TypeError(`expected packet to be a Uint8Array, got ${typeof packet}`);
  }
  if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 ||
      offset + length > packet.length) {
    throw new RangeError(
      `expected 0 <= offset <= offset + length <= ${packet.length}, got offset ${offset}, length ${length}`,
    );
  }
}
