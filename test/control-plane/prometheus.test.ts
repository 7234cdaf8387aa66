// The control plane's Prometheus metrics (src/control-plane/prometheus.ts) on `metricsListen`:
// registrations, nodes by status, SSE streams, the events counter, request latency by route
// pattern (never a raw path, so never a node id), parsed with the strict test parser; bad input on
// the metrics listener (other methods and paths, long query strings, a burst of scrapes, an
// address in use or malformed); route labels of every API route are plain paths; off unless
// asked for.

import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { routeLabel } from '../../src/control-plane/prometheus.js';
import { ROUTES } from '../../src/control-plane/routes.js';
import { createControlPlane } from '../../src/control-plane/server.js';
import { parsePromText, sampleValue } from '../helpers/prom-text.js';
import { harnessEach, openStream, runCli } from './harness.js';

const now = (): string => new Date().toISOString();

/** A raw request to the metrics listener: status, content type and body. */
function raw(url: string, method: string, path: string): Promise<{ status: number; type: string; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('control plane /metrics', () => {
  const h = harnessEach({ metricsListen: '127.0.0.1:0' }, { open: true });

  it('registrations, nodes by status, streams, events and request latency by route pattern', async () => {
    const a = await h.register();
    const b = await h.register();
    await h.call('POST', `/v1/nodes/${a.node_id}/heartbeat`, { client_now: now(), binary_checksum: 'ab', binary_version: '0.1.0', nat_summary: {} }, a.auth);
    await h.call('POST', `/v1/nodes/${a.node_id}/heartbeat`, { client_now: now(), binary_checksum: 'ab', binary_version: '0.1.0', nat_summary: {} }, a.auth);
    await h.call('GET', `/v1/nodes/${b.node_id}/state`, undefined, b.auth);
    await h.call('GET', '/v1/no/such/route');
    await h.call('POST', '/v1/register', { bad: true });
    const stream = await openStream(h.cp.url, a.node_id, a.auth);
    try {
      const url = h.cp.metricsUrl!;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const text = await res.text();
      const f = parsePromText(text);
      for (const fam of f.values()) {
        expect(fam.help, fam.name).toBeTruthy();
        if (fam.type === 'counter') expect(fam.name).toMatch(/_total$/);
        if (fam.name.startsWith('plexd_')) expect(fam.name).toMatch(/^plexd_control_plane_[a-z_]+$/);
      }
      expect(sampleValue(f, 'plexd_control_plane_registrations_total')).toBe(2);
      expect(sampleValue(f, 'plexd_control_plane_nodes', { status: 'online' })).toBe(2);
      expect(sampleValue(f, 'plexd_control_plane_nodes', { status: 'offline' })).toBe(0);
      expect(sampleValue(f, 'plexd_control_plane_event_streams')).toBe(1);
      expect(sampleValue(f, 'plexd_control_plane_events_total')).toBeGreaterThan(0);
      const hist = 'plexd_control_plane_http_request_duration_seconds';
      expect(f.get(hist)?.type).toBe('histogram');
      expect(sampleValue(f, `${hist}_count`, { method: 'POST', route: '/v1/nodes/{node_id}/heartbeat', code: '200' })).toBe(2);
      expect(sampleValue(f, `${hist}_count`, { method: 'GET', route: '/v1/nodes/{node_id}/state', code: '200' })).toBe(1);
      expect(sampleValue(f, `${hist}_count`, { method: 'POST', route: '/v1/register', code: '201' })).toBe(2);
      expect(sampleValue(f, `${hist}_count`, { method: 'POST', route: '/v1/register', code: '400' })).toBe(1);
      expect(sampleValue(f, `${hist}_count`, { route: 'unmatched', code: '404' })).toBe(1);
      // No raw path, so no node id, anywhere in the exposition.
      expect(text).not.toContain(a.node_id);
      expect(text).not.toContain('/v1/no/such');
      expect(f.has('process_cpu_seconds_total')).toBe(true);
    } finally {
      stream.close();
    }
  });

  it('refuses other methods and paths, ignores long query strings, and answers a burst of scrapes', async () => {
    const url = h.cp.metricsUrl!;
    const post = await raw(url, 'POST', '/metrics');
    expect(post.status).toBe(405);
    expect((await raw(url, 'DELETE', '/metrics')).status).toBe(405);
    expect((await raw(url, 'GET', '/v1/register')).status).toBe(404);
    const head = await raw(url, 'HEAD', '/metrics');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    const long = await raw(url, 'GET', `/metrics?${'x'.repeat(8000)}`);
    expect(long.status).toBe(200);
    parsePromText(long.body);
    // Over node's header limit: refused by the HTTP parser, and the listener keeps working.
    await expect(raw(url, 'GET', `/metrics?${'x'.repeat(40_000)}`).then((r) => r.status, () => 'reset')).resolves.not.toBe(200);
    const burst = await Promise.all(Array.from({ length: 25 }, () => raw(url, 'GET', '/metrics')));
    for (const r of burst) {
      expect(r.status).toBe(200);
      parsePromText(r.body);
    }
    expect((await raw(url, 'GET', '/metrics')).status).toBe(200);
  });

  it('labels every API route by its pattern: a plain path with named parameters', () => {
    for (const r of ROUTES) {
      const label = routeLabel(r.pattern);
      expect(label, r.pattern.source).toMatch(/^(\/[a-z0-9-]+|\/\{[a-z_]+\})+$/);
    }
    expect(routeLabel(ROUTES.find((r) => r.pattern.source.includes('executions'))!.pattern)).toBe('/v1/nodes/{node_id}/executions/{execution_id}');
  });
});

describe('control plane /metrics off by default', () => {
  const h = harnessEach();
  it('has no metrics listener unless metricsListen is set; the API has no /metrics', async () => {
    expect(h.cp.metricsUrl).toBeUndefined();
    expect((await h.call('GET', '/metrics')).status).toBe(404);
  });
});

describe('control-plane serve --metrics-listen', () => {
  it('a malformed address is bad usage (exit 2), before anything starts', async () => {
    const r = await runCli('serve', '--listen', '127.0.0.1:0', '--db', '/nonexistent/cp.db', '--metrics-listen', 'nonsense');
    expect(r.code).toBe(2);
    expect(r.err).toContain('nonsense');
  });
});

describe('control plane metricsListen taken', () => {
  it('rejects (the API listener closed again); a malformed one is a RangeError', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as { port: number }).port;
    const dir = mkdtempSync(join(tmpdir(), 'cp-metrics-taken-'));
    try {
      await expect(createControlPlane({ db: join(dir, 'cp.db'), listen: '127.0.0.1:0', insecureHttp: true, metricsListen: `127.0.0.1:${taken}` })).rejects.toThrow(/EADDRINUSE/);
      // Nothing of the failed start stays in the way: the same database starts and serves.
      const cp = await createControlPlane({ db: join(dir, 'cp.db'), listen: '127.0.0.1:0', insecureHttp: true, metricsListen: '127.0.0.1:0' });
      expect((await fetch(cp.metricsUrl!)).status).toBe(200);
      await cp.close();
      await expect(createControlPlane({ db: join(dir, 'cp.db'), listen: '127.0.0.1:0', insecureHttp: true, metricsListen: 'nonsense' })).rejects.toThrow(RangeError);
    } finally {
      blocker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
