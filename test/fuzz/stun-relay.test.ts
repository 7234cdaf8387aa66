// Fuzz target: STUN messages and relay bindings through the STUN codec (src/nat/stun-message.ts),
// the STUN server (src/nat/stun-server.ts) and the relay table (src/bridge/relay-table.ts).
// Inputs: random datagrams, STUN-shaped ones with random attributes, genuine relay bindings (with
// and without the session's MAC) and their mutations, bindings and data from strangers who know
// the session and node IDs (and replay bindings they captured) but not the keys, on the base port,
// session ports and unknown ports, while sessions are added, refreshed, revoked and expire.
// Asserts: nothing throws; every datagram is forwarded, answered or one counted drop; the tables
// stay within their limits; nothing is forwarded from a source that is not a session end; and no
// stranger ever holds a side that its genuine end bound with a MAC.

import { describe, expect, it } from 'vitest';
import type { RelaySession } from '../../src/api/types.js';
import { relayBindingAttributes } from '../../src/bridge/relay-binding.js';
import { RELAY_DROP_REASONS, RelayTable, type RelayAction } from '../../src/bridge/relay-table.js';
import type { Endpoint } from '../../src/io/bind.js';
import { decodeStun, encodeBindingRequest, encodeStun, STUN_ATTR, STUN_DROP_REASONS, STUN_METHOD, type StunClass } from '../../src/nat/stun-message.js';
import { STUN_SERVER_DROP_REASONS, StunResponder } from '../../src/nat/stun-server.js';
import { fuzzIterations, fuzzSeed, fuzzTimeout } from '../helpers/fuzz.js';
import { seededInts, seededRandom } from '../helpers/rng.js';

const ITERATIONS = fuzzIterations(20_000);
const SEED = fuzzSeed(0x5e11_0007);
const T0_WALL = 1_700_000_000_000;
const BASE_PORT = 51821;
const MAX_SESSIONS = 6;

interface Spec {
  readonly id: string;
  readonly key: Uint8Array | undefined;
  readonly port: number | undefined;
  /** Genuine ends: IP per side (ports vary, like NAT mappings). */
  readonly ends: { readonly a: string; readonly b: string };
}

describe('fuzz: STUN and relay bindings through the codec, STUN server and relay table', () => {
  it(`${ITERATIONS} datagrams: no throw, each forwarded, answered or one counted drop, no stranger forwarded or bound`, () => {
    const int = seededInts(SEED);
    const fill = seededRandom(SEED ^ 0x85ebca6b);
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
    const bytes = (n: number) => {
      const b = new Uint8Array(n);
      fill(b);
      return b;
    };
    const table = new RelayTable({ maxSessions: MAX_SESSIONS, basePort: BASE_PORT, ttlMs: 300_000 });
    const stun = new StunResponder();

    // Sessions: keyed and not, with and without their own port. Genuine ends live in 198.51.100.0/24,
    // strangers in 203.0.113.0/24.
    const specs: Spec[] = [];
    for (let i = 0; i < MAX_SESSIONS + 2; i++) {
      specs.push({ id: `s${i}`, key: i % 3 === 2 ? undefined : bytes(32), port: i % 2 === 0 ? BASE_PORT + 1 + i : undefined, ends: { a: `198.51.100.${2 * i + 1}`, b: `198.51.100.${2 * i + 2}` } });
    }
    let now = 0;
    const wire = (s: Spec, expiresMs: number, over: Partial<RelaySession> = {}): RelaySession => ({
      session_id: s.id,
      peer_a_id: `${s.id}-a`,
      peer_a_endpoint: '',
      peer_b_id: `${s.id}-b`,
      peer_b_endpoint: '',
      expires_at: new Date(T0_WALL + now + expiresMs).toISOString(),
      ...(s.port === undefined ? {} : { relay_port: s.port }),
      ...(s.key === undefined ? {} : { binding_key: Buffer.from(s.key).toString('base64') }),
      ...over,
    });
    /** Sides a genuine end bound with a MAC since the session was (re)added: `${id}|a`. */
    const authenticated = new Set<string>();
    const counters = new Map<string, bigint>();
    /** Authenticated bindings already delivered: what an eavesdropper captured. */
    const captured: Array<{ data: Uint8Array; port: number | undefined }> = [];
    const strangerAddr = () => ({ address: `203.0.113.${1 + int(20)}`, port: 1024 + int(60000) });
    const genuineAddr = (s: Spec, side: 'a' | 'b') => ({ address: s.ends[side], port: 40000 + (int(8) === 0 ? int(4) : 0) });
    const isGenuine = (e: Endpoint | undefined) => e !== undefined && e.address.startsWith('198.51.100.');
    const portOf = (s: Spec) => (s.port !== undefined && int(10) !== 0 ? s.port : pick([undefined, BASE_PORT, 9, ...specs.map((x) => x.port)]));

    const binding = (s: Spec, side: 'a' | 'b', auth: 'genuine' | 'none' | 'wrong-key'): Uint8Array => {
      const key = auth === 'genuine' ? s.key : auth === 'wrong-key' ? bytes(32) : undefined;
      let counter = (counters.get(`${s.id}|${side}`) ?? BigInt(T0_WALL)) + 1n;
      if (auth === 'genuine') counters.set(`${s.id}|${side}`, counter);
      else counter += BigInt(int(5));
      const attrs = relayBindingAttributes(int(30) === 0 ? `${s.id}x` : s.id, `${s.id}-${int(30) === 0 ? 'c' : side}`, key === undefined ? undefined : { key, counter });
      return encodeBindingRequest(bytes(12), { attributes: attrs, fingerprint: int(2) === 0 });
    };
    const stunShaped = (): Uint8Array => {
      const attrs = Array.from({ length: int(6) }, () => ({ type: pick([0xc501, 0xc502, 0xc503, STUN_ATTR.FINGERPRINT, STUN_ATTR.SOFTWARE, STUN_ATTR.MESSAGE_INTEGRITY, int(0x10000)]), value: bytes(int(60)) }));
      const cls = pick<StunClass>(['request', 'indication', 'success', 'error']);
      return encodeStun(int(8) === 0 ? int(0x1000) : STUN_METHOD.binding, cls, bytes(12), attrs, { fingerprint: int(3) === 0 });
    };
    const mutate = (d: Uint8Array): Uint8Array => {
      const m = Uint8Array.from(d);
      if (int(3) === 0) return m.subarray(0, int(m.length + 1));
      for (let n = 1 + int(3); n > 0; n--) m[int(m.length)]! ^= 1 << int(8);
      return m;
    };

    let forwarded = 0;
    let answered = 0;
    let handled = 0;
    const run = (data: Uint8Array, from: Endpoint, port: number | undefined, sender: 'genuine' | 'stranger', bound?: string): RelayAction => {
      const before = new Map(table.sessions(now).map((s) => [s.sessionId, s]));
      const action = table.handle(data, from, now, port);
      handled++;
      if (action.kind === 'forward') {
        forwarded++;
        // Only a current end of a live session is forwarded, and only to its other end.
        const s = [...before.values()].find((x) => (x.a !== undefined && sameEp(x.a, from) && x.b !== undefined && sameEp(x.b, action.to)) || (x.b !== undefined && sameEp(x.b, from) && x.a !== undefined && sameEp(x.a, action.to)));
        expect(s, `forward from ${from.address}:${from.port}`).toBeDefined();
      } else if (action.kind === 'reply') {
        answered++;
        if (bound !== undefined && sender === 'genuine') authenticated.add(bound);
      }
      return action;
    };

    const heap0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < ITERATIONS; i++) {
      try {
        now += int(50);
        const r = int(100);
        const s = pick(specs);
        const side = pick(['a', 'b'] as const);
        if (r < 3) {
          // Control plane: add/refresh (sometimes malformed), revoke, or reconcile.
          const liveBefore = new Set(table.sessions(now).map((x) => x.sessionId));
          const op = int(4);
          if (op === 0) {
            const err = table.addSession(wire(s, int(400_000) - 20_000, int(10) === 0 ? pick<Partial<RelaySession>>([{ binding_key: 'c2hvcnQ=' }, { peer_a_id: s.id + '-b' }, { relay_port: BASE_PORT }, { expires_at: 'soon' }]) : {}), now, T0_WALL + now);
            if (err === undefined && !table.sessions(now).some((x) => x.sessionId === s.id)) throw new Error('added but not live');
          } else if (op === 1) {
            table.removeSession(s.id);
          } else {
            table.reconcile(specs.filter(() => int(2) === 0).map((x) => wire(x, 300_000)), now, T0_WALL + now);
          }
          // A session not live before the op is a new one: its sides start unbound.
          for (const k of [...authenticated]) if (!liveBefore.has(k.split('|')[0]!)) authenticated.delete(k);
        } else if (r < 18) {
          // The genuine end binds (with the MAC when the session has a key), from its own IP.
          const d = binding(s, side, s.key === undefined ? 'none' : 'genuine');
          const port = s.port;
          const a = run(d, genuineAddr(s, side), port, 'genuine', s.key === undefined ? undefined : `${s.id}|${side}`);
          if (s.key !== undefined && a.kind === 'reply') captured.push({ data: d, port });
          if (captured.length > 256) captured.splice(0, 128);
        } else if (r < 30) {
          // A stranger who knows the IDs: no MAC, a wrong key, or a captured binding replayed.
          const k = int(3);
          const d = k === 2 && captured.length > 0 ? pick(captured) : { data: binding(s, side, k === 0 ? 'none' : 'wrong-key'), port: portOf(s) };
          run(int(4) === 0 ? mutate(d.data) : d.data, strangerAddr(), d.port, 'stranger');
        } else if (r < 55) {
          // Data (WireGuard-like) from genuine ends and strangers.
          const d = bytes(1 + int(200));
          d[0] = 1 + int(4);
          run(d, int(2) === 0 ? genuineAddr(s, side) : strangerAddr(), portOf(s), int(2) === 0 ? 'genuine' : 'stranger');
        } else if (r < 70) {
          run(stunShaped(), int(2) === 0 ? genuineAddr(s, side) : strangerAddr(), portOf(s), 'stranger');
        } else if (r < 80) {
          // Mutations of what strangers have: bindings without or with a wrong MAC, and captured ones.
          const d = int(2) === 0 && captured.length > 0 ? pick(captured).data : binding(s, side, pick(['none', 'wrong-key'] as const));
          run(mutate(d), strangerAddr(), portOf(s), 'stranger');
        } else {
          const d = bytes(int(120));
          if (int(2) === 0 && d.length >= 20) d.set([0, 1, (d.length - 20) >> 8, (d.length - 20) & 0xff, 0x21, 0x12, 0xa4, 0x42]);
          const from = strangerAddr();
          if (int(2) === 0) {
            // The codec and the STUN server on their own.
            const dec = decodeStun(d);
            expect(dec.ok || (STUN_DROP_REASONS as readonly string[]).includes(dec.reason)).toBe(true);
            stun.handle(d, from, now);
          } else run(d, from, portOf(s), 'stranger');
        }
        // No stranger holds a side its genuine end bound with a MAC.
        for (const x of table.sessions(now)) {
          for (const sd of ['a', 'b'] as const) if (authenticated.has(`${x.sessionId}|${sd}`)) expect(isGenuine(x[sd]), `${x.sessionId} side ${sd} held by ${x[sd]?.address}`).toBe(true);
        }
      } catch (err) {
        throw new Error(`seed ${SEED} iteration ${i}: ${(err as Error).message}`, { cause: err });
      }
    }
    global.gc?.();
    const heapDeltaMb = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
    const drops = RELAY_DROP_REASONS.reduce((n, r) => n + table.counters.drops[r], 0);
    const stunDrops = STUN_SERVER_DROP_REASONS.reduce((n, r) => n + stun.counters.drops[r], 0);
    console.log(
      `fuzz stun-relay: seed ${SEED}, ${ITERATIONS} iterations, ${handled} datagrams to the relay: forwarded ${forwarded}, answered ${answered}, ` +
        `bindings ${table.counters.bindings} (${table.counters.authenticatedBindings} with MAC), drops ${JSON.stringify(Object.fromEntries(Object.entries(table.counters.drops).filter(([, n]) => n > 0)))}; ` +
        `STUN server alone: answered ${stun.counters.answered}, drops ${stunDrops}; sessions live ${table.sessions(now).length}/${MAX_SESSIONS}; heap delta ${heapDeltaMb.toFixed(1)} MiB`,
    );
    expect(drops + forwarded + answered).toBe(handled);
    expect(table.sessions(now).length).toBeLessThanOrEqual(MAX_SESSIONS);
    expect(table.counters.authenticatedBindings).toBeGreaterThan(0);
    for (const r of ['binding-auth-failed', 'binding-replayed', 'binding-unauthenticated', 'unknown-source'] as const) expect(table.counters.drops[r], r).toBeGreaterThan(0);
    expect(heapDeltaMb).toBeLessThan(64);
  }, fuzzTimeout(ITERATIONS, 0.5));
});

function sameEp(x: Endpoint, y: Endpoint): boolean {
  return x.address === y.address && x.port === y.port;
}
