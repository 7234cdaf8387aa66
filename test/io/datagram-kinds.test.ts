// The one "is this STUN?" check (src/io/datagram-kinds.ts looksLikeStun), shared by the device's
// demultiplexer and the STUN codec: the edge cases where the two copies used to disagree (first
// byte 0x02..0x3f) and the ones both must keep (size, cookie, length field, WireGuard, probes).

import { describe, expect, it } from 'vitest';
import { looksLikeStun, PROBE_FIRST_BYTE } from '../../src/io/datagram-kinds.js';
import { looksLikeStun as codecLooksLikeStun } from '../../src/nat/stun-message.js';

/** A STUN-framed datagram: `first` as byte 0, the cookie, a length field of `body` bytes. */
function stun(first: number, body = 0, size = 20 + body): Uint8Array {
  const m = new Uint8Array(size);
  m[0] = first;
  m[1] = 0x01;
  m[2] = body >>> 8;
  m[3] = body & 0xff;
  m.set([0x21, 0x12, 0xa4, 0x42], 4);
  return m;
}

describe('looksLikeStun', () => {
  it('is the function the STUN codec exports (one copy)', () => {
    expect(codecLooksLikeStun).toBe(looksLikeStun);
  });

  it('takes every first byte with the top two bits zero (RFC 8489 section 5), not only 0x00/0x01', () => {
    for (let first = 0; first < 0x40; first++) expect(looksLikeStun(stun(first, 8)), `0x${first.toString(16)}`).toBe(true);
    for (let first = 0x40; first < 0x100; first++) expect(looksLikeStun(stun(first, 8)), `0x${first.toString(16)}`).toBe(false);
  });

  it('needs the whole header, the magic cookie and a length field equal to the size after the header', () => {
    expect(looksLikeStun(stun(0, 0))).toBe(true); // a bare 20-byte header
    expect(looksLikeStun(stun(0, 0, 19))).toBe(false);
    expect(looksLikeStun(new Uint8Array(0))).toBe(false);
    expect(looksLikeStun(stun(0, 8, 27))).toBe(false);
    expect(looksLikeStun(stun(0, 8, 29))).toBe(false);
    expect(looksLikeStun(stun(0, 0x0100))).toBe(true); // the high length byte counts
    const badCookie = stun(0, 8);
    badCookie[7] = 0x43;
    expect(looksLikeStun(badCookie)).toBe(false);
  });

  it('never takes a WireGuard message (even with the cookie in its index) or a path probe', () => {
    for (const [type, size] of [[1, 148], [2, 92], [3, 64], [4, 32], [4, 20], [4, 1452]] as const) {
      const m = stun(type, 0, size);
      m[1] = m[2] = m[3] = 0;
      expect(looksLikeStun(m), `type ${type} size ${size}`).toBe(type === 4 && size === 20); // 20 bytes is no WireGuard size
    }
    expect(looksLikeStun(stun(PROBE_FIRST_BYTE, 8))).toBe(false);
  });
});
