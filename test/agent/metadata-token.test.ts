// The cloud metadata token source (src/agent/metadata-token.ts) against a fake IMDS on loopback:
// IMDSv2 (PUT for a session token, GET with it), the v1 fallback when the PUT is refused, the
// overall deadline, the 513-byte cap, a 404, and the order of sources (local ones win; metadata
// only with registration.use_metadata). The token never reaches the log. The root tier
// (test/netns/metadata-token.test.ts) serves the same at 169.254.169.254 to a real agent.

import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/agent/config.js';
import { bootstrapToken, readMetadataToken } from '../../src/agent/metadata-token.js';
import { RegistrationError } from '../../src/control/register.js';
import { createLogger } from '../../src/log/logger.js';

type Mode = 'v2' | 'v1' | 'slow' | 'oversize' | 'missing' | 'empty';
const TOKEN = 'bt-metadata-7f3a9c';
const SESSION = 'sess-AQAEAFx';

/** A fake IMDS answering as `mode` says; `seen` lists "METHOD path session?" per request. */
function fakeImds(mode: () => Mode, seen: string[]): http.Server {
  return http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers['x-aws-ec2-metadata-token'] ?? '-'}`);
    const m = mode();
    if (m === 'slow') return void setTimeout(() => res.end(TOKEN), 5000).unref();
    if (req.method === 'PUT' && req.url === '/latest/api/token') {
      if (m === 'v1') return void res.writeHead(404).end();
      if (req.headers['x-aws-ec2-metadata-token-ttl-seconds'] === undefined) return void res.writeHead(400).end();
      return void res.end(SESSION);
    }
    if (req.method !== 'GET' || req.url !== '/plexd/bootstrap-token' || m === 'missing') return void res.writeHead(404).end('not found');
    if (m === 'v2' && req.headers['x-aws-ec2-metadata-token'] !== SESSION) return void res.writeHead(401).end();
    if (m === 'oversize') return void res.end('x'.repeat(600));
    if (m === 'empty') return void res.end('\n');
    res.end(`  ${TOKEN}\n`);
  });
}

describe('cloud metadata token', () => {
  let server: http.Server;
  let base = '';
  let mode: Mode = 'v2';
  const seen: string[] = [];
  let dir = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'plexd-metadata-'));
    server = fakeImds(() => mode, seen);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });
  const read = (timeoutMs = 2000) => readMetadataToken({ path: '/plexd/bootstrap-token', timeoutMs, baseUrl: base });

  it('IMDSv2: PUT for a session token, GET with it; the token is trimmed', async () => {
    mode = 'v2';
    seen.length = 0;
    expect(await read()).toEqual({ kind: 'token', token: TOKEN, protocol: 'imdsv2' });
    expect(seen).toEqual(['PUT /latest/api/token -', `GET /plexd/bootstrap-token ${SESSION}`]);
  });

  it('falls back to IMDSv1 (plain GET) when the PUT is refused', async () => {
    mode = 'v1';
    seen.length = 0;
    expect(await read()).toEqual({ kind: 'token', token: TOKEN, protocol: 'imdsv1' });
    expect(seen).toEqual(['PUT /latest/api/token -', 'GET /plexd/bootstrap-token -']);
  });

  it('gives up at the overall deadline', async () => {
    mode = 'slow';
    const t0 = performance.now();
    const r = await read(300);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(r).toEqual({ kind: 'unavailable', reason: `no answer from ${base} within 0.3 s` });
  });

  it('refuses a body longer than 512 bytes instead of truncating it', async () => {
    mode = 'oversize';
    expect(await read()).toMatchObject({ kind: 'malformed', reason: expect.stringMatching(/larger than 512 bytes; refused/) });
  });

  it('a 404, an empty body and a refused connection are "unavailable" with the reason', async () => {
    mode = 'missing';
    expect(await read()).toEqual({ kind: 'unavailable', reason: `GET ${base}/plexd/bootstrap-token: unexpected status 404` });
    mode = 'empty';
    expect(await read()).toMatchObject({ kind: 'unavailable', reason: expect.stringMatching(/empty token/) });
    const closed = await readMetadataToken({ path: '/x', timeoutMs: 1000, baseUrl: 'http://127.0.0.1:1' });
    expect(closed).toMatchObject({ kind: 'unavailable', reason: expect.stringMatching(/ECONNREFUSED/) });
  });

  describe('as the last token source', () => {
    const config = (extra: string) => resolveConfig({ fileText: `api: {base_url: "http://127.0.0.1:1"}\nregistration: {token_file: ${join(dir, 'none')}${extra}}\n`, env: {} });
    const logged: string[] = [];
    const log = createLogger('verbose', '', (l) => void logged.push(l));

    it('is asked only with registration.use_metadata, after config, file and env', async () => {
      mode = 'v2';
      seen.length = 0;
      await expect(bootstrapToken(config(''), {}, log, undefined, base)).rejects.toThrow(/no bootstrap token: .*or enable registration.use_metadata/);
      expect(await bootstrapToken(config(', use_metadata: true'), { PLEXD_BOOTSTRAP_TOKEN: 'from-env' }, log, undefined, base)).toMatchObject({ token: 'from-env', source: 'env' });
      expect(seen).toEqual([]);
      expect(await bootstrapToken(config(', use_metadata: true'), {}, log, undefined, base)).toEqual({ token: TOKEN, source: 'metadata' });
    });

    it('fails with the metadata reason: no_token (timeout, 404) or token_malformed (oversize)', async () => {
      mode = 'missing';
      const e1 = await bootstrapToken(config(', use_metadata: true'), {}, log, undefined, base).catch((e: unknown) => e);
      expect(e1).toBeInstanceOf(RegistrationError);
      expect(e1).toMatchObject({ code: 'no_token', message: expect.stringMatching(/cloud metadata: .*unexpected status 404/) });
      mode = 'slow';
      const e2 = await bootstrapToken(config(', use_metadata: true, metadata_timeout: 200ms'), {}, log, undefined, base).catch((e: unknown) => e);
      expect(e2).toMatchObject({ code: 'no_token', message: expect.stringMatching(/within 0.2 s/) });
      mode = 'oversize';
      const e3 = await bootstrapToken(config(', use_metadata: true'), {}, log, undefined, base).catch((e: unknown) => e);
      expect(e3).toMatchObject({ code: 'token_malformed' });
    });

    it('never logs the token', () => {
      expect(logged.join('')).toMatch(/from cloud metadata \(IMDSv2\)/);
      expect(logged.join('')).not.toContain(TOKEN);
    });
  });
});
