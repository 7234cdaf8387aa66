// Deterministic randomness shaped like the engine's `fillRandom`, over the shared seeded PRNG
// (prng.ts), so every run sees the same keys, indices and jitter.

import { prng } from './prng.js';

/** Returns a fillRandom function seeded by `seed` (any 32-bit integer). Not for crypto. */
export function seededRandom(seed: number): (buf: Uint8Array) => void {
  const next = prng(seed);
  return (buf: Uint8Array): void => {
    for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(next() * 256);
  };
}

/** Returns a function giving uniform integers in [0, n) determined by `seed`. */
export function seededInts(seed: number): (n: number) => number {
  const next = prng(seed);
  return (n: number): number => Math.floor(next() * n);
}
