// The per-peer handshake and cookie state made on first use (docs/performance.md, peers): the
// static-static DH follows our private key, and the key-wiping rules still hold.

import { describe, expect, it } from 'vitest';
import { nobleCrypto } from '../../src/core/crypto-noble.js';
import { Handshake, makeIdentity } from '../../src/core/handshake.js';
import { PEER_HANDSHAKE } from '../../src/core/peer.js';
import { ipPacket } from '../helpers/ip-packet.js';
import { Pair, route } from '../helpers/pair.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b.subarray(20));
const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);

describe('lazy static-static DH (whitepaper 5.4.2 precomputation)', () => {
  it('is computed for the identity it is asked for, kept, and recomputed for another', () => {
    const a = makeIdentity(nobleCrypto, new Uint8Array(32).fill(1));
    const a2 = makeIdentity(nobleCrypto, new Uint8Array(32).fill(3));
    const b = makeIdentity(nobleCrypto, new Uint8Array(32).fill(2));
    const hs = new Handshake(b.publicKey);
    expect(isZero(hs.precomputedStaticStatic)).toBe(true);
    const ss = hs.staticStatic(a);
    expect(ss).toEqual(nobleCrypto.x25519(a.privateKey, b.publicKey));
    expect(hs.staticStatic(a)).toBe(ss);
    expect(hs.staticStatic(a2)).toEqual(nobleCrypto.x25519(a2.privateKey, b.publicKey));
    hs.forgetStaticStatic();
    expect(isZero(ss)).toBe(true);
    expect(hs.staticStatic(a2)).toEqual(nobleCrypto.x25519(a2.privateKey, b.publicKey));
    hs.presharedKey.fill(7);
    expect(hs.hasPresharedKey).toBe(true);
    hs.wipe();
    expect(isZero(ss)).toBe(true);
    expect(isZero(hs.presharedKey)).toBe(true);
    expect(hs.hasPresharedKey).toBe(false);
  });

  it('follows a new private key: both sides handshake again after A changes its key', () => {
    const p = new Pair();
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'before'));
    expect(p.b.tunOut.map(text)).toEqual(['before']);
    p.a.engine.setPrivateKey(new Uint8Array(32).fill(9), p.clock.now);
    expect(isZero(p.a.peer[PEER_HANDSHAKE].precomputedStaticStatic)).toBe(true);
    p.b.engine.removePeer(p.b.peer);
    p.b.peer = p.b.engine.addPeer(p.a.engine.publicKey!, { endpoint: p.a.endpoint });
    route(p.b.engine, p.b.peer, '10.0.0.1/32');
    p.b.send(ipPacket('10.0.0.2', '10.0.0.1', 'b after')); // A consumes with the new key's DH
    expect(p.a.tunOut.map(text)).toEqual(['b after']);
    p.advance(200_000); // past REKEY_AFTER_TIME: A initiates with the new key's DH
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'a after'));
    p.advance(10_000);
    expect(p.b.tunOut.map(text)).toContain('a after');
    expect(p.a.drops).toEqual([]);
  });

  it('zeroes the DH when the private key is removed and every secret when the peer is', () => {
    const p = new Pair({ psk: new Uint8Array(32).fill(5) });
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'x'));
    const hs = p.a.peer[PEER_HANDSHAKE];
    const ss = hs.precomputedStaticStatic;
    const psk = hs.presharedKey;
    expect(isZero(ss)).toBe(false);
    p.a.engine.setPrivateKey(undefined, p.clock.now);
    expect(isZero(ss)).toBe(true);
    expect(isZero(psk)).toBe(false);
    p.a.engine.removePeer(p.a.peer);
    expect(isZero(psk)).toBe(true);
    expect(isZero(hs.noise.chainKey) && isZero(hs.noise.hash) && isZero(hs.localEphemeral)).toBe(true);
  });
});
