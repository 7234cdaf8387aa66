// Crash-safe mesh key rotation, as upstream plexd (docs/agent.md "Key rotation"): the new private
// key is staged on disk (rotation_pending_key) before POST /v1/keys/rotate; the answer decides:
// 200 (or 422 keys_rotate_public_key_unchanged: an earlier submission landed) commits it as
// private_key and then removes the staging file; 409 keys_rotate_no_pending_rotation and every
// other permanent refusal (400, 403, 404, 413, other 422) discard it; anything else (network,
// timeout, 429, 5xx) keeps it for a resubmission. A crash at any point leaves either no staging
// file (nothing happened, or all of it) or one whose resubmission converges: the control plane
// answers a key it already holds with the same receipt.

import { ApiError } from '../control/http-client.js';
import type { KeyRotateResponse } from '../api/types.js';
import type { Store } from './store.js';

/** The points a crash-test hook can stop a rotation at. */
export type RotationStep = 'staged' | 'submitted' | 'committed';

/** What one attempt ended in. */
export type RotationOutcome =
  | { readonly outcome: 'committed'; readonly privateKey: string }
  | { readonly outcome: 'discarded'; readonly reason: string }
  | { readonly outcome: 'pending'; readonly reason: string };

/** What {@link attemptRotation} needs. */
export interface RotationContext {
  readonly store: Store;
  readonly submit: (publicKey: string) => Promise<KeyRotateResponse>;
  readonly generate: () => string;
  readonly publicKeyOf: (privateKey: string) => string;
  /** Test hook, awaited after each step (a crash test makes it never resolve). */
  readonly hook?: (step: RotationStep) => void | Promise<void>;
}

const PERMANENT = new Set([400, 403, 404, 409, 413, 422]);

/**
 * One rotation attempt: reuses the staged key when there is one, else stages a fresh one, then
 * submits and commits or discards by the answer. Never throws for an API failure.
 */
export async function attemptRotation(ctx: RotationContext): Promise<RotationOutcome> {
  let staged = ctx.store.loadPendingKey();
  if (staged === undefined) {
    staged = ctx.generate();
    ctx.store.savePendingKey(staged);
  }
  await ctx.hook?.('staged');
  try {
    await ctx.submit(ctx.publicKeyOf(staged));
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    const landed = err.status === 422 && err.problemCode === 'keys_rotate_public_key_unchanged';
    if (!landed) {
      const why = `${err.status ?? err.kind}${err.problemCode !== undefined ? ` ${err.problemCode}` : ''}: ${err.message}`;
      if (err.kind === 'http' && err.status !== undefined && PERMANENT.has(err.status)) {
        ctx.store.removePendingKey();
        return { outcome: 'discarded', reason: why };
      }
      return { outcome: 'pending', reason: why };
    }
  }
  await ctx.hook?.('submitted');
  ctx.store.savePrivateKey(staged);
  await ctx.hook?.('committed');
  ctx.store.removePendingKey();
  return { outcome: 'committed', privateKey: staged };
}
