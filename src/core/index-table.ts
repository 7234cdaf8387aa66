// Session index table: maps the random 32-bit sender/receiver indices of whitepaper 5.4.2 and
// 5.4.6 to local handshakes and keypairs (like wireguard-go's IndexTable).

// Random draws before falling back to a scan; with < 2^24 entries in 2^32 - 1 slots a healthy
// RNG collides this often with probability below 2^-500.
const RANDOM_ATTEMPTS = 64;
const INDEX_SPACE = 0x1_0000_0000;

/**
 * Allocates unpredictable, unique, nonzero unsigned 32-bit indices and maps them to values.
 * Uniqueness holds even under a broken RNG: after repeated collisions allocation probes upward
 * from the last draw, so it always terminates.
 */
export class IndexTable<T> {
  readonly #fillRandom: (buf: Uint8Array) => void;
  readonly #scratch = new Uint8Array(4);
  readonly #entries = new Map<number, T>();

  /** `fillRandom` must fill its argument with cryptographically secure random bytes. */
  constructor(fillRandom: (buf: Uint8Array) => void) {
    if (typeof fillRandom !== 'function') {
      throw new TypeError(`expected fillRandom to be a function, got ${typeof fillRandom}`);
    }
    this.#fillRandom = fillRandom;
  }

  /** Stores `value` under a fresh index in 1..2^32-1 and returns it. Throws RangeError if full. */
  allocate(value: T): number {
    const entries = this.#entries;
    if (entries.size >= INDEX_SPACE - 1) {
      throw new RangeError(`expected a free index, got a full table of ${entries.size}`);
    }
    let index = 0;
    for (let attempt = 0; attempt < RANDOM_ATTEMPTS; attempt++) {
      index = this.#draw();
      // 0 is never handed out, so callers may use it as "no index".
      if (index !== 0 && !entries.has(index)) {
        entries.set(index, value);
        return index;
      }
    }
    // The RNG is repeating itself: probe from its last answer, which keeps termination certain.
    do index = (index + 1) % INDEX_SPACE;
    while (index === 0 || entries.has(index));
    entries.set(index, value);
    return index;
  }

  /** The value stored under `index`, or undefined (any number is safe to ask, e.g. from a packet). */
  get(index: number): T | undefined {
    return this.#entries.get(index);
  }

  /** Points an allocated `index` at a new value (handshake -> keypair); false if not allocated. */
  replace(index: number, value: T): boolean {
    if (!this.#entries.has(index)) return false;
    this.#entries.set(index, value);
    return true;
  }

  /** Frees `index`; freeing an index not in use does nothing. */
  remove(index: number): void {
    this.#entries.delete(index);
  }

  /** Number of indices currently allocated. */
  get size(): number {
    return this.#entries.size;
  }

  #draw(): number {
    const b = this.#scratch;
    this.#fillRandom(b);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }
}
