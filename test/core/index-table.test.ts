import { randomFillSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { IndexTable } from '../../src/core/index-table.js';

/** An RNG that cycles through a few fixed 32-bit values (little-endian), to force collisions. */
function repeating(values: number[]): (buf: Uint8Array) => void {
  let i = 0;
  return (buf) => {
    const v = values[i++ % values.length]!;
    for (let k = 0; k < buf.length; k++) buf[k] = (v >>> (8 * (k % 4))) & 0xff;
  };
}

describe('IndexTable', () => {
  it('allocates, looks up and removes with a real RNG', () => {
    const t = new IndexTable<string>((b) => randomFillSync(b));
    const a = t.allocate('a');
    const b = t.allocate('b');
    expect(a).not.toBe(b);
    for (const i of [a, b]) {
      expect(Number.isInteger(i) && i > 0 && i <= 0xffffffff).toBe(true);
    }
    expect(t.get(a)).toBe('a');
    expect(t.get(b)).toBe('b');
    expect(t.size).toBe(2);
    t.remove(a);
    expect(t.get(a)).toBeUndefined();
    expect(t.size).toBe(1);
    t.remove(a); // idempotent
    expect(t.size).toBe(1);
  });

  it('uses the full unsigned range from the RNG bytes', () => {
    const t = new IndexTable<number>(repeating([0xfffffffe, 0x80000000, 0x12345678]));
    expect(t.allocate(1)).toBe(0xfffffffe);
    expect(t.allocate(2)).toBe(0x80000000);
    expect(t.allocate(3)).toBe(0x12345678);
  });

  it('never hands out 0 and never duplicates under an RNG that repeats one value', () => {
    for (const stuck of [0, 7, 0xffffffff]) {
      const t = new IndexTable<number>(repeating([stuck]));
      const seen = new Set<number>();
      for (let i = 0; i < 500; i++) {
        const idx = t.allocate(i);
        expect(idx).not.toBe(0);
        expect(idx).toBeLessThanOrEqual(0xffffffff);
        expect(seen.has(idx)).toBe(false);
        seen.add(idx);
      }
      expect(t.size).toBe(500);
      for (const idx of seen) expect(t.get(idx)).toBeDefined();
    }
  });

  it('stays unique under an RNG cycling through a few values, with removals in between', () => {
    const t = new IndexTable<number>(repeating([1, 2, 3, 1, 2, 3, 4]));
    const live = new Map<number, number>();
    for (let i = 0; i < 2000; i++) {
      const idx = t.allocate(i);
      expect(live.has(idx)).toBe(false);
      live.set(idx, i);
      if (i % 3 === 0) {
        const victim = live.keys().next().value!;
        t.remove(victim);
        live.delete(victim);
      }
    }
    expect(t.size).toBe(live.size);
    for (const [idx, v] of live) expect(t.get(idx)).toBe(v);
  });

  it('reuses a freed index when the RNG offers it again', () => {
    const t = new IndexTable<string>(repeating([42]));
    const i = t.allocate('x');
    expect(i).toBe(42);
    t.remove(i);
    expect(t.allocate('y')).toBe(42);
  });

  it('replaces the value of an allocated index only', () => {
    const t = new IndexTable<string>(repeating([5]));
    const i = t.allocate('handshake');
    expect(t.replace(i, 'keypair')).toBe(true);
    expect(t.get(i)).toBe('keypair');
    expect(t.replace(6, 'nope')).toBe(false);
    expect(t.get(6)).toBeUndefined();
    expect(t.size).toBe(1);
  });

  it('answers any number from a packet without throwing', () => {
    const t = new IndexTable<string>(repeating([9]));
    t.allocate('v');
    for (const q of [0, -1, 1.5, Number.NaN, 2 ** 32, 2 ** 32 + 9]) expect(t.get(q)).toBeUndefined();
  });

  it('rejects a missing RNG', () => {
    expect(() => new IndexTable<string>(undefined as unknown as (b: Uint8Array) => void)).toThrow(
      /expected fillRandom to be a function, got undefined/,
    );
  });
});
