// TAI64N timestamps: encoding, wireguard-go's whitening (tai64n/tai64n.go, tai64n_test.go) and order.

import { describe, expect, it } from 'vitest';
import { TAI64N_LENGTH, compareTai64n, tai64n, tai64nAfter } from '../../src/core/tai64n.js';
import { toHex } from '../helpers/bytes.js';


describe('tai64n', () => {
  it('encodes the Unix epoch as label 2^62 + 10 with zero nanoseconds', () => {
    const t = tai64n(0);
    expect(t.length).toBe(TAI64N_LENGTH);
    expect(toHex(t)).toBe('400000000000000a00000000');
  });

  it('matches wireguard-go stamp() bytes (nanoseconds with the low 24 bits cleared)', () => {
    // stamp(time.Unix(0, 123456789)): 123456789 = 0x075bcd15, whitened to 0x07000000.
    expect(toHex(tai64n(123, 456_789))).toBe('400000000000000a07000000');
    // 2024-01-01T00:00:00.999Z: 1704067200 s = 0x65920080; 999000000 = 0x3b8b87c0 -> 0x3b000000.
    expect(toHex(tai64n(Date.UTC(2024, 0, 1, 0, 0, 0, 999)))).toBe('400000006592008a3b000000');
    // Fractional milliseconds carry sub-millisecond time like extraNs does.
    expect(toHex(tai64n(1_704_067_200_999.5))).toBe(toHex(tai64n(1_704_067_200_999, 500_000)));
  });

  it.each([
    ['10 ns', 0, 10, false],
    ['10 us', 0, 10_000, false],
    ['1 ms', 1, 0, false],
    ['10 ms', 10, 0, false],
    ['20 ms', 20, 0, true],
  ] as const)('wireguard-go TestMonotonic: a stamp %s later is newer: %s', (_name, addMs, addNs, newer) => {
    // startTime = time.Unix(0, 123456789) as in wireguard-go's test.
    const t1 = tai64n(123, 456_789);
    const totalNs = 456_789 + addNs;
    const t2 = tai64n(123 + addMs + Math.floor(totalNs / 1e6), totalNs % 1e6);
    expect(tai64nAfter(t2, t1)).toBe(newer);
  });

  it('orders across second boundaries and before the epoch', () => {
    const a = tai64n(999.99);
    const b = tai64n(1000);
    expect(compareTai64n(a, b)).toBeLessThan(0);
    expect(compareTai64n(b, a)).toBeGreaterThan(0);
    expect(compareTai64n(b, tai64n(1000))).toBe(0);
    expect(toHex(tai64n(-1000))).toBe('400000000000000900000000');
    expect(tai64nAfter(tai64n(0), tai64n(-1))).toBe(true);
  });

  it('is monotonic over a sweep of wall-clock times in 17 ms steps', () => {
    let prev = tai64n(1_700_000_000_000);
    for (let ms = 1_700_000_000_017; ms < 1_700_000_010_000; ms += 17) {
      const next = tai64n(ms);
      expect(tai64nAfter(next, prev)).toBe(true);
      prev = next;
    }
  });

  it('rejects misuse', () => {
    expect(() => tai64n(Number.NaN)).toThrow(RangeError);
    expect(() => tai64n(0, 1_000_000)).toThrow(RangeError);
    expect(() => tai64n(0, 0.5)).toThrow(RangeError);
    expect(() => compareTai64n(new Uint8Array(12), new Uint8Array(11))).toThrow(RangeError);
  });
});
