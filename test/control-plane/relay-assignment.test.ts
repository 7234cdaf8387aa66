// Relay assignment (src/control-plane/relay-assigner.ts, docs/nat.md): the NAT-type rule, path
// reports both ways, the state's bridge block and fallback_endpoint, the events to both ends and
// the bridge, and hostile path reports.

import { describe, expect, it } from 'vitest';
import { formatRfc3339 } from '../../src/api/index.js';
import { harnessEach, openStream, type Registered } from './harness.js';

describe('control plane relay assignment', () => {
  const h = harnessEach({ sweepMs: 60_000 });

  const endpoint = (n: Registered, ep: string, nat: string) =>
    h.call('PUT', `/v1/nodes/${n.node_id}/endpoint`, { endpoint: ep, nat_type: nat, reported_at: formatRfc3339(Date.now()) }, n.auth);
  const state = async (n: Registered) => (await h.call('GET', `/v1/nodes/${n.node_id}/state`, undefined, n.auth)).body;
  const paths = (n: Registered, body: unknown) => h.call('POST', `/v1/nodes/${n.node_id}/peer-paths`, body, n.auth);

  it('relays a pair with a symmetric end through the bridge, tells both ends and the bridge, and revokes on a direct report', async () => {
    const bridge = await h.register({ mode: 'bridge' });
    const a = await h.register();
    const b = await h.register();
    expect((await endpoint(bridge, '198.18.0.10:51820', 'full_cone')).status).toBe(200);
    const streamA = await openStream(h.cp.url, a.node_id, a.auth);
    const streamBridge = await openStream(h.cp.url, bridge.node_id, bridge.auth);
    try {
      await endpoint(a, '203.0.113.1:51820', 'full_cone');
      expect(h.cp.relay!.sessions()).toHaveLength(0); // full_cone x nothing yet
      await endpoint(b, '203.0.113.2:40000', 'symmetric');
      const [s] = h.cp.relay!.sessions();
      expect(s).toMatchObject({ bridgeId: bridge.node_id, relayEndpoint: '198.18.0.10:51821', reason: 'nat-type' });
      const ev = await streamA.next((e) => e.envelope.type === 'relay_session_assigned');
      expect(ev.envelope.payload).toMatchObject({ session_id: s!.sessionId, relay_endpoint: '198.18.0.10:51821' });
      await streamBridge.next((e) => e.envelope.type === 'bridge_config_updated');

      const sa = await state(a);
      expect(sa.bridge.relay.sessions).toEqual([expect.objectContaining({ session_id: s!.sessionId, peer_a_endpoint: '', peer_b_endpoint: '' })]);
      expect(sa.peers.find((p: { node_id: string }) => p.node_id === b.node_id).fallback_endpoint).toBe('198.18.0.10:51821');
      expect((await state(bridge)).bridge.relay.sessions.map((x: { session_id: string }) => x.session_id)).toEqual([s!.sessionId]);

      // Direct works after all: revoked, and the NAT rule leaves the pair alone from then on.
      expect((await paths(a, { paths: [{ node_id: b.node_id, direct: true }] })).status).toBe(200);
      expect(h.cp.relay!.sessions()).toHaveLength(0);
      await streamA.next((e) => e.envelope.type === 'relay_session_revoked');
      h.cp.sweep();
      expect(h.cp.relay!.sessions()).toHaveLength(0);
      expect((await state(a)).bridge).toBeNull();
      expect((await state(bridge)).bridge.relay.sessions).toEqual([]);

      // The path fails: relayed again, by report.
      await paths(b, { paths: [{ node_id: a.node_id, direct: false }] });
      expect(h.cp.relay!.sessions()).toEqual([expect.objectContaining({ reason: 'path-report' })]);
    } finally {
      streamA.close();
      streamBridge.close();
    }
  });

  it('assigns nothing without a bridge and never relays full_cone pairs by NAT type', async () => {
    const a = await h.register();
    const b = await h.register();
    await endpoint(a, '203.0.113.1:51820', 'symmetric');
    await endpoint(b, '203.0.113.2:51820', 'full_cone');
    expect(h.cp.relay!.sessions()).toHaveLength(0);
    expect(h.cp.relay!.counters.noBridge).toBeGreaterThan(0);
    const bridge = await h.register({ mode: 'bridge' });
    await endpoint(bridge, '198.18.0.10:51820', 'full_cone');
    expect(h.cp.relay!.sessions()).toHaveLength(1);
    const c = await h.register();
    await endpoint(c, '203.0.113.3:51820', 'full_cone');
    h.cp.sweep();
    // a (symmetric) with b and c; never b with c.
    expect(h.cp.relay!.sessions().map((s) => [s.a, s.b].sort().join()).sort()).toEqual([[a.node_id, b.node_id].sort().join(), [a.node_id, c.node_id].sort().join()].sort());
  });

  it('refuses malformed path reports and ignores unknown peers', async () => {
    const a = await h.register();
    for (const bad of [{}, { paths: 'x' }, { paths: [{ node_id: 1, direct: true }] }, { paths: [{ node_id: 'x', direct: 'yes' }] }, { paths: new Array(1001).fill({ node_id: 'x', direct: false }) }]) {
      const r = await paths(a, bad);
      expect(r.status, JSON.stringify(bad).slice(0, 80)).toBe(400);
      expect(r.body.code).toBe('validation_failed');
    }
    expect((await paths(a, { paths: [{ node_id: '00000000-0000-4000-8000-000000000000', direct: false }, { node_id: a.node_id, direct: false }] })).status).toBe(200);
    expect(h.cp.relay!.sessions()).toHaveLength(0);
    expect((await h.call('POST', `/v1/nodes/${a.node_id}/peer-paths`, { paths: [] })).status).toBe(401);
  });
});
