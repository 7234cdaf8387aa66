// `plexd-userspace control-plane ingress ...`: publish services of mesh nodes through a bridge
// (issue 16, docs/control-plane.md "Ingress"). The rules live in the control plane's database;
// the bridge gets them in its state pull. Checks are in src/control-plane/ingress.ts.

import { readFileSync, statSync } from 'node:fs';
import { INGRESS_MODES, type IngressMode } from '../api/index.js';
import { addIngressRule, listIngressRules, MAX_PEM_BYTES, removeIngressRule } from '../control-plane/ingress.js';
import type { ControlPlaneStore } from '../control-plane/store.js';
import { EXIT } from './constants.js';
import { formatTable } from './table.js';
import { UsageError } from './usage-error.js';

/** Usage lines of the ingress commands (part of `control-plane --help`). */
export const INGRESS_USAGE = `  ingress add HOSTNAME --db FILE --bridge NODE_ID --target MESH_IP:PORT
        --mode acme|terminate|passthrough [--listen-port 443] [--cert FILE --key FILE] [--json]
        publish MESH_IP:PORT on the bridge's public PORT for TLS clients asking for HOSTNAME
        (SNI); terminate needs --cert and --key (PEM); at most 20 rules per bridge
  ingress list --db FILE [--json]
  ingress remove HOSTNAME --db FILE
`;

type Values = Record<string, string | boolean | undefined>;

/** What control-plane.ts lends the ingress commands: its option parsing and database access. */
export interface IngressCliKit<D> {
  readonly dbOptions: Readonly<Record<string, { type: 'string' | 'boolean' }>>;
  parse(args: readonly string[], options: Record<string, { type: 'string' | 'boolean' }>): { values: Values; positionals: string[] };
  dbArgs(values: Values): D;
  withStore<T>(args: D, fn: (s: ControlPlaneStore) => T): T;
  print(text: string): void;
}

/** A PEM file of at most MAX_PEM_BYTES (checked before reading: a device or huge file is refused). */
function readPem(file: string, flag: string): string {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (err) {
    throw new Error(`${flag} ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (size > MAX_PEM_BYTES) throw new Error(`${flag} ${file}: ${size} bytes, expected at most ${MAX_PEM_BYTES} bytes of PEM`);
  return readFileSync(file, 'utf8');
}

/** Runs `control-plane ingress ARGS`; returns the exit code. Throws UsageError on bad usage and
 *  Error (exit 1 in the caller) on refusals. */
export function ingress<D>(args: readonly string[], kit: IngressCliKit<D>): number {
  const [verb, ...rest] = args;
  if (verb !== 'add' && verb !== 'list' && verb !== 'remove') throw new UsageError(`expected ingress add, ingress list or ingress remove, got ${JSON.stringify(verb ?? '')}`);
  const { values, positionals } = kit.parse(rest, {
    ...kit.dbOptions,
    json: { type: 'boolean' },
    ...(verb === 'add' ? { bridge: { type: 'string' }, target: { type: 'string' }, mode: { type: 'string' }, 'listen-port': { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' } } : {}),
  });
  const db = kit.dbArgs(values);
  if (verb === 'list') {
    if (positionals.length > 0) throw new UsageError(`unexpected ${positionals.join(' ')}`);
    const rules = kit.withStore(db, (s) => listIngressRules(s.db));
    if (values.json === true) kit.print(JSON.stringify(rules));
    else if (rules.length === 0) kit.print('no ingress rules');
    else {
      kit.print(formatTable(
        ['HOSTNAME', 'PORT', 'MODE', 'TARGET', 'BRIDGE', 'CERT_EXPIRES'],
        rules.map((r) => [r.hostname, String(r.listen_port), r.mode, r.target_addr, r.bridge_id, r.cert_expires ?? '-']),
      ));
    }
    return EXIT.ok;
  }
  if (positionals.length !== 1) throw new UsageError(`ingress ${verb} takes one HOSTNAME`);
  const hostname = positionals[0]!;
  if (verb === 'remove') {
    const removed = kit.withStore(db, (s) => removeIngressRule(s, hostname));
    if (removed === undefined) throw new Error(`no ingress rule for ${JSON.stringify(hostname.slice(0, 300))}`);
    if (values.json === true) kit.print(JSON.stringify(removed));
    else kit.print(`removed ${removed.hostname} (bridge ${removed.bridge_id})`);
    return EXIT.ok;
  }
  const need = (flag: string): string => {
    const v = values[flag];
    if (typeof v !== 'string' || v === '') throw new UsageError(`ingress add needs --${flag}`);
    return v;
  };
  const mode = need('mode');
  if (!(INGRESS_MODES as readonly string[]).includes(mode)) throw new UsageError(`--mode: expected ${INGRESS_MODES.join(', ')}, got ${JSON.stringify(mode)}`);
  const portText = values['listen-port'];
  if (portText !== undefined && (typeof portText !== 'string' || !/^\d{1,6}$/.test(portText))) throw new UsageError(`--listen-port: expected a port number, got ${JSON.stringify(portText)}`);
  const input = {
    hostname,
    bridgeId: need('bridge'),
    target: need('target'),
    mode: mode as IngressMode,
    ...(portText === undefined ? {} : { listenPort: Number(portText) }),
    ...(typeof values.cert === 'string' ? { certPem: readPem(values.cert, '--cert') } : {}),
    ...(typeof values.key === 'string' ? { keyPem: readPem(values.key, '--key') } : {}),
  };
  const { rule, warnings } = kit.withStore(db, (s) => addIngressRule(s, input));
  for (const w of warnings) process.stderr.write(`control-plane: warning: ${w}\n`);
  if (values.json === true) kit.print(JSON.stringify({ ...rule, warnings }));
  else kit.print(`added ${rule.hostname}: port ${rule.listen_port} (${rule.mode}) on bridge ${rule.bridge_id} -> ${rule.target_addr}; rule ${rule.rule_id}`);
  return EXIT.ok;
}
