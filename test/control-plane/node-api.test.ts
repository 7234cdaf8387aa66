import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { encodeNodeCredential, parseStateResponse, signingKeyId, verifyEnvelope } from '../../src/api/index.js';
import { ControlPlaneStore } from '../../src/control-plane/store.js';
import { createExecution } from '../../src/control-plane/actions.js';
import { harnessEach, openStream, randomKey, openMesh } from './harness.js';

const h = harnessEach();

const now = () => new Date().toISOString();

describe('bearer authentication', () => {
  it('refuses missing, malformed, wrong and other-node credentials', async () => {
    const a = await h.register();
    const b = await h.register();
    const state = (id: string, headers: Record<string, string>) => h.call('GET', `/v1/nodes/${id}/state`, undefined, headers);
    expect((await state(a.node_id, {})).body.code).toBe('unauthorized');
    expect((await state(a.node_id, { authorization: 'Bearer nope' })).status).toBe(401);
    expect((await state(a.node_id, { authorization: `Basic ${a.bearer}` })).status).toBe(401);
    const wrongNsk = encodeNodeCredential(a.node_id, new Uint8Array(32).fill(9));
    expect((await state(a.node_id, { authorization: `Bearer ${wrongNsk}` })).status).toBe(401);
    const other = await state(b.node_id, a.auth);
    expect(other.status).toBe(403);
    expect(other.body.code).toBe('forbidden');
    const own = await state(a.node_id, a.auth);
    expect(own.status).toBe(200);
  });

  it('refuses the right node and nsk under another environment label (nsk_test_ is not nsk_live_)', async () => {
    const a = await h.register();
    expect(a.bearer.startsWith('nsk_live_')).toBe(true);
    const test = encodeNodeCredential(a.node_id, Buffer.from(a.nsk, 'base64'), 'test');
    const r = await h.call('GET', `/v1/nodes/${a.node_id}/state`, undefined, { authorization: `Bearer ${test}` });
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ code: 'unauthorized', detail: 'credential is for environment "test"; this control plane issues "live"' });
  });
});

describe('node endpoints', () => {
  it('state lists peers with the same PSK on both sides, policy null until set', async () => {
    const a = await h.register();
    const b = await h.register();
    // No policy: deny by default, no node sees another (issue 23).
    const none = await h.call('GET', `/v1/nodes/${a.node_id}/state`, undefined, a.auth);
    expect(none.body.policy).toBeNull();
    expect(none.body.peers).toEqual([]);
    expect(b.peer_snapshot).toEqual([]);
    openMesh(h);
    const sa = await h.call('GET', `/v1/nodes/${a.node_id}/state`, undefined, a.auth);
    const sb = await h.call('GET', `/v1/nodes/${b.node_id}/state`, undefined, b.auth);
    expect(parseStateResponse(sa.body).ok).toBe(true);
    expect(sa.body.bridge).toBeNull();
    expect(sa.body.peers.map((p: { node_id: string }) => p.node_id)).toEqual([b.node_id]);
    expect(sa.body.peers[0].psk).toBe(sb.body.peers[0].psk);
    h.cp.store.setPolicy('default', [{ action: 'allow', protocol: 'tcp', source_cidr: '10.100.0.0/16', destination_cidr: '10.100.0.1/32', ports: { from: 22, to: 22 } }]);
    const withPolicy = await h.call('GET', `/v1/nodes/${a.node_id}/state`, undefined, a.auth);
    expect(withPolicy.body.policy).toMatchObject({ revision_id: '2', fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(withPolicy.body.peers[0].psk).toBe(sb.body.peers[0].psk);
  });

  it('heartbeat accepts a good clock and refuses skew beyond 60 s', async () => {
    const a = await h.register();
    const ok = await h.call('POST', `/v1/nodes/${a.node_id}/heartbeat`, { client_now: now(), binary_checksum: 'ab', binary_version: '0.1.0', nat_summary: {} }, a.auth);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ reconcile: expect.any(Boolean), rotate_keys: false });
    const skewed = await h.call('POST', `/v1/nodes/${a.node_id}/heartbeat`, { client_now: new Date(Date.now() - 61_000).toISOString() }, a.auth);
    expect(skewed.status).toBe(400);
    expect(skewed.body.code).toBe('clock_skew');
  });

  it('endpoint reports reach peers as peer_endpoint_changed', async () => {
    openMesh(h);
    const a = await h.register();
    const b = await h.register();
    const s = await openStream(h.cp.url, b.node_id, b.auth);
    try {
      const r = await h.call('PUT', `/v1/nodes/${a.node_id}/endpoint`, { endpoint: '192.0.2.1:51820', nat_type: 'full_cone', reported_at: now() }, a.auth);
      expect(r.body.stale_after).toBe(120);
      const e = await s.next((x) => x.envelope.type === 'peer_endpoint_changed');
      expect(e.envelope.payload).toEqual({ node_id: a.node_id, endpoint: '192.0.2.1:51820' });
      const st = await h.call('GET', `/v1/nodes/${b.node_id}/state`, undefined, b.auth);
      expect(st.body.peers[0].endpoint).toBe('192.0.2.1:51820');
    } finally {
      s.close();
    }
  });

  it('key rotation, capabilities, executions and deregistration', async () => {
    openMesh(h);
    const a = await h.register();
    const b = await h.register();
    const key = randomKey();
    const rot = await h.call('POST', '/v1/keys/rotate', { new_public_key: key }, a.auth);
    expect(rot.status).toBe(200);
    expect(rot.body.wrap_key_version).toBe(2);
    expect((await h.call('POST', '/v1/keys/rotate', { new_public_key: key }, a.auth)).body).toEqual(rot.body);
    expect((await h.call('PUT', `/v1/nodes/${a.node_id}/capabilities`, { features: ['psk'] }, a.auth)).status).toBe(200);
    const exec = createExecution(h.cp.store, { nodeId: a.node_id, action: 'restart', parameters: {} });
    const report = (status: string) => h.call('POST', `/v1/nodes/${a.node_id}/executions/${exec}`, { status }, a.auth);
    expect((await report('ack')).status).toBe(200);
    expect((await report('pending')).status).toBe(400);
    // A terminal only from started (upstream's callback contract).
    expect((await report('succeeded')).body.code).toBe('invalid_state_transition');
    expect((await report('started')).status).toBe(200);
    expect((await report('succeeded')).body.status).toBe('succeeded');
    expect((await report('started')).body.code).toBe('execution_already_terminal');
    expect((await h.call('POST', `/v1/nodes/${a.node_id}/executions/nope`, { status: 'ack' }, a.auth)).status).toBe(404);
    const sb = await h.call('GET', `/v1/nodes/${b.node_id}/state`, undefined, b.auth);
    expect(sb.body.peers[0].public_key).toBe(key);
    expect((await h.call('POST', `/v1/nodes/${a.node_id}/deregister`, undefined, a.auth)).status).toBe(204);
    expect((await h.call('GET', `/v1/nodes/${a.node_id}/state`, undefined, a.auth)).status).toBe(401);
    expect((await h.call('GET', `/v1/nodes/${b.node_id}/state`, undefined, b.auth)).body.peers).toEqual([]);
  });

  it('marks silent nodes unreachable, then offline and out of their peers lists', async () => {
    let wall = Date.now();
    await h.start({ clock: { now: () => wall, wallMs: () => wall } });
    openMesh(h);
    const a = await h.register();
    const b = await h.register();
    const s = await openStream(h.cp.url, b.node_id, b.auth);
    try {
      const hb = (n: typeof a) => h.call('POST', `/v1/nodes/${n.node_id}/heartbeat`, { client_now: new Date(wall).toISOString() }, n.auth);
      wall += 91_000;
      await hb(b);
      h.cp.sweep();
      expect(h.cp.store.node(a.node_id)?.status).toBe('unreachable');
      wall += 210_000;
      await hb(b);
      h.cp.sweep();
      expect(h.cp.store.node(a.node_id)?.status).toBe('offline');
      await s.next((e) => e.envelope.type === 'peer_removed' && e.envelope.payload.node_id === a.node_id);
      expect((await h.call('GET', `/v1/nodes/${b.node_id}/state`, undefined, b.auth)).body.peers).toEqual([]);
      const back = await hb(a);
      expect(back.body.reconcile).toBe(true);
      await s.next((e) => e.envelope.type === 'peer_added' && (e.envelope.payload.peer as { node_id: string }).node_id === a.node_id);
    } finally {
      s.close();
    }
  });
});

describe('event stream', () => {
  it('sends signed envelopes that verify with the api helpers, with id lines', async () => {
    openMesh(h);
    const a = await h.register();
    const s = await openStream(h.cp.url, a.node_id, a.auth);
    try {
      expect(s.status).toBe(200);
      const b = await h.register();
      const e = await s.next((x) => x.envelope.type === 'peer_added');
      expect(e.id).toBe(e.envelope.id);
      expect(e.event).toBe('peer_added');
      expect((e.envelope.payload.peer as { node_id: string }).node_id).toBe(b.node_id);
      const key = Buffer.from(a.signing_public_key, 'base64');
      expect(a.signing_key_id).toBe(signingKeyId(key));
      expect(verifyEnvelope(e.envelope, (id) => (id === a.signing_key_id ? key : undefined), Date.now())).toEqual({ ok: true });
      expect(verifyEnvelope({ ...e.envelope, scope: 'project:x' }, (id) => (id === a.signing_key_id ? key : undefined), Date.now())).toEqual({ ok: false, reason: 'bad_signature' });
    } finally {
      s.close();
    }
  });

  it('replays from Last-Event-ID', async () => {
    openMesh(h);
    const a = await h.register();
    const first = await openStream(h.cp.url, a.node_id, a.auth);
    await h.register();
    const e1 = await first.next((x) => x.envelope.type === 'peer_added');
    first.close();
    const c = await h.register();
    // Events for one node only: a's own is replayed, c's never reaches a.
    h.cp.store.requestKeyRotation(a.node_id);
    h.cp.store.requestKeyRotation(c.node_id);
    createExecution(h.cp.store, { nodeId: c.node_id, action: 'noop', parameters: {} });
    // Another revision that keeps every pair visible (so no peer events follow it).
    h.cp.store.setPolicy('default', [{ action: 'allow', protocol: 'any', source_cidr: '10.100.0.0/16', destination_cidr: '10.100.0.0/16', ports: null }]);
    const again = await openStream(h.cp.url, a.node_id, { ...a.auth, 'last-event-id': e1.id! });
    try {
      await again.next((x) => x.envelope.type === 'policy_updated');
      expect(again.events.map((x) => x.envelope.type)).toEqual(['peer_added', 'rotate_keys', 'policy_updated']);
      expect(again.events[1]!.envelope.scope).toBe(`node:${a.node_id}`);
      expect(Number(again.events[0]!.id)).toBeGreaterThan(Number(e1.id));
    } finally {
      again.close();
    }
  });

  it('keeps at most the newest 4 streams per node, ending the oldest (issue 11 item 11)', async () => {
    const a = await h.register();
    const b = await h.register();
    const streams = [];
    try {
      for (let i = 0; i < 7; i++) streams.push(await openStream(h.cp.url, a.node_id, a.auth));
      const sb = await openStream(h.cp.url, b.node_id, b.auth);
      streams.push(sb);
      await Promise.all(streams.slice(0, 3).map((s) => s.ended));
      expect(h.cp.streams).toBe(5);
      // The newest four still deliver; the other node's stream is untouched.
      h.cp.store.setPolicy('default', []);
      await Promise.all([...streams.slice(3)].map((s) => s.next((e) => e.envelope.type === 'policy_updated')));
    } finally {
      for (const s of streams) s.close();
    }
  });

  it('sends keep-alive comments', async () => {
    await h.start({ keepAliveMs: 50 });
    const a = await h.register();
    const s = await openStream(h.cp.url, a.node_id, a.auth);
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect(s.comments.length).toBeGreaterThan(1);
    } finally {
      s.close();
    }
  });

  it('a removal made by another connection reaches open streams within seconds', async () => {
    const a = await h.register();
    const b = await h.register();
    const sa = await openStream(h.cp.url, a.node_id, a.auth);
    const sb = await openStream(h.cp.url, b.node_id, b.auth);
    try {
      // What `control-plane nodes remove` does: its own connection to the same file.
      const cli = ControlPlaneStore.open(h.dbFile);
      try {
        expect(cli.removeNode(b.node_id, 'removed')).toBe(true);
      } finally {
        cli.close();
      }
      const t0 = Date.now();
      const e = await sa.next((x) => x.envelope.type === 'peer_removed', 3000);
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(e.envelope.payload).toMatchObject({ node_id: b.node_id });
      await sb.ended; // the removed node's own stream is closed
    } finally {
      sa.close();
      sb.close();
    }
  });
});

describe('restart', () => {
  it('loses nothing: nodes, credentials, PSKs, policy, signing key, event ids', async () => {
    const a = await h.register();
    const b = await h.register();
    h.cp.store.setPolicy('default', [{ action: 'allow', protocol: 'tcp', source_cidr: '10.100.0.0/16', destination_cidr: '10.100.0.0/16', ports: { from: 443, to: 443 } }]);
    const before = await h.call('GET', `/v1/nodes/${a.node_id}/state`, undefined, a.auth);
    const keyBefore = h.cp.store.signer.keyId;
    await h.restart();
    const after = await h.call('GET', `/v1/nodes/${a.node_id}/state`, undefined, a.auth);
    expect(after.status).toBe(200);
    expect(after.body).toEqual(before.body);
    expect(h.cp.store.signer.keyId).toBe(keyBefore);
    const c = await h.register();
    expect(c.mesh_ip).toBe('10.100.0.3');
    expect(c.signing_key_id).toBe(a.signing_key_id);
    expect((await h.call('GET', `/v1/nodes/${b.node_id}/state`, undefined, b.auth)).body.peers).toHaveLength(2);
  });
});

describe('hostile requests', () => {
  /** Everything an attacker may change, to compare before/after. */
  const snapshot = () => JSON.stringify([
    h.cp.store.listNodes().map(({ nsk_hash, ...n }) => n),
    h.cp.store.db.prepare('SELECT * FROM tokens').all(),
    h.cp.store.db.prepare('SELECT seq, type FROM events').all(),
  ]);

  it('answers 4xx problem+json and changes nothing', async () => {
    const a = await h.register();
    const token = h.cp.store.createToken().token;
    const before = snapshot();
    const cases: Array<[string, string, unknown, number, string]> = [
      ['POST', '/v1/register', '{not json', 400, 'invalid_json'],
      ['POST', '/v1/register', '[1,2', 400, 'invalid_json'],
      ['POST', '/v1/register', '[]', 400, 'validation_failed'],
      ['POST', '/v1/register', '"x"', 400, 'validation_failed'],
      ['POST', '/v1/register', '[' .repeat(30_000) + ']'.repeat(30_000), 400, 'validation_failed'],
      ['POST', '/v1/register', { project_id: 'default', resource_handle: 'x', bootstrap_token: token, nonce: 'nope', public_key: 'AAAA' }, 400, 'validation_failed'],
      ['POST', `/v1/nodes/${a.node_id}/heartbeat`, { client_now: 7 }, 400, 'validation_failed'],
      ['PUT', `/v1/nodes/${a.node_id}/endpoint`, { endpoint: 'evil' }, 400, 'validation_failed'],
      ['GET', '/v1/nope', undefined, 404, 'not_found'],
      ['GET', '/v1/nodes/not-a-uuid/state', undefined, 404, 'not_found'],
      ['DELETE', '/v1/register', undefined, 405, 'method_not_allowed'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const r = await h.call(method, path, body, a.auth);
      expect(r.status, `${method} ${path} ${String(body).slice(0, 20)}`).toBe(status);
      expect(r.body.code).toBe(code);
    }
    const bad = await h.call('POST', '/v1/register', { nonce: 'x' });
    expect(bad.body.errors.map((e: { field: string }) => e.field)).toContain('nonce');
    expect(snapshot()).toBe(before);
  });

  it('refuses oversized bodies with 413, declared or streamed', async () => {
    const a = await h.register();
    const before = snapshot();
    const big = JSON.stringify({ client_now: new Date().toISOString(), binary_version: 'x'.repeat(100_000) });
    const r = await h.call('POST', `/v1/nodes/${a.node_id}/heartbeat`, big, a.auth);
    expect(r.status).toBe(413);
    expect(r.body.code).toBe('payload_too_large');
    // Chunked, no Content-Length: cut off while streaming.
    const url = new URL(h.cp.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, method: 'POST', path: '/v1/register', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 20; i++) req.write('x'.repeat(8192));
      req.end();
    });
    expect(status).toBe(413);
    expect(snapshot()).toBe(before);
    // The server still works.
    expect((await h.call('GET', `/v1/nodes/${a.node_id}/state`, undefined, a.auth)).status).toBe(200);
  });
});
