// An initiation still unanswered when the endpoint is set anew goes, byte for byte, to the new
// endpoint at the next tick instead of waiting REKEY_TIMEOUT for the retry (two agents behind one
// NAT: the first endpoint they learn of each other is the NAT's public address, which does not
// loop back; the path prober then sets the LAN address).

import { describe, expect, it } from 'vitest';
import { REKEY_TIMEOUT } from '../../src/core/constants.js';
import { MessageType } from '../../src/core/messages.js';
import { ipPacket } from '../helpers/ip-packet.js';
import { Pair } from '../helpers/pair.js';

const NAT = { address: '203.0.113.9', port: 40000 }; // nobody answers there
const text = (b: Uint8Array): string => new TextDecoder().decode(b.subarray(20));

function pairBehindNat(): Pair {
  const p = new Pair();
  p.a.engine.setEndpoint(p.a.peer, NAT);
  p.a.engine.encapsulate(ipPacket('10.0.0.1', '10.0.0.2', 'hello'), p.clock.now, p.a);
  p.flush();
  expect(p.lost.map((d) => d.to)).toEqual([NAT]);
  return p;
}

const kinds = (events: { kind: string }[], kind: string) => events.filter((e) => e.kind === kind).length;

describe('an unanswered initiation follows a new endpoint', () => {
  it('is resent unchanged to the new endpoint at once and completes in one round trip', () => {
    const p = pairBehindNat();
    const first = p.lost[0]!.data.slice();
    p.clock.advance(300);
    p.a.engine.setEndpoint(p.a.peer, p.b.endpoint);
    expect(p.a.engine.nextDeadline()).toBeLessThanOrEqual(p.clock.now);
    p.tick();
    const initiations = p.a.sentOfType(MessageType.initiation);
    expect(initiations).toHaveLength(2);
    expect(initiations[1]!.to).toEqual(p.b.endpoint);
    expect(initiations[1]!.data).toEqual(first); // same bytes: not a new initiation
    expect(p.b.tunOut.map(text)).toEqual(['hello']);
    expect(kinds(p.a.events, 'handshake-initiation-sent')).toBe(1);
    expect(kinds(p.a.events, 'handshake-initiation-resent')).toBe(1);
    expect(kinds(p.a.events, 'handshake-complete')).toBe(1);
  });

  it('a copy that already arrived is refused as a replay and changes nothing', () => {
    const p = new Pair();
    p.a.engine.encapsulate(ipPacket('10.0.0.1', '10.0.0.2', 'x'), p.clock.now, p.a);
    // The response is lost: the initiation stays pending at A, B consumed it.
    p.filter = (d) => d.data[0] !== MessageType.response;
    p.flush();
    p.filter = () => true;
    p.a.engine.setEndpoint(p.a.peer, { address: p.b.endpoint.address, port: p.b.endpoint.port }); // same: nothing
    expect(p.a.engine.nextDeadline()).toBeGreaterThan(p.clock.now);
    // Away and back before the next tick: the copy goes to B again.
    p.a.engine.setEndpoint(p.a.peer, { address: '198.51.100.99', port: 1 });
    p.a.engine.setEndpoint(p.a.peer, { ...p.b.endpoint });
    p.tick();
    expect(p.b.dropReasons()).toContain('stale-timestamp');
  });

  it('is not resent when the endpoint does not change, nor when nothing is pending', () => {
    const p = pairBehindNat();
    p.a.engine.setEndpoint(p.a.peer, { ...NAT });
    expect(p.a.engine.nextDeadline()).toBeGreaterThan(p.clock.now);
    // After a completed handshake nothing is pending: moving the endpoint sends nothing.
    const q = new Pair();
    q.a.send(ipPacket('10.0.0.1', '10.0.0.2', 'x'));
    expect(q.b.tunOut).toHaveLength(1);
    const before = q.a.sent.length;
    q.a.engine.setEndpoint(q.a.peer, { address: '198.51.100.7', port: 9 });
    q.tick();
    expect(q.a.sent.length).toBe(before);
  });

  it('is not resent once REKEY_TIMEOUT has passed: the retry sends a new initiation instead', () => {
    const p = pairBehindNat();
    p.clock.advance(REKEY_TIMEOUT + 400); // past the retry deadline, but no tick yet
    p.a.engine.setEndpoint(p.a.peer, p.b.endpoint);
    p.tick();
    expect(kinds(p.a.events, 'handshake-initiation-resent')).toBe(0);
    expect(p.a.events.filter((e) => e.kind === 'handshake-initiation-sent' && (e as { retry: boolean }).retry)).toHaveLength(1);
    expect(p.b.tunOut.map(text)).toEqual(['hello']);
  });

  it('a peer configured without an endpoint reaches it as soon as one is set', () => {
    const p = new Pair();
    p.a.engine.setEndpoint(p.a.peer, undefined);
    p.a.engine.encapsulate(ipPacket('10.0.0.1', '10.0.0.2', 'early'), p.clock.now, p.a);
    expect(p.a.dropReasons()).toContain('no-endpoint');
    p.clock.advance(50);
    p.a.engine.setEndpoint(p.a.peer, p.b.endpoint);
    p.tick();
    expect(p.b.tunOut.map(text)).toEqual(['early']);
    expect(p.clock.now).toBeLessThan(REKEY_TIMEOUT);
  });
});
