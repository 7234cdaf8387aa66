// Opens the control plane's SQLite database (better-sqlite3 12): WAL so the CLI can write while
// `serve` runs, a busy timeout for that overlap, and the versioned migrations of schema.ts. The
// file is created 0600 before SQLite sees it (SQLite gives -wal/-shm the database's mode).

import Database from 'better-sqlite3';
import { isStandaloneBinary, loadStandaloneAddon } from '../io/sea.js';
import { assertPrivateFile, createEmptyPrivateFile, ensurePrivateDir, tightenIfPresent } from './private-file.js';
import { PostgresDatabase } from './postgres.js';
import { MIGRATIONS } from './schema.js';
import { POSTGRES_BASELINE, POSTGRES_BASELINE_VERSION, POSTGRES_MIGRATIONS } from './schema-postgres.js';
import { isPostgresUrl, type SqlDatabase } from './sql.js';

/** An open database handle: better-sqlite3, or PostgreSQL (postgres.ts). */
export type Db = SqlDatabase;

/** How long a writer waits for another process's write lock before failing (ms). */
const BUSY_TIMEOUT_MS = 5000;

/** SQLite's companion files of a database, which hold its pages too. */
const COMPANIONS = ['-wal', '-shm', '-journal'] as const;

/** Options of openDatabase. */
export interface DatabaseOptions {
  /** Start even when the file is readable or writable by group or others (and leave its
   *  companions' modes alone). Default false: such a file is refused. */
  readonly allowInsecurePermissions?: boolean;
}

/**
 * Opens (creating when absent, mode 0600, its directory 0700 when that is created too) and
 * migrates the database at `file`; companions left with looser modes by an older build are set
 * to 0600. Throws ControlPlaneFileError ERR_CP_INSECURE_PERMISSIONS on a file readable or writable
 * by group or others (unless allowed), and Error on an unreadable file or a schema newer than this
 * build knows.
 */
export function openDatabase(file: string, options: DatabaseOptions = {}): Db {
  if (isPostgresUrl(file)) return openPostgres(file);
  const allow = options.allowInsecurePermissions === true;
  ensurePrivateDir(file);
  createEmptyPrivateFile(file);
  assertPrivateFile(file, 'database', allow);
  if (!allow) for (const suffix of COMPANIONS) tightenIfPresent(file + suffix);
  const db = new Database(file, nativeBinding()) as unknown as Database.Database & SqlDatabase;
  Object.defineProperty(db, 'dialect', { value: 'sqlite', enumerable: true });
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // Deleted content is zeroed: a secret sealed in place, a retry nsk set to NULL or a removed
    // pair key leaves no copy behind in the file.
    db.pragma('secure_delete = ON');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * better-sqlite3's addon: found by better-sqlite3 itself in node_modules, or, in the standalone
 * binary, the copy it carries as an asset (scripts/build-binary.mjs), loaded once.
 */
function nativeBinding(): Database.Options {
  if (!isStandaloneBinary()) return {};
  sqliteAddon ??= loadStandaloneAddon('better_sqlite3.node') as object;
  // better-sqlite3 takes the loaded addon object too (lib/database.js); its types say string only.
  return { nativeBinding: sqliteAddon as unknown as string };
}
let sqliteAddon: object | undefined;

/** The schema version recorded in `db` (0 for a new file). */
export function schemaVersion(db: Db): number {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_version (version ${db.dialect === 'postgres' ? 'BIGINT' : 'INTEGER'} NOT NULL)`);
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null };
  return row.v ?? 0;
}

/** Opens and migrates a PostgreSQL database (the first statement connects). A new database gets
 *  the baseline (schema-postgres.ts), then the twins of later migrations; all under the writer
 *  lock, so replicas starting together migrate once. */
function openPostgres(url: string): Db {
  // The worker thread loads node-postgres from node_modules, which a single executable lacks.
  if (isStandaloneBinary()) throw new Error('PostgreSQL needs plexd-userspace installed from npm; the standalone binary carries SQLite only');
  const db = PostgresDatabase.open(url);
  try {
    db.transaction(() => {
      const have = schemaVersion(db);
      if (have > MIGRATIONS.length) {
        throw new Error(`database schema version ${have} is newer than this build (${MIGRATIONS.length})`);
      }
      migrations.set(db, { from: have, to: MIGRATIONS.length });
      let v = have;
      if (v === 0) {
        db.exec(POSTGRES_BASELINE);
        for (v = 1; v <= POSTGRES_BASELINE_VERSION; v++) db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(v);
        v = POSTGRES_BASELINE_VERSION;
      }
      for (v++; v <= MIGRATIONS.length; v++) {
        const twin = POSTGRES_MIGRATIONS[v];
        if (twin === undefined) throw new Error(`schema version ${v} has no PostgreSQL migration in this build`);
        db.exec(twin);
        db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(v);
      }
    })();
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** The schema versions an open ran from and to, by handle (what `control-plane migrate` prints). */
const migrations = new WeakMap<Db, { readonly from: number; readonly to: number }>();

/** The schema version `db` had before this process opened it, and the one it has now. */
export function migrationOf(db: Db): { readonly from: number; readonly to: number } | undefined {
  return migrations.get(db);
}

function migrate(db: Db): void {
  // IMMEDIATE: two processes opening a new file at once must not both run migration 1.
  db.transaction(() => {
    const have = schemaVersion(db);
    migrations.set(db, { from: have, to: MIGRATIONS.length });
    if (have > MIGRATIONS.length) {
      throw new Error(`database schema version ${have} is newer than this build (${MIGRATIONS.length})`);
    }
    for (let v = have + 1; v <= MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v - 1]!);
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(v);
    }
  }).immediate();
}
