// The control plane on PostgreSQL (issue 20): the SqlDatabase surface of sql.ts over one
// node-postgres connection owned by a worker thread (postgres-worker.ts). The control plane's code
// is synchronous, as better-sqlite3 is; here each statement is one round trip to the worker, which
// the main thread waits for with Atomics.wait (measured in docs/control-plane.md "production").
//
// Replicas. Any number of `serve` processes share one database:
// - Every transaction takes one cluster-wide advisory lock (WRITE_LOCK) first: writers are
//   serialized as SQLite's are, so the checks-then-writes of registration, mesh-IP and access
//   address allocation, token consumption and nonces stay correct across replicas, and event
//   sequence numbers commit in order (a reader never sees seq 12 before 11 commits, so
//   Last-Event-ID resumes with no gap on any replica).
// - A trigger NOTIFYs CHANGES_CHANNEL when events are appended; listen() wakes this process, which
//   reads the content from the event log.
// - leads() elects one replica for the liveness sweep and pruning: a session advisory lock, held
//   while its connection lives, taken over by another replica when that connection dies.
// Failure. A lost connection fails the request with ControlPlaneError `unavailable` (503); the
// worker reconnects with backoff; a transaction whose connection died is rolled back by the server
// (nothing half-written) and never continued on the new connection.

import { createRequire } from 'node:module';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import pg from 'pg';
import { ControlPlaneError } from './errors.js';
import { POSTGRES_WORKER_SOURCE } from './postgres-worker.js';
import { CHANGES_CHANNEL } from './schema-postgres.js';
import type { SqlDatabase, SqlRunResult, SqlStatement, SqlTransaction } from './sql.js';

/** The cluster-wide writer lock every transaction takes (pg_advisory_xact_lock key). */
export const WRITE_LOCK = 0x706c7864; // "plxd"
/** The session lock of the replica that runs sweeps and pruning. */
export const LEADER_LOCK = 0x706c7865;

/** Options of PostgresDatabase.open. */
export interface PostgresOptions {
  /** A statement running longer is cancelled by the server. Default 10 s. */
  readonly statementTimeoutMs?: number;
  /** Waiting longer for a lock (the writer lock included) fails the request. Default 5 s. */
  readonly lockTimeoutMs?: number;
  /** Connecting longer fails the request (and starts the backoff). Default 2 s. */
  readonly connectTimeoutMs?: number;
}

interface WorkerAnswer {
  readonly id: number;
  readonly ok?: { rows: unknown[]; rowCount: number };
  readonly error?: { unavailable?: boolean; message: string; code?: string; detail?: string; constraint?: string };
}

type Request =
  | { op: 'query'; text: string; values: unknown[]; array: boolean }
  | { op: 'exec'; text: string }
  | { op: 'begin'; lock?: number; readOnly?: boolean }
  | { op: 'commit' | 'rollback' | 'close' };

/** A control-plane database on PostgreSQL. */
export class PostgresDatabase implements SqlDatabase {
  readonly dialect = 'postgres' as const;
  readonly url: string;
  readonly #options: PostgresOptions;
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #flag: Int32Array;
  /** Main-thread wait for one answer: past the server's own timeouts, so it fires only when the
   *  worker itself is stuck. */
  readonly #waitMs: number;
  #nextId = 1;
  #depth = 0;
  #closed = false;
  #dataVersion = 0;
  #listener: pg.Client | undefined;
  #listenTimer: NodeJS.Timeout | undefined;
  #listening = false;
  #workerError: Error | undefined;

  private constructor(url: string, options: PostgresOptions) {
    this.url = url;
    this.#options = options;
    const flag = new SharedArrayBuffer(4);
    this.#flag = new Int32Array(flag);
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    const statementTimeoutMs = options.statementTimeoutMs ?? 10_000;
    const lockTimeoutMs = options.lockTimeoutMs ?? 5_000;
    const connectTimeoutMs = options.connectTimeoutMs ?? 2_000;
    this.#waitMs = statementTimeoutMs + lockTimeoutMs + connectTimeoutMs + 5_000;
    this.#worker = new Worker(POSTGRES_WORKER_SOURCE, {
      eval: true,
      workerData: { pg: createRequire(import.meta.url).resolve('pg'), url, flag, port: port2, statementTimeoutMs, lockTimeoutMs, connectTimeoutMs },
      transferList: [port2],
    });
    this.#worker.unref();
    this.#port.unref();
    // A worker that died answers nothing more: later calls fail at once with 503, and the 'error'
    // event is handled (unhandled, it would end the process).
    this.#worker.on('error', (err: Error) => {
      this.#workerError = err;
    });
  }

  /** A handle on the database at `url` (postgres:// or postgresql://). Connects lazily: the first
   *  statement connects, and throws ControlPlaneError unavailable when it cannot. */
  static open(url: string, options: PostgresOptions = {}): PostgresDatabase {
    return new PostgresDatabase(url, options);
  }

  get inTransaction(): boolean {
    return this.#depth > 0;
  }

  /** One request to the worker, waited for. */
  #call(req: Request): { rows: unknown[]; rowCount: number } {
    if (this.#closed) throw new Error('the database connection is closed');
    if (this.#workerError !== undefined) throw new ControlPlaneError('unavailable', `database unavailable: its worker failed (${this.#workerError.message})`);
    const id = this.#nextId++;
    this.#port.postMessage({ ...req, id });
    const deadline = Date.now() + this.#waitMs;
    for (;;) {
      const seen = Atomics.load(this.#flag, 0);
      const got = receiveMessageOnPort(this.#port);
      if (got !== undefined) {
        const m = got.message as WorkerAnswer;
        if (m.id !== id) continue; // the late answer of a request given up on
        if (m.error !== undefined) throw toError(m.error);
        return m.ok!;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new ControlPlaneError('unavailable', `database unavailable: no answer within ${this.#waitMs} ms`);
      Atomics.wait(this.#flag, 0, seen, left);
    }
  }

  /** Runs translated SQL (statement.ts callers go through prepare). */
  query(text: string, values: readonly unknown[], array: boolean): { rows: unknown[]; rowCount: number } {
    // PostgreSQL text cannot hold NUL (SQLite's can): such a value is refused as the input error
    // it is (no stored text contains one, so no lookup could match it either).
    for (const v of values) {
      if (typeof v === 'string' && v.includes('\0')) throw new ControlPlaneError('validation_failed', 'text containing a NUL character');
    }
    const out = this.#call({ op: 'query', text, values: values.map((v) => (v === undefined ? null : v)), array });
    for (const row of out.rows) {
      const r = row as Record<string, unknown>;
      for (const k in r) {
        const v = r[k];
        if (v instanceof Uint8Array && !Buffer.isBuffer(v)) r[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      }
    }
    return out;
  }

  prepare(sql: string): SqlStatement {
    return new PostgresStatement(this, translateSql(sql));
  }

  exec(sql: string): this {
    this.#call({ op: 'exec', text: sql });
    return this;
  }

  transaction<F extends (...args: never[]) => unknown>(fn: F): SqlTransaction<F> {
    // `.deferred` (explicitly; the plain call writes in places) is a read: a REPEATABLE READ,
    // READ ONLY snapshot that takes no writer lock, so reads (state pulls, peer lists) do not
    // queue behind the cluster's writers. A write inside it fails (SQLSTATE 25006).
    const run = (...args: Parameters<F>): ReturnType<F> => this.#run(fn, args, false);
    const read = (...args: Parameters<F>): ReturnType<F> => this.#run(fn, args, true);
    return Object.assign(run, { deferred: read, immediate: run, exclusive: run }) as SqlTransaction<F>;
  }

  #run<F extends (...args: never[]) => unknown>(fn: F, args: Parameters<F>, readOnly: boolean): ReturnType<F> {
    if (this.#depth > 0) {
      const sp = `plexd_sp${this.#depth}`;
      this.#call({ op: 'exec', text: `SAVEPOINT ${sp}` });
      this.#depth++;
      try {
        const out = fn(...args) as ReturnType<F>;
        this.#call({ op: 'exec', text: `RELEASE SAVEPOINT ${sp}` });
        return out;
      } catch (err) {
        try {
          this.#call({ op: 'exec', text: `ROLLBACK TO SAVEPOINT ${sp}; RELEASE SAVEPOINT ${sp}` });
        } catch {
          // the outer transaction fails anyway
        }
        throw err;
      } finally {
        this.#depth--;
      }
    }
    this.#call(readOnly ? { op: 'begin', readOnly: true } : { op: 'begin', lock: WRITE_LOCK });
    this.#depth = 1;
    try {
      const out = fn(...args) as ReturnType<F>;
      this.#call({ op: 'commit' });
      return out;
    } catch (err) {
      try {
        this.#call({ op: 'rollback' });
      } catch {
        // connection gone: the server rolled back
      }
      throw err;
    } finally {
      this.#depth = 0;
    }
  }

  pragma(source: string): unknown {
    if (source.trim() === 'data_version') return this.#dataVersion;
    return undefined;
  }

  /** True when this process holds the cluster's leader lock (taking it when free): the one
   *  replica that runs the liveness sweep and pruning. False when the database is unreachable. */
  leads(): boolean {
    try {
      const r = this.query(
        `SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND classid = 0 AND objid = ${LEADER_LOCK} AND objsubid = 1 AND granted)
           THEN true ELSE pg_try_advisory_lock(${LEADER_LOCK}) END`,
        [],
        true,
      );
      return (r.rows[0] as unknown[])[0] === true;
    } catch (err) {
      if (err instanceof ControlPlaneError) return false;
      throw err;
    }
  }

  /** Listens for other processes' changes: `onChange` runs on every NOTIFY of CHANGES_CHANNEL and
   *  after every (re)connect of the listening connection (what was missed meanwhile is in the
   *  log), and data_version moves with it. Reconnects with backoff (250 ms doubling to 5 s). */
  listen(onChange: () => void): void {
    if (this.#listening) return;
    this.#listening = true;
    let backoff = 250;
    const start = (): void => {
      this.#listenTimer = undefined;
      if (this.#closed) return;
      const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: this.#options.connectTimeoutMs ?? 2_000, keepAlive: true, application_name: 'plexd-userspace control-plane listen' });
      this.#listener = c;
      let failed = false;
      const retry = (): void => {
        if (failed || this.#closed) return;
        failed = true;
        if (this.#listener === c) this.#listener = undefined;
        c.end().catch(() => {});
        this.#listenTimer = setTimeout(start, backoff);
        this.#listenTimer.unref();
        backoff = Math.min(5_000, backoff * 2);
      };
      c.on('notification', () => {
        this.#dataVersion++;
        onChange();
      });
      c.on('error', retry);
      c.on('end', retry);
      c.connect()
        .then(() => c.query(`LISTEN ${CHANGES_CHANNEL}`))
        .then(() => {
          backoff = 250;
          this.#dataVersion++;
          onChange();
        })
        .catch(retry);
    };
    start();
  }

  close(): void {
    if (this.#closed) return;
    try {
      this.#call({ op: 'close' });
    } catch {
      // closing anyway
    }
    this.#closed = true;
    if (this.#listenTimer !== undefined) clearTimeout(this.#listenTimer);
    this.#listener?.end().catch(() => {});
    this.#listener = undefined;
    void this.#worker.terminate();
    this.#port.close();
  }
}

class PostgresStatement implements SqlStatement {
  readonly #db: PostgresDatabase;
  readonly #text: string;
  #pluck = false;

  constructor(db: PostgresDatabase, text: string) {
    this.#db = db;
    this.#text = text;
  }

  pluck(toggle = true): this {
    this.#pluck = toggle;
    return this;
  }

  run(...params: unknown[]): SqlRunResult {
    return { changes: this.#db.query(this.#text, params, false).rowCount, lastInsertRowid: 0 };
  }

  get(...params: unknown[]): unknown {
    const row = this.#db.query(this.#text, params, this.#pluck).rows[0];
    return row === undefined ? undefined : this.#pluck ? (row as unknown[])[0] : row;
  }

  all(...params: unknown[]): unknown[] {
    const rows = this.#db.query(this.#text, params, this.#pluck).rows;
    return this.#pluck ? rows.map((r) => (r as unknown[])[0]) : rows;
  }
}

/** SQLSTATEs of a busy database: lock_not_available, query_canceled, serialization_failure,
 *  deadlock_detected. */
const BUSY_CODES = new Set(['55P03', '57014', '40001', '40P01']);

function toError(e: NonNullable<WorkerAnswer['error']>): Error {
  if (e.unavailable === true) return new ControlPlaneError('unavailable', `database unavailable: ${e.message}`);
  // Waits that gave up (lock_timeout, statement_timeout) and conflicts to retry: busy, as SQLITE_BUSY.
  if (e.code !== undefined && BUSY_CODES.has(e.code)) return new ControlPlaneError('unavailable', `database busy, retry (${e.message})`);
  const err = new Error(e.detail === undefined ? e.message : `${e.message} (${e.detail})`) as Error & { code?: string; constraint?: string };
  if (e.code !== undefined) err.code = `PG_${e.code}`;
  if (e.constraint !== undefined) err.constraint = e.constraint;
  return err;
}

/**
 * The control plane's SQLite SQL as PostgreSQL SQL. The control plane writes portable SQL where
 * both engines agree (ON CONFLICT ... DO UPDATE, RETURNING, substr, length); this translates the
 * rest, a fixed list: `?` placeholders to `$n`, `INSERT OR IGNORE` to `ON CONFLICT DO NOTHING`,
 * `json_each(?)` to json_array_elements_text and `json_extract(col, '$.key')` to `->>`. Anything
 * else SQLite-only (INSERT OR REPLACE) throws, so it cannot slip through untranslated.
 */
export function translateSql(sql: string): string {
  let out = '';
  let n = 0;
  let quote: string | undefined;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      out += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      out += c;
    } else if (c === '?') {
      out += `$${++n}`;
    } else {
      out += c;
    }
  }
  if (/\bINSERT\s+OR\s+REPLACE\b/i.test(out)) throw new Error(`not portable to PostgreSQL (use ON CONFLICT ... DO UPDATE): ${sql}`);
  if (/\bINSERT\s+OR\s+IGNORE\b/i.test(out)) {
    out = out.replace(/\bINSERT\s+OR\s+IGNORE\b/i, 'INSERT');
    const ret = /\bRETURNING\b/i.exec(out);
    out = ret === null ? `${out.trimEnd()} ON CONFLICT DO NOTHING` : `${out.slice(0, ret.index)}ON CONFLICT DO NOTHING ${out.slice(ret.index)}`;
  }
  out = out.replace(/\bjson_each\((\$\d+)\)/g, 'json_array_elements_text($1::json) AS j(value)');
  out = out.replace(/\bjson_extract\(([A-Za-z_][A-Za-z0-9_.]*), '\$\.([A-Za-z_][A-Za-z0-9_]*)'\)/g, "($1::json->>'$2')");
  return out;
}
