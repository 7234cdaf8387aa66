// Types of pg-cluster.mjs (a throwaway PostgreSQL cluster for tests and benches), for TypeScript importers.

/** The directory holding initdb, pg_ctl and postgres (PATH first, then /usr/lib/postgresql/N/bin, highest N), or undefined. */
export function findPostgresBin(): string | undefined;

/** Why a cluster cannot be started here (no binaries; root without a `postgres` user), or undefined. */
export function postgresUnavailableReason(): string | undefined;

/** A running throwaway cluster (see startPostgres). */
export interface PostgresCluster {
  /** postgres://postgres@127.0.0.1:PORT/postgres (trust auth). */
  readonly url: string;
  readonly port: number;
  /** The data directory (inside `dir`). */
  readonly dataDir: string;
  /** The temp directory holding the data directory, the unix socket and postgres.log. */
  readonly dir: string;
  /** CREATE DATABASE `name` ([a-z_][a-z0-9_]*), a copy of `template` when given (which must have
   *  no open connections: a migrated template makes a fresh database in milliseconds); resolves with its URL. */
  createDatabase(name: string, opts?: { template?: string }): Promise<string>;
  /** Runs one statement on a fresh connection to database `db` (default postgres); resolves with its rows. */
  query(sql: string, params?: readonly unknown[], db?: string): Promise<Record<string, any>[]>;
  /** Stops the server, keeping the data: 'fast' (default) or 'immediate' shutdown. */
  down(opts?: { mode?: 'fast' | 'immediate' }): Promise<void>;
  /** Starts the server again on the same port. */
  up(): Promise<void>;
  /** down() then up(). */
  restart(): Promise<void>;
  /** SIGKILLs the postmaster and its backends (a crash); up() recovers. */
  kill(): Promise<void>;
  /** Stops the server and removes `dir`; idempotent. */
  stop(): Promise<void>;
}

/** Starts a fresh cluster on 127.0.0.1 (`port` or a free one); rejects with the server log's tail on failure. */
export function startPostgres(opts?: { port?: number; log?: (tail: string) => void }): Promise<PostgresCluster>;
