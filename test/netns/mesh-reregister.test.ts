// Issue 13: re-registration that changes the mesh IP, on a real TUN. Two `plexd-userspace up`
// agents (minimal config, heartbeat every second, bootstrap tokens in files). A's node is removed
// at the control plane, a new node takes A's freed address, and a fresh token is written to A's
// token file: A's next heartbeat gets 401, A registers again and is handed another mesh IP. Without
// a restart, A's TUN interface must carry the new address (and not the old one), and B must reach
// A on it (kernel ping from B's namespace, answered by A's kernel on its TUN) and A reach B from
// it. Prints the time from the new token to the first answered ping on the new IP.
//
// Network rule: traffic stays inside the namespaces this file creates (and their loopbacks).

import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../helpers/netns.js';
import { MeshLab, until, type AgentProc } from '../helpers/mesh-lab.js';

const reason = requireRoot('mesh-reregister netns tests');

describe.skipIf(reason !== undefined)('plexd mesh: re-registration with a new mesh IP', () => {
  const mesh = new MeshLab();
  mesh.minimal = true;
  mesh.tokenFiles = true;
  const agents = mesh.agents;

  beforeAll(() => mesh.setup(2, 'plexd-mesh-rereg-', { extraConfig: ['heartbeat: {interval: 1s}'] }), 60_000);
  afterAll(() => mesh.cleanup());

  const addresses = async (x: AgentProc) => (await x.ns.runOk(['ip', '-4', '-o', 'addr', 'show', 'dev', x.ifname])).split('\n').map((l) => /inet (\S+)/.exec(l)?.[1]).filter((v) => v !== undefined);

  it('moves the TUN address to the new mesh IP and stays reachable on it, without a restart', async () => {
    const [a, b] = agents as [AgentProc, AgentProc];
    const [oldIp, ipB] = (await mesh.upAll()) as [string, string];
    try {
      await until('A and B ping each other', 30_000, async () => (await mesh.ping(a, ipB)) && (await mesh.ping(b, oldIp)));
      expect(await addresses(a)).toContain(`${oldIp}/32`);
      const oldId = (await mesh.status(a))['node_id'] as string;
      expect(await mesh.cpEval(`return store.removeNode(${JSON.stringify(oldId)}, 'test');`)).toBe('true');
      await until('A says it stays up on cached state', 15_000, async () => /re-registration failed.*staying up on cached state/.test(a.log.join('')));
      const filler = JSON.parse(
        await mesh.cpEval(`return store.register({ project_id: 'default', resource_handle: 'filler', bootstrap_token: store.createToken().token, public_key: ${JSON.stringify(randomBytes(32).toString('base64'))}, nonce: 'filler' });`),
      ) as { mesh_ip: string };
      expect(filler.mesh_ip).toBe(oldIp);

      writeFileSync(mesh.tokenFile(1), await mesh.token());
      const t0 = Date.now();
      const newIp = await until('A registered again with another mesh IP', 15_000, async () => {
        const s = await mesh.status(a);
        return s['node_id'] !== oldId && s['mesh_ip'] !== oldIp ? (s['mesh_ip'] as string) : undefined;
      });
      await until('A and B ping each other on the new IP', 20_000, async () => (await mesh.ping(b, newIp)) && (await mesh.ping(a, ipB)));
      console.log(`[mesh-rereg] mesh IP ${oldIp} -> ${newIp}; first ping both ways ${Date.now() - t0} ms after the new token`);
      const now = await addresses(a);
      expect(now).toContain(`${newIp}/32`);
      expect(now).not.toContain(`${oldIp}/32`);
      expect(a.proc.exitCode).toBeNull(); // the same process throughout
    } catch (err) {
      await mesh.dump();
      throw err;
    }
  }, 90_000);
});
