// Connection hygiene for our node:http(s) servers (the control plane, the agent's health and node
// API listeners): header, request, idle and keep-alive timeouts, a global and a per-source
// connection cap (excess connections are closed at once and counted), and a clientError handler
// that destroys the socket instead of leaving it half-open. Long-lived responses (SSE) opt out of
// the idle timeout with res.socket.setTimeout(0) and keep their own heartbeat.

import type { Server, ServerOptions } from 'node:http';
import type { Socket } from 'node:net';

/** Limits of one HTTP server; times in ms. */
export interface HttpLimits {
  /** Whole request head must arrive within this. */
  readonly headersTimeoutMs: number;
  /** Whole request (head and body) must arrive within this. */
  readonly requestTimeoutMs: number;
  /** A socket with no traffic either way for this long is destroyed (a client that stops reading
   *  its response included). Streams set their socket's timeout to 0. */
  readonly idleTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  readonly keepAliveTimeoutMs: number;
  /** Requests served on one connection before it is closed. */
  readonly maxRequestsPerSocket: number;
  /** Open connections in total; more are destroyed on accept. */
  readonly maxConnections: number;
  /** Open connections from one remote address; more are destroyed on accept. */
  readonly maxConnectionsPerSource: number;
  /** How often node:http checks the header and request timeouts (its granularity). */
  readonly checkIntervalMs: number;
}

/** The control plane's defaults: a fleet behind one NAT still fits under the per-source cap (each
 *  agent holds one event stream and makes a request now and then). */
export const CONTROL_PLANE_HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  maxRequestsPerSocket: 1000,
  maxConnections: 4096,
  maxConnectionsPerSource: 512,
  checkIntervalMs: 5_000,
};

/** The agent's local listeners (health on loopback, node API on a unix socket): a few local
 *  callers, small answers. */
export const LOCAL_HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  idleTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  maxRequestsPerSocket: 100,
  maxConnections: 64,
  maxConnectionsPerSource: 32,
  checkIntervalMs: 1_000,
};

/** What a guard has refused or cut, for logs and tests. */
export interface HttpGuardCounters {
  /** Connections accepted (within the caps). */
  accepted: number;
  /** Connections destroyed on accept: total cap reached. */
  refusedTotal: number;
  /** Connections destroyed on accept: per-source cap reached. */
  refusedPerSource: number;
  /** Sockets ended by clientError (malformed request, header/request timeout, reset). */
  clientErrors: number;
  /** Sockets destroyed for being idle. */
  idleTimeouts: number;
}

/** The node:http(s) createServer options that carry `limits` (timeouts are enforced by node). */
export function httpServerOptions(limits: HttpLimits): ServerOptions {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: limits.checkIntervalMs,
  };
}

/** Installs `limits` on a server made with {@link httpServerOptions}: the caps, the idle timeout,
 *  the request limit per socket and a clientError handler that destroys. Returns the counters. */
export function guardHttpServer(server: Server, limits: HttpLimits): HttpGuardCounters {
  const counters: HttpGuardCounters = { accepted: 0, refusedTotal: 0, refusedPerSource: 0, clientErrors: 0, idleTimeouts: 0 };
  server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
  server.maxHeadersCount = 100;
  // A 'timeout' listener replaces node's default (destroy), so count and destroy here.
  server.setTimeout(limits.idleTimeoutMs, (socket: Socket) => {
    counters.idleTimeouts++;
    socket.destroy();
  });
  let open = 0;
  const bySource = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const source = socket.remoteAddress ?? 'local';
    const mine = bySource.get(source) ?? 0;
    if (open >= limits.maxConnections || mine >= limits.maxConnectionsPerSource) {
      if (open >= limits.maxConnections) counters.refusedTotal++;
      else counters.refusedPerSource++;
      socket.destroy();
      return;
    }
    open++;
    counters.accepted++;
    bySource.set(source, mine + 1);
    socket.once('close', () => {
      open--;
      const n = (bySource.get(source) ?? 1) - 1;
      if (n <= 0) bySource.delete(source);
      else bySource.set(source, n);
    });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    counters.clientErrors++;
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    // end() alone leaves a half-open socket for as long as the client keeps its side open.
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`, () => socket.destroy());
    socket.setTimeout(1000, () => socket.destroy());
  });
  return counters;
}

/** Open server-side sockets of `server` (node's getConnections, as a promise). */
export function openConnections(server: Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((err, n) => (err === null ? resolve(n) : reject(err))));
}
