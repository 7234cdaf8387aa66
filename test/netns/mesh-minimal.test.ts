// Issue 13: the mesh forms with the minimal upstream-style config. A control plane (with its
// built-in STUN server on the API's address, as `serve` runs it) and three `plexd-userspace up`
// agents in their own namespaces on one bridge (10.77.0.0/24), each configured with api.base_url,
// registration token and resource_handle, wireguard.interface_name and listen_port only: no
// bind_address, no stun_servers. Each agent reports its interface candidates; every pair pings
// directly on its LAN addresses. Prints the time to the first answered ping per ordered pair
// (from the moment the agents are started).
//
// Network rule: traffic stays inside the namespaces this file creates (and their loopbacks).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryUnix } from '../../src/agent/local-http.js';
import { requireRoot } from '../helpers/netns.js';
import { CP_IP, MeshLab, until } from '../helpers/mesh-lab.js';

const skip = requireRoot('mesh-minimal netns tests') !== undefined;

describe.skipIf(skip)('plexd mesh with the minimal config', () => {
  const mesh = new MeshLab();
  mesh.minimal = true;
  mesh.cpExtra = `stun: '${CP_IP}:18080'`;
  const agents = mesh.agents;

  beforeAll(() => mesh.setup(3, 'plexd-mesh-minimal-'));
  afterAll(() => mesh.cleanup());

  it('forms a full direct mesh: every pair pings over its LAN addresses', async () => {
    const t0 = Date.now();
    const meshIps = await mesh.upAll();
    console.log(`all three agents registered with mesh IPs after ${Date.now() - t0} ms`);
    const firstPacket = new Map<string, number>();
    try {
      await Promise.all(
        agents.flatMap((a, i) =>
          meshIps.map(async (ip, j) => {
            if (i === j) return;
            await until(`${a.ip} pings ${ip}`, 45_000, () => mesh.ping(a, ip));
            firstPacket.set(`${a.ip} -> ${agents[j]!.ip}`, Date.now() - t0);
          }),
        ),
      );
    } catch (err) {
      await mesh.dump();
      throw err;
    }
    for (const [pair, ms] of [...firstPacket].sort()) console.log(`time to first packet ${pair}: ${ms} ms (from agent start)`);
    expect(firstPacket.size).toBe(6);

    for (const [i, a] of agents.entries()) {
      const status = await mesh.status(a);
      const nat = status['nat'] as Record<string, unknown>;
      // The only candidate is the LAN address (veth); STUN through the control plane agrees.
      expect(nat['candidates']).toEqual([`${a.ip}:51820`]);
      expect(nat['stun_servers']).toEqual([`${CP_IP}:18080`]);
      expect(nat['endpoint']).toBe(`${a.ip}:51820`);
      const peers = (await queryUnix(a.socket, '/v1/peers')) as Array<Record<string, unknown>>;
      expect(peers).toHaveLength(2);
      for (const p of peers) {
        const other = agents.find((x, k) => k !== i && p['endpoint'] === `${x.ip}:51820`);
        expect(other, JSON.stringify(p)).toBeDefined();
        expect(p['path']).toBe('direct');
        expect(p['candidates']).toEqual([p['endpoint']]);
        expect(p['path_problem']).toBeNull();
      }
      expect(status['path_problems']).toEqual([]);
    }
  });
});
