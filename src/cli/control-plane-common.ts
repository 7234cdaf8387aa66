// The helpers every `control-plane` subcommand module shares: strict argument parsing (usage
// errors exit 2), the --db options and opening the store, and printing.

import { parseArgs } from 'node:util';
import { isPostgresUrl } from '../control-plane/sql.js';
import { ControlPlaneStore } from '../control-plane/store.js';
import { UsageError } from './usage-error.js';

/** parseArgs with positionals, strict; a parse error is a UsageError (exit 2). */
export function parse(args: readonly string[], options: Record<string, { type: 'string' | 'boolean' }>) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err });
  }
}

/** The value of a required string flag; UsageError when missing or empty. */
export function need(v: string | boolean | undefined, flag: string): string {
  if (typeof v !== 'string' || v === '') throw new UsageError(`missing ${flag}`);
  return v;
}

/** The options of every command that opens --db. */
export const DB_OPTIONS = {
  db: { type: 'string' },
  'secrets-key': { type: 'string' },
  'allow-insecure-permissions': { type: 'boolean' },
} as const;

/** How to open the database: --db, --secrets-key, --allow-insecure-permissions. */
export interface DbArgs {
  readonly db: string;
  readonly secretsKeyFile?: string;
  readonly allowInsecurePermissions: boolean;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** The DbArgs of parsed DB_OPTIONS values. */
export function dbArgs(values: Record<string, string | boolean | undefined>): DbArgs {
  // The environment stands in for absent flags (systemd units, containers): PLEXD_CP_DATABASE_URL
  // for --db, PLEXD_CP_SECRETS_KEY for the --secrets-key of a PostgreSQL database.
  const db = need(values.db ?? nonEmpty(process.env.PLEXD_CP_DATABASE_URL), '--db');
  const key = values['secrets-key'] ?? (isPostgresUrl(db) ? nonEmpty(process.env.PLEXD_CP_SECRETS_KEY) : undefined);
  return {
    db,
    ...(key === undefined ? {} : { secretsKeyFile: need(key, '--secrets-key') }),
    allowInsecurePermissions: values['allow-insecure-permissions'] === true,
  };
}

/** Opens the store, runs `fn`, closes it; an open failure names --db. */
export function withStore<T>(args: DbArgs, fn: (s: ControlPlaneStore) => T): T {
  let store: ControlPlaneStore;
  try {
    store = ControlPlaneStore.open(args.db, args);
  } catch (err) {
    throw new Error(`--db ${args.db}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

/** Writes `text` to stdout with a final newline. */
export function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}
