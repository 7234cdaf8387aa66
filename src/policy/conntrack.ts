// Connection tracking for the policy filter: a fixed-size table of flows so replies to an
// allowed flow pass without a rule of their own. Typed arrays, chained hashing with a symmetric
// hash (a flow and its reply land in one bucket), and one recency list per state: every entry
// in a list has the same timeout, so each list's tail expires first and expired entries are
// found in O(1). Time comes in as `now` (ms); nothing here reads a clock.

import type { PacketMeta } from './packet-meta.js';

/** Flow states; each is also the timeout class of the entry. */
export const CT_TCP_SYN_SENT = 0;
export const CT_TCP_ESTABLISHED = 1;
export const CT_TCP_CLOSING = 2;
export const CT_UDP_NEW = 3;
export const CT_UDP_ASSURED = 4;
export const CT_ICMP_ECHO = 5;
const STATES = 6;

/** Names of the states, indexed by state, for snapshots. */
export const CT_STATE_NAMES = ['tcp-syn-sent', 'tcp-established', 'tcp-closing', 'udp-new', 'udp-assured', 'icmp-echo'] as const;

/** Idle timeouts in milliseconds per state. */
export interface ConntrackTimeouts {
  /** SYN seen, no SYN-ACK yet. */
  readonly tcpSynSent: number;
  /** Handshake answered (or a flow picked up mid-stream). */
  readonly tcpEstablished: number;
  /** A FIN seen in either direction. */
  readonly tcpClosing: number;
  /** UDP seen one way only. */
  readonly udpNew: number;
  /** UDP seen both ways. */
  readonly udpAssured: number;
  /** ICMP/ICMPv6 echo, by id. */
  readonly icmpEcho: number;
}

/** Defaults: close to Linux nf_conntrack, with established TCP cut to a day so idle flows age out. */
export const DEFAULT_CONNTRACK_TIMEOUTS: ConntrackTimeouts = {
  tcpSynSent: 60_000,
  tcpEstablished: 86_400_000,
  tcpClosing: 120_000,
  udpNew: 30_000,
  udpAssured: 180_000,
  icmpEcho: 30_000,
};

/** Counters of the table. */
export interface ConntrackCounters {
  created: number;
  /** Entries reclaimed after their timeout. */
  expired: number;
  /** Entries removed by RST or by the filter (revoked by a new policy). */
  removed: number;
}

const KEY = 10; // family<<8|proto, src x4, dst x4, sport<<16|dport
const NONE = -1;

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function endHash(w0: number, w1: number, w2: number, w3: number, port: number): number {
  let h = Math.imul(w0, 0xcc9e2d51) ^ Math.imul(w1, 0x1b873593);
  h = Math.imul(h ^ w2, 0xcc9e2d51) ^ Math.imul(w3 ^ port, 0x1b873593);
  return fmix(h);
}

/**
 * A bounded flow table. An entry is keyed by the 5-tuple of the flow's first packet and the
 * direction it travelled (0 outbound, 1 inbound); a packet matches it either the same way round
 * in the same direction, or reversed (a reply) in the other direction.
 */
export class Conntrack {
  readonly max: number;
  readonly timeouts: ConntrackTimeouts;
  readonly counters: ConntrackCounters = { created: 0, expired: 0, removed: 0 };
  readonly #timeoutOf: Float64Array;
  readonly #seed: number;
  readonly #mask: number;
  readonly #buckets: Int32Array;
  readonly #chain: Int32Array; // next in bucket, or next free
  readonly #keys: Int32Array;
  readonly #dir: Uint8Array;
  readonly #state: Uint8Array;
  readonly #gen: Int32Array;
  readonly #expires: Float64Array;
  readonly #prev: Int32Array;
  readonly #next: Int32Array;
  readonly #head = new Int32Array(STATES).fill(NONE);
  readonly #tail = new Int32Array(STATES).fill(NONE);
  readonly #perState = new Int32Array(STATES);
  #free: number;
  #size = 0;

  /**
   * A table of at most `max` flows (1..2^24). `hashSeed` should be random per process so flows
   * cannot be chosen to collide. Throws RangeError for a bad max or a negative/NaN timeout.
   */
  constructor(max: number, timeouts: ConntrackTimeouts = DEFAULT_CONNTRACK_TIMEOUTS, hashSeed = 0x2545f491) {
    if (!Number.isInteger(max) || max < 1 || max > 1 << 24) throw new RangeError(`expected conntrack max in 1..16777216, got ${max}`);
    const t = [timeouts.tcpSynSent, timeouts.tcpEstablished, timeouts.tcpClosing, timeouts.udpNew, timeouts.udpAssured, timeouts.icmpEcho];
    for (const v of t) if (!(v >= 0)) throw new RangeError(`expected conntrack timeouts >= 0 ms, got ${v}`);
    this.max = max;
    this.timeouts = timeouts;
    this.#timeoutOf = Float64Array.from(t);
    this.#seed = hashSeed | 0;
    let buckets = 1;
    while (buckets < max) buckets *= 2;
    this.#mask = buckets - 1;
    this.#buckets = new Int32Array(buckets).fill(NONE);
    this.#chain = new Int32Array(max);
    for (let i = 0; i < max; i++) this.#chain[i] = i + 1 < max ? i + 1 : NONE;
    this.#free = 0;
    this.#keys = new Int32Array(max * KEY);
    this.#dir = new Uint8Array(max);
    this.#state = new Uint8Array(max);
    this.#gen = new Int32Array(max);
    this.#expires = new Float64Array(max);
    this.#prev = new Int32Array(max);
    this.#next = new Int32Array(max);
  }

  /** Live entries (some may have expired and not been reclaimed yet). */
  get size(): number {
    return this.#size;
  }

  /** Entries per state (CT_* index), reclaimed or not. */
  countIn(state: number): number {
    return this.#perState[state] ?? 0;
  }

  #bucket(m: PacketMeta): number {
    const h = endHash(m.s0, m.s1, m.s2, m.s3, m.sport) + endHash(m.d0, m.d1, m.d2, m.d3, m.dport);
    return fmix(h ^ Math.imul(m.proto + 1, 0x9e3779b1) ^ this.#seed) & this.#mask;
  }

  /**
   * Finds the flow of packet `m` travelling in direction `dir` (0 out, 1 in). Returns
   * `entry * 2 + 1` for a reply, `entry * 2` for the original direction, or -1. An expired
   * entry found on the way is reclaimed and not returned.
   */
  lookup(m: PacketMeta, dir: number, now: number): number {
    const k = this.#keys;
    const fp = (m.family << 8) | m.proto;
    for (let e = this.#buckets[this.#bucket(m)]!; e !== NONE; e = this.#chain[e]!) {
      const o = e * KEY;
      if (k[o] !== fp) continue;
      let hit = -1;
      if (
        this.#dir[e] === dir &&
        k[o + 1] === m.s0 && k[o + 2] === m.s1 && k[o + 3] === m.s2 && k[o + 4] === m.s3 &&
        k[o + 5] === m.d0 && k[o + 6] === m.d1 && k[o + 7] === m.d2 && k[o + 8] === m.d3 &&
        k[o + 9] === ((m.sport << 16) | m.dport)
      ) {
        hit = e * 2;
      } else if (
        this.#dir[e] !== dir &&
        k[o + 1] === m.d0 && k[o + 2] === m.d1 && k[o + 3] === m.d2 && k[o + 4] === m.d3 &&
        k[o + 5] === m.s0 && k[o + 6] === m.s1 && k[o + 7] === m.s2 && k[o + 8] === m.s3 &&
        k[o + 9] === ((m.dport << 16) | m.sport)
      ) {
        hit = e * 2 + 1;
      }
      if (hit < 0) continue;
      if (this.#expires[e]! <= now) {
        this.counters.expired++;
        this.remove(e, false);
        return -1;
      }
      return hit;
    }
    return -1;
  }

  /**
   * Adds the flow of `m` (first seen in direction `dir`) in `state`, validated against policy
   * generation `gen`. Reclaims expired entries first; returns the entry, or -1 when the table
   * is full of live flows (the caller drops the packet: new flows never push out live ones).
   */
  insert(m: PacketMeta, dir: number, state: number, gen: number, now: number): number {
    this.reclaim(now);
    const e = this.#free;
    if (e === NONE) return -1;
    this.#free = this.#chain[e]!;
    const o = e * KEY;
    const k = this.#keys;
    k[o] = (m.family << 8) | m.proto;
    k[o + 1] = m.s0;
    k[o + 2] = m.s1;
    k[o + 3] = m.s2;
    k[o + 4] = m.s3;
    k[o + 5] = m.d0;
    k[o + 6] = m.d1;
    k[o + 7] = m.d2;
    k[o + 8] = m.d3;
    k[o + 9] = (m.sport << 16) | m.dport;
    this.#dir[e] = dir;
    this.#gen[e] = gen;
    const b = this.#bucket(m);
    this.#chain[e] = this.#buckets[b]!;
    this.#buckets[b] = e;
    this.#state[e] = state;
    this.#perState[state]!++;
    this.#pushHead(e, state, now);
    this.#size++;
    this.counters.created++;
    return e;
  }

  /** Reclaims every expired entry (each list's tail expires first, so this stops at a live one). */
  reclaim(now: number): void {
    for (let s = 0; s < STATES; s++) {
      for (let e = this.#tail[s]!; e !== NONE && this.#expires[e]! <= now; e = this.#tail[s]!) {
        this.counters.expired++;
        this.remove(e, false);
      }
    }
  }

  /** Moves entry `e` to `state` and restarts its idle timeout at `now`. */
  touch(e: number, state: number, now: number): void {
    const old = this.#state[e]!;
    this.#unlinkList(e, old);
    if (old !== state) {
      this.#perState[old]!--;
      this.#perState[state]!++;
      this.#state[e] = state;
    }
    this.#pushHead(e, state, now);
  }

  /** Removes entry `e` (counted as `removed` when `counted`). */
  remove(e: number, counted = true): void {
    const k = this.#keys;
    const o = e * KEY;
    // Recompute the bucket from the stored key (symmetric, so orientation does not matter).
    const h = endHash(k[o + 1]!, k[o + 2]!, k[o + 3]!, k[o + 4]!, k[o + 9]! >>> 16) + endHash(k[o + 5]!, k[o + 6]!, k[o + 7]!, k[o + 8]!, k[o + 9]! & 0xffff);
    const b = fmix(h ^ Math.imul((k[o]! & 0xff) + 1, 0x9e3779b1) ^ this.#seed) & this.#mask;
    let p = NONE;
    for (let x = this.#buckets[b]!; x !== NONE; p = x, x = this.#chain[x]!) {
      if (x !== e) continue;
      if (p === NONE) this.#buckets[b] = this.#chain[e]!;
      else this.#chain[p] = this.#chain[e]!;
      break;
    }
    const s = this.#state[e]!;
    this.#unlinkList(e, s);
    this.#perState[s]!--;
    this.#chain[e] = this.#free;
    this.#free = e;
    this.#size--;
    if (counted) this.counters.removed++;
  }

  /** State (CT_*) of entry `e`. */
  stateOf(e: number): number {
    return this.#state[e]!;
  }

  /** Policy generation entry `e` was last validated against. */
  genOf(e: number): number {
    return this.#gen[e]!;
  }

  /** Records that entry `e` is valid under policy generation `gen`. */
  setGen(e: number, gen: number): void {
    this.#gen[e] = gen;
  }

  /**
   * Writes the original direction of entry `e` for re-evaluation: source address at out[0..],
   * destination at out[16..] (out: 32 bytes). Returns family * 65536 + destination port.
   */
  original(e: number, out: Uint8Array): number {
    const k = this.#keys;
    const o = e * KEY;
    const family = k[o]! >>> 8;
    for (let i = 0; i < 4; i++) {
      const s = k[o + 1 + i]!;
      const d = k[o + 5 + i]!;
      out[i * 4] = s >>> 24;
      out[i * 4 + 1] = s >>> 16;
      out[i * 4 + 2] = s >>> 8;
      out[i * 4 + 3] = s;
      out[16 + i * 4] = d >>> 24;
      out[16 + i * 4 + 1] = d >>> 16;
      out[16 + i * 4 + 2] = d >>> 8;
      out[16 + i * 4 + 3] = d;
    }
    return family * 65536 + (k[o + 9]! & 0xffff);
  }

  /** IP protocol number of entry `e`. */
  protoOf(e: number): number {
    return this.#keys[e * KEY]! & 0xff;
  }

  /** Removes every entry. */
  clear(): void {
    for (let s = 0; s < STATES; s++) while (this.#tail[s] !== NONE) this.remove(this.#tail[s]!, false);
  }

  #pushHead(e: number, state: number, now: number): void {
    this.#expires[e] = now + this.#timeoutOf[state]!;
    const h = this.#head[state]!;
    this.#prev[e] = NONE;
    this.#next[e] = h;
    if (h !== NONE) this.#prev[h] = e;
    else this.#tail[state] = e;
    this.#head[state] = e;
  }

  #unlinkList(e: number, state: number): void {
    const p = this.#prev[e]!;
    const n = this.#next[e]!;
    if (p !== NONE) this.#next[p] = n;
    else this.#head[state] = n;
    if (n !== NONE) this.#prev[n] = p;
    else this.#tail[state] = p;
  }
}
