// A logger whose error lines are rate limited (a token bucket): a flood of failures caused from
// outside (bad requests, aborted bodies) cannot fill the disk. Past the limit lines are counted,
// and the next line let through is preceded by one "suppressed K error lines".

import { TokenBuckets } from '../io/token-bucket.js';
import type { Logger } from './logger.js';

/** Options of {@link rateLimitErrors}. */
export interface ErrorRateLimit {
  /** Error lines let through in a burst (default 20). */
  readonly burst?: number;
  /** Error lines per second after the burst (default 1). */
  readonly perSecond?: number;
  /** Time source in ms (default Date.now). */
  readonly now?: () => number;
}

/**
 * `log` with error() limited to `burst` lines, refilled at `perSecond`; info and verbose pass.
 * Child loggers share the one limit (a flood through a child must not get a bucket of its own).
 */
export function rateLimitErrors(log: Logger, limit: ErrorRateLimit = {}): Logger {
  const bucket = new TokenBuckets<0>({ burst: limit.burst ?? 20, perSecond: limit.perSecond ?? 1, maxKeys: 1 });
  const now = limit.now ?? Date.now;
  let suppressed = 0;
  const wrap = (inner: Logger): Logger => ({
    level: inner.level,
    error(message) {
      if (bucket.take(0, 1, now()) > 0) {
        suppressed++;
        return;
      }
      if (suppressed > 0) inner.error(`suppressed ${suppressed} error lines`);
      suppressed = 0;
      inner.error(message);
    },
    info: (m) => inner.info(m),
    verbose: (m) => inner.verbose(m),
    child: (p) => wrap(inner.child(p)),
  });
  return wrap(log);
}
