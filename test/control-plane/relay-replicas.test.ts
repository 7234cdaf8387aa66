// Relay sessions across replicas (src/control-plane/relay-assigner.ts, issue 20): two `serve`
// processes on one PostgreSQL database agree on the sessions, whichever of them assigned one;
// runs in the unit-pg project only (it needs the project's PostgreSQL server).

import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatRfc3339 } from '../../src/api/index.js';
import { ManualClock } from '../../src/io/clock.js';
import { RELAY_SESSION_TTL_MS } from '../../src/control-plane/relay-assigner.js';
import { createControlPlane, type ControlPlane } from '../../src/control-plane/server.js';
import { harnessEach, openStream, testPostgresUrl, type Registered } from './harness.js';

const onPostgres = testPostgresUrl() !== undefined;

describe.skipIf(!onPostgres)('relay sessions shared by replicas on one database', () => {
  const clock = new ManualClock(0, Date.now());
  // Replica A is the harness's server; B is a second one on the same database.
  const h = harnessEach({ sweepMs: 60_000, clock }, { open: true });
  let replicaB: ControlPlane | undefined;
  afterEach(async () => {
    await replicaB?.close();
    replicaB = undefined;
  });
  const startB = async (): Promise<ControlPlane> => {
    replicaB = await createControlPlane({ db: h.dbFile, secretsKeyFile: join(h.dir, 'cp.db.secrets.key'), listen: '127.0.0.1:0', insecureHttp: true, pollMs: 50, sweepMs: 60_000, clock });
    return replicaB;
  };

  const call = async (cp: ControlPlane, method: string, path: string, body: unknown, auth: Record<string, string>) => {
    const res = await fetch(cp.url + path, { method, headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
  };
  const endpoint = (cp: ControlPlane, n: Registered, ep: string, nat: string) =>
    call(cp, 'PUT', `/v1/nodes/${n.node_id}/endpoint`, { endpoint: ep, nat_type: nat, reported_at: formatRfc3339(clock.wallMs()) }, n.auth);
  const state = async (cp: ControlPlane, n: Registered) => (await call(cp, 'GET', `/v1/nodes/${n.node_id}/state`, undefined, n.auth)).body;
  const paths = (cp: ControlPlane, n: Registered, list: { node_id: string; direct: boolean }[]) => call(cp, 'POST', `/v1/nodes/${n.node_id}/peer-paths`, { paths: list }, n.auth);

  it('a session assigned through one replica is in the other\'s state pulls and streams, and a report there assigns no second one', async () => {
    const a = h.cp;
    const b = await startB();
    const bridge = await h.register({ mode: 'bridge' });
    const [x, y] = [await h.register(), await h.register()];
    expect((await endpoint(a, bridge, '198.18.0.10:51820', 'full_cone')).status).toBe(200);
    await endpoint(a, x, '203.0.113.1:51820', 'full_cone');
    const streamX = await openStream(b.url, x.node_id, x.auth); // on the replica that does not assign
    try {
      await endpoint(a, y, '203.0.113.2:40000', 'symmetric');
      const [s] = a.relay!.sessions();
      expect(s).toMatchObject({ bridgeId: bridge.node_id, relayPort: 51900, reason: 'nat-type' });
      // B: the same session in both ends' and the bridge's pulls, the peer's fallback, the stream.
      const sx = await state(b, x);
      expect(sx.bridge.relay.sessions).toEqual([expect.objectContaining({ session_id: s!.sessionId, relay_port: 51900, binding_key: s!.bindingKey })]);
      expect(sx.peers.find((p: { node_id: string }) => p.node_id === y.node_id).fallback_endpoint).toBe('198.18.0.10:51900');
      expect(sx.peers.map((p: { node_id: string }) => p.node_id)).toContain(bridge.node_id); // the relaying bridge is a peer (issue 23)
      expect((await state(b, y)).bridge.relay.sessions.map((r: { session_id: string }) => r.session_id)).toEqual([s!.sessionId]);
      expect((await state(b, bridge)).bridge.relay.sessions.map((r: { session_id: string }) => r.session_id)).toEqual([s!.sessionId]);
      const ev = await streamX.next((e) => e.envelope.type === 'relay_session_assigned');
      expect(ev.envelope.payload).toMatchObject({ session_id: s!.sessionId });

      // Reports on B for the relayed pair (both ends) and a re-evaluation there: still one session.
      expect((await paths(b, x, [{ node_id: y.node_id, direct: false }])).status).toBe(200);
      expect((await paths(b, y, [{ node_id: x.node_id, direct: false }])).status).toBe(200);
      await endpoint(b, y, '203.0.113.2:40001', 'symmetric');
      b.relay!.evaluate();
      expect(b.relay!.counters.assigned).toBe(0);
      expect(b.relay!.sessions().map((r) => r.sessionId)).toEqual([s!.sessionId]);

      // A direct report on B revokes A's session for both.
      await paths(b, x, [{ node_id: y.node_id, direct: true }]);
      expect(a.relay!.sessions()).toEqual([]);
      expect((await state(a, x)).bridge).toBeNull();
      // ... and the pair stays direct on A too (the report is shared, not B's memory).
      a.relay!.evaluate();
      expect(a.relay!.sessions()).toEqual([]);
    } finally {
      streamX.close();
    }
  });

  it('gives sessions assigned on different replicas distinct ports of one bridge', async () => {
    const a = h.cp;
    const b = await startB();
    const bridge = await h.register({ mode: 'bridge' });
    await endpoint(a, bridge, '198.18.0.10:51820', 'full_cone');
    const [x, y, z] = [await h.register(), await h.register(), await h.register()];
    await Promise.all([paths(a, x, [{ node_id: y.node_id, direct: false }]), paths(b, x, [{ node_id: z.node_id, direct: false }])]);
    const sessions = a.relay!.sessions();
    expect(sessions.map((s) => s.relayPort).sort()).toEqual([51900, 51901]);
    expect(new Set((await state(b, x)).bridge.relay.sessions.map((s: { relay_port: number }) => s.relay_port))).toEqual(new Set([51900, 51901]));
    // The database refuses a second session for a pair or a port, whatever a replica believes.
    const [s] = sessions;
    const insert = 'INSERT INTO relay_sessions (session_id, project_id, peer_a, peer_b, bridge_id, relay_port, relay_endpoint, binding_key, expires_at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
    const row = (id: string, pa: string, pb: string, port: number) => [id, 'default', pa, pb, s!.bridgeId, port, '198.18.0.10:1', Buffer.alloc(60), 0, 'nat-type'];
    expect(() => b.store.db.prepare(insert).run(...row('dup-pair', s!.a, s!.b, 51999))).toThrow(/unique/i);
    expect(() => b.store.db.prepare(insert).run(...row('dup-port', 'p', 'q', s!.relayPort))).toThrow(/unique/i);
  });

  it('refreshes and expires sessions from either replica', async () => {
    const a = h.cp;
    const b = await startB();
    const bridge = await h.register({ mode: 'bridge' });
    await endpoint(a, bridge, '198.18.0.10:51820', 'full_cone');
    const [x, y] = [await h.register(), await h.register()];
    await paths(a, x, [{ node_id: y.node_id, direct: false }]);
    const [s] = a.relay!.sessions();
    // Less than 2 minutes left: B's sweep refreshes it, and A sees the new expiry.
    clock.advance(RELAY_SESSION_TTL_MS - 60_000);
    b.relay!.evaluate();
    expect(a.relay!.sessions()).toEqual([expect.objectContaining({ sessionId: s!.sessionId, expiresAt: clock.wallMs() + RELAY_SESSION_TTL_MS })]);
    a.relay!.evaluate(); // not refreshed twice
    expect(a.relay!.counters.refreshed + b.relay!.counters.refreshed).toBe(1);
    // Nobody refreshed it in time (every replica down): revoked, and the still failing pair gets a new one.
    clock.advance(RELAY_SESSION_TTL_MS + 1);
    a.relay!.evaluate();
    const [again] = b.relay!.sessions();
    expect(again).toMatchObject({ a: s!.a, b: s!.b, reason: 'path-report' });
    expect(again!.sessionId).not.toBe(s!.sessionId);
  });
});
