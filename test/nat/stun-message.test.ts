// STUN codec: RFC 5769 vectors (vectors/stun-rfc5769.json) parse, their FINGERPRINT and
// MESSAGE-INTEGRITY verify, our encoder round-trips, and random/mutated datagrams never throw and
// always get a drop reason from the closed list.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  STUN_ATTR,
  STUN_DROP_REASONS,
  STUN_MAGIC_COOKIE,
  checkIntegrity,
  decodeAddress,
  decodeStun,
  encodeAddress,
  encodeBindingRequest,
  encodeBindingSuccess,
  encodeErrorResponse,
  encodeStun,
  getAttribute,
  longTermKey,
  looksLikeStun,
  readErrorCode,
  readMappedAddress,
  readSoftware,
  stunMessageType,
  type StunMessage,
} from '../../src/nat/stun-message.js';
import { fromHex, toHex } from '../helpers/bytes.js';
import { seededInts, seededRandom } from '../helpers/rng.js';

interface Vector {
  name: string;
  hex: string;
  class: string;
  transactionId: string;
  software?: string;
  username?: string;
  password?: string;
  realm?: string;
  nonce?: string;
  longTermPassword?: string;
  mapped?: { address: string; port: number };
  fingerprint: boolean;
}
const file = JSON.parse(readFileSync(new URL('../../vectors/stun-rfc5769.json', import.meta.url), 'utf8')) as { vectors: Vector[] };
const bytesOf = (v: Vector) => fromHex(v.hex.replace(/ /g, ''));

function decodeOk(data: Uint8Array): StunMessage {
  const r = decodeStun(data);
  if (!r.ok) throw new Error(`decode failed: ${r.reason}`);
  return r.message;
}

const TID = fromHex('0102030405060708090a0b0c');

describe('RFC 5769 vectors', () => {
  it('has all four', () => expect(file.vectors).toHaveLength(4));
  for (const v of file.vectors) {
    it(v.name, () => {
      const data = bytesOf(v);
      expect(looksLikeStun(data)).toBe(true);
      const m = decodeOk(data);
      expect(m.method).toBe(1);
      expect(m.cls).toBe(v.class);
      expect(toHex(m.transactionId)).toBe(v.transactionId);
      expect(m.hasFingerprint).toBe(v.fingerprint);
      if (v.software !== undefined) expect(readSoftware(m)).toBe(v.software);
      const text = (t: number) => Buffer.from(getAttribute(m, t) ?? new Uint8Array()).toString('utf8');
      if (v.username !== undefined) expect(text(STUN_ATTR.USERNAME)).toBe(v.username);
      if (v.realm !== undefined) expect(text(STUN_ATTR.REALM)).toBe(v.realm);
      if (v.nonce !== undefined) expect(text(STUN_ATTR.NONCE)).toBe(v.nonce);
      if (v.mapped !== undefined) expect(readMappedAddress(m)).toEqual(v.mapped);
      const key =
        v.password !== undefined
          ? Buffer.from(v.password, 'utf8')
          : longTermKey(v.username!, v.realm!, v.longTermPassword!);
      expect(checkIntegrity(m, key)).toBe(true);
      expect(checkIntegrity(m, Buffer.from('wrong'))).toBe(false);
    });
  }

  it('a flipped bit anywhere after the header is refused (FINGERPRINT or framing)', () => {
    const data = bytesOf(file.vectors[1]!);
    for (let i = 20; i < data.length - 8; i++) {
      const copy = data.slice();
      copy[i]! ^= 0x01;
      // Mostly fingerprint-mismatch; a flipped attribute length may be caught earlier.
      expect(decodeStun(copy).ok).toBe(false);
    }
  });

  it('reading a message held in a Node Buffer leaves the datagram as received, and reads the same twice', () => {
    // Buffer#slice is a view: a "copy" made with it and then XORed or patched wrote into the
    // caller's datagram, so a second read decoded another address (issue 11 audit).
    for (const v of file.vectors) {
      const data = Buffer.from(bytesOf(v));
      const before = toHex(data);
      const m = decodeOk(data);
      const key = v.password !== undefined ? Buffer.from(v.password, 'utf8') : longTermKey(v.username!, v.realm!, v.longTermPassword!);
      if (v.mapped !== undefined) {
        expect(readMappedAddress(m)).toEqual(v.mapped);
        expect(readMappedAddress(m)).toEqual(v.mapped);
      }
      expect(checkIntegrity(m, key)).toBe(true);
      expect(checkIntegrity(m, key)).toBe(true);
      expect(decodeStun(data).ok).toBe(true);
      expect(toHex(data)).toBe(before);
    }
  });

  it('XOR-MAPPED-ADDRESS values of the vectors re-encode byte for byte', () => {
    for (const v of file.vectors.filter((x) => x.mapped !== undefined)) {
      const m = decodeOk(bytesOf(v));
      const attr = getAttribute(m, STUN_ATTR.XOR_MAPPED_ADDRESS)!;
      expect(toHex(encodeAddress(v.mapped!, m.transactionId))).toBe(toHex(attr));
    }
  });
});

describe('encoding', () => {
  it('message type interleaves method and class bits (RFC 8489 section 5)', () => {
    expect(stunMessageType(1, 'request')).toBe(0x0001);
    expect(stunMessageType(1, 'indication')).toBe(0x0011);
    expect(stunMessageType(1, 'success')).toBe(0x0101);
    expect(stunMessageType(1, 'error')).toBe(0x0111);
    expect(stunMessageType(0xfff, 'request')).toBe(0x3eef);
  });

  it('a Binding request round-trips, with and without FINGERPRINT', () => {
    for (const fingerprint of [false, true]) {
      const data = encodeBindingRequest(TID, { software: 'plexd', fingerprint });
      expect(data.length % 4).toBe(0);
      const m = decodeOk(data);
      expect(m.cls).toBe('request');
      expect(toHex(m.transactionId)).toBe(toHex(TID));
      expect(readSoftware(m)).toBe('plexd');
      expect(m.hasFingerprint).toBe(fingerprint);
    }
    expect(encodeBindingRequest(TID)).toHaveLength(20);
  });

  it('success responses carry IPv4, IPv6 and IPv4-mapped addresses', () => {
    for (const mapped of [
      { address: '10.1.2.3', port: 51820 },
      { address: 'fd00::1', port: 1 },
      { address: '::ffff:10.0.0.1', port: 65535 },
    ]) {
      const m = decodeOk(encodeBindingSuccess(TID, mapped, { software: 's', fingerprint: true }));
      expect(m.cls).toBe('success');
      expect(readMappedAddress(m)).toEqual(mapped);
    }
  });

  it('falls back to MAPPED-ADDRESS and reports missing or malformed addresses', () => {
    const plain = encodeAddress({ address: '192.0.2.9', port: 3478 });
    const msg = (attrs: { type: number; value: Uint8Array }[]) => decodeOk(encodeStun(1, 'success', TID, attrs));
    expect(readMappedAddress(msg([{ type: STUN_ATTR.MAPPED_ADDRESS, value: plain }]))).toEqual({ address: '192.0.2.9', port: 3478 });
    expect(readMappedAddress(msg([]))).toBe('no-address');
    expect(readMappedAddress(msg([{ type: STUN_ATTR.XOR_MAPPED_ADDRESS, value: plain.subarray(0, 7) }]))).toBe('bad-address');
    expect(decodeAddress(Uint8Array.of(0, 3, 0, 1, 1, 2, 3, 4))).toBeUndefined();
    expect(decodeAddress(Uint8Array.of(1, 1, 0, 1, 1, 2, 3, 4))).toBeUndefined();
    expect(decodeAddress(Uint8Array.of(0, 2, 0, 1, 1, 2, 3, 4))).toBeUndefined();
  });

  it('error responses carry code and reason', () => {
    const m = decodeOk(encodeErrorResponse(1, TID, 420, 'Unknown Attribute'));
    expect(m.cls).toBe('error');
    expect(readErrorCode(m)).toEqual({ code: 420, reason: 'Unknown Attribute' });
    expect(() => encodeErrorResponse(1, TID, 200, 'x')).toThrow(RangeError);
  });

  it('refuses misuse with RangeError/TypeError', () => {
    expect(() => encodeBindingRequest(new Uint8Array(11))).toThrow(RangeError);
    expect(() => encodeAddress({ address: 'example.org', port: 1 })).toThrow(TypeError);
    expect(() => encodeBindingRequest(TID, { attributes: [{ type: 0x8001, value: new Uint8Array(1600) }] })).toThrow(RangeError);
  });
});

describe('hostile input', () => {
  const valid = encodeBindingSuccess(TID, { address: '10.0.0.1', port: 4242 }, { software: 'x', fingerprint: true });

  it('names each header defect', () => {
    const cases: [Uint8Array, string][] = [
      [valid.subarray(0, 19), 'too-short'],
      [new Uint8Array(1501), 'too-long'],
      [Uint8Array.from(valid).map((b, i) => (i === 0 ? b | 0x80 : b)), 'not-stun'],
      [Uint8Array.from(valid).map((b, i) => (i === 4 ? 0 : b)), 'bad-cookie'],
      [Uint8Array.from(valid).map((b, i) => (i === 3 ? b + 4 : b)), 'length-mismatch'],
    ];
    for (const [data, reason] of cases) {
      const r = decodeStun(data);
      expect(r.ok ? 'ok' : r.reason, reason).toBe(reason);
    }
    // Unaligned length with a matching datagram size.
    const odd = new Uint8Array(22);
    odd.set(valid.subarray(0, 20));
    odd[2] = 0;
    odd[3] = 2;
    expect(decodeStun(odd)).toEqual({ ok: false, reason: 'length-unaligned' });
    // An attribute claiming more than is there.
    const trunc = encodeBindingRequest(TID, { attributes: [{ type: 0x8001, value: new Uint8Array(8) }] });
    trunc[23] = 200;
    expect(decodeStun(trunc)).toEqual({ ok: false, reason: 'attribute-truncated' });
    // Too many attributes.
    const many = encodeBindingRequest(TID, { attributes: Array.from({ length: 40 }, () => ({ type: 0x8001, value: new Uint8Array(0) })) });
    expect(decodeStun(many)).toEqual({ ok: false, reason: 'too-many-attributes' });
    // Something after FINGERPRINT.
    const after = new Uint8Array(valid.length + 4);
    after.set(valid);
    after[3] = valid[3]! + 4;
    after[valid.length + 1] = 0x22;
    expect(decodeStun(after)).toEqual({ ok: false, reason: 'fingerprint-not-last' });
  });

  it('WireGuard messages are never taken for STUN', () => {
    const rnd = seededRandom(7);
    for (const [type, size] of [[1, 148], [2, 92], [3, 64], [4, 32], [4, 1452]] as const) {
      for (let i = 0; i < 200; i++) {
        const m = new Uint8Array(size);
        rnd(m);
        m[0] = type;
        m[1] = m[2] = m[3] = 0;
        m[4] = 0x21; // even with the cookie in the index field
        m[5] = 0x12;
        m[6] = 0xa4;
        m[7] = 0x42;
        expect(looksLikeStun(m)).toBe(false);
        expect(decodeStun(m).ok).toBe(false);
      }
    }
  });

  it('50,000 random and mutated datagrams: no throw, reason from the closed list', () => {
    const rnd = seededRandom(5769);
    const int = seededInts(5769);
    const seeds = [valid, ...file.vectors.map(bytesOf), encodeBindingRequest(TID, { fingerprint: true })];
    const seen = new Set<string>();
    for (let i = 0; i < 50_000; i++) {
      let data: Uint8Array;
      if (i % 5 === 0) {
        data = new Uint8Array(int(200));
        rnd(data);
      } else {
        data = seeds[int(seeds.length)]!.slice();
        for (let k = 1 + int(4); k > 0; k--) {
          const at = int(data.length);
          const what = int(3);
          if (what === 0) data[at] = int(256);
          else if (what === 1) data = data.subarray(0, at);
          else data[at]! ^= 1 << int(8);
        }
        // Often keep the header consistent so the attribute walker gets exercised.
        if (data.length >= 20 && int(2) === 0) {
          data[2] = (data.length - 20) >> 8;
          data[3] = (data.length - 20) & 0xff;
          data[4] = STUN_MAGIC_COOKIE >>> 24;
          data[5] = 0x12;
          data[6] = 0xa4;
          data[7] = 0x42;
        }
      }
      const r = decodeStun(data);
      if (r.ok) {
        seen.add('ok');
        expect(() => readMappedAddress(r.message)).not.toThrow();
        expect(() => readErrorCode(r.message)).not.toThrow();
      } else {
        expect(STUN_DROP_REASONS).toContain(r.reason);
        seen.add(r.reason);
      }
    }
    expect(seen.size).toBeGreaterThanOrEqual(7);
  });
});
