// `plexd-userspace control-plane ...`: serve the self-hosted control plane, and administer its
// database (tokens, nodes, policy, projects). The admin commands open the same SQLite file, so
// they work while `serve` runs; the server notices their changes within a poll interval.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { parseRules } from '../api/index.js';
import { createControlPlane, parseListen } from '../control-plane/server.js';
import { ControlPlaneStore, DEFAULT_PROJECT, SIGNING_KEY_TRANSITION_MS } from '../control-plane/store.js';
import { DEFAULT_TOKEN_TTL_MS } from '../control-plane/tokens.js';
import { createLogger, logLevelFromEnv } from '../log/logger.js';
import { EXIT } from './constants.js';
import { untilSignalled } from './signals.js';
import { formatTable } from './table.js';
import { UsageError } from './usage-error.js';

const USAGE = `Usage: plexd-userspace control-plane COMMAND ...

  serve --listen HOST:PORT --db FILE [--insecure-http] [--mesh-cidr CIDR] [--stun HOST:PORT|off]
        HTTPS with a self-signed certificate kept next to FILE (its SHA-256 is printed for
        api.tls_fingerprint), or plain HTTP with --insecure-http; a STUN server on UDP (default:
        the API's address and port number when HOST is an IP address)
  token create --db FILE [--project ID] [--ttl DURATION] [--json]   single-use bootstrap token
  token revoke TOKEN_OR_ID --db FILE
  nodes list --db FILE [--json]
  nodes remove NODE_ID --db FILE
  nodes rotate-keys NODE_ID --db FILE          ask a node to rotate its WireGuard key
  policy set --db FILE --file RULES.json [--project ID]
  policy show --db FILE [--project ID]
  project create ID --db FILE
  signing-key rotate --db FILE [--transition DURATION] [--json]
        new event-signing key; agents get signing_key_rotated signed by the old key, which keeps
        verifying for DURATION (default 1h)

Every command with --db also takes:
  --secrets-key FILE   the key sealing the database's secrets (default FILE.secrets.key; made
                       0600 on first start; without it the database cannot be opened)
  --allow-insecure-permissions
                       open a database or key file readable or writable by group or others
                       (refused by default; new files are always created 0600)

DURATION: a number with ms, s, m, h or d (default 24h). RULES.json: [{action, protocol,
source_cidr, destination_cidr, ports: {from, to} | null}, ...] or {"rules": [...]}.
`;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of "90s", "15m", "24h", "7d", "500ms"; undefined when malformed or zero. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(text);
  const ms = m === null ? 0 : Number(m[1]) * UNITS[m[2]!]!;
  return ms > 0 ? ms : undefined;
}

function parse(args: readonly string[], options: Record<string, { type: 'string' | 'boolean' }>) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err });
  }
}

function need(v: string | boolean | undefined, flag: string): string {
  if (typeof v !== 'string' || v === '') throw new UsageError(`missing ${flag}`);
  return v;
}

/** The options of every command that opens --db. */
const DB_OPTIONS = {
  db: { type: 'string' },
  'secrets-key': { type: 'string' },
  'allow-insecure-permissions': { type: 'boolean' },
} as const;

/** How to open the database: --db, --secrets-key, --allow-insecure-permissions. */
interface DbArgs {
  readonly db: string;
  readonly secretsKeyFile?: string;
  readonly allowInsecurePermissions: boolean;
}

function dbArgs(values: Record<string, string | boolean | undefined>): DbArgs {
  const key = values['secrets-key'];
  return {
    db: need(values.db, '--db'),
    ...(key === undefined ? {} : { secretsKeyFile: need(key, '--secrets-key') }),
    allowInsecurePermissions: values['allow-insecure-permissions'] === true,
  };
}

function withStore<T>(args: DbArgs, fn: (s: ControlPlaneStore) => T): T {
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

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

function age(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

/** The STUN listen address of `serve`: --stun as given, none for "off", else the API's IP and port. */
function stunListen(listen: string, flag: string | undefined): string | undefined {
  if (flag === 'off') return undefined;
  if (flag !== undefined) return flag;
  let host: string;
  try {
    host = parseListen(listen).host;
  } catch {
    return undefined; // createControlPlane reports the bad --listen
  }
  return isIP(host) === 0 ? undefined : listen;
}

async function serve(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { listen: { type: 'string' }, ...DB_OPTIONS, 'insecure-http': { type: 'boolean' }, 'mesh-cidr': { type: 'string' }, stun: { type: 'string' } });
  if (positionals.length > 0) throw new UsageError(`unexpected ${positionals.join(' ')}`);
  const listen = need(values.listen, '--listen');
  try {
    parseListen(listen); // a malformed --listen is bad usage (exit 2), not a runtime failure
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err });
  }
  const stun = stunListen(listen, typeof values.stun === 'string' ? values.stun : undefined);
  const log = createLogger(process.env.LOG_LEVEL === undefined ? 'info' : logLevelFromEnv(process.env.LOG_LEVEL));
  const cp = await createControlPlane({
    ...dbArgs(values),
    listen,
    insecureHttp: values['insecure-http'] === true,
    logger: log,
    ...(stun === undefined ? {} : { stun }),
    ...(typeof values['mesh-cidr'] === 'string' ? { meshCidr: values['mesh-cidr'] } : {}),
  });
  print(`control-plane listening on ${cp.url}`);
  if (cp.stunAddress !== undefined) print(`stun listening on ${cp.stunAddress.address}:${cp.stunAddress.port}`);
  if (cp.fingerprint !== undefined) print(`tls fingerprint sha256 ${cp.fingerprint}`);
  await untilSignalled();
  await cp.close();
  return EXIT.ok;
}

function token(args: readonly string[]): number {
  const [verb, ...rest] = args;
  if (verb !== 'create' && verb !== 'revoke') throw new UsageError(`expected token create or token revoke, got ${JSON.stringify(verb ?? '')}`);
  const { values, positionals } = parse(rest, { ...DB_OPTIONS, project: { type: 'string' }, ttl: { type: 'string' }, json: { type: 'boolean' } });
  const db = dbArgs(values);
  if (verb === 'create') {
    if (positionals.length > 0) throw new UsageError(`unexpected ${positionals.join(' ')}`);
    const ttl = values.ttl === undefined ? DEFAULT_TOKEN_TTL_MS : parseDuration(String(values.ttl));
    if (ttl === undefined) throw new UsageError(`--ttl: expected a duration such as 15m or 24h, got ${JSON.stringify(values.ttl)}`);
    const project = typeof values.project === 'string' ? values.project : DEFAULT_PROJECT;
    const t = withStore(db, (s) => s.createToken(project, ttl));
    if (values.json === true) print(JSON.stringify({ project_id: t.projectId, bootstrap_token: t.token, token_id: t.id, expires_at: new Date(t.expiresAt).toISOString() }));
    else print(`${t.token}\n# id ${t.id}, project ${t.projectId}, single use, expires ${new Date(t.expiresAt).toISOString()}`);
    return EXIT.ok;
  }
  if (verb === 'revoke') {
    if (positionals.length !== 1) throw new UsageError('token revoke takes one TOKEN_OR_ID');
    const n = withStore(db, (s) => s.revokeToken(positionals[0]!));
    if (n === 0) {
      process.stderr.write('control-plane: no unrevoked token matched\n');
      return EXIT.setupFailed;
    }
    print(`revoked ${n} token${n === 1 ? '' : 's'}`);
    return EXIT.ok;
  }
  throw new UsageError(`unknown token command ${JSON.stringify(verb ?? '')}`);
}

function nodes(args: readonly string[]): number {
  const [verb, ...rest] = args;
  if (verb !== 'list' && verb !== 'remove' && verb !== 'rotate-keys') throw new UsageError(`expected nodes list, nodes remove or nodes rotate-keys, got ${JSON.stringify(verb ?? '')}`);
  const { values, positionals } = parse(rest, { ...DB_OPTIONS, json: { type: 'boolean' } });
  const db = dbArgs(values);
  if (verb === 'list') {
    const rows = withStore(db, (s) => s.listNodes()).map((n) => ({
      node_id: n.node_id,
      project_id: n.project_id,
      resource_handle: n.resource_handle,
      mesh_ip: n.mesh_ip,
      status: n.status,
      last_heartbeat: new Date(n.last_heartbeat_at).toISOString(),
      endpoint: n.endpoint,
    }));
    if (values.json === true) {
      print(JSON.stringify(rows));
      return EXIT.ok;
    }
    print(formatTable(
      ['NODE_ID', 'RESOURCE', 'MESH_IP', 'STATUS', 'LAST_HEARTBEAT', 'ENDPOINT'],
      rows.map((r) => [r.node_id, r.resource_handle, r.mesh_ip, r.status, age(Date.parse(r.last_heartbeat)), r.endpoint ?? '-']),
    ));
    return EXIT.ok;
  }
  if (verb === 'remove' || verb === 'rotate-keys') {
    if (positionals.length !== 1) throw new UsageError(`nodes ${verb} takes one NODE_ID`);
    const id = positionals[0]!.toLowerCase();
    const ok = withStore(db, (s) => (verb === 'remove' ? s.removeNode(id, 'removed') : s.requestKeyRotation(id)));
    if (!ok) {
      process.stderr.write(`control-plane: no node ${id}\n`);
      return EXIT.setupFailed;
    }
    print(verb === 'remove' ? `removed ${id}` : `asked ${id} to rotate its key`);
    return EXIT.ok;
  }
  throw new UsageError(`unknown nodes command ${JSON.stringify(verb ?? '')}`);
}

function policy(args: readonly string[]): number {
  const [verb, ...rest] = args;
  if (verb !== 'set' && verb !== 'show') throw new UsageError(`expected policy set or policy show, got ${JSON.stringify(verb ?? '')}`);
  const { values, positionals } = parse(rest, { ...DB_OPTIONS, file: { type: 'string' }, project: { type: 'string' } });
  if (positionals.length > 0) throw new UsageError(`unexpected ${positionals.join(' ')}`);
  const db = dbArgs(values);
  const project = typeof values.project === 'string' ? values.project : DEFAULT_PROJECT;
  if (verb === 'set') {
    const file = need(values.file, '--file');
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      process.stderr.write(`control-plane: ${file}: ${(err as Error).message.replace(/\s+/g, ' ')}\n`);
      return EXIT.setupFailed;
    }
    const rules = parseRules(json);
    if (!rules.ok) {
      process.stderr.write(rules.errors.map((e) => `control-plane: ${file}: ${e.field}: ${e.message}\n`).join(''));
      return EXIT.setupFailed;
    }
    const out = withStore(db, (s) => s.setPolicy(project, rules.value));
    print(`${out.changed ? 'policy set' : 'policy unchanged'}: revision ${out.policy.revision_id}, fingerprint ${out.policy.fingerprint}, ${rules.value.length} rules`);
    return EXIT.ok;
  }
  if (verb === 'show') {
    print(JSON.stringify(withStore(db, (s) => s.policy(project)), null, 2));
    return EXIT.ok;
  }
  throw new UsageError(`unknown policy command ${JSON.stringify(verb ?? '')}`);
}

function project(args: readonly string[]): number {
  const [verb, ...rest] = args;
  const { values, positionals } = parse(rest, DB_OPTIONS);
  if (verb !== 'create' || positionals.length !== 1) throw new UsageError('project create ID --db FILE');
  withStore(dbArgs(values), (s) => s.createProject(positionals[0]!));
  print(`project ${positionals[0]} exists`);
  return EXIT.ok;
}

function signingKey(args: readonly string[]): number {
  const [verb, ...rest] = args;
  const { values, positionals } = parse(rest, { ...DB_OPTIONS, transition: { type: 'string' }, json: { type: 'boolean' } });
  if (verb !== 'rotate' || positionals.length > 0) throw new UsageError('signing-key rotate --db FILE [--transition DURATION] [--json]');
  const transition = values.transition === undefined ? SIGNING_KEY_TRANSITION_MS : parseDuration(String(values.transition));
  if (transition === undefined) throw new UsageError(`--transition: expected a duration such as 15m or 1h, got ${JSON.stringify(values.transition)}`);
  const r = withStore(dbArgs(values), (s) => s.rotateSigningKey(transition));
  if (values.json === true) print(JSON.stringify({ key_id: r.keyId, previous_key_id: r.previousKeyId, transition_expires: r.transitionExpires }));
  else print(`signing key rotated: ${r.previousKeyId} -> ${r.keyId}; ${r.previousKeyId} verifies until ${r.transitionExpires}`);
  return EXIT.ok;
}

/** Runs `control-plane ARGS`; resolves to the exit code (2 on bad usage, 1 on failure). */
export async function runControlPlane(args: readonly string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command !== undefined && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  try {
    switch (command) {
      case 'serve':
        return await serve(rest);
      case 'token':
        return token(rest);
      case 'nodes':
        return nodes(rest);
      case 'policy':
        return policy(rest);
      case 'project':
        return project(rest);
      case 'signing-key':
        return signingKey(rest);
      case undefined:
        process.stderr.write(`control-plane: expected a command\n\n${USAGE}`);
        return EXIT.usage;
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return EXIT.ok;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`control-plane: ${err.message}\n\n${USAGE}`);
      return EXIT.usage;
    }
    if (err instanceof Error) {
      process.stderr.write(`control-plane: ${err.message}\n`);
      return EXIT.setupFailed;
    }
    throw err;
  }
}
