// Backoff bounds: 1 s doubling to 60 s, every delay within +-25 % of its base, reset.

import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/control/backoff.js';

describe('Backoff', () => {
  it('doubles from 1 s to the 60 s cap without jitter at the midpoint', () => {
    const b = new Backoff({ random: () => 0.5 });
    const seq = Array.from({ length: 9 }, () => b.next());
    expect(seq).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
    b.reset();
    expect(b.next()).toBe(1000);
  });

  it('stays within +-25 % at the extremes of the random source', () => {
    const lo = new Backoff({ random: () => 0 });
    const hi = new Backoff({ random: () => 0.999999 });
    for (let i = 0; i < 10; i++) {
      const base = Math.min(60_000, 1000 * 2 ** i);
      const a = lo.next();
      const b = hi.next();
      expect(a).toBe(Math.round(base * 0.75));
      expect(b).toBeLessThanOrEqual(base * 1.25);
      expect(b).toBeGreaterThan(base * 1.2499);
    }
  });

  it('spreads delays with a real random source and refuses bad options', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 50; i++) seen.add(new Backoff().next());
    for (const d of seen) expect(d >= 750 && d <= 1250).toBe(true);
    expect(seen.size).toBeGreaterThan(10);
    expect(() => new Backoff({ jitter: 2 })).toThrow(RangeError);
    expect(() => new Backoff({ initialMs: 0 })).toThrow(RangeError);
  });
});
