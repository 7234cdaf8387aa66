import { isIP, SocketAddress } from 'node:net';
import { describe, expect, it } from 'vitest';
import { formatIp, formatPrefix, parseIp, parsePrefix } from '../../src/core/ip.js';
import { prng } from '../helpers/prng.js';

const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);
const v6 = (...groups: number[]): Uint8Array => {
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
};

/** Node's own normalization of an IPv6 literal (libuv inet_pton + inet_ntop). */
const nodeCanonical6 = (text: string): string => new SocketAddress({ address: text, family: 'ipv6' }).address;

/** ::/96 with nonzero low bits: libuv prints the deprecated "::a.b.c.d", RFC 5952 and Go do not. */
const isIPv4Compatible = (b: Uint8Array): boolean =>
  b.length === 16 && b.subarray(0, 12).every((x) => x === 0) && (b[12]! | b[13]!) !== 0;

describe('parseIp', () => {
  const good: Array<[string, Uint8Array]> = [
    ['0.0.0.0', bytes(0, 0, 0, 0)],
    ['255.255.255.255', bytes(255, 255, 255, 255)],
    ['10.0.0.1', bytes(10, 0, 0, 1)],
    ['::', new Uint8Array(16)],
    ['::1', v6(0, 0, 0, 0, 0, 0, 0, 1)],
    ['1::', v6(1)],
    ['1:2:3:4:5:6:7::', v6(1, 2, 3, 4, 5, 6, 7, 0)],
    ['::2:3:4:5:6:7:8', v6(0, 2, 3, 4, 5, 6, 7, 8)],
    ['1:2:3:4:5:6:7:8', v6(1, 2, 3, 4, 5, 6, 7, 8)],
    ['2001:DB8::0:1', v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)],
    ['fe80::0001:00ff', v6(0xfe80, 0, 0, 0, 0, 0, 1, 0xff)],
    ['::ffff:1.2.3.4', v6(0, 0, 0, 0, 0, 0xffff, 0x102, 0x304)],
    ['::1.2.3.4', v6(0, 0, 0, 0, 0, 0, 0x102, 0x304)],
    ['64:ff9b::192.0.2.33', v6(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x221)],
    ['1:2:3:4:5:6:1.2.3.4', v6(1, 2, 3, 4, 5, 6, 0x102, 0x304)],
    ['1:2:3:4:5::1.2.3.4', v6(1, 2, 3, 4, 5, 0, 0x102, 0x304)],
  ];
  for (const [text, want] of good) {
    it(`accepts ${text}`, () => expect(parseIp(text)).toEqual(want));
  }

  const bad = [
    '', ' ', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.256', '1.2.3.-1', '01.2.3.4', '1.2.3.04',
    '1..2.3', '.1.2.3.4', '1.2.3.4.', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.4\n', '0x1.2.3.4', '1.2.3.4a',
    '1e2.1.1.1', '１.2.3.4', '1.2.3.4/32', '4294967295', ':::', '1::2::3', ':1::2', '1::2:', ':',
    '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7', '12345::',
    '1::g', 'fe80::1%eth0', 'fe80::1%1', '[::1]', '::1.2.3', '::1.2.3.4.5', '::256.0.0.0',
    '1:2:3:4:5:6:7:1.2.3.4', '1.2.3.4::', '::1.2.3.4:5', '::ffff:01.2.3.4', '1:2:3:4:5:6:7:8:',
    '::-1', '::+1', '0x::', '1:2::3:4:5:6:7:8', 'a'.repeat(10_000), `::${'0:'.repeat(5000)}1`,
    '1.'.repeat(100_000) + '1', '\u0000', '::\u0000', '1.2.3.4\u0000',
  ];
  for (const text of bad) {
    it(`rejects ${JSON.stringify(text.length > 40 ? `${text.slice(0, 20)}...(${text.length})` : text)}`, () => {
      expect(parseIp(text)).toBeUndefined();
    });
  }

  it('throws TypeError for a non-string', () => {
    expect(() => parseIp(1234 as unknown as string)).toThrow(/expected an address string, got number/);
  });

  for (const seed of [1, 2, 3]) {
    it(`agrees with node:net on mutated addresses (seed ${seed})`, () => {
      const rnd = prng(seed);
      const alphabet = '0123456789abcdefABCDEFgx:.:.::/ -';
      let valid = 0;
      for (let n = 0; n < 20_000; n++) {
        let text = randomAddressText(rnd);
        const edits = Math.floor(rnd() * 3);
        for (let e = 0; e < edits; e++) {
          const at = Math.floor(rnd() * (text.length + 1));
          const ch = alphabet[Math.floor(rnd() * alphabet.length)]!;
          const op = rnd();
          if (op < 0.33) text = text.slice(0, at) + ch + text.slice(at);
          else if (op < 0.66) text = text.slice(0, at) + text.slice(at + 1);
          else text = text.slice(0, at) + ch + text.slice(at + 1);
        }
        const ours = parseIp(text);
        const family = isIP(text);
        if ((ours !== undefined) !== (family !== 0)) expect.fail(`disagree on ${JSON.stringify(text)}: node family ${family}`);
        if (ours === undefined) continue;
        valid++;
        expect(ours.length).toBe(family === 4 ? 4 : 16);
        if (family === 6 && !isIPv4Compatible(ours)) expect(formatIp(ours)).toBe(nodeCanonical6(text));
      }
      expect(valid).toBeGreaterThan(5_000);
    });
  }
});

/** A random valid address written in one of its many spellings. */
function randomAddressText(rnd: () => number): string {
  const r = rnd();
  const octet = (): number => (rnd() < 0.3 ? [0, 1, 255][Math.floor(rnd() * 3)]! : Math.floor(rnd() * 256));
  if (r < 0.3) return [octet(), octet(), octet(), octet()].join('.');
  const groups = Array.from({ length: 8 }, () => (rnd() < 0.5 ? 0 : Math.floor(rnd() * 65536)));
  let parts = groups.map((g) => {
    let s = g.toString(16);
    if (rnd() < 0.2) s = s.padStart(4, '0');
    return rnd() < 0.2 ? s.toUpperCase() : s;
  });
  if (rnd() < 0.2) parts = [...parts.slice(0, 6), `${octet()}.${octet()}.${octet()}.${octet()}`];
  if (rnd() < 0.7) {
    const start = Math.floor(rnd() * parts.length);
    const len = 1 + Math.floor(rnd() * (parts.length - start));
    return `${parts.slice(0, start).join(':')}::${parts.slice(start + len).join(':')}`;
  }
  return parts.join(':');
}

describe('formatIp', () => {
  const cases: Array<[Uint8Array, string]> = [
    [bytes(1, 2, 3, 4), '1.2.3.4'],
    [new Uint8Array(16), '::'],
    [v6(0, 0, 0, 0, 0, 0, 0, 1), '::1'],
    [v6(1), '1::'],
    [v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), '2001:db8::1'],
    [v6(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1), '2001:db8:0:1:1:1:1:1'], // lone zero stays
    [v6(1, 0, 0, 2, 0, 0, 0, 3), '1:0:0:2::3'], // longest run wins
    [v6(1, 0, 0, 2, 0, 0, 3, 4), '1::2:0:0:3:4'], // first of equal runs
    [v6(0xabcd, 0xef, 0, 0, 0, 0, 0, 0), 'abcd:ef::'],
    [v6(0, 0, 0, 0, 0, 0xffff, 0x102, 0x304), '::ffff:1.2.3.4'],
    [v6(0, 0, 0, 0, 0, 0, 0x102, 0x304), '::102:304'], // IPv4-compatible is deprecated: hex, like Go
    [v6(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x221), '64:ff9b::c000:221'],
  ];
  for (const [b, want] of cases) {
    it(`formats ${want}`, () => expect(formatIp(b)).toBe(want));
  }

  it('matches node:net for random addresses', () => {
    const rnd = prng(7);
    for (let n = 0; n < 20_000; n++) {
      const b = new Uint8Array(16);
      for (let i = 0; i < 16; i++) b[i] = rnd() < 0.5 ? 0 : Math.floor(rnd() * 256);
      if (rnd() < 0.1) b.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
      const text = formatIp(b);
      expect(parseIp(text)).toEqual(b);
      if (!isIPv4Compatible(b)) expect(text).toBe(nodeCanonical6(text));
      const four = b.subarray(0, 4);
      expect(parseIp(formatIp(four))).toEqual(four);
      expect(isIP(formatIp(four))).toBe(4);
    }
  });

  it('rejects bad input', () => {
    expect(() => formatIp(new Uint8Array(5))).toThrow(/expected a 4- or 16-byte address, got 5 bytes/);
    expect(() => formatIp([1, 2, 3, 4] as unknown as Uint8Array)).toThrow(TypeError);
  });
});

describe('parsePrefix / formatPrefix', () => {
  it('parses prefixes and bare addresses', () => {
    expect(parsePrefix('10.0.0.0/8')).toEqual({ ip: bytes(10, 0, 0, 0), cidr: 8 });
    expect(parsePrefix('10.1.2.3/8')).toEqual({ ip: bytes(10, 1, 2, 3), cidr: 8 });
    expect(parsePrefix('fd00::/64')).toEqual({ ip: v6(0xfd00), cidr: 64 });
    expect(parsePrefix('0.0.0.0/0')).toEqual({ ip: bytes(0, 0, 0, 0), cidr: 0 });
    expect(parsePrefix('::/0')).toEqual({ ip: new Uint8Array(16), cidr: 0 });
    expect(parsePrefix('1.2.3.4')).toEqual({ ip: bytes(1, 2, 3, 4), cidr: 32 });
    expect(parsePrefix('::1')).toEqual({ ip: v6(0, 0, 0, 0, 0, 0, 0, 1), cidr: 128 });
    expect(parsePrefix('::ffff:1.2.3.4/128')?.cidr).toBe(128);
  });

  for (const text of [
    '10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/08', '10.0.0.0/-1', '10.0.0.0/+8', '10.0.0.0/8/8',
    '10.0.0.0/ 8', '10.0.0.0/8 ', '10.0.0.0/1e1', '10.0.0.0/0x8', '/8', '10.0.0.0//8', '::/1000',
    'fe80::1%eth0/64', `10.0.0.0/${'9'.repeat(1000)}`,
  ]) {
    it(`rejects ${JSON.stringify(text.slice(0, 40))}`, () => expect(parsePrefix(text)).toBeUndefined());
  }

  it('formats and round-trips', () => {
    expect(formatPrefix(bytes(10, 0, 0, 0), 8)).toBe('10.0.0.0/8');
    expect(formatPrefix(v6(0xfd00), 64)).toBe('fd00::/64');
    const p = parsePrefix('2001:DB8:0::/48')!;
    expect(formatPrefix(p.ip, p.cidr)).toBe('2001:db8::/48');
  });

  it('throws on a bad cidr', () => {
    expect(() => formatPrefix(bytes(1, 2, 3, 4), 33)).toThrow(/expected a cidr in 0..32, got 33/);
    expect(() => formatPrefix(new Uint8Array(16), 1.5)).toThrow(RangeError);
    expect(() => formatPrefix(new Uint8Array(16), -1)).toThrow(RangeError);
  });
});
