// Upstream plexd's complete example config (test/compat/upstream-config.yaml, source named there)
// runs our agent unchanged: it parses with exactly one warning naming the upstream keys we do not
// act on, and two agents started on it (plus the flags a loopback lab needs) register with the
// in-process control plane and reach each other under an allow-all policy. Under the file's
// policy.enabled: true, the same mesh passes nothing before that policy exists.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { resolveConfig } from '../../src/agent/config.js';
import { ALLOW_ALL_MESH_RULES } from '../../src/control-plane/policy.js';
import type { ControlPlane } from '../../src/control-plane/server.js';
import { createLogger } from '../../src/log/logger.js';
import { startControlPlane, stopMesh } from '../agent/loopback-mesh.js';
import { until } from '../helpers/wait.js';

const FILE = join(import.meta.dirname, 'upstream-config.yaml');
const text = readFileSync(FILE, 'utf8');
const log = createLogger('silent', '');

describe('upstream example config', () => {
  let dir: string;
  let cp: ControlPlane;
  const agents: Agent[] = [];
  const warnings: string[] = [];

  beforeAll(async () => {
    ({ dir, cp } = await startControlPlane('plexd-upstream-config-', { logger: log }));
    for (let i = 0; i < 2; i++) {
      const flags = new Map<string, string>([
        ['api.base_url', cp.url],
        ['data_dir', join(dir, `n${i}`)],
        ['registration.resource_handle', `upstream-${i}`],
        ['registration.token_value', cp.store.createToken().token],
        ['wireguard.packet_callback', 'true'],
        ['wireguard.bind_address', '127.0.0.1'],
        ['wireguard.listen_port', '0'],
        ['node_api.socket_path', join(dir, `n${i}.sock`)],
        ['health.listen', '127.0.0.1:0'],
      ]);
      const config = resolveConfig({ fileText: text, fileName: FILE, env: {}, flags, warn: (w) => warnings.push(w) });
      agents.push(await Agent.start({ config, logger: log }));
    }
  }, 30_000);

  afterAll(() => stopMesh(agents, cp, dir));

  it('parses with one warning per agent naming every ignored upstream key', () => {
    expect(warnings).toHaveLength(2);
    for (const k of ['api.connect_timeout', 'node_api.shutdown_timeout', 'upgrade.signing_issuer', 'nat.timeout', 'policy.chain_name', 'tunnel.max_sessions']) {
      expect(warnings[0]).toContain(k);
    }
    expect(warnings[0]).not.toMatch(/actions\.enabled|heartbeat\.interval|node_api\.socket_path|node_api\.http_listen|policy\.enabled|max_retry_duration/);
    const c = agents[0]!.config;
    expect(c).toMatchObject({ mode: 'node', logLevel: 'info', heartbeat: { intervalS: 30 }, policy: { enabled: true }, registration: { tokenEnv: 'PLEXD_BOOTSTRAP_TOKEN', maxRetryS: 300 } });
  });

  it('registers both agents, which know no peer and pass nothing before a policy (deny by default)', async () => {
    const [a, b] = agents as [Agent, Agent];
    await until('both agents registered', 15_000, () => agents.every((x) => x.identity?.mesh_ip !== undefined));
    // No policy, no visible peer (issue 23).
    for (const x of agents) expect(x.peers()).toEqual([]);
    expect(a.policy.report().mode).toBe('default-deny');
    expect(await a.iface.ping(b.identity.mesh_ip, 500)).toBeUndefined();
  });

  it('reaches the peer once an allow-all policy is set', async () => {
    const [a, b] = agents as [Agent, Agent];
    cp.store.setPolicy('default', ALLOW_ALL_MESH_RULES);
    await until('A reaches B', 10_000, async () => (await a.iface.ping(b.identity.mesh_ip, 1000)) !== undefined);
    expect(await b.iface.ping(a.identity.mesh_ip, 1000)).toBeTypeOf('number');
  });
});
