// One convention for every fuzz target (test/fuzz/*.test.ts): a seeded, bounded run in the unit
// tier, and the same target scaled up by `npm run fuzz` (PLEXD_FUZZ_ITERATIONS, PLEXD_FUZZ_SEED).
// A failure prints its seed and iteration so it reproduces with PLEXD_FUZZ_SEED=... alone.

/** Iterations for one target: `unitDefault` in the suite, PLEXD_FUZZ_ITERATIONS when set. */
export function fuzzIterations(unitDefault: number): number {
  const raw = process.env.PLEXD_FUZZ_ITERATIONS;
  if (raw === undefined || raw === '') return unitDefault;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`PLEXD_FUZZ_ITERATIONS must be a positive integer, got ${raw}`);
  return n;
}

/** The run's seed: PLEXD_FUZZ_SEED when set, else `fallback` (fixed, so the suite is repeatable). */
export function fuzzSeed(fallback: number): number {
  const raw = process.env.PLEXD_FUZZ_SEED;
  if (raw === undefined || raw === '') return fallback >>> 0;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`PLEXD_FUZZ_SEED must be an integer, got ${raw}`);
  return n >>> 0;
}

/** A test timeout that grows with the iteration count: `msPerIteration` each, at least 60 s. */
export function fuzzTimeout(iterations: number, msPerIteration: number): number {
  return Math.max(60_000, Math.ceil(iterations * msPerIteration) + 30_000);
}

/** True when this is a long `npm run fuzz` run rather than the suite's bounded one. */
export function fuzzLongRun(): boolean {
  return process.env.PLEXD_FUZZ_ITERATIONS !== undefined && process.env.PLEXD_FUZZ_ITERATIONS !== '';
}
