// The agent's two small local HTTP servers: /healthz, /readyz and /metrics (Prometheus text, a
// TextRoutes entry) on 127.0.0.1:9101 (plexd's health endpoint), and the node API, JSON over HTTP
// on a unix socket (default /var/run/plexd/api.sock, mode 0660) that `plexd-userspace status` and
// `peers` query.
// GET only; small bounded responses; the socket path is replaced if a stale socket is left over.
// Both carry the connection caps and timeouts of LOCAL_HTTP_LIMITS (src/io/http-guard.ts).

import * as http from 'node:http';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { guardHttpServer, httpServerOptions, LOCAL_HTTP_LIMITS, openConnections, type HttpGuardCounters, type HttpLimits } from '../io/http-guard.js';

/** A route table: path -> handler returning [status, JSON body]. */
export type Routes = Readonly<Record<string, () => readonly [number, unknown]>>;

/** Routes answering text (e.g. Prometheus /metrics): path -> async handler resolving to
 *  [status, content type, body]. GET/HEAD only, like Routes; a rejection is a 500. */
export type TextRoutes = Readonly<Record<string, () => Promise<readonly [number, string, string]>>>;

/** A running local server. */
export interface LocalServer {
  /** TCP port, or 0 for a unix socket. */
  readonly port: number;
  /** Connections refused or cut (caps, timeouts, malformed requests). */
  readonly counters: HttpGuardCounters;
  /** Open server-side sockets. */
  connections(): Promise<number>;
  close(): Promise<void>;
}

function handler(routes: Routes, text: TextRoutes): http.RequestListener {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (Object.hasOwn(text, path) && (req.method === 'GET' || req.method === 'HEAD')) {
      text[path]!().then(
        ([status, type, body]) => send(res, req.method === 'HEAD', status, type, body),
        (err: unknown) => send(res, req.method === 'HEAD', 500, 'application/json', JSON.stringify({ error: (err as Error).message }) + '\n'),
      );
      return;
    }
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    let status = 404;
    let body: unknown = { error: 'not_found' };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      status = 405;
      body = { error: 'method_not_allowed' };
    } else if (route !== undefined) {
      try {
        [status, body] = route();
      } catch (err) {
        status = 500;
        body = { error: (err as Error).message };
      }
    }
    send(res, req.method === 'HEAD', status, 'application/json', JSON.stringify(body) + '\n');
  };
}

function send(res: http.ServerResponse, head: boolean, status: number, type: string, text: string): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(head ? undefined : text);
}

/** A guarded server for `routes`, listening once `listen` has run; rejects when that fails. */
async function serve(routes: Routes, limits: Partial<HttpLimits>, listen: (server: http.Server) => void, text: TextRoutes = {}): Promise<{ server: http.Server; counters: HttpGuardCounters }> {
  const all = { ...LOCAL_HTTP_LIMITS, ...limits };
  const server = http.createServer(httpServerOptions(all), handler(routes, text));
  const counters = guardHttpServer(server, all);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      resolve();
    });
    listen(server);
  });
  return { server, counters };
}

function closer(server: http.Server, after?: () => void): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      server.close(() => {
        after?.();
        resolve();
      });
      server.closeAllConnections();
    });
}

/** Serves `routes` (and the text routes `text`) on "HOST:PORT" (port 0 picks one); `limits` over
 *  LOCAL_HTTP_LIMITS. Rejects when the address is taken. */
export async function startTcpServer(listen: string, routes: Routes, limits: Partial<HttpLimits> = {}, text: TextRoutes = {}): Promise<LocalServer> {
  const m = /^\[?(.+?)\]?:([0-9]{1,5})$/.exec(listen);
  if (m === null) throw new TypeError(`expected HOST:PORT, got ${JSON.stringify(listen)}`);
  const { server, counters } = await serve(routes, limits, (s) => s.listen(Number(m[2]), m[1]), text);
  return { port: (server.address() as AddressInfo).port, counters, connections: () => openConnections(server), close: closer(server) };
}

/** Serves `routes` on a unix socket at `path` (mode 0660; a stale socket there is replaced);
 *  `limits` over LOCAL_HTTP_LIMITS (every caller is one source there: the total cap applies). */
export async function startUnixServer(path: string, routes: Routes, limits: Partial<HttpLimits> = {}): Promise<LocalServer> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // absent
  }
  // Bound in a fresh 0700 directory, made 0660 there and only then renamed into place: bound at
  // `path` directly it would carry the process umask's mode until the chmod, a window in which
  // any local user could connect.
  const staging = mkdtempSync(join(dirname(path), '.plexd-api-'));
  let bound: Awaited<ReturnType<typeof serve>> | undefined;
  try {
    bound = await serve(routes, { maxConnectionsPerSource: LOCAL_HTTP_LIMITS.maxConnections, ...limits }, (s) => s.listen(join(staging, 's')));
    chmodSync(join(staging, 's'), 0o660);
    renameSync(join(staging, 's'), path);
  } catch (err) {
    bound?.server.close();
    throw err;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  const { server, counters } = bound;
  return {
    port: 0,
    counters,
    connections: () => openConnections(server),
    close: closer(server, () => {
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    }),
  };
}

/** GETs `path` from the node API socket; resolves with the parsed JSON. Rejects after 5 s. */
export function queryUnix(socketPath: string, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path, method: 'GET', timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
        if (text.length > 16 << 20) req.destroy(new Error('node API response too large'));
      });
      res.on('end', () => {
        try {
          resolve(JSON.parse(text) as unknown);
        } catch {
          reject(new Error(`node API at ${socketPath} answered something that is not JSON`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`node API at ${socketPath} did not answer within 5 s`)));
    req.on('error', (err) => reject(new Error(`cannot reach the agent at ${socketPath}: ${err.message} (is \`plexd-userspace up\` running?)`)));
    req.end();
  });
}
