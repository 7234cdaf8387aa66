// A plexd mesh in network namespaces for the root tier (test/netns/mesh*.test.ts, policy*.test.ts):
// a hub namespace with a bridge (10.77.0.0/24) and the control plane on 10.77.0.1, and one
// namespace per agent (10.77.0.11, .12, ...) on a veth enslaved to the bridge. Agents run as real
// `plexd-userspace up` processes with TUN interfaces; the control plane as a child process over the
// built dist/, with admin changes made through its store on the same SQLite file. The bridge's
// /24 is an option (`net`), and addAgent() puts an agent in any namespace (e.g. behind a NAT).
//
// Network rule: traffic stays inside the namespaces this lab creates (and their loopbacks).

import { type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { queryUnix } from '../../src/agent/local-http.js';
import { NetnsLab, sweepStale, type Netns } from './netns.js';
import { until as waitUntil } from './wait.js';
import { DAEMON, REPO_DIR, ensureBuilt } from './wg-lab.js';

/** The control plane's address on the bridge (default `net`). */
export const CP_IP = '10.77.0.1';
const CP_PORT = 18080;

/** One agent slot: its namespace, underlay address and files; `proc` once `up` runs. */
export interface AgentProc {
  ns: Netns;
  ip: string;
  dir: string;
  socket: string;
  ifname: string;
  proc: ChildProcess;
  log: string[];
  /** YAML lines for this agent only (e.g. `mode: bridge`), after the common ones. */
  extra?: readonly string[];
}

/** The one polling loop (./wait.ts) every 200 ms; a rejecting `fn` counts as "not yet" (an agent
 *  that is still starting refuses its socket). */
export function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  return waitUntil(what, timeoutMs, () => fn().catch(() => undefined), 200) as Promise<T>;
}

/** Hub + control plane + agent namespaces; call setup() first and cleanup() always. */
export class MeshLab {
  readonly lab = new NetnsLab();
  /** The first three octets of the hub bridge's /24: control plane on .1, agents from .11. */
  readonly net: string;
  /** The control plane's address and base URL. */
  readonly cpIp: string;
  readonly cpUrl: string;
  readonly agents: AgentProc[] = [];
  dir = '';
  hub: Netns | undefined;
  /** Agents get the minimal upstream-style config: no wireguard.bind_address (issue 13). */
  minimal = false;
  /** The bootstrap token goes in a file (registration.token_file, tokenFile(i)), not inline: the
   *  agent consumes it, and a test can write a new one for a re-registration. */
  tokenFiles = false;
  /** Every agent's health.listen (each agent has its own namespace, so a fixed port is fine). */
  healthListen = '127.0.0.1:0';
  /** Extra createControlPlane options, as JS object-literal text (e.g. "stun: '10.77.0.1:18080'"). */
  cpExtra = '';
  #cp: ChildProcess | undefined;

  /** `net`: the hub bridge's /24 as its first three octets (default 10.77.0). */
  constructor(opts: { readonly net?: string } = {}) {
    this.net = opts.net ?? '10.77.0';
    this.cpIp = `${this.net}.1`;
    this.cpUrl = `http://${this.cpIp}:${CP_PORT}`;
  }

  /** The control plane's SQLite file. */
  get db(): string {
    return join(this.dir, 'cp.db');
  }

  /** YAML lines added to every agent's config (setup's `extraConfig`). */
  #extraConfig: readonly string[] = [];

  /**
   * Builds dist if stale, creates the namespaces and bridge for `nodes` agents, starts the control
   * plane. `allowAll` (default true): an allow-all policy on project default, since agents deny
   * mesh traffic without one. `extraConfig`: YAML lines for every agent's config.
   */
  async setup(nodes: number, tmpPrefix = 'plexd-mesh-', opts: { readonly allowAll?: boolean; readonly extraConfig?: readonly string[] } = {}): Promise<void> {
    this.#extraConfig = opts.extraConfig ?? [];
    sweepStale();
    await ensureBuilt();
    this.dir = mkdtempSync(join(tmpdir(), tmpPrefix));
    const hub = (this.hub = await this.lab.namespace());
    await hub.ip('link', 'add', 'br0', 'type', 'bridge');
    await hub.ip('addr', 'add', `${this.cpIp}/24`, 'dev', 'br0');
    await hub.ip('link', 'set', 'br0', 'up');
    for (let i = 1; i <= nodes; i++) {
      const ns = await this.lab.namespace();
      await this.plug(ns, `${this.net}.${10 + i}`);
      this.addAgent(ns, `${this.net}.${10 + i}`);
    }
    await this.startCp();
    if (opts.allowAll ?? true) await this.allowAll();
  }

  /** Joins `ns` to the hub bridge with address `ip` (/24 of `net`); returns its interface name. */
  async plug(ns: Netns, ip: string): Promise<string> {
    const v = await this.lab.veth(ns, this.hub!, { a: `${ip}/24` });
    await this.hub!.ip('link', 'set', v.b, 'master', 'br0');
    return v.a;
  }

  /** Adds agent slot n (the next 1-based index) in namespace `ns`, whose underlay address is `ip`. */
  addAgent(ns: Netns, ip: string): AgentProc {
    const i = this.agents.length + 1;
    const a: AgentProc = { ns, ip, dir: join(this.dir, `n${i}`), socket: join(this.dir, `n${i}.sock`), ifname: this.lab.uniqueName('w'), proc: undefined as unknown as ChildProcess, log: [] };
    this.agents.push(a);
    return a;
  }

  /** Sets an allow-all policy on project default (ALLOW_ALL_MESH_RULES). */
  async allowAll(): Promise<void> {
    await this.cpEval(`return store.setPolicy('default', [{ action: 'allow', protocol: 'any', source_cidr: '0.0.0.0/0', destination_cidr: '0.0.0.0/0', ports: null }]).policy;`);
  }

  /** Starts the control plane (SSE, 200 ms data_version poll) on the database; resolves when it listens. */
  async startCp(): Promise<void> {
    const script = `import(${JSON.stringify(join(REPO_DIR, 'dist/control-plane/server.js'))}).then(async (m) => {
      const cp = await m.createControlPlane({ db: ${JSON.stringify(this.db)}, listen: '${this.cpIp}:${CP_PORT}', insecureHttp: true, pollMs: 200, ${this.cpExtra} });
      process.stdout.write('READY ' + cp.url + '\\n');
      process.on('SIGTERM', () => cp.close().then(() => process.exit(0)));
    });`;
    const cp = (this.#cp = this.hub!.spawn([process.execPath, '--input-type=module', '-e', script]));
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const t = setTimeout(() => reject(new Error(`control plane did not start: ${out}`)), 15_000);
      cp.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('READY')) {
          clearTimeout(t);
          resolve();
        }
      });
      cp.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    });
  }

  /** Kills the control plane (SIGKILL: no goodbye to the agents). */
  async stopCp(): Promise<void> {
    const p = this.#cp;
    this.#cp = undefined;
    if (p === undefined || p.exitCode !== null) return;
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill('SIGKILL');
    });
  }

  /** Runs `body` (JS, `store` in scope) against the control plane's database; its JSON result. */
  cpEval(body: string): Promise<string> {
    const script = `import(${JSON.stringify(join(REPO_DIR, 'dist/control-plane/store.js'))}).then((m) => {
      const store = m.ControlPlaneStore.open(${JSON.stringify(this.db)});
      try { const r = (() => { ${body} })(); process.stdout.write(JSON.stringify(r ?? null)); } finally { store.close(); }
    });`;
    return this.hub!.runOk([process.execPath, '--input-type=module', '-e', script]);
  }

  /** A fresh bootstrap token. */
  async token(): Promise<string> {
    return JSON.parse(await this.cpEval('return store.createToken().token;')) as string;
  }

  /** Agent `i`'s (1-based) token file, when `tokenFiles`. */
  tokenFile(i: number): string {
    return join(this.dir, `n${i}.token`);
  }

  /** Writes the YAML config of agent `i` (1-based) with token `tok`; returns its path. */
  configFor(i: number, tok: string): string {
    const file = join(this.dir, `n${i}.yaml`);
    if (this.tokenFiles) writeFileSync(this.tokenFile(i), tok);
    writeFileSync(
      file,
      [
        `log_level: ${process.env['PLEXD_TEST_LOG'] ?? 'info'}`,
        `data_dir: ${join(this.dir, `n${i}`)}`,
        `api: {base_url: "${this.cpUrl}"}`,
        `registration: {resource_handle: node${i}, ${this.tokenFiles ? `token_file: ${this.tokenFile(i)}` : `token: "${tok}"`}}`,
        `wireguard: {interface_name: ${this.agents[i - 1]?.ifname ?? this.lab.uniqueName('w')}, listen_port: 51820${this.minimal ? '' : `, bind_address: ${this.agents[i - 1]?.ip ?? `${this.net}.${10 + i}`}`}}`,
        `node_api: {socket: ${join(this.dir, `n${i}.sock`)}}`,
        `health: {listen: "${this.healthListen}"}`,
        ...this.#extraConfig,
        ...(this.agents[i - 1]?.extra ?? []),
      ].join('\n'),
    );
    return file;
  }

  /** Spawns `plexd-userspace up --config file` in `ns`, collecting its output. */
  spawnUp(ns: Netns, file: string): { proc: ChildProcess; log: string[]; exit: Promise<number | null> } {
    const proc = ns.spawn([process.execPath, DAEMON, 'up', '--config', file]);
    const log: string[] = [];
    proc.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
    proc.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
    const exit = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    return { proc, log, exit };
  }

  /** Starts `up` for every agent with a fresh token each; resolves with their mesh IPs once all report one. */
  async upAll(): Promise<string[]> {
    for (const [i, a] of this.agents.entries()) {
      const s = this.spawnUp(a.ns, this.configFor(i + 1, await this.token()));
      a.proc = s.proc;
      a.log = s.log;
    }
    return Promise.all(this.agents.map((a) => until('agent status', 20_000, async () => (await this.status(a))['mesh_ip'] as string)));
  }

  /** One kernel ping from `from`'s namespace; true or undefined (for until()). */
  ping(from: AgentProc, ip: string): Promise<true | undefined> {
    return from.ns.run(['ping', '-c', '1', '-W', '1', ip], { timeoutMs: 3000 }).then((r) => (r.code === 0 ? true : undefined));
  }

  /** The agent's node API status document. */
  status(a: AgentProc): Promise<Record<string, unknown>> {
    return queryUnix(a.socket, '/v1/status') as Promise<Record<string, unknown>>;
  }

  /** Prints every agent's log and peers (for a failing test). */
  async dump(): Promise<void> {
    for (const a of this.agents) console.error(`--- agent ${a.ip}\n${a.log.join('')}\n${JSON.stringify(await queryUnix(a.socket, '/v1/peers').catch(() => null))}`);
  }

  /** Stops agents and the control plane, removes namespaces and the temp directory. */
  async cleanup(): Promise<void> {
    for (const a of this.agents) if (a.proc !== undefined && a.proc.exitCode === null) a.proc.kill('SIGTERM');
    await this.stopCp();
    await this.lab.cleanup();
    if (this.dir !== '') rmSync(this.dir, { recursive: true, force: true });
  }
}
