// Issue 13: two agents behind one NAT plus one outside, all with the minimal config (no
// bind_address, no stun_servers; STUN from the control plane's offer). An "outside" bridge
// (198.18.0.0/24, not a private range, so paths through it count as public) holds the control
// plane (.1), agent C (.11) and the NAT router's WAN side (.2); behind the NAT a LAN
// (10.10.0.0/24) holds agents A (.11) and B (.12). The NAT is iptables MASQUERADE with a home
// router's INPUT rule (unsolicited datagrams to the box itself dropped; docs/nat.md "Linux NAT and
// crossing packets"), run twice: port-preserving (a home router) and --random-fully (every
// mapping gets a random port, so the mapping A and B use towards C is never the one the STUN
// server saw: C can reach them only on the peer-reflexive address their pings come from). No
// bridge node: nothing can be relayed, so C reaches A and B through the NAT mappings or not at all.
// Asserts: A and B end on each other's LAN addresses (path_kind direct-lan, endpoint in 10.10.0/24,
// not hairpinned through the NAT's 198.18.0.2); C reaches both on a probed path through the NAT
// (direct-public, endpoints on 198.18.0.2). Prints the time to the first answered ping per ordered
// pair, from the moment the agents are started.
//
// Network rule: traffic stays inside the namespaces this file creates (and their loopbacks).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryUnix } from '../../src/agent/local-http.js';
import type { Netns } from '../helpers/netns.js';
import { requireRoot } from '../helpers/netns.js';
import { MeshLab, until, type AgentProc } from '../helpers/mesh-lab.js';

const reason = requireRoot('mesh-nat netns tests');
const WAN = '198.18.0.2';
const LAN = '10.10.0';

const NATS = [
  { kind: 'MASQUERADE', args: [] },
  { kind: 'MASQUERADE --random-fully', args: ['--random-fully'] },
] as const;

describe.skipIf(reason !== undefined).each(NATS)('plexd mesh: two agents behind one NAT ($kind), one outside', ({ kind, args }) => {
  const mesh = new MeshLab({ net: '198.18.0' });
  mesh.minimal = true;
  mesh.cpExtra = `stun: '${mesh.cpIp}:18080'`;
  const agents = mesh.agents;
  let nat: Netns;

  beforeAll(async () => {
    await mesh.setup(1, 'plexd-mesh-nat-'); // agent 1 = C, outside
    nat = await mesh.lab.namespace();
    const wan = await mesh.plug(nat, WAN);
    await nat.ip('link', 'add', 'lan0', 'type', 'bridge');
    await nat.ip('addr', 'add', `${LAN}.1/24`, 'dev', 'lan0');
    await nat.ip('link', 'set', 'lan0', 'up');
    for (const host of [11, 12]) {
      const ns = await mesh.lab.namespace();
      const v = await mesh.lab.veth(ns, nat, { a: `${LAN}.${host}/24` });
      await nat.ip('link', 'set', v.b, 'master', 'lan0');
      await ns.ip('route', 'add', 'default', 'via', `${LAN}.1`);
      mesh.addAgent(ns, `${LAN}.${host}`);
    }
    await nat.runOk(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    await nat.runOk(['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', wan, '-j', 'MASQUERADE', ...args]);
    await nat.runOk(['iptables', '-A', 'INPUT', '-i', wan, '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP']);
  }, 60_000);
  afterAll(() => mesh.cleanup());

  const peers = (a: AgentProc) => queryUnix(a.socket, '/v1/peers') as Promise<Array<Record<string, unknown>>>;

  it('the two inside use their LAN addresses; the outside one reaches them through the NAT', async () => {
    const [c, a, b] = agents as [AgentProc, AgentProc, AgentProc];
    const t0 = Date.now();
    const meshIps = await mesh.upAll();
    console.log(`[mesh-nat ${kind}] all three registered after ${Date.now() - t0} ms`);
    const firstPacket = new Map<string, number>();
    const name = (x: AgentProc) => (x === c ? 'C(outside)' : x === a ? 'A(inside)' : 'B(inside)');
    try {
      await Promise.all(
        agents.flatMap((x, i) =>
          meshIps.map(async (ip, j) => {
            if (i === j) return;
            await until(`${name(x)} pings ${name(agents[j]!)}`, 40_000, () => mesh.ping(x, ip));
            firstPacket.set(`${name(x)} -> ${name(agents[j]!)}`, Date.now() - t0);
          }),
        ),
      );
      // A and B: each other's LAN address, probed (direct-lan), never the NAT's public address.
      for (const [x, y] of [[a, b], [b, a]] as const) {
        const p = await until(`${name(x)} on ${name(y)}'s LAN address`, 15_000, async () => {
          const e = (await peers(x)).find((q) => q['endpoint'] === `${y.ip}:51820`);
          return e?.['path_kind'] === 'direct-lan' ? e : undefined;
        });
        expect(p['path']).toBe('direct');
        expect(typeof p['rtt_ms']).toBe('number');
      }
      // C: both on a probed path through the NAT's mappings (no bridge exists: nothing is relayed).
      const seen = await until("C's probed paths through the NAT", 15_000, async () => {
        const list = await peers(c);
        return list.length === 2 && list.every((p) => p['path_kind'] === 'direct-public') ? list : undefined;
      });
      for (const p of seen) {
        expect(String(p['endpoint']).startsWith(`${WAN}:`), JSON.stringify(p)).toBe(true);
        expect(p['path']).toBe('direct');
      }
      const learned = ((await mesh.status(c))['nat'] as { probes: { learned: number } }).probes.learned;
      console.log(`[mesh-nat ${kind}] C learned ${learned} peer-reflexive candidate(s); C's paths: ${seen.map((p) => `${p['endpoint']} ${p['path_kind']} ${p['rtt_ms']} ms`).join(', ')}`);
      for (const x of [a, b]) {
        const toC = (await peers(x)).find((q) => q['endpoint'] === `${c.ip}:51820`);
        expect(toC, `${name(x)} -> C: ${JSON.stringify(await peers(x))}`).toBeDefined();
        expect(toC!['path_kind']).toBe('direct-public');
      }
    } catch (err) {
      await mesh.dump();
      throw err;
    }
    for (const [pair, ms] of [...firstPacket].sort()) console.log(`[mesh-nat ${kind}] time to first packet ${pair}: ${ms} ms (from agent start)`);
    expect(firstPacket.size).toBe(6);
  }, 90_000);
});
