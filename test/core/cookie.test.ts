// MAC1/MAC2, cookie replies, the rate limiter and under-load handling (whitepaper 5.4.4, 5.4.7),
// unit by unit and through two engines.

import { describe, expect, it } from 'vitest';
import { COOKIE_REFRESH_TIME } from '../../src/core/constants.js';
import { CookieChecker, CookieGenerator, endpointBytes } from '../../src/core/cookie.js';
import { nobleCrypto } from '../../src/core/crypto-noble.js';
import { Handshake, createInitiationMessage, makeIdentity } from '../../src/core/handshake.js';
import { INITIATION_SIZE, MessageType, parseCookieReply } from '../../src/core/messages.js';
import { LoadMonitor, RateLimiter } from '../../src/core/rate-limiter.js';
import { tai64n } from '../../src/core/tai64n.js';
import { ipPacket } from '../helpers/ip-packet.js';
import { Pair } from '../helpers/pair.js';
import { seededRandom } from '../helpers/rng.js';

const crypto = nobleCrypto;
const rand = seededRandom(42);
const key = (): Uint8Array => {
  const k = new Uint8Array(32);
  rand(k);
  return k;
};
const src = endpointBytes({ address: '192.0.2.7', port: 4242 });

describe('cookie checker and generator', () => {
  const responder = makeIdentity(crypto, key());
  const message = (): Uint8Array => {
    const m = new Uint8Array(INITIATION_SIZE);
    rand(m.subarray(0, INITIATION_SIZE - 32));
    m[0] = MessageType.initiation;
    m[1] = m[2] = m[3] = 0;
    return m;
  };

  it('accepts a correct MAC1 and rejects a wrong key or a flipped bit', () => {
    const checker = new CookieChecker(crypto, responder.publicKey);
    const gen = new CookieGenerator(crypto, responder.publicKey);
    const m = message();
    gen.addMacs(m, 0);
    expect(checker.checkMac1(m)).toBe(true);
    expect(m.subarray(-16).every((b) => b === 0)).toBe(true); // no cookie yet: MAC2 zero
    const other = new CookieGenerator(crypto, key());
    const m2 = message();
    other.addMacs(m2, 0);
    expect(checker.checkMac1(m2)).toBe(false);
    m[50]! ^= 1;
    expect(checker.checkMac1(m)).toBe(false);
  });

  it('round-trips a cookie reply into a valid MAC2 for COOKIE_REFRESH_TIME', () => {
    const checker = new CookieChecker(crypto, responder.publicKey);
    const gen = new CookieGenerator(crypto, responder.publicKey);
    const m = message();
    gen.addMacs(m, 1000);
    expect(checker.checkMac2(m, src, 1000)).toBe(false);
    const reply = checker.createReply(m, 77, src, 1000, rand);
    const parsed = parseCookieReply(reply);
    if (typeof parsed === 'string') throw new Error(parsed);
    expect(parsed.receiver).toBe(77);
    const tampered = parsed.cookie.slice();
    tampered[3]! ^= 1;
    expect(gen.consumeReply(parsed.nonce, tampered, 1001)).toBe(false);
    expect(gen.consumeReply(parsed.nonce, parsed.cookie, 1001)).toBe(true);
    const m2 = message();
    gen.addMacs(m2, 2000);
    expect(checker.checkMac1(m2)).toBe(true);
    expect(checker.checkMac2(m2, src, 2000)).toBe(true);
    expect(checker.checkMac2(m2, endpointBytes({ address: '192.0.2.7', port: 4243 }), 2000)).toBe(false);
    // The checker's secret expires: MAC2 no longer verifies.
    expect(checker.checkMac2(m2, src, 1000 + COOKIE_REFRESH_TIME + 1)).toBe(false);
    // The generator stops using a stale cookie.
    const m3 = message();
    gen.addMacs(m3, 1001 + COOKIE_REFRESH_TIME + 1);
    expect(m3.subarray(-16).every((b) => b === 0)).toBe(true);
  });

  it('rotates the secret: a new reply after COOKIE_REFRESH_TIME invalidates old cookies', () => {
    const checker = new CookieChecker(crypto, responder.publicKey);
    const gen = new CookieGenerator(crypto, responder.publicKey);
    const m = message();
    gen.addMacs(m, 0);
    const r1 = parseCookieReply(checker.createReply(m, 1, src, 0, rand));
    if (typeof r1 === 'string') throw new Error(r1);
    gen.consumeReply(r1.nonce, r1.cookie, 0);
    const t = COOKIE_REFRESH_TIME + 10;
    checker.createReply(m, 1, src, t, rand); // rotates
    const m2 = message();
    gen.addMacs(m2, 100); // still fresh for the generator, made with the old secret
    expect(checker.checkMac2(m2, src, t)).toBe(false);
  });

  it('ignores a cookie reply when no MAC1 was sent yet', () => {
    const gen = new CookieGenerator(crypto, responder.publicKey);
    expect(gen.consumeReply(new Uint8Array(24), new Uint8Array(32), 0)).toBe(false);
  });
});

describe('rate limiter and load monitor', () => {
  it('allows a burst then 20 per second per source, independently per source', () => {
    const rl = new RateLimiter();
    const burst = Array.from({ length: 10 }, () => rl.allow('192.0.2.1', 0));
    expect(burst.filter(Boolean)).toHaveLength(4);
    expect(rl.allow('192.0.2.2', 0)).toBe(true);
    let allowed = 0;
    for (let t = 1; t <= 10_000; t += 5) if (rl.allow('192.0.2.1', t)) allowed++;
    expect(allowed).toBeGreaterThanOrEqual(195);
    expect(allowed).toBeLessThanOrEqual(205);
  });

  it('forgets idle sources', () => {
    const rl = new RateLimiter();
    for (let i = 0; i < 100; i++) rl.allow(`10.0.0.${i}`, 0);
    expect(rl.size).toBe(100);
    rl.allow('10.1.0.1', 5_000);
    expect(rl.size).toBe(1);
  });

  it('turns on above the threshold and stays on for a second', () => {
    const lm = new LoadMonitor(10);
    for (let i = 0; i < 10; i++) expect(lm.record(i)).toBe(false);
    expect(lm.record(10)).toBe(true);
    expect(lm.isUnderLoad(1009)).toBe(true);
    expect(lm.isUnderLoad(1011)).toBe(false);
    lm.setUntil(5000);
    expect(lm.isUnderLoad(4999)).toBe(true);
    lm.setUntil(0);
    expect(lm.isUnderLoad(4999)).toBe(false);
  });
});

/** Initiations from a's key to b, built directly so tests control their timestamps and timing. */
function forger(p: Pair): (wallMs: number, now: number) => Uint8Array {
  const id = makeIdentity(crypto, p.a.privateKey);
  const hs = new Handshake(p.b.publicKey);
  hs.precomputedStaticStatic.set(crypto.x25519(p.a.privateKey, p.b.publicKey));
  const gen = new CookieGenerator(crypto, p.b.publicKey);
  let index = 1000;
  return (wallMs, now) => {
    const eph = new Uint8Array(32);
    rand(eph);
    const m = createInitiationMessage(id, hs, eph, tai64n(wallMs), index++)!;
    gen.addMacs(m, now);
    return m;
  };
}

describe('engine under load and initiation floods', () => {
  it('answers with a cookie under load, then accepts the retry carrying MAC2', () => {
    const p = new Pair();
    p.b.engine.setUnderLoad(p.clock.now + 60_000);
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'through'));
    expect(p.b.dropReasons()).toEqual(['cookie-required']);
    expect(p.b.sentOfType(MessageType.cookieReply)).toHaveLength(1);
    expect(p.b.tunOut).toHaveLength(0);
    expect(p.a.drops).toEqual([]); // the cookie reply was consumed
    p.advance(6_000); // retransmission with MAC2
    expect(p.b.tunOut.map((b) => new TextDecoder().decode(b.subarray(20)))).toEqual(['through']);
    expect(p.b.dropReasons()).toEqual(['cookie-required']);
  });

  it('binds a cookie to the source port: the MAC2 earned from one port is refused from another', () => {
    const p = new Pair();
    p.b.engine.setUnderLoad(p.clock.now + 60_000);
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'moved'));
    expect(p.b.dropReasons()).toEqual(['cookie-required']);
    // Same address, new port (a NAT rebinding, or another process sharing the address).
    p.a.endpoint = { address: p.a.endpoint.address, port: p.a.endpoint.port + 1 };
    p.advance(6_000); // the retransmission carries a MAC2 made with the old port's cookie
    expect(p.b.dropReasons()).toEqual(['cookie-required', 'cookie-required']);
    expect(p.b.sentOfType(MessageType.cookieReply)).toHaveLength(2);
    expect(p.b.tunOut).toHaveLength(0);
    p.advance(6_000); // with the new port's cookie it goes through
    expect(p.b.tunOut.map((b) => new TextDecoder().decode(b.subarray(20)))).toEqual(['moved']);
  });

  it('under load demands MAC2 of a handshake response too: without one it answers with a cookie', () => {
    const p = new Pair();
    p.b.engine.setUnderLoad(p.clock.now + 60_000);
    // b initiates; a (not under load) responds without MAC2, having no cookie from b.
    p.b.send(ipPacket('10.0.0.2', '10.0.0.1', 'from b'));
    expect(p.a.sentOfType(MessageType.response)).toHaveLength(1);
    expect(p.b.dropReasons()).toEqual(['cookie-required']);
    expect(p.b.sentOfType(MessageType.cookieReply)).toHaveLength(1);
    expect(p.b.events.filter((e) => e.kind === 'handshake-complete')).toHaveLength(0);
    expect(p.a.tunOut).toHaveLength(0);
    expect(p.a.drops).toEqual([]); // a took the cookie
    p.advance(6_000); // b retries; a's new response carries MAC2 and is accepted
    expect(p.a.tunOut.map((b) => new TextDecoder().decode(b.subarray(20)))).toEqual(['from b']);
    expect(p.b.dropReasons()).toEqual(['cookie-required']);
  });

  it('drops an initiation with a wrong MAC1 before any expensive work', () => {
    const p = new Pair();
    const forge = forger(p);
    const m = forge(p.clock.wallClockMs(), p.clock.now);
    m[INITIATION_SIZE - 20]! ^= 0x80;
    p.b.engine.decapsulate(m, p.a.endpoint, p.clock.now, p.b);
    expect(p.b.dropReasons()).toEqual(['mac1']);
  });

  it('accepts at most one initiation per peer per 50 ms, each with a strictly newer timestamp', () => {
    const p = new Pair();
    const forge = forger(p);
    const t = p.clock.now;
    const wall = p.clock.wallClockMs();
    const deliver = (m: Uint8Array, now: number): void => p.b.engine.decapsulate(m, p.a.endpoint, now, p.b);
    deliver(forge(wall, t), t);
    expect(p.b.sentOfType(MessageType.response)).toHaveLength(1);
    deliver(forge(wall + 100, t + 30), t + 30);
    expect(p.b.dropReasons()).toEqual(['initiation-flood']);
    deliver(forge(wall + 200, t + 50), t + 50);
    expect(p.b.dropReasons()).toEqual(['initiation-flood', 'initiation-flood']);
    deliver(forge(wall + 300, t + 51), t + 51);
    expect(p.b.sentOfType(MessageType.response)).toHaveLength(2);
    // An older or equal timestamp is a replay, whatever the timing.
    deliver(forge(wall + 300, t + 500), t + 500);
    deliver(forge(wall - 1000, t + 600), t + 600);
    expect(p.b.dropReasons().slice(2)).toEqual(['stale-timestamp', 'stale-timestamp']);
    expect(p.b.sentOfType(MessageType.response)).toHaveLength(2);
  });

  it('rate-limits a source that has a valid cookie under load', () => {
    const p = new Pair();
    p.b.engine.setUnderLoad(p.clock.now + 60_000);
    // Learn a cookie the normal way (a's engine consumes the reply).
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'x'));
    expect(p.b.dropReasons()).toEqual(['cookie-required']);
    // Replay a's MAC2-carrying retransmission ten times at one instant: the limiter lets 4 pass.
    let retry: Uint8Array | undefined;
    p.filter = (d) => {
      if (d.data[0] === MessageType.initiation) retry = d.data.slice();
      return false;
    };
    p.advance(6_000);
    p.filter = () => true;
    expect(retry).toBeDefined();
    for (let i = 0; i < 10; i++) p.b.engine.decapsulate(retry!.slice(), p.a.endpoint, p.clock.now, p.b);
    const reasons = p.b.dropReasons().slice(1);
    expect(reasons.filter((r) => r === 'rate-limited')).toHaveLength(6);
    // The 4 that passed: one accepted, then the same timestamp again is a replay.
    expect(reasons.filter((r) => r === 'stale-timestamp')).toHaveLength(3);
    // Other sources are not affected.
    expect(p.b.engine.dropCounts()['rate-limited']).toBe(6);
  });

  it('detects load from the handshake rate itself', () => {
    const p = new Pair();
    const forge = forger(p);
    const wall = p.clock.wallClockMs();
    const junk = forge(wall, p.clock.now);
    for (let i = 0; i < 200; i++) {
      const m = junk.slice();
      m[10]! ^= 1; // MAC1 now wrong: cheap to reject, still counted as handshake traffic
      p.b.engine.decapsulate(m, { address: '198.18.0.1', port: 1000 + i }, p.clock.now, p.b);
    }
    expect(p.b.engine.isUnderLoad(p.clock.now)).toBe(true);
    expect(p.b.engine.isUnderLoad(p.clock.now + 1_001)).toBe(false);
  });

  it('skips the MAC2 computation for a zero MAC2 and limits cookie replies per source', () => {
    const p = new Pair();
    p.b.engine.setUnderLoad(p.clock.now + 60_000);
    const flood = floodFrom(p.b.publicKey);
    const source = { address: '198.18.0.9', port: 999 };
    for (let i = 0; i < 50; i++) p.b.engine.decapsulate(flood(), source, p.clock.now, p.b);
    // The limiter's burst of replies at one instant; the rest cost only MAC1 and the limiter.
    expect(p.b.sentOfType(MessageType.cookieReply)).toHaveLength(4);
    const drops = p.b.engine.dropCounts();
    expect([drops['cookie-required'], drops['rate-limited']]).toEqual([4, 46]);
    // Another source still gets its cookie at once.
    p.b.engine.decapsulate(flood(), { address: '198.18.0.10', port: 999 }, p.clock.now, p.b);
    expect(p.b.sentOfType(MessageType.cookieReply)).toHaveLength(5);
  });

  it('a legit peer rekeys during a flood (cookie, then MAC2) and its session survives', () => {
    const p = new Pair({ underLoadThreshold: 10 });
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'hello'));
    const flood = floodFrom(p.b.publicKey);
    const sources = Array.from({ length: 32 }, (_, i) => ({ address: `198.18.1.${i}`, port: 40000 + i }));
    let sent = 1;
    // 250 s of one packet per second from a, with 300 MAC1-valid initiations per second at b
    // from 32 other addresses: b is under load the whole time; a rekeys at ~120 s (cookie, then
    // MAC2 5 s later), and packets after REJECT_AFTER_TIME (180 s) prove the new session.
    for (let t = 0; t < 2500; t++) {
      for (let k = 0; k < 30; k++) p.b.engine.decapsulate(flood(), sources[(t * 30 + k) % 32]!, p.clock.now, p.b);
      if (t % 10 === 0) {
        p.a.send(ipPacket('10.0.0.1', '10.0.0.2', `a${t}`));
        sent++;
      }
      p.advance(100);
    }
    expect(p.b.engine.isUnderLoad(p.clock.now)).toBe(true);
    expect(p.b.tunOut.length).toBeGreaterThanOrEqual(sent - 10); // rekeys may hold a few packets
    expect(p.a.events.filter((e) => e.kind === 'handshake-complete').length).toBeGreaterThanOrEqual(2);
    const drops = p.b.engine.dropCounts();
    expect(drops['cookie-required']).toBeGreaterThan(0);
    expect(drops['decrypt'] + drops['expired-keypair'] + drops['unknown-index']).toBe(0);
    // The per-source cookie limit keeps replies near 32 sources x 20/s, far below the flood.
    expect(p.b.sentOfType(MessageType.cookieReply).length).toBeLessThan(250 * 32 * 20 + 32 * 5 + 10);
  });
});

/** MAC1-valid initiations with random contents for `publicKey`, MAC2 zero (a cookie-less flood). */
function floodFrom(publicKey: Uint8Array): () => Uint8Array {
  const gen = new CookieGenerator(crypto, publicKey);
  return () => {
    const m = new Uint8Array(INITIATION_SIZE);
    rand(m);
    m.set([MessageType.initiation, 0, 0, 0]);
    m.fill(0, INITIATION_SIZE - 32);
    gen.addMacs(m, 0);
    return m;
  };
}
