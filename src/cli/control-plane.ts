// `plexd-userspace control-plane ...`: serve the self-hosted control plane, and administer its
// database (tokens, nodes, policy, projects). The admin commands open the same SQLite file, so
// they work while `serve` runs; the server notices their changes within a poll interval.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { withIngressRules } from '../control-plane/ingress.js';
import { describeRule, explainPolicy, parsePolicyRules } from '../control-plane/policy.js';
import { parseRelayPorts } from '../control-plane/relay-assigner.js';
import { createControlPlane, parseListen } from '../control-plane/server.js';
import { ControlPlaneStore, DEFAULT_PROJECT, labelsOf, SIGNING_KEY_TRANSITION_MS, type NodeRow } from '../control-plane/store.js';
import { DEFAULT_TOKEN_TTL_MS } from '../control-plane/tokens.js';
import { ipv4Number, parseLabels, type PolicyRule } from '../control-plane/visibility.js';
import { createLogger, logLevelFromEnv } from '../log/logger.js';
import { access, ACCESS_USAGE, bridge, site } from './control-plane-access.js';
import { adminToken, ADMIN_TOKEN_USAGE } from './control-plane-admin.js';
import { DB_OPTIONS, dbArgs, need, parse, print, withStore } from './control-plane-common.js';
import { EXIT } from './constants.js';
import { ingress, INGRESS_USAGE } from './control-plane-ingress.js';
import { telemetry, TELEMETRY_USAGE } from './control-plane-telemetry.js';
import { actions, ACTIONS_USAGE } from './control-plane-actions.js';
import { secrets, SECRETS_USAGE, state } from './control-plane-secrets.js';
import { copy, DB_USAGE, migrate } from './control-plane-db.js';
import { untilSignalled } from './signals.js';
import { formatTable } from './table.js';
import { UsageError } from './usage-error.js';

/** The usage entries of `command` (an entry: a line "  COMMAND ..." and its indented
 *  continuation), or the whole usage when it has none: a usage error stays short as commands grow. */
function usageOf(command: string | undefined): string {
  const lines = USAGE.split('\n');
  const out: string[] = [];
  let keep = false;
  for (const line of lines) {
    if (/^  [a-z]/.test(line)) keep = command !== undefined && line.startsWith(`  ${command} `);
    else if (!/^ {4,}\S/.test(line)) keep = false;
    if (keep) out.push(line);
  }
  return out.length === 0 ? USAGE : `Usage: plexd-userspace control-plane ${out.join('\n').trimStart()}\n(control-plane --help lists every command)\n`;
}

const USAGE = `Usage: plexd-userspace control-plane COMMAND ...

  serve --listen HOST:PORT --db FILE [--insecure-http] [--mesh-cidr CIDR] [--stun HOST:PORT|off]
        [--access-cidr CIDR] [--relay-ports FIRST-LAST] [--metrics-listen HOST:PORT]
        [--no-ui]
        HTTPS with a self-signed certificate kept next to FILE (its SHA-256 is printed for
        api.tls_fingerprint), or plain HTTP with --insecure-http; a STUN server on UDP (default:
        the API's address and port number when HOST is an IP address); the access range of
        user-access clients (default 10.101.0.0/16); the bridges' per-session relay ports
        (default 51900-51999); Prometheus /metrics on a plain-HTTP listener of its own
        (off by default; e.g. 127.0.0.1:9102); the dashboard /ui/ unless --no-ui
  token create --db FILE [--project ID] [--ttl DURATION] [--label K=V]... [--json]
        single-use bootstrap token; the node it registers carries the labels
  token revoke TOKEN_OR_ID --db FILE
  nodes list --db FILE [--json]
  nodes label NODE_ID K=V|K- ... --db FILE     set (K=V) or remove (K-) labels of a node
  nodes remove NODE_ID --db FILE
  nodes rotate-keys NODE_ID --db FILE          ask a node to rotate its WireGuard key
  policy set --db FILE --file RULES.json [--project ID]
  policy show --db FILE [--project ID] [--for NODE_ID]
        the policy, or the rules one node gets (groups compiled) and the peers it sees
  policy explain SRC DST [PROTO/PORT] --db FILE   SRC, DST: node ids or mesh IPs; which rule
        decides SRC -> DST (first match) and whether the two see each other
  project create ID --db FILE
  signing-key rotate --db FILE [--transition DURATION] [--json]
        new event-signing key; agents get signing_key_rotated signed by the old key, which keeps
        verifying for DURATION (default 1h)
${INGRESS_USAGE}
${TELEMETRY_USAGE}${ACTIONS_USAGE}
${ACCESS_USAGE}${SECRETS_USAGE}
${ADMIN_TOKEN_USAGE}
${DB_USAGE}
--db FILE is a SQLite database; --db postgres://USER[:PASSWORD]@HOST[:PORT]/DB (or
postgresql://) a PostgreSQL one, which any number of serve replicas may share. Without --db,
PLEXD_CP_DATABASE_URL is used. Every command with --db also takes:
  --secrets-key FILE   the key sealing the database's secrets (default FILE.secrets.key; made
                       0600 on first start; without it the database cannot be opened); required
                       with PostgreSQL (or PLEXD_CP_SECRETS_KEY): the same file on every replica,
                       which also holds serve's TLS certificate beside it
  --allow-insecure-permissions
                       open a database or key file readable or writable by group or others
                       (refused by default; new files are always created 0600)

DURATION: a number with ms, s, m, h or d (default 24h). RULES.json: [{action, protocol,
source_cidr | source_group, destination_cidr | destination_group, ports: {from, to} | null},
...] or {"rules": [...]}; a group is a label selector K=V[,K=V...] (docs/policy.md). A node
sees exactly the nodes an allow rule connects it with, either direction; no policy, no peers.
`;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of "90s", "15m", "24h", "7d", "500ms"; undefined when malformed or zero. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(text);
  const ms = m === null ? 0 : Number(m[1]) * UNITS[m[2]!]!;
  return ms > 0 ? ms : undefined;
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
  const { values, positionals } = parse(args, { listen: { type: 'string' }, ...DB_OPTIONS, 'insecure-http': { type: 'boolean' }, 'mesh-cidr': { type: 'string' }, stun: { type: 'string' }, 'access-cidr': { type: 'string' }, 'relay-ports': { type: 'string' }, 'metrics-listen': { type: 'string' }, 'no-ui': { type: 'boolean' } });
  if (positionals.length > 0) throw new UsageError(`unexpected ${positionals.join(' ')}`);
  const listen = need(values.listen, '--listen');
  const metricsListen = typeof values['metrics-listen'] === 'string' ? values['metrics-listen'] : undefined;
  try {
    parseListen(listen); // a malformed --listen is bad usage (exit 2), not a runtime failure
    if (metricsListen !== undefined) parseListen(metricsListen);
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err });
  }
  const stun = stunListen(listen, typeof values.stun === 'string' ? values.stun : undefined);
  let relay: ReturnType<typeof parseRelayPorts> | undefined;
  try {
    relay = typeof values['relay-ports'] === 'string' ? parseRelayPorts(values['relay-ports']) : undefined;
  } catch (err) {
    throw new UsageError(`--relay-ports: ${(err as Error).message}`, { cause: err });
  }
  const log = createLogger(process.env.LOG_LEVEL === undefined ? 'info' : logLevelFromEnv(process.env.LOG_LEVEL));
  const cp = await createControlPlane({
    ...dbArgs(values),
    listen,
    insecureHttp: values['insecure-http'] === true,
    logger: log,
    ...(stun === undefined ? {} : { stun }),
    ...(typeof values['mesh-cidr'] === 'string' ? { meshCidr: values['mesh-cidr'] } : {}),
    ...(typeof values['access-cidr'] === 'string' ? { accessCidr: values['access-cidr'] } : {}),
    ...(relay === undefined ? {} : { relay }),
    ...(metricsListen === undefined ? {} : { metricsListen }),
  });
  print(`control-plane listening on ${cp.url}`);
  if (cp.metricsUrl !== undefined) print(`metrics at ${cp.metricsUrl}`);
  if (cp.stunAddress !== undefined) print(`stun listening on ${cp.stunAddress.address}:${cp.stunAddress.port}`);
  if (cp.fingerprint !== undefined) print(`tls fingerprint sha256 ${cp.fingerprint}`);
  if (cp.dashboard !== undefined) print(`dashboard at ${cp.url}/ui/ (log in with a token from control-plane admin-token create)`);
  await untilSignalled();
  await cp.close();
  return EXIT.ok;
}

function token(args: readonly string[]): number {
  const [verb, ...rest] = args;
  if (verb !== 'create' && verb !== 'revoke') throw new UsageError(`expected token create or token revoke, got ${JSON.stringify(verb ?? '')}`);
  // --label repeats: pulled out before the common parser, which takes single values.
  const labelFlags: string[] = [];
  const others = rest.filter((a, i) => {
    if (a.startsWith('--label=')) return labelFlags.push(a.slice('--label='.length)), false;
    if (a === '--label' || rest[i - 1] === '--label') {
      if (a !== '--label') labelFlags.push(a);
      return false;
    }
    return true;
  });
  if (rest.at(-1) === '--label') throw new UsageError('--label needs K=V');
  const { values, positionals } = parse(others, { ...DB_OPTIONS, project: { type: 'string' }, ttl: { type: 'string' }, json: { type: 'boolean' } });
  const db = dbArgs(values);
  if (verb === 'create') {
    if (positionals.length > 0) throw new UsageError(`unexpected ${positionals.join(' ')}`);
    const ttl = values.ttl === undefined ? DEFAULT_TOKEN_TTL_MS : parseDuration(String(values.ttl));
    if (ttl === undefined) throw new UsageError(`--ttl: expected a duration such as 15m or 24h, got ${JSON.stringify(values.ttl)}`);
    const project = typeof values.project === 'string' ? values.project : DEFAULT_PROJECT;
    const labels = labelArgs(labelFlags);
    const t = withStore(db, (s) => s.createToken(project, ttl, labels));
    const shown = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
    if (values.json === true) print(JSON.stringify({ project_id: t.projectId, bootstrap_token: t.token, token_id: t.id, expires_at: new Date(t.expiresAt).toISOString(), labels }));
    else print(`${t.token}\n# id ${t.id}, project ${t.projectId}, single use, expires ${new Date(t.expiresAt).toISOString()}${shown === '' ? '' : `, labels ${shown}`}`);
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

/** `K=V` label arguments as an object; malformed ones are bad usage naming the argument. */
function labelArgs(args: readonly string[]): Record<string, string> {
  try {
    return parseLabels(args);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function nodes(args: readonly string[]): number {
  const [verb, ...rest] = args;
  if (verb !== 'list' && verb !== 'remove' && verb !== 'rotate-keys' && verb !== 'label') throw new UsageError(`expected nodes list, nodes label, nodes remove or nodes rotate-keys, got ${JSON.stringify(verb ?? '')}`);
  const { values, positionals } = parse(rest, { ...DB_OPTIONS, json: { type: 'boolean' } });
  const db = dbArgs(values);
  if (verb === 'label') {
    const [id, ...changes] = positionals;
    if (id === undefined || changes.length === 0) throw new UsageError('nodes label takes NODE_ID and at least one K=V or K-');
    const removals = changes.filter((c) => c.endsWith('-') && !c.includes('=')).map((c) => c.slice(0, -1));
    const set = labelArgs(changes.filter((c) => !(c.endsWith('-') && !c.includes('='))));
    const labels = withStore(db, (s) => s.labelNode(id.toLowerCase(), set, removals));
    if (labels === undefined) {
      process.stderr.write(`control-plane: no node ${id}\n`);
      return EXIT.setupFailed;
    }
    print(`${id.toLowerCase()} labels: ${formatLabels(labels) || '(none)'}`);
    return EXIT.ok;
  }
  if (verb === 'list') {
    const rows = withStore(db, (s) => s.listNodes()).map((n) => ({
      node_id: n.node_id,
      project_id: n.project_id,
      resource_handle: n.resource_handle,
      mesh_ip: n.mesh_ip,
      status: n.status,
      last_heartbeat: new Date(n.last_heartbeat_at).toISOString(),
      endpoint: n.endpoint,
      labels: labelsOf(n.labels),
    }));
    if (values.json === true) {
      print(JSON.stringify(rows));
      return EXIT.ok;
    }
    print(formatTable(
      ['NODE_ID', 'RESOURCE', 'MESH_IP', 'STATUS', 'LAST_HEARTBEAT', 'ENDPOINT', 'LABELS'],
      rows.map((r) => [r.node_id, r.resource_handle, r.mesh_ip, r.status, age(Date.parse(r.last_heartbeat)), r.endpoint ?? '-', formatLabels(r.labels) || '-']),
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

function formatLabels(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
}

/** A node named by id or mesh IP. */
function findNode(s: ControlPlaneStore, ref: string): NodeRow {
  const byId = s.node(ref.toLowerCase());
  if (byId !== undefined) return byId;
  const byIp = s.listNodes().find((n) => n.mesh_ip === ref);
  if (byIp === undefined) throw new Error(`no node ${ref} (expected a node id or a mesh IP)`);
  return byIp;
}

function policy(args: readonly string[]): number {
  const [verb, ...rest] = args;
  if (verb !== 'set' && verb !== 'show' && verb !== 'explain') throw new UsageError(`expected policy set, policy show or policy explain, got ${JSON.stringify(verb ?? '')}`);
  const { values, positionals } = parse(rest, { ...DB_OPTIONS, file: { type: 'string' }, project: { type: 'string' }, for: { type: 'string' } });
  if (verb === 'explain') {
    if (positionals.length < 2 || positionals.length > 3) throw new UsageError('policy explain takes SRC DST [PROTO/PORT]');
    const m = positionals[2] === undefined ? null : /^(tcp|udp|icmp|any)(?:\/(\d{1,5}))?$/.exec(positionals[2]);
    if (positionals[2] !== undefined && (m === null || Number(m[2] ?? 0) > 65535)) throw new UsageError(`expected PROTO/PORT such as tcp/22, udp or icmp, got ${JSON.stringify(positionals[2])}`);
    const lines = withStore(dbArgs(values), (s) => {
      const [src, dst] = [findNode(s, positionals[0]!), findNode(s, positionals[1]!)];
      if (src.project_id !== dst.project_id) return [`denied: ${src.node_id} and ${dst.node_id} are in different projects`];
      const model = s.visibility(src.project_id);
      const asVis = (n: NodeRow) => model.node(n.node_id) ?? { id: n.node_id, ip: ipv4Number(n.mesh_ip), labels: labelsOf(n.labels) };
      // With the allow rules ingress rules imply for src (control-plane/ingress.ts), as src's agent has them.
      return explainPolicy(withIngressRules(s.db, src, s.policy(src.project_id))?.rules as PolicyRule[] | undefined, model, asVis(src), asVis(dst), m?.[1] === 'any' ? undefined : m?.[1], m?.[2] === undefined ? undefined : Number(m[2]));
    });
    print(lines.join('\n'));
    return EXIT.ok;
  }
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
    const rules = parsePolicyRules(json);
    if (!rules.ok) {
      process.stderr.write(rules.errors.map((e) => `control-plane: ${file}: ${e.field}: ${e.message}\n`).join(''));
      return EXIT.setupFailed;
    }
    const out = withStore(db, (s) => s.setPolicy(project, rules.value));
    for (const w of out.warnings) process.stderr.write(`control-plane: warning: ${w}\n`);
    print(`${out.changed ? 'policy set' : 'policy unchanged'}: revision ${out.policy.revision_id}, fingerprint ${out.policy.fingerprint}, ${rules.value.length} rules`);
    return EXIT.ok;
  }
  if (verb === 'show') {
    const forNode = values.for;
    if (typeof forNode !== 'string') {
      print(JSON.stringify(withStore(db, (s) => s.policy(project)), null, 2));
      return EXIT.ok;
    }
    const text = withStore(db, (s) => {
      const node = findNode(s, forNode);
      const policy = s.policyFor(node);
      const peers = s.peersOf(node);
      const lines = [`node ${node.node_id} (${node.mesh_ip}) labels ${formatLabels(labelsOf(node.labels)) || '(none)'}`];
      lines.push(policy === null ? 'policy: none (deny by default)' : `policy: revision ${policy.revision_id}, fingerprint ${policy.fingerprint}, ${policy.rules.length} compiled rules`);
      for (const [i, r] of (policy?.rules ?? []).entries()) lines.push(`  ${describeRule(r, i)}`);
      lines.push(`visible peers: ${peers.length}`);
      for (const p of peers) lines.push(`  ${p.node_id} ${p.mesh_ip}`);
      return lines.join('\n');
    });
    print(text);
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
      case 'ingress':
        return ingress(rest, { dbOptions: DB_OPTIONS, parse, dbArgs, withStore, print });
      case 'logs':
      case 'audit':
      case 'metrics':
        return await telemetry(command, rest, { dbOptions: DB_OPTIONS, parse, dbArgs, print });
      case 'access':
        return await access(rest);
      case 'actions':
        return await actions(rest);
      case 'site':
        return site(rest);
      case 'bridge':
        return bridge(rest);
      case 'admin-token':
        return adminToken(rest);
      case 'migrate':
        return migrate(rest);
      case 'copy':
        return copy(rest);
      case 'secrets':
        return secrets(rest);
      case 'state':
        return state(rest);
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
      process.stderr.write(`control-plane: ${err.message}\n\n${usageOf(command)}`);
      return EXIT.usage;
    }
    if (err instanceof Error) {
      process.stderr.write(`control-plane: ${err.message}\n`);
      return EXIT.setupFailed;
    }
    throw err;
  }
}
