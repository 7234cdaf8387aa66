// A policy revision compiled for per-packet decisions in bounded time: the bit-vector scheme of
// Lakshman and Stiliadis (SIGCOMM 1998). Each dimension (source prefix, destination prefix,
// protocol + destination port) maps a packet to the set of rules it satisfies, kept as a bitset
// over rule indices; the lowest bit of the three sets' intersection is the first matching rule.
// A lookup is two longest-prefix matches, one table read and at most ceil(rules / 32) word ANDs;
// each set carries a summary bit per nonzero word (aggregated bit vectors, Baboescu and Varghese,
// SIGCOMM 2001), so only words all three sets populate are ANDed.

import { AllowedIps } from '../core/allowed-ips.js';
import { CLASS_ICMP, CLASS_TCP, CLASS_UDP } from './packet-meta.js';
import type { Policy, PolicyPrefix, PolicyRule } from './rules.js';

const PORTS = 65536;

/**
 * Builds the bitsets in one Int32Array allocated once. A set at offset `at` is `summary` words
 * (bit j: word j of the set is nonzero) followed by `words` words of rule bits.
 */
class BitsetPool {
  readonly words: number;
  readonly summary: number;
  readonly bits: Int32Array;
  #next = 0;

  constructor(words: number, sets: number) {
    this.words = words;
    this.summary = Math.ceil(words / 32);
    this.bits = new Int32Array((this.summary + words) * sets);
  }

  /** A new empty set; returns its offset. */
  alloc(): number {
    const at = this.#next;
    this.#next += this.summary + this.words;
    return at;
  }

  /** Adds `rule` to the set at `at`. */
  set(at: number, rule: number): void {
    this.bits[at + this.summary + (rule >>> 5)]! |= 1 << (rule & 31);
  }

  /** Fills in every set's summary from its words; call once all sets are complete. */
  summarize(): void {
    const { bits, summary, words } = this;
    for (let at = 0; at < this.#next; at += summary + words) {
      for (let w = 0; w < words; w++) if (bits[at + summary + w] !== 0) bits[at + (w >>> 5)]! |= 1 << (w & 31);
    }
  }
}

/** The distinct prefixes of one dimension, each with the rules that name it. */
function groupPrefixes(rules: readonly PolicyRule[], pick: (r: PolicyRule) => PolicyPrefix): Array<{ prefix: PolicyPrefix; rules: number[] }> {
  const byText = new Map<string, { prefix: PolicyPrefix; rules: number[] }>();
  rules.forEach((r, i) => {
    const p = pick(r);
    const g = byText.get(p.text);
    if (g === undefined) byText.set(p.text, { prefix: p, rules: [i] });
    else g.rules.push(i);
  });
  // Shorter prefixes first, so every prefix's nearest containing prefix is already in the trie.
  return [...byText.values()].sort((a, b) => a.prefix.cidr - b.prefix.cidr);
}

/**
 * Fills a prefix trie whose values are bitset offsets: each prefix's set holds the rules naming
 * it or any prefix containing it, so one longest-prefix match yields every rule the address meets.
 */
function buildPrefixDimension(pool: BitsetPool, groups: Array<{ prefix: PolicyPrefix; rules: number[] }>): AllowedIps<number> {
  const trie = new AllowedIps<number>();
  const { bits, summary, words } = pool;
  for (const g of groups) {
    const at = pool.alloc();
    const parent = trie.lookup(g.prefix.ip.length === 4 ? 4 : 6, g.prefix.ip, 0);
    if (parent !== undefined) bits.copyWithin(at, parent, parent + summary + words);
    for (const r of g.rules) pool.set(at, r);
    trie.insert(g.prefix.ip, g.prefix.cidr, at);
  }
  return trie;
}

/** Port boundaries of the rules that apply to `proto` (0 always, then each from and to+1). */
function portBoundaries(rules: readonly PolicyRule[], proto: 'tcp' | 'udp'): number[] {
  const cuts = new Set<number>([0]);
  for (const r of rules) {
    if ((r.protocol !== proto && r.protocol !== 'any') || r.ports === undefined) continue;
    cuts.add(r.ports.from);
    if (r.ports.to + 1 < PORTS) cuts.add(r.ports.to + 1);
  }
  return [...cuts].sort((a, b) => a - b);
}

/**
 * Maps every destination port to the offset of the set of `proto` rules it satisfies: a sweep
 * over the port boundaries, one set per elementary interval.
 */
function buildPortDimension(pool: BitsetPool, rules: readonly PolicyRule[], proto: 'tcp' | 'udp', cuts: number[]): Int32Array {
  const table = new Int32Array(PORTS);
  const starts = new Map<number, number[]>();
  const ends = new Map<number, number[]>();
  const current = new Int32Array(pool.words);
  rules.forEach((r, i) => {
    if (r.protocol !== proto && r.protocol !== 'any') return;
    if (r.ports === undefined) {
      current[i >>> 5]! |= 1 << (i & 31);
      return;
    }
    const s = starts.get(r.ports.from);
    if (s === undefined) starts.set(r.ports.from, [i]);
    else s.push(i);
    const e = ends.get(r.ports.to + 1);
    if (e === undefined) ends.set(r.ports.to + 1, [i]);
    else e.push(i);
  });
  for (let k = 0; k < cuts.length; k++) {
    const from = cuts[k]!;
    for (const i of ends.get(from) ?? []) current[i >>> 5]! &= ~(1 << (i & 31));
    for (const i of starts.get(from) ?? []) current[i >>> 5]! |= 1 << (i & 31);
    const at = pool.alloc();
    pool.bits.set(current, at + pool.summary);
    table.fill(at, from, k + 1 < cuts.length ? cuts[k + 1]! : PORTS);
  }
  return table;
}

/**
 * One compiled policy revision. Immutable after construction except for its per-rule counters,
 * so swapping the filter's reference to it is the whole of an atomic update.
 */
export class CompiledPolicy {
  readonly policy: Policy;
  /** Number of 32-bit words per rule set. */
  readonly words: number;
  /** Packets and bytes each rule decided (index = rule index). */
  readonly hitPackets: Float64Array;
  readonly hitBytes: Float64Array;
  readonly #bits: Int32Array;
  readonly #summary: number;
  readonly #allow: Uint8Array;
  readonly #src: AllowedIps<number>;
  readonly #dst: AllowedIps<number>;
  readonly #tcp: Int32Array;
  readonly #udp: Int32Array;
  readonly #icmp: number;
  readonly #other: number;

  /** Compiles `policy` (already validated by parsePolicy). Time and memory O(sets x rules / 32). */
  constructor(policy: Policy) {
    const rules = policy.rules;
    this.policy = policy;
    this.words = Math.max(1, Math.ceil(rules.length / 32));
    this.hitPackets = new Float64Array(rules.length);
    this.hitBytes = new Float64Array(rules.length);
    this.#allow = Uint8Array.from(rules, (r) => (r.action === 'allow' ? 1 : 0));
    const srcGroups = groupPrefixes(rules, (r) => r.source);
    const dstGroups = groupPrefixes(rules, (r) => r.destination);
    const tcpCuts = portBoundaries(rules, 'tcp');
    const udpCuts = portBoundaries(rules, 'udp');
    const pool = new BitsetPool(this.words, srcGroups.length + dstGroups.length + tcpCuts.length + udpCuts.length + 2);
    this.#bits = pool.bits;
    this.#summary = pool.summary;
    this.#src = buildPrefixDimension(pool, srcGroups);
    this.#dst = buildPrefixDimension(pool, dstGroups);
    this.#tcp = buildPortDimension(pool, rules, 'tcp', tcpCuts);
    this.#udp = buildPortDimension(pool, rules, 'udp', udpCuts);
    this.#icmp = pool.alloc();
    this.#other = pool.alloc();
    rules.forEach((r, i) => {
      if (r.ports !== undefined) return;
      if (r.protocol === 'icmp' || r.protocol === 'any') pool.set(this.#icmp, i);
      if (r.protocol === 'any') pool.set(this.#other, i);
    });
    pool.summarize();
  }

  /**
   * The index of the first rule matching a packet, or -1. Addresses are read from `addr` at
   * srcOffset/dstOffset (4 or 16 bytes by family); `klass` is a CLASS_* of packet-meta.ts and
   * `dport` the destination port for CLASS_TCP/CLASS_UDP. Allocates nothing.
   */
  match(family: 4 | 6, addr: Uint8Array, srcOffset: number, dstOffset: number, klass: number, dport: number): number {
    const s = this.#src.lookup(family, addr, srcOffset);
    if (s === undefined) return -1;
    const d = this.#dst.lookup(family, addr, dstOffset);
    if (d === undefined) return -1;
    const p = klass === CLASS_TCP ? this.#tcp[dport]! : klass === CLASS_UDP ? this.#udp[dport]! : klass === CLASS_ICMP ? this.#icmp : this.#other;
    const bits = this.#bits;
    const summary = this.#summary;
    for (let j = 0; j < summary; j++) {
      let candidates = bits[s + j]! & bits[d + j]! & bits[p + j]!;
      while (candidates !== 0) {
        const low = candidates & -candidates;
        candidates ^= low;
        const w = summary + (j << 5) + 31 - Math.clz32(low);
        const x = bits[s + w]! & bits[d + w]! & bits[p + w]!;
        if (x !== 0) return ((w - summary) << 5) + 31 - Math.clz32(x & -x);
      }
    }
    return -1;
  }

  /**
   * The verdict of match result `rule` (-1: no rule, so the default deny) for a packet of
   * `bytes` bytes, counted on the rule. True means allow.
   */
  decide(rule: number, bytes: number): boolean {
    if (rule < 0) return false;
    this.hitPackets[rule]!++;
    this.hitBytes[rule]! += bytes;
    return this.#allow[rule] === 1;
  }

  /** Bytes held by the rule sets and port tables (for snapshots and the bench). */
  get memoryBytes(): number {
    return this.#bits.byteLength + this.#tcp.byteLength + this.#udp.byteLength;
  }
}
