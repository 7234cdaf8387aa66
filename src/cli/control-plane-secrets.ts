// `plexd-userspace control-plane secrets|state ...`: node secrets per node or per project (stored
// sealed, served to a node under its NSK), and a node's metadata, data and reports
// (docs/operations.md "Node state and secrets"; control-plane/node-state.ts).

import { readFileSync } from 'node:fs';
import { listSecrets, nodeStateOf, removeSecret, setSecret, setStateEntry, type OperatorBucket, type SecretScope } from '../control-plane/node-state.js';
import { DEFAULT_PROJECT } from '../control-plane/store.js';
import { EXIT } from './constants.js';
import { DB_OPTIONS, dbArgs, parse, print, withStore } from './control-plane-common.js';
import { formatTable } from './table.js';
import { UsageError } from './usage-error.js';

/** The usage lines of these commands (part of `control-plane --help`). */
export const SECRETS_USAGE = `  secrets set NODE_ID|--project ID KEY (--value V|--file F) --db FILE
        stores the next version of secret KEY for one node or every node of a project
        (sealed at rest; a node's own secret hides its project's of the same name)
  secrets rm NODE_ID|--project ID KEY --db FILE    removes every version of KEY
  secrets list --db FILE [--project ID] [--json]   names and versions, never values
  state NODE_ID --db FILE [--json]                 a node's metadata, data and reports
  state set NODE_ID metadata|data KEY (--value V|--file F) --db FILE
  state unset NODE_ID metadata|data KEY --db FILE  metadata and data served to the node
`;

type Values = Record<string, string | boolean | undefined>;

function valueOf(values: Values): Buffer {
  const v = values.value;
  const f = values.file;
  if ((typeof v === 'string') === (typeof f === 'string')) throw new UsageError('give exactly one of --value V or --file F');
  return typeof v === 'string' ? Buffer.from(v) : readFileSync(f as string);
}

function scopeOf(values: Values, positionals: string[], what: string): { scope: SecretScope; key: string } {
  const project = typeof values.project === 'string' ? values.project : undefined;
  const want = project === undefined ? 2 : 1;
  if (positionals.length !== want) throw new UsageError(`${what} takes ${project === undefined ? 'NODE_ID KEY' : '--project ID KEY'}`);
  return project === undefined ? { scope: { node: positionals[0]! }, key: positionals[1]! } : { scope: { project }, key: positionals[0]! };
}

/** `control-plane secrets set|rm|list`; resolves to the exit code. */
export function secrets(args: readonly string[]): number {
  const [verb, ...rest] = args;
  const { values, positionals } = parse(rest, { ...DB_OPTIONS, project: { type: 'string' }, value: { type: 'string' }, file: { type: 'string' }, json: { type: 'boolean' } });
  const db = dbArgs(values);
  switch (verb) {
    case 'set': {
      const { scope, key } = scopeOf(values, positionals, 'secrets set');
      const value = valueOf(values);
      try {
        const out = withStore(db, (s) => setSecret(s, scope, key, value));
        print(`secret ${out.name} of ${out.owner}: version ${out.version}`);
      } finally {
        value.fill(0);
      }
      return EXIT.ok;
    }
    case 'rm': {
      const { scope, key } = scopeOf(values, positionals, 'secrets rm');
      const n = withStore(db, (s) => removeSecret(s, scope, key));
      print(`removed ${n} version${n === 1 ? '' : 's'} of ${key}`);
      return EXIT.ok;
    }
    case 'list': {
      if (positionals.length !== 0) throw new UsageError('secrets list takes no arguments');
      const project = typeof values.project === 'string' ? values.project : DEFAULT_PROJECT;
      const rows = withStore(db, (s) => listSecrets(s.db, project));
      if (values.json === true) print(JSON.stringify(rows));
      else print(formatTable(['OWNER', 'NAME', 'VERSION', 'UPDATED'], rows.map((r) => [r.owner, r.name, String(r.version), r.updated_at])));
      return EXIT.ok;
    }
    default:
      throw new UsageError(`expected secrets set, secrets rm or secrets list, got ${JSON.stringify(verb ?? '')}`);
  }
}

function bucketOf(text: string | undefined): OperatorBucket {
  if (text !== 'metadata' && text !== 'data') throw new UsageError(`expected metadata or data, got ${JSON.stringify(text ?? '')}`);
  return text;
}

/** `control-plane state NODE_ID | state set|unset ...`; resolves to the exit code. */
export function state(args: readonly string[]): number {
  const { values, positionals } = parse(args, { ...DB_OPTIONS, value: { type: 'string' }, file: { type: 'string' }, json: { type: 'boolean' } });
  const db = dbArgs(values);
  const [first, ...rest] = positionals;
  if (first === 'set' || first === 'unset') {
    if (rest.length !== 3) throw new UsageError(`state ${first} takes NODE_ID metadata|data KEY`);
    const [node, bucket, key] = rest as [string, string, string];
    const value = first === 'set' ? valueOf(values).toString('utf8') : undefined;
    withStore(db, (s) => setStateEntry(s, node, bucketOf(bucket), key, value));
    print(`${bucket} ${key} of ${node}: ${first === 'set' ? 'set' : 'removed'}`);
    return EXIT.ok;
  }
  if (first === undefined || rest.length !== 0) throw new UsageError('state takes one NODE_ID (or set|unset)');
  const out = withStore(db, (s) => {
    const node = s.node(first.toLowerCase());
    if (node === undefined) throw new UsageError(`no node ${first}`);
    return nodeStateOf(s.db, node.node_id);
  });
  if (values.json === true) {
    print(JSON.stringify(out));
    return EXIT.ok;
  }
  const rows: string[][] = [];
  for (const bucket of ['metadata', 'data', 'reports'] as const) for (const e of out[bucket]) rows.push([bucket, e.key, e.value.length > 60 ? `${e.value.slice(0, 57)}...` : e.value, e.updated_at]);
  print(rows.length === 0 ? 'no metadata, data or reports' : formatTable(['BUCKET', 'KEY', 'VALUE', 'UPDATED'], rows));
  return EXIT.ok;
}
