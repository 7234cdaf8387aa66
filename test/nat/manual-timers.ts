// A manual scheduler shaped like StunTimers (and the relay's timers): time moves only on advance(),
// which runs due callbacks in deadline order, so retransmit and expiry schedules run in microseconds.

import type { StunTimers } from '../../src/nat/stun-client.js';

interface Entry {
  at: number;
  fn: () => void;
  seq: number;
}

/** StunTimers on a manual clock. */
export class ManualTimers implements StunTimers {
  #now = 0;
  #seq = 0;
  readonly #entries = new Set<Entry>();

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const e = { at: this.#now + ms, fn, seq: this.#seq++ };
    this.#entries.add(e);
    return e;
  }

  clearTimeout(handle: unknown): void {
    this.#entries.delete(handle as Entry);
  }

  /** Pending callbacks. */
  get size(): number {
    return this.#entries.size;
  }

  /** Moves time forward by `ms`, running every callback that falls due, in order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: Entry | undefined;
      for (const e of this.#entries) if (e.at <= end && (next === undefined || e.at < next.at || (e.at === next.at && e.seq < next.seq))) next = e;
      if (next === undefined) break;
      this.#entries.delete(next);
      this.#now = next.at;
      next.fn();
    }
    this.#now = end;
  }
}
