// Issue 18, Prometheus: a real agent pair (`plexd-userspace up` in two namespaces, mesh-lab.ts)
// with traffic between them; `curl -s 127.0.0.1:9101/metrics` inside each agent's namespace parses
// with the strict test parser and shows the peer's bytes both ways > 0, a completed handshake, a
// direct path, streaming event delivery and a heartbeat latency sample; the control plane's own
// listener (metricsListen 10.77.0.1:9102, curl from the hub) shows both nodes online, two
// registrations, two SSE streams and heartbeats under their route pattern.
//
// Network rule: traffic stays inside the namespaces this file creates (and their loopbacks).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../helpers/netns.js';
import { CP_IP, MeshLab, until } from '../helpers/mesh-lab.js';
import { parsePromText, sampleValue, type PromFamily } from '../helpers/prom-text.js';

const skip = requireRoot('metrics netns tests') !== undefined;

function peerValues(f: Map<string, PromFamily>, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of f.get(name)?.samples ?? []) out.set(s.labels['peer']!, s.value);
  return out;
}

describe.skipIf(skip)('Prometheus /metrics on a real agent pair', () => {
  const mesh = new MeshLab();
  mesh.healthListen = '127.0.0.1:9101';
  mesh.cpExtra = `metricsListen: '${CP_IP}:9102'`;

  beforeAll(() => mesh.setup(2, 'plexd-metrics-'));
  afterAll(() => mesh.cleanup());

  it('agents and the control plane expose parseable metrics with the traffic in them', async () => {
    const meshIps = await mesh.upAll();
    const [a, b] = mesh.agents as [(typeof mesh.agents)[0], (typeof mesh.agents)[0]];
    try {
      await until('a pings b', 45_000, () => mesh.ping(a, meshIps[1]!));
      await until('b pings a', 45_000, () => mesh.ping(b, meshIps[0]!));
    } catch (err) {
      await mesh.dump();
      throw err;
    }
    const nodeIds = await Promise.all([a, b].map(async (x) => (await mesh.status(x))['node_id'] as string));
    for (const [i, x] of [a, b].entries()) {
      const other = nodeIds[1 - i]!;
      // A heartbeat has been answered by now (the first goes out at start); wait for it if not.
      const f = await until(`${x.ip} metrics with a heartbeat`, 20_000, async () => {
        const parsed = parsePromText(await x.ns.runOk(['curl', '-s', '--max-time', '5', 'http://127.0.0.1:9101/metrics']));
        return (sampleValue(parsed, 'plexd_agent_heartbeat_duration_seconds_count', { result: 'ok' }) ?? 0) > 0 ? parsed : undefined;
      });
      expect(peerValues(f, 'plexd_agent_peer_receive_bytes_total').get(other)).toBeGreaterThan(0);
      expect(peerValues(f, 'plexd_agent_peer_transmit_bytes_total').get(other)).toBeGreaterThan(0);
      // One side initiated: both count the completed handshake.
      expect(peerValues(f, 'plexd_agent_peer_handshakes_total').get(other)).toBeGreaterThanOrEqual(1);
      const age = peerValues(f, 'plexd_agent_peer_last_handshake_age_seconds').get(other);
      expect(age).toBeGreaterThanOrEqual(0);
      expect(age).toBeLessThan(120);
      expect(sampleValue(f, 'plexd_agent_peer_path', { peer: other, path: 'direct' })).toBe(1);
      expect(sampleValue(f, 'plexd_agent_peers', { path: 'direct' })).toBe(1);
      expect(sampleValue(f, 'plexd_agent_event_delivery_mode', { mode: 'streaming' })).toBe(1);
      expect(sampleValue(f, 'plexd_agent_policy_enforcing')).toBe(1);
      expect(sampleValue(f, 'plexd_agent_policy_accepted_packets_total', { direction: 'outbound' })).toBeGreaterThan(0);
      expect(sampleValue(f, 'plexd_agent_ready')).toBe(1);
      expect(f.has('process_resident_memory_bytes')).toBe(true);
      // Not on other methods.
      expect(await x.ns.runOk(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', 'http://127.0.0.1:9101/metrics'])).toBe('405');
    }
    const cp = parsePromText(await mesh.hub!.runOk(['curl', '-s', '--max-time', '5', `http://${CP_IP}:9102/metrics`]));
    expect(sampleValue(cp, 'plexd_control_plane_registrations_total')).toBe(2);
    expect(sampleValue(cp, 'plexd_control_plane_nodes', { status: 'online' })).toBe(2);
    expect(sampleValue(cp, 'plexd_control_plane_event_streams')).toBe(2);
    expect(sampleValue(cp, 'plexd_control_plane_events_total')).toBeGreaterThan(0);
    expect(sampleValue(cp, 'plexd_control_plane_http_request_duration_seconds_count', { method: 'POST', route: '/v1/nodes/{node_id}/heartbeat', code: '200' })).toBeGreaterThanOrEqual(2);
  });
});
