// Two real agents in one process (packet callback on loopback, in-process control plane with its
// metrics listener): each agent's /metrics on its own health listener shows only its own peer (per
// instance registries, several agents per process), the peer's bytes both ways and a handshake
// after a ping, streaming delivery and a heartbeat sample; the control plane's shows both
// registrations and both nodes online.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import type { ControlPlane } from '../../src/control-plane/server.js';
import { silentLogger } from '../../src/log/logger.js';
import { parsePromText, sampleValue, type PromFamily } from '../helpers/prom-text.js';
import { until } from '../helpers/wait.js';
import { loopbackAgentConfig, startControlPlane, stopMesh } from './loopback-mesh.js';

function peerValues(f: Map<string, PromFamily>, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of f.get(name)?.samples ?? []) out.set(s.labels['peer']!, s.value);
  return out;
}

const scrape = async (port: number): Promise<Map<string, PromFamily>> => {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  return parsePromText(await res.text());
};

describe('Prometheus /metrics of in-process agents', () => {
  let dir: string | undefined;
  let cp: ControlPlane | undefined;
  const agents: Agent[] = [];

  beforeAll(async () => {
    ({ dir, cp } = await startControlPlane('plexd-prom-agents-', { metricsListen: '127.0.0.1:0' }, true));
    for (let i = 0; i < 2; i++) {
      const config = loopbackAgentConfig(cp.url, dir, i, `prom-node-${i}`, [['registration.token', cp.store.createToken().token], ['health.listen', '127.0.0.1:0']]);
      agents.push(await Agent.start({ config, logger: silentLogger, nodeApi: false }));
    }
  }, 30_000);
  afterAll(() => stopMesh(agents, cp, dir));

  it('each agent exports its own peer with traffic and a handshake; the control plane its nodes', async () => {
    const [a, b] = agents as [Agent, Agent];
    await until('b is a peer of a', 10_000, () => [...a.iface.device.peers()].length === 1 && [...b.iface.device.peers()].length === 1, 50);
    await until('a pings b', 10_000, async () => (await a.iface.ping(b.identity.mesh_ip, 1000)) !== undefined, 50);
    expect(await b.iface.ping(a.identity.mesh_ip, 2000)).toBeTypeOf('number');
    for (const [self, other] of [[a, b], [b, a]] as const) {
      const f = await until('a heartbeat sample', 10_000, async () => {
        const m = await scrape(self.healthPort);
        return (sampleValue(m, 'plexd_agent_heartbeat_duration_seconds_count', { result: 'ok' }) ?? 0) > 0 ? m : undefined;
      }, 50);
      const rx = peerValues(f, 'plexd_agent_peer_receive_bytes_total');
      expect([...rx.keys()]).toEqual([other.identity.node_id]);
      expect(rx.get(other.identity.node_id)).toBeGreaterThan(0);
      expect(peerValues(f, 'plexd_agent_peer_transmit_bytes_total').get(other.identity.node_id)).toBeGreaterThan(0);
      expect(peerValues(f, 'plexd_agent_peer_handshakes_total').get(other.identity.node_id)).toBeGreaterThanOrEqual(1);
      expect(peerValues(f, 'plexd_agent_peer_last_handshake_age_seconds').get(other.identity.node_id)).toBeLessThan(60);
      expect(sampleValue(f, 'plexd_agent_event_delivery_mode', { mode: 'streaming' })).toBe(1);
      expect(sampleValue(f, 'plexd_agent_policy_accepted_packets_total', { direction: 'inbound' })).toBeGreaterThan(0);
    }
    const res = await fetch(cp!.metricsUrl!);
    const f = parsePromText(await res.text());
    expect(sampleValue(f, 'plexd_control_plane_registrations_total')).toBe(2);
    expect(sampleValue(f, 'plexd_control_plane_nodes', { status: 'online' })).toBe(2);
  });
});
