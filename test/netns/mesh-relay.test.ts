// Issue 13: the relay fallback with the minimal config. Two agents, each behind its own NAT with
// --random-fully (every mapping a random port, and a home router's INPUT rule): no direct path
// exists between them, whatever they probe. Outside, on the "public" bridge (198.18.0.0/24), the
// control plane (.1, STUN offered on its port) and a `mode: bridge` agent (.11, relay on 51821).
// Every agent has the minimal config (no bind_address, no stun_servers). With one STUN server
// nobody can tell the NATs are symmetric, so the pair is relayed on a path report: A and B must
// end relayed through the bridge and ping each other. Prints the time to the first answered ping.
//
// Network rule: traffic stays inside the namespaces this file creates (and their loopbacks).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryUnix } from '../../src/agent/local-http.js';
import { requireRoot } from '../helpers/netns.js';
import { MeshLab, until, type AgentProc } from '../helpers/mesh-lab.js';

const reason = requireRoot('mesh-relay netns tests');

describe.skipIf(reason !== undefined)('plexd mesh: two agents behind separate symmetric NATs, relayed through a bridge', () => {
  const mesh = new MeshLab({ net: '198.18.0' });
  mesh.minimal = true;
  mesh.cpExtra = `stun: '${mesh.cpIp}:18080'`;
  const agents = mesh.agents;

  beforeAll(async () => {
    await mesh.setup(1, 'plexd-mesh-relay-'); // agent 1: the bridge, outside
    agents[0]!.extra = ['mode: bridge', 'bridge: {relay_listen_port: 51821}'];
    for (const [k, wanIp] of [[1, '198.18.0.2'], [2, '198.18.0.3']] as const) {
      const nat = await mesh.lab.namespace();
      const wan = await mesh.plug(nat, wanIp);
      const ns = await mesh.lab.namespace();
      await mesh.lab.veth(nat, ns, { a: `10.10.${k}.1/24`, b: `10.10.${k}.2/24` });
      await ns.ip('route', 'add', 'default', 'via', `10.10.${k}.1`);
      await nat.runOk(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
      await nat.runOk(['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', wan, '-j', 'MASQUERADE', '--random-fully']);
      await nat.runOk(['iptables', '-A', 'INPUT', '-i', wan, '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP']);
      mesh.addAgent(ns, `10.10.${k}.2`);
    }
  }, 60_000);
  afterAll(() => mesh.cleanup());

  const peers = (a: AgentProc) => queryUnix(a.socket, '/v1/peers') as Promise<Array<Record<string, unknown>>>;

  it('A and B end relayed through the bridge and ping each other', async () => {
    const [, a, b] = agents as [AgentProc, AgentProc, AgentProc];
    const t0 = Date.now();
    const [, ipA, ipB] = await mesh.upAll();
    try {
      await until('A pings B', 45_000, () => mesh.ping(a, ipB!));
      const first = Date.now() - t0;
      await until('B pings A', 5_000, () => mesh.ping(b, ipA!));
      for (const [x, ip] of [[a, ipB], [b, ipA]] as const) {
        const p = await until('relayed', 15_000, async () => (await peers(x)).find((q) => q['mesh_ip'] === ip && q['path'] === 'relayed'));
        expect(String(p['endpoint']).startsWith('198.18.0.11:'), JSON.stringify(p)).toBe(true);
      }
      // The bridge carried it: one session, packets forwarded.
      const bridge = ((await mesh.status(agents[0]!))['nat'] as { bridge: { sessions: unknown[]; counters: { forwardedPackets: number } } }).bridge;
      expect(bridge.sessions).toHaveLength(1);
      expect(bridge.counters.forwardedPackets).toBeGreaterThan(0);
      console.log(`[mesh-relay] time to first packet A -> B (relayed): ${first} ms (from agent start)`);
      console.log(`[mesh-relay] A's path log:\n${a.log.join('').split('\n').filter((l) => /relay|path|endpoint/.test(l)).join('\n')}`);
    } catch (err) {
      await mesh.dump();
      throw err;
    }
  }, 90_000);
});
