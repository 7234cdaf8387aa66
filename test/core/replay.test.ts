import { describe, expect, it } from 'vitest';
import { checkReplayGroup, loadVectorFile, type ReplayFile } from '../../src/conformance/vectors.js';
import { REPLAY_WINDOW_SIZE, ReplayWindow } from '../../src/core/replay.js';
import { prng } from '../helpers/prng.js';

const vectors = loadVectorFile<ReplayFile>('replay-kernel-selftest.json');

/** Slow twin: a Set of every accepted counter plus the highest one, same window rule. */
class NaiveWindow {
  last = 0;
  seen = new Set<number>();
  accept(counter: number, limit: number): boolean {
    if (counter >= limit) return false;
    if (counter > this.last) this.last = counter;
    else if (this.last - counter > REPLAY_WINDOW_SIZE) return false;
    if (this.seen.has(counter)) return false;
    this.seen.add(counter);
    if (this.seen.size > 4 * REPLAY_WINDOW_SIZE) {
      for (const c of this.seen) if (this.last - c > REPLAY_WINDOW_SIZE) this.seen.delete(c);
    }
    return true;
  }
}

describe('ReplayWindow', () => {
  it('has the wireguard-go / Linux 64-bit window size', () => {
    expect(REPLAY_WINDOW_SIZE).toBe(vectors.windowSize);
    expect(REPLAY_WINDOW_SIZE).toBe(8128);
  });

  for (const limit of vectors.limits) {
    describe(`kernel selftest with LIMIT=${limit}`, () => {
      for (const group of vectors.groups) {
        it(group.name, () => {
          const w = new ReplayWindow();
          w.accept(123_456, limit); // dirty state proves reset() really forgets
          w.accept(5, limit);
          w.reset();
          const wrong = checkReplayGroup(vectors, group, limit, w);
          if (wrong !== undefined) expect.fail(`${group.name} ${wrong}`);
        });
      }
    });
  }

  it('is exactly at the window edge', () => {
    const w = new ReplayWindow();
    expect(w.accept(10_000, 1e9)).toBe(true);
    expect(w.accept(10_000 - REPLAY_WINDOW_SIZE - 1, 1e9)).toBe(false);
    expect(w.accept(10_000 - REPLAY_WINDOW_SIZE, 1e9)).toBe(true);
    expect(w.accept(10_000 - REPLAY_WINDOW_SIZE, 1e9)).toBe(false);
  });

  it('clears the whole ring on a jump of a full ring or more', () => {
    for (const jump of [8192, 8192 + 32, 8192 * 3 + 1, 2 ** 35]) {
      const w = new ReplayWindow();
      for (let c = 0; c < 64; c++) expect(w.accept(c, Infinity)).toBe(true);
      expect(w.accept(jump + 100, Infinity)).toBe(true);
      // Same ring slots as 0..63 but inside the new window: stale bits would reject them.
      for (let c = jump; c < jump + 64; c++) expect(w.accept(c, Infinity)).toBe(true);
    }
  });

  it('handles counters above 2^32 and rejects unrepresentable ones', () => {
    const w = new ReplayWindow();
    const big = 2 ** 40 + 31;
    expect(w.accept(big, Infinity)).toBe(true);
    expect(w.accept(big, Infinity)).toBe(false);
    expect(w.accept(big - 2 ** 32, Infinity)).toBe(false); // same ring slot, far outside window
    expect(w.accept(big - 1, Infinity)).toBe(true);
    expect(w.accept(Number.MAX_SAFE_INTEGER, Infinity)).toBe(true);
    expect(w.accept(Number.MAX_SAFE_INTEGER, Infinity)).toBe(false);
    expect(w.accept(2 ** 53, Infinity)).toBe(false);
    expect(w.accept(2 ** 60, Infinity)).toBe(false);
  });

  it('throws RangeError on misuse', () => {
    const w = new ReplayWindow();
    expect(() => w.accept(-1, 10)).toThrow(RangeError);
    expect(() => w.accept(1.5, 10)).toThrow(/expected a non-negative integer counter, got 1.5/);
    expect(() => w.accept(Number.NaN, 10)).toThrow(RangeError);
  });

  for (const seed of [1, 2, 3, 42, 0xdecafbad]) {
    it(`matches the naive twin on random sequences (seed ${seed})`, () => {
      const rnd = prng(seed);
      const fast = new ReplayWindow();
      const slow = new NaiveWindow();
      const limit = 2 ** 33;
      let base = 0;
      let ops = 0;
      for (let i = 0; i < 30_000; i++) {
        const r = rnd();
        let c: number;
        if (r < 0.5) c = base + Math.floor(rnd() * 64); // mostly in order
        else if (r < 0.8) c = Math.max(0, base - Math.floor(rnd() * (REPLAY_WINDOW_SIZE + 200))); // around the edge
        else if (r < 0.95) c = base + Math.floor(rnd() * 3 * REPLAY_WINDOW_SIZE); // jumps, some past the ring
        else if (r < 0.99) c = Math.floor(rnd() * limit * 1.01); // anywhere, incl. over limit
        else c = limit - 1 - Math.floor(rnd() * 4);
        if (rnd() < 0.3) base = Math.max(base, c);
        if (c > 2 ** 32 && rnd() < 0.9) c = base; // keep most traffic in a live region
        ops++;
        const got = fast.accept(c, limit);
        const want = slow.accept(c, limit);
        if (got !== want) expect.fail(`op ${ops}: accept(${c}) fast=${got} naive=${want}`);
        if (rnd() < 0.0005) {
          fast.reset();
          slow.last = 0;
          slow.seen.clear();
          base = 0;
        }
      }
      expect(ops).toBe(30_000);
    });
  }
});
