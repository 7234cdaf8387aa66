// The dashboard under /ui/ (issue 21, docs/control-plane.md "Dashboard"): login with an admin
// token, a session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS), a CSRF token on every
// change, a strict Content-Security-Policy (no inline script or style) and an admin SSE stream
// (/ui/events) that tells open graphs the mesh changed. Only the session cookie authenticates
// here; node routes ignore it (they take the node's bearer credential only).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { cancelExecution, createExecution, parseParamList } from '../actions.js';
import { ControlPlaneError } from '../errors.js';
import { readBody } from '../http-io.js';
import { prepared } from '../prepared.js';
import type { RelayAssigner } from '../relay-assigner.js';
import type { ControlPlaneStore } from '../store.js';
import type { PolicyRule } from '../visibility.js';
import { parseLabels } from '../visibility.js';
import { ADMIN_SESSION_TTL_MS, csrfMatches, listAdminTokens, login, logout, sessionOf, type AdminSession } from './admin-auth.js';
import { APP_CSS, FAVICON_SVG, GRAPH_JS } from './assets.js';
import { meshView } from './mesh-view.js';
import { ruleHits } from './rule-hits.js';
import { actionsPage, bridgesPage, errorPage, OUTPUT_PREVIEW_BYTES, graphPage, graphSvg, loginPage, nodesPage, policyPage, ruleText, tokensPage, type BridgeServices, type ExecutionListRow, type NodeHitsView, type RevisionRow, type TokenRow } from './pages.js';

/** The session cookie's name. */
export const SESSION_COOKIE = 'plexd_ui';
/** Largest form body: 4 KiB (413 beyond). */
export const MAX_FORM_BYTES = 4096;
/** Longest form field value: 512 characters (400 beyond). */
export const MAX_FIELD_CHARS = 512;
/** Open /ui/events streams at most (503 beyond). */
export const MAX_UI_STREAMS = 32;
/** Executions the actions page lists at most. */
export const MAX_UI_EXECUTIONS = 200;
/** Keep-alive comment interval of /ui/events. */
const UI_KEEPALIVE_MS = 15_000;
/** Bytes a /ui/events stream may have queued before it is dropped. */
const MAX_UI_STREAM_BUFFER = 64 * 1024;

/** The Content-Security-Policy of every /ui/ response: only our own script, style and fetches. */
export const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Options of createDashboard. */
export interface DashboardOptions {
  readonly store: ControlPlaneStore;
  readonly relay: RelayAssigner | undefined;
  /** Served over HTTPS: the cookie gets Secure. */
  readonly secure: boolean;
  /** Session lifetime (default ADMIN_SESSION_TTL_MS). */
  readonly sessionTtlMs?: number;
}

/** The dashboard's request handler and its live stream. */
export interface Dashboard {
  /** Serves a request whose path starts with /ui (the server routes those here). */
  handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
  /** The mesh may have changed: tell open graphs (coalesced). */
  changed(): void;
  /** Open /ui/events streams. */
  readonly streams: number;
  /** Ends every stream and the keep-alive timer. */
  close(): void;
}

function securityHeaders(res: ServerResponse): void {
  res.setHeader('content-security-policy', CSP);
  res.setHeader('x-content-type-options', 'nosniff');
  // same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on our own forms.
  res.setHeader('referrer-policy', 'same-origin');
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('cache-control', 'no-store');
}

function send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

function cookieOf(req: IncomingMessage): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** A request from another site: refused on every POST, login too. Browsers send Sec-Fetch-Site
 *  (Fetch Metadata); without it, an Origin naming another host (or the opaque "null") refuses. */
function crossSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string') return site !== 'same-origin' && site !== 'none';
  const origin = req.headers.origin;
  if (typeof origin !== 'string') return false;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}

/** Reads an urlencoded form: 413 past MAX_FORM_BYTES, 400 for a field past MAX_FIELD_CHARS or a
 *  repeated field. */
async function readForm(req: IncomingMessage): Promise<Map<string, string>> {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const text = await readBody(req, MAX_FORM_BYTES);
  if (type !== 'application/x-www-form-urlencoded') throw new ControlPlaneError('validation_failed', `expected an application/x-www-form-urlencoded form, got ${JSON.stringify(type.slice(0, 80))}`);
  const out = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(text)) {
    if (v.length > MAX_FIELD_CHARS || k.length > 64) throw new ControlPlaneError('validation_failed', `form field ${JSON.stringify(k.slice(0, 64))} is longer than ${MAX_FIELD_CHARS} characters`);
    if (out.has(k)) throw new ControlPlaneError('validation_failed', `form field ${JSON.stringify(k)} given twice`);
    out.set(k, v);
  }
  return out;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a TTL such as "15m" (at most 365 days); undefined when malformed. */
function ttlMs(text: string): number | undefined {
  const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(text);
  const ms = m === null ? 0 : Number(m[1]) * UNITS[m[2]!]!;
  return ms > 0 && ms <= 365 * 86_400_000 ? ms : undefined;
}

/** Starts the dashboard over `store`. */
export function createDashboard(options: DashboardOptions): Dashboard {
  const { store, relay, secure } = options;
  const ttl = options.sessionTtlMs ?? ADMIN_SESSION_TTL_MS;
  const streams = new Set<ServerResponse>();
  let queued = false;
  const keepAlive = setInterval(() => {
    for (const s of streams) write(s, ': keep-alive\n\n');
  }, UI_KEEPALIVE_MS);
  keepAlive.unref();

  function write(s: ServerResponse, text: string): void {
    if (s.writableEnded || s.destroyed) return;
    s.write(text);
    if (s.writableLength > MAX_UI_STREAM_BUFFER) s.destroy();
  }

  const projects = (): string[] => prepared(store.db, 'SELECT id FROM projects ORDER BY id').pluck().all() as string[];

  const cookie = (value: string, maxAgeS: number): string => `${SESSION_COOKIE}=${value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure ? '; Secure' : ''}`;

  function renderTokens(session: AdminSession, created?: { token: string; id: string; expiresAt: number }, error?: string): string {
    const tokens = (prepared(store.db, 'SELECT substr(hash, 1, 12) AS id, project_id, labels, created_at, expires_at, revoked_at, consumed_at, node_id FROM tokens ORDER BY created_at DESC LIMIT 500').all() as TokenRow[]);
    return tokensPage(tokens, listAdminTokens(store.db), projects(), store.now(), session.csrf, created, error);
  }

  function renderActions(session: AdminSession, notice?: { error?: string; created?: string }): string {
    const rows = prepared(store.db, `SELECT e.execution_id, e.node_id, n.resource_handle AS node_name, e.action, e.type, e.args, e.status, e.cancel_requested, e.exit_code, e.error,
      substr(e.output_data, 1, ${OUTPUT_PREVIEW_BYTES}) AS preview, length(e.output_data) AS output_bytes, e.output_sha256, e.created_at, e.started_at, e.finished_at
      FROM executions e LEFT JOIN nodes n ON n.node_id = e.node_id ORDER BY e.created_at DESC, e.execution_id LIMIT ${MAX_UI_EXECUTIONS}`).all() as ExecutionListRow[];
    const nodes = prepared(store.db, 'SELECT node_id, resource_handle FROM nodes ORDER BY resource_handle, node_id LIMIT 1000').all() as Array<{ node_id: string; resource_handle: string }>;
    return actionsPage(rows, nodes, MAX_UI_EXECUTIONS, session.csrf, notice);
  }

  function bridgeServices(): BridgeServices {
    const db = store.db;
    return {
      users: prepared(db, 'SELECT project_id, name, bridge_id AS bridge, public_key, created_at FROM access_users ORDER BY project_id, name LIMIT 1000').all() as BridgeServices['users'],
      sites: prepared(db, 'SELECT project_id, name, bridge_id AS bridge, endpoint, subnets, listen_port FROM sites ORDER BY project_id, name LIMIT 1000').all() as BridgeServices['sites'],
      ingress: prepared(db, 'SELECT project_id, hostname, bridge_id AS bridge, listen_port, target_addr, mode FROM ingress_rules ORDER BY project_id, hostname LIMIT 1000').all() as BridgeServices['ingress'],
    };
  }

  function policyView(session: AdminSession): string {
    const ps = projects();
    const current = new Map<string, readonly PolicyRule[]>();
    const fingerprints = new Map<string, string>();
    for (const p of ps) {
      const pol = store.policy(p);
      if (pol === null) continue;
      current.set(p, pol.rules as readonly PolicyRule[]);
      fingerprints.set(p, pol.fingerprint);
    }
    const history = prepared(store.db, 'SELECT project_id, revision, fingerprint, rules, updated_at FROM policy_revisions ORDER BY project_id, revision DESC LIMIT 1000').all() as RevisionRow[];
    const hits = new Map<string, { hits: Array<[number, number]>; nodes: number }>();
    const perNode: NodeHitsView[] = [];
    for (const report of ruleHits(store.db)) {
      const node = store.node(report.node_id);
      if (node === undefined) continue;
      if (report.fingerprint !== null && report.fingerprint === fingerprints.get(node.project_id)) {
        const sum = hits.get(node.project_id) ?? { hits: [], nodes: 0 };
        sum.nodes++;
        report.hits.forEach(([p, b], i) => {
          const at = (sum.hits[i] ??= [0, 0]);
          at[0] += p;
          at[1] += b;
        });
        hits.set(node.project_id, sum);
      }
      const enforced = store.policyFor(node);
      perNode.push({
        node: node.resource_handle,
        revision: report.revision_id,
        reportedAt: report.reported_at,
        rules: enforced === null || enforced.fingerprint !== report.fingerprint ? undefined : enforced.rules.map((r, i) => ({ text: ruleText(r as PolicyRule), packets: report.hits[i]?.[0] ?? 0, bytes: report.hits[i]?.[1] ?? 0 })),
      });
    }
    return policyPage(ps, current, history, hits, perNode, session.csrf);
  }

  async function post(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (crossSite(req)) return send(res, 403, 'text/html; charset=utf-8', errorPage('Forbidden', 'Cross-site request refused.', undefined));
    if (path === '/ui/login') {
      const form = await readForm(req);
      const out = login(store.db, form.get('token') ?? '', store.now(), ttl);
      if (out === undefined) return send(res, 401, 'text/html; charset=utf-8', loginPage('Wrong or revoked admin token.'));
      res.setHeader('set-cookie', cookie(out.cookie, Math.floor(ttl / 1000)));
      return send(res, 303, 'text/plain', 'logged in\n', { location: '/ui/' });
    }
    const session = sessionOf(store.db, cookieOf(req), store.now());
    if (session === undefined) return send(res, 401, 'text/html; charset=utf-8', loginPage('Your session has ended; log in again.'));
    const form = await readForm(req);
    if (!csrfMatches(session, form.get('csrf'))) return send(res, 403, 'text/html; charset=utf-8', errorPage('Forbidden', 'Missing or wrong CSRF token; reload the page and try again.', session.csrf));
    switch (path) {
      case '/ui/logout':
        logout(store.db, cookieOf(req)!);
        res.setHeader('set-cookie', cookie('', 0));
        return send(res, 303, 'text/plain', 'logged out\n', { location: '/ui/login' });
      case '/ui/tokens': {
        const ms = ttlMs(form.get('ttl') ?? '');
        if (ms === undefined) return send(res, 400, 'text/html; charset=utf-8', renderTokens(session, undefined, 'Valid for: expected a duration such as 15m, 24h or 7d (at most 365d).'));
        const project = form.get('project') ?? 'default';
        const labelText = (form.get('labels') ?? '').trim();
        let labels: Record<string, string>;
        try {
          labels = labelText === '' ? {} : parseLabels(labelText.split(',').map((l) => l.trim()));
        } catch (err) {
          return send(res, 400, 'text/html; charset=utf-8', renderTokens(session, undefined, `Labels: ${(err as Error).message}`));
        }
        if (!projects().includes(project)) return send(res, 400, 'text/html; charset=utf-8', renderTokens(session, undefined, `No project ${project}.`));
        const t = store.createToken(project, ms, labels);
        return send(res, 201, 'text/html; charset=utf-8', renderTokens(session, { token: t.token, id: t.id, expiresAt: t.expiresAt }));
      }
      case '/ui/tokens/revoke': {
        const id = form.get('id') ?? '';
        if (!/^[0-9a-f]{12}$/.test(id)) return send(res, 400, 'text/html; charset=utf-8', renderTokens(session, undefined, 'Expected a token id of 12 hex digits.'));
        const n = store.revokeToken(id);
        if (n === 0) return send(res, 404, 'text/html; charset=utf-8', renderTokens(session, undefined, `No active token ${id}.`));
        return send(res, 303, 'text/plain', 'revoked\n', { location: '/ui/tokens' });
      }
      case '/ui/actions': {
        // Built-ins only: a hook needs its digest approved first (the CLI's approve-hook, run --hook).
        const lines = (form.get('params') ?? '').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
        const params = parseParamList(lines);
        if (typeof params === 'string') return send(res, 400, 'text/html; charset=utf-8', renderActions(session, { error: `Parameters: ${params}` }));
        let id: string;
        try {
          id = createExecution(store, { nodeId: form.get('node') ?? '', action: form.get('action') ?? '', type: 'builtin', parameters: params });
        } catch (err) {
          if (!(err instanceof ControlPlaneError)) throw err;
          return send(res, err.code === 'node_not_found' ? 404 : 400, 'text/html; charset=utf-8', renderActions(session, { error: err.message }));
        }
        return send(res, 201, 'text/html; charset=utf-8', renderActions(session, { created: id }));
      }
      case '/ui/actions/cancel': {
        const id = form.get('id') ?? '';
        if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) return send(res, 400, 'text/html; charset=utf-8', renderActions(session, { error: 'Expected an execution id (a UUID).' }));
        try {
          cancelExecution(store, id);
        } catch (err) {
          if (!(err instanceof ControlPlaneError)) throw err;
          return send(res, 404, 'text/html; charset=utf-8', renderActions(session, { error: err.message }));
        }
        return send(res, 303, 'text/plain', 'cancelled\n', { location: '/ui/actions' });
      }
      default:
        return send(res, 404, 'text/html; charset=utf-8', errorPage('Not found', `No page ${path.slice(0, 100)}.`, session.csrf));
    }
  }

  async function get(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (path === '/ui/app.css') return send(res, 200, 'text/css; charset=utf-8', APP_CSS);
    if (path === '/ui/graph.js') return send(res, 200, 'text/javascript; charset=utf-8', GRAPH_JS);
    if (path === '/ui/favicon.svg') return send(res, 200, 'image/svg+xml', FAVICON_SVG);
    if (path === '/ui/login') return send(res, 200, 'text/html; charset=utf-8', loginPage());
    const session = sessionOf(store.db, cookieOf(req), store.now());
    if (session === undefined) {
      // Pages send a browser to the login form; the script's fetches and the stream get 401.
      if (path === '/ui/graph.svg' || path === '/ui/graph.json' || path === '/ui/events') return send(res, 401, 'text/plain', 'log in first\n');
      return send(res, 303, 'text/plain', 'log in first\n', { location: '/ui/login' });
    }
    const html = 'text/html; charset=utf-8';
    switch (path) {
      case '/ui':
      case '/ui/':
        return send(res, 200, html, nodesPage(meshView(store, relay), store.now(), session.csrf));
      case '/ui/graph':
        return send(res, 200, html, graphPage(meshView(store, relay), session.csrf));
      case '/ui/graph.svg':
        return send(res, 200, 'image/svg+xml; charset=utf-8', graphSvg(meshView(store, relay)));
      case '/ui/graph.json':
        return send(res, 200, 'application/json', JSON.stringify(meshView(store, relay)));
      case '/ui/policy':
        return send(res, 200, html, policyView(session));
      case '/ui/tokens':
        return send(res, 200, html, renderTokens(session));
      case '/ui/bridges':
        return send(res, 200, html, bridgesPage(bridgeServices(), session.csrf));
      case '/ui/actions':
        return send(res, 200, html, renderActions(session));
      case '/ui/events': {
        if (streams.size >= MAX_UI_STREAMS) return send(res, 503, 'text/plain', 'too many dashboard streams\n');
        res.writeHead(200, { 'content-type': 'text/event-stream', 'x-accel-buffering': 'no' });
        res.socket?.setTimeout(0);
        res.write('retry: 2000\n\n');
        streams.add(res);
        // The session may end while the stream is open: the stream ends with it.
        const expiry = setTimeout(() => res.end(), Math.max(0, session.expiresAt - store.now()));
        expiry.unref();
        res.on('close', () => {
          clearTimeout(expiry);
          streams.delete(res);
        });
        return;
      }
      default:
        return send(res, 404, html, errorPage('Not found', `No page ${path.slice(0, 100)}.`, session.csrf));
    }
  }

  return {
    async handle(req, res, path) {
      securityHeaders(res);
      try {
        if (req.method === 'GET' || req.method === 'HEAD') await get(req, res, path);
        else if (req.method === 'POST') await post(req, res, path);
        else {
          res.setHeader('allow', 'GET, HEAD, POST');
          send(res, 405, 'text/plain', 'method not allowed\n');
        }
      } catch (err) {
        if (!(err instanceof ControlPlaneError) || res.headersSent) throw err;
        const status = err.code === 'payload_too_large' ? 413 : 400;
        send(res, status, 'text/html; charset=utf-8', errorPage(status === 413 ? 'Too large' : 'Bad request', err.message, undefined), req.complete ? {} : { connection: 'close' });
      }
    },
    changed() {
      if (queued || streams.size === 0) return;
      queued = true;
      setImmediate(() => {
        queued = false;
        for (const s of streams) write(s, 'event: mesh\ndata: {}\n\n');
      });
    },
    get streams() {
      return streams.size;
    },
    close() {
      clearInterval(keepAlive);
      for (const s of streams) s.end();
      streams.clear();
    },
  };
}
