// `plexd-userspace up | join | status | peers | policies | deregister`: the plexd node agent's commands.
// Thin: config resolution, exit codes, printing. `up` runs until SIGTERM/SIGINT and removes the
// interface; only `deregister` tells the control plane we are leaving (`--purge` also deletes
// the data_dir).

import { readFileSync } from 'node:fs';
import { ControlClient } from '../control/api-client.js';
import { HttpClient } from '../control/http-client.js';
import { RegistrationError } from '../control/register.js';
import { Agent, ensureRegistered } from '../agent/agent.js';
import { ConfigError, DEFAULT_CONFIG_FILE, loadConfig, normalizeFingerprint, parseConfigFlags, type AgentConfig } from '../agent/config.js';
import { queryUnix, requestUnix } from '../agent/local-http.js';
import { openStore, StoreError } from '../agent/store.js';
import { createLogger, type Logger } from '../log/logger.js';
import { printable } from '../log/printable.js';
import { formatTable } from './table.js';
import { EXIT } from './constants.js';
import { deviceChoicesFromEnv } from './device-env.js';
import { untilShutdown } from './signals.js';

const USAGE = `Usage: plexd-userspace up [--config FILE] [--FLAG VALUE ...]
       plexd-userspace join [--config FILE] [--token-file FILE]   register only, then exit
       plexd-userspace status [--json] [--config FILE]    query the running agent
       plexd-userspace peers [--json] [--config FILE]
       plexd-userspace policies [--json] [--config FILE]   policy in force, counters per rule and drop reason
       plexd-userspace deregister [--purge] [--config FILE]
--config defaults to $PLEXD_CONFIG, else ${DEFAULT_CONFIG_FILE} (used only if it exists).
Upstream plexd's flags: --api URL, --mode node|bridge, --log-level debug|info|warn|error,
--project-id, --resource-handle, --requested-resource-id (accepted, ignored), --token-file.
Every other config key is a flag too (--data-dir, --wireguard-listen-port, --node-api-socket, ...)
and an environment variable (upstream's: PLEXD_API, PLEXD_PROJECT_ID, PLEXD_BOOTSTRAP_TOKEN_FILE,
...; else PLEXD_<KEY>); flags > environment > file > defaults. docs/agent.md lists them all.
`;

export interface Parsed {
  config: AgentConfig;
  log: Logger;
  booleans: Set<string>;
}

export function fail(message: string, code: number = EXIT.setupFailed): number {
  process.stderr.write(`plexd-userspace: ${message}\n`);
  return code;
}

export function parse(args: readonly string[], booleans: readonly string[] = [], needUrl = true): Parsed | number {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  const warnings: string[] = [];
  try {
    const f = parseConfigFlags(args, booleans);
    if (f.positional.length !== 0) return fail(`unexpected arguments: ${f.positional.join(' ')}\n\n${USAGE}`, EXIT.usage);
    warnings.push(...f.ignored.map((name) => `flag ${name}: upstream plexd flag not supported by plexd-userspace, ignored`));
    // The local commands never call the control plane: a placeholder URL stands in for (and
    // overrides) the file's, so it must pass every check a real one would, e.g. the TLS pin's
    // "https only" (README's by-hand mesh pins the control plane's certificate).
    const placeholder = 'https://127.0.0.1';
    const flags = needUrl || f.flags.has('api.base_url') ? f.flags : new Map([...f.flags, ['api.base_url', placeholder]]);
    const env = needUrl || process.env['PLEXD_API'] ? process.env : { ...process.env, PLEXD_API: placeholder };
    // Upstream's default file is optional (absent: a warning, then flags, environment and
    // defaults); a file named by --config or PLEXD_CONFIG must exist, so a typo cannot silently
    // run on the default data_dir.
    const named = f.configFile ?? (process.env['PLEXD_CONFIG'] || undefined);
    const config = loadConfig(named ?? DEFAULT_CONFIG_FILE, flags, env, (w) => warnings.push(w), named === undefined);
    const log = createLogger(config.logLevel, '');
    for (const w of warnings) log.error(w);
    return { config, log, booleans: f.booleans };
  } catch (err) {
    // A flag that does not exist or lacks its value is a usage error: show the usage too. A bad
    // value (in a flag, the environment or the file) is named on its own line.
    // A missing api.base_url is explained by the warnings so far (e.g. no file at the default path).
    if (err instanceof ConfigError && err.key === 'api.base_url') for (const w of warnings) process.stderr.write(`plexd-userspace: ${w}\n`);
    if (err instanceof ConfigError) return fail(/: (unknown flag|expected a value)$/.test(err.message) ? `${err.message}\n\n${USAGE}` : err.message, EXIT.usage);
    throw err;
  }
}

function explain(err: unknown): string {
  if (err instanceof RegistrationError) return `registration failed: ${err.code}: ${err.message}`;
  if (err instanceof StoreError) return err.message;
  return (err as Error).message;
}

/** `up`: run the agent until a signal. */
export async function runUp(args: readonly string[]): Promise<number> {
  const p = parse(args);
  if (typeof p === 'number') return p;
  let agent: Agent;
  const abort = new AbortController();
  const early = () => abort.abort(new Error('interrupted'));
  process.once('SIGTERM', early);
  process.once('SIGINT', early);
  try {
    agent = await Agent.start({ config: p.config, logger: p.log, device: deviceChoicesFromEnv(process.env) });
  } catch (err) {
    return fail(explain(err));
  } finally {
    process.off('SIGTERM', early);
    process.off('SIGINT', early);
  }
  p.log.info(`up: node ${agent.identity.node_id}, mesh IP ${agent.identity.mesh_ip}, interface ${agent.iface.name}, port ${agent.iface.device.listenPort}`);
  await untilShutdown((onEnd) => agent.iface.device.onClose(onEnd), async (why) => {
    p.log.info(`shutting down (${why})`);
    await agent.stop();
  });
  return EXIT.ok;
}

/** `join`: register (or confirm the stored identity) and exit. */
export async function runJoin(args: readonly string[]): Promise<number> {
  const p = parse(args);
  if (typeof p === 'number') return p;
  try {
    const r = await ensureRegistered(p.config, openStore(p.config.dataDir), p.log);
    process.stdout.write(`${r.fresh ? 'registered' : 'already registered'}: node ${r.identity.node_id}, mesh IP ${r.identity.mesh_ip}\n`);
    return EXIT.ok;
  } catch (err) {
    return fail(explain(err));
  }
}

/** `status`: the running agent's status document. */
export async function runStatus(args: readonly string[]): Promise<number> {
  const p = parse(args, ['--json'], false);
  if (typeof p === 'number') return p;
  try {
    const s = (await queryUnix(p.config.nodeApi.socket, '/v1/status')) as Record<string, unknown>;
    if (p.booleans.has('--json')) process.stdout.write(JSON.stringify(s, null, 2) + '\n');
    else for (const [k, v] of Object.entries(s)) process.stdout.write(`${printable(k.padEnd(24))} ${printable(typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v))}\n`);
    return EXIT.ok;
  } catch (err) {
    return fail((err as Error).message);
  }
}

/** `peers`: the running agent's peers as a table. */
export async function runPeers(args: readonly string[]): Promise<number> {
  const p = parse(args, ['--json'], false);
  if (typeof p === 'number') return p;
  try {
    const peers = (await queryUnix(p.config.nodeApi.socket, '/v1/peers')) as Array<Record<string, unknown>>;
    if (p.booleans.has('--json') || !Array.isArray(peers)) {
      process.stdout.write(JSON.stringify(peers, null, 2) + '\n');
      return EXIT.ok;
    }
    const cols = ['node_id', 'mesh_ip', 'endpoint', 'path', 'path_kind', 'rtt_ms', 'last_handshake', 'rx_bytes', 'tx_bytes'];
    process.stdout.write(formatTable(cols, peers.map((r) => cols.map((c) => String(r[c] ?? '-')))));
    return EXIT.ok;
  } catch (err) {
    return fail((err as Error).message);
  }
}

/**
 * `state`: the running agent's node state (upstream `plexd state`): the summary; `state get TYPE
 * KEY` one entry (TYPE metadata, data, report, or ours: secret, fetched and decrypted by the
 * agent); `state report KEY --data JSON | --file F` writes a report (JSON; a file that is not JSON
 * is sent as a JSON string). Exit 1 when not found or the agent is not running.
 */
export async function runState(args: readonly string[]): Promise<number> {
  const lead = args.findIndex((a) => a.startsWith('-'));
  const positional = lead < 0 ? [...args] : args.slice(0, lead);
  const rest: string[] = [];
  const own = new Map<string, string>();
  for (let i = positional.length; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--(data|file)(?:=(.*))?$/.exec(a);
    if (m === null) rest.push(a);
    else if (m[2] !== undefined) own.set(m[1]!, m[2]);
    else if (i + 1 < args.length) own.set(m[1]!, args[++i]!);
    else return fail(`--${m[1]} needs a value`, EXIT.usage);
  }
  const p = parse(rest, ['--json'], false);
  if (typeof p === 'number') return p;
  const socket = p.config.nodeApi.socket;
  const [verb, ...more] = positional;
  try {
    if (verb === undefined) {
      process.stdout.write(JSON.stringify(await queryUnix(socket, '/v1/state'), null, 2) + '\n');
      return EXIT.ok;
    }
    if (verb === 'get') {
      const types: Record<string, string> = { metadata: 'metadata', data: 'data', report: 'report', secret: 'secrets', secrets: 'secrets' };
      const [type, key] = more;
      if (more.length !== 2 || types[type!] === undefined) return fail('usage: state get metadata|data|report|secret KEY', EXIT.usage);
      const res = await requestUnix(socket, 'GET', `/v1/state/${types[type!]}/${encodeURIComponent(key!)}`);
      if (res.status === 404) return fail(`state get: ${type}/${key} not found`);
      if (res.status !== 200) return fail(`state get: HTTP ${res.status}: ${JSON.stringify(res.body)}`);
      process.stdout.write(JSON.stringify(res.body, null, 2) + '\n');
      return EXIT.ok;
    }
    if (verb === 'report') {
      if (more.length !== 1) return fail('usage: state report KEY --data JSON | --file F', EXIT.usage);
      const data = own.get('data');
      const file = own.get('file');
      if ((data === undefined) === (file === undefined)) return fail('state report: give exactly one of --data JSON or --file F', EXIT.usage);
      let payload: unknown;
      if (data !== undefined) {
        try {
          payload = JSON.parse(data) as unknown;
        } catch {
          return fail('state report: --data must be valid JSON', EXIT.usage);
        }
      } else {
        const text = readFileSync(file!, 'utf8');
        try {
          payload = JSON.parse(text) as unknown;
        } catch {
          payload = text;
        }
      }
      const res = await requestUnix(socket, 'PUT', `/v1/state/report/${encodeURIComponent(more[0]!)}`, { content_type: 'application/json', payload });
      if (res.status !== 200) return fail(`state report: HTTP ${res.status}: ${JSON.stringify(res.body)}`);
      process.stdout.write(JSON.stringify(res.body, null, 2) + '\n');
      return EXIT.ok;
    }
    return fail(`state: expected get or report, got ${JSON.stringify(verb)}`, EXIT.usage);
  } catch (err) {
    return fail((err as Error).message);
  }
}

/** `policies`: the running agent's policy revision in force and its counters. */
export async function runPolicies(args: readonly string[]): Promise<number> {
  const p = parse(args, ['--json'], false);
  if (typeof p === 'number') return p;
  try {
    const snap = (await queryUnix(p.config.nodeApi.socket, '/v1/policies')) as Record<string, unknown>;
    process.stdout.write(p.booleans.has('--json') ? JSON.stringify(snap, null, 2) + '\n' : formatPolicies(snap));
    return EXIT.ok;
  } catch (err) {
    return fail((err as Error).message);
  }
}

/** Renders a policy snapshot (PolicyFilter.snapshot() as JSON) for people; tolerant of missing fields. */
export function formatPolicies(snap: Record<string, unknown>): string {
  const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
  const rules = Array.isArray(snap['rules']) ? (snap['rules'] as unknown[]).map(obj) : [];
  const accepted = obj(snap['accepted']);
  const ct = obj(snap['conntrack']);
  const text = (v: unknown): string => printable(String(v ?? '-'));
  const lines = [
    `mode         ${text(snap['mode'])}`,
    `revision     ${text(snap['revisionId'])}`,
    `fingerprint  ${text(snap['fingerprint'])}`,
    `accepted     outbound ${String(accepted['outbound'] ?? 0)}, inbound ${String(accepted['inbound'] ?? 0)} (tracked ${String(accepted['tracked'] ?? 0)})`,
    `conntrack    ${String(ct['entries'] ?? 0)} / ${String(ct['max'] ?? '-')} entries`,
    '',
  ];
  const cols = ['#', 'ACTION', 'PROTO', 'SOURCE', 'DESTINATION', 'PORTS', 'PACKETS', 'BYTES'];
  const ruleRows = rules.map((r) => [r['index'], r['action'], r['protocol'], r['source'], r['destination'], r['ports'] ?? 'any', r['packets'], r['bytes']].map((c) => String(c ?? '-')));
  const out = lines.join('\n') + '\n' + (rules.length === 0 ? '(no rules in force)\n' : formatTable(cols, ruleRows));
  const drops = Object.entries(obj(snap['drops'])).map(([k, v]) => [k, String(v)]);
  return out + '\n' + formatTable(['DROP REASON', 'PACKETS'], drops);
}

/** `deregister [--purge]`: tell the control plane we leave, then forget the identity. */
export async function runDeregister(args: readonly string[]): Promise<number> {
  const p = parse(args, ['--purge']);
  if (typeof p === 'number') return p;
  const purge = p.booleans.has('--purge');
  try {
    const store = openStore(p.config.dataDir);
    const id = store.loadIdentity();
    if (id === undefined) return fail(`no identity in ${p.config.dataDir}: not registered`);
    const pin = p.config.api.tlsFingerprint === undefined ? undefined : normalizeFingerprint(p.config.api.tlsFingerprint);
    const client = new ControlClient(new HttpClient({ baseUrl: p.config.api.baseUrl, tlsFingerprint: pin }), { nodeId: id.node_id, nsk: id.nsk });
    await client.deregister('deregister command');
    store.forget(purge);
    process.stdout.write(`deregistered node ${id.node_id}${purge ? `; removed ${p.config.dataDir}` : ''}\n`);
    return EXIT.ok;
  } catch (err) {
    return fail(`deregister failed: ${explain(err)}`);
  }
}

/** The config-and-flags parsing of the local commands, for the command modules beside this one
 *  (telemetry.ts): a Parsed, or the exit code after a usage message. */
export function parseLocalCommand(args: readonly string[], booleans: readonly string[] = []): { config: AgentConfig; booleans: Set<string> } | number {
  return parse(args, booleans, false);
}
