// The database surface the control plane is written against: the part of better-sqlite3's
// synchronous API it uses (prepare/run/get/all/pluck, transaction, exec, pragma). SQLite is
// better-sqlite3 itself (database.ts); PostgreSQL is postgres.ts, which keeps this surface
// synchronous by waiting on a worker thread that owns the connection, and speaks the same SQL
// after a small, fixed translation (postgres.ts translateSql).

/** Which engine a database handle talks to. */
export type SqlDialect = 'sqlite' | 'postgres';

/** What a write statement did. */
export interface SqlRunResult {
  readonly changes: number;
  readonly lastInsertRowid: number | bigint;
}

/** A prepared statement. Parameters are positional (`?`). */
export interface SqlStatement {
  run(...params: unknown[]): SqlRunResult;
  /** The first row, undefined when none. */
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  /** Return only the first column of each row from now on (toggle false to undo). */
  pluck(toggle?: boolean): this;
}

/** A function wrapped in a transaction (better-sqlite3's shape): calling it runs BEGIN, the
 *  function, COMMIT (ROLLBACK when it throws); nested calls use savepoints. */
export interface SqlTransaction<F extends (...args: never[]) => unknown> {
  (...args: Parameters<F>): ReturnType<F>;
  deferred(...args: Parameters<F>): ReturnType<F>;
  immediate(...args: Parameters<F>): ReturnType<F>;
  exclusive(...args: Parameters<F>): ReturnType<F>;
}

/** An open database of either engine. */
export interface SqlDatabase {
  readonly dialect: SqlDialect;
  readonly inTransaction: boolean;
  prepare(sql: string): SqlStatement;
  /** Runs one or more statements without parameters. */
  exec(sql: string): unknown;
  transaction<F extends (...args: never[]) => unknown>(fn: F): SqlTransaction<F>;
  /** SQLite pragmas; on PostgreSQL only `data_version` (a counter that moves when another
   *  process committed events) means something, the rest are accepted and ignored. */
  pragma(source: string, options?: { simple?: boolean }): unknown;
  close(): unknown;
}

/** True for a `postgres://` or `postgresql://` URL (the `--db` of a PostgreSQL database). */
export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}
