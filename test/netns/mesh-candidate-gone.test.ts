// Issue 13: a candidate that goes away moves the path within 15 s, through real agents. Two
// `plexd-userspace up` agents (minimal config, no STUN offered: local candidates only) reach the
// control plane over the hub bridge, and each other over two direct links, lk1 (10.81.0.0/24) and
// lk2 (10.82.0.0/24); `nat.candidate_interfaces: ["lk*"]` keeps the hub address out of the
// candidates, so the probed path is on one of the two links. Once pings flow, the address the
// path uses is removed from B (`ip addr del`): both agents must move to the other link and pings
// flow again within 15 s (the prober's keepalive ping every 5 s, 2 s to answer). Prints the time
// to first packet and the time to move.
//
// Network rule: traffic stays inside the namespaces this file creates (and their loopbacks).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryUnix } from '../../src/agent/local-http.js';
import { PING_SPACING_MS, PINGS_PER_ROUND, PONG_TIMEOUT_MS } from '../../src/agent/path-prober.js';
import { requireRoot } from '../helpers/netns.js';
import { MeshLab, until, type AgentProc } from '../helpers/mesh-lab.js';

const reason = requireRoot('mesh-candidate-gone netns tests');
const LINKS = ['10.81.0', '10.82.0'] as const;
/** How long a probe round lasts (ms). */
const ROUND_MS = (PINGS_PER_ROUND - 1) * PING_SPACING_MS + PONG_TIMEOUT_MS;

describe.skipIf(reason !== undefined)('plexd mesh: a candidate that goes away', () => {
  const mesh = new MeshLab();
  mesh.minimal = true;
  const agents = mesh.agents;

  beforeAll(async () => {
    await mesh.setup(2, 'plexd-mesh-gone-', { extraConfig: ['nat: {candidate_interfaces: ["lk*"]}'] });
    const [a, b] = agents as [AgentProc, AgentProc];
    for (const [i, net] of LINKS.entries()) {
      // Created inside the namespaces (they go with them); the same name on both sides.
      await a.ns.ip('link', 'add', `lk${i + 1}`, 'type', 'veth', 'peer', 'name', `lk${i + 1}`, 'netns', b.ns.name);
      for (const [x, host] of [[a, 1], [b, 2]] as const) {
        await x.ns.ip('addr', 'add', `${net}.${host}/24`, 'dev', `lk${i + 1}`);
        await x.ns.ip('link', 'set', `lk${i + 1}`, 'up');
      }
    }
  }, 60_000);
  afterAll(() => mesh.cleanup());

  const peerEndpoint = async (x: AgentProc) => ((await queryUnix(x.socket, '/v1/peers')) as Array<Record<string, unknown>>)[0];

  it('moves to the other link within 15 s when the address in use is removed', async () => {
    const [a, b] = agents as [AgentProc, AgentProc];
    const t0 = Date.now();
    const [ipA, ipB] = (await mesh.upAll()) as [string, string];
    try {
      await until('A pings B', 30_000, () => mesh.ping(a, ipB));
      const first = Date.now() - t0;
      // Both on a probed LAN path over lk1 or lk2.
      const onLink = (p: Record<string, unknown> | undefined) => p?.['path_kind'] === 'direct-lan' && LINKS.some((n) => String(p['endpoint']).startsWith(`${n}.`));
      await until('A on a probed link path', 15_000, async () => onLink(await peerEndpoint(a)));
      await until('B on a probed link path', 15_000, async () => onLink(await peerEndpoint(b)));
      // Let the first probe round end (its RTTs are noisy while the agents start and may move the
      // path once): then both sides must agree on one link, the one cut below.
      await new Promise((r) => setTimeout(r, ROUND_MS + 500));
      const pa = (await peerEndpoint(a))!;
      const pb = (await peerEndpoint(b))!;
      expect(pa['candidates']).toHaveLength(2);
      const used = LINKS.findIndex((n) => String(pa['endpoint']) === `${n}.2:51820`);
      expect(used, JSON.stringify([pa, pb])).toBeGreaterThanOrEqual(0);
      expect(pb['endpoint']).toBe(`${LINKS[used]}.1:51820`);
      const other = LINKS[1 - used]!;
      console.log(`[mesh-gone] first ping A -> B ${first} ms after start; path on lk${used + 1} (${String(pa['endpoint'])})`);

      await b.ns.ip('addr', 'del', `${LINKS[used]}.2/24`, 'dev', `lk${used + 1}`);
      const cut = Date.now();
      await until('A and B on the other link, pings flowing', 15_000, async () => {
        const [x, y] = [await peerEndpoint(a), await peerEndpoint(b)];
        if (x?.['endpoint'] !== `${other}.2:51820` || y?.['endpoint'] !== `${other}.1:51820`) return undefined;
        return (await mesh.ping(a, ipB)) && (await mesh.ping(b, ipA));
      });
      const moved = Date.now() - cut;
      console.log(`[mesh-gone] address removed -> both on lk${2 - used} and pings both ways after ${moved} ms`);
      expect(moved).toBeLessThan(15_000);
    } catch (err) {
      await mesh.dump();
      throw err;
    }
  }, 90_000);
});
