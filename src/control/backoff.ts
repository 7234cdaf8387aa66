// Reconnect/retry backoff as plexd-api.md prescribes: 1 s doubling to a cap (60 s), each delay
// scaled by a uniform +-25 % jitter so a fleet that lost its control plane does not come back in
// lockstep. Pure: the random source is an argument; sleeping is the caller's business.

/** Options of a {@link Backoff}; every value in milliseconds except `jitter` (a fraction). */
export interface BackoffOptions {
  /** First delay (default 1000). */
  readonly initialMs?: number;
  /** Largest delay before jitter (default 60_000). */
  readonly maxMs?: number;
  /** Growth factor per attempt (default 2). */
  readonly factor?: number;
  /** Jitter as a fraction of the delay, 0..1 (default 0.25 = +-25 %). */
  readonly jitter?: number;
  /** Uniform random in [0, 1) (default Math.random). */
  readonly random?: () => number;
}

/** Exponential backoff with jitter. `next()` returns the delay before the next attempt. */
export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #attempt = 0;

  /** Throws RangeError for non-positive delays, factor < 1 or jitter outside 0..1. */
  constructor(opts: BackoffOptions = {}) {
    this.#initial = opts.initialMs ?? 1000;
    this.#max = opts.maxMs ?? 60_000;
    this.#factor = opts.factor ?? 2;
    this.#jitter = opts.jitter ?? 0.25;
    this.#random = opts.random ?? Math.random;
    if (!(this.#initial > 0) || !(this.#max >= this.#initial)) {
      throw new RangeError(`expected 0 < initialMs <= maxMs, got ${this.#initial} and ${this.#max}`);
    }
    if (!(this.#factor >= 1)) throw new RangeError(`expected factor >= 1, got ${this.#factor}`);
    if (!(this.#jitter >= 0 && this.#jitter <= 1)) throw new RangeError(`expected jitter in 0..1, got ${this.#jitter}`);
  }

  /** Attempts since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The un-jittered delay of the coming attempt. */
  get baseMs(): number {
    return Math.min(this.#max, this.#initial * this.#factor ** Math.min(this.#attempt, 64));
  }

  /** The delay (ms, jittered) to wait before the next attempt; advances the attempt count. */
  next(): number {
    const base = this.baseMs;
    this.#attempt++;
    const r = Math.min(Math.max(this.#random(), 0), 1);
    return Math.max(0, Math.round(base * (1 + this.#jitter * (2 * r - 1))));
  }

  /** Back to the first delay (after a success). */
  reset(): void {
    this.#attempt = 0;
  }
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first (io/wait.ts). */
export { sleep } from '../io/wait.js';
