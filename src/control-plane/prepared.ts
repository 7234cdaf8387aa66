// One cache of prepared statements per database handle, so hot paths (registration, heartbeats,
// event reads) do not re-prepare SQL on every call.

import type { Db } from './database.js';
import type { SqlStatement as Statement } from './sql.js';

const cache = new WeakMap<Db, Map<string, Statement>>();

/** The prepared statement for `sql` on `db`, prepared once. */
export function prepared(db: Db, sql: string): Statement {
  let m = cache.get(db);
  if (m === undefined) {
    m = new Map();
    cache.set(db, m);
  }
  let s = m.get(sql);
  if (s === undefined) {
    s = db.prepare(sql);
    m.set(sql, s);
  }
  return s;
}
