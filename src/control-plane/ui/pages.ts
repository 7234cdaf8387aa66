// The dashboard's server-rendered pages: plain HTML tables and forms that work without JavaScript;
// only the mesh graph loads /ui/graph.js to follow changes live. Every form that changes something
// carries the session's CSRF token.

import { describeRule } from '../policy.js';
import type { PolicyRule } from '../visibility.js';
import type { AdminTokenRow } from './admin-auth.js';
import { html, Raw } from './html.js';
import type { MeshView, ViewEdge, ViewNode } from './mesh-view.js';

/** Pages of the navigation, in order. */
const NAV: ReadonlyArray<readonly [string, string]> = [
  ['/ui/', 'Nodes'],
  ['/ui/graph', 'Mesh graph'],
  ['/ui/policy', 'Policy'],
  ['/ui/tokens', 'Tokens'],
  ['/ui/bridges', 'Bridge services'],
  ['/ui/actions', 'Actions'],
];

/** A rule as `policy show` prints it, without its index. */
export function ruleText(r: PolicyRule): string {
  return describeRule(r, 0).replace(/^rules\[0\] /, '');
}

/** "2026-12-03 13:14:01Z" of wall ms. */
export function when(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function ago(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

/** A whole page: `csrf` undefined for the login page (no navigation, no logout). */
export function page(title: string, body: Raw, csrf: string | undefined, current = ''): string {
  const nav =
    csrf === undefined
      ? ''
      : html`<header><nav aria-label="Main"><ul>${NAV.map(([href, label]) => html`<li><a href="${href}"${href === current ? new Raw(' aria-current="page"') : ''}>${label}</a></li>`)}</ul>
<form method="post" action="/ui/logout"><input type="hidden" name="csrf" value="${csrf}"><button type="submit">Log out</button></form></nav></header>`;
  return `<!doctype html>\n${html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · plexd control plane</title><link rel="stylesheet" href="/ui/app.css"><link rel="icon" href="/ui/favicon.svg"></head>
<body><a class="skip" href="#main">Skip to content</a>${nav}<main id="main"><h1>${title}</h1>
${body}</main></body></html>`.text}\n`;
}

/** The login form; `error` is shown in an alert region. */
export function loginPage(error?: string): string {
  return page(
    'Log in',
    html`${error === undefined ? '' : html`<p class="error" role="alert">${error}</p>`}
<form method="post" action="/ui/login" class="stack">
<label for="token">Admin token <span class="hint">(from <code>control-plane admin-token create</code>)</span></label>
<input id="token" name="token" type="password" autocomplete="current-password" required maxlength="200" autofocus>
<button type="submit">Log in</button></form>`,
    undefined,
  );
}

function statusBadge(status: string): Raw {
  return html`<span class="status status-${status}">${status}</span>`;
}

function pathText(e: ViewEdge | undefined, names: ReadonlyMap<string, string>): string {
  if (e === undefined) return 'not connected by policy';
  return e.path === 'relayed' ? `relayed via ${names.get(e.via ?? '') ?? e.via}` : e.path;
}

/** The nodes table, with each node's path to each peer the policy connects it with. */
export function nodesPage(view: MeshView, now: number, csrf: string): string {
  const names = new Map(view.nodes.map((n) => [n.id, n.name]));
  const paths = new Map<string, ViewEdge[]>();
  for (const e of view.edges) for (const id of [e.a, e.b]) paths.set(id, [...(paths.get(id) ?? []), e]);
  const row = (n: ViewNode) => html`<tr data-node="${n.id}"><th scope="row">${n.name}<br><code class="id">${n.id}</code></th>
<td>${statusBadge(n.status)}</td><td><code>${n.meshIp}</code></td>
<td>${n.endpoint ?? '-'}${n.candidates.length === 0 ? '' : html`<br><span class="hint">candidates: ${n.candidates.join(', ')}</span>`}</td>
<td>${n.natType ?? '-'}</td><td>${n.version ?? '-'}</td><td><time datetime="${new Date(n.lastHeartbeat).toISOString()}">${ago(n.lastHeartbeat, now)}</time></td>
<td>${(paths.get(n.id) ?? []).length === 0 ? '-' : html`<ul class="paths">${(paths.get(n.id) ?? []).map((e) => {
    const peer = e.a === n.id ? e.b : e.a;
    return html`<li><span class="path path-${e.path}">${pathText(e, names)}</span> to ${names.get(peer) ?? peer}</li>`;
  })}</ul>`}</td></tr>`;
  return page(
    'Nodes',
    html`<p>${view.nodes.length} nodes, ${view.nodes.filter((n) => n.status === 'online').length} online.
Paths are derived from heartbeats and relay sessions (direct: both ends online and not relayed; the control plane does not see handshakes).</p>
<div class="scroll"><table><caption class="visually-hidden">Registered nodes</caption><thead><tr><th scope="col">Node</th><th scope="col">Status</th><th scope="col">Mesh IP</th>
<th scope="col">Endpoint</th><th scope="col">NAT type</th><th scope="col">Version</th><th scope="col">Last heartbeat</th><th scope="col">Path to each peer</th></tr></thead>
<tbody>${view.nodes.map(row)}</tbody></table></div>`,
    csrf,
    '/ui/',
  );
}

/** Width and height of the graph's viewBox. */
const SIZE = 600;

/** The mesh graph as a standalone SVG: nodes on a circle (sorted by name), an edge per connected
 *  pair styled by path (colour and dash, so it does not rest on colour alone). */
export function graphSvg(view: MeshView): string {
  const nodes = [...view.nodes].sort((x, y) => x.name.localeCompare(y.name) || x.id.localeCompare(y.id));
  const at = new Map<string, { x: number; y: number }>();
  const r = nodes.length <= 1 ? 0 : SIZE / 2 - 80;
  nodes.forEach((n, i) => {
    const t = (2 * Math.PI * i) / Math.max(1, nodes.length) - Math.PI / 2;
    at.set(n.id, { x: Math.round(SIZE / 2 + r * Math.cos(t)), y: Math.round(SIZE / 2 + r * Math.sin(t)) });
  });
  const names = new Map(nodes.map((n) => [n.id, n.name]));
  const edges = view.edges.map((e) => {
    const [p, q] = [at.get(e.a)!, at.get(e.b)!];
    return html`<line class="edge edge-${e.path}" data-a="${e.a}" data-b="${e.b}" data-path="${e.path}" x1="${p.x}" y1="${p.y}" x2="${q.x}" y2="${q.y}"><title>${names.get(e.a)} - ${names.get(e.b)}: ${pathText(e, names)}</title></line>`;
  });
  const points = nodes.map((n) => {
    const p = at.get(n.id)!;
    return html`<g class="node node-${n.status}" data-node="${n.id}" data-status="${n.status}"><circle cx="${p.x}" cy="${p.y}" r="14"><title>${n.name} (${n.meshIp}): ${n.status}</title></circle><text x="${p.x}" y="${p.y + 32}" text-anchor="middle">${n.name}</text><text class="ip" x="${p.x}" y="${p.y + 48}" text-anchor="middle">${n.meshIp}</text></g>`;
  });
  return html`<svg xmlns="http://www.w3.org/2000/svg" id="graph" viewBox="0 0 ${SIZE} ${SIZE}" role="img" aria-labelledby="graph-title"><title id="graph-title">Mesh graph: ${nodes.length} nodes, ${view.edges.filter((e) => e.path === 'direct').length} direct, ${view.edges.filter((e) => e.path === 'relayed').length} relayed, ${view.edges.filter((e) => e.path === 'down').length} down</title>${edges}${points}</svg>`.text;
}

/** The live graph page: the SVG as it is now, then /ui/graph.js swaps in fresh ones on events. */
export function graphPage(view: MeshView, csrf: string): string {
  return page(
    'Mesh graph',
    html`<ul class="legend" aria-label="Legend"><li><span class="key key-direct"></span> direct</li><li><span class="key key-relayed"></span> relayed through a bridge</li><li><span class="key key-down"></span> down (an end is not online)</li></ul>
${view.truncated ? html`<p class="error">More nodes than the graph draws pairs for; see the nodes table.</p>` : ''}
<figure class="graph" id="graph-box" data-live="/ui/events">${new Raw(graphSvg(view))}</figure>
<p class="hint" id="graph-state" aria-live="polite">Live updates need JavaScript; without it, reload the page.</p>
<script src="/ui/graph.js" defer></script>`,
    csrf,
    '/ui/graph',
  );
}

/** One revision of a policy's history. */
export interface RevisionRow {
  readonly project_id: string;
  readonly revision: number;
  readonly fingerprint: string;
  readonly rules: string;
  readonly updated_at: number;
}

/** Per-rule hits of a project's rules: summed over the nodes enforcing exactly those rules. */
export interface ProjectHits {
  readonly hits: ReadonlyArray<readonly [number, number]>;
  readonly nodes: number;
}

/** One node's last counter report, its rules described when they are the ones it enforces now. */
export interface NodeHitsView {
  readonly node: string;
  readonly revision: string | null;
  readonly reportedAt: number;
  /** Undefined when the node reported a revision it no longer gets. */
  readonly rules: ReadonlyArray<{ readonly text: string; readonly packets: number; readonly bytes: number }> | undefined;
}

/** Rules of each project's current policy with the hits agents reported, the revision history,
 *  and each node's own counters (its compiled rules). */
export function policyPage(
  projects: readonly string[],
  current: ReadonlyMap<string, readonly PolicyRule[]>,
  history: readonly RevisionRow[],
  hits: ReadonlyMap<string, ProjectHits>,
  perNode: readonly NodeHitsView[],
  csrf: string,
): string {
  const sections = projects.map((p) => {
    const rules = current.get(p);
    const revs = history.filter((h) => h.project_id === p);
    const ph = hits.get(p);
    return html`<section aria-labelledby="p-${p}"><h2 id="p-${p}">Project ${p}</h2>
${rules === undefined ? html`<p>No policy: every node is denied every peer.</p>` : html`<table><caption>Rules (revision ${revs[0]?.revision ?? '?'}; first match wins)</caption><thead><tr><th scope="col">#</th><th scope="col">Rule</th><th scope="col">Packets</th><th scope="col">Bytes</th></tr></thead>
<tbody>${rules.map((r, i) => html`<tr data-rule="${i}"><td>${i}</td><td><code>${ruleText(r)}</code></td>${ph === undefined ? html`<td colspan="2" class="hint">no node enforces these rules as written (groups compile per node: see below)</td>` : html`<td class="packets">${ph.hits[i]?.[0] ?? 0}</td><td>${ph.hits[i]?.[1] ?? 0}</td>`}</tr>`)}</tbody></table>
${ph === undefined ? '' : html`<p class="hint">Counters summed over ${ph.nodes} node${ph.nodes === 1 ? '' : 's'} enforcing this revision, as of their last heartbeat.</p>`}`}
<table><caption>Revision history</caption><thead><tr><th scope="col">Revision</th><th scope="col">Set at</th><th scope="col">Rules</th><th scope="col">Fingerprint</th></tr></thead>
<tbody>${revs.map((h) => html`<tr><td>${h.revision}</td><td>${when(h.updated_at)}</td><td>${(JSON.parse(h.rules) as unknown[]).length}</td><td><code>${h.fingerprint.slice(0, 16)}</code></td></tr>`)}</tbody></table></section>`;
  });
  const nodes = html`<section aria-labelledby="per-node"><h2 id="per-node">Per node (the rules each node enforces)</h2>
${perNode.length === 0 ? html`<p>No agent has reported counters yet.</p>` : html`<table><thead><tr><th scope="col">Node</th><th scope="col">Revision</th><th scope="col">Rule</th><th scope="col">Packets</th><th scope="col">Bytes</th></tr></thead><tbody>${perNode.map((n) =>
    n.rules === undefined
      ? html`<tr><th scope="row">${n.node}</th><td>${n.revision ?? '-'}</td><td colspan="3" class="hint">reported ${when(n.reportedAt)} for a revision it no longer gets</td></tr>`
      : n.rules.map((r, i) => html`<tr>${i === 0 ? html`<th scope="row" rowspan="${n.rules!.length}">${n.node}</th><td rowspan="${n.rules!.length}">${n.revision ?? '-'}</td>` : ''}<td><code>${r.text}</code></td><td>${r.packets}</td><td>${r.bytes}</td></tr>`),
  )}</tbody></table>`}</section>`;
  return page('Policy', html`<p>Change rules with <code>control-plane policy set</code>. Counters: what each rule decided since its revision took force on the node (new flows; packets of a tracked flow count once).</p>${sections}${nodes}`, csrf, '/ui/policy');
}

/** A bootstrap token as listed. */
export interface TokenRow {
  readonly id: string;
  readonly project_id: string;
  readonly labels: string | null;
  readonly created_at: number;
  readonly expires_at: number;
  readonly revoked_at: number | null;
  readonly consumed_at: number | null;
  readonly node_id: string | null;
}

function tokenState(t: TokenRow, now: number): string {
  return t.revoked_at !== null ? 'revoked' : t.consumed_at !== null ? 'used' : t.expires_at <= now ? 'expired' : 'active';
}

/** Bootstrap tokens (create with TTL, revoke) and admin tokens (read only). `created`: a token
 *  just made, shown this once. */
export function tokensPage(
  tokens: readonly TokenRow[],
  admins: readonly AdminTokenRow[],
  projects: readonly string[],
  now: number,
  csrf: string,
  created?: { token: string; id: string; expiresAt: number },
  error?: string,
): string {
  return page(
    'Tokens',
    html`${error === undefined ? '' : html`<p class="error" role="alert">${error}</p>`}
${created === undefined ? '' : html`<section class="created" aria-labelledby="created-h"><h2 id="created-h">New bootstrap token ${created.id}</h2>
<p>Copy it now: it is shown only once. Single use, expires ${when(created.expiresAt)}.</p><p><output id="new-token"><code>${created.token}</code></output></p></section>`}
<section aria-labelledby="create-h"><h2 id="create-h">Create a bootstrap token</h2>
<form method="post" action="/ui/tokens" class="row"><input type="hidden" name="csrf" value="${csrf}">
<label for="project">Project</label><select id="project" name="project">${projects.map((p) => html`<option${p === 'default' ? new Raw(' selected') : ''}>${p}</option>`)}</select>
<label for="ttl">Valid for</label><input id="ttl" name="ttl" value="24h" required maxlength="16" pattern="\\d{1,9}(ms|s|m|h|d)" aria-describedby="ttl-hint"><span id="ttl-hint" class="hint">e.g. 15m, 24h, 7d</span>
<label for="labels">Labels</label><input id="labels" name="labels" maxlength="512" placeholder="role=web,env=prod">
<button type="submit">Create token</button></form></section>
<section aria-labelledby="boot-h"><h2 id="boot-h">Bootstrap tokens</h2><div class="scroll"><table><thead><tr><th scope="col">Id</th><th scope="col">Project</th><th scope="col">Labels</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">State</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${tokens.map((t) => {
      const state = tokenState(t, now);
      return html`<tr data-token="${t.id}"><td><code>${t.id}</code></td><td>${t.project_id}</td><td>${t.labels === null ? '-' : Object.entries(JSON.parse(t.labels) as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(', ')}</td><td>${when(t.created_at)}</td><td>${when(t.expires_at)}</td><td class="state">${state}${t.node_id === null ? '' : html` by <code>${t.node_id.slice(0, 8)}</code>`}</td>
<td>${state === 'active' ? html`<form method="post" action="/ui/tokens/revoke"><input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="id" value="${t.id}"><button type="submit" aria-label="Revoke token ${t.id}">Revoke</button></form>` : ''}</td></tr>`;
    })}</tbody></table></div></section>
<section aria-labelledby="admin-h"><h2 id="admin-h">Admin tokens</h2><p>Managed with <code>control-plane admin-token create|list|revoke</code>.</p>
<table><thead><tr><th scope="col">Id</th><th scope="col">Name</th><th scope="col">Created</th><th scope="col">Last login</th><th scope="col">Revoked</th></tr></thead>
<tbody>${admins.map((a) => html`<tr><td><code>${a.id}</code></td><td>${a.name}</td><td>${when(a.created_at)}</td><td>${when(a.last_used_at)}</td><td>${when(a.revoked_at)}</td></tr>`)}</tbody></table></section>`,
    csrf,
    '/ui/tokens',
  );
}

/** Rows of the bridge services page (user access, sites, ingress), read straight from their tables. */
export interface BridgeServices {
  readonly users: ReadonlyArray<{ project_id: string; name: string; bridge: string; public_key: string; created_at: number }>;
  readonly sites: ReadonlyArray<{ project_id: string; name: string; bridge: string; endpoint: string; subnets: string; listen_port: number }>;
  readonly ingress: ReadonlyArray<{ project_id: string; hostname: string; bridge: string; listen_port: number; target_addr: string; mode: string }>;
}

/** User access, site-to-site tunnels and ingress rules of every bridge (read only; the CLI
 *  `control-plane access|site|ingress` changes them). */
export function bridgesPage(s: BridgeServices, csrf: string): string {
  const table = (caption: string, heads: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>) =>
    html`<section><h2>${caption}</h2>${rows.length === 0 ? html`<p>None.</p>` : html`<table><thead><tr>${heads.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead><tbody>${rows.map((r) => html`<tr>${r.map((c) => html`<td>${c}</td>`)}</tr>`)}</tbody></table>`}</section>`;
  return page(
    'Bridge services',
    html`${table('User access', ['Project', 'User', 'Bridge', 'Public key', 'Created'], s.users.map((u) => [u.project_id, u.name, u.bridge, u.public_key, when(u.created_at)]))}
${table('Sites', ['Project', 'Site', 'Bridge', 'Endpoint', 'Subnets', 'Listen port'], s.sites.map((x) => [x.project_id, x.name, x.bridge, x.endpoint, (JSON.parse(x.subnets) as string[]).join(', '), x.listen_port]))}
${table('Ingress', ['Project', 'Hostname', 'Bridge', 'Listen port', 'Target', 'Mode'], s.ingress.map((x) => [x.project_id, x.hostname, x.bridge, x.listen_port, x.target_addr, x.mode]))}`,
    csrf,
    '/ui/bridges',
  );
}

/** One execution as the actions page lists it: `preview` is the first OUTPUT_PREVIEW_BYTES of
 *  the stored output, `output_bytes` its whole size. */
export interface ExecutionListRow {
  readonly execution_id: string;
  readonly node_id: string;
  readonly node_name: string | null;
  readonly action: string;
  readonly type: string;
  readonly args: string;
  readonly status: string;
  readonly cancel_requested: number;
  readonly exit_code: number | null;
  readonly error: string | null;
  readonly preview: Buffer | null;
  readonly output_bytes: number | null;
  readonly output_sha256: string | null;
  readonly created_at: number;
  readonly started_at: number | null;
  readonly finished_at: number | null;
}

/** Bytes of an output shown in the table. */
export const OUTPUT_PREVIEW_BYTES = 300;
/** Characters of parameters and errors shown in the table. */
const TEXT_PREVIEW_CHARS = 200;

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

function paramsText(args: string): string {
  try {
    const entries = Object.entries(JSON.parse(args) as Record<string, unknown>);
    return entries.length === 0 ? '-' : clip(entries.map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', '), TEXT_PREVIEW_CHARS);
  } catch {
    return '?';
  }
}

function outputCell(e: ExecutionListRow): Raw {
  const n = e.output_bytes ?? 0;
  if (e.output_sha256 !== null) return html`<span class="hint">uploaded, ${n} bytes, sha256</span> <code class="id">${e.output_sha256}</code>`;
  if (n === 0) return html`-`;
  const text = (e.preview ?? Buffer.alloc(0)).toString('utf8');
  return html`<pre class="output">${text}${n > OUTPUT_PREVIEW_BYTES ? `… (${n} bytes)` : ''}</pre>`;
}

/** Statuses a cancel still changes. */
const CANCELLABLE = new Set(['pending', 'ack', 'started']);

/** Recent executions of remote actions on every node (newest first), a form to run a built-in
 *  action on a node and a cancel button on each open execution. */
export function actionsPage(
  rows: readonly ExecutionListRow[],
  nodes: ReadonlyArray<{ node_id: string; resource_handle: string }>,
  limit: number,
  csrf: string,
  notice?: { error?: string; created?: string },
): string {
  return page(
    'Actions',
    html`${notice?.error === undefined ? '' : html`<p class="error" role="alert">${notice.error}</p>`}
${notice?.created === undefined ? '' : html`<p role="status">Queued execution <code>${notice.created}</code>.</p>`}
<section aria-labelledby="run-h"><h2 id="run-h">Run a built-in action</h2>
${nodes.length === 0 ? html`<p>No nodes registered.</p>` : html`<form method="post" action="/ui/actions" class="stack"><input type="hidden" name="csrf" value="${csrf}">
<label for="node">Node</label><select id="node" name="node">${nodes.map((n) => html`<option value="${n.node_id}">${n.resource_handle} (${n.node_id.slice(0, 8)})</option>`)}</select>
<label for="action">Action</label><input id="action" name="action" required maxlength="128" pattern="[A-Za-z0-9_][A-Za-z0-9_.\\-]{0,127}" placeholder="system.info" aria-describedby="action-hint"><span id="action-hint" class="hint">a built-in the node lists in its capabilities; hooks: <code>control-plane actions run --hook</code></span>
<label for="params">Parameters</label><textarea id="params" name="params" rows="3" maxlength="512" aria-describedby="params-hint"></textarea><span id="params-hint" class="hint">one K=V per line</span>
<button type="submit">Run</button></form>`}</section>
<section aria-labelledby="exec-h"><h2 id="exec-h">Recent executions</h2><p class="hint">Newest first, at most ${limit}; full output: <code>control-plane actions show EXEC_ID</code>.</p>
${rows.length === 0 ? html`<p>None.</p>` : html`<div class="scroll"><table><thead><tr><th scope="col">Node</th><th scope="col">Action</th><th scope="col">Type</th><th scope="col">Parameters</th><th scope="col">Status</th><th scope="col">Requested</th><th scope="col">Started</th><th scope="col">Finished</th><th scope="col">Exit / error</th><th scope="col">Output</th><th scope="col"><span class="visually-hidden">Cancel</span></th></tr></thead>
<tbody>${rows.map((e) => html`<tr data-execution="${e.execution_id}"><th scope="row">${e.node_name ?? e.node_id}<br><code class="id">${e.execution_id}</code></th><td><code>${e.action}</code></td><td>${e.type}</td><td>${paramsText(e.args)}</td>
<td>${statusBadge(e.status)}${e.cancel_requested !== 0 && CANCELLABLE.has(e.status) ? html` <span class="hint">(cancel requested)</span>` : ''}</td><td>${when(e.created_at)}</td><td>${when(e.started_at)}</td><td>${when(e.finished_at)}</td>
<td>${e.exit_code ?? '-'}${e.error === null ? '' : html`<br><span class="error-text">${clip(e.error, TEXT_PREVIEW_CHARS)}</span>`}</td><td>${outputCell(e)}</td>
<td>${CANCELLABLE.has(e.status) && e.cancel_requested === 0 ? html`<form method="post" action="/ui/actions/cancel"><input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="id" value="${e.execution_id}"><button type="submit" aria-label="Cancel execution ${e.execution_id}">Cancel</button></form>` : ''}</td></tr>`)}</tbody></table></div>`}</section>`,
    csrf,
    '/ui/actions',
  );
}

/** A small error page with `message`. */
export function errorPage(title: string, message: string, csrf: string | undefined): string {
  return page(title, html`<p class="error" role="alert">${message}</p><p><a href="/ui/">Back to the dashboard</a></p>`, csrf);
}
