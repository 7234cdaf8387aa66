// One TCP connection's control block and state machine (RFC 9293 3.3, segment arrival 3.10.7,
// user calls 3.10.1-3.10.6, timeouts 3.10.8), with RTO estimation (RFC 6298), NewReno fast
// retransmit/recovery (RFC 5681 3.2, RFC 6582) with limited transmit (RFC 3042), SACK blocks
// sent (RFC 2018) and used for hole retransmission (RFC 6675, simplified), delayed ACKs (RFC 9293
// 3.8.6.3), Nagle and sender/receiver SWS avoidance (RFC 9293 3.7.4, 3.8.6.2), zero-window
// probing (3.8.6.1), keepalive (3.8.4), RFC 5961 RST/SYN/ACK checks, RFC 7323 window scale and
// timestamps (RTTM; no PAWS). Pure: time is an argument, output goes to the host.

import { HEAP_INDEX, HEAP_KEY, type HeapItem } from '../core/deadline-heap.js';
import { CongestionControl } from './tcp-congestion.js';
import { TcpError } from './tcp-error.js';
import {
  ACK,
  FIN,
  MAX_WSCALE,
  PSH,
  RST,
  SYN,
  buildSegment,
  pseudoHeaderSum,
  seqAdd,
  seqDiff,
  seqLe,
  seqLt,
  type Segment,
  type SegmentFields,
} from './tcp-segment.js';
import type { SockAddr, TcpConnection, TcpDropReason, TcpInfo, TcpLimits, TcpStat, TcpState } from './tcp.js';

/** What a connection needs from its engine. */
export interface ConnectionHost {
  readonly limits: TcpLimits;
  emit(src: Uint8Array, dst: Uint8Array, bytes: Uint8Array): void;
  count(name: TcpDropReason | TcpStat, n?: number): void;
  /** The connection's earliest timer changed (Infinity: none). */
  reschedule(conn: Connection, at: number): void;
  /** SYN-RECEIVED -> ESTABLISHED of a passive open (half-open count, accept). */
  accepted(conn: Connection): void;
  /** The connection is CLOSED: forget it. */
  release(conn: Connection): void;
  /** RFC 5961 7: may a challenge ACK be sent now (engine-wide rate limit)? */
  challengeAllowed(now: number): boolean;
}

/** The default MSS when the peer sends none (RFC 9293 3.7.1: 536 for IPv4, RFC 8200 1220 for IPv6). */
function defaultMss(family: number): number {
  return family === 4 ? 536 : 1220;
}

const TS_OPTION = 12; // NOP NOP TS: what timestamps take from each segment's room
const MAX_SACK_BLOCKS_TS = 3;
const MAX_SACK_BLOCKS = 4;
const DUPACK_THRESHOLD = 3; // RFC 5681 3.2
const MAX_SACK_RANGES = 64; // scoreboard ranges kept per connection (memory bound)
const INITIAL_SEND_CAPACITY = 16 * 1024;
/** Least time between ACKs answering out-of-window bare ACKs (Linux tcp_invalid_ratelimit). */
const OOW_ACK_INTERVAL = 500;

interface OooSegment {
  seq: number;
  end: number;
  data: Uint8Array;
}

/** A TCP connection (the public face is {@link TcpConnection}). */
export class Connection implements TcpConnection, HeapItem {
  [HEAP_INDEX] = -1;
  [HEAP_KEY] = 0;

  readonly local: SockAddr;
  readonly remote: SockAddr;
  /** Key in the engine's connection table. */
  readonly key: string;
  /** Set for a passive open until accepted (it counts as half-open). */
  halfOpen: boolean;
  /** The accept callback of the listener, fired once ESTABLISHED. */
  acceptTo: ((conn: TcpConnection) => void) | undefined;

  onConnected: (() => void) | undefined;
  onEnd: (() => void) | undefined;
  onWritable: (() => void) | undefined;
  onClose: ((err?: TcpError) => void) | undefined;
  #onData: ((data: Uint8Array) => void) | undefined;

  readonly #host: ConnectionHost;
  readonly #lim: TcpLimits;
  readonly #pseudo: number;
  #state: TcpState;

  // Send sequence space (RFC 9293 3.3.1); sndMax is the highest sequence number sent.
  readonly #iss: number;
  #sndUna: number;
  #sndNxt: number;
  #sndMax: number;
  #sndWnd = 0;
  #sndWl1 = 0;
  #sndWl2 = 0;
  #maxSndWnd = 0;
  // Receive sequence space.
  #rcvNxt = 0;
  #rcvAdvRight = 0; // right edge of the window last advertised (never moves left)
  #lastAckSent = 0;

  // Negotiated options.
  readonly #ourMss: number;
  #sendMss: number;
  #sndScale = 0;
  #rcvScale = 0;
  #offerScale: number | undefined;
  #sackOk = false;
  #tsOk = false;
  #tsRecent = 0;
  readonly #tsOffset: number;

  // Send buffer: a ring from #bufSeq (the first unacknowledged data byte) holding #bufLen bytes.
  #buf: Uint8Array;
  #bufHead = 0;
  #bufLen = 0;
  #bufSeq: number;
  #finQueued = false; // shutdown() called: FIN follows the data
  #writeBlocked = false;

  // Receive side.
  #unconsumed = 0; // delivered to onData, not yet consumed()
  #held: Uint8Array[] = []; // in-order data while onData is unset
  readonly #ooo: OooSegment[] = [];
  #oooBytes = 0;
  #lastOooSeq = 0;
  #peerFinSeq: number | undefined;
  #segsUnacked = 0;
  #ackNow = false;
  #lastOowAck = -Infinity;

  // RTO (RFC 6298) and congestion control.
  #srtt: number | undefined;
  #rttvar: number | undefined;
  #rto: number;
  #backoffs = 0;
  #rttSeq: number | undefined;
  #rttStart = 0;
  readonly #cc: CongestionControl;
  #dupAcks = 0;
  #inRecovery = false;
  #recover: number;
  #retransmits = 0;
  // SACK scoreboard (RFC 2018, RFC 6675): sorted disjoint [left, right) pairs above SND.UNA.
  #sacked: number[] = [];
  #highRxt = 0; // in recovery: holes below this were retransmitted already

  // Timers (absolute ms, Infinity when off).
  #rtxAt = Infinity; // retransmission, or persist while #persist
  #persist = false;
  #ackAt = Infinity;
  #kaAt = Infinity; // keepalive, or FIN-WAIT-2 idle limit
  #twAt = Infinity; // TIME-WAIT end
  #keepAlive = false;
  #kaIdle: number;
  #kaProbes = 0;
  #noDelay = false;

  // Events fired by flush() once the state is consistent.
  #evConnected = false;
  #evEnd = false;
  #evWritable = false;
  #evClose = false;
  #closeErr: TcpError | undefined;
  #closeFired = false;
  #pending: Uint8Array[] = [];

  constructor(host: ConnectionHost, key: string, local: SockAddr, remote: SockAddr, ourMss: number, iss: number, tsOffset: number, passive: boolean) {
    this.#host = host;
    this.#lim = host.limits;
    this.key = key;
    this.local = local;
    this.remote = remote;
    this.#pseudo = pseudoHeaderSum(local.ip, remote.ip, 0);
    this.#ourMss = ourMss;
    this.#sendMss = defaultMss(local.ip.length === 4 ? 4 : 6);
    this.#iss = iss;
    this.#sndUna = iss;
    this.#sndNxt = iss;
    this.#sndMax = iss;
    this.#recover = iss;
    this.#bufSeq = seqAdd(iss, 1);
    this.#buf = new Uint8Array(Math.min(INITIAL_SEND_CAPACITY, this.#lim.sendBuffer));
    this.#tsOffset = tsOffset;
    this.#rto = this.#lim.rtoInitial;
    this.#kaIdle = this.#lim.keepAliveIdle;
    this.#cc = new CongestionControl(this.#lim.congestion, this.#sendMss);
    this.halfOpen = passive;
    this.acceptTo = undefined;
    this.#state = passive ? 'SYN-RECEIVED' : 'SYN-SENT';
    if (this.#lim.windowScaling) {
      let s = 0;
      while (s < MAX_WSCALE && this.#lim.receiveBuffer >> s > 0xffff) s++;
      this.#offerScale = s;
    }
  }

  // ---- public face ----

  get state(): TcpState {
    return this.#state;
  }

  get writableLength(): number {
    return this.#canWrite() ? this.#lim.sendBuffer - this.#bufLen : 0;
  }

  get bufferedAmount(): number {
    return this.#bufLen;
  }

  get onData(): ((data: Uint8Array) => void) | undefined {
    return this.#onData;
  }

  set onData(fn: ((data: Uint8Array) => void) | undefined) {
    this.#onData = fn;
    if (fn !== undefined && this.#held.length > 0) {
      const held = this.#held;
      this.#held = [];
      for (const chunk of held) fn(chunk);
    }
  }

  write(data: Uint8Array, now: number): number {
    if (!(data instanceof Uint8Array)) throw new TypeError(`expected a Uint8Array, got ${typeof data}`);
    if (!this.#canWrite()) throw new TypeError(`expected a writable connection, got state ${this.#state}${this.#finQueued ? ' after shutdown' : ''}`);
    const n = Math.min(data.length, this.#lim.sendBuffer - this.#bufLen);
    if (n < data.length) this.#writeBlocked = true;
    if (n === 0) return 0;
    this.#bufPush(data, n);
    if (this.#synchronized()) this.#output(now);
    this.flush();
    return n;
  }

  consumed(n: number, now: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.#unconsumed) throw new RangeError(`expected 0..${this.#unconsumed} consumed bytes, got ${n}`);
    const before = seqDiff(this.#rcvAdvRight, this.#rcvNxt);
    this.#unconsumed -= n;
    if (!this.#synchronized() || this.#peerFinSeq !== undefined && this.#rcvNxt === seqAdd(this.#peerFinSeq, 1)) return;
    // Window update (RFC 9293 3.8.6.2.2) when the offer grows by a useful amount from a small one.
    const free = this.#lim.receiveBuffer - this.#unconsumed;
    if (before < this.#lim.receiveBuffer / 2 && free - before >= Math.min(this.#lim.receiveBuffer / 2, 2 * this.#ourMss)) {
      this.#sendAck(now);
      this.flush();
    }
  }

  shutdown(now: number): void {
    if (this.#finQueued || this.#state === 'CLOSED' || this.#state === 'TIME-WAIT') return;
    this.#finQueued = true;
    switch (this.#state) {
      case 'SYN-SENT':
        // RFC 9293 3.10.4: nothing sent yet worth a FIN; the connection just ends.
        this.#terminate(undefined, now, false);
        break;
      case 'SYN-RECEIVED':
        break; // FIN-WAIT-1 once established (#becomeEstablished)
      case 'ESTABLISHED':
        this.#state = 'FIN-WAIT-1';
        this.#output(now);
        break;
      case 'CLOSE-WAIT':
        this.#state = 'LAST-ACK';
        this.#output(now);
        break;
      default:
        break;
    }
    this.flush();
  }

  abort(now: number): void {
    if (this.#state === 'CLOSED') return;
    if (this.#state !== 'SYN-SENT' && this.#state !== 'TIME-WAIT') this.#sendRst(this.#sndMax, now);
    this.#terminate(undefined, now, false);
    this.flush();
  }

  setNoDelay(noDelay: boolean): void {
    this.#noDelay = noDelay;
  }

  setKeepAlive(enable: boolean, now: number, idle?: number): void {
    if (idle !== undefined && (!Number.isFinite(idle) || idle <= 0)) throw new RangeError(`expected a positive idle time (ms), got ${idle}`);
    this.#keepAlive = enable;
    if (idle !== undefined) this.#kaIdle = idle;
    this.#kaProbes = 0;
    if (!this.#finWait2Limited()) this.#kaAt = enable && this.#synchronized() ? now + this.#kaIdle : Infinity;
    this.#schedule();
  }

  info(): TcpInfo {
    return {
      state: this.#state,
      mss: this.#effectiveMss(),
      srtt: this.#srtt,
      rttvar: this.#rttvar,
      rto: this.#rto,
      cwnd: this.#cc.cwnd,
      ssthresh: this.#cc.ssthresh,
      sendWindow: this.#sndWnd,
      receiveWindow: seqDiff(this.#rcvAdvRight, this.#rcvNxt),
      unacked: seqDiff(this.#sndMax, this.#sndUna),
      queued: seqDiff(seqAdd(this.#bufSeq, this.#bufLen), this.#sndNxt) > 0 ? seqDiff(seqAdd(this.#bufSeq, this.#bufLen), this.#sndNxt) : 0,
      retransmits: this.#retransmits,
      sack: this.#sackOk,
      timestamps: this.#tsOk,
      windowScale: [this.#sndScale, this.#rcvScale],
    };
  }

  // ---- engine side ----

  /** Active open (RFC 9293 3.10.1): sends SYN. */
  open(now: number): void {
    this.#sendSyn(now);
    this.#rtxAt = now + this.#rto;
    this.#schedule();
  }

  /** Passive open: the SYN that LISTEN accepted (RFC 9293 3.10.7.2); sends SYN-ACK. */
  acceptSyn(seg: Segment, now: number): void {
    this.#rcvNxt = seqAdd(seg.seq, 1);
    this.#takeSynOptions(seg);
    this.#sndWnd = seg.window; // never scaled in a SYN
    this.#maxSndWnd = this.#sndWnd;
    this.#sndWl1 = seg.seq;
    this.#sendSyn(now);
    this.#rtxAt = now + this.#rto;
    this.#schedule();
  }

  /** Fires the events gathered while the state changed. */
  flush(): void {
    if (this.#evConnected) {
      this.#evConnected = false;
      const accept = this.acceptTo;
      this.acceptTo = undefined;
      if (accept !== undefined) accept(this);
      this.onConnected?.();
    }
    if (this.#pending.length > 0) {
      const chunks = this.#pending;
      this.#pending = [];
      for (const chunk of chunks) {
        const fn = this.#onData;
        if (fn === undefined) this.#held.push(chunk);
        else fn(chunk);
      }
    }
    if (this.#evEnd) {
      this.#evEnd = false;
      this.onEnd?.();
    }
    if (this.#evWritable) {
      this.#evWritable = false;
      if (this.#canWrite()) this.onWritable?.();
    }
    if (this.#evClose && !this.#closeFired) {
      this.#evClose = false;
      this.#closeFired = true;
      this.onClose?.(this.#closeErr);
    }
  }

  /** RFC 9293 3.10.7.3 (SYN-SENT) and 3.10.7.4 (other states). */
  segmentArrives(seg: Segment, now: number): void {
    if (this.#state === 'SYN-SENT') {
      this.#synSentArrives(seg, now);
      return;
    }
    if (this.#state === 'CLOSED') return;
    if (this.#state === 'SYN-RECEIVED' && seg.flags & SYN && seg.flags & ACK && seg.seq === seqAdd(this.#rcvNxt, -1)) {
      // Simultaneous open (RFC 9293 figure 8): the peer's SYN-ACK repeats the SYN we already
      // took; only the new part, its ACK, is processed.
      seg.seq = this.#rcvNxt;
      seg.flags &= ~SYN;
    }
    if (seg.flags & SYN && !(seg.flags & RST)) {
      // RFC 5961 4.2: a SYN in a synchronized state, whatever its sequence number, gets a
      // challenge ACK (in SYN-RECEIVED that repeats our SYN-ACK).
      this.#host.count('syn-in-window');
      this.#challengeAck(now);
      return;
    }
    const flags = seg.flags;
    let len = seg.payload.length;
    const rcvWnd = Math.max(0, seqDiff(this.#rcvAdvRight, this.#rcvNxt));
    // First: sequence number check.
    let acceptable: boolean;
    let zeroWindowData = false;
    const segLen = len + (flags & SYN ? 1 : 0) + (flags & FIN ? 1 : 0);
    if (segLen === 0) {
      acceptable = rcvWnd === 0 ? seg.seq === this.#rcvNxt : this.#inWindow(seg.seq, rcvWnd);
    } else if (rcvWnd === 0) {
      // Special allowance: ACK/RST of a segment at RCV.NXT still count (a zero-window probe).
      acceptable = seg.seq === this.#rcvNxt;
      zeroWindowData = acceptable;
    } else {
      acceptable = this.#inWindow(seg.seq, rcvWnd) || this.#inWindow(seqAdd(seg.seq, segLen - 1), rcvWnd);
    }
    if (!acceptable) {
      this.#host.count('out-of-window');
      if (flags & RST) return;
      if (this.#state === 'TIME-WAIT' && flags & FIN) this.#twAt = now + 2 * this.#lim.msl;
      // Duplicate data is answered at once (the peer learns what arrived); bare ACKs at most
      // every OOW_ACK_INTERVAL, so two ends that disagree cannot ping-pong ACKs (Linux does the same).
      if (segLen === 0) {
        if (now - this.#lastOowAck < OOW_ACK_INTERVAL) return;
        this.#lastOowAck = now;
      }
      this.#sendAck(now);
      return;
    }
    // Second: RST (RFC 5961 3.2: exactly RCV.NXT resets, elsewhere in the window challenges).
    if (flags & RST) {
      this.#host.count('resetsReceived');
      if (seg.seq !== this.#rcvNxt) {
        this.#host.count('rst-invalid');
        this.#challengeAck(now);
        return;
      }
      switch (this.#state) {
        case 'SYN-RECEIVED':
          this.#terminate(this.halfOpen ? undefined : new TcpError('ECONNREFUSED', 'connection refused'), now, false);
          return;
        case 'ESTABLISHED':
        case 'FIN-WAIT-1':
        case 'FIN-WAIT-2':
        case 'CLOSE-WAIT':
          this.#terminate(new TcpError('ECONNRESET', 'connection reset by peer'), now, false);
          return;
        default:
          this.#terminate(undefined, now, false);
          return;
      }
    }
    // Fifth: ACK.
    if (!(flags & ACK)) {
      this.#host.count('bad-flags');
      return;
    }
    this.#idle(now);
    if (this.#tsOk && seg.tsVal !== undefined && seqLe(seg.seq, this.#lastAckSent)) this.#tsRecent = seg.tsVal; // RFC 7323 4.3
    if (this.#state === 'SYN-RECEIVED') {
      if (!(seqLt(this.#sndUna, seg.ack) && seqLe(seg.ack, this.#sndMax))) {
        this.#host.count('bad-ack');
        this.#sendRst(seg.ack, now);
        return;
      }
      this.#establish(seg, now);
    }
    if (!this.#processAck(seg, now) || this.#gone()) return;
    // Seventh: segment text, in ESTABLISHED, FIN-WAIT-1 and FIN-WAIT-2 only.
    let fin = (flags & FIN) !== 0;
    if (zeroWindowData) {
      len = 0;
      fin = false;
      this.#ackNow = true;
    }
    if (len > 0 || fin) {
      if (this.#state === 'ESTABLISHED' || this.#state === 'FIN-WAIT-1' || this.#state === 'FIN-WAIT-2') {
        this.#receive(seg, fin, rcvWnd, now);
      } else if (fin && this.#peerFinSeq !== undefined && seqAdd(seg.seq, len) === this.#peerFinSeq) {
        this.#ackNow = true; // a retransmitted FIN: our ACK was lost (3.10.7.4 eighth, TIME-WAIT restart)
        if (this.#state === 'TIME-WAIT') this.#twAt = now + 2 * this.#lim.msl;
      }
    }
    if (!this.#gone() && this.#state !== 'TIME-WAIT') this.#output(now);
    if (this.#ackNow) this.#sendAck(now);
    else if (this.#segsUnacked > 0 && this.#ackAt === Infinity) this.#ackAt = now + this.#lim.delayedAck;
    this.#schedule();
  }

  /** Runs the timers due at `now`. */
  onTimer(now: number): void {
    if (this.#twAt <= now) {
      this.#terminate(undefined, now, true);
      return;
    }
    if (this.#ackAt <= now) {
      this.#ackAt = Infinity;
      this.#sendAck(now);
    }
    if (this.#rtxAt <= now) {
      this.#rtxAt = Infinity;
      if (this.#persist) this.#probeWindow(now);
      else this.#retransmitTimeout(now);
      if (this.#state === 'CLOSED') return;
    }
    if (this.#kaAt <= now) {
      this.#kaAt = Infinity;
      this.#keepAliveTimeout(now);
      if (this.#state === 'CLOSED') return;
    }
    this.#schedule();
  }

  // ---- handshake ----

  #synSentArrives(seg: Segment, now: number): void {
    const flags = seg.flags;
    const ackOk = (flags & ACK) !== 0 && seqLt(this.#iss, seg.ack) && seqLe(seg.ack, this.#sndMax);
    if (flags & ACK && !ackOk) {
      this.#host.count('bad-ack');
      if (!(flags & RST)) this.#sendRstTo(seg.ack, undefined);
      return;
    }
    if (flags & RST) {
      if (ackOk) {
        this.#host.count('resetsReceived');
        this.#terminate(new TcpError('ECONNREFUSED', 'connection refused'), now, false);
      } else {
        this.#host.count('rst-invalid');
      }
      return;
    }
    if (!(flags & SYN)) {
      this.#host.count('bad-flags');
      return;
    }
    this.#rcvNxt = seqAdd(seg.seq, 1);
    this.#takeSynOptions(seg);
    if (ackOk) {
      // SYN-ACK: the window of a SYN is never scaled; later segments are.
      this.#sndWnd = seg.window;
      this.#maxSndWnd = this.#sndWnd;
      this.#sndWl1 = seg.seq;
      this.#sndWl2 = seg.ack;
      this.#sampleRtt(seg, now, seg.ack);
      this.#sndUna = seg.ack;
      if (seqLt(this.#sndNxt, this.#sndUna)) this.#sndNxt = this.#sndUna;
      this.#backoffs = 0;
      this.#rtxAt = Infinity;
      this.#becomeEstablished(now);
      this.#tsRecent = seg.tsVal ?? 0;
      const before = this.#sndNxt;
      this.#output(now);
      if (this.#sndNxt === before) this.#sendAck(now); // RFC 9293 3.10.7.3: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
      this.#schedule();
      return;
    }
    // Simultaneous open (RFC 9293 3.5 figure 8): SYN-RECEIVED, send SYN-ACK.
    this.#sndWnd = seg.window;
    this.#maxSndWnd = this.#sndWnd;
    this.#sndWl1 = seg.seq;
    this.#tsRecent = seg.tsVal ?? 0;
    this.#state = 'SYN-RECEIVED';
    this.#sndNxt = this.#iss;
    this.#sendSyn(now);
    this.#rtxAt = now + this.#rto;
    this.#schedule();
  }

  #takeSynOptions(seg: Segment): void {
    const lim = this.#lim;
    if (seg.mss !== undefined && seg.mss > 0) this.#sendMss = seg.mss;
    this.#sendMss = Math.max(64, Math.min(this.#sendMss, this.#ourMss));
    if (seg.wscale !== undefined && this.#offerScale !== undefined) {
      this.#sndScale = seg.wscale;
      this.#rcvScale = this.#offerScale;
    } else {
      this.#offerScale = undefined; // RFC 7323 2.2: both sides must send it, else neither scales
    }
    this.#sackOk = lim.sack && seg.sackPermitted;
    this.#tsOk = lim.timestamps && seg.tsVal !== undefined;
    if (this.#tsOk) this.#tsRecent = seg.tsVal!;
    this.#cc.setMss(this.#effectiveMss());
  }

  #establish(seg: Segment, now: number): void {
    // SYN-RECEIVED -> ESTABLISHED (3.10.7.4 fifth): SND.WND from this segment.
    this.#sndWnd = seg.window << this.#sndScale;
    this.#maxSndWnd = Math.max(this.#maxSndWnd, this.#sndWnd);
    this.#sndWl1 = seg.seq;
    this.#sndWl2 = seg.ack;
    this.#becomeEstablished(now);
  }

  #becomeEstablished(now: number): void {
    this.#state = this.#finQueued ? 'FIN-WAIT-1' : 'ESTABLISHED';
    this.#host.count('established');
    if (this.halfOpen) this.#host.accepted(this);
    this.#evConnected = true;
    this.#rcvAdvRight = this.#rcvNxt;
    this.#advertise();
    if (this.#keepAlive) this.#kaAt = now + this.#kaIdle;
  }

  #sendSyn(now: number): void {
    const passive = this.#state === 'SYN-RECEIVED';
    const lim = this.#lim;
    const f: SegmentFields = {
      srcPort: this.local.port,
      dstPort: this.remote.port,
      seq: this.#iss,
      ack: passive ? this.#rcvNxt : 0,
      flags: passive ? SYN | ACK : SYN,
      window: Math.min(0xffff, lim.receiveBuffer),
      synMss: this.#ourMss,
      synWscale: this.#offerScale,
      // A SYN-ACK offers only what the SYN offered (RFC 7323 3.2, RFC 2018 2).
      synSackPermitted: passive ? this.#sackOk : lim.sack,
      tsVal: (passive ? this.#tsOk : lim.timestamps) ? this.#tsNow(now) : undefined,
      tsEcr: passive ? this.#tsRecent : 0,
    };
    this.#rcvAdvRight = seqAdd(this.#rcvNxt, f.window);
    if (passive) this.#lastAckSent = this.#rcvNxt;
    this.#emit(buildSegment(f, this.#pseudo, 0));
    this.#sndNxt = seqAdd(this.#iss, 1);
    if (seqLt(this.#sndMax, this.#sndNxt)) this.#sndMax = this.#sndNxt;
    if (this.#rttSeq === undefined && this.#backoffs === 0) {
      this.#rttSeq = this.#iss;
      this.#rttStart = now;
    }
  }

  // ---- ACK processing (3.10.7.4 fifth) ----

  /** Returns false when the segment must be dropped after the ACK check. */
  #processAck(seg: Segment, now: number): boolean {
    const ack = seg.ack;
    if (seqLt(this.#sndMax, ack)) {
      // ACK of something not yet sent: ACK back and drop (RFC 9293 3.10.7.4, RFC 5961 5.2).
      this.#host.count('bad-ack');
      this.#sendAck(now);
      return false;
    }
    if (seqLt(ack, seqAdd(this.#sndUna, -Math.max(this.#maxSndWnd, 1)))) {
      this.#host.count('bad-ack'); // RFC 5961 5.2: too old to be a duplicate
      this.#challengeAck(now);
      return false;
    }
    const wnd = seg.window << this.#sndScale;
    if (this.#sackOk && seg.sack !== undefined) this.#takeSack(seg.sack);
    if (seqLt(this.#sndUna, ack)) {
      this.#newAck(seg, ack, now);
    } else if (ack === this.#sndUna && seg.payload.length === 0 && !(seg.flags & (SYN | FIN)) && wnd === this.#sndWnd && wnd !== 0 && !this.#persist && this.#sndMax !== this.#sndUna) {
      this.#dupAck(now);
    }
    // Window update (SND.WL1/WL2 rule).
    if (seqLt(this.#sndWl1, seg.seq) || (this.#sndWl1 === seg.seq && seqLe(this.#sndWl2, ack))) {
      const opened = wnd > this.#sndWnd;
      this.#sndWnd = wnd;
      this.#sndWl1 = seg.seq;
      this.#sndWl2 = ack;
      if (wnd > this.#maxSndWnd) this.#maxSndWnd = wnd;
      if (opened && this.#persist) {
        this.#persist = false;
        this.#rtxAt = this.#sndMax !== this.#sndUna ? now + this.#rto : Infinity;
        this.#backoffs = 0;
      }
    }
    // State changes once our FIN is acknowledged.
    const finAcked = this.#finQueued && seqLt(this.#finSeq(), this.#sndUna);
    switch (this.#state) {
      case 'FIN-WAIT-1':
        if (finAcked) {
          this.#state = 'FIN-WAIT-2';
          if (this.#finWait2Limited()) this.#kaAt = now + this.#lim.finWait2Timeout;
        }
        break;
      case 'CLOSING':
        if (finAcked) this.#enterTimeWait(now);
        break;
      case 'LAST-ACK':
        if (finAcked) this.#terminate(undefined, now, false);
        break;
      default:
        break;
    }
    return true;
  }

  #newAck(seg: Segment, ack: number, now: number): void {
    const acked = seqDiff(ack, this.#sndUna);
    // Data bytes leave the ring (the SYN and FIN occupy sequence numbers, not buffer bytes).
    const dataEnd = seqAdd(this.#bufSeq, this.#bufLen);
    const upTo = seqLt(dataEnd, ack) ? dataEnd : ack;
    const dataAcked = seqDiff(upTo, this.#bufSeq);
    if (dataAcked > 0) {
      this.#bufHead = (this.#bufHead + dataAcked) % this.#buf.length;
      this.#bufLen -= dataAcked;
      this.#bufSeq = upTo;
      if (this.#writeBlocked && this.#bufLen <= this.#lim.sendBuffer / 2) {
        this.#writeBlocked = false;
        this.#evWritable = true;
      }
    }
    this.#sampleRtt(seg, now, ack);
    this.#sndUna = ack;
    if (seqLt(this.#sndNxt, ack)) this.#sndNxt = ack;
    if (this.#sacked.length > 0) this.#trimSack();
    this.#backoffs = 0;
    const flight = seqDiff(this.#sndMax, ack);
    if (this.#inRecovery) {
      if (seqLe(this.#recover, ack)) {
        // Full ACK (RFC 6582 3.2 step 3): deflate.
        this.#inRecovery = false;
        this.#cc.cwnd = Math.max(Math.min(this.#cc.ssthresh, flight + this.#effectiveMss()), this.#effectiveMss());
      } else {
        // Partial ACK (step 4): retransmit the next hole, deflate by the amount acked.
        if (!this.#retransmitHole(now)) this.#retransmitFirst(now);
        const mss = this.#effectiveMss();
        this.#cc.cwnd = Math.max(this.#cc.cwnd - acked + (acked >= mss ? mss : 0), mss);
      }
    } else {
      this.#cc.onAck(acked, now, this.#srtt ?? this.#rto);
    }
    this.#dupAcks = 0;
    // RFC 6298 5.2/5.3: stop when all is acked, else restart.
    this.#persist = false;
    this.#rtxAt = this.#sndMax === this.#sndUna ? Infinity : now + this.#rto;
  }

  #dupAck(now: number): void {
    this.#dupAcks++;
    const mss = this.#effectiveMss();
    if (this.#inRecovery) {
      // Each duplicate ACK means a segment left the network: with SACK it pays for the next
      // hole's retransmission (RFC 6675 5 step C), else inflate (RFC 5681 3.2 step 4).
      if (!this.#retransmitHole(now)) this.#cc.cwnd += mss;
      return;
    }
    // RFC 6582 3.2 step 2: a fast retransmit only when the ACK covers more than `recover`.
    if (this.#dupAcks === DUPACK_THRESHOLD && seqLe(this.#recover, this.#sndUna)) {
      this.#host.count('fastRetransmits');
      this.#inRecovery = true;
      this.#recover = this.#sndMax;
      const ssthresh = this.#cc.onLoss(seqDiff(this.#sndMax, this.#sndUna));
      this.#highRxt = this.#sndUna;
      if (!this.#retransmitHole(now)) this.#retransmitFirst(now);
      this.#cc.cwnd = ssthresh + DUPACK_THRESHOLD * mss;
      this.#rtxAt = now + this.#rto;
    }
  }

  #sampleRtt(seg: Segment, now: number, ack: number): void {
    let r: number | undefined;
    if (this.#tsOk && seg.tsEcr !== 0) {
      r = seqDiff(this.#tsNow(now), seg.tsEcr);
      if (r < 0 || r > this.#lim.rtoMax * 4) r = undefined;
    } else if (this.#rttSeq !== undefined && seqLt(this.#rttSeq, ack)) {
      r = now - this.#rttStart;
    }
    if (this.#rttSeq !== undefined && seqLt(this.#rttSeq, ack)) this.#rttSeq = undefined;
    if (r === undefined) return;
    // RFC 6298 2.2 / 2.3.
    if (this.#srtt === undefined || this.#rttvar === undefined) {
      this.#srtt = r;
      this.#rttvar = r / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - r);
      this.#srtt = 0.875 * this.#srtt + 0.125 * r;
    }
    this.#rto = Math.min(this.#lim.rtoMax, Math.max(this.#lim.rtoMin, this.#srtt + Math.max(1, 4 * this.#rttvar)));
  }

  // ---- receiving text ----

  #receive(seg: Segment, fin: boolean, rcvWnd: number, now: number): void {
    let seq = seg.seq;
    let data = seg.payload;
    // Trim to the window: before RCV.NXT (a partial duplicate) and past its right edge.
    const front = seqDiff(this.#rcvNxt, seq);
    if (front > 0) {
      data = data.subarray(Math.min(front, data.length));
      seq = this.#rcvNxt;
      if (front > seg.payload.length) fin = false; // the FIN itself was a duplicate
    }
    const room = rcvWnd - seqDiff(seq, this.#rcvNxt);
    if (data.length > room) {
      data = data.subarray(0, Math.max(0, room));
      fin = false;
    }
    if (fin) this.#peerFinSeq = seqAdd(seq, data.length);
    if (data.length === 0 && seq !== this.#rcvNxt) {
      this.#ackNow = true;
      return;
    }
    if (seq === this.#rcvNxt) {
      if (data.length > 0) this.#deliver(data.slice());
      const hadHoles = this.#ooo.length > 0;
      this.#drainOoo();
      this.#segsUnacked++;
      if (hadHoles || this.#segsUnacked >= 2 || data.length === 0) this.#ackNow = true;
    } else {
      this.#insertOoo(seq, data);
      this.#ackNow = true; // RFC 5681 4.2: an out-of-order segment is ACKed at once
    }
    if (this.#peerFinSeq !== undefined && this.#rcvNxt === this.#peerFinSeq) this.#finArrives(now);
  }

  #deliver(chunk: Uint8Array): void {
    this.#rcvNxt = seqAdd(this.#rcvNxt, chunk.length);
    this.#unconsumed += chunk.length;
    this.#host.count('bytesIn', chunk.length);
    this.#pending.push(chunk);
  }

  #insertOoo(seq: number, data: Uint8Array): void {
    const ooo = this.#ooo;
    const end = seqAdd(seq, data.length);
    let i = 0;
    while (i < ooo.length && seqLt(ooo[i]!.seq, seq)) i++;
    // Already held in full by a neighbour?
    const prev = ooo[i - 1];
    if (prev !== undefined && seqLe(end, prev.end)) return;
    const next = ooo[i];
    if (next !== undefined && next.seq === seq && seqLe(end, next.end)) return;
    if (ooo.length >= this.#lim.maxOutOfOrder) {
      this.#host.count('out-of-order-full');
      return;
    }
    // Drop the ones this segment covers.
    let j = i;
    while (j < ooo.length && seqLe(ooo[j]!.end, end)) {
      this.#oooBytes -= ooo[j]!.data.length;
      j++;
    }
    ooo.splice(i, j - i, { seq, end, data: data.slice() });
    this.#oooBytes += data.length;
    this.#lastOooSeq = seq;
  }

  #drainOoo(): void {
    const ooo = this.#ooo;
    let k = 0;
    while (k < ooo.length && seqLe(ooo[k]!.seq, this.#rcvNxt)) {
      const s = ooo[k]!;
      this.#oooBytes -= s.data.length;
      const skip = seqDiff(this.#rcvNxt, s.seq);
      if (skip < s.data.length) this.#deliver(s.data.subarray(skip));
      k++;
    }
    if (k > 0) ooo.splice(0, k);
  }

  #finArrives(now: number): void {
    // RFC 9293 3.10.7.4 eighth.
    this.#rcvNxt = seqAdd(this.#rcvNxt, 1);
    this.#ackNow = true;
    this.#evEnd = true;
    switch (this.#state) {
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
        this.#state = 'CLOSE-WAIT';
        this.#kaAt = this.#keepAlive ? this.#kaAt : Infinity;
        break;
      case 'FIN-WAIT-1':
        if (seqLt(this.#finSeq(), this.#sndUna)) this.#enterTimeWait(now);
        else this.#state = 'CLOSING';
        break;
      case 'FIN-WAIT-2':
        this.#enterTimeWait(now);
        break;
      default:
        break;
    }
  }

  #enterTimeWait(now: number): void {
    this.#state = 'TIME-WAIT';
    this.#rtxAt = Infinity;
    this.#kaAt = Infinity;
    this.#persist = false;
    this.#twAt = now + 2 * this.#lim.msl;
    this.#ooo.length = 0;
    this.#oooBytes = 0;
    this.#buf = new Uint8Array(0);
    this.#bufHead = 0;
    this.#evClose = true; // for the application the connection is over
    this.#schedule();
  }

  // ---- sending ----

  #finSeq(): number {
    return seqAdd(this.#bufSeq, this.#bufLen);
  }

  #effectiveMss(): number {
    return this.#sendMss - (this.#tsOk ? TS_OPTION : 0);
  }

  /** Sends what the windows, Nagle and SWS avoidance allow (RFC 9293 3.8.6.2.1, 3.7.4). */
  #output(now: number): void {
    if (!this.#synchronized() || this.#state === 'TIME-WAIT') return;
    const mss = this.#effectiveMss();
    const finState = this.#state === 'FIN-WAIT-1' || this.#state === 'CLOSING' || this.#state === 'LAST-ACK';
    for (;;) {
      const dataEnd = seqAdd(this.#bufSeq, this.#bufLen);
      const avail = seqDiff(dataEnd, this.#sndNxt);
      const finPending = this.#finQueued && finState && avail >= 0 && seqLe(this.#sndNxt, dataEnd);
      if (avail <= 0 && !finPending) break;
      const win = seqDiff(seqAdd(this.#sndUna, this.#sndWnd), this.#sndNxt);
      // RFC 3042 limited transmit: the first two duplicate ACKs each let one new segment out.
      const limited = this.#inRecovery ? 0 : Math.min(this.#dupAcks, 2) * mss;
      const cwin = seqDiff(seqAdd(this.#sndUna, this.#cc.cwnd + limited), this.#sndNxt);
      const usable = Math.max(0, Math.min(win, cwin));
      let len = Math.min(Math.max(avail, 0), mss, usable);
      if (len < avail) {
        // Not all of it: only full segments, or half the largest window seen (SWS avoidance).
        // With nothing in flight no ACK will come to reopen things: send what the window takes.
        if (len < mss && !(len > 0 && (len >= this.#maxSndWnd / 2 || this.#sndNxt === this.#sndUna))) break;
      } else if (len < mss && len > 0 && !this.#noDelay && !finPending && this.#sndNxt !== this.#sndUna) {
        break; // Nagle: a small tail waits for the outstanding data to be acknowledged
      }
      let fin = finPending && len === Math.max(avail, 0);
      if (len === 0 && !fin) break;
      const retransmission = seqLt(this.#sndNxt, this.#sndMax);
      if (retransmission && this.#sacked.length > 0 && len > 0) {
        // Going back N: the receiver holds the SACKed ranges, skip them.
        const r = this.#sackedAt(this.#sndNxt);
        if (r !== undefined) {
          this.#sndNxt = r;
          continue;
        }
        const next = this.#nextSacked(this.#sndNxt);
        if (next !== undefined && seqDiff(next, this.#sndNxt) < len) {
          len = seqDiff(next, this.#sndNxt);
          fin = false; // the FIN rides only on the segment that ends the data
        }
      }
      this.#sendData(this.#sndNxt, len, fin, now);
      if (!retransmission && this.#rttSeq === undefined && !this.#tsOk) {
        this.#rttSeq = this.#sndNxt;
        this.#rttStart = now;
      }
      this.#sndNxt = seqAdd(this.#sndNxt, len + (fin ? 1 : 0));
      if (seqLt(this.#sndMax, this.#sndNxt)) this.#sndMax = this.#sndNxt;
      if (this.#rtxAt === Infinity || this.#persist) {
        this.#persist = false;
        this.#rtxAt = now + this.#rto;
      }
      if (fin) break;
    }
    // Persist (RFC 9293 3.8.6.1): data waits, the peer's window is closed, nothing is in flight.
    const waiting = seqDiff(seqAdd(this.#bufSeq, this.#bufLen), this.#sndNxt) > 0;
    if (waiting && this.#sndMax === this.#sndUna && this.#sndWnd === 0 && this.#rtxAt === Infinity) {
      this.#persist = true;
      this.#rtxAt = now + this.#rto;
    }
    this.#schedule();
  }

  /** One data (and/or FIN) segment at `seq` from the send ring. */
  #sendData(seq: number, len: number, fin: boolean, now: number): void {
    if (seqLt(seq, this.#sndMax)) {
      this.#host.count('retransmits');
      this.#retransmits++;
    }
    const off = seqDiff(seq, this.#bufSeq);
    const buf = this.#buf;
    const start = (this.#bufHead + off) % Math.max(buf.length, 1);
    const f = this.#ackFields(now, ACK | (fin ? FIN : 0) | (len > 0 && off + len === this.#bufLen ? PSH : 0), seq);
    const bytes = buildSegment(f, this.#pseudo, len, (out, at) => {
      const first = Math.min(len, buf.length - start);
      out.set(buf.subarray(start, start + first), at);
      if (first < len) out.set(buf.subarray(0, len - first), at + first);
    });
    this.#host.count('bytesOut', len);
    this.#emit(bytes);
  }

  #retransmitFirst(now: number): void {
    const dataEnd = seqAdd(this.#bufSeq, this.#bufLen);
    const len = Math.max(0, Math.min(seqDiff(dataEnd, this.#sndUna), this.#effectiveMss()));
    const fin = this.#finQueued && seqAdd(this.#sndUna, len) === dataEnd && seqLt(dataEnd, this.#sndMax);
    if (len === 0 && !fin) return;
    this.#rttSeq = undefined; // Karn
    this.#sendData(this.#sndUna, len, fin, now);
  }

  #retransmitTimeout(now: number): void {
    const lim = this.#lim;
    this.#host.count('timeouts');
    this.#backoffs++;
    const syn = this.#state === 'SYN-SENT' || this.#state === 'SYN-RECEIVED';
    if (this.#backoffs > (syn ? lim.synRetries : lim.maxRetransmits)) {
      if (!syn) this.#sendRst(this.#sndMax, now);
      this.#terminate(this.halfOpen ? undefined : new TcpError('ETIMEDOUT', syn ? 'connection timed out (no SYN-ACK)' : 'connection timed out (retransmissions unanswered)'), now, false);
      return;
    }
    this.#rto = Math.min(lim.rtoMax, this.#rto * 2); // RFC 6298 5.5
    this.#rttSeq = undefined; // Karn
    if (syn) {
      this.#host.count('retransmits');
      this.#retransmits++;
      this.#sendSyn(now);
      this.#rtxAt = now + this.#rto;
      return;
    }
    // RFC 5681 3.1 eq. 4 and RFC 6582 4.2 (no fast retransmit for the losses of this window).
    this.#cc.onTimeout(seqDiff(this.#sndMax, this.#sndUna));
    this.#sacked.length = 0; // RFC 2018 8: after a timeout, forget what was SACKed
    this.#inRecovery = false;
    this.#dupAcks = 0;
    this.#recover = this.#sndMax;
    this.#sndNxt = this.#sndUna; // go back N
    this.#rtxAt = now + this.#rto;
    this.#output(now);
  }

  /** Merges SACK blocks inside (SND.UNA, SND.MAX] into the scoreboard. */
  #takeSack(blocks: readonly number[]): void {
    const sacked = this.#sacked;
    for (let i = 0; i + 1 < blocks.length; i += 2) {
      let l = blocks[i]!;
      let r = blocks[i + 1]!;
      if (seqLt(l, this.#sndUna)) l = this.#sndUna;
      if (seqLt(this.#sndMax, r)) r = this.#sndMax;
      if (!seqLt(l, r)) continue; // a D-SACK (RFC 2883) or a bogus block
      // Insert, then merge with every overlapping or adjacent neighbour.
      let k = 0;
      while (k < sacked.length && seqLt(sacked[k]!, l)) k += 2;
      sacked.splice(k, 0, l, r);
      if (k > 0 && seqLe(l, sacked[k - 1]!)) k -= 2;
      while (k + 2 < sacked.length && seqLe(sacked[k + 2]!, sacked[k + 1]!)) {
        if (seqLt(sacked[k + 1]!, sacked[k + 3]!)) sacked[k + 1] = sacked[k + 3]!;
        sacked.splice(k + 2, 2);
      }
      if (sacked.length > 2 * MAX_SACK_RANGES) sacked.length = 2 * MAX_SACK_RANGES;
    }
  }

  #trimSack(): void {
    const sacked = this.#sacked;
    let k = 0;
    while (k < sacked.length && seqLe(sacked[k + 1]!, this.#sndUna)) k += 2;
    if (k > 0) sacked.splice(0, k);
    if (sacked.length > 0 && seqLt(sacked[0]!, this.#sndUna)) sacked[0] = this.#sndUna;
  }

  /** The right edge of the SACKed range holding `seq`, or undefined. */
  #sackedAt(seq: number): number | undefined {
    const sacked = this.#sacked;
    for (let k = 0; k < sacked.length; k += 2) {
      if (seqLt(seq, sacked[k]!)) return undefined;
      if (seqLt(seq, sacked[k + 1]!)) return sacked[k + 1]!;
    }
    return undefined;
  }

  /** The left edge of the first SACKed range above `seq`, or undefined. */
  #nextSacked(seq: number): number | undefined {
    const sacked = this.#sacked;
    for (let k = 0; k < sacked.length; k += 2) if (seqLt(seq, sacked[k]!)) return sacked[k]!;
    return undefined;
  }

  /**
   * RFC 6675 NextSeg rule 1, simplified: retransmits the lowest hole at or above HighRxt that
   * lies below the highest SACKed byte. Returns false when there is none.
   */
  #retransmitHole(now: number): boolean {
    const sacked = this.#sacked;
    if (sacked.length === 0) return false;
    let seq = seqLt(this.#highRxt, this.#sndUna) ? this.#sndUna : this.#highRxt;
    const covered = this.#sackedAt(seq);
    if (covered !== undefined) seq = covered;
    const next = this.#nextSacked(seq);
    if (next === undefined) return false; // no SACKed data above: not a known hole
    const dataEnd = seqAdd(this.#bufSeq, this.#bufLen);
    const len = Math.min(this.#effectiveMss(), seqDiff(next, seq), seqDiff(dataEnd, seq));
    if (len <= 0) return false;
    this.#rttSeq = undefined; // Karn
    this.#sendData(seq, len, false, now);
    this.#highRxt = seqAdd(seq, len);
    return true;
  }

  #probeWindow(now: number): void {
    // Zero-window probe: one byte past the closed window, sent without advancing SND.NXT.
    const dataEnd = seqAdd(this.#bufSeq, this.#bufLen);
    if (seqDiff(dataEnd, this.#sndNxt) > 0 && this.#sndWnd === 0) {
      this.#sendData(this.#sndNxt, 1, false, now);
      const after = seqAdd(this.#sndNxt, 1);
      if (seqLt(this.#sndMax, after)) this.#sndMax = after;
      this.#rto = Math.min(this.#lim.rtoMax, this.#rto * 2);
      this.#rtxAt = now + this.#rto;
      return;
    }
    this.#persist = false;
    this.#output(now);
  }

  #keepAliveTimeout(now: number): void {
    const lim = this.#lim;
    if (this.#finWait2Limited()) {
      this.#terminate(new TcpError('ETIMEDOUT', 'FIN-WAIT-2 timed out'), now, false);
      return;
    }
    if (!this.#keepAlive || !this.#synchronized()) return;
    if (this.#kaProbes >= lim.keepAliveProbes) {
      this.#sendRst(this.#sndMax, now);
      this.#terminate(new TcpError('ETIMEDOUT', 'connection timed out (keepalive)'), now, false);
      return;
    }
    // RFC 9293 3.8.4: SEG.SEQ = SND.NXT-1 with no data, which elicits an ACK.
    this.#kaProbes++;
    this.#emit(buildSegment(this.#ackFields(now, ACK, seqAdd(this.#sndUna, -1)), this.#pseudo, 0));
    this.#kaAt = now + lim.keepAliveInterval;
  }

  /** Any acceptable segment from the peer: keepalive and FIN-WAIT-2 clocks restart. */
  #idle(now: number): void {
    this.#kaProbes = 0;
    if (this.#finWait2Limited()) this.#kaAt = now + this.#lim.finWait2Timeout;
    else if (this.#keepAlive) this.#kaAt = now + this.#kaIdle;
  }

  #challengeAck(now: number): void {
    if (!this.#host.challengeAllowed(now)) {
      this.#host.count('challenge-ack-limit');
      return;
    }
    this.#host.count('challengeAcks');
    this.#sendAck(now);
  }

  #sendAck(now: number): void {
    if (this.#state === 'CLOSED' || this.#state === 'SYN-SENT') return;
    if (this.#state === 'SYN-RECEIVED') {
      this.#sendSyn(now);
      return;
    }
    // SND.MAX, not SND.NXT: after a go-back-N rewind SND.NXT lies below what the peer has seen,
    // and an ACK with an old sequence number is unacceptable to it (RFC 9293 3.10.7.4 first).
    this.#emit(buildSegment(this.#ackFields(now, ACK, this.#sndMax), this.#pseudo, 0));
  }

  /** Header fields of a synchronized segment: ACK, window, timestamps, SACK; clears pending ACKs. */
  #ackFields(now: number, flags: number, seq: number): SegmentFields {
    this.#ackNow = false;
    this.#segsUnacked = 0;
    this.#ackAt = Infinity;
    this.#lastAckSent = this.#rcvNxt;
    return {
      srcPort: this.local.port,
      dstPort: this.remote.port,
      seq,
      ack: this.#rcvNxt,
      flags,
      window: this.#advertise(),
      tsVal: this.#tsOk ? this.#tsNow(now) : undefined,
      tsEcr: this.#tsRecent,
      sack: this.#sackOk && this.#ooo.length > 0 ? this.#sackBlocks() : undefined,
    };
  }

  /** The window field to send (RFC 9293 3.8.6.2.2 receiver SWS avoidance; RFC 7323 2.3 scaling). */
  #advertise(): number {
    const lim = this.#lim;
    const free = Math.max(0, lim.receiveBuffer - this.#unconsumed);
    let right = seqAdd(this.#rcvNxt, free);
    const grow = seqDiff(right, this.#rcvAdvRight);
    if (grow < 0 || (grow < Math.min(lim.receiveBuffer / 2, this.#ourMss) && seqDiff(this.#rcvAdvRight, this.#rcvNxt) > 0)) right = this.#rcvAdvRight;
    const wnd = Math.max(0, seqDiff(right, this.#rcvNxt));
    const field = Math.min(0xffff, Math.ceil(wnd / 2 ** this.#rcvScale));
    const edge = seqAdd(this.#rcvNxt, field * 2 ** this.#rcvScale);
    if (seqLt(this.#rcvAdvRight, edge)) this.#rcvAdvRight = edge;
    return field;
  }

  /** RFC 2018 4: the block holding the latest out-of-order arrival first, then the rest in order. */
  #sackBlocks(): number[] {
    const max = this.#tsOk ? MAX_SACK_BLOCKS_TS : MAX_SACK_BLOCKS;
    const ranges: number[] = [];
    for (const s of this.#ooo) {
      const n = ranges.length;
      if (n > 0 && seqLe(s.seq, ranges[n - 1]!)) {
        if (seqLt(ranges[n - 1]!, s.end)) ranges[n - 1] = s.end;
      } else {
        ranges.push(s.seq, s.end);
      }
    }
    const blocks: number[] = [];
    let first = -1;
    for (let i = 0; i < ranges.length; i += 2) {
      if (seqLe(ranges[i]!, this.#lastOooSeq) && seqLt(this.#lastOooSeq, ranges[i + 1]!)) first = i;
    }
    if (first >= 0) blocks.push(ranges[first]!, ranges[first + 1]!);
    for (let i = 0; i < ranges.length && blocks.length < 2 * max; i += 2) if (i !== first) blocks.push(ranges[i]!, ranges[i + 1]!);
    return blocks;
  }

  #sendRst(seq: number, now: number): void {
    if (!this.#synchronized()) {
      this.#sendRstTo(seq, undefined);
      return;
    }
    this.#host.count('resetsSent');
    const f = this.#ackFields(now, RST | ACK, seq);
    f.sack = undefined;
    this.#emit(buildSegment(f, this.#pseudo, 0));
  }

  /** A bare RST (<SEQ=seq><CTL=RST>, or with ACK=ack), no options. */
  #sendRstTo(seq: number, ack: number | undefined): void {
    this.#host.count('resetsSent');
    const f: SegmentFields = { srcPort: this.local.port, dstPort: this.remote.port, seq, ack: ack ?? 0, flags: ack === undefined ? RST : RST | ACK, window: 0 };
    this.#emit(buildSegment(f, this.#pseudo, 0));
  }

  #emit(bytes: Uint8Array): void {
    this.#host.emit(this.local.ip, this.remote.ip, bytes);
  }

  #tsNow(now: number): number {
    return (Math.floor(now) + this.#tsOffset) >>> 0;
  }

  // ---- lifecycle ----

  #terminate(err: TcpError | undefined, now: number, silent: boolean): void {
    void now;
    const wasTimeWait = this.#state === 'TIME-WAIT';
    this.#state = 'CLOSED';
    this.#rtxAt = this.#ackAt = this.#kaAt = this.#twAt = Infinity;
    this.#persist = false;
    this.#ooo.length = 0;
    this.#oooBytes = 0;
    this.#buf = new Uint8Array(0);
    this.#bufHead = 0;
    this.#bufLen = 0;
    this.#host.release(this);
    if (!silent && !wasTimeWait) {
      this.#closeErr = err;
      this.#evClose = true;
    }
  }

  #schedule(): void {
    if (this.#state === 'CLOSED') return;
    this.#host.reschedule(this, Math.min(this.#rtxAt, this.#ackAt, this.#kaAt, this.#twAt));
  }

  /** CLOSED (a method, so the compiler does not narrow the state across calls that change it). */
  #gone(): boolean {
    return this.#state === 'CLOSED';
  }

  /** In FIN-WAIT-2 with a finWait2Timeout: the keepalive timer slot holds that limit. */
  #finWait2Limited(): boolean {
    return this.#state === 'FIN-WAIT-2' && this.#lim.finWait2Timeout > 0;
  }

  #synchronized(): boolean {
    const s = this.#state;
    return s !== 'SYN-SENT' && s !== 'SYN-RECEIVED' && s !== 'CLOSED';
  }

  #canWrite(): boolean {
    const s = this.#state;
    return !this.#finQueued && (s === 'SYN-SENT' || s === 'SYN-RECEIVED' || s === 'ESTABLISHED' || s === 'CLOSE-WAIT');
  }

  #inWindow(seq: number, wnd: number): boolean {
    return seqLe(this.#rcvNxt, seq) && seqLt(seq, seqAdd(this.#rcvNxt, wnd));
  }

  #bufPush(data: Uint8Array, n: number): void {
    let buf = this.#buf;
    const need = this.#bufLen + n;
    if (need > buf.length) {
      let cap = Math.max(buf.length, 1024);
      while (cap < need) cap *= 2;
      cap = Math.min(cap, this.#lim.sendBuffer);
      const grown = new Uint8Array(cap);
      const first = Math.min(this.#bufLen, buf.length - this.#bufHead);
      grown.set(buf.subarray(this.#bufHead, this.#bufHead + first), 0);
      if (first < this.#bufLen) grown.set(buf.subarray(0, this.#bufLen - first), first);
      this.#buf = buf = grown;
      this.#bufHead = 0;
    }
    const tail = (this.#bufHead + this.#bufLen) % buf.length;
    const first = Math.min(n, buf.length - tail);
    buf.set(data.subarray(0, first), tail);
    if (first < n) buf.set(data.subarray(first, n), 0);
    this.#bufLen += n;
  }
}
