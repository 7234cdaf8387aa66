// The agent with the minimal config (issue 13): no bind_address, no STUN servers. It reports its
// interface candidates (a fake interface table: nothing is sent to those addresses, the agent has
// no peer then), re-reports when they change, and says in `status` that it has no STUN server. An
// agent with nat.enabled: false and no explicit endpoint reports nothing; its peer warns once,
// names it, and is not ready (503 with the reason) until a packet from it arrives.
//
// Network rule: traffic stays on loopback (the only peer endpoint ever configured is 127.0.0.1).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, publicKeyOf } from '../../src/agent/agent.js';
import type { InterfaceTable } from '../../src/agent/candidates.js';
import type { ControlPlane } from '../../src/control-plane/server.js';
import { createLogger } from '../../src/log/logger.js';
import { loopbackAgentConfig, startControlPlane, stopMesh } from './loopback-mesh.js';
import { until } from '../helpers/wait.js';

const lines: string[] = [];
const log = createLogger('info', '', (l) => void lines.push(l));

describe('agent endpoint candidates', () => {
  let dir: string;
  let cp: ControlPlane;
  const agents: Agent[] = [];
  beforeAll(async () => {
    ({ dir, cp } = await startControlPlane('plexd-candidates-', { logger: log, pollMs: 50 }));
  });
  afterAll(() => stopMesh(agents, cp, dir));

  const start = async (i: number, extra: ReadonlyArray<readonly [string, string]>, opts: Partial<Parameters<typeof Agent.start>[0]> = {}) => {
    const config = loopbackAgentConfig(cp.url, dir, i, `cand-${i}`, [['registration.token', cp.store.createToken().token], ['health.listen', '127.0.0.1:0'], ...extra]);
    const a = await Agent.start({ config, logger: log.child(`n${i}: `), env: {}, nodeApi: false, ...opts });
    agents.push(a);
    return a;
  };

  it('reports interface candidates with the minimal config and re-reports when they change', async () => {
    let table: InterfaceTable = {
      lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }],
      eth0: [{ address: '192.0.2.10', family: 'IPv4', internal: false }],
      docker0: [{ address: '172.17.0.1', family: 'IPv4', internal: false }],
    };
    // loopbackAgentConfig sets bind_address 127.0.0.1; the minimal config has none (0.0.0.0).
    const a = await start(0, [['wireguard.bind_address', '0.0.0.0']], { interfaces: () => table, candidatePollMs: 50 });
    const port = a.iface.device.listenPort;
    const stored = () => cp.store.node(a.identity.node_id)!;
    await until('candidates reported', 5000, () => stored().candidates !== null);
    expect(JSON.parse(stored().candidates!)).toEqual([`192.0.2.10:${port}`]);
    expect(stored().endpoint).toBe(`192.0.2.10:${port}`);
    const nat = a.status()['nat'] as Record<string, unknown>;
    expect(nat['stun_servers']).toBe('no STUN server: local candidates only');
    expect(nat['candidates']).toEqual([`192.0.2.10:${port}`]);

    table = { ...table, eth1: [{ address: '198.51.100.4', family: 'IPv4', internal: false }] };
    await until('the new candidate is reported', 5000, () => JSON.parse(stored().candidates!).length === 2);
    expect(JSON.parse(stored().candidates!)).toEqual([`192.0.2.10:${port}`, `198.51.100.4:${port}`]);
    await a.stop();
    // Gone from the control plane before any other agent starts: nobody is sent to 192.0.2.x.
    cp.store.removeNode(a.identity.node_id, 'test');
  });

  it('nat.enabled: false reports nothing; the peer warns once, is not ready, and recovers on contact', async () => {
    const grace = 300;
    // Discovery off and no explicit endpoint on both: neither can reach the other.
    const off = [['nat.enabled', 'false'], ['wireguard.bind_address', '0.0.0.0']] as const;
    const fake = () => ({ eth0: [{ address: '192.0.2.20', family: 'IPv4' as const, internal: false }] });
    const b = await start(1, off, { pathGraceMs: grace, interfaces: fake });
    const c = await start(2, off, { pathGraceMs: grace, interfaces: fake });
    await b.reconcileNow();
    const mark = lines.length;
    await until('b finds c without endpoint past the grace period', 5000, () => (b.checkPaths(), b.notReadyReason !== undefined));
    const warnings = () => lines.slice(mark).filter((l) => l.includes(`peer ${c.identity.node_id}`) && l.includes('no usable endpoint'));
    expect(cp.store.node(c.identity.node_id)).toMatchObject({ endpoint: null, candidates: null });
    const res = await fetch(`http://127.0.0.1:${b.healthPort}/readyz`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as Record<string, unknown>)['reason']).toMatch(/no peer has a usable endpoint \(1 of 1\)/);
    expect(b.peers()[0]!['path_problem']).toMatch(/control-plane endpoint: none; candidates: none; relay: none/);
    expect(b.status()['path_problems']).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 3 * grace));
    b.checkPaths();
    expect(warnings()).toHaveLength(1);
    // Told b's address by hand, c's first packet teaches b where c is: the problem ends. (No
    // policy is set, so nothing passes b's filter: the handshake the ping starts is the contact.)
    await c.iface.device.configure({ peers: [{ publicKey: publicKeyOf(b.store.loadIdentity()!.private_key), updateOnly: true, endpoint: `127.0.0.1:${b.iface.device.listenPort}` }] });
    await until('c reaches b (a handshake)', 10_000, async () => {
      await c.iface.ping(b.identity.mesh_ip, 300);
      return b.peers()[0]!['endpoint'] !== null;
    });
    b.checkPaths();
    expect(b.notReadyReason).toBeUndefined();
    expect(b.peers()[0]!['path_problem']).toBeNull();
    expect((await fetch(`http://127.0.0.1:${b.healthPort}/readyz`)).status).toBe(200);
  });
});
