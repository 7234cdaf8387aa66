// Handshake flood defence (whitepaper 5.4.7 "under load"; wireguard-go ratelimiter/ and
// Device.IsUnderLoad): a per-source token bucket and the detector that decides "under load".

import {
  RATELIMIT_BURST,
  RATELIMIT_GC_TIME,
  RATELIMIT_MAX_ENTRIES,
  RATELIMIT_PACKETS_PER_SECOND,
  UNDER_LOAD_AFTER_TIME,
  UNDER_LOAD_THRESHOLD,
} from './constants.js';

/** Token cost of one packet, in milliseconds of refill. */
const PACKET_COST = 1000 / RATELIMIT_PACKETS_PER_SECOND;
const MAX_TOKENS = PACKET_COST * RATELIMIT_BURST;

interface Bucket {
  tokens: number;
  last: number;
}

/**
 * Per-source token bucket: RATELIMIT_PACKETS_PER_SECOND sustained, RATELIMIT_BURST burst
 * (wireguard-go: 20/s, 5). Idle sources are forgotten after RATELIMIT_GC_TIME; at most
 * RATELIMIT_MAX_ENTRIES sources are tracked and unknown ones beyond that are refused.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  #lastSweep = -Infinity;

  /** True when one more handshake message from `source` (an IP address text) is allowed at `now`. */
  allow(source: string, now: number): boolean {
    if (now - this.#lastSweep > RATELIMIT_GC_TIME) this.#sweep(now);
    const bucket = this.#buckets.get(source);
    if (bucket === undefined) {
      if (this.#buckets.size >= RATELIMIT_MAX_ENTRIES) return false;
      this.#buckets.set(source, { tokens: MAX_TOKENS - PACKET_COST, last: now });
      return true;
    }
    bucket.tokens = Math.min(MAX_TOKENS, bucket.tokens + Math.max(0, now - bucket.last));
    bucket.last = now;
    if (bucket.tokens > PACKET_COST) {
      bucket.tokens -= PACKET_COST;
      return true;
    }
    return false;
  }

  /** Number of sources currently tracked. */
  get size(): number {
    return this.#buckets.size;
  }

  #sweep(now: number): void {
    this.#lastSweep = now;
    for (const [source, bucket] of this.#buckets) {
      if (now - bucket.last > RATELIMIT_GC_TIME) this.#buckets.delete(source);
    }
  }
}

/**
 * Decides whether the device is under load: more than `threshold` handshake messages within a
 * one-second window, then for UNDER_LOAD_AFTER_TIME after; or while the driver reports a handshake
 * backlog (extend: wireguard-go's queue at least 1/8 full). The device may also force it.
 */
export class LoadMonitor {
  readonly #threshold: number;
  #windowStart = -Infinity;
  #count = 0;
  #until = -Infinity;

  /** `threshold`: handshake messages per second that trigger load (default UNDER_LOAD_THRESHOLD). */
  constructor(threshold = UNDER_LOAD_THRESHOLD) {
    if (!(threshold >= 0)) throw new RangeError(`expected a non-negative threshold, got ${threshold}`);
    this.#threshold = threshold;
  }

  /** Counts one handshake message at `now` and returns whether the device is now under load. */
  record(now: number): boolean {
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#count = 0;
    }
    if (++this.#count > this.#threshold) this.#until = Math.max(this.#until, now + UNDER_LOAD_AFTER_TIME);
    return now < this.#until;
  }

  /** Keeps the device under load until at least `now` + UNDER_LOAD_AFTER_TIME (a driver's backlog). */
  extend(now: number): void {
    this.#until = Math.max(this.#until, now + UNDER_LOAD_AFTER_TIME);
  }

  /** Sets the end of the under-load state to `until` (same clock as `now`; a past time clears it). */
  setUntil(until: number): void {
    this.#until = until;
  }

  /** True when under load at `now`. */
  isUnderLoad(now: number): boolean {
    return now < this.#until;
  }
}
