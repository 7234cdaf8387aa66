// Relay assignment (src/control-plane/relay-assigner.ts, docs/nat.md): the NAT-type rule, path
// reports both ways, the state's bridge block and fallback_endpoint, the events to both ends and
// the bridge, and hostile path reports.

import { describe, expect, it } from 'vitest';
import { formatRfc3339 } from '../../src/api/index.js';
import { harnessEach, openStream, type Registered } from './harness.js';

describe('control plane relay assignment', () => {
  const h = harnessEach({ sweepMs: 60_000 }, { open: true });

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
      // The session's own port on the bridge: relay_listen_port + 1 for the first.
      expect(s).toMatchObject({ bridgeId: bridge.node_id, relayPort: 51900, relayEndpoint: '198.18.0.10:51900', reason: 'nat-type' });
      const ev = await streamA.next((e) => e.envelope.type === 'relay_session_assigned');
      expect(ev.envelope.payload).toMatchObject({ session_id: s!.sessionId, relay_endpoint: '198.18.0.10:51900', relay_port: 51900 });
      // The binding key never travels in an event (they are logged and replayed by seq).
      expect(ev.envelope.payload).not.toHaveProperty('binding_key');
      await streamBridge.next((e) => e.envelope.type === 'bridge_config_updated');

      // The two ends and the bridge get the session with the same binding key (32 random bytes) in
      // their state pulls.
      const sa = await state(a);
      expect(sa.bridge.relay.sessions).toEqual([expect.objectContaining({ session_id: s!.sessionId, peer_a_endpoint: '', peer_b_endpoint: '', relay_port: 51900 })]);
      expect(sa.peers.find((p: { node_id: string }) => p.node_id === b.node_id).fallback_endpoint).toBe('198.18.0.10:51900');
      const bridgeSessions = (await state(bridge)).bridge.relay.sessions;
      expect(bridgeSessions.map((x: { session_id: string }) => x.session_id)).toEqual([s!.sessionId]);
      const key = sa.bridge.relay.sessions[0].binding_key as string;
      expect(Buffer.from(key, 'base64')).toHaveLength(32);
      expect((await state(b)).bridge.relay.sessions[0].binding_key).toBe(key);
      expect(bridgeSessions[0].binding_key).toBe(key);

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
    // One bridge, two sessions of a: each its own port, and a falls back to a different endpoint per peer.
    const ports = h.cp.relay!.sessions().map((s) => s.relayPort).sort();
    expect(ports).toEqual([51900, 51901]);
    const sa = await state(a);
    const fb = (id: string) => sa.peers.find((p: { node_id: string }) => p.node_id === id).fallback_endpoint;
    expect(new Set([fb(b.node_id), fb(c.node_id)])).toEqual(new Set(['198.18.0.10:51900', '198.18.0.10:51901']));
    expect(sa.bridge.relay.sessions.map((x: { relay_port: number }) => x.relay_port).sort()).toEqual([51900, 51901]);
  });

  it('reuses a released port and stops at the per-bridge session limit', async () => {
    await h.start({ relay: { maxSessionsPerBridge: 2 } });
    const bridge = await h.register({ mode: 'bridge' });
    await endpoint(bridge, '198.18.0.10:51820', 'full_cone');
    const a = await h.register();
    const [b, c, d] = [await h.register(), await h.register(), await h.register()];
    for (const [n, i] of [[b, 2], [c, 3], [d, 4]] as const) await endpoint(n, `203.0.113.${i}:51820`, 'full_cone');
    await endpoint(a, '203.0.113.1:51820', 'symmetric');
    h.cp.sweep();
    // Three pairs want a relay, the bridge takes two: distinct ports from its range.
    expect(h.cp.relay!.sessions().map((s) => s.relayPort).sort()).toEqual([51900, 51901]);
    expect(h.cp.relay!.counters.noBridge).toBeGreaterThan(0);
    // One revoked: its port goes to the waiting pair.
    const first = h.cp.relay!.sessions().find((s) => s.relayPort === 51900)!;
    const other = first.a === a.node_id ? first.b : first.a;
    await paths(a, { paths: [{ node_id: other, direct: true }] });
    h.cp.sweep();
    const after = h.cp.relay!.sessions();
    expect(after.map((s) => s.relayPort).sort()).toEqual([51900, 51901]);
    expect(after.find((s) => s.relayPort === 51900)!.sessionId).not.toBe(first.sessionId);
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
