// /metrics on the agent's health listener (local-http.ts text routes + prometheus.ts): the text
// route answers GET and HEAD in the exposition format next to the JSON routes, refuses other
// methods, ignores long query strings, turns a failing handler into a 500, and a flood of
// concurrent scrapes is bounded by the listener's per-source cap (scrapes in flight share one
// collection: test/agent/prometheus.test.ts); the listener still answers afterwards.

import { request } from 'node:http';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startTcpServer, type LocalServer } from '../../src/agent/local-http.js';
import { AgentPrometheus, type AgentMetricsSource } from '../../src/agent/prometheus.js';
import { PROMETHEUS_CONTENT_TYPE } from '../../src/log/prometheus.js';
import { PolicyEnforcer } from '../../src/agent/policy-enforcer.js';
import { DROP_REASONS, type DropReason } from '../../src/core/actions.js';
import { parsePromText, sampleValue } from '../helpers/prom-text.js';
import { pollUntil, rawClients } from '../helpers/raw-clients.js';

function get(port: number, method: string, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function source(): { source: AgentMetricsSource; reads: () => number } {
  let reads = 0;
  const policy = new PolicyEnforcer({ enabled: false });
  return {
    reads: () => reads,
    source: {
      device: {
        peers: () => (reads++, []),
        drops: () => Object.fromEntries(DROP_REASONS.map((r) => [r, 1])) as Record<DropReason, number>,
        counters: { tunWriteDropped: 0, sendDropped: 0, filteredOutbound: 0, filteredInbound: 0 },
      },
      nodeIds: () => new Map(),
      pathOf: () => 'direct',
      policy: () => policy.snapshot(),
      events: { mode: 'streaming', connected: true, counters: { connects: 1, failures: 0, polls: 0 } },
      counters: { heartbeats: 1, heartbeatFailures: 0, reconciles: 1, reconcileFailures: 0 },
      ready: false,
      wallMs: () => Date.now(),
    },
  };
}

describe('agent /metrics on the health listener', () => {
  let server: LocalServer | undefined;
  let prom: AgentPrometheus | undefined;
  const open: Socket[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) s.destroy();
    await server?.close();
    prom?.close();
    server = undefined;
    prom = undefined;
  });

  it('serves the exposition beside the JSON routes; other methods 405, long queries ignored, failures 500', async () => {
    const s = source();
    const p = (prom = new AgentPrometheus(s.source, {}));
    server = await startTcpServer('127.0.0.1:0', { '/healthz': () => [200, { ok: true }] as const }, {}, {
      '/metrics': async () => [200, PROMETHEUS_CONTENT_TYPE, await p.metrics()],
      '/broken': () => Promise.reject(new Error('collector broke')),
    });
    const port = server.port;
    const ok = await get(port, 'GET', '/metrics');
    expect(ok.status).toBe(200);
    expect(ok.type).toBe(PROMETHEUS_CONTENT_TYPE);
    const f = parsePromText(ok.body);
    expect(sampleValue(f, 'plexd_agent_device_drops_total', { reason: 'replay' })).toBe(1);
    expect(sampleValue(f, 'plexd_agent_ready')).toBe(0);
    expect(sampleValue(f, 'plexd_agent_event_stream_connected')).toBe(1);
    expect(JSON.parse((await get(port, 'GET', '/healthz')).body)).toEqual({ ok: true });
    const head = await get(port, 'HEAD', '/metrics');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    for (const m of ['POST', 'PUT', 'DELETE']) {
      const r = await get(port, m, '/metrics');
      expect(r.status, m).toBe(405);
      expect(JSON.parse(r.body)).toEqual({ error: 'method_not_allowed' });
    }
    const long = await get(port, 'GET', `/metrics?${'a=b&'.repeat(2000)}`);
    expect(long.status).toBe(200);
    parsePromText(long.body);
    await expect(get(port, 'GET', `/metrics?${'x'.repeat(40_000)}`).then((r) => r.status, () => 'reset')).resolves.not.toBe(200);
    const broken = await get(port, 'GET', '/broken');
    expect(broken.status).toBe(500);
    expect(JSON.parse(broken.body)).toEqual({ error: 'collector broke' });
    expect((await get(port, 'GET', '/metrics')).status).toBe(200);
  });

  it('a flood of concurrent scrapes: the per-source cap refuses the excess, the listener answers afterwards', async () => {
    const s = source();
    const p = (prom = new AgentPrometheus(s.source, {}));
    server = await startTcpServer('127.0.0.1:0', {}, { maxConnections: 100, maxConnectionsPerSource: 20 }, { '/metrics': async () => [200, PROMETHEUS_CONTENT_TYPE, await p.metrics()] });
    const srv = server;
    // 40 connections that send a scrape and never read: the cap refuses 20 of them.
    open.push(...(await rawClients(40, srv, 'GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n')));
    await pollUntil(() => srv.counters.refusedPerSource >= 20, 5000, '20 refusals');
    expect(s.reads()).toBeLessThanOrEqual(20);
    for (const c of open.splice(0)) c.destroy();
    await pollUntil(async () => (await srv.connections()) === 0, 5000, 'flood gone');
    const answers = await Promise.all(Array.from({ length: 15 }, () => get(srv.port, 'GET', '/metrics')));
    for (const a of answers) expect(a.status).toBe(200);
  });
});
