// The path probe codec (src/nat/path-probe.ts): round trips between two nodes, framing that the
// device tells apart from WireGuard and STUN, and every kind of refusal counted.

import { describe, expect, it } from 'vitest';
import { nobleCrypto } from '../../src/core/crypto-noble.js';
import { nodeCrypto } from '../../src/crypto/node.js';
import { looksLikeStun } from '../../src/nat/stun-message.js';
import { PING_SIZE, PONG_SIZE, PROBE_FIRST_BYTE, ProbeCodec } from '../../src/nat/path-probe.js';
import { seededRandom } from '../helpers/rng.js';

const WALL = 1_700_000_000_000;

function key(seed: number): Uint8Array {
  const k = new Uint8Array(32);
  seededRandom(seed)(k);
  return k;
}

function pair(crypto = nobleCrypto) {
  const a = new ProbeCodec(crypto, key(1), seededRandom(11));
  const b = new ProbeCodec(crypto, key(2), seededRandom(12));
  expect(a.addPeer(b.publicKey)).toBe(true);
  expect(b.addPeer(a.publicKey)).toBe(true);
  return { a, b };
}

const tx = (n: number) => new Uint8Array(12).fill(n);

describe('ProbeCodec', () => {
  it('a ping and its pong open at the other end with the tx id and the observed address', () => {
    const { a, b } = pair();
    const ping = a.ping(b.publicKey, tx(7), WALL);
    expect(ping.length).toBe(PING_SIZE);
    const got = b.open(ping);
    expect(got).toEqual({ kind: 'ping', peer: a.publicKey, txId: tx(7) });
    const pong = b.pong(a.publicKey, tx(7), { address: '198.51.100.9', port: 40001 }, WALL);
    expect(pong.length).toBe(PONG_SIZE);
    expect(a.open(pong)).toEqual({ kind: 'pong', peer: b.publicKey, txId: tx(7), observed: { address: '198.51.100.9', port: 40001 } });
    const pong6 = b.pong(a.publicKey, tx(8), { address: 'fd00::1', port: 51820 }, WALL);
    expect(a.open(pong6)).toMatchObject({ kind: 'pong', observed: { address: 'fd00::1', port: 51820 } });
  });

  it('both crypto providers derive the same keys', () => {
    const a = new ProbeCodec(nodeCrypto, key(1), seededRandom(11));
    const b = new ProbeCodec(nobleCrypto, key(2), seededRandom(12));
    a.addPeer(b.publicKey);
    b.addPeer(a.publicKey);
    expect(b.open(a.ping(b.publicKey, tx(1), WALL)).kind).toBe('ping');
    expect(a.open(b.ping(a.publicKey, tx(2), WALL)).kind).toBe('ping');
  });

  it('is neither WireGuard nor STUN on the wire', () => {
    const { a, b } = pair();
    for (const d of [a.ping(b.publicKey, tx(1), WALL), b.pong(a.publicKey, tx(1), { address: '10.0.0.1', port: 1 }, WALL)]) {
      expect(d[0]).toBe(PROBE_FIRST_BYTE);
      expect(d[0]! >= 1 && d[0]! <= 4).toBe(false);
      expect(looksLikeStun(d)).toBe(false);
    }
  });

  it('a replayed probe is dropped as replay; reordering within the window is fine', () => {
    const { a, b } = pair();
    const p1 = a.ping(b.publicKey, tx(1), WALL);
    const p2 = a.ping(b.publicKey, tx(2), WALL);
    expect(b.open(p2).kind).toBe('ping');
    expect(b.open(p1).kind).toBe('ping');
    expect(b.open(p1)).toEqual({ kind: 'drop', reason: 'replay' });
    expect(b.drops.replay).toBe(1);
  });

  it('a node restarted with the same key starts above its old counters (wall-clock floor)', () => {
    const { a, b } = pair();
    b.open(a.ping(b.publicKey, tx(1), WALL + 5000));
    const restarted = new ProbeCodec(nobleCrypto, key(1), seededRandom(99));
    restarted.addPeer(b.publicKey);
    expect(b.open(restarted.ping(b.publicKey, tx(2), WALL + 6000)).kind).toBe('ping');
  });

  it('forged, reflected, truncated and foreign datagrams are dropped with their reason', () => {
    const { a, b } = pair();
    const stranger = new ProbeCodec(nobleCrypto, key(3), seededRandom(13));
    stranger.addPeer(b.publicKey);
    const ping = a.ping(b.publicKey, tx(1), WALL);
    // A stranger's genuine probe under its own key: b has no keys for it.
    expect(b.open(stranger.ping(b.publicKey, tx(1), WALL))).toEqual({ kind: 'drop', reason: 'unknown-sender' });
    // a's ping reflected back at a: its own send id is not one it receives from.
    expect(a.open(ping)).toEqual({ kind: 'drop', reason: 'unknown-sender' });
    // Any flipped bit after the magic and type breaks authentication (or the sender id).
    for (const at of [6, 20, 40, PING_SIZE - 1]) {
      const bad = Uint8Array.from(ping);
      bad[at]! ^= 0x01;
      expect(['auth', 'unknown-sender']).toContain((b.open(bad) as { reason: string }).reason);
    }
    const asPong = Uint8Array.from(ping);
    asPong[4] = 2;
    expect(b.open(asPong)).toEqual({ kind: 'drop', reason: 'bad-length' });
    const type9 = Uint8Array.from(ping);
    type9[4] = 9;
    expect(b.open(type9)).toEqual({ kind: 'drop', reason: 'bad-type' });
    expect(b.open(ping.subarray(0, 30))).toEqual({ kind: 'drop', reason: 'bad-length' });
    expect(b.open(Uint8Array.of(4, 0, 0, 0, 1, 2, 3))).toEqual({ kind: 'drop', reason: 'bad-magic' });
    expect(b.open(new Uint8Array(0))).toEqual({ kind: 'drop', reason: 'bad-magic' });
    expect(b.open(ping).kind).toBe('ping'); // the genuine one still opens
    expect(b.drops['unknown-sender'] + b.drops.auth).toBe(5);
  });

  it('refuses our own key and a low-order point; removePeer forgets the keys', () => {
    const { a, b } = pair();
    expect(a.addPeer(a.publicKey)).toBe(false);
    expect(a.addPeer(new Uint8Array(32))).toBe(false);
    const ping = a.ping(b.publicKey, tx(1), WALL);
    b.removePeer(a.publicKey);
    expect(b.hasPeer(a.publicKey)).toBe(false);
    expect(b.open(ping)).toEqual({ kind: 'drop', reason: 'unknown-sender' });
    expect(() => b.ping(a.publicKey, tx(1), WALL)).toThrow(RangeError);
    expect(() => a.ping(b.publicKey, new Uint8Array(3), WALL)).toThrow(RangeError);
  });
});
