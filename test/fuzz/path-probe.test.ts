// Fuzz target: path probes (src/nat/path-probe.ts) through a PathProber (src/agent/path-prober.ts)
// whose socket counts what it sends. Inputs: random datagrams, ones with the probe magic and random
// rest, genuine pings and pongs from the peer, single-byte mutations and truncations of genuine
// ones, replays of captured genuine ones, and genuine probes of strangers (their own keys, or the
// peer's public key but not its private key).
// Asserts: nothing throws; every datagram is one answered ping, one matched pong or one counted
// drop; only fresh genuine pings from the peer are answered (one pong each, to their source), and
// only they teach a peer-reflexive candidate (then probed with pings; at most MAX_LEARNED kept);
// pending state and heap stay bounded.

import { describe, expect, it } from 'vitest';
import { MAX_LEARNED, PathProber, type ProbeSocket } from '../../src/agent/path-prober.js';
import { nobleCrypto } from '../../src/core/crypto-noble.js';
import { nodeCrypto } from '../../src/crypto/node.js';
import type { Endpoint, SendResult } from '../../src/io/bind.js';
import { ProbeCodec } from '../../src/nat/path-probe.js';
import { fuzzIterations, fuzzSeed, fuzzTimeout } from '../helpers/fuzz.js';
import { retainedBytes } from '../helpers/heap.js';
import { seededInts, seededRandom } from '../helpers/rng.js';
import { ManualTimers } from '../nat/manual-timers.js';

const ITERATIONS = fuzzIterations(20_000);
const SEED = fuzzSeed(0x9b0b_e013);
const WALL = 1_700_000_000_000;

describe('fuzz: path probes through the codec and the prober', () => {
  it(`${ITERATIONS} datagrams: no throw, each answered, matched or one counted drop; only genuine fresh pings answered`, () => {
    const int = seededInts(SEED);
    const fill = seededRandom(SEED ^ 0x27d4eb2d);
    const bytes = (n: number) => {
      const b = new Uint8Array(n);
      fill(b);
      return b;
    };
    const timers = new ManualTimers();
    const ourKey = bytes(32);
    const peerKey = bytes(32);
    const sent: Array<{ data: Uint8Array; to: Endpoint }> = [];
    const socket: ProbeSocket = {
      setProbeHandler: () => {},
      sendRaw: (data: Uint8Array, to: Endpoint): SendResult => (sent.push({ data, to }), 'sent'),
    };
    const prober = new PathProber({ socket, crypto: nodeCrypto, privateKey: ourKey, timers, wallMs: () => WALL + timers.now(), fillRandom: seededRandom(SEED + 1), onChange: () => {} });
    const ourPub = nobleCrypto.x25519PublicKey(ourKey);
    const peerPub = nobleCrypto.x25519PublicKey(peerKey);
    prober.setPeer(Buffer.from(peerPub).toString('base64'), [{ address: '10.0.0.2', port: 51820 }]);
    const peer = new ProbeCodec(nodeCrypto, peerKey, seededRandom(SEED + 2));
    peer.addPeer(ourPub);
    const strangers = [bytes(32), bytes(32)].map((k, i) => {
      const c = new ProbeCodec(nodeCrypto, k, seededRandom(SEED + 3 + i));
      c.addPeer(ourPub);
      return c;
    });
    // Knows the peer's public key and uses it as if it were a private key: other keys altogether.
    const impostor = new ProbeCodec(nodeCrypto, peerPub, seededRandom(SEED + 9));
    impostor.addPeer(ourPub);
    const captured: Uint8Array[] = [];
    let genuinePings = 0;
    const outcomes = new Map<string, number>();
    const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    const heapBefore = retainedBytes();
    const totalBefore = () => {
      const d = prober.drops();
      return Object.values(d).reduce((a, b) => a + b, 0) + prober.counters.pingsAnswered + prober.counters.pongsReceived;
    };

    for (let i = 0; i < ITERATIONS; i++) {
      const wall = WALL + i;
      const tx = bytes(12);
      let data: Uint8Array;
      let genuine = false;
      switch (int(8)) {
        case 0:
          data = bytes(int(120));
          count('random');
          break;
        case 1:
          data = bytes(int(2) === 0 ? 73 : 92);
          data.set([0xf0, 0x70, 0x6c, 0x78, 1 + int(2)], 0);
          count('magic+random');
          break;
        case 2:
          data = peer.ping(ourPub, tx, wall);
          if (captured.length < 256) captured.push(data);
          genuine = true;
          count('genuine-ping');
          break;
        case 3:
          data = peer.pong(ourPub, tx, { address: int(2) === 0 ? '198.51.100.7' : '2001:db8::7', port: 1 + int(65535) }, wall);
          if (captured.length < 256) captured.push(data);
          count('genuine-pong');
          break;
        case 4: {
          data = Uint8Array.from(peer.ping(ourPub, tx, wall));
          data[int(data.length)]! ^= 1 << int(8);
          count('mutated');
          break;
        }
        case 5:
          data = peer.ping(ourPub, tx, wall).subarray(0, int(73));
          count('truncated');
          break;
        case 6:
          data = captured.length === 0 ? bytes(10) : captured[int(captured.length)]!;
          count('replayed');
          break;
        default: {
          const s = int(3) === 0 ? impostor : strangers[int(2)]!;
          data = s.ping(ourPub, tx, wall);
          count('stranger');
        }
      }
      const sentBefore = sent.length;
      const handled = totalBefore();
      prober.receive(data, { address: '203.0.113.5', port: 40000 + int(100) });
      // Exactly one outcome per datagram.
      expect(totalBefore() - handled).toBe(1);
      const out = sent.slice(sentBefore);
      if (out.length !== 0) {
        // Only a genuine ping, the first time, is answered: with one pong to its source, first.
        // From a source not known yet it is also learned, and probed with pings (type 1).
        expect(genuine).toBe(true);
        expect(out[0]!.data[4]).toBe(2);
        expect(out[0]!.to.address).toBe('203.0.113.5');
        expect(out.slice(1).every((o) => o.data[4] === 1)).toBe(true);
        genuinePings++;
      } else {
        expect(genuine).toBe(false);
      }
      if (sent.length > 1024) sent.length = 0;
      if ((i & 1023) === 0) timers.advance(1000);
    }
    const heapDelta = retainedBytes() - heapBefore;
    const drops = Object.fromEntries(Object.entries(prober.drops()).filter(([, n]) => n > 0));
    expect(prober.counters.pingsAnswered).toBe(genuinePings);
    expect(prober.counters.learned).toBeGreaterThan(MAX_LEARNED);
    expect(prober.pathOf(Buffer.from(peerPub).toString('base64'))!.learned).toBe(MAX_LEARNED);
    expect(heapDelta).toBeLessThan(32 * 1024 * 1024);
    prober.close();
    console.log(
      `path-probe fuzz: seed ${SEED}, ${ITERATIONS} datagrams ${JSON.stringify(Object.fromEntries(outcomes))}; answered ${genuinePings} genuine pings, drops ${JSON.stringify(drops)}, heap delta ${(heapDelta / 1048576).toFixed(1)} MiB`,
    );
  }, fuzzTimeout(ITERATIONS, 0.5));
});
