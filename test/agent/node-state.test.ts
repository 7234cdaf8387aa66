// The node API's state routes (src/agent/node-state.ts) over a real unix socket and TCP listener
// (src/agent/local-http.ts), against a fake control plane: metadata and data from the state
// block, secrets fetched and opened per request, reports with If-Match; hostile input (path
// traversal in keys, oversized bodies, a wrong or missing bearer token) gets a clear refusal.
// The report syncer with a manual clock: debounce, ascending key order, last write wins, retry
// after 30 s, 501 quiets it for 5 minutes, 404 on DELETE counts as done, 400 drops the key.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealSecretEnvelope } from '../../src/api/secret-envelope.js';
import type { NodeStateReportRequest } from '../../src/api/types.js';
import { startTcpServer, startUnixServer, type LocalServer } from '../../src/agent/local-http.js';
import { NodeState, ReportSyncer, type NodeStateClient } from '../../src/agent/node-state.js';
import { ManualClock } from '../../src/io/clock.js';

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

function call(target: { socketPath: string } | { port: number }, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request({ ...('port' in target ? { host: '127.0.0.1', port: target.port } : target), method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text === '' ? undefined : (JSON.parse(text) as unknown) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

class FakeClient implements NodeStateClient {
  readonly secrets = new Map<string, { value: string; version: number }>();
  readonly calls: string[] = [];
  failWith: { status?: number; message?: string } | undefined;
  readonly nsk: Buffer;
  constructor(nsk: Buffer) {
    this.nsk = nsk;
  }
  async fetchSecret(name: string, version?: number) {
    this.calls.push(`secret ${name} ${version ?? ''}`);
    if (this.failWith) throw Object.assign(new Error(this.failWith.message ?? 'fail'), this.failWith);
    const s = this.secrets.get(name);
    if (s === undefined || (version !== undefined && version !== s.version)) throw Object.assign(new Error('HTTP 404'), { status: 404 });
    return { envelope: sealSecretEnvelope(this.nsk, Buffer.from(s.value)), version: s.version, kid: 'k' };
  }
  async putStateReport(key: string, req: NodeStateReportRequest) {
    this.calls.push(`PUT ${key} ${req.value}`);
    if (this.failWith) throw Object.assign(new Error(this.failWith.message ?? 'fail'), this.failWith);
  }
  async deleteStateReport(key: string) {
    this.calls.push(`DELETE ${key}`);
    if (this.failWith) throw Object.assign(new Error(this.failWith.message ?? 'fail'), this.failWith);
  }
}

describe('node API state routes', () => {
  const nsk = randomBytes(32);
  const client = new FakeClient(nsk);
  const clock = new ManualClock();
  const state = new NodeState({ client, nsk: () => nsk, clock, timing: { debounceMs: 1e9, retryMs: 1e9, notProvisionedMs: 1e9 } });
  let dir: string;
  let unix: LocalServer;
  let tcp: LocalServer;
  const TOKEN = 'tok-0123456789abcdef';
  const sock = () => ({ socketPath: join(dir, 'api.sock') });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'node-state-'));
    unix = await startUnixServer(join(dir, 'api.sock'), state.routes(), {}, { maxBodyBytes: 8192 });
    tcp = await startTcpServer('127.0.0.1:0', state.routes(), {}, {}, { bearerToken: TOKEN });
    state.applyState({ metadata: [{ key: 'region', value: 'eu-west-1' }], data: [{ key: 'config.yaml', value: 'a: 1' }], reports: [] });
    client.secrets.set('db-password', { value: 'hunter2-secret', version: 3 });
  });
  afterAll(async () => {
    state.close();
    await unix.close();
    await tcp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves metadata and data from the state block; versions grow only on change', async () => {
    expect((await call(sock(), 'GET', '/v1/state/metadata')).body).toEqual({ region: 'eu-west-1' });
    expect((await call(sock(), 'GET', '/v1/state/metadata/region')).body).toEqual({ key: 'region', value: 'eu-west-1' });
    expect((await call(sock(), 'GET', '/v1/state/metadata/nope')).status).toBe(404);
    expect((await call(sock(), 'GET', '/v1/state/data/config.yaml')).body).toMatchObject({ key: 'config.yaml', payload: 'a: 1', version: 1, content_type: 'text/plain; charset=utf-8' });
    state.applyState({ metadata: [{ key: 'region', value: 'eu-west-1' }], data: [{ key: 'config.yaml', value: 'a: 1' }], reports: [] });
    expect((await call(sock(), 'GET', '/v1/state/data')).body).toEqual([{ key: 'config.yaml', version: 1, content_type: 'text/plain; charset=utf-8' }]);
    state.applyState({ metadata: [], data: [{ key: 'config.yaml', value: 'a: 2' }], reports: [] });
    expect((await call(sock(), 'GET', '/v1/state/data/config.yaml')).body).toMatchObject({ payload: 'a: 2', version: 2 });
    state.applyState(undefined); // an older control plane: kept
    expect((await call(sock(), 'GET', '/v1/state')).body).toMatchObject({ metadata: {}, data_keys: [{ key: 'config.yaml', version: 2 }], secret_keys: [] });
  });

  it('fetches and opens a secret per request, with ?version', async () => {
    client.calls.length = 0;
    expect((await call(sock(), 'GET', '/v1/state/secrets/db-password')).body).toEqual({ key: 'db-password', value: 'hunter2-secret', version: 3 });
    expect((await call(sock(), 'GET', '/v1/state/secrets/db-password?version=3')).status).toBe(200);
    expect((await call(sock(), 'GET', '/v1/state/secrets/db-password?version=2')).status).toBe(404);
    expect(client.calls).toEqual(['secret db-password ', 'secret db-password 3', 'secret db-password 2']);
  });

  it('refuses path traversal and malformed secret keys and versions before asking the control plane', async () => {
    client.calls.length = 0;
    for (const p of ['../x', '..%2fx', '%2e%2e', '%2e%2e%2fx', '.', 'A', 'db%00', '%zz', 'a/b']) {
      const r = await call(sock(), 'GET', `/v1/state/secrets/${p}`);
      expect(r.status, p).toBe(400);
    }
    for (const v of ['0', '-1', 'x', '1.5', '99999999999']) expect((await call(sock(), 'GET', `/v1/state/secrets/db-password?version=${v}`)).status, v).toBe(400);
    expect((await call(sock(), 'GET', '/v1/state/report/..%2f..%2fetc')).status).toBe(400);
    expect((await call(sock(), 'PUT', '/v1/state/report/%2e%2e', '{"content_type":"a","payload":1}')).status).toBe(400);
    expect(client.calls).toEqual([]);
  });

  it('maps control plane failures: 403, 429 with Retry-After, unreachable -> 503, a bad envelope -> 500', async () => {
    client.failWith = { status: 403 };
    expect((await call(sock(), 'GET', '/v1/state/secrets/db-password')).status).toBe(403);
    client.failWith = { status: 429, retryAfterMs: 7000 } as never;
    const r = await call(sock(), 'GET', '/v1/state/secrets/db-password');
    expect([r.status, r.headers['retry-after']]).toEqual([429, '7']);
    client.failWith = { message: 'ECONNREFUSED' };
    expect((await call(sock(), 'GET', '/v1/state/secrets/db-password')).status).toBe(503);
    client.failWith = undefined;
    const other = new NodeState({ client, nsk: () => randomBytes(32), clock });
    const s2 = await startTcpServer('127.0.0.1:0', other.routes());
    try {
      const bad = await call({ port: s2.port }, 'GET', '/v1/state/secrets/db-password');
      expect(bad).toMatchObject({ status: 500, body: { error: 'decryption failed' } });
    } finally {
      await s2.close();
    }
  });

  it('reports: PUT, GET, If-Match, DELETE; bad bodies refused', async () => {
    const put = (key: string, body: string, h: Record<string, string> = {}) => call(sock(), 'PUT', `/v1/state/report/${key}`, body, { 'content-type': 'application/json', ...h });
    expect((await put('health', '{"content_type":"application/json","payload":{"ok":true}}')).body).toMatchObject({ key: 'health', version: 1, payload: { ok: true } });
    expect((await put('health', '{"content_type":"application/json","payload":2}', { 'if-match': '5' })).status).toBe(409);
    expect((await put('health', '{"content_type":"application/json","payload":2}', { 'if-match': '1' })).body).toMatchObject({ version: 2 });
    expect((await put('health', '{"content_type":"application/json","payload":2}', { 'if-match': 'x' })).status).toBe(400);
    expect((await put('health', 'not json')).status).toBe(400);
    expect((await put('health', '{"payload":1}')).status).toBe(400);
    expect((await put('health', JSON.stringify({ content_type: 'a', payload: 'x'.repeat(5000) }))).status).toBe(400);
    expect((await call(sock(), 'GET', '/v1/state/report')).body).toEqual([{ key: 'health', version: 2 }]);
    expect((await call(sock(), 'POST', '/v1/state/report/health')).status).toBe(405);
    expect((await call(sock(), 'DELETE', '/v1/state/report/health')).status).toBe(204);
    expect((await call(sock(), 'DELETE', '/v1/state/report/health')).status).toBe(404);
    expect(state.syncer.pending()).toEqual(['health']);
  });

  it('an oversized body is refused with 413 (declared, and streamed without a length)', async () => {
    const big = Buffer.alloc(9000, 0x20);
    expect((await call(sock(), 'PUT', '/v1/state/report/big', big)).status).toBe(413);
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request({ socketPath: join(dir, 'api.sock'), method: 'PUT', path: '/v1/state/report/big', headers: { 'transfer-encoding': 'chunked' } }, (res) => (res.resume(), resolve(res.statusCode ?? 0)));
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write(Buffer.alloc(1000, 0x20));
      req.end();
    });
    expect(chunked).toBe(413);
    expect((await call(sock(), 'GET', '/v1/state/report/big')).status).toBe(404);
  });

  it('the HTTP listener refuses a missing or wrong bearer token with 401, serves the right one', async () => {
    const t = { port: tcp.port };
    expect(await call(t, 'GET', '/v1/state/metadata')).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
    expect((await call(t, 'GET', '/v1/state/metadata', undefined, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await call(t, 'GET', '/v1/state/metadata', undefined, { authorization: `Bearer ${TOKEN}x` })).status).toBe(401);
    expect((await call(t, 'GET', '/v1/state/secrets/db-password', undefined, { authorization: `Basic ${TOKEN}` })).status).toBe(401);
    expect((await call(t, 'GET', '/v1/state/secrets/db-password', undefined, { authorization: `bearer ${TOKEN}` })).body).toMatchObject({ value: 'hunter2-secret' });
  });
});

describe('report syncer (manual clock)', () => {
  const entry = (key: string, payload: unknown, version = 1) => ({ key, content_type: 'application/json', payload, version, updated_at: '' });

  it('debounces a burst into one flush in ascending key order, last write wins', async () => {
    const c = new FakeClient(randomBytes(32));
    const s = new ReportSyncer(c);
    s.change('b', entry('b', 1), 0);
    s.change('a', entry('a', 1), 1000);
    s.change('b', entry('b', 2, 2), 2000);
    expect(s.deadline()).toBe(5000);
    await s.run(4999);
    expect(c.calls).toEqual([]);
    await s.run(5000);
    expect(c.calls).toEqual(['PUT a 1', 'PUT b 2']);
    expect([s.pending(), s.deadline()]).toEqual([[], undefined]);
  });

  it('a transient failure retries after 30 s; 404 on DELETE is done; 400 drops the key', async () => {
    const c = new FakeClient(randomBytes(32));
    const s = new ReportSyncer(c);
    c.failWith = { status: 503 };
    s.change('a', entry('a', 1), 0);
    await s.run(5000);
    expect([s.pending(), s.deadline()]).toEqual([['a'], 35_000]);
    c.failWith = undefined;
    await s.run(35_000);
    expect(s.pending()).toEqual([]);
    c.failWith = { status: 404 };
    s.change('a', null, 40_000);
    await s.run(45_000);
    expect(s.pending()).toEqual([]);
    c.failWith = { status: 400 };
    s.change('x', entry('x', 1), 50_000);
    await s.run(55_000);
    expect([s.pending(), s.counters.dropped]).toEqual([[], 1]);
  });

  it('501 stops the flush and sends nothing for 5 minutes, whatever changes meanwhile', async () => {
    const c = new FakeClient(randomBytes(32));
    const lines: string[] = [];
    const s = new ReportSyncer(c, undefined, (l) => lines.push(l));
    c.failWith = { status: 501 };
    s.change('a', entry('a', 1), 0);
    s.change('b', entry('b', 1), 0);
    await s.run(5000);
    expect(c.calls).toEqual(['PUT a 1']);
    expect(s.deadline()).toBe(305_000);
    s.change('c', entry('c', 1), 10_000);
    expect(s.deadline()).toBe(305_000);
    await s.run(304_999);
    expect(c.calls.length).toBe(1);
    c.failWith = undefined;
    await s.run(305_000);
    expect(c.calls).toEqual(['PUT a 1', 'PUT a 1', 'PUT b 1', 'PUT c 1']);
    expect(lines.filter((l) => l.includes('501')).length).toBe(1);
    // After the window a new change debounces normally again.
    s.change('d', entry('d', 1), 400_000);
    expect(s.deadline()).toBe(405_000);
  });
});
