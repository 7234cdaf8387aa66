// `plexd-userspace control-plane logs|audit|metrics NODE_ID ...`: what nodes uploaded (issue 18,
// docs/operations.md "Telemetry"). Reads the control plane's database; `-f` polls it for new rows.

import type { TelemetryKind } from '../api/index.js';
import { ControlPlaneStore } from '../control-plane/store.js';
import { latestMetrics, listTelemetry, type TelemetryRow } from '../control-plane/telemetry.js';
import { printable } from '../log/printable.js';
import type { DbArgs } from './control-plane-common.js';
import { EXIT } from './constants.js';
import { untilSignalled } from './signals.js';
import { formatTable } from './table.js';
import { UsageError } from './usage-error.js';

/** Usage lines of the telemetry commands (part of `control-plane --help`). */
export const TELEMETRY_USAGE = `  logs NODE_ID --db FILE [-f] [--json] [--lines N]
        the node's uploaded log lines, the newest N (default 100); -f keeps printing new ones
  audit NODE_ID --db FILE [-f] [--json] [--lines N]   the same for its audit entries
  metrics NODE_ID --db FILE [--json]
        the newest metric point of each group (and peer) the node uploaded
`;

type Values = Record<string, string | boolean | undefined>;

/** What control-plane.ts lends these commands: option parsing and how to open the database. */
export interface TelemetryCliKit {
  readonly dbOptions: Readonly<Record<string, { type: 'string' | 'boolean' }>>;
  parse(args: readonly string[], options: Record<string, { type: 'string' | 'boolean'; short?: string }>): { values: Values; positionals: string[] };
  dbArgs(values: Values): DbArgs;
  print(text: string): void;
}

/** How often `-f` looks for new rows (ms). */
const FOLLOW_POLL_MS = 1000;

function line(kind: TelemetryKind, row: TelemetryRow): string {
  const r = row.record;
  const s = (k: string) => (typeof r[k] === 'string' ? (r[k] as string) : r[k] === undefined || r[k] === null ? '' : JSON.stringify(r[k]));
  const text = kind === 'logs'
    ? `${s('timestamp')} ${s('severity').padEnd(7)} ${s('hostname')} ${s('unit')}: ${s('message')}`
    : `${s('timestamp')} ${s('source')} ${s('event_type')} action=${s('action')} result=${s('result')} subject=${s('subject')} object=${s('object')}`;
  // Node-supplied text: escape what a terminal would interpret.
  return printable(text);
}

/** Runs `control-plane logs|audit|metrics ARGS`; resolves to the exit code. */
export async function telemetry(command: 'logs' | 'audit' | 'metrics', args: readonly string[], kit: TelemetryCliKit): Promise<number> {
  const { values, positionals } = kit.parse(args, {
    ...kit.dbOptions,
    json: { type: 'boolean' },
    ...(command === 'metrics' ? {} : { follow: { type: 'boolean', short: 'f' }, lines: { type: 'string' } }),
  });
  if (positionals.length !== 1) throw new UsageError(`${command} NODE_ID --db FILE`);
  const nodeId = positionals[0]!.toLowerCase();
  const lines = values.lines === undefined ? 100 : Number(values.lines);
  if (!Number.isInteger(lines) || lines < 1 || lines > 100_000) throw new UsageError(`--lines: expected 1..100000, got ${JSON.stringify(values.lines)}`);
  const db = kit.dbArgs(values);
  let store: ControlPlaneStore;
  try {
    store = ControlPlaneStore.open(db.db, db);
  } catch (err) {
    throw new Error(`--db ${db.db}: ${(err as Error).message}`, { cause: err });
  }
  try {
    if (store.node(nodeId) === undefined && listTelemetry(store.db, nodeId, 'logs', { limit: 1 }).length === 0) throw new Error(`no node ${nodeId}`);
    if (command === 'metrics') {
      const rows = latestMetrics(store.db, nodeId);
      if (values.json === true) kit.print(JSON.stringify(rows.map((r) => r.record)));
      else if (rows.length === 0) kit.print('no metrics uploaded');
      else {
        kit.print(formatTable(['GROUP', 'PEER', 'TIMESTAMP', 'DATA'], rows.map((r) => {
          const data = r.record.data as Record<string, unknown>;
          return [String(r.record.group), String(r.record.peer_id ?? '-'), String(r.record.timestamp), Object.entries(data).filter(([k]) => k !== 'peer_id').map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ')];
        })));
      }
      return EXIT.ok;
    }
    const kind: TelemetryKind = command;
    const show = (rows: TelemetryRow[]) => {
      for (const r of rows) kit.print(values.json === true ? JSON.stringify(r.record) : line(kind, r));
    };
    const first = listTelemetry(store.db, nodeId, kind, { limit: lines, newest: true });
    show(first);
    if (values.follow !== true) return EXIT.ok;
    let last = first.at(-1)?.id ?? 0;
    const timer = setInterval(() => {
      const rows = listTelemetry(store.db, nodeId, kind, { afterId: last, limit: 10_000 });
      show(rows);
      last = rows.at(-1)?.id ?? last;
    }, FOLLOW_POLL_MS);
    try {
      await untilSignalled();
    } finally {
      clearInterval(timer);
    }
    return EXIT.ok;
  } finally {
    store.close();
  }
}
