// The dashboard's routes (issue 21): admin login and sessions, CSRF on every change, the CSP and
// other headers, session expiry, the separation of admin sessions and node credentials, and
// hostile input (wrong token, expired session, forged CSRF, oversized fields) refused with the
// right status and nothing changed in the database.

import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { acceptUpload, cancelExecution, createExecution } from '../../src/control-plane/actions.js';
import { createControlPlane } from '../../src/control-plane/server.js';
import { createAdminToken, revokeAdminToken } from '../../src/control-plane/ui/admin-auth.js';
import { CSP, MAX_FIELD_CHARS, MAX_FORM_BYTES, MAX_UI_EXECUTIONS, SESSION_COOKIE } from '../../src/control-plane/ui/dashboard.js';
import { createHarness, harnessEach, runCli, type Harness } from './harness.js';

interface Reply {
  status: number;
  headers: Headers;
  text: string;
}

async function req(h: Harness, method: string, path: string, opts: { cookie?: string; form?: Record<string, string> | string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const body = opts.form === undefined ? undefined : typeof opts.form === 'string' ? opts.form : new URLSearchParams(opts.form).toString();
  const res = await fetch(h.cp.url + path, {
    method,
    redirect: 'manual',
    headers: {
      ...(opts.cookie === undefined ? {} : { cookie: `${SESSION_COOKIE}=${opts.cookie}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
      ...opts.headers,
    },
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Logs in with a fresh admin token; the session cookie and its CSRF token (from a page). */
async function loginAs(h: Harness): Promise<{ cookie: string; csrf: string; token: string }> {
  const { token } = createAdminToken(h.cp.store.db, 'test', h.cp.store.now());
  const r = await req(h, 'POST', '/ui/login', { form: { token } });
  expect(r.status).toBe(303);
  const set = r.headers.get('set-cookie')!;
  const cookie = new RegExp(`${SESSION_COOKIE}=([^;]+)`).exec(set)![1]!;
  const page = await req(h, 'GET', '/ui/tokens', { cookie });
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!;
  return { cookie, csrf, token };
}

/** Every row of the tables a dashboard change could touch. */
function snapshot(h: Harness): string {
  const db = h.cp.store.db;
  return JSON.stringify(['tokens', 'admin_tokens', 'admin_sessions', 'nodes', 'policies', 'executions', 'events'].map((t) => db.prepare(`SELECT * FROM ${t}`).all()), (_k, v) => (Buffer.isBuffer(v) ? v.toString('hex') : v));
}

describe('dashboard', () => {
  const h = harnessEach({}, { open: true });

  it('sends the login page to a visitor without a session, with a strict CSP and no inline script', async () => {
    const r = await req(h, 'GET', '/ui/');
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/ui/login');
    expect(r.headers.get('content-security-policy')).toBe(CSP);
    const login = await req(h, 'GET', '/ui/login');
    expect(login.status).toBe(200);
    for (const [k, v] of [['content-security-policy', CSP], ['x-content-type-options', 'nosniff'], ['x-frame-options', 'DENY'], ['cache-control', 'no-store']]) expect(login.headers.get(k!)).toBe(v);
    expect(CSP).toContain("script-src 'self'");
    expect(CSP).not.toContain('unsafe-inline');
    expect(login.text).toContain('<label for="token">');
    expect(login.text).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(login.text).not.toMatch(/ style=| on[a-z]+=/);
  });

  it('logs in with an admin token into an HttpOnly SameSite=Strict cookie, shows the pages, logs out', async () => {
    await h.register({ resource_handle: 'alpha' });
    const { cookie, csrf } = await loginAs(h);
    const set = (await req(h, 'POST', '/ui/login', { form: { token: createAdminToken(h.cp.store.db, 'x', 0).token } })).headers.get('set-cookie')!;
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Strict/);
    expect(set).toMatch(/Path=\/ui/);
    expect(set).not.toMatch(/Secure/); // plain HTTP here; https.test-style servers get Secure
    for (const path of ['/ui/', '/ui/graph', '/ui/policy', '/ui/tokens', '/ui/bridges', '/ui/actions']) {
      const r = await req(h, 'GET', path, { cookie });
      expect(r.status, path).toBe(200);
      expect(r.headers.get('content-security-policy')).toBe(CSP);
      expect(r.text).not.toMatch(/<script(?![^>]*\bsrc=)/);
    }
    expect((await req(h, 'GET', '/ui/', { cookie })).text).toContain('alpha');
    const svg = await req(h, 'GET', '/ui/graph.svg', { cookie });
    expect(svg.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
    expect(svg.text).toContain('data-node=');
    const out = await req(h, 'POST', '/ui/logout', { cookie, form: { csrf } });
    expect(out.status).toBe(303);
    expect(out.headers.get('set-cookie')).toMatch(/Max-Age=0/);
    expect((await req(h, 'GET', '/ui/', { cookie })).status).toBe(303);
  });

  it('refuses a wrong, malformed or revoked admin token with 401 and makes no session', async () => {
    const { token, id } = createAdminToken(h.cp.store.db, 'gone', h.cp.store.now());
    revokeAdminToken(h.cp.store.db, id, h.cp.store.now());
    const before = snapshot(h);
    for (const t of ['plexd_admin_' + 'A'.repeat(43), 'nope', '', token]) {
      const r = await req(h, 'POST', '/ui/login', { form: { token: t } });
      expect(r.status, t).toBe(401);
      expect(r.headers.get('set-cookie')).toBeNull();
    }
    expect(snapshot(h)).toBe(before);
  });

  it('refuses a forged, missing or other-session CSRF token with 403 and changes nothing', async () => {
    const { cookie } = await loginAs(h);
    const other = await loginAs(h);
    const before = snapshot(h);
    for (const csrf of [undefined, 'forged', other.csrf]) {
      const form: Record<string, string> = { ttl: '1h', project: 'default' };
      if (csrf !== undefined) form.csrf = csrf;
      expect((await req(h, 'POST', '/ui/tokens', { cookie, form })).status).toBe(403);
    }
    expect(snapshot(h)).toBe(before);
  });

  it('refuses cross-site posts (Origin, Sec-Fetch-Site) even with a valid CSRF token', async () => {
    const { cookie, csrf } = await loginAs(h);
    const before = snapshot(h);
    for (const headers of [{ origin: 'https://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }] as Record<string, string>[]) {
      expect((await req(h, 'POST', '/ui/tokens', { cookie, form: { csrf, ttl: '1h' }, headers })).status).toBe(403);
    }
    expect(snapshot(h)).toBe(before);
  });

  it('refuses oversized forms (413) and oversized fields (400) and changes nothing', async () => {
    const { cookie, csrf } = await loginAs(h);
    const before = snapshot(h);
    const big = await req(h, 'POST', '/ui/tokens', { cookie, form: { csrf, ttl: '1h', labels: 'a=' + 'x'.repeat(MAX_FORM_BYTES) } });
    expect(big.status).toBe(413);
    // An otherwise valid form with one field (ignored by the handler) past the limit.
    const field = await req(h, 'POST', '/ui/tokens', { cookie, form: { csrf, ttl: '1h', note: 'x'.repeat(MAX_FIELD_CHARS + 1) } });
    expect(field.status).toBe(400);
    const login = await req(h, 'POST', '/ui/login', { form: { token: 'x'.repeat(MAX_FORM_BYTES + 1) } });
    expect(login.status).toBe(413);
    for (const ttl of ['0s', '999d', 'forever']) expect((await req(h, 'POST', '/ui/tokens', { cookie, form: { csrf, ttl } })).status, ttl).toBe(400);
    expect((await req(h, 'POST', '/ui/tokens', { cookie, form: { csrf, ttl: '1h', labels: 'bad label' } })).status).toBe(400);
    expect((await req(h, 'POST', '/ui/tokens', { cookie, form: { csrf, ttl: '1h', project: 'nope' } })).status).toBe(400);
    expect((await req(h, 'POST', '/ui/tokens', { cookie, form: `csrf=${csrf}&ttl=1h&ttl=2h` })).status).toBe(400);
    expect(snapshot(h)).toBe(before);
  });

  it('creates a token shown once and revokes it', async () => {
    const { cookie, csrf } = await loginAs(h);
    const r = await req(h, 'POST', '/ui/tokens', { cookie, form: { csrf, ttl: '15m', labels: 'role=web' } });
    expect(r.status).toBe(201);
    const token = /<output id="new-token"><code>([^<]+)<\/code>/.exec(r.text)![1]!;
    const id = /New bootstrap token ([0-9a-f]{12})/.exec(r.text)![1]!;
    const list = await req(h, 'GET', '/ui/tokens', { cookie });
    expect(list.text).toContain(id);
    expect(list.text).not.toContain(token); // never shown again
    expect(h.cp.store.db.prepare('SELECT COUNT(*) FROM tokens WHERE hash LIKE ?').pluck().get(`${id}%`)).toBe(1);
    const rv = await req(h, 'POST', '/ui/tokens/revoke', { cookie, form: { csrf, id } });
    expect(rv.status).toBe(303);
    expect(h.cp.store.db.prepare('SELECT COUNT(*) FROM tokens WHERE hash LIKE ? AND revoked_at IS NOT NULL').pluck().get(`${id}%`)).toBe(1);
    expect((await req(h, 'POST', '/ui/tokens/revoke', { cookie, form: { csrf, id } })).status).toBe(404);
  });

  it('keeps admin sessions and node credentials apart', async () => {
    const node = await h.register();
    const { cookie } = await loginAs(h);
    // A node credential opens no dashboard page, stream or change.
    expect((await req(h, 'GET', '/ui/', { headers: node.auth })).status).toBe(303);
    expect((await req(h, 'GET', '/ui/graph.json', { headers: node.auth })).status).toBe(401);
    expect((await req(h, 'GET', '/ui/events', { headers: node.auth })).status).toBe(401);
    expect((await req(h, 'POST', '/ui/tokens', { headers: node.auth, form: { ttl: '1h' } })).status).toBe(401);
    expect((await req(h, 'GET', '/ui/actions', { headers: node.auth })).status).toBe(303);
    const exec = createExecution(h.cp.store, { nodeId: node.node_id, action: 'system.info' });
    const before = snapshot(h);
    expect((await req(h, 'POST', '/ui/actions', { headers: node.auth, form: { node: node.node_id, action: 'system.info' } })).status).toBe(401);
    expect((await req(h, 'POST', '/ui/actions/cancel', { headers: node.auth, form: { id: exec } })).status).toBe(401);
    expect(snapshot(h)).toBe(before);
    // An admin session opens no node route.
    expect((await req(h, 'GET', `/v1/nodes/${node.node_id}/state`, { cookie })).status).toBe(401);
    expect((await req(h, 'POST', `/v1/nodes/${node.node_id}/deregister`, { cookie, headers: { 'content-type': 'application/json' } })).status).toBe(401);
    expect(h.cp.store.node(node.node_id)).toBeDefined();
  });

  it('shows the per-rule counters agents report in heartbeats; a malformed report is a 400 and stores nothing', async () => {
    const a = await h.register({ resource_handle: 'alpha' });
    const pol = h.cp.store.policy('default')!;
    const beat = (policy: unknown) =>
      h.call('POST', `/v1/nodes/${a.node_id}/heartbeat`, { client_now: new Date().toISOString(), binary_checksum: 'ab', binary_version: '0.1.0', nat_summary: {}, policy }, a.auth);
    const hits = pol.rules.map((_r, i) => ({ packets: 1000 + i, bytes: 77_000 + i }));
    for (const bad of [{ rule_hits: [{ packets: -1, bytes: 0 }] }, { rule_hits: 'x' }, { rule_hits: Array.from({ length: 1001 }, () => ({ packets: 0, bytes: 0 })) }, 'x']) {
      expect((await beat(bad)).status, JSON.stringify(bad).slice(0, 60)).toBe(400);
    }
    expect(h.cp.store.db.prepare('SELECT COUNT(*) FROM policy_hits').pluck().get()).toBe(0);
    expect((await beat({ revision_id: pol.revision_id, fingerprint: pol.fingerprint, mode: 'enforcing' })).status).toBe(200); // older agents: no rule_hits
    expect((await beat(null)).status).toBe(200); // upstream agents: no policy
    expect(h.cp.store.db.prepare('SELECT COUNT(*) FROM policy_hits').pluck().get()).toBe(0);
    expect((await beat({ revision_id: pol.revision_id, fingerprint: pol.fingerprint, mode: 'enforcing', rule_hits: hits })).status).toBe(200);
    const { cookie } = await loginAs(h);
    const page = (await req(h, 'GET', '/ui/policy', { cookie })).text;
    expect(page).toContain('<td class="packets">1000</td><td>77000</td>');
    expect(page).toContain('summed over 1 node enforcing this revision');
    expect(page).toMatch(/<th scope="row"[^>]*>alpha<\/th>/);
    // Another revision: the old report no longer maps onto the rules.
    h.cp.store.setPolicy('default', [...pol.rules, { action: 'allow', protocol: 'tcp', source_cidr: '10.100.0.0/16', destination_cidr: '10.100.0.0/16', ports: { from: 22, to: 22 } }] as never);
    const after = (await req(h, 'GET', '/ui/policy', { cookie })).text;
    expect(after).not.toContain('>1000</td>');
    expect(after).toContain('for a revision it no longer gets');
    expect(after).toMatch(/<td>2<\/td><td>[^<]+<\/td><td>\d+<\/td>/); // history: revision 2 listed
  });

  it('lists executions newest first with their results, escaping hostile parameters and output', async () => {
    const a = await h.register({ resource_handle: 'alpha' });
    const evil = '<script>alert(1)</script>"\'&';
    const report = (id: string, body: Record<string, unknown>) => h.call('POST', `/v1/nodes/${a.node_id}/executions/${id}`, body, a.auth);
    const done = createExecution(h.cp.store, { nodeId: a.node_id, action: 'system.info', parameters: { q: evil } });
    for (const status of ['ack', 'started']) expect((await report(done, { status })).status).toBe(200);
    const output = `${evil}\n${'y'.repeat(1000)}`;
    expect((await report(done, { status: 'failed', exit_code: 3, error: `boom ${evil}`, output: { inline: Buffer.from(output).toString('base64') } })).status).toBe(200);
    // An uploaded (large) output: shown by size and digest, not inline.
    const big = createExecution(h.cp.store, { nodeId: a.node_id, action: 'logs.tail' });
    for (const status of ['ack', 'started']) expect((await report(big, { status })).status).toBe(200);
    const up = await report(big, { status: 'started', declared_output_bytes: 20_000 });
    const token = new URL(up.body.output_upload_url as string).searchParams.get('token')!;
    acceptUpload(h.cp.store, big, token, Buffer.alloc(20_000, 0x41));
    const pending = createExecution(h.cp.store, { nodeId: a.node_id, action: 'net.ping' });
    // Distinct request times (the same millisecond otherwise): newest first.
    [done, big, pending].forEach((id, i) => h.cp.store.db.prepare('UPDATE executions SET created_at = ? WHERE execution_id = ?').run(1_000_000 + i, id));
    const { cookie } = await loginAs(h);
    const r = await req(h, 'GET', '/ui/actions', { cookie });
    expect(r.status).toBe(200);
    expect(r.text).toContain('aria-current="page"');
    expect(r.text).not.toContain('<script>alert');
    expect(r.text).toContain('q=&#60;script&#62;alert(1)&#60;/script&#62;&#34;&#39;&#38;');
    expect(r.text).toContain('boom &#60;script&#62;');
    expect(r.text).toContain(`… (${Buffer.byteLength(output)} bytes)</pre>`); // truncated preview
    expect(r.text).not.toContain('y'.repeat(400));
    expect(r.text).toContain('uploaded, 20000 bytes, sha256');
    expect(r.text).not.toContain('A'.repeat(400));
    expect(r.text).toMatch(/<th scope="row">alpha<br>/);
    const order = [...r.text.matchAll(/data-execution="([^"]+)"/g)].map((m) => m[1]);
    expect(order).toEqual([pending, big, done]);
    // Only the open ones (pending, started) have a cancel button.
    expect([...r.text.matchAll(/aria-label="Cancel execution ([^"]+)"/g)].map((m) => m[1])).toEqual([pending, big]);
  });

  it('bounds the executions list', async () => {
    const a = await h.register();
    for (let i = 0; i < MAX_UI_EXECUTIONS + 5; i++) createExecution(h.cp.store, { nodeId: a.node_id, action: 'system.info' });
    const { cookie } = await loginAs(h);
    const r = await req(h, 'GET', '/ui/actions', { cookie });
    expect([...r.text.matchAll(/data-execution=/g)].length).toBe(MAX_UI_EXECUTIONS);
  });

  it('runs a built-in action and cancels it from the form; CSRF and bad input change nothing', async () => {
    const a = await h.register({ resource_handle: 'alpha' });
    const { cookie, csrf } = await loginAs(h);
    const other = await loginAs(h);
    const open = createExecution(h.cp.store, { nodeId: a.node_id, action: 'system.info' });
    const before = snapshot(h);
    for (const bad of [undefined, 'forged', other.csrf]) {
      const withCsrf = (f: Record<string, string>) => (bad === undefined ? f : { ...f, csrf: bad });
      expect((await req(h, 'POST', '/ui/actions', { cookie, form: withCsrf({ node: a.node_id, action: 'system.info' }) })).status).toBe(403);
      expect((await req(h, 'POST', '/ui/actions/cancel', { cookie, form: withCsrf({ id: open }) })).status).toBe(403);
    }
    // Cross-site with a valid token.
    expect((await req(h, 'POST', '/ui/actions', { cookie, form: { csrf, node: a.node_id, action: 'system.info' }, headers: { 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
    // Bad input: refused with the reason, nothing stored.
    const refused: Array<[Record<string, string>, number, RegExp]> = [
      [{ node: a.node_id, action: '../etc/passwd' }, 400, /action/],
      [{ node: a.node_id, action: '' }, 400, /action/],
      [{ node: 'nope', action: 'system.info' }, 404, /does not exist/],
      [{ node: a.node_id, action: 'system.info', params: 'novalue' }, 400, /Parameters: expected K=V/],
      [{ node: a.node_id, action: 'system.info', params: 'k=1\nk=2' }, 400, /k given twice/],
      [{ node: a.node_id, action: 'system.info', params: 'bad key=1' }, 400, /parameter name/],
    ];
    for (const [form, status, message] of refused) {
      const r = await req(h, 'POST', '/ui/actions', { cookie, form: { csrf, ...form } });
      expect(r.status, JSON.stringify(form)).toBe(status);
      expect(r.text).toMatch(message);
      expect(r.text).toContain('role="alert"');
    }
    for (const id of ['nope', '00000000-0000-0000-0000-000000000000']) expect((await req(h, 'POST', '/ui/actions/cancel', { cookie, form: { csrf, id } })).status, id).toBeGreaterThanOrEqual(400);
    expect(snapshot(h)).toBe(before);
    // A good run: queued for the node with its parameters.
    const ok = await req(h, 'POST', '/ui/actions', { cookie, form: { csrf, node: a.node_id, action: 'net.ping', params: 'host=10.0.0.1\r\ncount=3\n' } });
    expect(ok.status).toBe(201);
    const id = /Queued execution <code>([0-9a-f-]{36})<\/code>/.exec(ok.text)![1]!;
    const row = h.cp.store.db.prepare('SELECT node_id, action, type, args, status FROM executions WHERE execution_id = ?').get(id);
    expect(row).toEqual({ node_id: a.node_id, action: 'net.ping', type: 'builtin', args: JSON.stringify({ host: '10.0.0.1', count: '3' }), status: 'pending' });
    const state = await h.call('GET', `/v1/nodes/${a.node_id}/state`, undefined, a.auth);
    expect((state.body.executions as Array<{ execution_id: string }>).map((e) => e.execution_id)).toContain(id);
    // Cancel it.
    const c = await req(h, 'POST', '/ui/actions/cancel', { cookie, form: { csrf, id } });
    expect(c.status).toBe(303);
    expect(c.headers.get('location')).toBe('/ui/actions');
    expect(h.cp.store.db.prepare('SELECT status FROM executions WHERE execution_id = ?').pluck().get(id)).toBe('cancelled');
    expect(cancelExecution(h.cp.store, open)).toBe('cancelled');
  });

  it('tells an open graph stream when the mesh changes', async () => {
    const { cookie } = await loginAs(h);
    const ac = new AbortController();
    const res = await fetch(`${h.cp.url}/ui/events`, { headers: { cookie: `${SESSION_COOKIE}=${cookie}` }, signal: ac.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    const got = (async () => {
      while (!text.includes('event: mesh')) text += Buffer.from((await reader.read()).value ?? []).toString();
    })();
    await h.register();
    await got;
    expect(h.cp.dashboard!.streams).toBe(1);
    ac.abort();
  });
});

describe('dashboard sessions', () => {
  it('ends a session at its expiry: pages redirect, changes get 401, nothing changes', async () => {
    const h = createHarness({ ui: { sessionTtlMs: 300 } }, { open: true });
    await h.start();
    try {
      const { cookie, csrf } = await loginAs(h);
      expect((await req(h, 'GET', '/ui/', { cookie })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 400));
      const before = snapshot(h);
      expect((await req(h, 'GET', '/ui/', { cookie })).status).toBe(303);
      expect((await req(h, 'GET', '/ui/graph.svg', { cookie })).status).toBe(401);
      expect((await req(h, 'POST', '/ui/tokens', { cookie, form: { csrf, ttl: '1h' } })).status).toBe(401);
      expect(snapshot(h)).toBe(before);
    } finally {
      await h.stop();
    }
  });

  it('marks the cookie Secure over HTTPS', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cp-ui-tls-'));
    const cp = await createControlPlane({ db: join(dir, 'cp.db'), listen: '127.0.0.1:0' });
    try {
      const { token } = createAdminToken(cp.store.db, 'tls', cp.store.now());
      const body = new URLSearchParams({ token }).toString();
      const setCookie = await new Promise<string[] | undefined>((resolve, reject) => {
        // Loopback, the server's own self-signed certificate: not verified here (https.test.ts pins it).
        const r = request(`${cp.url}/ui/login`, { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
          res.resume();
          resolve(res.headers['set-cookie']);
        });
        r.on('error', reject);
        r.end(body);
      });
      expect(setCookie?.[0]).toMatch(/; HttpOnly; SameSite=Strict; .*; Secure$/);
    } finally {
      await cp.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is off with ui: false (serve --no-ui): /ui/ is a 404 problem', async () => {
    const h = createHarness({ ui: false });
    await h.start();
    try {
      expect((await req(h, 'GET', '/ui/login')).status).toBe(404);
      expect(h.cp.dashboard).toBeUndefined();
    } finally {
      await h.stop();
    }
  });

  it('admin-token create, list and revoke from the CLI; the token is stored hashed', async () => {
    const h = createHarness();
    await h.start();
    try {
      const c = await runCli('admin-token', 'create', '--db', h.dbFile, '--name', 'ops', '--json');
      expect(c.code).toBe(0);
      const { admin_token, id } = JSON.parse(c.out) as { admin_token: string; id: string };
      expect(admin_token).toMatch(/^plexd_admin_/);
      expect(JSON.stringify(h.cp.store.db.prepare('SELECT * FROM admin_tokens').all())).not.toContain(admin_token.slice(12));
      const l = await runCli('admin-token', 'list', '--db', h.dbFile, '--json');
      expect(JSON.parse(l.out)).toMatchObject([{ id, name: 'ops', revoked_at: null }]);
      const { cookie } = { cookie: /plexd_ui=([^;]+)/.exec((await req(h, 'POST', '/ui/login', { form: { token: admin_token } })).headers.get('set-cookie')!)![1]! };
      expect((await req(h, 'GET', '/ui/', { cookie })).status).toBe(200);
      expect((await runCli('admin-token', 'revoke', id, '--db', h.dbFile)).code).toBe(0);
      expect((await req(h, 'GET', '/ui/', { cookie })).status).toBe(303); // its sessions ended with it
      expect((await runCli('admin-token', 'revoke', id, '--db', h.dbFile)).code).toBe(1);
      expect((await runCli('admin-token', 'create', '--db', h.dbFile, '--name', '')).code).toBe(2);
    } finally {
      await h.stop();
    }
  });
});
