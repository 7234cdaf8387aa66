// `plexd-userspace demo`: the whole mesh in one process with no root. A control plane (SQLite in
// a temporary directory, plain HTTP on 127.0.0.1), a bootstrap token per node, and three agents
// in packet-callback mode over loopback UDP with userspace ICMP echo. It shows registration,
// handshakes and a ping between every ordered pair of mesh IPs, prints a table, and exits 0
// only when every pair answered. (`--tun`, real interfaces in namespaces, is not implemented.)

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../agent/agent.js';
import { resolveConfig } from '../agent/config.js';
import { createControlPlane, type ControlPlane } from '../control-plane/server.js';
import { createLogger, logLevelFromEnv } from '../log/logger.js';
import { formatTable } from './agent.js';
import { EXIT } from './constants.js';

/** One row of the demo's result table. */
export interface DemoRow {
  readonly node: string;
  readonly meshIp: string;
  readonly peer: string;
  readonly path: string;
  readonly lastHandshake: string;
  /** RTT in ms, undefined when the ping failed. */
  readonly rttMs: number | undefined;
}

/** Options of {@link runDemoMesh}. */
export interface DemoOptions {
  readonly nodes?: number;
  /** Progress lines (default: stdout). */
  readonly print?: (line: string) => void;
  /** Limit for the mesh to converge and for each ping, ms (default 15 s / 5 s). */
  readonly convergeTimeoutMs?: number;
  readonly pingTimeoutMs?: number;
}

async function until(what: string, timeoutMs: number, check: () => boolean): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Runs the demo mesh and returns its table; everything it started is stopped and its temporary
 * directory removed before it resolves or rejects.
 */
export async function runDemoMesh(opts: DemoOptions = {}): Promise<DemoRow[]> {
  const n = opts.nodes ?? 3;
  const print = opts.print ?? ((l: string) => void process.stdout.write(l + '\n'));
  const log = createLogger(logLevelFromEnv(process.env['LOG_LEVEL']), 'demo: ');
  const dir = mkdtempSync(join(tmpdir(), 'plexd-demo-'));
  let cp: ControlPlane | undefined;
  const agents: Agent[] = [];
  try {
    cp = await createControlPlane({ db: join(dir, 'control-plane.db'), listen: '127.0.0.1:0', insecureHttp: true, logger: log.child('control-plane: ') });
    print(`control plane: ${cp.url} (SQLite in ${dir})`);
    for (let i = 1; i <= n; i++) {
      const token = cp.store.createToken().token;
      const flags = new Map<string, string>([
        ['api.base_url', cp.url],
        ['data_dir', join(dir, `node${i}`)],
        ['registration.token', token],
        ['registration.resource_handle', `demo-node-${i}`],
        ['wireguard.interface_name', `demo${i}`],
        ['wireguard.packet_callback', 'true'],
        ['wireguard.bind_address', '127.0.0.1'],
        ['wireguard.listen_port', '0'],
      ]);
      const config = resolveConfig({ env: {}, flags });
      const agent = await Agent.start({ config, logger: log.child(`node${i}: `), health: false, nodeApi: false });
      agents.push(agent);
      print(`registered demo-node-${i}: node ${agent.identity.node_id}, mesh IP ${agent.identity.mesh_ip}, UDP 127.0.0.1:${agent.iface.device.listenPort}`);
    }
    const endpointsKnown = () => agents.every((a) => [...a.iface.device.snapshot().peers].filter((p) => p.endpoint !== null).length === n - 1);
    await until('every agent to learn every peer and its endpoint', opts.convergeTimeoutMs ?? 15_000, endpointsKnown);
    print(`mesh converged: every node has ${n - 1} peers with endpoints`);
    const rows: DemoRow[] = [];
    for (const a of agents) {
      for (const b of agents) {
        if (a === b) continue;
        const rtt = await a.iface.ping(b.identity.mesh_ip, opts.pingTimeoutMs ?? 5000);
        const bKey = b.status()['public_key'] as string;
        const peer = [...a.iface.device.snapshot().peers].find((p) => Buffer.from(p.publicKey).toString('base64') === bKey);
        const hs = peer === undefined || peer.lastHandshakeTimeSec === 0 ? 'never' : `${Math.max(0, Math.round(Date.now() / 1000 - peer.lastHandshakeTimeSec))} s ago`;
        rows.push({ node: a.config.registration.resourceHandle, meshIp: a.identity.mesh_ip, peer: `${b.config.registration.resourceHandle} (${b.identity.mesh_ip})`, path: 'direct', lastHandshake: hs, rttMs: rtt });
        print(`ping ${a.identity.mesh_ip} -> ${b.identity.mesh_ip}: ${rtt === undefined ? 'no reply' : `${rtt.toFixed(2)} ms`}`);
      }
    }
    return rows;
  } finally {
    for (const a of agents) await a.stop().catch(() => undefined);
    await cp?.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `plexd-userspace demo [--nodes N]`. */
export async function runDemo(args: readonly string[]): Promise<number> {
  let nodes = 3;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--tun') {
      process.stderr.write('plexd-userspace demo: --tun (real interfaces in namespaces) is not implemented yet; run without it\n');
      return EXIT.usage;
    }
    if (a === '--nodes' && /^[2-9]$/.test(args[i + 1] ?? '')) {
      nodes = Number(args[++i]);
      continue;
    }
    process.stderr.write(`plexd-userspace demo: unknown argument ${JSON.stringify(a)}\nUsage: plexd-userspace demo [--nodes 2-9]\n`);
    return EXIT.usage;
  }
  let rows: DemoRow[];
  try {
    rows = await runDemoMesh({ nodes });
  } catch (err) {
    process.stderr.write(`plexd-userspace demo: ${(err as Error).message}\n`);
    return EXIT.setupFailed;
  }
  process.stdout.write('\n' + formatTable(['NODE', 'MESH IP', 'PEER', 'PATH', 'LAST HANDSHAKE', 'RTT'], rows.map((r) => [r.node, r.meshIp, r.peer, r.path, r.lastHandshake, r.rttMs === undefined ? 'FAILED' : `${r.rttMs.toFixed(2)} ms`])));
  const failed = rows.filter((r) => r.rttMs === undefined).length;
  process.stdout.write(failed === 0 ? `\nall ${rows.length} pairs answered\n` : `\n${failed} of ${rows.length} pairs did not answer\n`);
  return failed === 0 ? EXIT.ok : EXIT.setupFailed;
}
