// TokenBuckets (src/io/token-bucket.ts) against a slow twin: a naive per-key model of the same
// rule, driven by a seeded random sequence of takes; plus the key bound.

import { describe, expect, it } from 'vitest';
import { TokenBuckets } from '../../src/io/token-bucket.js';

/** The rule spelled out: tokens = min(burst, tokens + elapsed * rate); take when enough. */
function naive(burst: number, perSecond: number) {
  const state = new Map<string, { tokens: number; at: number }>();
  return (key: string, cost: number, now: number): boolean => {
    const s = state.get(key) ?? { tokens: burst, at: now };
    s.tokens = Math.min(burst, s.tokens + ((now - s.at) * perSecond) / 1000);
    s.at = now;
    state.set(key, s);
    if (cost > s.tokens) return false;
    s.tokens -= cost;
    return true;
  };
}

describe('TokenBuckets', () => {
  it('grants exactly what the naive model grants, and a refusal says how long to wait', () => {
    let seed = 12345;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const fast = new TokenBuckets<string>({ burst: 8, perSecond: 2 });
    const slow = naive(8, 2);
    let now = 0;
    let granted = 0;
    for (let i = 0; i < 5000; i++) {
      now += Math.floor(rnd() * 400);
      const key = `k${Math.floor(rnd() * 4)}`;
      const cost = 1 + Math.floor(rnd() * 4);
      const wait = fast.take(key, cost, now);
      expect(wait === 0, `step ${i}`).toBe(slow(key, cost, now));
      if (wait === 0) granted++;
      else expect(wait).toBeGreaterThan(0);
    }
    expect(granted).toBeGreaterThan(100);
    expect(granted).toBeLessThan(5000);
  });

  it('refuses a cost above the burst with the time to refill the bucket', () => {
    const b = new TokenBuckets<string>({ burst: 4, perSecond: 1 });
    expect(b.take('a', 3, 0)).toBe(0);
    expect(b.take('a', 10, 0)).toBe(3000);
  });

  it('keeps at most maxKeys keys', () => {
    const b = new TokenBuckets<number>({ burst: 2, perSecond: 1, maxKeys: 100 });
    for (let k = 0; k < 1000; k++) b.take(k, 2, k);
    expect(b.size).toBeLessThanOrEqual(100);
    expect(() => new TokenBuckets({ burst: 0, perSecond: 1 })).toThrow(RangeError);
  });
});
