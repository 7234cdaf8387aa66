// The plexd API v1 routes of the control plane (plexd-api.md "Endpoints"): parse, authenticate,
// call the store, answer. Every node route needs the node's bearer credential and only serves
// that node (403 otherwise); every failure is a problem+json with a code.

import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  DEFAULT_CREDENTIAL_ENV,
  parseBearer,
  parseCapabilitiesRequest,
  parseDeregisterRequest,
  parseEndpointRequest,
  parseExecutionReport,
  parseHeartbeatPolicyReport,
  parseHeartbeatRequest,
  parseKeyRotateRequest,
  parseNodeStateReportRequest,
  parseRegisterRequest,
  SECRET_KID_HEADER,
  SECRET_VERSION_HEADER,
  formatRfc3339,
  type ParseResult,
} from '../api/index.js';
import { acceptUpload, MAX_UPLOAD_BYTES, reportExecution } from './actions.js';
import { ControlPlaneError } from './errors.js';
import type { EventBus } from './event-bus.js';
import { readJsonBody, sendJson } from './http-io.js';
import { deleteReport, putReport, secretForNode, stateBlockOf } from './node-state.js';
import { applyPathReport, withRelays, type RelayAssigner } from './relay-assigner.js';
import type { NodeRateLimits } from './rate-limits.js';
import type { ControlPlaneStore, NodeRow } from './store.js';
import { recordRuleHits } from './ui/rule-hits.js';
import type { TelemetryStore } from './telemetry.js';

/** What a handler gets. */
interface Ctx {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly store: ControlPlaneStore;
  readonly bus: EventBus;
  readonly params: readonly string[];
  /** Relay assignment (docs/nat.md); absent when the server runs without it. */
  readonly relay?: RelayAssigner;
  /** Per-node limits on requests whose cost grows with the fleet. */
  readonly rateLimits: NodeRateLimits;
  /** The built-in STUN server's bound address, offered to agents (docs/nat.md); absent: none. */
  readonly stun?: { readonly address: string; readonly port: number };
  /** Telemetry ingest (telemetry.ts); absent: not provisioned (501). */
  readonly telemetry?: TelemetryStore;
}

/**
 * The `stun_servers` offer of a register or state response (docs/nat.md "STUN by default"): the
 * built-in STUN server's address; when it listens on a wildcard address, the host this request
 * reached the control plane by (its Host header), which the agent can evidently reach. Empty when
 * there is no STUN server or no usable host.
 */
export function stunOffer(ctx: Pick<Ctx, 'req' | 'stun'>): { stun_servers?: string[] } {
  const stun = ctx.stun;
  if (stun === undefined) return {};
  if (stun.address !== '0.0.0.0' && stun.address !== '::') {
    return { stun_servers: [stun.address.includes(':') ? `[${stun.address}]:${stun.port}` : `${stun.address}:${stun.port}`] };
  }
  const host = ctx.req.headers.host;
  if (typeof host !== 'string' || host === '' || host.length > 261) return {};
  let hostname: string;
  try {
    hostname = new URL(`http://${host}/`).hostname;
  } catch {
    return {};
  }
  return hostname === '' ? {} : { stun_servers: [`${hostname}:${stun.port}`] };
}

type Handler = (ctx: Ctx) => Promise<void>;

interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  readonly handler: Handler;
}

const UUID = '([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})';
/** One path segment (a secret name or state key, checked by its handler). */
const STATE_SEGMENT = '([^/]{1,512})';
const EXEC_ID = '([A-Za-z0-9._-]{1,128})';

/** A path segment percent-decoded; validation_failed when it does not decode. */
function segment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ControlPlaneError('validation_failed', 'the path segment is not valid percent-encoding');
  }
}

/** The body parsed by `parse`, or a validation_failed naming each bad field. */
function valid<T>(r: ParseResult<T>): T {
  if (r.ok) return r.value;
  throw new ControlPlaneError('validation_failed', r.errors.map((e) => `${e.field}: ${e.message}`).join('; ').slice(0, 1000), { errors: r.errors.slice(0, 50) });
}

/** The node the request's credential proves, which must be `pathId` when given. */
function authenticate(ctx: Ctx, pathId?: string): NodeRow {
  const header = ctx.req.headers.authorization;
  const cred = parseBearer(typeof header === 'string' ? header : undefined);
  if (cred === undefined) throw new ControlPlaneError('unauthorized', header === undefined ? 'missing bearer credential' : 'malformed bearer credential');
  // The environment label is part of the credential: an nsk_test_ one is not an nsk_live_ one.
  if (cred.env !== DEFAULT_CREDENTIAL_ENV) throw new ControlPlaneError('unauthorized', `credential is for environment "${cred.env}"; this control plane issues "${DEFAULT_CREDENTIAL_ENV}"`);
  const node = ctx.store.authenticate(cred);
  if (node === undefined) throw new ControlPlaneError('unauthorized', 'unknown node or wrong credential; register again');
  if (pathId !== undefined && pathId.toLowerCase() !== node.node_id) throw new ControlPlaneError('forbidden', 'a node may only act on itself');
  return node;
}

/** Last-Event-ID from the header (or `last_event_id` query for clients that cannot set it). */
function lastEventId(req: IncomingMessage): number | undefined {
  const h = req.headers['last-event-id'];
  const q = new URL(req.url ?? '/', 'http://x').searchParams.get('last_event_id');
  const text = typeof h === 'string' ? h : q;
  return text !== null && /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

/** Every route. */
export const ROUTES: readonly Route[] = [
  {
    method: 'POST',
    pattern: /^\/v1\/register$/,
    handler: async (ctx) => {
      const req = valid(parseRegisterRequest(await readJsonBody(ctx.req)));
      const out = ctx.store.register(req);
      sendJson(ctx.res, 201, { ...out, ...stunOffer(ctx) });
    },
  },
  {
    method: 'GET',
    pattern: new RegExp(`^/v1/nodes/${UUID}/events$`),
    handler: async (ctx) => {
      const node = authenticate(ctx, ctx.params[0]);
      ctx.rateLimits.charge('events', node.node_id, 1, ctx.res);
      ctx.bus.open(node, ctx.res, lastEventId(ctx.req));
    },
  },
  {
    method: 'POST',
    pattern: new RegExp(`^/v1/nodes/${UUID}/heartbeat$`),
    handler: async (ctx) => {
      const node = authenticate(ctx, ctx.params[0]);
      const raw = await readJsonBody(ctx.req);
      const body = valid(parseHeartbeatRequest(raw));
      const policy = valid(parseHeartbeatPolicyReport(raw));
      const out = ctx.store.heartbeat(node, body, ctx.bus.hasStream(node.node_id));
      // The dashboard's per-rule counters (ours; upstream agents send no `policy`).
      if (policy !== undefined) recordRuleHits(ctx.store.db, node.node_id, policy, ctx.store.now());
      sendJson(ctx.res, 200, out);
    },
  },
  {
    method: 'PUT',
    pattern: new RegExp(`^/v1/nodes/${UUID}/endpoint$`),
    handler: async (ctx) => {
      const node = authenticate(ctx, ctx.params[0]);
      ctx.rateLimits.charge('endpoint', node.node_id, 1, ctx.res);
      const body = valid(parseEndpointRequest(await readJsonBody(ctx.req)));
      const out = ctx.store.reportEndpoint(node, body);
      ctx.relay?.evaluateNode(node);
      sendJson(ctx.res, 200, out);
    },
  },
  {
    method: 'GET',
    pattern: new RegExp(`^/v1/nodes/${UUID}/state$`),
    handler: async (ctx) => {
      const node = authenticate(ctx, ctx.params[0]);
      ctx.rateLimits.charge('state', node.node_id, 1, ctx.res);
      const relay = ctx.relay?.viewOf(node);
      sendJson(ctx.res, 200, { ...withRelays(ctx.store.stateOf(node, relay?.bridges), node, relay), state: stateBlockOf(ctx.store.db, node.node_id), ...stunOffer(ctx) });
    },
  },
  {
    // Ours (docs/nat.md): an agent says whether its direct path to each listed peer works.
    method: 'POST',
    pattern: new RegExp(`^/v1/nodes/${UUID}/peer-paths$`),
    handler: async (ctx) => {
      const node = authenticate(ctx, ctx.params[0]);
      const body = await readJsonBody(ctx.req);
      if (ctx.relay === undefined) throw new ControlPlaneError('not_found', 'relay assignment is off');
      const entries = (body as { paths?: unknown } | null)?.paths;
      ctx.rateLimits.charge('peer-paths', node.node_id, 1 + (Array.isArray(entries) ? entries.length : 0), ctx.res);
      applyPathReport(ctx.relay, node, body);
      sendJson(ctx.res, 200, { accepted_at: formatRfc3339(ctx.store.now()) });
    },
  },
  {
    method: 'PUT',
    pattern: new RegExp(`^/v1/nodes/${UUID}/capabilities$`),
    handler: async (ctx) => {
      const node = authenticate(ctx, ctx.params[0]);
      ctx.store.setCapabilities(node, valid(parseCapabilitiesRequest(await readJsonBody(ctx.req))));
      sendJson(ctx.res, 200, { accepted_at: formatRfc3339(ctx.store.now()) });
    },
  },
  {
    method: 'POST',
    pattern: new RegExp(`^/v1/nodes/${UUID}/deregister$`),
    handler: async (ctx) => {
      const node = authenticate(ctx, ctx.params[0]);
      const body = valid(parseDeregisterRequest(await readJsonBody(ctx.req)));
      ctx.store.removeNode(node.node_id, body.reason ?? 'deregistered');
      ctx.bus.closeNode(node.node_id);
      ctx.res.writeHead(204).end();
    },
  },
  {
    method: 'POST',
    pattern: new RegExp(`^/v1/nodes/${UUID}/executions/${EXEC_ID}$`),
    handler: async (ctx) => {
      const node = authenticate(ctx, ctx.params[0]);
      const body = valid(parseExecutionReport(await readJsonBody(ctx.req)));
      sendJson(ctx.res, 200, reportExecution(ctx.store, node, ctx.params[1]!, body, requestOrigin(ctx.req)));
    },
  },
  {
    // The one-time upload URL of an output over 16 KiB (docs/operations.md "Remote actions"):
    // no bearer token, the URL's token is the credential.
    method: 'PUT',
    pattern: new RegExp(`^/v1/executions/${EXEC_ID}/output$`),
    handler: async (ctx) => {
      const token = new URL(ctx.req.url ?? '/', 'http://x').searchParams.get('token') ?? '';
      const body = await readRawBody(ctx.req, MAX_UPLOAD_BYTES);
      sendJson(ctx.res, 200, { object_key: acceptUpload(ctx.store, ctx.params[0]!, token, body) });
    },
  },
  {
    // Telemetry upload (issue 18): metrics (JSON array), logs and audit (NDJSON); telemetry.ts.
    method: 'POST',
    pattern: new RegExp(`^/v1/nodes/${UUID}/(metrics|logs|audit)$`),
    handler: async (ctx) => {
      const node = authenticate(ctx, ctx.params[0]);
      if (ctx.telemetry === undefined) throw new ControlPlaneError('observability_ingest_not_provisioned', 'telemetry ingest is off on this control plane');
      sendJson(ctx.res, 202, await ctx.telemetry.ingest(ctx.req, node.node_id, ctx.params[1] as 'metrics' | 'logs' | 'audit', ctx.store.now()));
    },
  },
  // Node state and secrets (node-state.ts). The secret is sealed under the NSK of the request's
  // own credential: the control plane keeps only its hash.
  {
    method: 'GET',
    pattern: new RegExp(`^/v1/nodes/${UUID}/secrets/${STATE_SEGMENT}$`),
    handler: async (ctx) => {
      const node = authenticate(ctx, ctx.params[0]);
      const v = new URL(ctx.req.url ?? '/', 'http://x').searchParams.get('version');
      if (v !== null && !/^[1-9][0-9]{0,8}$/.test(v)) throw new ControlPlaneError('validation_failed', 'version: expected a positive integer');
      const nsk = parseBearer(ctx.req.headers.authorization)!.nsk;
      const out = secretForNode(ctx.store, node, nsk, segment(ctx.params[1]!), v === null ? undefined : Number(v));
      ctx.res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': out.envelope.length, 'cache-control': 'no-store', [SECRET_VERSION_HEADER]: String(out.version), [SECRET_KID_HEADER]: out.kid });
      ctx.res.end(out.envelope);
    },
  },
  {
    method: 'PUT',
    pattern: new RegExp(`^/v1/nodes/${UUID}/state/reports/${STATE_SEGMENT}$`),
    handler: async (ctx) => {
      const node = authenticate(ctx, ctx.params[0]);
      const r = parseNodeStateReportRequest(await readJsonBody(ctx.req));
      if (!r.ok) throw new ControlPlaneError('invalid_report', r.errors.map((e) => `${e.field}: ${e.message}`).join('; ').slice(0, 1000));
      sendJson(ctx.res, 200, putReport(ctx.store, node, segment(ctx.params[1]!), r.value));
    },
  },
  {
    method: 'DELETE',
    pattern: new RegExp(`^/v1/nodes/${UUID}/state/reports/${STATE_SEGMENT}$`),
    handler: async (ctx) => {
      const node = authenticate(ctx, ctx.params[0]);
      deleteReport(ctx.store, node, segment(ctx.params[1]!));
      ctx.res.writeHead(204).end();
    },
  },
  {
    method: 'POST',
    pattern: /^\/v1\/keys\/rotate$/,
    handler: async (ctx) => {
      const node = authenticate(ctx);
      const body = valid(parseKeyRotateRequest(await readJsonBody(ctx.req)));
      const out = ctx.store.rotateKey(node, body.new_public_key);
      sendJson(ctx.res, 200, out);
    },
  },
];

/** The route for a method and path: the handler with its captured parameters, `405` with the
 *  allowed methods when only the method is wrong, or undefined (404). */
export function matchRoute(method: string, path: string): { handler: Handler; params: string[]; pattern: RegExp } | { allow: string[] } | undefined {
  const allow: string[] = [];
  for (const r of ROUTES) {
    const m = r.pattern.exec(path);
    if (m === null) continue;
    if (r.method === method) return { handler: r.handler, params: m.slice(1), pattern: r.pattern };
    allow.push(r.method);
  }
  return allow.length > 0 ? { allow } : undefined;
}

export type { Ctx, Handler };

/** The origin (scheme://host) the request reached us by: where a node can PUT its output. */
function requestOrigin(req: IncomingMessage): string {
  const host = typeof req.headers.host === 'string' && /^[A-Za-z0-9.:[\]-]{1,261}$/.test(req.headers.host) ? req.headers.host : 'localhost';
  return `${(req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http'}://${host}`;
}

/** The body as bytes, at most `limit`; rejects with payload_too_large past it. */
function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && !(Number(declared) <= limit)) {
      reject(new ControlPlaneError('payload_too_large', `body larger than ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.destroy();
        reject(new ControlPlaneError('payload_too_large', `body larger than ${limit} bytes`));
      } else chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => resolve(Buffer.concat(chunks)));
  });
}
