// Several `control-plane serve` replicas on one PostgreSQL database (issue 20), each a process of
// its own (so their requests really run at the same time) on a fresh database of a throwaway
// cluster (bench/lib/pg-cluster.mjs), behind our TCP load balancer where a test needs one: two
// replicas starting together on an empty database; the registration race (no duplicate mesh IP,
// each token used once); an event caused through one replica reaching a stream on the other
// within 1 s; Last-Event-ID resume on the other replica (no gap, no duplicate); a killed replica's
// agent reconnecting through the balancer without missing an event; a database outage (503
// problem+json at once meanwhile, then served again) and a database crash amid registrations
// (nothing half-written).

import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { postgresUnavailableReason, startPostgres, type PostgresCluster } from '../../bench/lib/pg-cluster.mjs';
import { encodeNodeCredential } from '../../src/api/index.js';
import { ALLOW_ALL_MESH_RULES } from '../../src/control-plane/policy.js';
import { ControlPlaneStore } from '../../src/control-plane/store.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { sleep, until } from '../helpers/wait.js';
import { DAEMON, ensureBuilt } from '../helpers/wg-lab.js';
import { openStream, randomKey, type SseEvent, type SseStream } from './harness.js';

const unavailable = postgresUnavailableReason();
if (unavailable !== undefined) console.log(`replica tests skipped: ${unavailable}`);

/** One `control-plane serve` process. */
interface Replica {
  readonly url: string;
  /** "127.0.0.1:PORT", for the proxy. */
  readonly addr: string;
  readonly child: ChildProcess;
  /** Its stdout and stderr so far. */
  output(): string;
  /** SIGKILL, resolved once it exited. */
  kill(): Promise<void>;
}

/** A registered node: its id, mesh IP and Authorization header. */
interface Node {
  readonly node_id: string;
  readonly mesh_ip: string;
  readonly auth: Record<string, string>;
}

/** POST /v1/register at `url` with `token`; resolves status and body (never throws on a status). */
async function registerAt(url: string, token: string): Promise<{ status: number; body: any }> {
  const req = { project_id: 'default', resource_handle: `host-${randomUUID().slice(0, 8)}`, bootstrap_token: token, nonce: randomUUID(), public_key: randomKey() };
  const res = await fetch(`${url}/v1/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(req), signal: AbortSignal.timeout(15_000) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

/** registerAt that must succeed. */
async function mustRegister(url: string, token: string): Promise<Node> {
  const r = await registerAt(url, token);
  if (r.status !== 201) throw new Error(`register at ${url}: ${r.status} ${JSON.stringify(r.body)}`);
  const bearer = encodeNodeCredential(r.body.node_id, Buffer.from(r.body.nsk, 'base64'));
  return { node_id: r.body.node_id, mesh_ip: r.body.mesh_ip, auth: { authorization: `Bearer ${bearer}` } };
}

/** The peer a peer_added event announces. */
const peerOf = (e: SseEvent): string => (e.envelope.payload as { peer: { node_id: string } }).peer.node_id;

/**
 * A node's event stream as an agent keeps it: reopened (after `retryMs`) with Last-Event-ID
 * whenever it ends, through whatever `url` leads to. events() is everything received, in order.
 */
function resumingStream(url: string, node: Node, retryMs = 100): { events(): SseEvent[]; opened: number; stop(): void } {
  const done: SseEvent[] = [];
  let current: SseStream | undefined;
  let stopped = false;
  let opened = 0;
  void (async () => {
    while (!stopped) {
      const last = done.at(-1)?.id;
      const s = await openStream(url, node.node_id, { ...node.auth, ...(last === undefined ? {} : { 'last-event-id': last }) }).catch(() => undefined);
      if (s !== undefined && s.status === 200) {
        opened++;
        current = s;
        await s.ended;
        current = undefined;
        done.push(...s.events);
      }
      if (!stopped) await sleep(retryMs);
    }
  })();
  return {
    events: () => [...done, ...(current?.events ?? [])],
    get opened() {
      return opened;
    },
    stop() {
      stopped = true;
      current?.close();
    },
  };
}

describe.skipIf(unavailable !== undefined)('control-plane replicas on one PostgreSQL database', () => {
  let pg: PostgresCluster;
  let dir: string;
  let dbCount = 0;
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    await ensureBuilt();
    pg = await startPostgres();
    dir = mkdtempSync(join(tmpdir(), 'cp-replicas-'));
  }, 120_000);
  afterAll(async () => {
    await pg?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A fresh database set up by an admin store in this process (schema, key, default project). */
  const freshDatabase = async (): Promise<{ url: string; keyFile: string; admin: ControlPlaneStore }> => {
    dbCount++;
    const url = await pg.createDatabase(`replicas_${dbCount}`);
    const keyFile = join(dir, `replicas_${dbCount}.secrets.key`);
    const admin = ControlPlaneStore.open(url, { secretsKeyFile: keyFile });
    cleanups.push(() => admin.close());
    return { url, keyFile, admin };
  };

  /** Starts `serve` on `db`; resolves once it prints where it listens. */
  const startReplica = async (db: string, keyFile: string): Promise<Replica> => {
    const child = spawn(process.execPath, [DAEMON, 'control-plane', 'serve', '--listen', '127.0.0.1:0', '--db', db, '--secrets-key', keyFile, '--insecure-http', '--no-ui'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const kill = async (): Promise<void> => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    };
    cleanups.push(kill);
    const url = await until('the replica to listen', 30_000, () => {
      if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}:\n${out}`);
      return /control-plane listening on (\S+)/.exec(out)?.[1];
    });
    return { url, addr: new URL(url).host, child, output: () => out, kill };
  };

  const twoReplicas = async (db: string, keyFile: string): Promise<[Replica, Replica]> => {
    const [a, b] = await Promise.all([startReplica(db, keyFile), startReplica(db, keyFile)]);
    return [a, b];
  };

  const proxyOver = async (backends: string[]): Promise<TcpProxy> => {
    const p = await startTcpProxy(backends);
    cleanups.push(() => p.close());
    return p;
  };

  it('registration race over two replicas: 40 tokens each tried twice, one node each, no duplicate mesh IP', async () => {
    const { url, keyFile, admin } = await freshDatabase();
    const [a, b] = await twoReplicas(url, keyFile);
    const tokens = Array.from({ length: 40 }, () => admin.createToken().token);
    // Each token once through each replica, all at once, the two tries in either order.
    const attempts = tokens.flatMap((t, i) => (i % 2 === 0 ? [[a, t], [b, t]] : [[b, t], [a, t]]) as Array<[Replica, string]>);
    const results = await Promise.all(attempts.map(async ([r, t]) => ({ replica: r, token: t, ...(await registerAt(r.url, t)) })));

    const created = results.filter((r) => r.status === 201);
    const refused = results.filter((r) => r.status !== 201);
    expect(created).toHaveLength(40);
    expect(new Set(created.map((r) => r.token)).size).toBe(40); // each token consumed exactly once
    expect(refused.every((r) => r.status >= 400 && r.status < 500)).toBe(true);
    const ips = created.map((r) => r.body.mesh_ip as string);
    expect(new Set(ips).size).toBe(40);
    // What the database holds agrees.
    const nodes = admin.listNodes();
    expect(nodes).toHaveLength(40);
    expect(new Set(nodes.map((n) => n.mesh_ip)).size).toBe(40);
    console.log(`race: 80 registrations, ${created.filter((r) => r.replica === a).length}/${created.filter((r) => r.replica === b).length} created on A/B, refusals ${[...new Set(refused.map((r) => r.status))].join(',')}`);
  });

  it('two replicas started at once on an empty database agree; an event caused through one reaches a stream on the other within 1 s', async () => {
    dbCount++;
    const url = await pg.createDatabase(`replicas_${dbCount}`);
    const keyFile = join(dir, `replicas_${dbCount}.secrets.key`);
    const [a, b] = await twoReplicas(url, keyFile); // both run the migrations and make the first key
    const admin = ControlPlaneStore.open(url, { secretsKeyFile: keyFile });
    cleanups.push(() => admin.close());
    admin.setPolicy('default', ALLOW_ALL_MESH_RULES);
    const x = await mustRegister(a.url, admin.createToken().token);
    const stream = await openStream(b.url, x.node_id, x.auth);
    cleanups.push(() => stream.close());
    expect(stream.status).toBe(200);
    const latencies: number[] = [];
    let y: Node | undefined;
    for (let i = 0; i < 5; i++) {
      const peer = await mustRegister(a.url, admin.createToken().token);
      const t0 = performance.now();
      await stream.next((e) => e.envelope.type === 'peer_added' && peerOf(e) === peer.node_id, 1000);
      latencies.push(performance.now() - t0);
      y = peer;
    }
    console.log(`cross-replica delivery after the 201: ${latencies.map((l) => l.toFixed(0)).join(', ')} ms`);
    // Both replicas read what the other sealed: the same pair PSK from the one PSK master.
    const peerOn = async (r: Replica, n: Node, other: Node): Promise<unknown> => {
      const res = await fetch(`${r.url}/v1/nodes/${n.node_id}/state`, { headers: n.auth, signal: AbortSignal.timeout(10_000) });
      expect(res.status).toBe(200);
      return ((await res.json()) as { peers: Array<{ node_id: string }> }).peers.find((p) => p.node_id === other.node_id);
    };
    const [xa, xb] = [await peerOn(a, x, y!), await peerOn(b, x, y!)];
    expect((xa as { psk?: string } | undefined)?.psk).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(xb).toEqual(xa);
  });

  it('Last-Event-ID resumes on the other replica with no gap and no duplicate', async () => {
    const { url, keyFile, admin } = await freshDatabase();
    admin.setPolicy('default', ALLOW_ALL_MESH_RULES);
    const [a, b] = await twoReplicas(url, keyFile);
    const x = await mustRegister(a.url, admin.createToken().token);
    const peers: string[] = [];

    const onA = await openStream(a.url, x.node_id, x.auth);
    for (let i = 0; i < 3; i++) {
      const y = await mustRegister(b.url, admin.createToken().token);
      peers.push(y.node_id);
      await onA.next((e) => e.envelope.type === 'peer_added' && peerOf(e) === y.node_id);
    }
    onA.close();
    const seen = [...onA.events];
    const lastId = seen.at(-1)!.id!;
    // While x is away: changes through both replicas.
    for (let i = 0; i < 4; i++) peers.push((await mustRegister((i % 2 === 0 ? a : b).url, admin.createToken().token)).node_id);

    const onB = await openStream(b.url, x.node_id, { ...x.auth, 'last-event-id': lastId });
    cleanups.push(() => onB.close());
    expect(onB.status).toBe(200);
    const live = await mustRegister(a.url, admin.createToken().token);
    peers.push(live.node_id);
    await onB.next((e) => e.envelope.type === 'peer_added' && peerOf(e) === live.node_id);

    const all = [...seen, ...onB.events];
    const ids = all.map((e) => Number(e.id));
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1]!)).toBe(true); // ordered, no duplicate
    expect(onB.events.every((e) => Number(e.id) > Number(lastId))).toBe(true);
    expect(all.filter((e) => e.envelope.type === 'peer_added').map(peerOf)).toEqual(peers); // no gap
  });

  it('an agent whose replica is killed reconnects through the load balancer to the other and misses no event', async () => {
    const { url, keyFile, admin } = await freshDatabase();
    admin.setPolicy('default', ALLOW_ALL_MESH_RULES);
    const [a, b] = await twoReplicas(url, keyFile);
    const lb = await proxyOver([a.addr]);
    const x = await mustRegister(lb.url, admin.createToken().token);
    const agent = resumingStream(lb.url, x);
    cleanups.push(() => agent.stop());
    await until('the stream to open on A', 5000, () => agent.opened === 1);
    lb.setBackends([a.addr, b.addr]);

    const peers: string[] = [];
    const producer = (async () => {
      for (let i = 0; i < 12; i++) {
        peers.push((await mustRegister(b.url, admin.createToken().token)).node_id);
        await sleep(100);
      }
    })();
    await sleep(450);
    await a.kill();
    await producer;
    await until('every peer_added to arrive', 10_000, () => agent.events().filter((e) => e.envelope.type === 'peer_added').length >= peers.length);
    await sleep(300); // a duplicate would arrive about now
    const events = agent.events();
    expect(agent.opened).toBeGreaterThanOrEqual(2);
    expect(lb.counts.get(b.addr) ?? 0).toBeGreaterThanOrEqual(1);
    expect(events.filter((e) => e.envelope.type === 'peer_added').map(peerOf)).toEqual(peers);
    const ids = events.map((e) => Number(e.id));
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1]!)).toBe(true);
  });

  it('while PostgreSQL is down requests fail at once with 503 problem+json, nothing is half-written, and both replicas serve again after', async () => {
    const { url, keyFile, admin } = await freshDatabase();
    const [a, b] = await twoReplicas(url, keyFile);
    await mustRegister(a.url, admin.createToken().token);
    const token = admin.createToken().token;
    // Tokens for after the outage, made now: the admin store reconnects with a backoff of its own.
    const after = Array.from({ length: 40 }, () => admin.createToken().token);

    await pg.down();
    try {
      for (const r of [a, b]) {
        const t0 = performance.now();
        const res = await fetch(`${r.url}/v1/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ project_id: 'default', resource_handle: 'during-outage', bootstrap_token: token, nonce: randomUUID(), public_key: randomKey() }),
          signal: AbortSignal.timeout(10_000),
        });
        const ms = performance.now() - t0;
        const body = await res.text();
        console.log(`outage: register on a replica answered ${res.status} in ${ms.toFixed(0)} ms`);
        expect(res.status).toBe(503);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(JSON.parse(body)).toMatchObject({ status: 503 });
        expect(ms).toBeLessThan(2000);
      }
    } finally {
      await pg.up();
    }
    // Back: each replica serves again (after its reconnect backoff), and the token the failed
    // attempts carried is still unused.
    const t0 = performance.now();
    for (const r of [a, b]) {
      await until(`${r.url} to serve again`, 15_000, async () => (await registerAt(r.url, after.pop()!)).status === 201, 200);
    }
    console.log(`outage: both replicas registered again ${(performance.now() - t0).toFixed(0)} ms after the database was back`);
    const n = await mustRegister(b.url, token);
    expect(n.mesh_ip).toMatch(/^10\.100\./);
    const nodes = await until('the admin connection to be back', 10_000, () => {
      try {
        return admin.listNodes();
      } catch {
        return undefined;
      }
    });
    expect(nodes.filter((r) => r.resource_handle === 'during-outage')).toEqual([]);
  });
  it('a database crash amid concurrent registrations leaves each one whole: node and consumed token together or neither', async () => {
    const { url, keyFile, admin } = await freshDatabase();
    const [a, b] = await twoReplicas(url, keyFile);
    const tokens = Array.from({ length: 32 }, () => admin.createToken().token);
    for (const r of [a, b]) await mustRegister(r.url, admin.createToken().token); // warm: connected, code compiled
    // 24 registrations started 10 ms apart; the crash comes shortly after the first succeeds, then 8
    // more arrive while the database is down.
    let created!: () => void;
    const firstCreated = new Promise<void>((r) => (created = r));
    const inFlight = Promise.all(
      tokens.slice(0, 24).map(async (t, i) => {
        await sleep(i * 10);
        const r = { token: t, ...(await registerAt((i % 2 === 0 ? a : b).url, t)) };
        if (r.status === 201) created();
        return r;
      }),
    );
    await Promise.race([firstCreated, inFlight]);
    await sleep(80);
    await pg.kill(); // SIGKILL: transactions in flight die with it
    const during = await Promise.all(tokens.slice(24).map(async (t, i) => ({ token: t, ...(await registerAt((i % 2 === 0 ? a : b).url, t)) })));
    const first = [...(await inFlight), ...during];
    const t0 = performance.now();
    await pg.up();
    const statuses = first.map((r) => r.status);
    console.log(`crash: ${statuses.filter((s) => s === 201).length} registered, ${statuses.filter((s) => s === 503).length} answered 503`);
    expect(statuses.every((s) => s === 201 || s === 503)).toBe(true);
    expect(statuses).toContain(201);
    expect(statuses).toContain(503);

    const db = new URL(url).pathname.slice(1);
    const check = async () => {
      const nodes = await pg.query('SELECT node_id, mesh_ip FROM nodes', [], db);
      const consumed = await pg.query('SELECT node_id FROM tokens WHERE consumed_at IS NOT NULL', [], db);
      return { nodes: nodes.map((n) => n.node_id as string).sort(), ips: nodes.map((n) => n.mesh_ip as string), consumed: consumed.map((t) => t.node_id as string).sort() };
    };
    const after = await check();
    // Every 201 survived the crash; every node has its token consumed, every consumed token its node.
    for (const r of first.filter((x) => x.status === 201)) expect(after.nodes).toContain(r.body.node_id);
    expect(after.consumed).toEqual(after.nodes);
    expect(new Set(after.ips).size).toBe(after.ips.length);

    // A 503'd token is either unused (registers now) or was committed just before the crash (its
    // node exists, so the token is spent): 201 or 409, once the replicas are connected again.
    // The worker reconnects with backoff (up to 5 s between attempts), and an attempt while the
    // server is still recovering fails too: under CI's load that took over 15 s once.
    let last: unknown;
    for (const r of first.filter((x) => x.status === 503)) {
      const again = await until('the replica to serve again', 30_000, async () => {
        const x = await registerAt(a.url, r.token);
        last = x.body;
        return x.status === 503 ? undefined : x;
      }, 200).catch((err: Error) => {
        throw new Error(`${err.message}; its last answer: ${JSON.stringify(last)}`);
      });
      expect([201, 409]).toContain(again.status);
    }
    console.log(`crash: every token settled ${(performance.now() - t0).toFixed(0)} ms after the restart`);
    const final = await check();
    expect(final.consumed).toEqual(final.nodes);
    expect(final.nodes).toHaveLength(34);
  }, 120_000);
});
