// `control-plane migrate` and `control-plane copy` (issue 20): bring a database (SQLite file or
// PostgreSQL URL) to this build's schema, idempotently; copy a SQLite database into a new
// PostgreSQL one (docs/control-plane.md "production: PostgreSQL and replicas").

import { migrationOf, openDatabase } from '../control-plane/database.js';
import { copyDatabase } from '../control-plane/db-copy.js';
import { isPostgresUrl } from '../control-plane/sql.js';
import { ControlPlaneStore } from '../control-plane/store.js';
import { DB_OPTIONS, dbArgs, need, parse, print, withStore } from './control-plane-common.js';
import { EXIT } from './constants.js';
import { UsageError } from './usage-error.js';

/** The usage lines of `migrate` and `copy`. */
export const DB_USAGE = `  migrate --db FILE|postgres://USER@HOST/DB [--json]
        bring the database to this build's schema (idempotent; serve does it too); on a new
        database also makes the default project, the signing key and the secrets key
  copy --db FILE --to postgres://USER@HOST/DB [--json]
        copy a SQLite database into a new, empty PostgreSQL database, sealed secrets as they are:
        serve the copy with --secrets-key set to the SQLite database's key file
`;

/** Runs `migrate ARGS`; returns the exit code. */
export function migrate(args: readonly string[]): number {
  const { values, positionals } = parse(args, { ...DB_OPTIONS, json: { type: 'boolean' } });
  if (positionals.length > 0) throw new UsageError(`unexpected ${positionals.join(' ')}`);
  const db = dbArgs(values);
  const m = withStore(db, (s) => ({ dialect: s.db.dialect, ...migrationOf(s.db)! }));
  if (values.json === true) print(JSON.stringify({ backend: m.dialect, from: m.from, to: m.to }));
  else print(m.from === m.to ? `schema version ${m.to} (${m.dialect}): up to date` : `schema version ${m.from} -> ${m.to} (${m.dialect})`);
  return EXIT.ok;
}

/** Runs `copy ARGS`; returns the exit code. */
export function copy(args: readonly string[]): number {
  const { values, positionals } = parse(args, { ...DB_OPTIONS, to: { type: 'string' }, json: { type: 'boolean' } });
  if (positionals.length > 0) throw new UsageError(`unexpected ${positionals.join(' ')}`);
  const source = dbArgs(values);
  const target = need(values.to, '--to');
  if (isPostgresUrl(source.db)) throw new UsageError('--db: expected the SQLite database file to copy from');
  if (!isPostgresUrl(target)) throw new UsageError(`--to: expected a postgres:// URL, got ${JSON.stringify(target)}`);
  const keyFile = source.secretsKeyFile ?? `${source.db}.secrets.key`;
  // The source opens with its key first: a copy nobody can open (wrong or missing key) is refused.
  withStore(source, () => undefined);
  const from = openDatabase(source.db, { allowInsecurePermissions: source.allowInsecurePermissions });
  let report: ReturnType<typeof copyDatabase>;
  try {
    const to = openDatabase(target);
    try {
      report = copyDatabase(from, to);
    } finally {
      to.close();
    }
  } catch (err) {
    throw new Error(`copy to ${redact(target)}: ${(err as Error).message}`, { cause: err });
  } finally {
    from.close();
  }
  // Proof the copy opens with the same key (signing key and PSK master unsealed).
  ControlPlaneStore.open(target, { secretsKeyFile: keyFile, allowInsecurePermissions: source.allowInsecurePermissions }).close();
  const rows = report.tables.reduce((n, t) => n + t.rows, 0);
  if (values.json === true) print(JSON.stringify({ schema_version: report.schemaVersion, rows, tables: report.tables, secrets_key: keyFile }));
  else print(`copied ${rows} rows in ${report.tables.length} tables (schema version ${report.schemaVersion}) to ${redact(target)}\nserve it with: --db ${redact(target)} --secrets-key ${keyFile}`);
  return EXIT.ok;
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.href;
  } catch {
    return '(unparsable URL)';
  }
}
