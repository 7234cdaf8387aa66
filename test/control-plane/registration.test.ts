import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseRegisterResponse } from '../../src/api/index.js';
import { ControlPlaneStore } from '../../src/control-plane/store.js';
import { harnessEach, randomKey } from './harness.js';

const h = harnessEach({}, { open: true });

describe('POST /v1/register', () => {
  it('registers a node and returns a contract-valid body', async () => {
    const a = await h.register();
    expect(parseRegisterResponse(a).ok).toBe(true);
    expect(a.mesh_ip).toBe('10.100.0.1');
    expect(a.domain_mesh_cidr).toBe('10.100.0.0/16');
    expect(a.peer_snapshot).toEqual([]);
    const b = await h.register();
    expect(b.mesh_ip).toBe('10.100.0.2');
    expect(b.peer_snapshot).toHaveLength(1);
    expect(b.peer_snapshot[0]).toMatchObject({ node_id: a.node_id, mesh_ip: a.mesh_ip });
    expect(b.peer_snapshot[0]!.psk).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  });

  it('puts bridges at the top of the range', async () => {
    const bridge = await h.register({ mode: 'bridge' });
    expect(bridge.mesh_ip).toBe('10.100.255.254');
    expect((await h.register({ mode: 'bridge' })).mesh_ip).toBe('10.100.255.253');
    expect((await h.register()).mesh_ip).toBe('10.100.0.1');
  });

  it('refuses each kind of bad token with its code', async () => {
    const { store } = h.cp;
    const body = (token: string, project = 'default') => ({ project_id: project, resource_handle: 'h', bootstrap_token: token, nonce: randomUUID(), public_key: randomKey() });
    const expectCode = async (b: unknown, status: number, code: string) => {
      const r = await h.call('POST', '/v1/register', b);
      expect(r.status, code).toBe(status);
      expect(r.body.code).toBe(code);
      expect(r.headers.get('content-type')).toBe('application/problem+json');
      expect(r.headers.get('x-correlation-id')).toBeTruthy();
    };
    await expectCode(body('pbt_unknown'), 401, 'token_invalid');
    const used = store.createToken();
    await h.register({ bootstrap_token: used.token });
    await expectCode(body(used.token), 409, 'token_consumed');
    const revoked = store.createToken();
    expect(store.revokeToken(revoked.id)).toBe(1);
    await expectCode(body(revoked.token), 401, 'token_revoked');
    const expired = store.createToken('default', 1);
    await new Promise((r) => setTimeout(r, 5));
    await expectCode(body(expired.token), 401, 'token_expired');
    store.createProject('other');
    await expectCode(body(store.createToken().token, 'other'), 401, 'token_invalid');
    expect(store.listNodes()).toHaveLength(1);
  });

  it('a retried nonce returns the same registration; a different request with it collides', async () => {
    const token = h.cp.store.createToken().token;
    const req = { project_id: 'default', resource_handle: 'web', bootstrap_token: token, nonce: randomUUID(), public_key: randomKey() };
    const first = await h.call('POST', '/v1/register', req);
    const again = await h.call('POST', '/v1/register', req);
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    const other = await h.call('POST', '/v1/register', { ...req, public_key: randomKey() });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('nonce_collision');
    expect(h.cp.store.listNodes()).toHaveLength(1);
  });

  it('50 concurrent registrations never share a mesh IP', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, () => h.register()));
    const ips = new Set(results.map((r) => r.mesh_ip));
    expect(ips.size).toBe(50);
    expect(h.cp.store.listNodes()).toHaveLength(50);
  });

  it('also across two processes writing the same database', async () => {
    // A second connection stands in for another control-plane process on the same file.
    const other = ControlPlaneStore.open(h.dbFile);
    try {
      const tokens = Array.from({ length: 20 }, () => h.cp.store.createToken().token);
      const mk = (t: string) => ({ project_id: 'default', resource_handle: 'x', bootstrap_token: t, nonce: randomUUID(), public_key: randomKey() });
      const viaOther = tokens.slice(0, 10).map((t) => other.register(mk(t)).mesh_ip);
      const viaHttp = await Promise.all(tokens.slice(10).map(async (t) => (await h.call('POST', '/v1/register', mk(t))).body.mesh_ip as string));
      expect(new Set([...viaOther, ...viaHttp]).size).toBe(20);
    } finally {
      other.close();
    }
  });
});
