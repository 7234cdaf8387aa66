// `control-plane admin-token create|list|revoke`: the dashboard's admin tokens (docs/control-plane.md
// "Dashboard"). A token is printed once at creation; the database keeps only its SHA-256.

import { createAdminToken, listAdminTokens, revokeAdminToken } from '../control-plane/ui/admin-auth.js';
import { DB_OPTIONS, dbArgs, parse, print, withStore } from './control-plane-common.js';
import { EXIT } from './constants.js';
import { formatTable } from './table.js';
import { UsageError } from './usage-error.js';

/** The usage lines of `admin-token`. */
export const ADMIN_TOKEN_USAGE = `  admin-token create|list|revoke ID --db FILE [--name N] [--json]   logins of /ui/`;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** Runs `admin-token ARGS`; returns the exit code. */
export function adminToken(args: readonly string[]): number {
  const [verb, ...rest] = args;
  if (verb !== 'create' && verb !== 'list' && verb !== 'revoke') throw new UsageError(`expected admin-token create, list or revoke, got ${JSON.stringify(verb ?? '')}`);
  const { values, positionals } = parse(rest, { ...DB_OPTIONS, name: { type: 'string' }, json: { type: 'boolean' } });
  const db = dbArgs(values);
  if (verb === 'create') {
    if (positionals.length > 0) throw new UsageError(`unexpected ${positionals.join(' ')}`);
    const name = typeof values.name === 'string' ? values.name : 'admin';
    let t: ReturnType<typeof createAdminToken>;
    try {
      t = withStore(db, (s) => createAdminToken(s.db, name, s.now()));
    } catch (err) {
      if (err instanceof RangeError) throw new UsageError(`--name: ${err.message}`);
      throw err;
    }
    if (values.json === true) print(JSON.stringify({ admin_token: t.token, id: t.id, name: t.name }));
    else print(`${t.token}\n# admin token ${t.id} (${t.name}); shown once: log in at /ui/login`);
    return EXIT.ok;
  }
  if (verb === 'list') {
    if (positionals.length > 0) throw new UsageError(`unexpected ${positionals.join(' ')}`);
    const rows = withStore(db, (s) => listAdminTokens(s.db)).map((r) => ({ id: r.id, name: r.name, created_at: iso(r.created_at), last_used_at: iso(r.last_used_at), revoked_at: iso(r.revoked_at) }));
    if (values.json === true) print(JSON.stringify(rows));
    else print(formatTable(['ID', 'NAME', 'CREATED', 'LAST_LOGIN', 'REVOKED'], rows.map((r) => [r.id, r.name, r.created_at ?? '-', r.last_used_at ?? '-', r.revoked_at ?? '-'])));
    return EXIT.ok;
  }
  if (positionals.length !== 1) throw new UsageError('admin-token revoke takes one ID');
  const ok = withStore(db, (s) => revokeAdminToken(s.db, positionals[0]!, s.now()));
  if (!ok) {
    process.stderr.write(`control-plane: no unrevoked admin token ${positionals[0]}\n`);
    return EXIT.setupFailed;
  }
  print(`revoked admin token ${positionals[0]}`);
  return EXIT.ok;
}
