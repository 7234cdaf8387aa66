// Issue 11 item 2 at the agent: a state listing one public key for two nodes is refused as a
// whole (logged, counted), and the last good state stays on the device; the next sound state
// applies. The control plane refuses such keys itself (public-key.test.ts); here its database is
// altered behind its back, as a buggy or older server would serve it.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import type { ControlPlane } from '../../src/control-plane/server.js';
import { createLogger } from '../../src/log/logger.js';
import { randomKey } from '../control-plane/harness.js';
import { loopbackAgentConfig, startControlPlane, stopMesh } from './loopback-mesh.js';
import { until } from '../helpers/wait.js';

const lines: string[] = [];
const log = createLogger('info', '', (l) => void lines.push(l));

describe('agent reconcile with duplicate public keys', () => {
  let dir: string;
  let cp: ControlPlane;
  let agent: Agent;
  const keys = () => [...agent.iface.device.snapshot().peers].map((p) => Buffer.from(p.publicKey).toString('base64')).sort();

  beforeAll(async () => {
    ({ dir, cp } = await startControlPlane('plexd-dupkeys-', { pollMs: 50 }));
    const config = loopbackAgentConfig(cp.url, dir, 0, 'dup-0', [['registration.token', cp.store.createToken().token]]);
    agent = await Agent.start({ config, logger: log, env: {}, heartbeatIntervalMs: 30_000, health: false, nodeApi: false });
  }, 30_000);
  afterAll(() => stopMesh(agent === undefined ? [] : [agent], cp, dir));

  it('refuses the state, keeps the last good one, and applies the next sound one', async () => {
    const reg = (key: string) => cp.store.register({ project_id: 'default', resource_handle: 'h', bootstrap_token: cp.store.createToken().token, nonce: randomUUID(), public_key: key }).node_id;
    const [kb, kc] = [randomKey(), randomKey()];
    reg(kb);
    const c = reg(kc);
    await agent.reconcileNow();
    expect(keys()).toEqual([kb, kc].sort());

    // C now claims B's key, as an older server allowed.
    cp.store.db.exec('DROP INDEX nodes_public_key');
    cp.store.db.prepare('UPDATE nodes SET public_key = ? WHERE node_id = ?').run(kb, c);
    await agent.reconcileNow();
    expect(agent.counters.statesRefused).toBe(1);
    expect(keys()).toEqual([kb, kc].sort());
    expect(lines.some((l) => l.includes('state refused') && l.includes(kb))).toBe(true);

    const kc2 = randomKey();
    cp.store.db.prepare('UPDATE nodes SET public_key = ? WHERE node_id = ?').run(kc2, c);
    await agent.reconcileNow();
    await until('the sound state is applied', 3000, () => keys().join() === [kb, kc2].sort().join());
    expect(agent.counters.statesRefused).toBe(1);
  });
});
