// The agent's local HTTP listeners (src/agent/local-http.ts) under slow clients: idle and
// slow-header connections are closed, the caps refuse excess connections at once, a normal GET
// still works, and the socket count returns to baseline, on TCP and on the unix socket.

import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { get } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pollUntil as until, rawClients } from '../helpers/raw-clients.js';
import { startTcpServer, startUnixServer, queryUnix, type LocalServer } from '../../src/agent/local-http.js';

const routes = { '/healthz': () => [200, { ok: true }] as const };
const TINY = { headersTimeoutMs: 300, requestTimeoutMs: 600, idleTimeoutMs: 600, keepAliveTimeoutMs: 200, checkIntervalMs: 100 };

const healthz = (port: number) =>
  new Promise<number>((resolve, reject) => get({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on('error', reject));

describe('agent local HTTP listeners', () => {
  let server: LocalServer | undefined;
  let dir: string | undefined;
  const open: Socket[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) s.destroy();
    await server?.close();
    server = undefined;
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('health listener: closes idle and slow-header connections, refuses over the cap, still answers', async () => {
    server = await startTcpServer('127.0.0.1:0', routes, { ...TINY, maxConnections: 100, maxConnectionsPerSource: 20 });
    open.push(...(await rawClients(10, server, undefined)), ...(await rawClients(10, server, 'GET /healthz HTTP/1.1\r\n')), ...(await rawClients(10, server)));
    await until(() => server!.counters.refusedPerSource === 10, 5000, '10 refusals');
    await until(async () => (await server!.connections()) === 0, 10_000, 'every slow connection closed');
    expect(await healthz(server.port)).toBe(200);
  });

  it('node API socket: 0660 whatever the umask, bound elsewhere and moved into place, nothing left beside it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'local-http-'));
    const path = join(dir, 'api.sock');
    const old = process.umask(0);
    try {
      server = await startUnixServer(path, routes);
    } finally {
      process.umask(old);
    }
    expect(statSync(path).mode & 0o777).toBe(0o660);
    expect(readdirSync(dir)).toEqual(['api.sock']);
    expect(await queryUnix(path, '/healthz')).toEqual({ ok: true });
    await server.close();
    server = undefined;
    expect(readdirSync(dir)).toEqual([]);
  });

  it('node API socket: the total cap applies to its one source, and slow clients are closed', async () => {
    dir = mkdtempSync(join(tmpdir(), 'local-http-'));
    const path = join(dir, 'api.sock');
    server = await startUnixServer(path, routes, { ...TINY, maxConnections: 16 });
    open.push(...(await rawClients(24, { path }, 'GET /healthz HTTP/1.1\r\n')));
    await until(() => server!.counters.refusedTotal === 8, 5000, '8 refusals');
    await until(async () => (await server!.connections()) === 0, 10_000, 'every slow connection closed');
    expect(await queryUnix(path, '/healthz')).toEqual({ ok: true });
  });
});
