// The control plane's Prometheus metrics (docs/operations.md "Prometheus metrics"): /metrics in the
// text exposition format 0.0.4 on a listener of its own (`serve --metrics-listen 127.0.0.1:9102`,
// plain HTTP, meant for loopback), never on the API listener, which faces the nodes. Request latency
// is a histogram by route pattern (`/v1/nodes/{node_id}/heartbeat`), never the raw path; nodes by
// status, streams and the event log's sequence are read at scrape time.

import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { guardHttpServer, httpServerOptions, LOCAL_HTTP_LIMITS, type HttpGuardCounters } from '../io/http-guard.js';
import { PROMETHEUS_CONTENT_TYPE, processMetricsRegistry } from '../log/prometheus.js';
import { lastSeq } from './event-log.js';
import { prepared } from './prepared.js';
import type { ControlPlaneStore } from './store.js';

/** Buckets of the request latency histogram (seconds). */
export const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
/** Distinct node status values exported; more (none exist today) are summed as status="other". */
const STATUS_LIMIT = 16;
const KNOWN_STATUSES = ['online', 'unreachable', 'offline'] as const;
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** What the metrics read from the running control plane at scrape time. */
export interface ControlPlaneMetricsSource {
  readonly store: Pick<ControlPlaneStore, 'db'>;
  /** Open SSE streams. */
  streams(): number;
  /** Streams the bus dropped for a full buffer or a stall. */
  streamsDropped(): { readonly buffer: number; readonly stalled: number };
  /** What the API listener's guard refused or cut. */
  guard(): HttpGuardCounters;
}

const routeLabels = new WeakMap<RegExp, string>();

/**
 * The label of a route: its pattern's source with each capture group named after the path
 * segment before it (`^/v1/nodes/(UUID)/events$` -> `/v1/nodes/{node_id}/events`). A fixed set:
 * one value per route in routes.ts, whatever the clients send.
 */
export function routeLabel(pattern: RegExp): string {
  let label = routeLabels.get(pattern);
  if (label !== undefined) return label;
  let out = '';
  let depth = 0;
  const src = pattern.source.replace(/^\^/, '').replace(/\$$/, '');
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '\\' && depth === 0) {
      out += src[++i] ?? '';
    } else if (c === '\\') {
      i++;
    } else if (c === '(') {
      if (depth++ === 0) {
        const segment = /([a-z-]+)\/$/.exec(out)?.[1] ?? 'param';
        out += `{${segment.replace(/s$/, '').replace(/-/g, '_')}_id}`;
      }
    } else if (c === ')') {
      depth--;
    } else if (depth === 0) {
      out += c;
    }
  }
  label = out;
  routeLabels.set(pattern, label);
  return label;
}

/** The control plane's metrics: a per-instance Registry. */
export class ControlPlanePrometheus {
  readonly registry = new Registry();
  readonly #requests: Histogram<'method' | 'route' | 'code'>;
  readonly #registrations: Counter;
  readonly #streamsOpened: Counter;
  #inflight: Promise<string> | undefined;

  constructor(source: ControlPlaneMetricsSource) {
    const registers = [this.registry];
    this.#requests = new Histogram({
      name: 'plexd_control_plane_http_request_duration_seconds',
      help: 'API request latency until the answer is sent, by method, route pattern and status code (unmatched paths: route="unmatched"; SSE streams are not timed).',
      labelNames: ['method', 'route', 'code'],
      buckets: [...REQUEST_BUCKETS],
      registers,
    });
    this.#registrations = new Counter({ name: 'plexd_control_plane_registrations_total', help: 'Successful node registrations (POST /v1/register answered 2xx).', registers });
    this.#streamsOpened = new Counter({ name: 'plexd_control_plane_event_streams_opened_total', help: 'SSE event streams opened.', registers });
    new Gauge({
      name: 'plexd_control_plane_nodes',
      help: 'Registered nodes by status (online, unreachable, offline).',
      labelNames: ['status'],
      registers,
      collect() {
        this.reset();
        for (const s of KNOWN_STATUSES) this.set({ status: s }, 0);
        const rows = prepared(source.store.db, 'SELECT status, count(*) AS n FROM nodes GROUP BY status ORDER BY status').all() as Array<{ status: string; n: number }>;
        let other = 0;
        let distinct = KNOWN_STATUSES.length;
        for (const r of rows) {
          if ((KNOWN_STATUSES as readonly string[]).includes(r.status)) this.set({ status: r.status }, r.n);
          else if (distinct < STATUS_LIMIT && /^[a-z_]{1,32}$/.test(r.status)) {
            distinct++;
            this.set({ status: r.status }, r.n);
          } else other += r.n;
        }
        if (other > 0) this.set({ status: 'other' }, other);
      },
    });
    new Gauge({
      name: 'plexd_control_plane_event_streams',
      help: 'Open SSE event streams.',
      registers,
      collect() {
        this.set(source.streams());
      },
    });
    new Counter({
      name: 'plexd_control_plane_event_streams_dropped_total',
      help: 'SSE streams dropped by the server, by reason (buffer: its client fell too far behind; stalled: its writes did not drain).',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        const d = source.streamsDropped();
        this.inc({ reason: 'buffer' }, d.buffer);
        this.inc({ reason: 'stalled' }, d.stalled);
      },
    });
    new Counter({
      name: 'plexd_control_plane_events_total',
      help: 'Events appended to the event log (its sequence number, which survives restarts); rate() gives events per second.',
      registers,
      collect() {
        this.reset();
        this.inc(lastSeq(source.store.db));
      },
    });
    new Counter({
      name: 'plexd_control_plane_http_connections_refused_total',
      help: 'API connections refused or cut by the connection guard, by reason (total_cap, source_cap, client_error, idle).',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        const g = source.guard();
        this.inc({ reason: 'total_cap' }, g.refusedTotal);
        this.inc({ reason: 'source_cap' }, g.refusedPerSource);
        this.inc({ reason: 'client_error' }, g.clientErrors);
        this.inc({ reason: 'idle' }, g.idleTimeouts);
      },
    });
  }

  /**
   * Times one API request: call at its start; the returned function, called with the matched
   * route's pattern (undefined: none), observes when the response finishes.
   */
  track(req: http.IncomingMessage, res: http.ServerResponse): (pattern: RegExp | undefined) => void {
    const start = process.hrtime.bigint();
    return (pattern) => {
      res.once('finish', () => {
        const route = pattern === undefined ? 'unmatched' : routeLabel(pattern);
        if (String(res.getHeader('content-type') ?? '').startsWith('text/event-stream')) {
          this.#streamsOpened.inc();
          return;
        }
        const method = METHODS.has(req.method ?? '') ? req.method! : 'other';
        this.#requests.observe({ method, route, code: String(res.statusCode) }, Number(process.hrtime.bigint() - start) / 1e9);
        if (route === '/v1/register' && res.statusCode < 300) this.#registrations.inc();
      });
    };
  }

  /** The exposition text: this control plane's metrics, then the process's. Concurrent scrapes
   *  share one collection. */
  metrics(): Promise<string> {
    this.#inflight ??= (async () => (await this.registry.metrics()) + (await processMetricsRegistry().metrics()))().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }
}

/** A running metrics listener. */
export interface MetricsServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/**
 * Serves `metrics` at GET /metrics on "HOST:PORT" (plain HTTP, LOCAL_HTTP_LIMITS' caps): 404 for
 * other paths, 405 for other methods. Rejects when the address is taken.
 */
export async function startMetricsServer(host: string, port: number, metrics: ControlPlanePrometheus): Promise<MetricsServer> {
  const server = http.createServer(httpServerOptions(LOCAL_HTTP_LIMITS), (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const answer = (status: number, type: string, body: string): void => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...(status === 405 ? { allow: 'GET, HEAD' } : {}) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (path !== '/metrics') return answer(404, 'text/plain; charset=utf-8', 'not found; metrics are at /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(405, 'text/plain; charset=utf-8', 'method not allowed\n');
    metrics.metrics().then(
      (text) => answer(200, PROMETHEUS_CONTENT_TYPE, text),
      (err: unknown) => answer(500, 'text/plain; charset=utf-8', `metrics failed: ${(err as Error).message}\n`),
    );
  });
  guardHttpServer(server, LOCAL_HTTP_LIMITS);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
