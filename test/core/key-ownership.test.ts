// The library keeps and wipes only memory it owns (issue 11 item 5). A Node Buffer's `slice()` is a
// view, and a small Buffer is a view of Node's shared pool, so every "copy" of a caller's key or
// packet must be a real copy: these tests pass Buffers (randomBytes, pooled Buffer.from) and check
// the caller's bytes survive cache eviction, wipes and key changes, and handshakes still work.

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { copyBytes } from '../../src/core/bytes.js';
import { nobleCrypto } from '../../src/core/crypto-noble.js';
import { Engine } from '../../src/core/engine.js';
import { nodeCrypto } from '../../src/crypto/node.js';
import { MemoryNetwork } from '../../src/io/bind-memory.js';
import { MemoryTun } from '../../src/io/tun-memory.js';
import { toHex } from '../helpers/bytes.js';
import { ipPacket } from '../helpers/ip-packet.js';
import { Pair } from '../helpers/pair.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b.subarray(20));

/** `bytes` as a small Buffer carved from Node's shared pool (asserted, so the test cannot go vacuous). */
function pooled(bytes: Uint8Array): Buffer {
  const b = Buffer.from(toHex(bytes), 'hex');
  expect(b.buffer.byteLength).toBeGreaterThan(b.length);
  return b;
}

/** Runs enough fresh X25519 scalars through the node provider to evict every cached private key. */
function evictPrivateKeyCache(): void {
  const pub = nodeCrypto.x25519PublicKey(randomBytes(32));
  for (let i = 0; i < 3; i++) nodeCrypto.x25519(randomBytes(32), pub);
}

describe('copyBytes', () => {
  it('copies a Buffer, a pooled Buffer and a subarray view into fresh memory of exactly their length', () => {
    const backing = new Uint8Array([1, 2, 3, 4, 5, 6]);
    for (const src of [Buffer.from([7, 8, 9]), pooled(new Uint8Array([1, 2, 3])), backing.subarray(2, 5)]) {
      const before = toHex(src);
      const copy = copyBytes(src);
      expect(toHex(copy)).toBe(before);
      expect(copy.buffer).not.toBe(src.buffer);
      expect(copy.buffer.byteLength).toBe(src.length);
      copy.fill(0);
      expect(toHex(src)).toBe(before);
    }
  });
});

describe('crypto providers leave the caller\'s key bytes alone', () => {
  it('node X25519: evicting a cached private key does not zero the caller\'s Buffer (randomBytes and pooled)', () => {
    const keys = [randomBytes(32), pooled(randomBytes(32)), Buffer.allocUnsafe(32).fill(0x5a), pooled(randomBytes(32))];
    const before = keys.map(toHex);
    const pub = nodeCrypto.x25519PublicKey(randomBytes(32));
    const shared = keys.map((k) => toHex(nodeCrypto.x25519(k, pub)));
    evictPrivateKeyCache();
    expect(keys.map(toHex)).toEqual(before);
    // The same keys still give the same secrets after the cache went round.
    expect(keys.map((k) => toHex(nodeCrypto.x25519(k, pub)))).toEqual(shared);
  });

  it('noble and node AEADs: wipe() clears their own key copy, not the caller\'s Buffer', () => {
    for (const provider of [nobleCrypto, nodeCrypto]) {
      const key = pooled(randomBytes(32));
      const before = toHex(key);
      const aead = provider.aead(key);
      const sealed = new Uint8Array(16 + 5);
      aead.seal(0, new Uint8Array(5), undefined, sealed);
      aead.wipe();
      expect(toHex(key), provider.name).toBe(before);
    }
  });
});

describe('Engine with keys handed over as Buffers', () => {
  it('keeps its static key through cache eviction and key changes; the caller\'s Buffers stay intact; handshakes work', () => {
    const p = new Pair({ crypto: nodeCrypto });
    // Hand both engines their (same) private keys again as pooled Buffers, the way a key decoded
    // from base64 or hex arrives, and the peers' public keys too.
    const privA = pooled(p.a.privateKey);
    const privB = pooled(p.b.privateKey);
    p.a.engine.setPrivateKey(privA, p.clock.now);
    p.b.engine.setPrivateKey(privB, p.clock.now);
    const pubA = pooled(p.a.publicKey);
    const seen = [privA, privB, pubA].map(toHex);
    evictPrivateKeyCache();
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'first'));
    expect(p.b.tunOut.map(text)).toEqual(['first']);
    evictPrivateKeyCache();
    // A fresh handshake long after: both static keys must still be whole.
    p.advance(600_000);
    p.b.send(ipPacket('10.0.0.2', '10.0.0.1', 'after eviction'));
    expect(p.a.tunOut.map(text)).toEqual(['after eviction']);
    expect([privA, privB, pubA].map(toHex)).toEqual(seen);

    // Replacing the key wipes the engine's old copy, not the Buffer it came from.
    p.a.engine.setPrivateKey(randomBytes(32), p.clock.now);
    expect(toHex(privA)).toBe(seen[0]);
    expect(p.a.drops).toEqual([]);
    expect(p.b.drops).toEqual([]);

    // A peer added from a Buffer keeps its key when the caller reuses the Buffer.
    const engine = new Engine({ crypto: nodeCrypto, fillRandom: (b) => b.fill(1), wallClockMs: () => 0 });
    const peerKey = pooled(p.b.publicKey);
    const peer = engine.addPeer(peerKey, {});
    peerKey.fill(0);
    expect(toHex(peer.publicKey)).toBe(toHex(p.b.publicKey));
  });

  it('a packet queued while handshaking is the packet sent, even when the caller reuses its buffer', () => {
    const p = new Pair({ crypto: nodeCrypto });
    p.filter = () => false; // hold the handshake back so the packet is staged
    const buf = Buffer.from(ipPacket('10.0.0.1', '10.0.0.2', 'staged'));
    p.a.engine.encapsulate(buf, p.clock.now, p.a);
    buf.set(ipPacket('10.0.0.1', '10.0.0.2', 'REUSED'));
    p.filter = () => true;
    p.advance(6_000); // the retransmitted initiation goes through and releases the queue
    expect(p.b.tunOut.map(text)).toEqual(['staged']);
  });
});

describe('memory twins copy what they are given', () => {
  it('MemoryTun.inject and MemoryBind.send keep their own copy of a Buffer', async () => {
    const tun = new MemoryTun({ name: 'own0', delivery: 'manual' });
    const got: string[] = [];
    tun.onPackets((buf, offsets, count) => {
      for (let i = 0; i < count; i++) got.push(text(buf.subarray(offsets[i], offsets[i + 1])));
    });
    const packet = Buffer.from(ipPacket('10.0.0.1', '10.0.0.2', 'tun'));
    tun.inject(packet);
    packet.set(ipPacket('10.0.0.1', '10.0.0.2', 'XXX'));
    tun.flush();
    expect(got).toEqual(['tun']);
    const written = Buffer.from(ipPacket('10.0.0.2', '10.0.0.1', 'out'));
    tun.write(written);
    written.fill(0);
    expect(tun.takeWritten().map(text)).toEqual(['out']);
    tun.close();

    const net = new MemoryNetwork();
    const a = net.createBind(['10.9.0.1']);
    const b = net.createBind(['10.9.0.2']);
    const received: string[] = [];
    b.onReceive((data) => received.push(Buffer.from(data).toString()));
    await a.open(0);
    const port = await b.open(0);
    const datagram = Buffer.from('datagram');
    a.send(datagram, { address: '10.9.0.2', port });
    datagram.fill(0x21);
    await new Promise((r) => setImmediate(r));
    expect(received).toEqual(['datagram']);
    await a.close();
    await b.close();
  });
});
