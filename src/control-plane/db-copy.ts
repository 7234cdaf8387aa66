// `control-plane copy`: a SQLite database into a new PostgreSQL one (docs/control-plane.md
// "production: PostgreSQL and replicas"). Rows are copied as stored, sealed secrets included (they
// stay sealed under the same secrets key, which the PostgreSQL replicas are then given), in one
// transaction on the destination; the identity sequences continue where SQLite's AUTOINCREMENT
// counters were, so no event seq, node row or telemetry id is ever handed out twice.

import type BetterSqlite3 from 'better-sqlite3';
import type { Db } from './database.js';
import { schemaVersion } from './database.js';

/** Tables copied before the rest (foreign keys point at them); the trigger on policies writes
 *  policy_revisions, so the history goes in first and the trigger only rewrites its last row. */
const FIRST = ['meta', 'projects', 'admin_tokens', 'policy_revisions'] as const;
/** AUTOINCREMENT columns and their PostgreSQL sequences. */
const COUNTERS = [
  { table: 'events', column: 'seq', sequence: "'events_seq'" },
  { table: 'nodes', column: 'row', sequence: "pg_get_serial_sequence('nodes', 'row')" },
  { table: 'telemetry', column: 'id', sequence: "pg_get_serial_sequence('telemetry', 'id')" },
] as const;
/** Bind parameters per INSERT, below PostgreSQL's limit of 65,535. */
const PARAMS_PER_INSERT = 30_000;

/** What a copy moved: rows per table. */
export interface CopyReport {
  readonly schemaVersion: number;
  readonly tables: ReadonlyArray<{ readonly table: string; readonly rows: number }>;
}

/** Tables whose rows a migration seeds on both engines (a new database has them). */
const SEEDED: readonly string[] = ['mesh_alloc'];

/**
 * Copies every row of the SQLite database `from` into the empty PostgreSQL database `to`, both
 * opened (and so migrated) by openDatabase. Throws Error, changing nothing, when the schema
 * versions or table sets differ or any destination table already holds a row.
 */
export function copyDatabase(from: Db, to: Db): CopyReport {
  if (from.dialect !== 'sqlite' || to.dialect !== 'postgres') throw new Error('copy goes from a SQLite database to a PostgreSQL one');
  const version = schemaVersion(from);
  if (schemaVersion(to) !== version) throw new Error(`schema versions differ: ${version} (SQLite) and ${schemaVersion(to)} (PostgreSQL)`);
  const src = from as unknown as BetterSqlite3.Database;
  const tables = src.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('sqlite_sequence', 'schema_version') ORDER BY name").pluck().all() as string[];
  const theirs = new Set(to.prepare("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_version'").pluck().all() as string[]);
  const missing = tables.filter((t) => !theirs.has(t));
  const extra = [...theirs].filter((t) => !tables.includes(t));
  if (missing.length > 0 || extra.length > 0) throw new Error(`table sets differ: only in SQLite [${missing.join(', ')}], only in PostgreSQL [${extra.join(', ')}]`);
  const order = [...FIRST.filter((t) => tables.includes(t)), ...tables.filter((t) => !(FIRST as readonly string[]).includes(t))];
  const report: Array<{ table: string; rows: number }> = [];
  to.transaction(() => {
    for (const t of order) {
      const n = to.prepare(`SELECT COUNT(*) FROM ${t}`).pluck().get() as number;
      // A row a migration seeds (mesh_alloc's one row) is replaced by the source's.
      if (SEEDED.includes(t)) {
        to.prepare(`DELETE FROM ${t}`).run();
        continue;
      }
      if (n > 0) throw new Error(`the destination is not empty (${t} has ${n} rows): copy into a new database`);
    }
    for (const t of order) {
      const columns = src.prepare(`SELECT name FROM pragma_table_info('${t}') ORDER BY cid`).pluck().all() as string[];
      const perInsert = Math.max(1, Math.floor(PARAMS_PER_INSERT / columns.length));
      let batch: unknown[][] = [];
      let rows = 0;
      const flush = (): void => {
        if (batch.length === 0) return;
        const tuple = `(${columns.map(() => '?').join(', ')})`;
        to.prepare(`INSERT INTO ${t} (${columns.join(', ')}) VALUES ${batch.map(() => tuple).join(', ')}`).run(...batch.flat());
        rows += batch.length;
        batch = [];
      };
      for (const row of src.prepare(`SELECT ${columns.join(', ')} FROM ${t}`).raw().iterate() as Iterable<unknown[]>) {
        batch.push(row);
        if (batch.length >= perInsert) flush();
      }
      flush();
      report.push({ table: t, rows });
    }
    for (const c of COUNTERS) {
      const counter = (src.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').pluck().get(c.table) as number | undefined) ?? 0;
      const highest = (src.prepare(`SELECT MAX(${c.column}) FROM ${c.table}`).pluck().get() as number | null) ?? 0;
      const next = Math.max(counter, highest);
      if (next > 0) to.prepare(`SELECT setval(${c.sequence}, ?)`).get(next);
    }
  })();
  return { schemaVersion: version, tables: report };
}
