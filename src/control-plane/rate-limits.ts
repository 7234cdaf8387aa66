// Per-node request rate limits of the control plane: an authenticated node's requests whose cost
// grows with the fleet (path reports, endpoint reports, state pulls, event-stream opens with
// replay) each draw from that node's token bucket; past it the answer is 429 rate_limited with
// Retry-After, so one node cannot take the single thread from the rest.

import type { ServerResponse } from 'node:http';
import type { Clock } from '../io/clock.js';
import { TokenBuckets, type TokenBucketOptions } from '../io/token-bucket.js';
import { ControlPlaneError } from './errors.js';

/** The limited request kinds. */
export type LimitedRequest = 'peer-paths' | 'endpoint' | 'state' | 'events';

/** Per-kind bucket options (burst and refill per second, in cost units). */
export type NodeRateLimitOptions = Partial<Readonly<Record<LimitedRequest, TokenBucketOptions>>>;

/**
 * Defaults. peer-paths costs 1 + entries (an agent reports each peer's change on its own, so a
 * node whose 1,000 peers all flip at once still passes); the others cost 1 per request and leave
 * room for an agent reconciling on every event and reconnecting its stream each second.
 */
export const NODE_RATE_LIMITS: Readonly<Record<LimitedRequest, TokenBucketOptions>> = {
  'peer-paths': { burst: 2000, perSecond: 100 },
  endpoint: { burst: 20, perSecond: 0.5 },
  state: { burst: 60, perSecond: 5 },
  events: { burst: 20, perSecond: 1 },
};

/** The control plane's per-node limiters. */
export class NodeRateLimits {
  readonly #clock: Clock;
  readonly #buckets: Readonly<Record<LimitedRequest, TokenBuckets<string>>>;
  /** Requests refused, by kind. */
  readonly refused: Record<LimitedRequest, number> = { 'peer-paths': 0, endpoint: 0, state: 0, events: 0 };

  constructor(clock: Clock, options: NodeRateLimitOptions = {}) {
    this.#clock = clock;
    const make = (k: LimitedRequest) => new TokenBuckets<string>(options[k] ?? NODE_RATE_LIMITS[k]);
    this.#buckets = { 'peer-paths': make('peer-paths'), endpoint: make('endpoint'), state: make('state'), events: make('events') };
  }

  /** Charges `cost` to `nodeId` for `kind`; over the limit sets Retry-After on `res` and throws
   *  ControlPlaneError rate_limited. */
  charge(kind: LimitedRequest, nodeId: string, cost: number, res: ServerResponse): void {
    const waitMs = this.#buckets[kind].take(nodeId, cost, this.#clock.now());
    if (waitMs === 0) return;
    this.refused[kind]++;
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    res.setHeader('retry-after', String(seconds));
    throw new ControlPlaneError('rate_limited', `too many ${kind} requests from this node; retry in ${seconds} s`);
  }
}
