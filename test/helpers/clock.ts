// A manual clock for tests: monotonic `now` and a wall clock that advance only when told.

/** Monotonic ms starting at `start`, plus a wall clock offset by `wallBase` ms. */
export class ManualClock {
  now: number;
  readonly #wallBase: number;

  constructor(start = 1_000, wallBase = 1_700_000_000_000) {
    this.now = start;
    this.#wallBase = wallBase;
  }

  /** Moves time forward by `ms` (never backward). */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`expected ms >= 0, got ${ms}`);
    this.now += ms;
  }

  /** Moves time to `t` if it is later than now. */
  advanceTo(t: number): void {
    if (t > this.now) this.now = t;
  }

  /** Wall-clock ms since the Unix epoch, tied to `now`. */
  readonly wallClockMs = (): number => this.#wallBase + this.now;
}
