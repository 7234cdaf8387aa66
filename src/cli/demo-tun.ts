// `plexd-userspace demo --tun` (root): the demo mesh with real TUN interfaces. A hub namespace holds
// a bridge and the control plane (`control-plane serve --insecure-http`, SQLite in a temporary
// directory) on HUB_IP; each agent is a `plexd-userspace up` process in its own namespace on a veth
// into the bridge; kernel ping (iputils) between every ordered pair of mesh IPs; the table from the
// agents' node API. Namespaces, links and processes come from a NetnsLab
// (src/conformance/netns-lab.ts, names `plxt<pid base36>-…`) and are removed at the end, on failure
// and on SIGINT/SIGTERM; a run killed outright is swept by the next one.
//
// Network rule: all traffic stays inside the namespaces created here; nothing is added to the
// caller's namespace.

import { type ChildProcess, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { queryUnix } from '../agent/local-http.js';
import { NetnsLab, netnsUnavailableReason, sweepStale, type Netns } from '../conformance/netns-lab.js';
import { ALLOW_ALL_MESH_RULES } from '../control-plane/policy.js';
import { ControlPlaneStore } from '../control-plane/store.js';
import { selfCommand } from '../io/sea.js';
import { demoRow, printLine, until, withCleanup, type DemoNode, type DemoOptions, type DemoRow } from './demo-common.js';

/** The bridge subnet inside the lab (/24): hub .1, agent i at .(10+i). Private to the namespaces. */
const SUBNET = '10.79.0';
const HUB_IP = `${SUBNET}.1`;
const CP_PORT = 8080;
const BIN = fileURLToPath(new URL('../../bin/plexd-userspace.js', import.meta.url));
/** Where the agents' UAPI sockets live (the default of `up`); removed at cleanup if a kill left one. */
const UAPI_DIR = '/var/run/wireguard';
const LOG_LINES = 200;

/** Why `demo --tun` cannot run for effective uid `uid`, or undefined when it can. */
export function tunDemoUnavailableReason(uid: number | undefined): string | undefined {
  if (process.platform !== 'linux') return `needs Linux (network namespaces and TUN), this is ${process.platform}; run \`plexd-userspace demo\` without --tun`;
  if (uid !== 0) {
    return 'needs root: it creates network namespaces, a bridge, veth pairs and TUN interfaces. Run it as root (e.g. `sudo plexd-userspace demo --tun`), or run `plexd-userspace demo` without --tun, which needs no root';
  }
  const why = netnsUnavailableReason();
  if (why !== undefined) return why;
  if (spawnSync('ping', ['-V']).error !== undefined) return '`ping` (iputils) is not installed';
  return undefined;
}

interface TunAgent extends DemoNode {
  readonly ns: Netns;
  readonly socket: string;
  readonly proc: ChildProcess;
}

/** Keeps the last LOG_LINES lines of a child's stdout and stderr in `log` (and drains the pipes). */
function collect(proc: ChildProcess, log: string[]): void {
  const push = (d: Buffer) => {
    log.push(...d.toString().split('\n').filter((l) => l !== ''));
    if (log.length > LOG_LINES) log.splice(0, log.length - LOG_LINES);
  };
  proc.stdout?.on('data', push);
  proc.stderr?.on('data', push);
}

/** RTT in ms of one kernel echo from `ns` to `ip`, or undefined without a reply within 2 s. */
async function pingOnce(ns: Netns, ip: string): Promise<number | undefined> {
  const r = await ns.run(['ping', '-n', '-c', '1', '-W', '2', ip], { timeoutMs: 5000 });
  const m = /time=([\d.]+) ms/.exec(r.stdout);
  return r.code === 0 && m !== null ? Number(m[1]) : undefined;
}

/**
 * RTT in ms from `ns` to `ip` over an established tunnel: echoes until one answers or `deadline`
 * (performance.now()) passes (the first may wait for a handshake), then one more, measured.
 */
async function pingRtt(ns: Netns, ip: string, deadline: number): Promise<number | undefined> {
  let first: number | undefined;
  do first = await pingOnce(ns, ip);
  while (first === undefined && performance.now() < deadline);
  return first === undefined ? undefined : ((await pingOnce(ns, ip)) ?? first);
}

function agentConfig(dir: string, i: number, token: string, ifname: string, cpUrl: string): string {
  const file = join(dir, `node${i}.yaml`);
  writeFileSync(
    file,
    [
      `log_level: ${process.env['LOG_LEVEL'] ?? 'info'}`,
      `data_dir: ${join(dir, `node${i}`)}`,
      `api: {base_url: "${cpUrl}"}`,
      `registration: {resource_handle: demo-node-${i}, token: "${token}"}`,
      `wireguard: {interface_name: ${ifname}, listen_port: 51820, bind_address: ${SUBNET}.${10 + i}}`,
      `node_api: {socket: ${join(dir, `node${i}.sock`)}}`,
      `health: {listen: "127.0.0.1:0"}`,
    ].join('\n') + '\n',
    { mode: 0o600 },
  );
  return file;
}

/**
 * Runs the demo mesh in namespaces (needs root: check tunDemoUnavailableReason first) and returns
 * its table. Everything it created is gone before it resolves or rejects; on failure the error
 * message carries the tail of each process's log.
 */
export async function runDemoTun(opts: DemoOptions = {}): Promise<DemoRow[]> {
  const n = opts.nodes ?? 3;
  const print = opts.print ?? printLine;
  sweepStale();
  const lab = new NetnsLab();
  const dir = mkdtempSync(join(tmpdir(), 'plexd-demo-tun-'));
  const ifnames: string[] = [];
  const logs = new Map<string, string[]>();
  const cleanup = async () => {
    await lab.cleanup();
    for (const ifname of ifnames) rmSync(join(UAPI_DIR, `${ifname}.sock`), { force: true });
    rmSync(dir, { recursive: true, force: true });
  };
  const body = async (signal: AbortSignal): Promise<DemoRow[]> => {
    const say = (line: string) => void (signal.aborted || print(line));
    const hub = await lab.namespace();
    await hub.ip('link', 'add', 'br0', 'type', 'bridge');
    await hub.ip('addr', 'add', `${HUB_IP}/24`, 'dev', 'br0');
    await hub.ip('link', 'set', 'br0', 'up');
    const db = join(dir, 'control-plane.db');
    const store = ControlPlaneStore.open(db);
    const tokens = Array.from({ length: n }, () => store.createToken().token);
    // Agents deny all mesh traffic until a policy allows it (as upstream plexd): open the mesh.
    store.setPolicy('default', ALLOW_ALL_MESH_RULES);
    store.close();
    const cp = hub.spawn([...selfCommand(BIN), 'control-plane', 'serve', '--listen', `${HUB_IP}:${CP_PORT}`, '--db', db, '--insecure-http']);
    const cpLog: string[] = [];
    logs.set('control plane', cpLog);
    collect(cp, cpLog);
    let cpUrl = '';
    await until('the control plane to listen', 15_000, () => {
      if (cp.exitCode !== null) throw new Error(`the control plane exited with ${cp.exitCode}`);
      cpUrl = /control-plane listening on (\S+)/.exec(cpLog.join('\n'))?.[1] ?? '';
      return cpUrl !== '';
    }, signal);
    say(`control plane: ${cpUrl} in namespace ${hub.name}, bridge ${SUBNET}.0/24 (SQLite in ${dir})`);

    const pending: Array<Omit<TunAgent, keyof DemoNode>> = [];
    for (let i = 1; i <= n; i++) {
      const ns = await lab.namespace();
      const v = await lab.veth(ns, hub, { a: `${SUBNET}.${10 + i}/24` });
      await hub.ip('link', 'set', v.b, 'master', 'br0');
      const ifname = lab.uniqueName('w');
      ifnames.push(ifname);
      const proc = ns.spawn([...selfCommand(BIN), 'up', '--config', agentConfig(dir, i, tokens[i - 1]!, ifname, cpUrl)]);
      const log: string[] = [];
      logs.set(`demo-node-${i}`, log);
      collect(proc, log);
      pending.push({ ns, socket: join(dir, `node${i}.sock`), proc });
    }
    const agents: TunAgent[] = [];
    for (const [k, p] of pending.entries()) {
      let status: Record<string, unknown> = {};
      await until(`demo-node-${k + 1} to register and bring its interface up`, 30_000, async () => {
        if (p.proc.exitCode !== null) throw new Error(`demo-node-${k + 1} (\`up\`) exited with ${p.proc.exitCode}`);
        status = (await queryUnix(p.socket, '/v1/status').catch(() => ({}))) as Record<string, unknown>;
        return typeof status['mesh_ip'] === 'string';
      }, signal);
      const a: TunAgent = { ...p, handle: `demo-node-${k + 1}`, nodeId: String(status['node_id']), meshIp: String(status['mesh_ip']) };
      agents.push(a);
      say(`registered ${a.handle}: node ${a.nodeId}, mesh IP ${a.meshIp}, TUN ${String(status['interface'])} in namespace ${a.ns.name}, UDP ${SUBNET}.${10 + k + 1}:${String(status['listen_port'])}`);
    }

    const peersOf = async (a: TunAgent) => (await queryUnix(a.socket, '/v1/peers')) as Array<Record<string, unknown>>;
    const withEndpoint = async (a: TunAgent) => (await peersOf(a).catch(() => [])).filter((p) => p['endpoint'] !== null).length;
    await until('every agent to learn every peer and its endpoint', opts.convergeTimeoutMs ?? 30_000, async () => (await Promise.all(agents.map(withEndpoint))).every((c) => c === n - 1), signal);
    say(`mesh converged: every node has ${n - 1} peers with endpoints`);

    const rtts = new Map<string, number | undefined>();
    for (const a of agents) {
      for (const b of agents) {
        if (a === b) continue;
        signal.throwIfAborted();
        const rtt = await pingRtt(a.ns, b.meshIp, performance.now() + (opts.pingTimeoutMs ?? 10_000));
        rtts.set(`${a.meshIp} ${b.meshIp}`, rtt);
        say(`ping ${a.meshIp} -> ${b.meshIp}: ${rtt === undefined ? 'no reply' : `${rtt.toFixed(2)} ms`}`);
      }
    }
    const rows: DemoRow[] = [];
    for (const a of agents) {
      const doc = await peersOf(a);
      for (const b of agents) if (a !== b) rows.push(demoRow(a, b, doc, rtts.get(`${a.meshIp} ${b.meshIp}`)));
    }
    return rows;
  };
  return withCleanup(cleanup, async (signal) => {
    try {
      return await body(signal);
    } catch (err) {
      if (signal.aborted) throw err;
      const tails = [...logs].map(([who, log]) => `--- ${who} (last lines)\n${log.slice(-15).join('\n')}`).join('\n');
      throw new Error(`${(err as Error).message}\n${tails}`, { cause: err });
    }
  });
}
