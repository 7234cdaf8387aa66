// The mesh as root: a control plane in its own namespace and three `plexd-userspace up` agents,
// each in its own namespace, all on one bridge (10.77.0.0/24). Real TUN interfaces, kernel ping.
// Checks: every agent pings every mesh IP within 30 s; removing a node makes the others drop it
// within 5 s; killing the control plane leaves the mesh passing traffic; restarting it on the same
// database, agents reconnect without registering again; a wrong or reused token ends `up` with
// exit 1 naming the problem code.
//
// Network rule: traffic stays inside the namespaces this file creates (and their loopbacks).

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryUnix } from '../../src/agent/local-http.js';
import { requireRoot } from '../helpers/netns.js';
import { MeshLab, until, type AgentProc } from '../helpers/mesh-lab.js';

const skip = requireRoot('mesh netns tests') !== undefined;

describe.skipIf(skip)('plexd mesh in namespaces', () => {
  const mesh = new MeshLab();
  const agents = mesh.agents;
  const ping = (from: AgentProc, ip: string) => mesh.ping(from, ip);
  const status = (a: AgentProc) => mesh.status(a);
  const cpEval = (body: string) => mesh.cpEval(body);

  beforeAll(() => mesh.setup(3));
  afterAll(() => mesh.cleanup());

  it('every agent pings every mesh IP within 30 s of start', async () => {
    const t0 = Date.now();
    const meshIps = await mesh.upAll();
    try {
      for (const a of agents) {
        for (const ip of meshIps) await until(`${a.ip} pings ${ip}`, Math.max(1000, 30_000 - (Date.now() - t0)), () => ping(a, ip));
      }
    } catch (err) {
      await mesh.dump();
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
    await mesh.stopCp();
    const bIp = before[1]['mesh_ip'] as string;
    const aIp = before[0]['mesh_ip'] as string;
    await new Promise((r) => setTimeout(r, 1500));
    expect(await ping(a, bIp)).toBe(true);
    expect(await ping(b, aIp)).toBe(true);
    const logMark = a.log.length;
    const nodesBefore = JSON.parse(await cpEval('return store.listNodes().length;')) as number;
    await mesh.startCp();
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
    rmSync(join(mesh.dir, 'n3'), { recursive: true, force: true });
    const wrong = mesh.spawnUp(ns, mesh.configFor(3, 'not-a-real-token'));
    expect(await wrong.exit).toBe(1);
    expect(wrong.log.join('')).toMatch(/registration failed: token_\w+/);
    const used = (await cpEval('return null;'), await mesh.token());
    const first = mesh.spawnUp(ns, mesh.configFor(3, used));
    await until('third agent registers', 15_000, async () => ((await status(agents[2]!))['node_id'] as string | undefined));
    first.proc.kill('SIGTERM');
    expect(await first.exit).toBe(0);
    rmSync(join(mesh.dir, 'n3'), { recursive: true, force: true });
    const again = mesh.spawnUp(ns, mesh.configFor(3, used));
    expect(await again.exit).toBe(1);
    expect(again.log.join('')).toContain('token_consumed');
  });
});
