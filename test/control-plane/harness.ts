// Test harness for the control plane: an in-process server on 127.0.0.1:0 over a temp database,
// JSON calls, a registration helper and an SSE reader. Everything it starts is closed by `stop`.

import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeNodeCredential, parseEnvelope, type EventEnvelope, type RegisterResponse } from '../../src/api/index.js';
import pg from 'pg';
import { afterEach, beforeEach, inject, vi } from 'vitest';
import { runControlPlane } from '../../src/cli/control-plane.js';
import { ALLOW_ALL_MESH_RULES } from '../../src/control-plane/policy.js';
import { openDatabase } from '../../src/control-plane/database.js';
import { createControlPlane, type ControlPlane, type ControlPlaneOptions } from '../../src/control-plane/server.js';

/** Sets an allow-all policy on project default: every node sees every other (without a policy
 *  no node sees any, docs/policy.md "Visibility and groups"). */
export function openMesh(h: { readonly cp: ControlPlane }): void {
  h.cp.store.setPolicy('default', ALLOW_ALL_MESH_RULES);
}

export interface Harness {
  readonly cp: ControlPlane;
  readonly dir: string;
  readonly dbFile: string;
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  register(over?: Record<string, unknown>): Promise<Registered>;
  /** Starts a control plane on a fresh temp database; `over` is added to the harness's options. */
  start(over?: Partial<ControlPlaneOptions>): Promise<void>;
  /** Closes the control plane and starts it again on the same database. */
  restart(): Promise<void>;
  /** Closes the control plane and removes the database; safe to call when stopped. */
  stop(): Promise<void>;
}

export interface Registered extends RegisterResponse {
  readonly bearer: string;
  readonly auth: Record<string, string>;
}

/** A random base64 X25519-sized public key. */
export const randomKey = (): string => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64');

/** How a harness starts: `open: true` sets an allow-all policy after every fresh start (for tests
 *  about something else than visibility, written when every node saw every other). */
export interface HarnessMode {
  readonly open?: boolean;
}

/** A control plane over HTTP, not started yet (see Harness.start); `opts` apply to every start. */
export function createHarness(opts: Partial<ControlPlaneOptions> = {}, mode: HarnessMode = {}): Harness {
  let dir: string | undefined;
  let cp: ControlPlane | undefined;
  let options = opts;
  const running = (): { cp: ControlPlane; dir: string } => {
    if (cp === undefined || dir === undefined) throw new Error('expected a started harness, got a stopped one');
    return { cp, dir };
  };
  // The unit-pg project (vitest.config.ts) runs the same tests on PostgreSQL: a fresh database per
  // start, the secrets key in the temp dir (also for in-process CLI runs, PLEXD_CP_SECRETS_KEY).
  let database: string | undefined;
  const target = (into: string): string => (database === undefined ? join(into, 'cp.db') : database);
  const open = (into: string) =>
    createControlPlane({ db: target(into), ...(database === undefined ? {} : { secretsKeyFile: join(into, 'cp.db.secrets.key') }), listen: '127.0.0.1:0', insecureHttp: true, pollMs: 50, ...options });
  const h: Harness = {
    get cp() {
      return running().cp;
    },
    get dir() {
      return running().dir;
    },
    get dbFile() {
      return target(running().dir);
    },
    async call(method, path, body, headers = {}) {
      const send = () =>
        fetch(h.cp.url + path, {
          method,
          headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
          ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
          signal: AbortSignal.timeout(10_000),
        });
      // A GET on a pooled connection the server closed at its keep-alive timeout meanwhile (the
      // in-process CLI can hold this event loop past it) is sent again once, as clients do.
      const res = await send().catch((err: Error) => {
        if (method !== 'GET' || (err.cause as { code?: string } | undefined)?.code !== 'ECONNRESET') throw err;
        return send();
      });
      const text = await res.text();
      return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers };
    },
    async register(over = {}) {
      const token = over.bootstrap_token ?? h.cp.store.createToken().token;
      const req = { project_id: 'default', resource_handle: `host-${randomUUID().slice(0, 8)}`, bootstrap_token: token, nonce: randomUUID(), public_key: randomKey(), ...over };
      const r = await h.call('POST', '/v1/register', req);
      if (r.status !== 201) throw new Error(`register: ${r.status} ${JSON.stringify(r.body)}`);
      const bearer = encodeNodeCredential(r.body.node_id, Buffer.from(r.body.nsk, 'base64'));
      return { ...r.body, bearer, auth: { authorization: `Bearer ${bearer}` } };
    },
    async start(over = {}) {
      await h.stop();
      dir = mkdtempSync(join(tmpdir(), 'cp-test-'));
      options = { ...opts, ...over };
      database = await createTestDatabase();
      if (database !== undefined) process.env.PLEXD_CP_SECRETS_KEY = join(dir, 'cp.db.secrets.key');
      cp = await open(dir);
      if (mode.open === true) openMesh(h);
    },
    async restart() {
      const was = running();
      await was.cp.close();
      cp = await open(was.dir);
    },
    async stop() {
      await cp?.close();
      cp = undefined;
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      dir = undefined;
      if (database !== undefined) await dropTestDatabase(database);
      database = undefined;
      delete process.env.PLEXD_CP_SECRETS_KEY;
    },
  };
  return h;
}

/** The PostgreSQL server of the unit-pg project (its globalSetup), or undefined on SQLite. */
export function testPostgresUrl(): string | undefined {
  return (inject as (key: string) => string | undefined)('pgUrl');
}

/** A new database on the unit-pg project's server (its URL), migrated unless `empty`, or
 *  undefined on SQLite. */
export async function createTestDatabase(options: { readonly empty?: boolean } = {}): Promise<string | undefined> {
  const admin = testPostgresUrl();
  if (admin === undefined) return undefined;
  // Each test's database is a copy of one migrated template per test file: the schema is made
  // once, not once per test (CREATE DATABASE ... TEMPLATE copies it in milliseconds).
  template ??= (async () => {
    const name = `tmpl_${randomUUID().replaceAll('-', '')}`;
    await adminQuery(admin, `CREATE DATABASE ${name}`);
    openDatabase(databaseUrl(admin, name)).close();
    return name;
  })();
  const name = `t_${randomUUID().replaceAll('-', '')}`;
  await adminQuery(admin, options.empty === true ? `CREATE DATABASE ${name}` : `CREATE DATABASE ${name} TEMPLATE ${await template}`);
  return databaseUrl(admin, name);
}
let template: Promise<string> | undefined;

function databaseUrl(admin: string, name: string): string {
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return u.href;
}

async function adminQuery(admin: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** Drops a database made by createTestDatabase (closing what still holds it). */
export async function dropTestDatabase(url: string): Promise<void> {
  const admin = testPostgresUrl();
  if (admin === undefined) return;
  await adminQuery(admin, `DROP DATABASE IF EXISTS ${new URL(url).pathname.slice(1)} WITH (FORCE)`);
}

/**
 * A harness for every test of the enclosing file or describe block: started before each test,
 * stopped (and vi spies restored) after it.
 */
export function harnessEach(opts: Partial<ControlPlaneOptions> = {}, mode: HarnessMode = {}): Harness {
  const h = createHarness(opts, mode);
  beforeEach(() => h.start());
  afterEach(async () => {
    vi.restoreAllMocks();
    await h.stop();
  });
  return h;
}

/** Runs `control-plane ARGS` in-process (another connection to the database, as from a shell),
 *  capturing stdout and stderr. */
export async function runCli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    return { code: await runControlPlane(args), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

/** One received SSE event. */
export interface SseEvent {
  readonly id: string | undefined;
  readonly event: string | undefined;
  readonly envelope: EventEnvelope;
}

/** An open SSE stream with a queue of parsed events. */
export interface SseStream {
  readonly status: number;
  readonly events: SseEvent[];
  readonly comments: string[];
  /** Resolves with the first event (already received or later) matching `pred`; rejects after `ms`. */
  next(pred: (e: SseEvent) => boolean, ms?: number): Promise<SseEvent>;
  readonly ended: Promise<void>;
  close(): void;
}

/** Opens GET /v1/nodes/{id}/events and parses the stream (WHATWG SSE: fields, blank-line dispatch). */
export async function openStream(baseUrl: string, nodeId: string, headers: Record<string, string>): Promise<SseStream> {
  const ac = new AbortController();
  const res = await fetch(`${baseUrl}/v1/nodes/${nodeId}/events`, { headers, signal: ac.signal });
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const waiters: Array<() => void> = [];
  let ended: Promise<void> = Promise.resolve();
  if (res.ok && res.body !== null) {
    const reader = res.body.getReader();
    ended = (async () => {
      let buf = '';
      let cur: { id?: string; event?: string; data: string[] } = { data: [] };
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buf += Buffer.from(value).toString('utf8');
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line === '') {
              if (cur.data.length > 0) {
                const parsed = parseEnvelope(JSON.parse(cur.data.join('\n')));
                if (!parsed.ok) throw new Error(`bad envelope ${JSON.stringify(parsed.errors)}`);
                events.push({ id: cur.id, event: cur.event, envelope: parsed.value });
                for (const w of waiters.splice(0)) w();
              }
              cur = { data: [] };
            } else if (line.startsWith(':')) comments.push(line);
            else {
              const i = line.indexOf(':');
              const field = line.slice(0, i);
              const value2 = line.slice(i + 1).replace(/^ /, '');
              if (field === 'data') cur.data.push(value2);
              else if (field === 'id') cur.id = value2;
              else if (field === 'event') cur.event = value2;
            }
          }
        }
      } catch {
        // aborted or reset: the stream is over
      }
      for (const w of waiters.splice(0)) w();
    })();
  } else {
    await res.text().catch(() => undefined);
  }
  return {
    status: res.status,
    events,
    comments,
    ended,
    next(pred, ms = 5000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching event within ${ms} ms; have ${events.map((e) => e.envelope.type).join(',')}`)), ms);
        const check = () => {
          const hit = events.find(pred);
          if (hit !== undefined) {
            clearTimeout(timer);
            resolve(hit);
          } else waiters.push(check);
        };
        check();
      });
    },
    close: () => ac.abort(),
  };
}
