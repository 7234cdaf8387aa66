// Admin credentials of the dashboard (docs/control-plane.md "Dashboard"): long-lived admin tokens
// made by `control-plane admin-token create`, exchanged at /ui/login for a short browser session.
// Only SHA-256 hashes of tokens and session cookies are stored (migration 13); each session has its
// own CSRF token (synchronizer-token pattern, OWASP CSRF cheat sheet). Admin tokens and node
// credentials live in separate tables and formats: neither authenticates where the other does.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../database.js';
import { prepared } from '../prepared.js';

/** Prefix of every admin token's text. */
export const ADMIN_TOKEN_PREFIX = 'plexd_admin_';
/** Default session lifetime: 8 hours from login (absolute, not sliding). */
export const ADMIN_SESSION_TTL_MS = 8 * 3600_000;
/** Longest admin token name. */
export const MAX_ADMIN_TOKEN_NAME = 64;

const ADMIN_TOKEN = /^plexd_admin_[A-Za-z0-9_-]{43}$/;
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** A new admin token; `token` is shown once and never stored. */
export interface CreatedAdminToken {
  readonly token: string;
  readonly id: string;
  readonly name: string;
}

/** One admin token as listed (no secret). */
export interface AdminTokenRow {
  readonly id: string;
  readonly name: string;
  readonly created_at: number;
  readonly last_used_at: number | null;
  readonly revoked_at: number | null;
}

/** Creates an admin token named `name` (1-64 printable characters; RangeError otherwise). */
export function createAdminToken(db: Db, name: string, now: number): CreatedAdminToken {
  if (!/^[\x20-\x7e]{1,64}$/.test(name)) throw new RangeError(`expected a token name of 1-${MAX_ADMIN_TOKEN_NAME} printable ASCII characters, got ${JSON.stringify(name.slice(0, 80))}`);
  const token = ADMIN_TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const hash = sha256(token);
  const id = hash.slice(0, 12);
  prepared(db, 'INSERT INTO admin_tokens (id, hash, name, created_at) VALUES (?, ?, ?, ?)').run(id, hash, name, now);
  return { token, id, name };
}

/** Every admin token, newest first. */
export function listAdminTokens(db: Db): AdminTokenRow[] {
  return prepared(db, 'SELECT id, name, created_at, last_used_at, revoked_at FROM admin_tokens ORDER BY created_at DESC, id').all() as AdminTokenRow[];
}

/** Revokes the admin token with `id` and ends its sessions; false when no unrevoked token has it. */
export function revokeAdminToken(db: Db, id: string, now: number): boolean {
  return db.transaction(() => {
    const n = prepared(db, 'UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(now, id).changes;
    prepared(db, 'DELETE FROM admin_sessions WHERE token_id = ?').run(id);
    return n > 0;
  })();
}

/** A logged-in browser session. */
export interface AdminSession {
  readonly tokenId: string;
  readonly csrf: string;
  readonly expiresAt: number;
}

/** Exchanges an admin token for a session: the cookie value (shown once) and the session; undefined
 *  when the token is malformed, unknown or revoked. Expired sessions are pruned here. */
export function login(db: Db, token: string, now: number, ttlMs = ADMIN_SESSION_TTL_MS): { cookie: string; session: AdminSession } | undefined {
  if (!ADMIN_TOKEN.test(token)) return undefined;
  const row = prepared(db, 'SELECT id FROM admin_tokens WHERE hash = ? AND revoked_at IS NULL').get(sha256(token)) as { id: string } | undefined;
  if (row === undefined) return undefined;
  const cookie = randomBytes(32).toString('base64url');
  const session: AdminSession = { tokenId: row.id, csrf: randomBytes(32).toString('base64url'), expiresAt: now + ttlMs };
  db.transaction(() => {
    prepared(db, 'DELETE FROM admin_sessions WHERE expires_at <= ?').run(now);
    prepared(db, 'INSERT INTO admin_sessions (hash, token_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)').run(sha256(cookie), row.id, session.csrf, now, session.expiresAt);
    prepared(db, 'UPDATE admin_tokens SET last_used_at = ? WHERE id = ?').run(now, row.id);
  })();
  return { cookie, session };
}

/** The live session of a cookie value, or undefined (malformed, unknown, expired). */
export function sessionOf(db: Db, cookie: string | undefined, now: number): AdminSession | undefined {
  if (cookie === undefined || !SESSION_ID.test(cookie)) return undefined;
  const row = prepared(db, 'SELECT token_id, csrf, expires_at FROM admin_sessions WHERE hash = ?').get(sha256(cookie)) as { token_id: string; csrf: string; expires_at: number } | undefined;
  if (row === undefined || row.expires_at <= now) return undefined;
  return { tokenId: row.token_id, csrf: row.csrf, expiresAt: row.expires_at };
}

/** Ends the session of a cookie value (no-op when none). */
export function logout(db: Db, cookie: string): void {
  if (SESSION_ID.test(cookie)) prepared(db, 'DELETE FROM admin_sessions WHERE hash = ?').run(sha256(cookie));
}

/** True when `given` is the session's CSRF token (constant time). */
export function csrfMatches(session: AdminSession, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
