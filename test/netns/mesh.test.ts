// The mesh as root: a control plane in its own namespace and three `plexd-userspace up` agents,
// each in its own namespace, all on one bridge (10.77.0.0/24). Real TUN interfaces, kernel ping.
// Checks: every agent pings every mesh IP within 30 s; removing a node makes the others drop it
// within 5 s; killing the control plane leaves the mesh passing traffic; restarting it on the same
// database, agents reconnect without registering again; a wrong or reused token ends `up` with
// exit 1 naming the problem code.
//
// Network rule: traffic stays inside the namespaces this file creates (and their loopbacks).

import { type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryUnix } from '../../src/agent/local-http.js';
import { NetnsLab, requireRoot, sweepStale, type Netns } from '../helpers/netns.js';
import { DAEMON, REPO_DIR, ensureBuilt } from '../helpers/wg-lab.js';

const skip = requireRoot('mesh netns tests') !== undefined;
const CP_IP = '10.77.0.1';
const CP_PORT = 18080;
const CP_URL = `http://${CP_IP}:${CP_PORT}`;

interface AgentProc {
  ns: Netns;
  ip: string;
  dir: string;
  socket: string;
  ifname: string;
  proc: ChildProcess;
  log: string[];
}

async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe.skipIf(skip)('plexd mesh in namespaces', () => {
  const lab = new NetnsLab();
  let dir: string;
  let hub: Netns;
  let cp: ChildProcess | undefined;
  const agents: AgentProc[] = [];
  const db = () => join(dir, 'cp.db');

  const startCp = async (): Promise<void> => {
    const script = `import(${JSON.stringify(join(REPO_DIR, 'dist/control-plane/server.js'))}).then(async (m) => {
      const cp = await m.createControlPlane({ db: ${JSON.stringify(db())}, listen: '${CP_IP}:${CP_PORT}', insecureHttp: true, pollMs: 200 });
      process.stdout.write('READY ' + cp.url + '\\n');
      process.on('SIGTERM', () => cp.close().then(() => process.exit(0)));
    });`;
    cp = hub.spawn([process.execPath, '--input-type=module', '-e', script]);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const t = setTimeout(() => reject(new Error(`control plane did not start: ${out}`)), 15_000);
      cp!.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('READY')) {
          clearTimeout(t);
          resolve();
        }
      });
      cp!.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    });
  };

  const stopCp = async (): Promise<void> => {
    const p = cp;
    cp = undefined;
    if (p === undefined || p.exitCode !== null) return;
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill('SIGKILL');
    });
  };

  const cpEval = async (body: string): Promise<string> => {
    const script = `import(${JSON.stringify(join(REPO_DIR, 'dist/control-plane/store.js'))}).then((m) => {
      const store = m.ControlPlaneStore.open(${JSON.stringify(db())});
      try { const r = (() => { ${body} })(); process.stdout.write(JSON.stringify(r ?? null)); } finally { store.close(); }
    });`;
    return hub.runOk([process.execPath, '--input-type=module', '-e', script]);
  };

  const token = async (): Promise<string> => JSON.parse(await cpEval('return store.createToken().token;')) as string;

  const configFor = (i: number, tok: string): string => {
    const d = join(dir, `n${i}`);
    const file = join(dir, `n${i}.yaml`);
    writeFileSync(
      file,
      [
        `log_level: ${process.env['PLEXD_TEST_LOG'] ?? 'info'}`,
        `data_dir: ${d}`,
        `api: {base_url: "${CP_URL}"}`,
        `registration: {resource_handle: node${i}, token: "${tok}"}`,
        `wireguard: {interface_name: ${agents[i - 1]?.ifname ?? lab.uniqueName('w')}, listen_port: 51820, bind_address: 10.77.0.${10 + i}}`,
        `node_api: {socket: ${join(dir, `n${i}.sock`)}}`,
      ].join('\n'),
    );
    return file;
  };

  const spawnUp = (ns: Netns, file: string): { proc: ChildProcess; log: string[]; exit: Promise<number | null> } => {
    const proc = ns.spawn([process.execPath, DAEMON, 'up', '--config', file]);
    const log: string[] = [];
    proc.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
    proc.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
    const exit = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    return { proc, log, exit };
  };

  const ping = (from: AgentProc, ip: string) => from.ns.run(['ping', '-c', '1', '-W', '1', ip], { timeoutMs: 3000 }).then((r) => (r.code === 0 ? true : undefined));
  const status = (a: AgentProc) => queryUnix(a.socket, '/v1/status') as Promise<Record<string, unknown>>;

  beforeAll(async () => {
    sweepStale();
    await ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'plexd-mesh-'));
    hub = await lab.namespace();
    await hub.ip('link', 'add', 'br0', 'type', 'bridge');
    await hub.ip('addr', 'add', `${CP_IP}/24`, 'dev', 'br0');
    await hub.ip('link', 'set', 'br0', 'up');
    for (let i = 1; i <= 3; i++) {
      const ns = await lab.namespace();
      const v = await lab.veth(ns, hub, { a: `10.77.0.${10 + i}/24` });
      await hub.ip('link', 'set', v.b, 'master', 'br0');
      agents.push({ ns, ip: `10.77.0.${10 + i}`, dir: join(dir, `n${i}`), socket: join(dir, `n${i}.sock`), ifname: lab.uniqueName('w'), proc: undefined as unknown as ChildProcess, log: [] });
    }
    await startCp();
  });

  afterAll(async () => {
    for (const a of agents) if (a.proc !== undefined && a.proc.exitCode === null) a.proc.kill('SIGTERM');
    await stopCp();
    await lab.cleanup();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('every agent pings every mesh IP within 30 s of start', async () => {
    const t0 = Date.now();
    for (let i = 1; i <= 3; i++) {
      const a = agents[i - 1]!;
      const s = spawnUp(a.ns, configFor(i, await token()));
      a.proc = s.proc;
      a.log = s.log;
    }
    const meshIps = await Promise.all(agents.map((a) => until('agent status', 20_000, async () => (await status(a))['mesh_ip'] as string)));
    try {
      for (const a of agents) {
        for (const ip of meshIps) await until(`${a.ip} pings ${ip}`, Math.max(1000, 30_000 - (Date.now() - t0)), () => ping(a, ip));
      }
    } catch (err) {
      for (const a of agents) console.error(`--- agent ${a.ip}\n${a.log.join('')}\n${JSON.stringify(await queryUnix(a.socket, '/v1/peers').catch(() => null))}`);
      throw err;
    }
    expect(Date.now() - t0).toBeLessThan(30_000);
    const wg = await agents[0]!.ns.runOk(['wg', 'show', agents[0]!.ifname, 'peers']).catch(() => '');
    if (wg !== '') expect(wg.trim().split('\n').length).toBe(2);
  });

  it('a removed node is dropped by the others within 5 s', async () => {
    const victim = agents[2]!;
    const id = (await status(victim))['node_id'] as string;
    await cpEval(`return store.removeNode(${JSON.stringify(id)}, 'test');`);
    const t0 = Date.now();
    for (const a of agents.slice(0, 2)) {
      await until(`${a.ip} drops ${id}`, 5000, async () => {
        const peers = (await queryUnix(a.socket, '/v1/peers')) as Array<Record<string, unknown>>;
        return peers.length === 1 && !peers.some((p) => p['node_id'] === id) ? true : undefined;
      });
    }
    expect(Date.now() - t0).toBeLessThan(5000);
    victim.proc.kill('SIGTERM');
  });

  it('killing the control plane leaves the mesh passing traffic; a restart on the same DB reconnects without re-registering', async () => {
    const [a, b] = agents as [AgentProc, AgentProc];
    const before = await Promise.all([status(a), status(b)]);
    await stopCp();
    const bIp = before[1]['mesh_ip'] as string;
    const aIp = before[0]['mesh_ip'] as string;
    await new Promise((r) => setTimeout(r, 1500));
    expect(await ping(a, bIp)).toBe(true);
    expect(await ping(b, aIp)).toBe(true);
    const logMark = a.log.length;
    const nodesBefore = JSON.parse(await cpEval('return store.listNodes().length;')) as number;
    await startCp();
    for (const [i, x] of [a, b].entries()) {
      await until('stream reconnects', 20_000, async () => ((await status(x))['event_stream_connected'] === true ? true : undefined));
      expect((await status(x))['node_id']).toBe(before[i]!['node_id']);
    }
    expect(JSON.parse(await cpEval('return store.listNodes().length;'))).toBe(nodesBefore);
    expect(a.log.slice(logMark).join('')).not.toMatch(/registering node/);
    expect(await ping(a, bIp)).toBe(true);
  });

  it('a wrong or reused token ends `up` with exit 1 and the problem code', async () => {
    const ns = agents[2]!.ns;
    rmSync(join(dir, 'n3'), { recursive: true, force: true });
    const wrong = spawnUp(ns, configFor(3, 'not-a-real-token'));
    expect(await wrong.exit).toBe(1);
    expect(wrong.log.join('')).toMatch(/registration failed: token_\w+/);
    const used = (await cpEval('return null;'), await token());
    const first = spawnUp(ns, configFor(3, used));
    await until('third agent registers', 15_000, async () => ((await status(agents[2]!))['node_id'] as string | undefined));
    first.proc.kill('SIGTERM');
    expect(await first.exit).toBe(0);
    rmSync(join(dir, 'n3'), { recursive: true, force: true });
    const again = spawnUp(ns, configFor(3, used));
    expect(await again.exit).toBe(1);
    expect(again.log.join('')).toContain('token_consumed');
  });
});
