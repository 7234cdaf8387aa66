// A sans-IO TCP engine (RFC 9293): no sockets, no timers, no clock of its own. Segments come in
// through `input`, go out through the `send` callback, and time is the `now` argument (ms) of
// every call; the caller asks `nextDeadline()` and calls `tick(now)` when it passes. Congestion
// control per RFC 5681/6582 (NewReno) or RFC 9438 (CUBIC), RTO per RFC 6298, window scaling and
// timestamps per RFC 7323, SACK per RFC 2018, RST/SYN/ACK checks per RFC 5961.

import type { TcpError } from './tcp-error.js';

/** An IP address as in src/core/ip.ts: 4 bytes (IPv4) or 16 bytes (IPv6). */
export type IpAddr = Uint8Array;

/** An IP address and a TCP port (0..65535). */
export interface SockAddr {
  readonly ip: IpAddr;
  readonly port: number;
}

/**
 * One TCP segment to transmit: `bytes` is the TCP header (checksum filled over the v4/v6
 * pseudo-header of `src`/`dst`) followed by the payload. The receiver owns `bytes`.
 */
export interface TcpSegmentOut {
  readonly src: IpAddr;
  readonly dst: IpAddr;
  readonly bytes: Uint8Array;
}

/** The connection states of RFC 9293 section 3.3.2 (LISTEN is a {@link TcpListener}). */
export type TcpState =
  | 'SYN-SENT'
  | 'SYN-RECEIVED'
  | 'ESTABLISHED'
  | 'FIN-WAIT-1'
  | 'FIN-WAIT-2'
  | 'CLOSE-WAIT'
  | 'CLOSING'
  | 'LAST-ACK'
  | 'TIME-WAIT'
  | 'CLOSED';

/** Congestion-control algorithm of new connections. */
export type TcpCongestion = 'newreno' | 'cubic';

/** Tunables and resource caps of a {@link TcpEngine}; times in ms, sizes in bytes. */
export interface TcpLimits {
  /** Bytes a connection buffers for sending (queued + unacknowledged); write() accepts up to this. */
  readonly sendBuffer: number;
  /** Receive buffer: the most the window offers (in-order unconsumed + out-of-order bytes). */
  readonly receiveBuffer: number;
  /** Out-of-order segments held per connection (each within the window); beyond that, dropped. */
  readonly maxOutOfOrder: number;
  /** Maximum segment lifetime; TIME-WAIT lasts 2*MSL (RFC 9293 3.4.2). */
  readonly msl: number;
  /** First retransmission timeout before any RTT sample (RFC 6298 2.1 says 1 s). */
  readonly rtoInitial: number;
  /** Lower bound of the RTO (RFC 6298 says 1 s; Linux uses 200 ms). */
  readonly rtoMin: number;
  /** Upper bound of the RTO after backoff (RFC 6298 2.5 allows 60 s). */
  readonly rtoMax: number;
  /** Retransmissions of one segment before the connection fails with ETIMEDOUT. */
  readonly maxRetransmits: number;
  /** SYN (or SYN-ACK) retransmissions before giving up (ETIMEDOUT). */
  readonly synRetries: number;
  /** Delayed-ACK timeout (RFC 9293 3.8.6.3: under 0.5 s); every second full segment is ACKed at once. */
  readonly delayedAck: number;
  /** Keepalive defaults used by setKeepAlive(true) without an idle time (RFC 9293 3.8.4). */
  readonly keepAliveIdle: number;
  readonly keepAliveInterval: number;
  readonly keepAliveProbes: number;
  /** How long FIN-WAIT-2 waits for the peer's FIN once the local side has shut down (Linux: 60 s). */
  readonly finWait2Timeout: number;
  /** Connections of every state the engine holds at once; SYNs beyond it are dropped. */
  readonly maxConnections: number;
  /** SYN-RECEIVED connections engine-wide (the SYN-flood cap); a listener's backlog caps its own. */
  readonly maxHalfOpen: number;
  /** Offer/accept RFC 7323 timestamps. */
  readonly timestamps: boolean;
  /** Offer/accept RFC 2018 selective acknowledgements. */
  readonly sack: boolean;
  /** Offer/accept RFC 7323 window scaling (needed for windows above 64 KiB). */
  readonly windowScaling: boolean;
  /** Congestion control of new connections. */
  readonly congestion: TcpCongestion;
  /** Answer segments for no connection with RST (RFC 9293 3.10.7.1); off = drop silently. */
  readonly resetUnknown: boolean;
  /** Ephemeral port range for connect() with port 0 (inclusive; Linux default 32768..60999). */
  readonly ephemeralLow: number;
  readonly ephemeralHigh: number;
}

/** Defaults of {@link TcpLimits}. */
export const TCP_DEFAULTS: TcpLimits = Object.freeze({
  sendBuffer: 1 << 20,
  receiveBuffer: 1 << 20,
  maxOutOfOrder: 256,
  msl: 30_000,
  rtoInitial: 1000,
  rtoMin: 200,
  rtoMax: 60_000,
  maxRetransmits: 15,
  synRetries: 6,
  delayedAck: 40,
  keepAliveIdle: 7_200_000,
  keepAliveInterval: 75_000,
  keepAliveProbes: 9,
  finWait2Timeout: 60_000,
  maxConnections: 16_384,
  maxHalfOpen: 1024,
  timestamps: true,
  sack: true,
  windowScaling: true,
  congestion: 'cubic',
  resetUnknown: true,
  ephemeralLow: 49152,
  ephemeralHigh: 65535,
});

/** Why an incoming segment was dropped (counted, never thrown; docs/errors.md). */
export const TCP_DROP_REASONS = [
  'short', // fewer than 20 bytes, or data offset beyond the segment
  'bad-address', // src/dst not 4/16 bytes or of different families
  'checksum', // TCP checksum over the pseudo-header is wrong
  'data-offset', // data offset under 5 words
  'bad-option', // an option's length runs past the header or is malformed
  'bad-port', // source or destination port 0
  'bad-flags', // SYN+FIN, SYN+RST, or no ACK where one is required
  'no-socket', // no connection or listener (answered with RST when resetUnknown)
  'out-of-window', // sequence number outside the receive window (an ACK is sent, RFC 9293 3.10.7.4)
  'bad-ack', // ACK of data never sent, or too old (RFC 5961 5.2)
  'rst-invalid', // RST with a sequence number not exactly RCV.NXT (RFC 5961 3.2: challenge ACK)
  'syn-in-window', // SYN in a synchronized state (RFC 5961 4.2: challenge ACK)
  'syn-flood', // half-open cap or listener backlog full
  'too-many-connections', // maxConnections reached
  'out-of-order-full', // the out-of-order queue was full
  'challenge-ack-limit', // a challenge ACK was suppressed by the rate limit
] as const;

/** One value of {@link TCP_DROP_REASONS}. */
export type TcpDropReason = (typeof TCP_DROP_REASONS)[number];

/** Engine statistics (monotonic counts) besides the drops. */
export const TCP_STATS = [
  'segmentsIn',
  'segmentsOut',
  'bytesIn', // payload bytes accepted in order
  'bytesOut', // payload bytes sent, retransmissions included
  'retransmits', // segments retransmitted (timeout, fast retransmit, SACK recovery)
  'timeouts', // RTO expirations
  'fastRetransmits',
  'activeOpens',
  'passiveOpens',
  'resetsSent',
  'resetsReceived',
  'established', // connections that reached ESTABLISHED
  'closed', // connections removed
  'challengeAcks',
] as const;

/** One value of {@link TCP_STATS}. */
export type TcpStat = (typeof TCP_STATS)[number];

/** Drop and statistic counters of an engine, by name. */
export type TcpCounters = Readonly<Record<TcpDropReason | TcpStat, number>>;

/** A snapshot of a connection's transmission state, for diagnostics and tests. */
export interface TcpInfo {
  readonly state: TcpState;
  readonly mss: number; // effective send MSS (peer's MSS option, timestamps deducted)
  readonly srtt: number | undefined; // ms
  readonly rttvar: number | undefined; // ms
  readonly rto: number; // ms
  readonly cwnd: number; // bytes
  readonly ssthresh: number; // bytes
  readonly sendWindow: number; // bytes the peer offers
  readonly receiveWindow: number; // bytes we offer
  readonly unacked: number; // bytes in flight
  readonly queued: number; // bytes accepted by write() not yet sent
  readonly retransmits: number; // total for this connection
  readonly sack: boolean;
  readonly timestamps: boolean;
  readonly windowScale: readonly [send: number, receive: number];
}

/**
 * One TCP connection. Callbacks run synchronously inside engine calls (input, tick, write...)
 * and may call back into the connection. Data flow:
 * - send: `write` copies what fits in the bounded send buffer and returns the count; on a short
 *   write, wait for `onWritable`.
 * - receive: `onData` hands over in-order bytes (the callee owns them); they count against the
 *   receive window until `consumed(n)` says the application took them.
 */
export interface TcpConnection {
  readonly local: SockAddr;
  readonly remote: SockAddr;
  readonly state: TcpState;
  /** Bytes write() would accept now. */
  readonly writableLength: number;
  /** Bytes written but not yet acknowledged by the peer. */
  readonly bufferedAmount: number;

  /** The three-way handshake completed (ESTABLISHED). */
  onConnected: (() => void) | undefined;
  /** In-order bytes arrived; call consumed() when they have been taken to reopen the window. */
  onData: ((data: Uint8Array) => void) | undefined;
  /** The peer sent FIN: no more data will come (its side is closed). */
  onEnd: (() => void) | undefined;
  /** Space opened in the send buffer after a short write. */
  onWritable: (() => void) | undefined;
  /** The connection is gone: without an error after an orderly close, else why. Fires once. */
  onClose: ((err?: TcpError) => void) | undefined;

  /** Queues bytes for sending; returns how many fit (0 when full). Throws TypeError after shutdown/close. */
  write(data: Uint8Array, now: number): number;
  /** Application took `n` bytes handed by onData: the receive window reopens. RangeError if n exceeds them. */
  consumed(n: number, now: number): void;
  /** Sends FIN after the queued data (half close); reading continues until onEnd. Idempotent. */
  shutdown(now: number): void;
  /** Abortive close: RST to the peer, buffers dropped, onClose(ECONNABORTED) is not fired (local). */
  abort(now: number): void;
  /** Turns Nagle's algorithm off (true) or on (false, the default; RFC 9293 3.7.4). */
  setNoDelay(noDelay: boolean): void;
  /** Keepalive probes after `idle` ms without traffic (default limits.keepAliveIdle). */
  setKeepAlive(enable: boolean, now: number, idle?: number): void;
  /** Transmission state snapshot. */
  info(): TcpInfo;
}

/** A passive open: accepts connections to `port` on any local address of either family. */
export interface TcpListener {
  readonly port: number;
  /** Stops accepting; half-open connections of this listener are dropped, accepted ones stay. */
  close(): void;
}

/** Options of {@link TcpEngine.connect}. */
export interface TcpConnectOptions {
  /** MSS to advertise: the path MTU minus IP and TCP headers (1360 for a 1420 WireGuard MTU over IPv6: 1420-40-20). */
  readonly mss: number;
}

/** Options of {@link TcpEngine.listen}. */
export interface TcpListenOptions {
  /** MSS to advertise (see {@link TcpConnectOptions.mss}). */
  readonly mss: number;
  /** Most SYN-RECEIVED connections this listener holds; further SYNs are dropped (syn-flood). */
  readonly backlog: number;
}

/** What a {@link TcpEngine} needs from its caller. */
export interface TcpEngineOptions {
  /** Transmits one segment (the IP layer wraps it). Called synchronously from engine calls. */
  send(segment: TcpSegmentOut): void;
  /** `n` cryptographically random bytes (ISNs per RFC 6528, timestamp offsets). */
  random(n: number): Uint8Array;
  limits?: Partial<TcpLimits>;
}

/**
 * The TCP engine: demultiplexes segments to connections and listeners, owns every timer in one
 * deadline queue, and counts every drop. Local port 0 in connect() picks an ephemeral port
 * (limits.ephemeralLow..High) not in use toward that remote address: port allocation is ours.
 * Throws RangeError/TypeError on misuse only (bad limits, bad addresses, port in use).
 */
export class TcpEngine {
  /** Effective tunables (defaults merged with the constructor's limits). */
  readonly limits: TcpLimits;

  constructor(opts: TcpEngineOptions) {
    this.limits = { ...TCP_DEFAULTS, ...opts.limits };
    throw new Error('not implemented yet');
  }

  /** Drop and statistic counters (a live read-only view). */
  get counters(): TcpCounters {
    throw new Error('not implemented yet');
  }

  /** Connections held, of every state (TIME-WAIT included). */
  get connectionCount(): number {
    throw new Error('not implemented yet');
  }

  /**
   * One received TCP segment (the IP payload) from `src` to `dst`. Verifies the checksum over the
   * v4/v6 pseudo-header, parses options, and runs the RFC 9293 3.10.7 segment-arrival rules.
   * Never throws on the segment's content: bad input is dropped and counted.
   */
  input(src: IpAddr, dst: IpAddr, segment: Uint8Array, now: number): void {
    void src; void dst; void segment; void now;
    throw new Error('not implemented yet');
  }

  /** Active open: sends SYN; `local.port` 0 picks an ephemeral port. RangeError when the 4-tuple is taken. */
  connect(local: SockAddr, remote: SockAddr, opts: TcpConnectOptions, now: number): TcpConnection {
    void local; void remote; void opts; void now;
    throw new Error('not implemented yet');
  }

  /** Passive open on `port` (any local address); `onAccept` gets each connection once ESTABLISHED. */
  listen(port: number, opts: TcpListenOptions, onAccept: (conn: TcpConnection) => void): TcpListener {
    void port; void opts; void onAccept;
    throw new Error('not implemented yet');
  }

  /** The earliest time (ms) tick() has work to do, or undefined when no timer is armed. */
  nextDeadline(): number | undefined {
    throw new Error('not implemented yet');
  }

  /** Runs every timer due at `now` (retransmission, delayed ACK, persist, keepalive, TIME-WAIT...). */
  tick(now: number): void {
    void now;
    throw new Error('not implemented yet');
  }

  /** Aborts every connection (RST) and closes every listener; onClose(ECONNABORTED) fires for each. */
  close(now: number): void {
    void now;
    throw new Error('not implemented yet');
  }
}
