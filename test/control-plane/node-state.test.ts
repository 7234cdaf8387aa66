// Node state and secrets on the control plane (src/control-plane/node-state.ts, routes.ts): a
// secret is served as nonce || ciphertext || tag under the requesting node's NSK (opened here
// with node:crypto directly), with its version and key id headers; never to another node; bad
// names (traversal, encoded dots) 400; unknown 404; reports PUT/DELETE with the grammar and the
// 4096-byte cap; metadata, data and reports in the state block.

import { createDecipheriv } from 'node:crypto';
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { listSecrets, removeSecret, setSecret, setStateEntry } from '../../src/control-plane/node-state.js';
import { harnessEach } from './harness.js';

const h = harnessEach();

/** Status of a request sent with its path exactly as given (fetch would resolve %2e%2e). */
function raw(method: string, path: string, headers: Record<string, string>, body?: string): Promise<number> {
  const u = new URL(h.cp.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) } }, (res) => (res.resume(), resolve(res.statusCode ?? 0)));
    req.on('error', reject);
    req.end(body);
  });
}

function open(nsk: Buffer, env: Buffer): string {
  const d = createDecipheriv('aes-256-gcm', nsk, env.subarray(0, 12));
  d.setAuthTag(env.subarray(env.length - 16));
  return Buffer.concat([d.update(env.subarray(12, env.length - 16)), d.final()]).toString();
}

describe('control plane node secrets', () => {
  it('serves a secret sealed under the requesting node NSK, by version, never to another node', async () => {
    const a = await h.register();
    const b = await h.register();
    const store = h.cp.store;
    setSecret(store, { node: a.node_id }, 'db-password', Buffer.from('v1-value'));
    setSecret(store, { node: a.node_id }, 'db-password', Buffer.from('v2-value'));
    setSecret(store, { project: 'default' }, 'shared', Buffer.from('proj'));
    const get = (id: string, name: string, auth: Record<string, string>) => fetch(`${h.cp.url}/v1/nodes/${id}/secrets/${name}`, { headers: auth });
    const r = await get(a.node_id, 'db-password', a.auth);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/octet-stream');
    expect(r.headers.get('x-plexsphere-secret-version')).toBe('2');
    expect(r.headers.get('x-plexsphere-secret-kid')).toMatch(/^nsk-[0-9a-f]{16}$/);
    const nsk = Buffer.from(a.nsk, 'base64');
    expect(open(nsk, Buffer.from(await r.arrayBuffer()))).toBe('v2-value');
    expect(open(nsk, Buffer.from(await (await get(a.node_id, 'db-password?version=1', a.auth)).arrayBuffer()))).toBe('v1-value');
    expect((await get(a.node_id, 'db-password?version=3', a.auth)).status).toBe(404);
    expect((await get(a.node_id, 'db-password?version=0', a.auth)).status).toBe(400);
    // b: its project's secret, not a's own; a's path with b's credential is forbidden.
    expect(open(Buffer.from(b.nsk, 'base64'), Buffer.from(await (await get(b.node_id, 'shared', b.auth)).arrayBuffer()))).toBe('proj');
    expect((await get(b.node_id, 'db-password', b.auth)).status).toBe(404);
    expect((await get(a.node_id, 'db-password', b.auth)).status).toBe(403);
    for (const bad of ['%2e%2e', '..%2fx', 'UPPER', '%zz']) expect(await raw('GET', `/v1/nodes/${a.node_id}/secrets/${bad}`, a.auth), bad).toBe(400);
    expect(listSecrets(store.db, 'default').map((s) => [s.owner, s.name, s.version])).toEqual([
      [a.node_id, 'db-password', 2],
      ['project:default', 'shared', 1],
    ]);
    expect(removeSecret(store, { node: a.node_id }, 'db-password')).toBe(2);
    expect((await get(a.node_id, 'db-password', a.auth)).status).toBe(404);
    expect(() => setSecret(store, { node: a.node_id }, '../x', Buffer.from('v'))).toThrow(/secret name/);
    expect(() => setSecret(store, { node: a.node_id }, 'empty', Buffer.alloc(0))).toThrow(/1\.\.65536 bytes/);
  });

  it('reports: PUT and DELETE with the grammar and the cap; metadata, data and reports in the state block', async () => {
    const a = await h.register();
    const put = (key: string, body: unknown) => h.call('PUT', `/v1/nodes/${a.node_id}/state/reports/${key}`, body, a.auth);
    expect((await put('app-health', { value: '{"ok":true}', workload_tag: 'web' })).body).toMatchObject({ key: 'app-health' });
    expect((await put('Bad', { value: 'x' })).body.code).toBe('invalid_report');
    expect(await raw('PUT', `/v1/nodes/${a.node_id}/state/reports/%2e%2e`, a.auth, '{"value":"x"}')).toBe(400);
    expect((await put('big', { value: 'x'.repeat(4097) })).body.code).toBe('invalid_report');
    expect((await put('nov', { nope: 1 })).status).toBe(400);
    setStateEntry(h.cp.store, a.node_id, 'metadata', 'region', 'eu');
    setStateEntry(h.cp.store, a.node_id, 'data', 'conf', 'x=1');
    const state = await h.call('GET', `/v1/nodes/${a.node_id}/state`, undefined, a.auth);
    expect(state.body.state).toEqual({ metadata: [{ key: 'region', value: 'eu' }], data: [{ key: 'conf', value: 'x=1' }], reports: [{ key: 'app-health', value: '{"ok":true}', workload_tag: 'web' }] });
    expect((await h.call('DELETE', `/v1/nodes/${a.node_id}/state/reports/app-health`, undefined, a.auth)).status).toBe(204);
    expect((await h.call('DELETE', `/v1/nodes/${a.node_id}/state/reports/app-health`, undefined, a.auth)).body.code).toBe('report_not_found');
  });
});
