// Two complete engines over an in-memory link with a manual clock (issue 2 "Tests"): handshakes,
// data, rekey, keepalives, expiry, zeroing, roaming, replay, PSK, cookies, floods, queues, retries.

import { describe, expect, it } from 'vitest';
import { MessageType } from '../../src/core/messages.js';
import { ipPacket } from '../helpers/ip-packet.js';
import { Pair } from '../helpers/pair.js';

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
