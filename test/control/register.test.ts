// Registration retry rules against a fake control plane on loopback: 429 with Retry-After, 5xx
// and dropped connections are retried with the same nonce; 4xx refusals stop at once naming the
// problem code; retries give up after the window. Plus hostile HTTP responses.

import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/control/api-client.js';
import { ApiError, HttpClient } from '../../src/control/http-client.js';
import { createSelfSignedCertificate } from '../../src/control-plane/certificate.js';
import { register, RegistrationError, resolveToken } from '../../src/control/register.js';

type Reply = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;
const servers: Array<http.Server | https.Server> = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function fake(replies: Reply[]): Promise<{ url: string; bodies: Array<Record<string, unknown>> }> {
  const bodies: Array<Record<string, unknown>> = [];
  let i = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      try {
        bodies.push(JSON.parse(body) as Record<string, unknown>);
      } catch {
        bodies.push({});
      }
      const reply = replies[Math.min(i++, replies.length - 1)]!;
      reply(req, res, body);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies };
}

const problem = (status: number, code: string, headers: Record<string, string> = {}): Reply => (_q, res) => {
  res.writeHead(status, { 'content-type': 'application/problem+json', ...headers });
  res.end(JSON.stringify({ type: `urn:plexd:problem:${code}`, title: code, status, code }));
};
const KEY = Buffer.alloc(32, 7).toString('base64');
const ok: Reply = (_q, res) => {
  res.writeHead(201, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ node_id: '6f1c2c64-4a59-4b8e-9a61-1d0f6f0e7b11', mesh_ip: '10.100.0.2', signing_public_key: KEY, signing_key_id: 'k1', nsk: KEY, peer_snapshot: [], domain_mesh_cidr: '10.100.0.0/16', extra: 'ignored' }));
};
const REQ = { project_id: 'default', resource_handle: 'n1', bootstrap_token: 'tok', public_key: KEY };

function fakeTime() {
  let t = 0;
  const sleeps: number[] = [];
  return { now: () => t, sleep: async (ms: number) => void (sleeps.push(ms), (t += ms)), sleeps, random: () => 0.5 };
}

describe('registration', () => {
  it('retries 429 (Retry-After), 503 and a dropped connection with one nonce, then succeeds', async () => {
    const drop: Reply = (req) => req.socket.destroy();
    const srv = await fake([problem(429, 'rate_limited', { 'retry-after': '7' }), problem(503, 'unavailable'), drop, ok]);
    const time = fakeTime();
    const res = await register(new ControlClient(new HttpClient({ baseUrl: srv.url })), REQ, time);
    expect(res.mesh_ip).toBe('10.100.0.2');
    expect(srv.bodies.length).toBe(4);
    const nonces = new Set(srv.bodies.map((b) => b['nonce']));
    expect(nonces.size).toBe(1);
    expect([...nonces][0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(time.sleeps).toEqual([7000, 2000, 4000]);
  });

  // A code the API does not define (422 unprocessable from another server) is 'refused': the
  // RegistrationError codes are a closed set; the server's word stays in the message and the cause.
  for (const [status, code, expected] of [[400, 'validation_failed', 'validation_failed'], [401, 'token_invalid', 'token_invalid'], [403, 'forbidden', 'forbidden'], [404, 'project_not_found', 'project_not_found'], [409, 'token_consumed', 'token_consumed'], [422, 'unprocessable', 'refused']] as const) {
    it(`stops at once on ${status} ${code}`, async () => {
      const srv = await fake([problem(status, code), ok]);
      const time = fakeTime();
      const err = await register(new ControlClient(new HttpClient({ baseUrl: srv.url })), REQ, time).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistrationError);
      expect((err as RegistrationError).code).toBe(expected);
      expect((err as RegistrationError).status).toBe(status);
      expect((err as Error).message).toContain(`(${code}, HTTP ${status})`);
      expect((err as Error).cause).toBeInstanceOf(ApiError);
      expect(((err as Error).cause as ApiError).problemCode).toBe(code);
      expect(srv.bodies.length).toBe(1);
    });
  }

  it("stops at once on a 4xx without a problem body: code 'refused', the status in the message", async () => {
    const srv = await fake([(_q, res) => res.writeHead(404, { 'content-type': 'text/html' }).end('<h1>no</h1>'), ok]);
    const err = await register(new ControlClient(new HttpClient({ baseUrl: srv.url })), REQ, fakeTime()).catch((e: unknown) => e);
    expect((err as RegistrationError).code).toBe('refused');
    expect((err as RegistrationError).status).toBe(404);
    expect((err as Error).message).toContain('(http_404, HTTP 404)');
    expect(srv.bodies.length).toBe(1);
  });

  it('gives up after 5 minutes of 5xx', async () => {
    const srv = await fake([problem(500, 'internal')]);
    const time = fakeTime();
    const err = await register(new ControlClient(new HttpClient({ baseUrl: srv.url })), REQ, time).catch((e: unknown) => e);
    expect((err as RegistrationError).code).toBe('retries_exhausted');
    expect(time.now()).toBeLessThanOrEqual(5 * 60_000);
    expect(time.sleeps.length).toBeGreaterThan(4);
  });

  it('rejects a 201 whose body does not parse, naming the field', async () => {
    const srv = await fake([(_q, res) => res.writeHead(201).end(JSON.stringify({ node_id: 'x', mesh_ip: 'nope' }))]);
    const err = await register(new ControlClient(new HttpClient({ baseUrl: srv.url })), REQ, fakeTime()).catch((e: unknown) => e);
    expect((err as RegistrationError).code).toBe('malformed');
    expect((err as Error).message).toContain('mesh_ip');
  });

  it("names a 2xx that is not JSON 'malformed' (the exchange broke, not a refusal)", async () => {
    const srv = await fake([(_q, res) => res.writeHead(201, { 'content-type': 'application/json' }).end('not json')]);
    const err = await register(new ControlClient(new HttpClient({ baseUrl: srv.url })), REQ, fakeTime()).catch((e: unknown) => e);
    expect((err as RegistrationError).code).toBe('malformed');
    expect((err as RegistrationError).status).toBe(201);
    expect((err as Error).message).toContain('(http_201, HTTP 201)');
  });
});

describe('HttpClient against hostile servers', () => {
  it('bounds the body size, times out a stalled server, and rejects non-JSON', async () => {
    const big: Reply = (_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('[' + '1,'.repeat(600_000));
      res.end('1]');
    };
    const stall: Reply = (_q, res) => res.writeHead(200);
    const garbage: Reply = (_q, res) => res.writeHead(200).end('<html>');
    const srv = await fake([big, stall, garbage]);
    const c = new HttpClient({ baseUrl: srv.url, maxBodyBytes: 1 << 20, timeoutMs: 300 });
    expect(((await c.json('GET', 'a').catch((e: unknown) => e)) as ApiError).kind).toBe('too_large');
    expect(((await c.json('GET', 'b').catch((e: unknown) => e)) as ApiError).kind).toBe('timeout');
    expect(((await c.json('GET', 'c').catch((e: unknown) => e)) as ApiError).kind).toBe('malformed');
  });

  it('speaks TLS only to the pinned certificate, sending nothing to another', async () => {
    const id = createSelfSignedCertificate(['127.0.0.1']);
    let requests = 0;
    const server = https.createServer({ cert: id.certPem, key: id.keyPem }, (_q, res) => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const good = new HttpClient({ baseUrl: url, tlsFingerprint: id.fingerprint });
    expect((await good.json('GET', 'x')).body).toEqual({ ok: true });
    const wrong = new HttpClient({ baseUrl: url, tlsFingerprint: 'ab'.repeat(32) });
    expect(((await wrong.json('GET', 'x', { bearer: 'secret' }).catch((e: unknown) => e)) as ApiError).kind).toBe('tls_pin');
    const unpinned = new HttpClient({ baseUrl: url, timeoutMs: 2000 });
    expect(((await unpinned.json('GET', 'x').catch((e: unknown) => e)) as ApiError).kind).toBe('network');
    expect(requests).toBe(1);
  });
});

describe('token sources', () => {
  it('takes config, then the token file, then PLEXD_BOOTSTRAP_TOKEN, and validates the token', () => {
    const dir = mkdtempSync(join(tmpdir(), 'plexd-tok-'));
    try {
      const file = join(dir, 'bootstrap-token');
      expect(() => resolveToken({ tokenFile: file, env: {} })).toThrow(/no bootstrap token/);
      expect(resolveToken({ tokenFile: file, env: { PLEXD_BOOTSTRAP_TOKEN: 'e' } })).toEqual({ token: 'e', source: 'env' });
      writeFileSync(file, 'from-file\n');
      expect(resolveToken({ tokenFile: file, env: { PLEXD_BOOTSTRAP_TOKEN: 'e' } })).toEqual({ token: 'from-file', source: 'file', file });
      expect(resolveToken({ configToken: 'cfg', tokenFile: file, env: {} }).source).toBe('config');
      expect(() => resolveToken({ configToken: 'x'.repeat(513), tokenFile: file, env: {} })).toThrow(/printable ASCII/);
      expect(() => resolveToken({ configToken: 'two words', tokenFile: file, env: {} })).toThrow(RegistrationError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
