// Seeded pseudo-random numbers for benches, so every run measures the same inputs (the test
// tier's twin is test/helpers/prng.ts; benches run plain JS and cannot import it).

/** mulberry32: returns a function yielding floats in [0, 1) determined by `seed`. Not for crypto. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
