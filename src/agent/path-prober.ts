// Path probing per peer (docs/nat.md "Path probing"): authenticated pings
// (src/nat/path-probe.ts) from the WireGuard port to each of a peer's endpoint candidates, the
// best answering one chosen as the peer's direct endpoint.
//  - A round: PINGS_PER_ROUND pings to every candidate (at most MAX_CANDIDATES), PING_SPACING_MS
//    apart; a candidate that answered none of them by the round's end is dead. A round starts when
//    the candidate list changes, every FULL_REPROBE_MS, and when the chosen path misses a keepalive.
//  - Between rounds one keepalive ping to the chosen candidate every KEEPALIVE_MS; unanswered
//    within PONG_TIMEOUT_MS, the chosen one is dead: the next best live one takes over at once
//    and a round starts.
//  - Choice: the lowest RTT among live candidates, except that a private (LAN) address beats a
//    public one whose RTT is within CLOSE_RTT_MS; the current choice is kept unless another is
//    better by that rule (no flapping between equals). The first answer chooses at once (fast
//    first packet); a better one that answers later takes over.
//  - Peer-reflexive candidates: an authenticated ping from an address the peer did not list (a NAT
//    mapping towards us that differs from the one its STUN server saw) is learned as a candidate
//    and probed like the others (at most MAX_LEARNED per peer; when full, the oldest one not in
//    use is forgotten). A stranger cannot plant one: only pings that open with the pair's key
//    count, replays are dropped, and a learned address is chosen only once it answers our own
//    authenticated pings.
// The prober only reports choices (onChange); PathManager (relay-client.ts) owns the endpoint
// and the relay fallback. Pings from peers are answered with a pong to their source.

import { randomFillSync } from 'node:crypto';
import type { CryptoProvider } from '../core/crypto.js';
import { parseIp } from '../core/ip.js';
import { formatEndpoint, plainAddress, sameEndpoint } from '../core/endpoint.js';
import type { Endpoint, SendResult } from '../io/bind.js';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { hex, PROBE_TX_ID_LENGTH, ProbeCodec, type ProbeDropReason } from '../nat/path-probe.js';
import { systemStunTimers, type StunTimers } from '../nat/stun-client.js';

/** Most candidates probed per peer (the control plane's limit too). */
export const MAX_CANDIDATES = 16;
/** Pings per candidate in one round, and their spacing (ms). */
export const PINGS_PER_ROUND = 3;
export const PING_SPACING_MS = 500;
/** How long a ping waits for its pong (ms). */
export const PONG_TIMEOUT_MS = 2000;
/** Keepalive ping period of the chosen path (ms). */
export const KEEPALIVE_MS = 5000;
/** Full re-probe period (ms). */
export const FULL_REPROBE_MS = 30_000;
/** RTTs this close (ms) count as equal, and then a private address wins. */
export const CLOSE_RTT_MS = 5;
/** Peer-reflexive candidates (learned from a peer's pings) kept per peer. */
export const MAX_LEARNED = 4;
/** Outstanding pings kept per peer; older ones are forgotten (their pongs then count as unsolicited). */
const MAX_PENDING = 4 * MAX_CANDIDATES;

/** What the prober needs of a device (structurally, src/device/device.ts's Device). */
export interface ProbeSocket {
  setProbeHandler(handler: ((data: Uint8Array, from: Endpoint) => void) | undefined): void;
  sendRaw(data: Uint8Array, to: Endpoint): SendResult;
}

/** How a chosen path runs: to a private (LAN) address or a public one. */
export type DirectKind = 'direct-lan' | 'direct-public';

/** One peer's probing state, for status documents. */
export interface ProbedPath {
  /** The chosen candidate, undefined while none answers. */
  readonly endpoint: Endpoint | undefined;
  readonly kind: DirectKind | undefined;
  /** Smoothed RTT of the chosen candidate (ms). */
  readonly rttMs: number | undefined;
  /** Candidates probed (listed and learned), and how many of them answer. */
  readonly candidates: number;
  /** Of those, learned from the peer's pings (peer-reflexive). */
  readonly learned: number;
  readonly live: number;
  /** Our address as the peer last saw it (from its pongs), a reflexive hint. */
  readonly observed: Endpoint | undefined;
}

/** Options of {@link PathProber}. */
export interface PathProberOptions {
  readonly socket: ProbeSocket;
  readonly crypto: CryptoProvider;
  /** Our 32-byte WireGuard static private key (copied). */
  readonly privateKey: Uint8Array;
  /** Called when a peer's chosen candidate changes (undefined: none answers any more). */
  readonly onChange: (publicKey: string, endpoint: Endpoint | undefined, rttMs: number | undefined) => void;
  /** Monotonic time and timers (tests: a manual scheduler). */
  readonly timers?: StunTimers;
  /** Wall-clock ms, the floor of the probe counter. */
  readonly wallMs?: () => number;
  /** Fills tx ids and nonces; default node:crypto randomFillSync. */
  readonly fillRandom?: (buf: Uint8Array) => void;
  readonly log?: Logger;
}

interface Candidate {
  readonly endpoint: Endpoint;
  readonly private: boolean;
  rttMs: number | undefined;
  live: boolean;
  lastPongAt: number;
}

interface Peer {
  readonly publicKey: string;
  readonly key: Uint8Array;
  /** `listed`, then `learned` (derived: #rebuild). */
  candidates: Candidate[];
  /** The control plane's list (deduplicated, at most MAX_CANDIDATES). */
  listed: Candidate[];
  /** Peer-reflexive candidates, oldest first (at most MAX_LEARNED), none of them listed. */
  learned: Candidate[];
  chosen: Candidate | undefined;
  observed: Endpoint | undefined;
  readonly pending: Map<string, { candidate: Candidate; sentAt: number }>;
  /** Start of the running round; -Infinity when none runs. */
  roundAt: number;
  lastRoundAt: number;
  readonly timers: Set<unknown>;
}

/** True for RFC 1918 / RFC 4193 / link-local / loopback addresses: a path that stays on the LAN (or host). */
export function isPrivateAddress(address: string): boolean {
  const ip = parseIp(address);
  if (ip === undefined) return false;
  if (ip.length === 4) {
    const [a, b] = [ip[0]!, ip[1]!];
    return a === 10 || a === 127 || (a === 172 && (b & 0xf0) === 16) || (a === 192 && b === 168) || (a === 169 && b === 254);
  }
  if (ip.subarray(0, 15).every((x) => x === 0) && ip[15] === 1) return true;
  return (ip[0]! & 0xfe) === 0xfc || (ip[0] === 0xfe && (ip[1]! & 0xc0) === 0x80);
}

// `a` should replace `b`: clearly faster, or close and on the LAN while `b` is not.
function better(a: Candidate, b: Candidate): boolean {
  const ra = a.rttMs ?? Infinity;
  const rb = b.rttMs ?? Infinity;
  if (Math.abs(ra - rb) <= CLOSE_RTT_MS) return a.private && !b.private;
  return ra < rb;
}

/** Probes every peer's candidates and reports the best answering one. Close it to stop its timers. */
export class PathProber {
  readonly #o: PathProberOptions;
  readonly #timers: StunTimers;
  readonly #wallMs: () => number;
  readonly #fill: (buf: Uint8Array) => void;
  readonly #log: Logger;
  readonly #codec: ProbeCodec;
  readonly #peers = new Map<string, Peer>();
  readonly #byKeyHex = new Map<string, Peer>();
  #closed = false;
  /** Probe traffic; drops of the codec are in `drops`. */
  readonly counters = { pingsSent: 0, pingsAnswered: 0, pongsReceived: 0, unsolicitedPongs: 0, sendFailed: 0, switches: 0, learned: 0 };

  constructor(options: PathProberOptions) {
    this.#o = options;
    this.#timers = options.timers ?? systemStunTimers;
    this.#wallMs = options.wallMs ?? Date.now;
    this.#fill = options.fillRandom ?? defaultFill;
    this.#log = options.log ?? silentLogger;
    this.#codec = new ProbeCodec(options.crypto, options.privateKey, this.#fill);
    options.socket.setProbeHandler((data, from) => this.receive(data, from));
  }

  /** Probe datagrams refused, per reason (codec reasons plus pongs to no outstanding ping). */
  drops(): Record<ProbeDropReason | 'unsolicited', number> {
    return { ...this.#codec.drops, unsolicited: this.counters.unsolicitedPongs };
  }

  /**
   * Sets a peer's candidates (base64 public key; at most MAX_CANDIDATES used, duplicates
   * dropped). A new peer or a changed list starts a round. An empty list stops probing the peer
   * but keeps answering its pings. Throws TypeError for a key that is not 32 bytes of base64.
   */
  setPeer(publicKey: string, candidates: readonly Endpoint[]): void {
    if (this.#closed) return;
    let p = this.#peers.get(publicKey);
    if (p === undefined) {
      const key = new Uint8Array(Buffer.from(publicKey, 'base64'));
      if (key.length !== 32) throw new TypeError(`expected a base64 32-byte public key, got ${JSON.stringify(publicKey)}`);
      if (!this.#codec.addPeer(key)) return; // our own key or a low-order point: nothing to probe
      p = { publicKey, key, candidates: [], listed: [], learned: [], chosen: undefined, observed: undefined, pending: new Map(), roundAt: -Infinity, lastRoundAt: -Infinity, timers: new Set() };
      this.#peers.set(publicKey, p);
      this.#byKeyHex.set(hex(key), p);
      this.#every(p, KEEPALIVE_MS, () => this.#tick(p!));
    }
    const list: Endpoint[] = [];
    for (const c of candidates) if (list.length < MAX_CANDIDATES && !list.some((e) => sameEndpoint(e, c))) list.push(c);
    const same = list.length === p.listed.length && list.every((e, i) => sameEndpoint(e, p!.listed[i]!.endpoint));
    if (same) return;
    // Known candidates (listed or learned) keep what was measured; the chosen one stays if still there.
    const old = p.candidates;
    p.listed = list.map((e) => old.find((c) => sameEndpoint(c.endpoint, e)) ?? newCandidate(e));
    p.learned = p.learned.filter((c) => !p.listed.includes(c)); // listed now: an ordinary candidate
    this.#rebuild(p);
    if (p.candidates.length > 0) this.#round(p);
  }

  // candidates = listed, then learned; a chosen one no longer there is dropped.
  #rebuild(p: Peer): void {
    p.candidates = [...p.listed, ...p.learned];
    if (p.chosen !== undefined && !p.candidates.includes(p.chosen)) this.#choose(p, true);
  }

  // An authenticated ping came from `from`: a peer-reflexive candidate when not known yet.
  #learn(p: Peer, from: Endpoint): void {
    if (p.candidates.some((c) => sameEndpoint(c.endpoint, from))) return;
    // A dual-stack socket spells an IPv4 source as ::ffff:a.b.c.d; keep the IPv4 spelling.
    const c = newCandidate({ address: plainAddress(from.address), port: from.port });
    p.learned.push(c);
    // Full: forget the oldest one, but never the path in use.
    if (p.learned.length > MAX_LEARNED) p.learned.splice(p.learned.findIndex((x) => x !== p.chosen), 1);
    this.counters.learned++;
    this.#log.info(`peer ${p.publicKey.slice(0, 8)}: learned candidate ${formatEndpoint(from)} from its ping`);
    this.#rebuild(p);
    if (p.roundAt === -Infinity) this.#round(p);
    else this.#ping(p, c, this.#timers.now());
  }

  /** Stops probing peers not in `keep` (base64 keys) and forgets their keys. */
  retain(keep: ReadonlySet<string>): void {
    for (const p of [...this.#peers.values()]) {
      if (keep.has(p.publicKey)) continue;
      for (const t of p.timers) this.#timers.clearTimeout(t);
      this.#peers.delete(p.publicKey);
      this.#byKeyHex.delete(hex(p.key));
      this.#codec.removePeer(p.key);
    }
  }

  /** A peer's probing state, undefined for an unknown peer. */
  pathOf(publicKey: string): ProbedPath | undefined {
    const p = this.#peers.get(publicKey);
    if (p === undefined) return undefined;
    const c = p.chosen;
    return {
      endpoint: c?.endpoint,
      kind: c === undefined ? undefined : c.private ? 'direct-lan' : 'direct-public',
      rttMs: c?.rttMs,
      candidates: p.candidates.length,
      learned: p.learned.length,
      live: p.candidates.filter((x) => x.live).length,
      observed: p.observed,
    };
  }

  /** A probe datagram from the device (first byte 0xF0). Never throws on hostile input. */
  receive(data: Uint8Array, from: Endpoint): void {
    if (this.#closed) return;
    const r = this.#codec.open(data);
    if (r.kind === 'drop') return;
    const p = this.#byKeyHex.get(hex(r.peer));
    if (p === undefined) return;
    if (r.kind === 'ping') {
      this.counters.pingsAnswered++;
      this.#send(this.#codec.pong(p.key, r.txId, from, this.#wallMs()), from);
      this.#learn(p, from);
      return;
    }
    const tx = hex(r.txId);
    const sent = p.pending.get(tx);
    if (sent === undefined) {
      this.counters.unsolicitedPongs++;
      return;
    }
    p.pending.delete(tx);
    this.counters.pongsReceived++;
    const now = this.#timers.now();
    const c = sent.candidate;
    const rtt = now - sent.sentAt;
    c.rttMs = c.rttMs === undefined ? rtt : (c.rttMs + rtt) / 2;
    c.live = true;
    c.lastPongAt = now;
    p.observed = r.observed;
    this.#choose(p, false);
  }

  #tick(p: Peer): void {
    const now = this.#timers.now();
    if (p.roundAt !== -Infinity || p.candidates.length === 0) return;
    if (now - p.lastRoundAt >= FULL_REPROBE_MS || p.chosen === undefined) {
      this.#round(p);
      return;
    }
    const c = p.chosen;
    this.#ping(p, c, now);
    this.#after(p, PONG_TIMEOUT_MS, () => {
      if (c.lastPongAt >= now || p.chosen !== c) return;
      this.#log.info(`peer ${p.publicKey.slice(0, 8)}: path ${formatEndpoint(c.endpoint)} stopped answering`);
      c.live = false;
      this.#choose(p, true);
      if (p.roundAt === -Infinity) this.#round(p);
    });
  }

  #round(p: Peer): void {
    const start = this.#timers.now();
    p.roundAt = p.lastRoundAt = start;
    for (let i = 0; i < PINGS_PER_ROUND; i++) {
      const send = (): void => {
        const now = this.#timers.now();
        for (const c of p.candidates) this.#ping(p, c, now);
      };
      if (i === 0) send();
      else this.#after(p, i * PING_SPACING_MS, send);
    }
    this.#after(p, (PINGS_PER_ROUND - 1) * PING_SPACING_MS + PONG_TIMEOUT_MS, () => {
      p.roundAt = -Infinity;
      for (const c of p.candidates) if (c.lastPongAt < start) c.live = false;
      this.#choose(p, true);
    });
  }

  #ping(p: Peer, c: Candidate, now: number): void {
    const txId = new Uint8Array(PROBE_TX_ID_LENGTH);
    this.#fill(txId);
    // Oldest first (insertion order): forget pings past their timeout, and the oldest when full.
    for (const [tx, s] of p.pending) {
      if (p.pending.size < MAX_PENDING && now - s.sentAt <= PONG_TIMEOUT_MS) break;
      p.pending.delete(tx);
    }
    p.pending.set(hex(txId), { candidate: c, sentAt: now });
    this.counters.pingsSent++;
    this.#send(this.#codec.ping(p.key, txId, this.#wallMs()), c.endpoint);
  }

  #send(data: Uint8Array, to: Endpoint): void {
    if (this.#o.socket.sendRaw(data, to) === 'dropped') this.counters.sendFailed++;
  }

  // Picks the best live candidate; `dropDead`: the current choice may have died, so re-pick even
  // if nothing is better.
  #choose(p: Peer, dropDead: boolean): void {
    let best: Candidate | undefined;
    for (const c of p.candidates) if (c.live && (best === undefined || better(c, best))) best = c;
    const cur = p.chosen;
    if (cur !== undefined && cur.live && p.candidates.includes(cur) && (best === undefined || !better(best, cur))) best = cur;
    if (!dropDead && best === undefined) return;
    if (best === cur) return;
    p.chosen = best;
    this.counters.switches++;
    this.#log.info(`peer ${p.publicKey.slice(0, 8)}: probed path ${best === undefined ? 'none answers' : `${formatEndpoint(best.endpoint)} (${best.private ? 'LAN' : 'public'}, ${best.rttMs?.toFixed(1)} ms)`}`);
    this.#o.onChange(p.publicKey, best?.endpoint, best?.rttMs);
  }

  #after(p: Peer, ms: number, fn: () => void): void {
    const h = this.#timers.setTimeout(() => {
      p.timers.delete(h);
      if (!this.#closed) fn();
    }, ms);
    p.timers.add(h);
  }

  #every(p: Peer, ms: number, fn: () => void): void {
    this.#after(p, ms, () => {
      fn();
      if (this.#peers.get(p.publicKey) === p) this.#every(p, ms, fn);
    });
  }

  /** Stops every timer, detaches from the socket and wipes the probe keys. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#peers.values()) for (const t of p.timers) this.#timers.clearTimeout(t);
    this.#peers.clear();
    this.#byKeyHex.clear();
    this.#o.socket.setProbeHandler(undefined);
    this.#codec.wipe();
  }
}

function newCandidate(endpoint: Endpoint): Candidate {
  return { endpoint, private: isPrivateAddress(endpoint.address), rttMs: undefined, live: false, lastPongAt: -Infinity };
}

function defaultFill(buf: Uint8Array): void {
  randomFillSync(buf);
}
