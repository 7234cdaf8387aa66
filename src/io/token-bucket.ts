// Token buckets by key (a rate limit with a burst): each key holds up to `burst` tokens, refilled
// at `perSecond`; a request takes `cost` tokens or is refused with the wait until it could pass.
// Pure: the caller passes the time, so tests drive it with a manual clock.

/** Options of {@link TokenBuckets}. */
export interface TokenBucketOptions {
  /** Most tokens a key can hold (the burst). Positive. */
  readonly burst: number;
  /** Tokens added per second. Positive. */
  readonly perSecond: number;
  /** Most keys tracked; beyond it, full buckets and then the oldest are forgotten. Default 10,000. */
  readonly maxKeys?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Rate limits by key. Throws RangeError on a burst or rate that is not positive. */
export class TokenBuckets<K> {
  readonly #burst: number;
  readonly #perMs: number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<K, Bucket>();

  constructor(options: TokenBucketOptions) {
    if (!(options.burst > 0) || !(options.perSecond > 0)) {
      throw new RangeError(`expected a positive burst and rate, got ${options.burst} and ${options.perSecond}/s`);
    }
    this.#burst = options.burst;
    this.#perMs = options.perSecond / 1000;
    this.#maxKeys = options.maxKeys ?? 10_000;
  }

  /** Takes `cost` tokens from `key` at `nowMs` (ms, any monotonic-enough origin). Returns 0 when
   *  granted, else the ms until that many tokens would be there (a cost above the burst is refused
   *  with the time to refill the whole bucket). */
  take(key: K, cost: number, nowMs: number): number {
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= this.#maxKeys) this.#evict(nowMs);
      b = { tokens: this.#burst, at: nowMs };
      this.#buckets.set(key, b);
    }
    b.tokens = Math.min(this.#burst, b.tokens + Math.max(0, nowMs - b.at) * this.#perMs);
    b.at = nowMs;
    if (cost <= b.tokens) {
      b.tokens -= cost;
      return 0;
    }
    return Math.ceil((Math.min(cost, this.#burst) - b.tokens) / this.#perMs);
  }

  /** Keys tracked now. */
  get size(): number {
    return this.#buckets.size;
  }

  #evict(nowMs: number): void {
    // A bucket that has refilled holds no state worth keeping.
    for (const [k, b] of this.#buckets) if (b.tokens + (nowMs - b.at) * this.#perMs >= this.#burst) this.#buckets.delete(k);
    if (this.#buckets.size >= this.#maxKeys) this.#buckets.delete(this.#buckets.keys().next().value as K);
  }
}
