// Opens the control plane's SQLite database (better-sqlite3 12): WAL so the CLI can write while
// `serve` runs, a busy timeout for that overlap, and the versioned migrations of schema.ts.

import Database from 'better-sqlite3';
import { MIGRATIONS } from './schema.js';

/** An open better-sqlite3 handle. */
export type Db = Database.Database;

/** How long a writer waits for another process's write lock before failing (ms). */
const BUSY_TIMEOUT_MS = 5000;

/** Opens (creating when absent) and migrates the database at `file`. Throws on an unreadable
 *  file or a schema newer than this build knows. */
export function openDatabase(file: string): Db {
  const db = new Database(file);
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
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

/** The schema version recorded in `db` (0 for a new file). */
export function schemaVersion(db: Db): number {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null };
  return row.v ?? 0;
}

function migrate(db: Db): void {
  // IMMEDIATE: two processes opening a new file at once must not both run migration 1.
  db.transaction(() => {
    const have = schemaVersion(db);
    if (have > MIGRATIONS.length) {
      throw new Error(`database schema version ${have} is newer than this build (${MIGRATIONS.length})`);
    }
    for (let v = have + 1; v <= MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v - 1]!);
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(v);
    }
  }).immediate();
}
