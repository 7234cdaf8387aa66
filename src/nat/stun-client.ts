// STUN Binding client (RFC 8489 section 6.2.1) over any datagram send function, so the same code
// runs from the WireGuard socket (Device.sendRaw + the device's STUN hook) or a plain dgram
// socket. Transaction IDs are random and checked; requests are retransmitted at RTO, 3 RTO, 7 RTO,
// ... (Rc transmissions), then the client waits Rm x RTO before giving up. Unsolicited, stale or
// malformed responses are dropped with a counted reason and never settle a request.

import { randomFillSync } from 'node:crypto';
import { sameEndpoint, type Endpoint } from '../core/endpoint.js';
import {
  STUN_DROP_REASONS,
  STUN_METHOD,
  STUN_TRANSACTION_ID_LENGTH,
  decodeStun,
  encodeBindingRequest,
  looksLikeStun,
  readErrorCode,
  readMappedAddress,
  type StunAttribute,
} from './stun-message.js';

/** Scheduling, injectable so tests run retransmits on a manual clock. */
export interface StunTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Monotonic milliseconds (for elapsed times). */
  now(): number;
}

/** The real timers: setTimeout (unref'd: a pending probe never holds a process open) and performance.now. */
export const systemStunTimers: StunTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  now: () => performance.now(),
};

/** Options of {@link StunClient}. */
export interface StunClientOptions {
  /** Sends one datagram (to the server). What it returns is ignored: loss is what retransmits are for. */
  readonly send: (data: Uint8Array, to: Endpoint) => unknown;
  /** Initial retransmission timeout in ms (RFC 8489: 500 ms on a fixed network; default 500). */
  readonly rtoMs?: number;
  /** Transmissions per request, the first included (RFC 8489 Rc, default 7). */
  readonly rc?: number;
  /** After the last transmission, wait rm x rtoMs for an answer (RFC 8489 Rm, default 16). */
  readonly rm?: number;
  /** Requests in flight at most (default 64); more is API misuse (RangeError). */
  readonly maxPending?: number;
  /** SOFTWARE attribute of requests; none by default (smaller requests). */
  readonly software?: string;
  readonly timers?: StunTimers;
  /** Fills transaction IDs; default node:crypto randomFillSync. */
  readonly fillRandom?: (buf: Uint8Array) => void;
}

/** How a Binding transaction ended. Times are ms since the first transmission. */
export type StunResult =
  | { readonly kind: 'mapped'; readonly server: Endpoint; readonly mapped: Endpoint; readonly elapsedMs: number; readonly transmissions: number }
  | { readonly kind: 'error-response'; readonly server: Endpoint; readonly code: number; readonly reason: string; readonly elapsedMs: number }
  | { readonly kind: 'timeout'; readonly server: Endpoint; readonly elapsedMs: number; readonly transmissions: number }
  | { readonly kind: 'closed'; readonly server: Endpoint };

/** Reasons a received datagram did not settle a transaction (the codec's plus the client's own). */
export const STUN_CLIENT_DROP_REASONS = [
  ...STUN_DROP_REASONS,
  'unknown-transaction', // no request in flight with this ID (late, duplicate or forged)
  'wrong-source', // the ID matches but the answer came from another address than we asked
  'not-a-response', // a request or indication sent to a client
  'not-binding', // another method
  'bad-address', // success without a usable (XOR-)MAPPED-ADDRESS
] as const;
/** One of STUN_CLIENT_DROP_REASONS. */
export type StunClientDropReason = (typeof STUN_CLIENT_DROP_REASONS)[number];

/** Counters of a client; `drops` per reason. */
export interface StunClientCounters {
  requests: number;
  retransmits: number;
  responses: number;
  timeouts: number;
  readonly drops: Record<StunClientDropReason, number>;
}

interface Pending {
  readonly server: Endpoint;
  readonly request: Uint8Array;
  readonly startedAt: number;
  readonly resolve: (r: StunResult) => void;
  transmissions: number;
  timer: unknown;
  readonly rto: number;
  readonly rc: number;
  readonly rm: number;
}

function checkPositiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`expected ${name} to be a positive integer, got ${v}`);
  return v;
}

/** Per-request options of {@link StunClient.request}: extra attributes and timer overrides (a
 *  path probe wants an answer in about two seconds, discovery can wait the RFC's 39.5 s). */
export interface StunRequestOptions {
  readonly attributes?: readonly StunAttribute[];
  readonly rtoMs?: number;
  readonly rc?: number;
  readonly rm?: number;
}

/** A Binding client. Feed every datagram that may be STUN to `receive`. */
export class StunClient {
  readonly counters: StunClientCounters;
  readonly #send: (data: Uint8Array, to: Endpoint) => unknown;
  readonly #rto: number;
  readonly #rc: number;
  readonly #rm: number;
  readonly #maxPending: number;
  readonly #software: string | undefined;
  readonly #timers: StunTimers;
  readonly #fillRandom: (buf: Uint8Array) => void;
  readonly #pending = new Map<string, Pending>();
  #closed = false;

  constructor(options: StunClientOptions) {
    if (typeof options?.send !== 'function') throw new TypeError(`expected send to be a function, got ${typeof options?.send}`);
    this.#send = options.send;
    this.#rto = checkPositiveInt('rtoMs', options.rtoMs ?? 500);
    this.#rc = checkPositiveInt('rc', options.rc ?? 7);
    this.#rm = checkPositiveInt('rm', options.rm ?? 16);
    this.#maxPending = checkPositiveInt('maxPending', options.maxPending ?? 64);
    this.#software = options.software;
    this.#timers = options.timers ?? systemStunTimers;
    this.#fillRandom = options.fillRandom ?? ((b) => void randomFillSync(b));
    const drops = Object.fromEntries(STUN_CLIENT_DROP_REASONS.map((r) => [r, 0])) as Record<StunClientDropReason, number>;
    this.counters = { requests: 0, retransmits: 0, responses: 0, timeouts: 0, drops };
  }

  /** Requests in flight. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Runs one Binding transaction with `server`. Never rejects for network outcomes: the result
   * says mapped / error-response / timeout / closed. Throws RangeError past maxPending or for a non-positive timer override.
   */
  request(server: Endpoint, options: StunRequestOptions = {}): Promise<StunResult> {
    if (this.#closed) return Promise.resolve({ kind: 'closed', server });
    if (this.#pending.size >= this.#maxPending) {
      throw new RangeError(`expected at most ${this.#maxPending} STUN requests in flight, got one more`);
    }
    const rto = options.rtoMs === undefined ? this.#rto : checkPositiveInt('rtoMs', options.rtoMs);
    const rc = options.rc === undefined ? this.#rc : checkPositiveInt('rc', options.rc);
    const rm = options.rm === undefined ? this.#rm : checkPositiveInt('rm', options.rm);
    const tid = new Uint8Array(STUN_TRANSACTION_ID_LENGTH);
    let key: string;
    do {
      this.#fillRandom(tid);
      key = Buffer.from(tid).toString('latin1');
    } while (this.#pending.has(key));
    const request = encodeBindingRequest(tid, {
      ...(this.#software === undefined ? {} : { software: this.#software }),
      ...(options.attributes === undefined ? {} : { attributes: options.attributes }),
    });
    const target = { address: server.address, port: server.port };
    return new Promise<StunResult>((resolve) => {
      const p: Pending = { server: target, request, startedAt: this.#timers.now(), resolve, transmissions: 0, timer: undefined, rto, rc, rm };
      this.#pending.set(key, p);
      this.counters.requests++;
      this.#transmit(key, p);
    });
  }

  // RFC 8489 section 6.2.1: transmissions at 0, RTO, 3 RTO, 7 RTO, ...; after the Rc-th, Rm x RTO.
  #transmit(key: string, p: Pending): void {
    if (p.transmissions > 0) this.counters.retransmits++;
    p.transmissions++;
    this.#send(p.request, p.server);
    const last = p.transmissions >= p.rc;
    const wait = last ? p.rm * p.rto : p.rto * 2 ** (p.transmissions - 1);
    p.timer = this.#timers.setTimeout(() => {
      if (this.#pending.get(key) !== p) return;
      if (!last) return this.#transmit(key, p);
      this.counters.timeouts++;
      this.#settle(key, p, { kind: 'timeout', server: p.server, elapsedMs: this.#elapsed(p), transmissions: p.transmissions });
    }, wait);
  }

  #elapsed(p: Pending): number {
    return this.#timers.now() - p.startedAt;
  }

  #settle(key: string, p: Pending, result: StunResult): void {
    this.#pending.delete(key);
    this.#timers.clearTimeout(p.timer);
    p.resolve(result);
  }

  #drop(reason: StunClientDropReason): true {
    this.counters.drops[reason]++;
    return true;
  }

  /**
   * Offers a received datagram. Returns false when it is not STUN at all (for the caller to
   * handle), true when it was taken: it settled a transaction or was dropped and counted.
   */
  receive(data: Uint8Array, from: Endpoint): boolean {
    if (!looksLikeStun(data)) return false;
    const decoded = decodeStun(data);
    if (!decoded.ok) return this.#drop(decoded.reason);
    const m = decoded.message;
    if (m.cls === 'request' || m.cls === 'indication') return this.#drop('not-a-response');
    const key = Buffer.from(m.transactionId).toString('latin1');
    const p = this.#pending.get(key);
    if (p === undefined) return this.#drop('unknown-transaction');
    if (!sameEndpoint(from, p.server)) return this.#drop('wrong-source');
    if (m.method !== STUN_METHOD.binding) return this.#drop('not-binding');
    if (m.cls === 'error') {
      const err = readErrorCode(m) ?? { code: 500, reason: 'error response without a valid ERROR-CODE' };
      this.counters.responses++;
      this.#settle(key, p, { kind: 'error-response', server: p.server, code: err.code, reason: err.reason, elapsedMs: this.#elapsed(p) });
      return true;
    }
    const mapped = readMappedAddress(m);
    if (typeof mapped === 'string') return this.#drop('bad-address');
    this.counters.responses++;
    this.#settle(key, p, { kind: 'mapped', server: p.server, mapped, elapsedMs: this.#elapsed(p), transmissions: p.transmissions });
    return true;
  }

  /** Ends every transaction with 'closed' and refuses new ones. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const [key, p] of [...this.#pending]) this.#settle(key, p, { kind: 'closed', server: p.server });
  }
}
