// Anti-replay sliding window for transport data counters: RFC 6479, sized like wireguard-go's
// replay.Filter and Linux's noise_replay_counter (8192 bits of ring, 8128-counter window).

/** Ring size in bits; one 64-bit block of it is always "redundant" (RFC 6479 section 2). */
export const REPLAY_RING_BITS = 8192;
/**
 * How far behind the highest accepted counter a counter may be and still be accepted:
 * 8192 - 64 = 8128, matching wireguard-go (128 blocks x 64 bits) and Linux on 64-bit hosts.
 */
export const REPLAY_WINDOW_SIZE = REPLAY_RING_BITS - 64;

// 32-bit words keep bit operations in int32 land; the window constant above, not the word size,
// defines the semantics (256 x 32 bits could hold 8160, we deliberately keep wireguard-go's 8128).
const WORD_BITS_LOG = 5;
const WORD_BITS = 1 << WORD_BITS_LOG;
const RING_WORDS = REPLAY_RING_BITS / WORD_BITS;
const RING_MASK = RING_WORDS - 1;
const BIT_MASK = WORD_BITS - 1;

/**
 * Receive-side replay filter for one session. The fresh object is empty (as after reset()).
 * Not safe to share between sessions: each keypair owns one (whitepaper 5.4.6).
 */
export class ReplayWindow {
  #last = 0;
  readonly #ring = new Uint32Array(RING_WORDS);

  /** Forgets every counter seen; the next accept() starts a new window at 0. */
  reset(): void {
    this.#last = 0;
    // Only word 0 can be consulted before the window advances; advancing clears the rest lazily.
    this.#ring[0] = 0;
  }

  /**
   * Returns true when `counter` is fresh (and records it), false when it was seen before, is
   * more than REPLAY_WINDOW_SIZE behind the highest counter seen, or is >= `limit`.
   * `counter` is a non-negative integer; values >= 2^53 (a lossy 64-bit conversion) are
   * rejected as over limit. Throws RangeError for negative, fractional or NaN counters.
   */
  accept(counter: number, limit: number): boolean {
    if (!(counter >= 0) || !Number.isInteger(counter)) {
      throw new RangeError(`expected a non-negative integer counter, got ${counter}`);
    }
    if (counter >= limit || counter > Number.MAX_SAFE_INTEGER) return false;
    const ring = this.#ring;
    const last = this.#last;
    const wordIndex = Math.floor(counter / WORD_BITS);
    if (counter > last) {
      const current = Math.floor(last / WORD_BITS);
      // Capping at the ring size turns a huge jump into "clear everything" in bounded time.
      const diff = Math.min(wordIndex - current, RING_WORDS);
      for (let i = 1; i <= diff; i++) ring[(current + i) & RING_MASK] = 0;
      this.#last = counter;
    } else if (last - counter > REPLAY_WINDOW_SIZE) {
      return false;
    }
    // `& mask` applies ToInt32, which is exact modulo 2^32 for integers below 2^53.
    const w = wordIndex & RING_MASK;
    const bit = 1 << (counter & BIT_MASK);
    const old = ring[w]!;
    if ((old & bit) !== 0) return false;
    ring[w] = old | bit;
    return true;
  }
}
