// `plexd-userspace actions [run ACTION --param K=V ...]` and `hooks list|verify|reload` (upstream
// core/cli.md; docs/operations.md "Remote actions", "Hooks"). `actions`, `hooks list` and `hooks
// reload` ask the running agent over the node API; `hooks verify` re-hashes each hook the agent
// pinned; `actions run` runs a built-in in this process (the node API takes GETs only so far).

import { builtins, type ActionHost } from '../agent/actions/builtins.js';
import { hashFile, hookNameProblem } from '../agent/actions/hooks.js';
import { queryUnix } from '../agent/local-http.js';
import { openStore } from '../agent/store.js';
import { flattenParameters } from '../api/parse.js';
import type { ActionInfo, HookInfo } from '../api/types.js';
import { join } from 'node:path';
import { EXIT } from './constants.js';
import { fail, parse } from './agent.js';
import { formatTable } from './table.js';

const USAGE = `Usage: plexd-userspace actions [--json] [--config FILE]      built-ins and hooks of the running agent
       plexd-userspace actions run ACTION [--param K=V ...] [--json] [--config FILE]
             run a built-in here, now (remote runs: control-plane actions run)
       plexd-userspace hooks list [--json] [--config FILE]   hooks with their pinned SHA-256
       plexd-userspace hooks verify [--config FILE]   re-hash each hook; exit 1 on a change
       plexd-userspace hooks reload [--config FILE]   make the agent re-scan actions.hooks_dir
`;

/** Splits `--param K=V` pairs (and `--param=K=V`) from the other arguments. */
export function splitParams(args: readonly string[]): { params: Record<string, string>; rest: string[] } | string {
  const params: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    let kv: string | undefined;
    if (a === '--param') kv = args[++i];
    else if (a.startsWith('--param=')) kv = a.slice(8);
    else {
      rest.push(a);
      continue;
    }
    const eq = kv?.indexOf('=') ?? -1;
    if (kv === undefined || eq <= 0) return `--param: expected K=V, got ${JSON.stringify(kv ?? '')}`;
    params[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return { params, rest };
}

/** `actions ...`. */
export async function runActions(args: readonly string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  if (args[0] === 'run') {
    const name = args[1];
    if (name === undefined || name.startsWith('-')) return fail(`expected actions run ACTION\n\n${USAGE}`, EXIT.usage);
    const split = splitParams(args.slice(2));
    if (typeof split === 'string') return fail(split, EXIT.usage);
    const flat = flattenParameters(split.params);
    if (typeof flat === 'string') return fail(flat, EXIT.usage);
    const p = parse(split.rest, ['--json'], false);
    if (typeof p === 'number') return p;
    const id = (() => {
      try {
        return openStore(p.config.dataDir).loadIdentity();
      } catch {
        return undefined;
      }
    })();
    let status: Record<string, unknown> = {};
    try {
      status = (await queryUnix(p.config.nodeApi.socket, '/v1/status')) as Record<string, unknown>;
    } catch { /* no agent running: counts are 0 */ }
    const num = (k: string) => (typeof status[k] === 'number' ? (status[k] as number) : 0);
    const host: ActionHost = {
      nodeId: () => id?.node_id ?? '', meshIp: () => id?.mesh_ip ?? '',
      peerCount: () => num('peer_count'), connectedPeers: () => num('peers_connected'),
      lastHeartbeat: () => undefined, lastReconcile: () => undefined, startedAtMs: Date.now(), wallMs: () => Date.now(),
      reconnect: () => Promise.reject(new Error('mesh.reconnect acts on the running agent: run it remotely (control-plane actions run)')),
      config: () => p.config, logs: () => [],
    };
    const b = builtins(host).find((x) => x.name === name);
    if (b === undefined) return fail(`unknown built-in action ${JSON.stringify(name.slice(0, 64))} (plexd-userspace actions lists them; hooks run only remotely)`);
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), p.config.actions.maxActionTimeoutS * 1000);
    const r = await b.run(flat, ctl.signal).finally(() => clearTimeout(timer));
    const ok = r.exitCode === 0 && r.error === undefined;
    if (p.booleans.has('--json')) process.stdout.write(`${JSON.stringify({ status: ok ? 'success' : 'failed', exit_code: r.exitCode, stdout: r.stdout, stderr: r.stderr ?? '', ...(r.error ? { error: r.error } : {}) })}\n`);
    else {
      process.stdout.write(r.stdout.endsWith('\n') || r.stdout === '' ? r.stdout : `${r.stdout}\n`);
      if (r.stderr) process.stderr.write(r.stderr);
      if (r.error) process.stderr.write(`plexd-userspace: ${name}: ${r.error}\n`);
    }
    return ok ? EXIT.ok : EXIT.setupFailed;
  }
  const p = parse(args, ['--json'], false);
  if (typeof p === 'number') return p;
  try {
    const doc = (await queryUnix(p.config.nodeApi.socket, '/v1/actions')) as { builtin_actions: ActionInfo[]; hooks: HookInfo[] };
    if (p.booleans.has('--json')) process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
    else process.stdout.write(`${formatTable(['TYPE', 'NAME', 'DESCRIPTION'], [...doc.builtin_actions.map((a) => ['builtin', a.name, a.description]), ...doc.hooks.map((h) => ['hook', h.name, h.description])])}\n`);
    return EXIT.ok;
  } catch (err) {
    return fail((err as Error).message);
  }
}

/** `hooks list|verify|reload`. */
export async function runHooks(args: readonly string[]): Promise<number> {
  const [verb, ...rest] = args;
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  if (verb !== 'list' && verb !== 'verify' && verb !== 'reload') return fail(`expected hooks list, hooks verify or hooks reload\n\n${USAGE}`, EXIT.usage);
  const p = parse(rest, ['--json'], false);
  if (typeof p === 'number') return p;
  try {
    const doc = (await queryUnix(p.config.nodeApi.socket, verb === 'reload' ? '/v1/hooks/reload' : '/v1/hooks')) as { hooks_dir?: string; hooks: HookInfo[] };
    if (verb === 'reload') {
      process.stdout.write(`reloaded: ${doc.hooks.length} hooks\n`);
      return EXIT.ok;
    }
    if (verb === 'list') {
      if (p.booleans.has('--json')) process.stdout.write(`${JSON.stringify(doc.hooks, null, 2)}\n`);
      else process.stdout.write(`${formatTable(['NAME', 'SOURCE', 'CHECKSUM', 'DESCRIPTION'], doc.hooks.map((h) => [h.name, h.source, h.checksum.replace(/^sha256:/, '').slice(0, 12), h.description]))}\n`);
      return EXIT.ok;
    }
    // verify: the file on disk now against the digest the agent pinned.
    const dir = doc.hooks_dir ?? p.config.actions.hooksDir;
    let bad = 0;
    const rows = doc.hooks.map((h) => {
      if (hookNameProblem(h.name) !== undefined) {
        bad++;
        return [h.name, 'BAD NAME', ''];
      }
      let now: string;
      try {
        now = hashFile(join(dir, h.name));
      } catch (err) {
        bad++;
        return [h.name, 'MISSING', (err as Error).message];
      }
      if (now !== h.checksum) {
        bad++;
        return [h.name, 'CHANGED', `pinned ${h.checksum}, now ${now}: refused until the agent restarts`];
      }
      return [h.name, 'OK', h.checksum];
    });
    process.stdout.write(`${formatTable(['NAME', 'RESULT', 'DETAIL'], rows)}\n`);
    return bad === 0 ? EXIT.ok : EXIT.setupFailed;
  } catch (err) {
    return fail((err as Error).message);
  }
}
