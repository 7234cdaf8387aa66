// Deterministic randomness for tests: a seeded SplitMix32-style generator shaped like the
// engine's `fillRandom`, so every run sees the same keys, indices and jitter.

/** Returns a fillRandom function seeded by `seed` (any 32-bit integer). */
export function seededRandom(seed: number): (buf: Uint8Array) => void {
  let state = seed >>> 0;
  return (buf: Uint8Array): void => {
    for (let i = 0; i < buf.length; i++) {
      state = (state + 0x9e3779b9) >>> 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      buf[i] = (z ^ (z >>> 16)) & 0xff;
    }
  };
}

/** Returns a function giving uniform integers in [0, n) from the same kind of generator. */
export function seededInts(seed: number): (n: number) => number {
  const fill = seededRandom(seed);
  const b = new Uint8Array(4);
  return (n: number): number => {
    fill(b);
    return ((b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0) % n;
  };
}
