// Fuzzing the core's decapsulate: 100,000 random and mutated datagrams of every message type
// (scaled by `npm run fuzz`, test/helpers/fuzz.ts), seeded. None may throw, none may grow state,
// and each must be exactly one counted drop.

import { describe, expect, it } from 'vitest';
import type { ActionSink, DropReason } from '../../src/core/actions.js';
import { PEER_STAGED, type Peer } from '../../src/core/peer.js';
import { MessageType } from '../../src/core/messages.js';
import { ipPacket } from '../helpers/ip-packet.js';
import { Pair } from '../helpers/pair.js';
import type { Node } from '../helpers/pair.js';
import { fuzzIterations, fuzzSeed, fuzzTimeout } from '../helpers/fuzz.js';
import { seededInts, seededRandom } from '../helpers/rng.js';
import { CookieGenerator } from '../../src/core/cookie.js';
import { nobleCrypto } from '../../src/core/crypto-noble.js';

/** An established pair plus one captured valid datagram of every type, in both directions. */
function corpus(): { p: Pair; samples: Uint8Array[] } {
  const p = new Pair({ underLoadThreshold: Infinity });
  const samples: Uint8Array[] = [];
  p.filter = (d) => {
    samples.push(d.data.slice());
    return true;
  };
  p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'one'));
  p.b.send(ipPacket('10.0.0.2', '10.0.0.1', 'two'));
  p.a.send(ipPacket('fd00::1', 'fd00::2', 'six'));
  p.advance(11_000); // keepalives
  p.b.engine.setUnderLoad(p.clock.now + 10);
  p.a.engine.setPersistentKeepalive(p.a.peer, 1);
  p.advance(2_000); // a keepalive, later an initiation answered by a cookie reply
  p.b.engine.setUnderLoad(0);
  p.a.engine.setPersistentKeepalive(p.a.peer, 0);
  p.filter = () => true;
  const types = new Set(samples.map((s) => s[0]));
  for (const t of [1, 2, 4]) expect(types.has(t)).toBe(true);
  return { p, samples };
}

/** Extra cookie reply sample: ask b under load directly. */
function cookieSample(p: Pair): Uint8Array {
  p.b.engine.setUnderLoad(p.clock.now + 1);
  const replies: Uint8Array[] = [];
  const sink: ActionSink<Peer> = { network: (_peer, _to, d) => void replies.push(d.slice()), tun: () => {}, drop: () => {} };
  const init = p.a.sentOfType(MessageType.initiation)[0]!.data;
  // Handshake messages are never modified in place, so the captured copy is the original.
  p.b.engine.decapsulate(init.slice(), p.a.endpoint, p.clock.now, sink);
  p.b.engine.setUnderLoad(0);
  expect(replies).toHaveLength(1);
  return replies[0]!;
}

function snapshot(n: Node): unknown {
  return {
    peers: n.engine.peerCount,
    indices: n.engine.indexCount,
    staged: n.peer[PEER_STAGED].length,
    routes: n.engine.allowedIps.size,
  };
}

/**
 * Throws `count` datagrams at both engines. With `remac`, only handshake messages are used and
 * their MAC1 is recomputed after mutation, so each one costs the full Noise work.
 */
function fuzz(count: number, seed: number, remac = false): Map<DropReason, number> {
  const { p, samples: all } = corpus();
  all.push(cookieSample(p));
  const samples = remac ? all.filter((s) => s[0] === MessageType.initiation || s[0] === MessageType.response) : all;
  const macFor = new Map([
    [p.a, new CookieGenerator(nobleCrypto, p.a.publicKey)],
    [p.b, new CookieGenerator(nobleCrypto, p.b.publicKey)],
  ]);
  const rnd = seededInts(seed);
  const fill = seededRandom(seed + 1);
  const nodes = [p.a, p.b];
  const before = nodes.map(snapshot);
  const reasons = new Map<DropReason, number>();
  let drops = 0;
  let delivered = 0;
  const sink: ActionSink<Peer> = {
    network: (_peer, _to, d) => {
      // Only cookie replies may answer garbage.
      expect(d[0]).toBe(MessageType.cookieReply);
    },
    tun: () => void delivered++,
    drop: (reason) => {
      drops++;
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    },
  };
  let now = p.clock.now;
  for (let i = 0; i < count; i++) {
    let m: Uint8Array;
    const mode = remac ? 1 : rnd(4);
    // Alternate blocks with and without the under-load mode.
    if (i % 10_000 === 0) for (const n of nodes) n.engine.setUnderLoad((i / 10_000) % 2 === 1 ? Infinity : 0);
    if (mode === 0) {
      m = new Uint8Array(rnd(200));
      fill(m);
      if (m.length > 0 && rnd(2) === 0) m[0] = 1 + rnd(4);
      if (m.length > 3 && rnd(2) === 0) m[1] = m[2] = m[3] = 0;
    } else {
      const base = samples[rnd(samples.length)]!;
      if (mode === 1) {
        m = base.slice();
        const flips = 1 + rnd(4);
        for (let f = 0; f < flips; f++) m[rnd(m.length)]! ^= 1 << rnd(8);
        // Flips may cancel out; an unchanged cookie reply would be accepted again (as in WireGuard).
        if (m.every((x, j) => x === base[j])) m[rnd(m.length)]! ^= 1 << rnd(8);
      } else if (mode === 2) {
        m = base.slice(0, rnd(base.length));
      } else {
        m = new Uint8Array(base.length + 1 + rnd(32));
        m.set(base);
        fill(m.subarray(base.length));
        if (rnd(2) === 0) m[rnd(m.length)]! ^= 1 << rnd(8);
      }
    }
    const target = nodes[rnd(2)]!;
    if (remac) {
      // Keep the Noise body mutated but the MACs right (MAC2 zero: no cookie, load is off).
      m[0] = m.length === 148 ? MessageType.initiation : MessageType.response;
      m[1] = m[2] = m[3] = 0;
      macFor.get(target)!.addMacs(m, now);
    }
    const from = rnd(3) === 0 ? { address: `198.18.${rnd(256)}.${rnd(256)}`, port: 1 + rnd(65535) } : target === p.a ? p.b.endpoint : p.a.endpoint;
    const dropsBefore = drops;
    now += rnd(3);
    target.engine.decapsulate(m, from, now, sink);
    if (drops - dropsBefore !== 1) throw new Error(`message ${i} mode ${mode} type ${m[0]} len ${m.length} to ${target.name}: ${drops - dropsBefore} drops`);
  }
  expect(drops).toBe(count);
  expect(delivered).toBe(0);
  expect(nodes.map(snapshot)).toEqual(before);
  const counted = nodes.map((n) => Object.values(n.engine.dropCounts()).reduce((x, y) => x + y, 0));
  expect(counted[0]! + counted[1]!).toBeGreaterThanOrEqual(count);
  // Roaming only follows authenticated packets.
  expect(p.a.peer.endpoint).toEqual(p.b.endpoint);
  expect(p.b.peer.endpoint).toEqual(p.a.endpoint);
  return reasons;
}

describe('decapsulate fuzz', () => {
  const count = fuzzIterations(100_000);
  it(`${count.toLocaleString('en-US')} random and mutated datagrams: no throw, no state growth, one counted drop each`, () => {
    const reasons = fuzz(count, fuzzSeed(2024));
    console.log(`core decapsulate fuzz: ${count} inputs, drops ${JSON.stringify(Object.fromEntries(reasons))}`);
    // Every stage of the receive path was reached.
    const stages = ['short', 'unknown-type', 'reserved-nonzero', 'bad-length', 'mac1', 'cookie-required', 'stale-timestamp'] as const;
    for (const r of [...stages, 'unexpected-response', 'cookie-decrypt', 'unknown-index', 'decrypt', 'replay'] as const) {
      expect(reasons.get(r) ?? 0).toBeGreaterThan(0);
    }
  }, fuzzTimeout(count, 1));

  it('mutated handshakes with recomputed MAC1 reach the Noise checks and fail there', () => {
    const reasons = fuzz(2_000, 7, true);
    expect(reasons.get('handshake-decrypt') ?? 0).toBeGreaterThan(100);
    expect(reasons.get('mac1') ?? 0).toBe(0);
  }, 120_000);
});
