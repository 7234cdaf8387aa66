// `plexd-userspace demo`: the whole mesh in one process with no root. A control plane (SQLite in
// a temporary directory, plain HTTP on 127.0.0.1), a bootstrap token per node, and three agents
// with the userspace TCP/IP stack (wireguard.netstack: no TUN) over loopback UDP. It shows
// registration, handshakes and a ping between every ordered pair of mesh IPs, then an HTTP
// request from node 1 to a server on node 2's mesh IP (TCP in userspace, no root), prints a
// table, and exits 0 only when every pair answered and the request succeeded. `--tun` (root) does the same with real TUN interfaces in network
// namespaces (src/cli/demo-tun.ts). Both clean up everything, also on SIGINT/SIGTERM.

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../agent/agent.js';
import { resolveConfig } from '../agent/config.js';
import { ALLOW_ALL_MESH_RULES } from '../control-plane/policy.js';
import { createControlPlane, type ControlPlane } from '../control-plane/server.js';
import { createLogger, logLevelFromEnv } from '../log/logger.js';
import { EXIT } from './constants.js';
import { demoRow, formatDemoTable, printLine, until, withCleanup, type DemoNode, type DemoOptions, type DemoRow } from './demo-common.js';

/** Injectable process facts for {@link runDemo} (tests simulate a non-root user). */
export interface DemoDeps {
  /** The effective uid (default process.geteuid). */
  readonly uid?: () => number | undefined;
}

const USAGE = 'Usage: plexd-userspace demo [--tun] [--nodes 2-9]\n';

/**
 * Runs the demo mesh in this process (no root) and returns its table; everything it started is
 * stopped and its temporary directory removed before it resolves or rejects.
 */
export async function runDemoMesh(opts: DemoOptions = {}): Promise<DemoRow[]> {
  const n = opts.nodes ?? 3;
  const print = opts.print ?? printLine;
  const log = createLogger(logLevelFromEnv(process.env['LOG_LEVEL']), 'demo: ');
  const dir = mkdtempSync(join(tmpdir(), 'plexd-demo-'));
  let cp: ControlPlane | undefined;
  const agents: Agent[] = [];
  const cleanup = async () => {
    for (const a of agents) await a.stop().catch(() => undefined);
    await cp?.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  return withCleanup(cleanup, async (signal) => {
    const say = (line: string) => void (signal.aborted || print(line));
    cp = await createControlPlane({ db: join(dir, 'control-plane.db'), listen: '127.0.0.1:0', insecureHttp: true, logger: log.child('control-plane: ') });
    say(`control plane: ${cp.url} (SQLite in ${dir})`);
    // Agents deny all mesh traffic until a policy allows it (as upstream plexd): open the mesh.
    cp.store.setPolicy('default', ALLOW_ALL_MESH_RULES);
    say('policy: allow all mesh traffic (project default)');
    for (let i = 1; i <= n; i++) {
      const flags = new Map<string, string>([
        ['api.base_url', cp.url],
        ['data_dir', join(dir, `node${i}`)],
        ['registration.token', cp.store.createToken().token],
        ['registration.resource_handle', `demo-node-${i}`],
        ['wireguard.interface_name', `demo${i}`],
        ['wireguard.netstack', 'true'],
        ['wireguard.bind_address', '127.0.0.1'],
        ['wireguard.listen_port', '0'],
      ]);
      const agent = await Agent.start({ config: resolveConfig({ env: {}, flags }), logger: log.child(`node${i}: `), health: false, nodeApi: false });
      agents.push(agent);
      say(`registered demo-node-${i}: node ${agent.identity.node_id}, mesh IP ${agent.identity.mesh_ip}, UDP 127.0.0.1:${agent.iface.device.listenPort}`);
    }
    const converged = () => agents.every((a) => a.peers().filter((p) => p['endpoint'] !== null).length === n - 1);
    await until('every agent to learn every peer and its endpoint', opts.convergeTimeoutMs ?? 15_000, converged, signal);
    say(`mesh converged: every node has ${n - 1} peers with endpoints`);
    const nodes = agents.map((a): DemoNode => ({ handle: a.config.registration.resourceHandle, nodeId: a.identity.node_id, meshIp: a.identity.mesh_ip }));
    const rows: DemoRow[] = [];
    for (const [i, a] of agents.entries()) {
      for (const [j, b] of nodes.entries()) {
        if (i === j) continue;
        // Like ping(8), keep sending: the first echo may wait out a handshake retry (5 s).
        let rtt: number | undefined;
        for (let attempt = 0; attempt < 3 && rtt === undefined; attempt++) {
          rtt = await a.iface.ping(b.meshIp, opts.pingTimeoutMs ?? 3000);
        }
        say(`ping ${nodes[i]!.meshIp} -> ${b.meshIp}: ${rtt === undefined ? 'no reply' : `${rtt.toFixed(2)} ms`}`);
        rows.push(demoRow(nodes[i]!, b, a.peers(), rtt));
      }
    }
    // TCP with no root: an HTTP server on node 2's userspace stack, a fetch from node 1's.
    const server = createHttpServer((req, res) => res.end(`hello from ${nodes[1]!.handle} (${req.url})`));
    agents[1]!.iface.net!.createServer((s) => server.emit('connection', s)).listen(8080);
    const url = `http://${nodes[1]!.meshIp}:8080/demo`;
    const res = await agents[0]!.iface.net!.fetch(url);
    const body = await res.text();
    say(`http ${nodes[0]!.meshIp} -> GET ${url}: ${res.status} ${JSON.stringify(body)} (userspace TCP, no root)`);
    if (res.status !== 200) throw new Error(`the demo's HTTP request got ${res.status}`);
    return rows;
  });
}

/** `plexd-userspace demo [--tun] [--nodes N]`: 0 when every pair answered, 1 otherwise, 2 on bad usage. */
export async function runDemo(args: readonly string[], deps: DemoDeps = {}): Promise<number> {
  let nodes = 3;
  let tun = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--tun') {
      tun = true;
      continue;
    }
    if (a === '--nodes' && /^[2-9]$/.test(args[i + 1] ?? '')) {
      nodes = Number(args[++i]);
      continue;
    }
    if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      return EXIT.ok;
    }
    if (a === '--nodes') {
      process.stderr.write(`plexd-userspace demo: --nodes: expected a number from 2 to 9, got ${JSON.stringify(args[i + 1] ?? '')}\n${USAGE}`);
      return EXIT.usage;
    }
    process.stderr.write(`plexd-userspace demo: unknown argument ${JSON.stringify(a)}\n${USAGE}`);
    return EXIT.usage;
  }
  let rows: DemoRow[];
  try {
    if (tun) {
      const { runDemoTun, tunDemoUnavailableReason } = await import('./demo-tun.js');
      const why = tunDemoUnavailableReason((deps.uid ?? (() => process.geteuid?.()))());
      if (why !== undefined) {
        process.stderr.write(`plexd-userspace demo --tun: ${why}\n`);
        return EXIT.setupFailed;
      }
      rows = await runDemoTun({ nodes });
    } else {
      rows = await runDemoMesh({ nodes });
    }
  } catch (err) {
    process.stderr.write(`plexd-userspace demo: ${(err as Error).message}\n`);
    return EXIT.setupFailed;
  }
  process.stdout.write('\n' + formatDemoTable(rows));
  return rows.every((r) => r.rttMs !== undefined) ? EXIT.ok : EXIT.setupFailed;
}
