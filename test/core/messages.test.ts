// Message framing (whitepaper 5.4): exact lengths, reserved bytes, field round-trips, counters.

import { describe, expect, it } from 'vitest';
import {
  COOKIE_REPLY_SIZE,
  INITIATION_SIZE,
  RESPONSE_SIZE,
  TRANSPORT_MIN_SIZE,
  classifyMessage,
  parseCookieReply,
  parseInitiation,
  parseResponse,
  parseTransport,
  readCounter,
  serializeCookieReply,
  serializeInitiation,
  serializeResponse,
  serializeTransport,
  writeCounter,
} from '../../src/core/messages.js';
import { seededRandom } from '../helpers/rng.js';

const rand = seededRandom(7);
const bytes = (n: number): Uint8Array => {
  const b = new Uint8Array(n);
  rand(b);
  return b;
};

describe('message framing', () => {
  it('classifies by type byte, reserved bytes and exact length', () => {
    const msg = (type: number, n: number): Uint8Array => {
      const b = new Uint8Array(n);
      b[0] = type;
      return b;
    };
    expect(classifyMessage(new Uint8Array(3))).toBe('short');
    expect(classifyMessage(msg(0, 148))).toBe('unknown-type');
    expect(classifyMessage(msg(5, 148))).toBe('unknown-type');
    expect(classifyMessage(msg(1, INITIATION_SIZE))).toBe(1);
    expect(classifyMessage(msg(1, INITIATION_SIZE + 1))).toBe('bad-length');
    expect(classifyMessage(msg(1, INITIATION_SIZE - 1))).toBe('bad-length');
    expect(classifyMessage(msg(2, RESPONSE_SIZE))).toBe(2);
    expect(classifyMessage(msg(2, INITIATION_SIZE))).toBe('bad-length');
    expect(classifyMessage(msg(3, COOKIE_REPLY_SIZE))).toBe(3);
    expect(classifyMessage(msg(3, COOKIE_REPLY_SIZE + 16))).toBe('bad-length');
    expect(classifyMessage(msg(4, TRANSPORT_MIN_SIZE))).toBe(4);
    expect(classifyMessage(msg(4, 1500))).toBe(4);
    expect(classifyMessage(msg(4, TRANSPORT_MIN_SIZE - 1))).toBe('bad-length');
    for (const at of [1, 2, 3]) {
      const b = msg(1, INITIATION_SIZE);
      b[at] = 1;
      expect(classifyMessage(b)).toBe('reserved-nonzero');
    }
  });

  it('round-trips every message type through parse and serialize', () => {
    const init = { sender: 0xdeadbeef, ephemeral: bytes(32), static: bytes(48), timestamp: bytes(28), mac1: bytes(16), mac2: bytes(16) };
    const i = serializeInitiation(init);
    expect(i.length).toBe(148);
    expect(Array.from(i.subarray(0, 8))).toEqual([1, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde]);
    expect(parseInitiation(i)).toEqual(init);
    const resp = { sender: 1, receiver: 0xffffffff, ephemeral: bytes(32), empty: bytes(16), mac1: bytes(16), mac2: bytes(16) };
    const r = serializeResponse(resp);
    expect(r.length).toBe(92);
    expect(parseResponse(r)).toEqual(resp);
    const cookie = { receiver: 12345, nonce: bytes(24), cookie: bytes(32) };
    const c = serializeCookieReply(cookie);
    expect(c.length).toBe(64);
    expect(parseCookieReply(c)).toEqual(cookie);
    const transport = { receiver: 7, counter: 2 ** 40 + 3, content: bytes(48) };
    const t = serializeTransport(transport);
    expect(t.length).toBe(64);
    expect(parseTransport(t)).toEqual(transport);
    expect(parseTransport(i)).toBe('unknown-type');
    expect(parseInitiation(t.subarray(0, 20))).toBe('bad-length');
  });

  it('refuses malformed fields when serializing', () => {
    expect(() => serializeCookieReply({ receiver: 1, nonce: bytes(23), cookie: bytes(32) })).toThrow(RangeError);
    expect(() => serializeTransport({ receiver: -1, counter: 0, content: bytes(16) })).toThrow(RangeError);
    expect(() => serializeTransport({ receiver: 1, counter: 2 ** 53, content: bytes(16) })).toThrow(RangeError);
  });

  it('reads 64-bit counters exactly below 2^53 and flags the rest', () => {
    const b = new Uint8Array(8);
    for (const c of [0, 1, 0xffffffff, 0x100000000, 2 ** 52 + 12345, Number.MAX_SAFE_INTEGER]) {
      writeCounter(b, 0, c);
      expect(readCounter(b, 0)).toBe(c);
    }
    b.set([0, 0, 0, 0, 0, 0, 0x20, 0]); // 2^53
    expect(readCounter(b, 0)).toBe(-1);
    b.fill(0xff);
    expect(readCounter(b, 0)).toBe(-1);
  });
});
