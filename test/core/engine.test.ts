// Two complete engines over an in-memory link with a manual clock (issue 2 "Tests"): handshakes,
// data, rekey, keepalives, expiry, zeroing, roaming, replay, PSK, cookies, floods, queues, retries.

import { describe, expect, it } from 'vitest';
import { MessageType } from '../../src/core/messages.js';
import { PEER_HANDSHAKE, PEER_KEYPAIRS, PEER_STAGED } from '../../src/core/peer.js';
import { ipPacket } from '../helpers/ip-packet.js';
import { Pair, route } from '../helpers/pair.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b.subarray(20));

describe('engine pair', () => {
  it('handshakes on first packet, delivers the queued packet, then carries data both ways', () => {
    const p = new Pair();
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'first'));
    expect(p.a.sentOfType(MessageType.initiation)).toHaveLength(1);
    expect(p.b.sentOfType(MessageType.response)).toHaveLength(1);
    expect(p.b.tunOut.map(text)).toEqual(['first']);
    p.b.send(ipPacket('10.0.0.2', '10.0.0.1', 'reply'));
    expect(p.a.tunOut.map(text)).toEqual(['reply']);
    for (let i = 0; i < 10; i++) {
      p.a.send(ipPacket('10.0.0.1', '10.0.0.2', `a${i}`));
      p.b.send(ipPacket('10.0.0.2', '10.0.0.1', `b${i}`));
    }
    expect(p.b.tunOut).toHaveLength(11);
    expect(p.a.tunOut).toHaveLength(11);
    expect(p.a.drops).toEqual([]);
    expect(p.b.drops).toEqual([]);
    expect(p.a.peer.lastHandshakeWallMs).toBeGreaterThan(0);
    expect(p.b.peer.lastHandshakeWallMs).toBeGreaterThan(0);
    expect(p.a.peer.txBytes).toBe(p.b.peer.rxBytes);
  });

  it('handshakes the other way round too', () => {
    const p = new Pair();
    p.b.send(ipPacket('10.0.0.2', '10.0.0.1', 'from b'));
    expect(p.a.tunOut.map(text)).toEqual(['from b']);
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'from a'));
    expect(p.b.tunOut.map(text)).toEqual(['from a']);
    expect(p.b.sentOfType(MessageType.initiation)).toHaveLength(1);
    expect(p.a.sentOfType(MessageType.initiation)).toHaveLength(0);
  });
});

const data = (d: { data: Uint8Array }): boolean => d.data[0] === MessageType.transport && d.data.length > 32;
const keepalive = (d: { data: Uint8Array }): boolean => d.data[0] === MessageType.transport && d.data.length === 32;

/** A pair that has completed one handshake (a initiated) at clock time `start`. */
function established(opts: ConstructorParameters<typeof Pair>[0] = {}): Pair {
  const p = new Pair(opts);
  p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'hello'));
  p.b.send(ipPacket('10.0.0.2', '10.0.0.1', 'hello back'));
  expect(p.a.tunOut).toHaveLength(1);
  expect(p.b.tunOut).toHaveLength(1);
  return p;
}

describe('engine timers (whitepaper 6)', () => {
  it('rekeys at REKEY_AFTER_TIME (120 s) while traffic flows, losing no packet', () => {
    const p = established();
    const start = p.clock.now;
    for (let s = 1; s <= 250; s++) {
      p.advance(1000);
      p.a.send(ipPacket('10.0.0.1', '10.0.0.2', `a${s}`));
      p.b.send(ipPacket('10.0.0.2', '10.0.0.1', `b${s}`));
    }
    expect(p.b.tunOut).toHaveLength(251);
    expect(p.a.tunOut).toHaveLength(251);
    expect(p.a.drops).toEqual([]);
    expect(p.b.drops).toEqual([]);
    expect(p.a.sentOfType(MessageType.initiation)).toHaveLength(3); // t=0, ~120 s, ~240 s
    const completes = p.a.events.filter((e) => e.kind === 'handshake-complete');
    expect(completes).toHaveLength(3);
    // Responder never initiates on time alone.
    expect(p.b.sentOfType(MessageType.initiation)).toHaveLength(0);
    expect(p.clock.now - start).toBe(250_000);
  });

  it('sends a passive keepalive 10 s after receiving data it did not answer', () => {
    const p = established();
    const t0 = p.clock.now;
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'ping'));
    const before = p.b.sent.filter(keepalive).length;
    p.advance(9_999);
    expect(p.b.sent.filter(keepalive).length).toBe(before);
    p.advance(2);
    expect(p.b.sent.filter(keepalive).length).toBe(before + 1);
    expect(p.clock.now - t0).toBe(10_001);
    // Nothing more while idle.
    p.advance(60_000);
    expect(p.b.sent.filter(keepalive).length).toBe(before + 1);
  });

  it('sends persistent keepalives at the configured interval', () => {
    const p = established();
    p.a.engine.setPersistentKeepalive(p.a.peer, 25);
    p.advance(0);
    const first = p.a.sent.filter(keepalive).length;
    expect(first).toBeGreaterThanOrEqual(1); // turning it on sends one at once
    p.advance(100_000);
    expect(p.a.sent.filter(keepalive).length - first).toBe(4);
    p.a.engine.setPersistentKeepalive(p.a.peer, 0);
    const off = p.a.sent.filter(keepalive).length;
    p.advance(100_000);
    expect(p.a.sent.filter(keepalive).length).toBe(off);
  });

  it('a configured persistent keepalive starts a handshake by itself', () => {
    const p = new Pair();
    p.a.engine.setPersistentKeepalive(p.a.peer, 10);
    p.advance(1);
    expect(p.a.sentOfType(MessageType.initiation)).toHaveLength(1);
    expect(p.b.peer[PEER_KEYPAIRS].current).toBeDefined();
    p.advance(30_000);
    expect(p.a.sent.filter(keepalive).length).toBeGreaterThanOrEqual(3);
  });

  it('starts a new handshake when sent data gets no answer for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT', () => {
    const p = established();
    p.filter = (d) => d.from !== p.b.endpoint; // b goes silent
    const t0 = p.clock.now;
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'anyone?'));
    const initsBefore = p.a.sentOfType(MessageType.initiation).length;
    p.advance(14_999);
    expect(p.a.sentOfType(MessageType.initiation).length).toBe(initsBefore);
    p.advance(400);
    expect(p.a.sentOfType(MessageType.initiation).length).toBe(initsBefore + 1);
    const at = p.a.events.filter((e) => e.kind === 'handshake-initiation-sent').length;
    expect(at).toBe(initsBefore + 1);
    expect(p.clock.now - t0).toBe(15_399);
  });

  it('rejects a session after REJECT_AFTER_TIME (180 s) and handshakes anew to send', () => {
    const p = established();
    let captured: Uint8Array | undefined;
    p.filter = (d) => {
      if (d.from === p.a.endpoint && data(d) && captured === undefined) captured = d.data.slice();
      return true;
    };
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'late'));
    p.filter = () => true;
    p.advance(180_000);
    expect(p.a.sentOfType(MessageType.initiation)).toHaveLength(1); // idle: no rekey on time
    p.b.engine.decapsulate(captured!, p.a.endpoint, p.clock.now, p.b);
    expect(p.b.dropReasons()).toEqual(['expired-keypair']);
    const inits = p.a.sentOfType(MessageType.initiation).length;
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'fresh'));
    expect(p.a.sentOfType(MessageType.initiation).length).toBe(inits + 1);
    expect(p.b.tunOut.map(text)).toContain('fresh');
  });

  it('zeroes all key material at REJECT_AFTER_TIME * 3 (540 s) without a new session', () => {
    const p = established();
    const aKeys = p.a.peer[PEER_KEYPAIRS].current!;
    const bKeys = p.b.peer[PEER_KEYPAIRS].current!;
    expect(p.a.engine.indexCount).toBeGreaterThan(0);
    p.advance(539_000);
    expect(aKeys.wiped).toBe(false);
    p.advance(2_000);
    for (const n of [p.a, p.b]) {
      expect(n.peer[PEER_KEYPAIRS].current).toBeUndefined();
      expect(n.peer[PEER_KEYPAIRS].previous).toBeUndefined();
      expect(n.peer[PEER_KEYPAIRS].next).toBeUndefined();
      expect(n.engine.indexCount).toBe(0);
      expect(n.peer[PEER_HANDSHAKE].noise.chainKey.every((x) => x === 0)).toBe(true);
      expect(n.peer[PEER_HANDSHAKE].localEphemeral.every((x) => x === 0)).toBe(true);
      expect(n.events.some((e) => e.kind === 'keys-zeroed')).toBe(true);
    }
    expect(aKeys.wiped).toBe(true);
    expect(bKeys.wiped).toBe(true);
    expect(() => aKeys.send.seal(0, new Uint8Array(0), undefined, new Uint8Array(16))).toThrow(TypeError);
    // Still able to talk afterwards.
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'again'));
    expect(p.b.tunOut.map(text)).toContain('again');
  });

  it('retransmits the initiation every REKEY_TIMEOUT plus jitter and gives up after REKEY_ATTEMPT_TIME', () => {
    const p = new Pair();
    p.filter = () => false; // b unreachable
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'lost'));
    p.advance(300_000);
    // The first plus MAX_TIMER_HANDSHAKES + 1 retries, like wireguard-go; then nothing more.
    expect(p.a.sentOfType(MessageType.initiation)).toHaveLength(20);
    expect(p.a.events.filter((e) => e.kind === 'handshake-initiation-sent' && e.retry)).toHaveLength(19);
    expect(p.a.events.filter((e) => e.kind === 'handshake-gave-up')).toHaveLength(1);
    expect(p.a.dropReasons()).toEqual(['handshake-timeout']);
    expect(p.a.peer[PEER_STAGED]).toHaveLength(0);
  });

  it('spaces retransmissions by 5 s plus a jitter below 334 ms that varies', () => {
    const p = new Pair();
    p.filter = () => false;
    const at: number[] = [];
    const orig = p.a.network.bind(p.a);
    p.a.network = (peer, to, d) => {
      if (d[0] === MessageType.initiation) at.push(p.clock.now);
      orig(peer, to, d);
    };
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'lost'));
    p.advance(200_000);
    expect(at).toHaveLength(20);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    for (const g of gaps) {
      expect(g).toBeGreaterThanOrEqual(5_000);
      expect(g).toBeLessThan(5_334);
    }
    expect(new Set(gaps).size).toBeGreaterThan(5);
    expect(at.at(-1)! - at[0]!).toBeGreaterThanOrEqual(90_000);
  });
});

describe('engine sessions', () => {
  it('queues packets while handshaking, flushes them in order, and bounds the queue', () => {
    const p = new Pair();
    p.filter = () => false;
    for (let i = 0; i < 130; i++) p.a.send(ipPacket('10.0.0.1', '10.0.0.2', `q${i}`));
    expect(p.a.dropReasons()).toEqual(['queue-full', 'queue-full']);
    p.filter = () => true;
    p.advance(6_000); // the retransmission gets through
    expect(p.b.tunOut.map(text)).toEqual(Array.from({ length: 128 }, (_, i) => `q${i + 2}`));
  });

  it('follows the peer to a new endpoint on authenticated packets (roaming)', () => {
    const p = established();
    p.a.endpoint = { address: '203.0.113.9', port: 40000 };
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'moved'));
    expect(p.b.peer.endpoint).toEqual({ address: '203.0.113.9', port: 40000 });
    expect(p.b.events.some((e) => e.kind === 'endpoint-changed')).toBe(true);
    p.b.send(ipPacket('10.0.0.2', '10.0.0.1', 'found you'));
    expect(p.a.tunOut.map(text)).toContain('found you');
    // An unauthenticated datagram from elsewhere does not move it.
    const junk = new Uint8Array(64);
    junk[0] = MessageType.transport;
    p.b.engine.decapsulate(junk, { address: '198.18.0.1', port: 1 }, p.clock.now, p.b);
    expect(p.b.peer.endpoint).toEqual({ address: '203.0.113.9', port: 40000 });
  });

  it('rejects a replayed transport message', () => {
    const p = established();
    let copy: Uint8Array | undefined;
    p.filter = (d) => {
      if (data(d) && d.from === p.a.endpoint) copy = d.data.slice();
      return true;
    };
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'once'));
    expect(p.b.tunOut.map(text)).toContain('once');
    const delivered = p.b.tunOut.length;
    p.b.engine.decapsulate(copy!, p.a.endpoint, p.clock.now, p.b);
    expect(p.b.dropReasons()).toEqual(['replay']);
    expect(p.b.tunOut).toHaveLength(delivered);
    expect(p.b.engine.dropCounts().replay).toBe(1);
  });

  it('fails the handshake when the pre-shared keys differ, and succeeds when they match', () => {
    const psk = new Uint8Array(32).fill(9);
    const bad = new Pair({ psk });
    bad.b.engine.setPresharedKey(bad.b.peer, new Uint8Array(32).fill(8));
    bad.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'secret'));
    expect(bad.a.dropReasons()).toContain('handshake-decrypt');
    expect(bad.b.tunOut).toHaveLength(0);
    const good = new Pair({ psk });
    good.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'secret'));
    expect(good.b.tunOut.map(text)).toEqual(['secret']);
  });

  it('drops decrypted packets whose inner source is not the peer\'s allowed IP', () => {
    const p = established();
    p.a.engine.sendTo(p.a.peer, ipPacket('10.9.9.9', '10.0.0.2', 'spoof'), p.clock.now, p.a);
    p.flush();
    expect(p.b.dropReasons()).toEqual(['allowed-ips']);
    p.a.engine.sendTo(p.a.peer, new Uint8Array([0x45, 0, 0, 99, 1, 2, 3]), p.clock.now, p.a);
    p.flush();
    expect(p.b.dropReasons()).toEqual(['allowed-ips', 'inner-malformed']);
    p.a.engine.sendTo(p.a.peer, ipPacket('fd00::1', 'fd00::2', 'v6'), p.clock.now, p.a);
    p.flush();
    expect(p.b.dropReasons()).toEqual(['allowed-ips', 'inner-malformed', 'allowed-ips']);
  });

  it('drops a packet whose inner source another peer owns (three peers: A sends from C\'s address, B drops it)', () => {
    const p = established();
    // B also has peer C, routed 10.0.0.3/32; C's key only needs to be configured, not online.
    const c = new Pair({ seedA: 3, seedB: 4 }).a;
    const peerC = p.b.engine.addPeer(c.publicKey, {});
    route(p.b.engine, peerC, '10.0.0.3/32');
    p.a.engine.sendTo(p.a.peer, ipPacket('10.0.0.3', '10.0.0.2', 'as C'), p.clock.now, p.a);
    p.flush();
    expect(p.b.dropReasons()).toEqual(['allowed-ips']);
    expect(p.b.drops[0]!.peer).toBe(p.b.peer);
    expect(p.b.tunOut.map(text)).toEqual(['hello']);
  });

  // Both ends initiate within one round trip (two agents told of each other at once).
  const initiations = (n: { events: { kind: string; retry?: boolean }[] }) =>
    n.events.filter((e) => e.kind === 'handshake-initiation-sent');

  it('crossed initiations between two of ours complete in one round trip, without a retry', () => {
    const p = new Pair();
    p.a.engine.encapsulate(ipPacket('10.0.0.1', '10.0.0.2', 'x'), p.clock.now, p.a);
    p.b.engine.encapsulate(ipPacket('10.0.0.2', '10.0.0.1', 'y'), p.clock.now, p.b);
    p.flush(); // no time passes: every datagram is answered at once
    expect(p.b.tunOut.map(text)).toEqual(['x']);
    expect(p.a.tunOut.map(text)).toEqual(['y']);
    expect(initiations(p.a)).toHaveLength(1);
    expect(initiations(p.b)).toHaveLength(1);
    expect(p.a.dropReasons()).toEqual([]);
    expect(p.b.dropReasons()).toEqual([]);
    // Each side now sends on the session it initiated and receives on the other's.
    p.advance(20_000);
    p.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'x2'));
    p.b.send(ipPacket('10.0.0.2', '10.0.0.1', 'y2'));
    expect(p.b.tunOut.map(text)).toEqual(['x', 'x2']);
    expect(p.a.tunOut.map(text)).toEqual(['y', 'y2']);
    expect(initiations(p.a).filter((e) => e.retry)).toEqual([]);
    expect(initiations(p.b).filter((e) => e.retry)).toEqual([]);
  });

  it('crossed initiations with a single-state peer (drops the response to its own) complete in one round trip', () => {
    // wireguard-go keeps one handshake state: answering our initiation discards its own, so our
    // response to its initiation is dropped there. Model that by losing our response on the wire.
    const p = new Pair();
    p.a.engine.encapsulate(ipPacket('10.0.0.1', '10.0.0.2', 'x'), p.clock.now, p.a);
    p.b.engine.encapsulate(ipPacket('10.0.0.2', '10.0.0.1', 'y'), p.clock.now, p.b);
    const fromA = (d: { from: { address: string } }) => d.from.address === p.a.endpoint.address;
    p.filter = (d) => !(fromA(d) && d.data[0] === MessageType.response);
    p.flush();
    expect(p.lost.map((d) => d.data[0])).toEqual([MessageType.response]);
    expect(p.b.tunOut.map(text)).toEqual(['x']);
    expect(p.a.tunOut.map(text)).toEqual(['y']);
    expect(initiations(p.a)).toHaveLength(1);
  });

  it('a crossed initiation whose response never comes costs no index once the retry replaces it', () => {
    const p = new Pair();
    const baseline = p.a.engine.indexCount;
    p.a.engine.encapsulate(ipPacket('10.0.0.1', '10.0.0.2', 'x'), p.clock.now, p.a);
    p.b.engine.encapsulate(ipPacket('10.0.0.2', '10.0.0.1', 'y'), p.clock.now, p.b);
    // Lose every response: both keep their crossed initiation until the retry.
    p.filter = (d) => d.data[0] !== MessageType.response;
    p.flush();
    // A: its crossed initiation plus the responder keypair it made for B's.
    expect(p.a.engine.indexCount).toBe(baseline + 2);
    p.filter = () => true;
    p.advance(20_000);
    expect(p.b.tunOut.map(text)).toEqual(['x']);
    expect(p.a.tunOut.map(text)).toEqual(['y']);
    expect(initiations(p.a).filter((e) => e.retry).length + initiations(p.b).filter((e) => e.retry).length).toBeGreaterThan(0);
    // Removing the peer releases everything, the crossed index included.
    p.a.engine.removePeer(p.a.peer);
    expect(p.a.engine.indexCount).toBe(baseline);
  });

  it('a response to a crossed initiation is consumed at most once', () => {
    const p = new Pair();
    const captured: Uint8Array[] = [];
    p.filter = (d) => {
      if (d.data[0] === MessageType.response && d.from.address === p.b.endpoint.address) captured.push(d.data.slice());
      return true;
    };
    p.a.engine.encapsulate(ipPacket('10.0.0.1', '10.0.0.2', 'x'), p.clock.now, p.a);
    p.b.engine.encapsulate(ipPacket('10.0.0.2', '10.0.0.1', 'y'), p.clock.now, p.b);
    p.flush();
    expect(captured).toHaveLength(1);
    const completes = p.a.events.filter((e) => e.kind === 'handshake-complete').length;
    p.a.engine.decapsulate(captured[0]!, p.b.endpoint, p.clock.now, p.a);
    expect(p.a.dropReasons()).toEqual(['unexpected-response']);
    expect(p.a.events.filter((e) => e.kind === 'handshake-complete').length).toBe(completes);
  });
});
