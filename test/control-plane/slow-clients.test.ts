// Slow and hostile clients against the control plane's HTTP server (issue 11 items 3 and 9): idle,
// slow-header, malformed and never-reading connections are closed and the server's socket count
// returns to baseline; the per-source cap refuses excess connections at once while another
// source is served; an event stream outlives the idle timeout; aborted bodies log no errors.

import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log/logger.js';
import { pollUntil as until, rawClients } from '../helpers/raw-clients.js';
import { harnessEach, openStream, testPostgresUrl } from './harness.js';

const TINY = { headersTimeoutMs: 300, requestTimeoutMs: 600, idleTimeoutMs: 600, keepAliveTimeoutMs: 200, checkIntervalMs: 100 };

/** Opens `n` raw connections to the control plane at `url` (see rawClients). */
function clientsOf(url: string, n: number, first?: string, localAddress?: string): Promise<Socket[]> {
  const { hostname, port } = new URL(url);
  return rawClients(n, { host: hostname, port: Number(port), ...(localAddress === undefined ? {} : { localAddress }) }, first);
}

/** GET `path` from `url` over a fresh connection from `localAddress`. */
function getFrom(url: string, path: string, localAddress: string): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port: Number(port), path, localAddress, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('no answer')));
    req.on('error', reject);
    req.end();
  });
}

describe('control plane connection limits', () => {
  const h = harnessEach({ httpLimits: TINY }, { open: true });

  // Each kind against the one mechanism that must close it, the others set far away.
  const LONG = 60_000;
  const cases = [
    { kind: 'silent after connecting', first: undefined, limits: { headersTimeoutMs: 300, requestTimeoutMs: LONG, idleTimeoutMs: LONG } },
    { kind: 'a head that never ends', first: 'GET /v1/nodes HTTP/1.1\r\nhost: x\r\n', limits: { headersTimeoutMs: 300, requestTimeoutMs: LONG, idleTimeoutMs: LONG } },
    { kind: 'a body that never ends', first: 'POST /v1/register HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{', limits: { headersTimeoutMs: 300, requestTimeoutMs: 600, idleTimeoutMs: LONG } },
    { kind: 'a malformed request, then silence (half-open after the 400)', first: 'NOT HTTP\r\n\r\n', limits: { headersTimeoutMs: LONG, requestTimeoutMs: LONG, idleTimeoutMs: LONG } },
    // State answers keep the connection (error answers to unread requests close it); 1,000 of
    // them with 20 peers each are more than the socket buffers take, so the server's writes stall.
    { kind: 'pipelined requests whose answers are never read', first: 'state', limits: { headersTimeoutMs: LONG, requestTimeoutMs: LONG, idleTimeoutMs: 600, keepAliveTimeoutMs: LONG, maxRequestsPerSocket: 10_000 } },
  ] as const;

  for (const c of cases) {
    // On PostgreSQL a state answer costs a dozen database round trips, so 3 x 1,000 pipelined
    // ones keep the server busy for longer than this test's budget: that case is SQLite's.
    const pgSlow = c.first === 'state' && testPostgresUrl() !== undefined;
    it.skipIf(pgSlow)(`closes connections with ${c.kind}; the socket count returns to baseline`, async () => {
      await h.start({ httpLimits: { keepAliveTimeoutMs: 200, checkIntervalMs: 100, ...c.limits }, rateLimits: { state: { burst: 1e6, perSecond: 1e6 } } });
      let first: string | undefined = c.first;
      let n = 30;
      if (first === 'state') {
        const a = await h.register();
        for (let i = 0; i < 20; i++) await h.register();
        first = `GET /v1/nodes/${a.node_id}/state HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${a.bearer}\r\n\r\n`.repeat(1000);
        n = 3;
      }
      const baseline = await h.cp.connections();
      const accepted = h.cp.counters.accepted;
      const clients = await clientsOf(h.cp.url, n, first);
      try {
        await until(() => h.cp.counters.accepted === accepted + n, 5000, 'every connection accepted');
        await until(async () => (await h.cp.connections()) === baseline, 15_000, 'the server to close every slow connection');
        // A normal request still works.
        expect(await getFrom(h.cp.url, '/v1/nope', '127.0.0.1')).toBe(404);
      } finally {
        for (const s of clients) s.destroy();
      }
    });
  }

  it('refuses connections over the per-source cap at once and still serves another source', async () => {
    await h.start({ httpLimits: { maxConnectionsPerSource: 20, maxConnections: 100 } });
    const baseline = await h.cp.connections();
    const clients = await clientsOf(h.cp.url, 50, undefined, '127.0.0.1');
    try {
      await until(() => h.cp.counters.refusedPerSource === 30, 5000, '30 refusals');
      await until(async () => (await h.cp.connections()) === baseline + 20, 5000, 'the refused sockets to close');
      expect(await getFrom(h.cp.url, '/v1/nope', '127.0.0.2')).toBe(404);
      expect(h.cp.counters.refusedTotal).toBe(0);
    } finally {
      for (const s of clients) s.destroy();
    }
    await until(async () => (await h.cp.connections()) === baseline, 5000, 'baseline');
    // The source's slots are free again.
    expect(await getFrom(h.cp.url, '/v1/nope', '127.0.0.1')).toBe(404);
  });

  it('refuses connections over the total cap', async () => {
    await h.start({ httpLimits: { maxConnectionsPerSource: 100, maxConnections: 10 } });
    const clients = await clientsOf(h.cp.url, 25);
    try {
      await until(() => h.cp.counters.refusedTotal === 15, 5000, '15 refusals');
    } finally {
      for (const s of clients) s.destroy();
    }
  });

  it('keeps an event stream open past the idle timeout and delivers on it', async () => {
    await h.start({ httpLimits: TINY, keepAliveMs: 60_000 });
    const a = await h.register();
    const stream = await openStream(h.cp.url, a.node_id, a.auth);
    try {
      await new Promise((r) => setTimeout(r, 4 * TINY.idleTimeoutMs));
      const b = await h.register();
      const ev = await stream.next((e) => e.envelope.type === 'peer_added');
      expect((ev.envelope.payload as { peer: { node_id: string } }).peer.node_id).toBe(b.node_id);
      expect(h.cp.counters.idleTimeouts).toBe(0);
    } finally {
      stream.close();
    }
  });
});

describe('control plane error logs', () => {
  const lines: string[] = [];
  const h = harnessEach({ logger: createLogger('verbose', '', (line) => void lines.push(line)) });

  it('logs 100 aborted request bodies as client aborts, not errors', async () => {
    lines.length = 0;
    const { hostname, port } = new URL(h.cp.url);
    for (let i = 0; i < 100; i++) {
      await new Promise<void>((resolve) => {
        const s = connect({ host: hostname, port: Number(port) }, () => {
          s.write('POST /v1/register HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"project_id":');
          setTimeout(() => s.destroy(), 5);
        });
        s.on('error', () => undefined);
        s.on('close', () => resolve());
      });
    }
    await until(() => h.cp.counters.clientAborts === 100, 10_000, '100 client aborts');
    expect(lines.filter((l) => l.startsWith('ERROR'))).toEqual([]);
    const aborts = lines.filter((l) => l.includes('client aborted'));
    expect(aborts).toHaveLength(100);
    expect(aborts.every((l) => l.startsWith('DEBUG') && !l.includes('\n    at '))).toBe(true);
  });
});
