// The UDP transport the device sends WireGuard messages over (wireguard-go's conn.Bind).
// Implementations: bind-udp.ts (node:dgram, IPv4 + IPv6), bind-native.ts (the addon's batched
// recvmmsg/sendmmsg sockets) and bind-memory.ts (a virtual network).

import type { Endpoint } from '../core/endpoint.js';

/** A UDP peer address: the core's one Endpoint (IPv6 without brackets). */
export type { Endpoint };

/**
 * Receives one datagram. `data` belongs to the handler (fresh per datagram; may be decrypted in
 * place and kept). `from` may be reused by nobody but must not be mutated; copy it to keep it.
 */
export type ReceiveHandler = (data: Uint8Array, from: Endpoint) => void;

/**
 * What send() did with the datagram:
 * - 'sent': handed to the kernel (or the virtual network) — the caller may reuse `data` now;
 * - 'queued': the socket was congested and the datagram waits in a user-space queue that still
 *   references `data` — the caller must not modify `data` again (give up that buffer);
 * - 'dropped': not sent (queue limit, closed bind, no socket for the address family, bad address).
 */
export type SendResult = 'sent' | 'queued' | 'dropped';

/** Counters, monotonically increasing. */
export interface BindStats {
  readonly rxPackets: number;
  readonly rxBytes: number;
  readonly txPackets: number;
  readonly txBytes: number;
  /** send() returned 'queued'. */
  readonly txQueued: number;
  /** send() returned 'dropped'. */
  readonly txDropped: number;
}

/** A pair of UDP sockets (IPv4, IPv6) sharing one port. */
export interface Bind {
  /** The bound port, or 0 when not open. */
  readonly port: number;
  /**
   * Binds to `port` (0: a free port, the same number for both families). Resolves to the port.
   * Rejects with BindError (ERR_BIND_IN_USE, ERR_BIND_PERMISSION, ERR_BIND_FAILED). Throws
   * TypeError when already open.
   */
  open(port: number): Promise<number>;
  /**
   * Moves to another port keeping the receive handler; on failure the old sockets stay open and
   * the promise rejects with BindError. Same port as now (non-zero): nothing happens.
   */
  rebind(port: number): Promise<number>;
  /** Sets the datagram handler (replacing any previous one); datagrams with no handler are dropped. */
  onReceive(handler: ReceiveHandler): void;
  /**
   * Optional batch receive (the native bind): replaces the onReceive handler; `handler` gets each
   * datagram as a view into the bind's batch buffer that is valid only until it returns (copy to
   * keep it), and `end` runs once after each batch.
   */
  onReceiveBatch?(handler: ReceiveHandler, end: () => void): void;
  /** Sends one datagram without blocking; see {@link SendResult} for buffer ownership. */
  send(data: Uint8Array, to: Endpoint): SendResult;
  /**
   * Sets the firewall mark (SO_MARK) of outgoing packets; 0 clears it. Returns whether it was
   * applied to the sockets (false: stored and reported only). Throws RangeError outside uint32.
   */
  setFwmark(mark: number): boolean;
  /** The last mark given to setFwmark (0 by default). */
  readonly fwmark: number;
  /** Counters; the object is live. */
  readonly stats: BindStats;
  /** Closes the sockets; the handler stays set for a later open(). Idempotent. */
  close(): void;
}

/** Options shared by the socket binds (UdpBind, NativeBind). */
export interface SocketBindOptions {
  /** Local IPv4 address to bind ('0.0.0.0' default); null disables IPv4. */
  readonly ipv4Address?: string | null;
  /** Local IPv6 address to bind ('::' default); null disables IPv6. */
  readonly ipv6Address?: string | null;
  /**
   * Socket receive/send buffer in bytes (default 7 MiB, like wireguard-go). Forced past the
   * kernel cap with CAP_NET_ADMIN, else capped at net.core.[rw]mem_max; failures are ignored.
   */
  readonly socketBufferSize?: number;
}

/**
 * SocketBindOptions with defaults applied. Throws TypeError when both families are disabled,
 * RangeError when socketBufferSize is not an integer in 0..2^31-1.
 */
export function socketBindSettings(options: SocketBindOptions): { ipv4Address: string | null; ipv6Address: string | null; socketBufferSize: number } {
  const ipv4Address = options.ipv4Address === undefined ? '0.0.0.0' : options.ipv4Address;
  const ipv6Address = options.ipv6Address === undefined ? '::' : options.ipv6Address;
  if (ipv4Address === null && ipv6Address === null) {
    throw new TypeError('expected at least one of ipv4Address, ipv6Address, got both null');
  }
  const socketBufferSize = options.socketBufferSize ?? 7 * 1024 * 1024;
  if (!Number.isInteger(socketBufferSize) || socketBufferSize < 0 || socketBufferSize > 0x7fff_ffff) {
    throw new RangeError(`expected socketBufferSize to be an integer in 0..2147483647, got ${socketBufferSize}`);
  }
  return { ipv4Address, ipv6Address, socketBufferSize };
}

/** Mutable counters behind BindStats, shared by the implementations. */
export function newBindStats(): { -readonly [K in keyof BindStats]: number } {
  return { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, txQueued: 0, txDropped: 0 };
}

/** Validates a port argument (0..65535); throws RangeError. */
export function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`expected port to be an integer in 0..65535, got ${port}`);
  }
  return port;
}

/** Validates an fwmark (uint32); throws RangeError. */
export function checkFwmark(mark: number): number {
  if (!Number.isInteger(mark) || mark < 0 || mark > 0xffff_ffff) {
    throw new RangeError(`expected fwmark to be an integer in 0..4294967295, got ${mark}`);
  }
  return mark;
}
