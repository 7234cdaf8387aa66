// Single-use bootstrap tokens: random, stored only as a SHA-256 hash, expiring and revocable.
// The registration API checks them with the plexd error codes (token_invalid, token_revoked,
// token_consumed, token_expired).

import { createHash, randomBytes } from 'node:crypto';
import type { Db } from './database.js';
import { prepared } from './prepared.js';

/** Default token lifetime: 24 hours. */
export const DEFAULT_TOKEN_TTL_MS = 24 * 3600_000;

/** Hex SHA-256 of a token's text: the only form stored. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The short id shown for a token (first 12 hex digits of its hash), usable with `token revoke`. */
export function tokenId(hash: string): string {
  return hash.slice(0, 12);
}

/** A newly created token; `token` is shown once and never stored. */
export interface CreatedToken {
  readonly token: string;
  readonly id: string;
  readonly projectId: string;
  readonly expiresAt: number;
}

/** Creates a token for an existing project; the node it registers gets `labels` (JSON text of a
 *  checked label object, or null). Throws Error when the project does not exist. */
export function createToken(db: Db, projectId: string, ttlMs: number, now: number, labels: string | null = null): CreatedToken {
  if (!(ttlMs > 0)) throw new RangeError(`expected a positive ttl, got ${ttlMs}`);
  if (prepared(db, 'SELECT 1 FROM projects WHERE id = ?').get(projectId) === undefined) {
    throw new Error(`project ${JSON.stringify(projectId)} does not exist`);
  }
  const token = `pbt_${randomBytes(32).toString('base64url')}`;
  const hash = tokenHash(token);
  prepared(db, 'INSERT INTO tokens (hash, project_id, created_at, expires_at, labels) VALUES (?, ?, ?, ?, ?)').run(hash, projectId, now, now + ttlMs, labels);
  return { token, id: tokenId(hash), projectId, expiresAt: now + ttlMs };
}

/** Revokes a token given its text or its id (a hash prefix of at least 12 hex digits). Returns
 *  how many tokens were revoked (0 when none matched or all were already revoked). */
export function revokeToken(db: Db, tokenOrId: string, now: number): number {
  const isId = /^[0-9a-f]{12,64}$/.test(tokenOrId);
  const info = isId
    ? prepared(db, "UPDATE tokens SET revoked_at = ? WHERE revoked_at IS NULL AND substr(hash, 1, ?) = ?").run(now, tokenOrId.length, tokenOrId)
    : prepared(db, 'UPDATE tokens SET revoked_at = ? WHERE revoked_at IS NULL AND hash = ?').run(now, tokenHash(tokenOrId));
  return info.changes;
}

/** Outcome of checking a token for a registration. */
export type TokenCheck =
  | { readonly ok: true; readonly hash: string; readonly labels: string | null }
  | { readonly ok: false; readonly code: 'token_invalid' | 'token_revoked' | 'token_consumed' | 'token_expired' };

/** The columns of a tokens row a check reads. */
export interface TokenRow {
  readonly project_id: string;
  readonly expires_at: number;
  readonly revoked_at: number | null;
  readonly consumed_at: number | null;
  readonly labels: string | null;
}

/** Checks a token for `projectId` at `now` without consuming it, from its row as the caller
 *  read it (undefined: no token with hash `hash`; registration reads it with the nonce). */
export function judgeToken(row: TokenRow | undefined, hash: string, projectId: string, now: number): TokenCheck {
  if (row === undefined || row.project_id !== projectId) return { ok: false, code: 'token_invalid' };
  if (row.revoked_at !== null) return { ok: false, code: 'token_revoked' };
  if (row.consumed_at !== null) return { ok: false, code: 'token_consumed' };
  if (row.expires_at <= now) return { ok: false, code: 'token_expired' };
  return { ok: true, hash, labels: row.labels };
}

/** Marks a checked token as used by `nodeId`. */
export function consumeToken(db: Db, hash: string, nodeId: string, now: number): void {
  prepared(db, 'UPDATE tokens SET consumed_at = ?, node_id = ? WHERE hash = ? AND consumed_at IS NULL').run(now, nodeId, hash);
}
