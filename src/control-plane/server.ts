// The self-hosted control plane as a server: node:https (self-signed certificate made on first
// start) or node:http with insecureHttp, serving the API v1 routes over one ControlPlaneStore.
// Timers: a data_version poll that picks up CLI changes to the same database file, the liveness
// sweep and log pruning. createControlPlane is also what the demo command embeds.

import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../io/clock.js';
import { CONTROL_PLANE_HTTP_LIMITS, guardHttpServer, httpServerOptions, openConnections, type HttpGuardCounters, type HttpLimits } from '../io/http-guard.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { rateLimitErrors, type ErrorRateLimit } from '../log/rate-limit.js';
import { loadOrCreateTlsIdentity } from './certificate.js';
import { ControlPlaneError } from './errors.js';
import { EventBus } from './event-bus.js';
import { correlationId, sendProblem } from './http-io.js';
import { createStunServer, type StunServer } from '../nat/stun-server.js';
import { RelayAssigner, type RelayAssignerOptions } from './relay-assigner.js';
import { NodeRateLimits, type NodeRateLimitOptions } from './rate-limits.js';
import { ControlPlanePrometheus, startMetricsServer, type MetricsServer } from './prometheus.js';
import { PostgresDatabase } from './postgres.js';
import { matchRoute } from './routes.js';
import { SECRETS_KEY_SUFFIX } from './secrets.js';
import { isPostgresUrl } from './sql.js';
import { ControlPlaneStore } from './store.js';
import { createDashboard, type Dashboard } from './ui/dashboard.js';

/** The dashboard's requests, as one route of the request metrics. */
const UI_ROUTE = /^\/ui$/;
import { TelemetryStore, type TelemetryOptions } from './telemetry.js';

/** Options of createControlPlane. */
export interface ControlPlaneOptions {
  /** SQLite database file (created when absent). */
  readonly db: string;
  /** "HOST:PORT" or "[V6]:PORT"; port 0 picks a free one. */
  readonly listen: string;
  /** Plain HTTP instead of HTTPS (tests, or behind a TLS-terminating proxy). */
  readonly insecureHttp?: boolean;
  /** Time source (wall time). Default: the system clock. */
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Mesh range for a new database; default 10.100.0.0/16. */
  readonly meshCidr?: string;
  /** Access range of user-access clients (store.ts StoreOptions.accessCidr). */
  readonly accessCidr?: string;
  /** SSE keep-alive interval (default 15 s). */
  readonly keepAliveMs?: number;
  /** How often the database is checked for changes made by other processes (default 250 ms). */
  readonly pollMs?: number;
  /** How often heartbeat liveness is swept (default 5 s); relay sessions are re-evaluated then too. */
  readonly sweepMs?: number;
  /** Built-in STUN server on UDP "HOST:PORT" (docs/nat.md); none when absent. */
  readonly stun?: string;
  /** Relay assignment to bridges (default on); false turns it off. */
  readonly relay?: boolean | RelayAssignerOptions;
  /** The key file sealing the database's secrets; default `${db}.secrets.key` (store.ts). */
  readonly secretsKeyFile?: string;
  /** Start with a database or key file readable by group or others (default: refuse). */
  readonly allowInsecurePermissions?: boolean;
  /** Connection caps and timeouts over CONTROL_PLANE_HTTP_LIMITS (tests pass small ones). */
  readonly httpLimits?: Partial<HttpLimits>;
  /** Per-node request rate limits over NODE_RATE_LIMITS. */
  readonly rateLimits?: NodeRateLimitOptions;
  /** Limit on error lines (default 20 in a burst, then 1 per second). */
  readonly errorLogLimit?: ErrorRateLimit;
  /** Prometheus /metrics on a plain-HTTP listener of its own, "HOST:PORT" (port 0 picks one);
   *  none when absent (docs/operations.md "Prometheus metrics"). */
  readonly metricsListen?: string;
  /** The dashboard under /ui/ (default on; `serve --no-ui` turns it off). */
  readonly ui?: boolean | { readonly sessionTtlMs?: number };
  /** Telemetry ingest limits (telemetry.ts), or false: the telemetry routes answer 501. */
  readonly telemetry?: TelemetryOptions;
}

/** A running control plane. */
export interface ControlPlane {
  /** Base URL, e.g. "https://127.0.0.1:43123" (agents append /v1/...). */
  readonly url: string;
  /** Lowercase hex SHA-256 of the TLS certificate; undefined over plain HTTP. */
  readonly fingerprint: string | undefined;
  /** The store (same process), for embedding callers and tests. */
  readonly store: ControlPlaneStore;
  /** Runs the liveness sweep now and delivers its events. */
  sweep(): void;
  /** Checks for changes made by other processes now (what the poll timer does). */
  poll(): void;
  /** Open SSE streams. */
  readonly streams: number;
  /** Relay assignment (undefined when off). */
  readonly relay: RelayAssigner | undefined;
  /** The built-in STUN server's address (undefined when none). */
  readonly stunAddress: { address: string; port: number } | undefined;
  /** Connections refused or cut by the HTTP guard, and client aborts seen. */
  readonly counters: HttpGuardCounters & { clientAborts: number };
  /** Open server-side sockets (node's server.getConnections). */
  connections(): Promise<number>;
  /** The control plane's metrics (also served on metricsListen when set). */
  readonly prometheus: ControlPlanePrometheus;
  /** The metrics listener's URL, e.g. "http://127.0.0.1:9102/metrics"; undefined when none. */
  readonly metricsUrl: string | undefined;
  /** The dashboard (undefined when off). */
  readonly dashboard: Dashboard | undefined;
  /** Stops the server, ends every stream and closes the database. */
  close(): Promise<void>;
}

/** Splits "HOST:PORT" / "[V6]:PORT". Throws RangeError when malformed. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || port > 65535) throw new RangeError(`expected --listen HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: m[1] ?? m[2]!, port };
}

/** Starts a control plane; resolves once it listens. */
export async function createControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const { host, port } = parseListen(options.listen);
  const metricsAt = options.metricsListen === undefined ? undefined : parseListen(options.metricsListen);
  const log = rateLimitErrors(options.logger ?? silentLogger, options.errorLogLimit);
  const limits: HttpLimits = { ...CONTROL_PLANE_HTTP_LIMITS, ...options.httpLimits };
  const store = ControlPlaneStore.open(options.db, {
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.meshCidr === undefined ? {} : { meshCidr: options.meshCidr }),
    ...(options.accessCidr === undefined ? {} : { accessCidr: options.accessCidr }),
    ...(options.secretsKeyFile === undefined ? {} : { secretsKeyFile: options.secretsKeyFile }),
    allowInsecurePermissions: options.allowInsecurePermissions === true,
  });
  for (const n of store.keyConflicts()) {
    log.error(`control-plane: node ${n.node_id} (${n.resource_handle}) shares its WireGuard public key with an older node; it is left out of peer lists until it rotates its key or is removed`);
  }
  const bus = new EventBus(store, options.keepAliveMs === undefined ? {} : { keepAliveMs: options.keepAliveMs });
  store.onEvents = () => bus.schedulePump();
  let tls: ReturnType<typeof loadOrCreateTlsIdentity> | undefined;
  try {
    tls = options.insecureHttp === true ? undefined : loadOrCreateTlsIdentity(filesBase(options), [host], options.allowInsecurePermissions === true);
  } catch (err) {
    store.close();
    throw err;
  }
  const relay = options.relay === false ? undefined : new RelayAssigner(store, options.relay === true ? {} : options.relay);
  const ui = options.ui ?? true;
  const dashboard = ui === false ? undefined : createDashboard({ store, relay, secure: tls !== undefined, ...(typeof ui === 'object' && ui.sessionTtlMs !== undefined ? { sessionTtlMs: ui.sessionTtlMs } : {}) });
  // Open graphs hear of every logged event (the relay assigner's too: it calls onEvents).
  store.onEvents = () => {
    bus.schedulePump();
    dashboard?.changed();
  };
  const rateLimits = new NodeRateLimits(store.clock, options.rateLimits);
  const telemetry = options.telemetry === false ? undefined : new TelemetryStore(store.db, options.telemetry);
  let clientAborts = 0;
  let stun: StunServer | undefined;
  if (options.stun !== undefined) {
    const at = parseListen(options.stun);
    try {
      stun = await createStunServer({ listen: { address: at.host, port: at.port } });
    } catch (err) {
      store.close();
      throw err;
    }
    log.info(`control-plane: STUN listening on ${at.host}:${stun.address.port}`);
  }

  const prometheus = new ControlPlanePrometheus({ store, streams: () => bus.size, streamsDropped: () => bus.dropped, guard: () => guard });
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const timed = prometheus.track(req, res);
    res.setHeader('x-correlation-id', correlationId(req));
    const path = (req.url ?? '/').split('?')[0]!;
    if (dashboard !== undefined && (path === '/ui' || path.startsWith('/ui/'))) {
      timed(UI_ROUTE);
      dashboard.handle(req, res, path).catch((err: unknown) => {
        log.error(`control-plane: ${req.method} ${path.slice(0, 200)}: ${(err as Error).stack ?? String(err)}`);
        if (res.headersSent) res.destroy();
        else res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n');
      });
      return;
    }
    const route = matchRoute(req.method ?? 'GET', path);
    timed(route !== undefined && 'pattern' in route ? route.pattern : undefined);
    if (route === undefined) return sendProblem(res, 'not_found', `no route for ${req.method} ${path.slice(0, 200)}`, undefined, !req.complete);
    if ('allow' in route) {
      res.setHeader('allow', route.allow.join(', '));
      return sendProblem(res, 'method_not_allowed', `${req.method} not allowed here`, undefined, !req.complete);
    }
    route.handler({ req, res, store, bus, rateLimits, params: route.params, ...(relay === undefined ? {} : { relay }), ...(stun === undefined ? {} : { stun: stun.address }), ...(telemetry === undefined ? {} : { telemetry }) }).catch((err: unknown) => {
      if (isClientAbort(err, req)) {
        // The client went away mid-body: nothing to answer, nothing wrong here.
        clientAborts++;
        log.verbose(`control-plane: ${req.method} ${path.slice(0, 200)}: client aborted the request`);
        req.destroy();
        return;
      }
      if (err instanceof ControlPlaneError) {
        sendProblem(res, err.code, err.message, err.errors, !req.complete);
      } else if ((err as { code?: string }).code === 'SQLITE_BUSY') {
        sendProblem(res, 'unavailable', 'database busy, retry', undefined, !req.complete);
      } else {
        log.error(`control-plane: ${req.method} ${path}: ${(err as Error).stack ?? String(err)}`);
        sendProblem(res, 'internal', 'internal error', undefined, !req.complete);
      }
      // A body we stopped reading: drop the connection once the answer is out.
      if (!req.complete) res.on('finish', () => req.destroy());
    });
  };

  const serverOptions = httpServerOptions(limits);
  const server: Server =
    tls === undefined
      ? createHttpServer(serverOptions, handle)
      : createHttpsServer({ ...serverOptions, cert: tls.certPem, key: tls.keyPem, handshakeTimeout: limits.headersTimeoutMs }, handle);
  const guard = guardHttpServer(server, limits);

  let dataVersion = store.db.pragma('data_version', { simple: true }) as number;
  const poll = (): void => {
    const v = store.db.pragma('data_version', { simple: true }) as number;
    if (v === dataVersion) return;
    dataVersion = v;
    bus.pump();
    // Streams of nodes removed by another process (CLI, replica) end; a read of every node id,
    // so not when this process holds no stream (replicas are notified of every registration).
    if (bus.size > 0) bus.closeMissing(store.nodeIds());
    dashboard?.changed();
  };
  // Replicas on one PostgreSQL database: one of them (the holder of the leader lock) sweeps and
  // prunes; every one hears the others' events through LISTEN/NOTIFY at once (the poll stays as
  // the fallback).
  const pgDb = store.db instanceof PostgresDatabase ? store.db : undefined;
  const leads = (): boolean => pgDb?.leads() ?? true;
  pgDb?.listen(() => safely(log, 'poll', poll));
  const sweep = (): void => {
    // Relay sessions live in the database too: the leader alone re-evaluates and refreshes them.
    if (leads()) {
      if (store.sweepLiveness() > 0) dashboard?.changed();
      relay?.evaluate();
    }
    bus.pump();
  };
  const timers = [
    setInterval(() => safely(log, 'poll', poll), options.pollMs ?? 250),
    setInterval(() => safely(log, 'sweep', sweep), options.sweepMs ?? 5000),
    setInterval(() => safely(log, 'prune', () => {
      if (!leads()) return;
      store.prune();
      telemetry?.prune(store.now());
    }), 60_000),
  ];
  for (const t of timers) t.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let metricsServer: MetricsServer | undefined;
  if (metricsAt !== undefined) {
    try {
      metricsServer = await startMetricsServer(metricsAt.host, metricsAt.port, prometheus);
    } catch (err) {
      for (const t of timers) clearInterval(t);
      stun?.close();
      bus.close();
      dashboard?.close();
      server.close();
      store.close();
      throw err;
    }
  }
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  const url = `${tls === undefined ? 'http' : 'https'}://${urlHost}:${addr.port}`;
  log.info(`control-plane: listening on ${url}${tls === undefined ? '' : ` (sha256 ${tls.fingerprint})`}`);
  const metricsUrl = metricsServer === undefined ? undefined : `http://${metricsServer.address.family === 'IPv6' ? `[${metricsServer.address.address}]` : metricsServer.address.address}:${metricsServer.address.port}/metrics`;
  if (metricsUrl !== undefined) log.info(`control-plane: Prometheus metrics at ${metricsUrl}`);

  let closed: Promise<void> | undefined;
  return {
    url,
    fingerprint: tls?.fingerprint,
    store,
    sweep,
    poll,
    get streams() {
      return bus.size;
    },
    relay,
    dashboard,
    stunAddress: stun?.address,
    get counters() {
      return { ...guard, clientAborts };
    },
    connections: () => openConnections(server),
    prometheus,
    metricsUrl,
    close() {
      closed ??= (async () => {
        for (const t of timers) clearInterval(t);
        await metricsServer?.close();
        stun?.close();
        bus.close();
        dashboard?.close();
        await new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        });
        store.close();
      })();
      return closed;
    },
  };
}

/** Where the TLS identity lives: beside the SQLite file, or beside the secrets key of a
 *  PostgreSQL database (the files every replica shares: one certificate behind a load balancer). */
function filesBase(options: ControlPlaneOptions): string {
  if (!isPostgresUrl(options.db)) return options.db;
  const key = options.secretsKeyFile!;
  return key.endsWith(SECRETS_KEY_SUFFIX) ? key.slice(0, -SECRETS_KEY_SUFFIX.length) : key;
}

/** True when `err` is the request stream failing because the client aborted or reset it. */
function isClientAbort(err: unknown, req: IncomingMessage): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return !(err instanceof ControlPlaneError) && (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (req.destroyed && !req.complete));
}

function safely(log: Logger, what: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    log.error(`control-plane: ${what} failed: ${(err as Error).message}`);
  }
}
