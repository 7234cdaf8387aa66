// Time sources for the device loop and the agent. The core never reads a clock (docs/STYLE.md 1):
// the device and the agent ask a Clock and pass the numbers down, so tests swap in ManualClock.

/** A source of time. Both values are milliseconds (fractional allowed). */
export interface Clock {
  /** Monotonic milliseconds from an arbitrary origin; never goes backwards. For timers. */
  now(): number;
  /** Wall-clock milliseconds since the Unix epoch; may jump. For last-handshake times and TAI64N. */
  wallMs(): number;
}

/** The real clock: performance.now() and Date.now(). */
export const systemClock: Clock = {
  now: () => performance.now(),
  wallMs: () => Date.now(),
};

function checkMs(name: string, ms: number): void {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new TypeError(`expected ${name} to be a finite number of milliseconds, got ${String(ms)}`);
  }
}

/** A clock that moves only when told to; `advance` moves monotonic and wall time together. */
export class ManualClock implements Clock {
  #now: number;
  #wall: number;

  /** Starts at monotonic `nowMs` (default 0) and wall `wallMs` (default 1_700_000_000_000). */
  constructor(nowMs = 0, wallMs = 1_700_000_000_000) {
    checkMs('nowMs', nowMs);
    checkMs('wallMs', wallMs);
    this.#now = nowMs;
    this.#wall = wallMs;
  }

  now(): number {
    return this.#now;
  }

  wallMs(): number {
    return this.#wall;
  }

  /** Moves both clocks forward by `ms` (>= 0). Throws RangeError for negative steps. */
  advance(ms: number): void {
    checkMs('ms', ms);
    if (ms < 0) throw new RangeError(`expected ms >= 0, got ${ms}`);
    this.#now += ms;
    this.#wall += ms;
  }

  /** Moves the monotonic clock to `nowMs` (>= now()), wall time by the same step. */
  setNow(nowMs: number): void {
    checkMs('nowMs', nowMs);
    if (nowMs < this.#now) throw new RangeError(`expected nowMs >= ${this.#now}, got ${nowMs}`);
    this.advance(nowMs - this.#now);
  }

  /** Sets wall time alone (simulates an NTP step; monotonic time is unaffected). */
  setWall(wallMs: number): void {
    checkMs('wallMs', wallMs);
    this.#wall = wallMs;
  }
}
