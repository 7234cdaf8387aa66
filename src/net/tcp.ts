// A sans-IO TCP engine (RFC 9293): no sockets, no timers, no clock of its own. Segments come in
// through `input`, go out through the `send` callback, and time is the `now` argument (ms) of
// every call; the caller asks `nextDeadline()` and calls `tick(now)` when it passes. Congestion
// control per RFC 5681/6582 (NewReno) or RFC 9438 (CUBIC), RTO per RFC 6298, window scaling and
// timestamps per RFC 7323, SACK per RFC 2018, RST/SYN/ACK checks per RFC 5961.

import { DeadlineHeap } from '../core/deadline-heap.js';
import { Connection, type ConnectionHost } from './tcp-connection.js';
import { TcpError } from './tcp-error.js';
import { ACK, FIN, RST, SYN, buildSegment, parseSegment, pseudoHeaderSum, seqAdd, type Segment } from './tcp-segment.js';

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
  /**
   * FIN-WAIT-2 with no segment from the peer for this long ends the connection (ETIMEDOUT);
   * 0 = never (the default: after shutdown() a half-closed connection may wait for the peer's
   * data indefinitely, like a Linux socket that is still open; keepalive still applies).
   */
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
  finWait2Timeout: 0,
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
  /** Abortive close: RST to the peer, buffers dropped; onClose() fires without an error. */
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

/** RFC 5961 7: challenge ACKs per second, engine-wide (Linux tcp_challenge_ack_limit is 1000). */
const CHALLENGE_ACKS_PER_SECOND = 1000;

interface Listener extends TcpListener {
  readonly mss: number;
  readonly backlog: number;
  readonly onAccept: (conn: TcpConnection) => void;
  halfOpen: number;
  closed: boolean;
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
  readonly #send: (segment: TcpSegmentOut) => void;
  readonly #random: (n: number) => Uint8Array;
  readonly #counters: Record<TcpDropReason | TcpStat, number>;
  readonly #conns = new Map<string, Connection>();
  readonly #listeners = new Map<number, Listener>();
  readonly #owner = new Map<Connection, Listener>();
  readonly #timers = new DeadlineHeap<Connection>();
  readonly #host: ConnectionHost;
  #halfOpen = 0;
  #challengeSecond = -1;
  #challengeCount = 0;

  constructor(opts: TcpEngineOptions) {
    if (typeof opts?.send !== 'function' || typeof opts.random !== 'function') throw new TypeError('expected send and random functions');
    const limits: TcpLimits = { ...TCP_DEFAULTS, ...opts.limits };
    for (const [k, v] of Object.entries(limits)) {
      if (typeof v === 'number' && !(Number.isFinite(v) && v >= 0)) throw new RangeError(`expected limits.${k} to be a finite number >= 0, got ${v}`);
    }
    if (limits.sendBuffer < 1 || limits.receiveBuffer < 1) throw new RangeError('expected sendBuffer and receiveBuffer >= 1');
    if (!(limits.ephemeralLow >= 1 && limits.ephemeralLow <= limits.ephemeralHigh && limits.ephemeralHigh <= 65535)) {
      throw new RangeError(`expected 1 <= ephemeralLow <= ephemeralHigh <= 65535, got ${limits.ephemeralLow}..${limits.ephemeralHigh}`);
    }
    this.limits = Object.freeze(limits);
    this.#send = opts.send;
    this.#random = opts.random;
    this.#counters = Object.fromEntries([...TCP_DROP_REASONS, ...TCP_STATS].map((k) => [k, 0])) as Record<TcpDropReason | TcpStat, number>;
    const counters = this.#counters;
    const engine = this;
    this.#host = {
      limits: this.limits,
      emit(src, dst, bytes) {
        counters.segmentsOut++;
        engine.#send({ src, dst, bytes });
      },
      count(name, n = 1) {
        counters[name] += n;
      },
      reschedule(conn, at) {
        if (at === Infinity) engine.#timers.remove(conn);
        else engine.#timers.schedule(conn, at);
      },
      accepted(conn) {
        engine.#unHalfOpen(conn);
      },
      release(conn) {
        engine.#unHalfOpen(conn);
        engine.#timers.remove(conn);
        if (engine.#conns.get(conn.key) === conn) {
          engine.#conns.delete(conn.key);
          counters.closed++;
        }
      },
      challengeAllowed(now) {
        const second = Math.floor(now / 1000);
        if (second !== engine.#challengeSecond) {
          engine.#challengeSecond = second;
          engine.#challengeCount = 0;
        }
        return ++engine.#challengeCount <= CHALLENGE_ACKS_PER_SECOND;
      },
    };
  }

  /** Drop and statistic counters (a live read-only view). */
  get counters(): TcpCounters {
    return this.#counters;
  }

  /** Connections held, of every state (TIME-WAIT included). */
  get connectionCount(): number {
    return this.#conns.size;
  }

  /**
   * One received TCP segment (the IP payload) from `src` to `dst`. Verifies the checksum over the
   * v4/v6 pseudo-header, parses options, and runs the RFC 9293 3.10.7 segment-arrival rules.
   * Never throws on the segment's content: bad input is dropped and counted.
   */
  input(src: IpAddr, dst: IpAddr, segment: Uint8Array, now: number): void {
    const counters = this.#counters;
    counters.segmentsIn++;
    const seg = parseSegment(src, dst, segment);
    if (typeof seg === 'string') {
      counters[seg]++;
      return;
    }
    const flags = seg.flags;
    if ((flags & SYN && flags & (FIN | RST)) !== 0) {
      counters['bad-flags']++;
      return;
    }
    const conn = this.#conns.get(connKey(dst, seg.dstPort, src, seg.srcPort));
    if (conn !== undefined) {
      conn.segmentArrives(seg, now);
      conn.flush();
      return;
    }
    const listener = this.#listeners.get(seg.dstPort);
    if (listener !== undefined) {
      this.#listenArrives(listener, src, dst, seg, now);
      return;
    }
    counters['no-socket']++;
    this.#resetFor(src, dst, seg);
  }

  /** Active open: sends SYN; `local.port` 0 picks an ephemeral port. RangeError when the 4-tuple is taken. */
  connect(local: SockAddr, remote: SockAddr, opts: TcpConnectOptions, now: number): TcpConnection {
    checkAddr(local, 'local', true);
    checkAddr(remote, 'remote', false);
    if (local.ip.length !== remote.ip.length) throw new TypeError(`expected local and remote of one family, got ${local.ip.length}- and ${remote.ip.length}-byte addresses`);
    checkMss(opts?.mss);
    if (this.#conns.size >= this.limits.maxConnections) throw new RangeError(`expected fewer than limits.maxConnections (${this.limits.maxConnections}) connections`);
    let port = local.port;
    if (port === 0) port = this.#ephemeralPort(local.ip, remote);
    const key = connKey(local.ip, port, remote.ip, remote.port);
    if (this.#conns.has(key)) throw new RangeError(`expected a free 4-tuple, got one in use (local port ${port})`);
    const conn = this.#newConnection(key, { ip: local.ip.slice(), port }, { ip: remote.ip.slice(), port: remote.port }, opts.mss, false);
    this.#counters.activeOpens++;
    conn.open(now);
    return conn;
  }

  /** Passive open on `port` (any local address); `onAccept` gets each connection once ESTABLISHED. */
  listen(port: number, opts: TcpListenOptions, onAccept: (conn: TcpConnection) => void): TcpListener {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`expected a port 1..65535, got ${port}`);
    checkMss(opts?.mss);
    if (!Number.isInteger(opts.backlog) || opts.backlog < 1) throw new RangeError(`expected a backlog >= 1, got ${opts.backlog}`);
    if (typeof onAccept !== 'function') throw new TypeError(`expected an onAccept function, got ${typeof onAccept}`);
    if (this.#listeners.has(port)) throw new RangeError(`expected a free port, got ${port} already listening`);
    const listeners = this.#listeners;
    const engine = this;
    const listener: Listener = {
      port,
      mss: opts.mss,
      backlog: opts.backlog,
      onAccept,
      halfOpen: 0,
      closed: false,
      close() {
        if (listener.closed) return;
        listener.closed = true;
        if (listeners.get(port) === listener) listeners.delete(port);
        for (const [conn, owner] of engine.#owner) if (owner === listener && conn.halfOpen) conn.abort(0);
      },
    };
    listeners.set(port, listener);
    return listener;
  }

  /** The earliest time (ms) tick() has work to do, or undefined when no timer is armed. */
  nextDeadline(): number | undefined {
    const at = this.#timers.peekKey();
    return at === Infinity ? undefined : at;
  }

  /** Runs every timer due at `now` (retransmission, delayed ACK, persist, keepalive, TIME-WAIT...). */
  tick(now: number): void {
    const timers = this.#timers;
    while (timers.peekKey() <= now) {
      const conn = timers.pop()!;
      conn.onTimer(now);
      conn.flush();
    }
  }

  /** Aborts every connection (RST) and closes every listener; onClose(ECONNABORTED) fires for each. */
  close(now: number): void {
    for (const l of [...this.#listeners.values()]) l.close();
    for (const conn of [...this.#conns.values()]) {
      const onClose = conn.onClose;
      conn.onClose = undefined;
      const visible = conn.state !== 'TIME-WAIT' && !conn.halfOpen;
      conn.abort(now);
      if (visible) onClose?.(new TcpError('ECONNABORTED', 'the TCP engine was closed'));
    }
  }

  #newConnection(key: string, local: SockAddr, remote: SockAddr, mss: number, passive: boolean): Connection {
    const r = this.#random(8);
    const iss = ((r[0]! << 24) | (r[1]! << 16) | (r[2]! << 8) | r[3]!) >>> 0; // RFC 6528: unpredictable
    const tsOffset = ((r[4]! << 24) | (r[5]! << 16) | (r[6]! << 8) | r[7]!) >>> 0;
    const conn = new Connection(this.#host, key, local, remote, mss, iss, tsOffset, passive);
    this.#conns.set(key, conn);
    return conn;
  }

  /** RFC 9293 3.10.7.2: a segment for a listener. */
  #listenArrives(listener: Listener, src: IpAddr, dst: IpAddr, seg: Segment, now: number): void {
    const counters = this.#counters;
    const flags = seg.flags;
    if (flags & RST) {
      counters['no-socket']++;
      return;
    }
    if (flags & ACK) {
      counters['bad-ack']++;
      this.#resetFor(src, dst, seg);
      return;
    }
    if (!(flags & SYN)) {
      counters['bad-flags']++;
      return;
    }
    if (this.#conns.size >= this.limits.maxConnections) {
      counters['too-many-connections']++;
      return;
    }
    if (this.#halfOpen >= this.limits.maxHalfOpen || listener.halfOpen >= listener.backlog) {
      counters['syn-flood']++;
      return;
    }
    const key = connKey(dst, seg.dstPort, src, seg.srcPort);
    const conn = this.#newConnection(key, { ip: dst.slice(), port: seg.dstPort }, { ip: src.slice(), port: seg.srcPort }, listener.mss, true);
    conn.acceptTo = listener.onAccept;
    this.#owner.set(conn, listener);
    listener.halfOpen++;
    this.#halfOpen++;
    counters.passiveOpens++;
    conn.acceptSyn(seg, now);
  }

  #unHalfOpen(conn: Connection): void {
    if (!conn.halfOpen) return;
    conn.halfOpen = false;
    this.#halfOpen--;
    const owner = this.#owner.get(conn);
    if (owner !== undefined) {
      owner.halfOpen--;
      this.#owner.delete(conn);
      if (owner.closed && conn.state !== 'CLOSED') conn.acceptTo = undefined;
    }
  }

  /** RFC 9293 3.10.7.1: the RST answering a segment for no connection (never to a RST). */
  #resetFor(src: IpAddr, dst: IpAddr, seg: Segment): void {
    if (seg.flags & RST || !this.limits.resetUnknown) return;
    const len = seg.payload.length + (seg.flags & SYN ? 1 : 0) + (seg.flags & FIN ? 1 : 0);
    const ack = (seg.flags & ACK) !== 0;
    const bytes = buildSegment(
      { srcPort: seg.dstPort, dstPort: seg.srcPort, seq: ack ? seg.ack : 0, ack: ack ? 0 : seqAdd(seg.seq, len), flags: ack ? RST : RST | ACK, window: 0 },
      pseudoHeaderSum(dst, src, 0),
      0,
    );
    this.#counters.resetsSent++;
    this.#counters.segmentsOut++;
    this.#send({ src: dst, dst: src, bytes });
  }

  #ephemeralPort(ip: IpAddr, remote: SockAddr): number {
    const { ephemeralLow: low, ephemeralHigh: high } = this.limits;
    const span = high - low + 1;
    const r = this.#random(2);
    const start = ((r[0]! << 8) | r[1]!) % span;
    for (let i = 0; i < span; i++) {
      const port = low + ((start + i) % span);
      if (!this.#listeners.has(port) && !this.#conns.has(connKey(ip, port, remote.ip, remote.port))) return port;
    }
    throw new RangeError(`expected a free ephemeral port toward that address, got all ${span} in use`);
  }
}

/** The connection table key of a 4-tuple. */
function connKey(localIp: Uint8Array, localPort: number, remoteIp: Uint8Array, remotePort: number): string {
  return String.fromCharCode(localPort, remotePort, ...localIp, ...remoteIp);
}

function checkAddr(a: SockAddr, name: string, portZeroOk: boolean): void {
  if (!(a?.ip instanceof Uint8Array) || (a.ip.length !== 4 && a.ip.length !== 16)) throw new TypeError(`expected ${name}.ip to be a 4- or 16-byte Uint8Array`);
  if (!Number.isInteger(a.port) || a.port < (portZeroOk ? 0 : 1) || a.port > 65535) throw new RangeError(`expected ${name}.port in ${portZeroOk ? 0 : 1}..65535, got ${a.port}`);
}

function checkMss(mss: unknown): void {
  if (!Number.isInteger(mss) || (mss as number) < 88 || (mss as number) > 65495) throw new RangeError(`expected an MSS of 88..65495, got ${String(mss)}`);
}
