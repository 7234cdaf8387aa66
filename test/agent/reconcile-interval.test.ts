// reconcile.interval (issue 13, as upstream): the agent pulls state periodically also while its
// event stream is connected, so a missed event heals within one period.

import { afterAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import type { ControlPlane } from '../../src/control-plane/server.js';
import { silentLogger } from '../../src/log/logger.js';
import { loopbackAgentConfig, startControlPlane, stopMesh } from './loopback-mesh.js';
import { until } from '../helpers/wait.js';

describe('periodic reconcile', () => {
  let dir: string | undefined;
  let cp: ControlPlane | undefined;
  const agents: Agent[] = [];
  afterAll(() => stopMesh(agents, cp, dir));

  it('pulls state every reconcile.interval while the stream is connected', async () => {
    ({ dir, cp } = await startControlPlane('plexd-reconcile-interval-', { pollMs: 50 }));
    const config = loopbackAgentConfig(cp.url, dir, 0, 'ri-0', [['registration.token', cp.store.createToken().token], ['reconcile.interval', '200ms']]);
    const a = await Agent.start({ config, logger: silentLogger, env: {}, health: false, nodeApi: false });
    agents.push(a);
    await until('stream connected', 5000, () => a.events.connected);
    const before = a.counters.reconciles;
    await until('three more state pulls', 5000, () => a.counters.reconciles >= before + 3);
    expect(a.events.connected).toBe(true);
  });
});
