// The agent's two small local HTTP servers: /healthz, /readyz and /metrics (Prometheus text, a
// TextRoutes entry) on 127.0.0.1:9101 (plexd's health endpoint), and the node API, JSON over HTTP on a unix socket (default
// /var/run/plexd/api.sock, mode 0660) that `plexd-userspace status`, `peers` and `state` query,
// optionally also on TCP behind a bearer token (node_api.http_enabled). A route answers GET/HEAD
// (a plain function) or the methods it names; request bodies are bounded (413 past the cap);
// handlers may be async and may answer JSON or text/bytes. The socket path is replaced if a
// stale socket is left over. Both carry the connection caps and timeouts of LOCAL_HTTP_LIMITS
// (src/io/http-guard.ts).

import * as http from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { guardHttpServer, httpServerOptions, LOCAL_HTTP_LIMITS, openConnections, type HttpGuardCounters, type HttpLimits } from '../io/http-guard.js';

/** What a handler sees of a request. */
export interface LocalRequest {
  readonly method: string;
  /** The path without the query, as sent (not percent-decoded). */
  readonly path: string;
  /** For a prefix route ("/a/b/*"): the part after the prefix, as sent (not percent-decoded). */
  readonly rest: string;
  readonly query: URLSearchParams;
  readonly headers: http.IncomingHttpHeaders;
  /** The request body (empty for GET/HEAD), at most ServeOptions.maxBodyBytes. */
  readonly body: Buffer;
}

/** A non-JSON (or fully specified) answer: `text` is sent as is with `contentType`. */
export interface LocalReply {
  readonly status: number;
  /** JSON body (ignored when `text` is given); omitted with a 204. */
  readonly json?: unknown;
  readonly text?: string | Uint8Array;
  /** Default application/json, or text/plain; charset=utf-8 with `text`. */
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** What a handler returns: [status, JSON body] (the original form) or a LocalReply. */
export type RouteResult = readonly [number, unknown] | LocalReply;

/** A handler; may be async. A throw answers 500 with its message. */
export type RouteHandler = (req: LocalRequest) => RouteResult | Promise<RouteResult>;

/** A route: a handler for GET (and HEAD), or a handler per method. */
export type Route = RouteHandler | Readonly<Partial<Record<'GET' | 'PUT' | 'POST' | 'DELETE', RouteHandler>>>;

/** A route table: exact path -> route; a key ending in "/*" matches every path under it (longest
 *  prefix wins) and hands the remainder to the handler as `rest`. */
export type Routes = Readonly<Record<string, Route>>;

/** Routes answering text (e.g. Prometheus /metrics): path -> async handler resolving to
 *  [status, content type, body]. GET/HEAD only; a rejection is a 500. A shorthand for Routes
 *  whose handlers return a LocalReply with `text`. */
export type TextRoutes = Readonly<Record<string, () => Promise<readonly [number, string, string]>>>;

/** `text` as Routes. */
function textRoutes(text: TextRoutes): Routes {
  const out: Record<string, Route> = {};
  for (const [path, h] of Object.entries(text)) {
    out[path] = async () => {
      const [status, contentType, body] = await h();
      return { status, text: body, contentType };
    };
  }
  return out;
}

/** Per-server request options. */
export interface ServeOptions {
  /** When set, every request must carry `Authorization: Bearer <token>` (401 otherwise). */
  readonly bearerToken?: string;
  /** Largest request body accepted (413 past it). Default 64 KiB. */
  readonly maxBodyBytes?: number;
}

/** Default cap on a request body. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

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

function findRoute(routes: Routes, path: string): { route: Route; rest: string } | undefined {
  if (Object.hasOwn(routes, path)) return { route: routes[path]!, rest: '' };
  let best: { route: Route; rest: string } | undefined;
  let bestLen = -1;
  for (const key of Object.keys(routes)) {
    if (!key.endsWith('/*')) continue;
    const prefix = key.slice(0, -1);
    if (path.startsWith(prefix) && prefix.length > bestLen) {
      best = { route: routes[key]!, rest: path.slice(prefix.length) };
      bestLen = prefix.length;
    }
  }
  return best;
}

function handlerFor(route: Route, method: string): RouteHandler | undefined {
  if (typeof route === 'function') return method === 'GET' || method === 'HEAD' ? route : undefined;
  const m = (method === 'HEAD' ? 'GET' : method) as keyof typeof route;
  return Object.hasOwn(route, m) ? route[m] : undefined;
}

function allowed(route: Route): string {
  return typeof route === 'function' ? 'GET, HEAD' : Object.keys(route).join(', ');
}

function tokenMatches(header: string | undefined, expected: Buffer): boolean {
  const m = /^Bearer +(\S+) *$/i.exec(header ?? '');
  // Compare digests: equal length whatever was sent, constant time.
  const given = createHash('sha256').update(m === null ? '' : m[1]!).digest();
  return timingSafeEqual(given, expected) && m !== null;
}

/** Reads the body up to `max` bytes; undefined when it is larger (the rest is not read). */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(req: http.IncomingMessage, res: http.ServerResponse, result: RouteResult, closeAfter = false): void {
  // The client may be gone by the time an async handler answers.
  if (res.destroyed) return;
  const reply: LocalReply = Array.isArray(result) ? { status: (result as readonly [number, unknown])[0], json: (result as readonly [number, unknown])[1] } : (result as LocalReply);
  const headers: Record<string, string | number> = { 'cache-control': 'no-store', ...reply.headers };
  if (closeAfter) headers['connection'] = 'close';
  if (reply.status === 204) {
    res.writeHead(204, headers);
    res.end();
    return;
  }
  const payload = reply.text !== undefined ? Buffer.from(reply.text) : Buffer.from(JSON.stringify(reply.json ?? null) + '\n');
  headers['content-type'] = reply.contentType ?? (reply.text !== undefined ? 'text/plain; charset=utf-8' : 'application/json');
  headers['content-length'] = payload.length;
  res.writeHead(reply.status, headers);
  res.end(req.method === 'HEAD' ? undefined : payload);
}

function handler(routes: Routes, opts: ServeOptions): http.RequestListener {
  const token = opts.bearerToken === undefined ? undefined : createHash('sha256').update(opts.bearerToken).digest();
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  return (req, res) => {
    void (async () => {
      const method = req.method ?? 'GET';
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      if (token !== undefined && !tokenMatches(req.headers.authorization, token)) {
        send(req, res, { status: 401, json: { error: 'unauthorized' }, headers: { 'www-authenticate': 'Bearer' } }, true);
        return;
      }
      const found = findRoute(routes, path);
      if (found === undefined) return send(req, res, [404, { error: 'not_found' }]);
      const h = handlerFor(found.route, method);
      if (h === undefined) return send(req, res, { status: 405, json: { error: 'method_not_allowed' }, headers: { allow: allowed(found.route) } });
      let body: Buffer = Buffer.alloc(0);
      if (method !== 'GET' && method !== 'HEAD') {
        const read = await readBody(req, maxBody);
        if (read === undefined) return send(req, res, [413, { error: 'body_too_large', limit_bytes: maxBody }], true);
        body = read;
      }
      let result: RouteResult;
      try {
        result = await h({ method, path, rest: found.rest, query: new URLSearchParams(q < 0 ? '' : url.slice(q + 1)), headers: req.headers, body });
      } catch (err) {
        result = [500, { error: (err as Error).message }];
      }
      send(req, res, result);
    })().catch((err: unknown) => {
      if (!res.headersSent) send(req, res, [500, { error: (err as Error).message }], true);
      else res.destroy();
    });
  };
}

/** A guarded server for `routes`, listening once `listen` has run; rejects when that fails. */
async function serve(routes: Routes, limits: Partial<HttpLimits>, opts: ServeOptions, listen: (server: http.Server) => void): Promise<{ server: http.Server; counters: HttpGuardCounters }> {
  const all = { ...LOCAL_HTTP_LIMITS, ...limits };
  const server = http.createServer(httpServerOptions(all), handler(routes, opts));
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
 *  LOCAL_HTTP_LIMITS; `opts` a bearer token and the body cap. Rejects when the address is taken. */
export async function startTcpServer(listen: string, routes: Routes, limits: Partial<HttpLimits> = {}, text: TextRoutes = {}, opts: ServeOptions = {}): Promise<LocalServer> {
  const m = /^\[?(.+?)\]?:([0-9]{1,5})$/.exec(listen);
  if (m === null) throw new TypeError(`expected HOST:PORT, got ${JSON.stringify(listen)}`);
  const { server, counters } = await serve({ ...routes, ...textRoutes(text) }, limits, opts, (s) => s.listen(Number(m[2]), m[1]));
  return { port: (server.address() as AddressInfo).port, counters, connections: () => openConnections(server), close: closer(server) };
}

/** Serves `routes` on a unix socket at `path` (mode 0660; a stale socket there is replaced);
 *  `limits` over LOCAL_HTTP_LIMITS (every caller is one source there: the total cap applies). */
export async function startUnixServer(path: string, routes: Routes, limits: Partial<HttpLimits> = {}, opts: ServeOptions = {}): Promise<LocalServer> {
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
    bound = await serve(routes, { maxConnectionsPerSource: LOCAL_HTTP_LIMITS.maxConnections, ...limits }, opts, (s) => s.listen(join(staging, 's')));
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

/** One request to the node API socket: resolves with the status and the parsed JSON body
 *  (undefined when empty or not JSON). Rejects when the agent is unreachable or after 5 s. */
export function requestUnix(socketPath: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
    const req = http.request({ socketPath, path, method, headers, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
        if (text.length > 16 << 20) req.destroy(new Error('node API response too large'));
      });
      res.on('end', () => {
        let parsed: unknown;
        try {
          parsed = text === '' ? undefined : (JSON.parse(text) as unknown);
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`node API at ${socketPath} did not answer within 5 s`)));
    req.on('error', (err) => reject(new Error(`cannot reach the agent at ${socketPath}: ${err.message} (is \`plexd-userspace up\` running?)`)));
    req.end(payload);
  });
}
