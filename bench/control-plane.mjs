// Control plane benchmark: N `control-plane serve` replicas in child processes (so each RSS is its
// own) on one database (SQLite file, or a temporary PostgreSQL cluster from bench/lib/pg-cluster.mjs),
// and simulated agents in this process (plain HTTP clients on loopback, no TUN) that register,
// hold an SSE stream each and heartbeat on a jittered schedule. Prints one table: registrations/s,
// registration and heartbeat p50/p99, how long one policy change takes to reach every stream, RSS
// per replica, database connections and the machine load, each next to issue 20's goal.
// `npm run bench:control-plane -- [--backend sqlite|postgres] [--replicas N] [--agents N] [--json]`;
// the flags are described in docs/control-plane.md (Performance).
// Loopback only; bounded by a deadline that grows with the agent count; children, the cluster and
// the temp dir are removed on every exit path (success, error, deadline, SIGINT/SIGTERM/SIGHUP).
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { CONTROL_PLANE_HTTP_LIMITS } from '../dist/io/http-guard.js';
import { encodeNodeCredential } from '../dist/api/index.js';

const USAGE = 'usage: node bench/control-plane.mjs [--backend sqlite|postgres] [--replicas N] [--agents N] [--concurrency N] [--heartbeat-s S] [--window-s S] [--cpu-prof DIR] [--deadline-s S] [--json]';
const { values: opts } = parseBenchArgs({
  options: {
    backend: { type: 'string', default: 'sqlite' },
    replicas: { type: 'string', default: '1' },
    agents: { type: 'string', default: process.env.AGENTS ?? '1000' },
    concurrency: { type: 'string', default: '32' },
    'heartbeat-s': { type: 'string', default: '30' },
    'window-s': { type: 'string', default: '30' },
    'cpu-prof': { type: 'string' },
    'deadline-s': { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

/** parseArgs, with --help and a bad flag answered by the usage line instead of a stack trace. */
function parseBenchArgs(config) {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  try {
    return parseArgs(config);
  } catch (err) {
    process.stderr.write(`bench: ${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
}

function positiveInt(name, text, max) {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1 || n > max) usage(`--${name}: expected an integer 1..${max}, got ${text}`);
  return n;
}
function usage(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}
const BACKEND = opts.backend;
if (BACKEND !== 'sqlite' && BACKEND !== 'postgres') usage(`--backend: expected sqlite or postgres, got ${BACKEND}`);
const REPLICAS = positiveInt('replicas', opts.replicas, 16);
if (REPLICAS > 1 && BACKEND !== 'postgres') usage('--replicas > 1 needs --backend postgres (SQLite serves one process)');
const AGENTS = positiveInt('agents', opts.agents, 100_000);
/** Registrations in flight per replica. */
const CONCURRENCY = positiveInt('concurrency', opts.concurrency, 1024);
const HEARTBEAT_MS = positiveInt('heartbeat-s', opts['heartbeat-s'], 3600) * 1000;
const WINDOW_MS = positiveInt('window-s', opts['window-s'], 3600) * 1000;
/** Agents per loopback source address: the server caps connections per source (512) and in
 *  total (4,096), as it would for a real fleet behind few NATs. */
const AGENTS_PER_SOURCE = 200;
const SOURCES = Math.ceil(AGENTS / AGENTS_PER_SOURCE);
/** Keep-alive request sockets per (replica, source address): registrations and heartbeats. */
const SOCKETS_PER_SOURCE = 8;
/** Streams opened concurrently. */
const STREAM_BATCH = 200;
/** Longest wait for the policy change to reach every stream. */
const POLICY_TIMEOUT_MS = 30_000;
/** Heartbeats sent this long after the policy change are also reported on their own. */
const POLICY_SPLIT_MS = 5000;
const DEADLINE_MS = opts['deadline-s'] === undefined ? 180_000 + AGENTS * 80 + WINDOW_MS * 2 : positiveInt('deadline-s', opts['deadline-s'], 86_400) * 1000;
/** Registration stops starting new agents after this (the rest of the run uses those registered). */
const REGISTER_BUDGET_MS = Math.round(DEADLINE_MS * 0.6);
const GOALS = { agents: 10_000, replicas: 2, registerWallS: 60, policyMs: 2000, heartbeatP99Ms: 250 };

const loadAtStart = loadavg();
const dir = mkdtempSync(join(tmpdir(), 'cp-bench-'));
const secretsKeyFile = join(dir, 'secrets.key');
/** Replica processes: { child, base, pid }. */
const replicas = [];
const streams = [];
/** startPostgres()'s promise: a signal during the start still stops the cluster. */
let clusterStart;
let admin;
let cleaning;

/** Kills every child, closes every stream, stops the cluster and removes the temp dir; once. */
function cleanup() {
  cleaning ??= (async () => {
    for (const s of streams) s.req.destroy();
    // A profiled replica cut off by the deadline still gets to write its profile (up to 10 s).
    const profiled = opts['cpu-prof'] === undefined ? undefined : replicas[0];
    if (profiled !== undefined && !profiled.exited) {
      profiled.child.kill('SIGTERM');
      for (let waited = 0; !profiled.exited && waited < 10_000; waited += 100) await new Promise((res) => setTimeout(res, 100));
    }
    for (const r of replicas) r.child.kill('SIGKILL');
    await admin?.worker.terminate();
    try {
      await (await clusterStart?.catch(() => undefined))?.stop();
    } catch (err) {
      process.stderr.write(`bench: stopping the PostgreSQL cluster: ${err.message}\n`);
    }
    rmSync(dir, { recursive: true, force: true });
  })();
  return cleaning;
}
const fail = (message, code = 1) => {
  process.stderr.write(`bench: ${message}\n`);
  void cleanup().finally(() => process.exit(code));
};
/** What each finished phase measured, printed as it stands when the deadline passes. */
const progress = {};
const deadline = setTimeout(() => fail(`deadline of ${(DEADLINE_MS / 1000).toFixed(0)} s passed; measured so far: ${JSON.stringify(progress)}`), DEADLINE_MS);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(sig, () => fail(`${sig}: cleaning up`, 130));
// A stray exception must still stop the cluster, which the synchronous exit hook below cannot.
for (const ev of ['uncaughtException', 'unhandledRejection']) process.on(ev, (err) => fail(`${ev}: ${err?.stack ?? err}`));
process.once('exit', () => {
  // Last resort when something exits without the async path: children must not outlive us.
  for (const r of replicas) r.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** VmRSS (or with field 'VmHWM', the peak) of `pid` in MiB. */
function rssMiB(pid, field = 'VmRSS') {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** utime + stime of `pid` in seconds. */
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

function openFilesLimit() {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m?.[1] === 'unlimited' ? Infinity : Number(m?.[1] ?? NaN);
}

function pct(sorted, p) {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Agent i's replica and loopback source address (a replica sees every source). */
function placement(i) {
  const g = Math.floor(i / REPLICAS) % SOURCES;
  return { replica: i % REPLICAS, source: `127.77.${Math.floor(g / 250)}.${(g % 250) + 1}` };
}

const requestAgents = Array.from({ length: REPLICAS }, () => new Agent({ keepAlive: true, maxSockets: SOCKETS_PER_SOURCE }));
const streamAgent = new Agent({ keepAlive: false, maxSockets: Infinity });

/** One JSON request; resolves { status, body }. A reused keep-alive socket the server closed in
 *  the meantime is retried once (node's documented race). */
function call(node, method, path, body, bearer, retried = false) {
  const { replica, source } = node.at;
  return new Promise((resolve, reject) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) };
    if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
    const req = request(`${replicas[replica].base}${path}`, { method, agent: requestAgents[replica], localAddress: source, headers, timeout: 30_000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks).toString();
        let parsed = null;
        try {
          parsed = raw === '' ? null : JSON.parse(raw);
        } catch {
          parsed = raw.slice(0, 200);
        }
        resolve({ status: res.statusCode, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout after 30 s')));
    req.on('error', (err) => {
      if (!retried && req.reusedSocket && err.code === 'ECONNRESET') resolve(call(node, method, path, body, bearer, true));
      else reject(err);
    });
    req.end(text);
  });
}

/** Opens node's SSE stream; onEvent(type) per event, onClose() when it ends. Resolves { req }
 *  once the 200 headers arrive. */
function openStream(node, onEvent, onClose) {
  const { replica, source } = node.at;
  return new Promise((resolve, reject) => {
    const req = request(`${replicas[replica].base}/v1/nodes/${node.id}/events`, { agent: streamAgent, localAddress: source, headers: { authorization: `Bearer ${node.bearer}` } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`stream ${res.statusCode}`));
      }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const ev = /^event: (.*)$/m.exec(block);
          if (ev) onEvent(ev[1]);
        }
      });
      res.on('close', onClose);
      resolve({ req });
    });
    req.setTimeout(30_000, () => req.destroy(new Error('stream open timeout')));
    req.on('response', () => req.setTimeout(0));
    req.on('error', reject);
    req.end();
  });
}

/** Starts one `serve` replica on a free loopback port; resolves once it listens. */
function startReplica(db, index, maxConnections) {
  const nodeArgs = [];
  if (maxConnections !== undefined) nodeArgs.push('--import', new URL('./lib/cp-serve-limits.mjs', import.meta.url).href);
  if (index === 0 && opts['cpu-prof'] !== undefined) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${opts['cpu-prof']}`);
  const child = spawn(process.execPath, [...nodeArgs, 'bin/plexd-userspace.js', 'control-plane', 'serve', '--listen', '127.0.0.1:0', '--db', db, '--secrets-key', secretsKeyFile, '--insecure-http', '--stun', 'off', '--no-ui'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LOG_LEVEL: 'error', ...(maxConnections === undefined ? {} : { PLEXD_BENCH_MAX_CONNECTIONS: String(maxConnections) }) },
  });
  const replica = { child, pid: child.pid, base: '', exited: false };
  replicas.push(replica);
  child.once('exit', () => (replica.exited = true));
  return new Promise((resolve, reject) => {
    let out = '';
    // Keeps draining stdout after the banner so a chatty server never blocks on a full pipe.
    child.stdout.on('data', (d) => {
      if (replica.base !== '') return;
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m) {
        replica.base = m[1];
        resolve(replica);
      }
    });
    child.once('exit', (code, signal) => reject(new Error(`replica ${index} exited (${code ?? signal}) before listening`)));
  });
}

/** Starts bench/lib/cp-admin-worker.mjs (the bench's own store, off this event loop); resolves
 *  { worker, ask(msg) } once its store is open. */
function startAdmin(db) {
  const worker = new Worker(new URL('./lib/cp-admin-worker.mjs', import.meta.url), { workerData: { db, secretsKeyFile } });
  let waiting;
  const fromWorker = (msg) => {
    const w = waiting;
    waiting = undefined;
    if (msg.error !== undefined) w?.reject(new Error(`admin store: ${msg.error}`));
    else w?.resolve(msg);
  };
  worker.on('message', fromWorker);
  worker.on('error', (err) => waiting?.reject(err));
  worker.on('exit', (code) => waiting?.reject(new Error(`admin worker exited (${code})`)));
  const reply = () => new Promise((resolve, reject) => (waiting = { resolve, reject }));
  const ask = (msg) => {
    const r = reply();
    worker.postMessage(msg);
    return r;
  };
  return reply().then(() => ({ worker, ask }));
}

/** Connections to the bench database other than the querying one; '-' for SQLite. */
async function dbConnections(db) {
  if (BACKEND !== 'postgres') return '-';
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: db });
  await client.connect();
  try {
    const r = await client.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    return r.rows[0].n;
  } finally {
    await client.end();
  }
}

async function main() {
  const fdLimit = openFilesLimit();
  // This process: a socket per stream, the request pools, the store; a replica: its share of
  // the streams and request sockets, plus its database connections.
  const fdsNeeded = AGENTS + REPLICAS * SOURCES * SOCKETS_PER_SOURCE + 256;
  const perReplicaConnections = Math.ceil(AGENTS / REPLICAS) + SOURCES * SOCKETS_PER_SOURCE + 64;
  const maxConnections = perReplicaConnections > CONTROL_PLANE_HTTP_LIMITS.maxConnections ? perReplicaConnections : undefined;
  const notes = [];
  if (fdsNeeded > fdLimit) notes.push(`file descriptors: ${AGENTS} agents need about ${fdsNeeded} in this process, ulimit -n is ${fdLimit}: raise it (ulimit -n ${fdsNeeded}) or expect EMFILE`);
  if (maxConnections !== undefined) {
    notes.push(`serve caps connections at ${CONTROL_PLANE_HTTP_LIMITS.maxConnections} per process; ${Math.ceil(AGENTS / REPLICAS)} streams per replica need more, so the bench preloads bench/lib/cp-serve-limits.mjs raising it to ${maxConnections}`);
  }

  let db;
  if (BACKEND === 'postgres') {
    const { startPostgres } = await import('./lib/pg-cluster.mjs');
    clusterStart = startPostgres();
    const cluster = await clusterStart;
    const created = await cluster.createDatabase('cp_bench');
    db = typeof created === 'string' ? created : cluster.url.replace(/\/[^/?]*(\?|$)/, '/cp_bench$1');
  } else {
    db = join(dir, 'cp.db');
  }

  // Tokens first (the CLI's path: a store on the same database), then the replicas, so the
  // schema is migrated once before they open it.
  admin = await startAdmin(db);
  const tTokens = performance.now();
  const { tokens } = await admin.ask({ op: 'tokens', n: AGENTS });
  const tokensS = (performance.now() - tTokens) / 1000;
  await Promise.all(Array.from({ length: REPLICAS }, (_, i) => startReplica(db, i, maxConnections)));
  const rssIdle = replicas.map((r) => rssMiB(r.pid));

  // Registration (CONCURRENCY per replica in flight; a 503, database busy, is retried); each
  // agent heartbeats from its registration on, every HEARTBEAT_MS ±10 % (the first at a random
  // point of the first period): one that stayed silent while 10,000 register would go offline
  // after 5 minutes, and its return fan peer_added out to every stream, which no fleet does.
  // Streams open once all are registered (STREAM_BATCH at a time): open during registration,
  // each of n registrations would send peer_added down every open stream, n²/2 events.
  let armed = false;
  let policyReached = 0;
  /** performance.now() of the first and of the last stream the policy change reached. */
  let policyFirstAt = NaN;
  let policyLastAt = NaN;
  let p0 = 0;
  let streamsDropped = 0;
  let streamFailures = 0;
  let firstStreamError;
  let tearingDown = false;
  let allReached;
  const reachedAll = new Promise((r) => (allReached = r));
  const connect = (n) => {
    let reached = false;
    return openStream(n, (type) => {
      if (type !== 'policy_updated' || !armed || reached) return;
      reached = true;
      if (policyReached++ === 0) policyFirstAt = performance.now();
      if (policyReached === streams.length) {
        policyLastAt = performance.now();
        allReached();
      }
    }, () => {
      if (!tearingDown) streamsDropped++;
    }).then((s) => streams.push(s), (err) => {
      streamFailures++;
      firstStreamError ??= err.message;
    });
  };

  // Heartbeat latencies count from w0 (every agent registered, every stream open) for WINDOW_MS;
  // the policy change lands mid-window.
  let w0 = Infinity;
  const hbLatencies = [];
  const hbNearPolicy = [];
  const hbSteady = [];
  let hbFailures = 0;
  let hbFailuresBefore = 0;
  let firstHbError;
  let inFlight = 0;
  let hbStop = false;
  const timers = new Set();
  const beat = async (n) => {
    if (hbStop) return;
    const started = performance.now();
    const measured = started >= w0 && started - w0 < WINDOW_MS;
    inFlight++;
    try {
      const r = await call(n, 'POST', `/v1/nodes/${n.id}/heartbeat`, {
        client_now: new Date().toISOString(),
        binary_checksum: 'bench',
        binary_version: 'bench',
        nat_summary: {},
        policy: { revision_id: null, fingerprint: null, mode: 'default-allow', rule_hits: [] },
      }, n.bearer);
      if (r.status !== 200) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
      if (measured) {
        const ms = performance.now() - started;
        hbLatencies.push(ms);
        // Sent during the policy fan-out (its first POLICY_SPLIT_MS) or in steady state.
        (armed && started - p0 < POLICY_SPLIT_MS ? hbNearPolicy : hbSteady).push(ms);
      }
    } catch (err) {
      if (measured) hbFailures++;
      else hbFailuresBefore++;
      firstHbError ??= `heartbeat ${n.id}: ${err.message}`;
    } finally {
      inFlight--;
    }
    schedule(n, HEARTBEAT_MS * (0.9 + Math.random() * 0.2));
  };
  const schedule = (n, ms) => {
    if (hbStop) return;
    const t = setTimeout(() => {
      timers.delete(t);
      void beat(n);
    }, ms);
    timers.add(t);
  };

  const nodes = new Array(AGENTS);
  const regLatencies = [];
  let regRetries = 0;
  let regFailures = 0;
  let firstRegError;
  let next = 0;
  const t0 = performance.now();
  // Progress on stderr every 10 s (a long run is not silent), and in what the deadline prints.
  let registeredSoFar = 0;
  const ticker = setInterval(() => {
    const s = (performance.now() - t0) / 1000;
    Object.assign(progress, { registering: { registered: registeredSoFar, failures: regFailures, retries: regRetries, elapsed_s: Number(s.toFixed(1)) } });
    process.stderr.write(`registration: ${registeredSoFar}/${AGENTS} after ${s.toFixed(0)} s (${(registeredSoFar / s).toFixed(0)}/s, ${regFailures} failed, ${regRetries} retried)\n`);
  }, 10_000);
  ticker.unref();
  await Promise.all(Array.from({ length: CONCURRENCY * REPLICAS }, async () => {
    while (next < AGENTS && performance.now() - t0 < REGISTER_BUDGET_MS) {
      const i = next++;
      const at = placement(i);
      const started = performance.now();
      const body = { project_id: 'default', resource_handle: `bench-${i}`, bootstrap_token: tokens[i], nonce: randomUUID(), public_key: randomBytes(32).toString('base64') };
      let r;
      for (let attempt = 0; ; attempt++) {
        try {
          r = await call({ at }, 'POST', '/v1/register', body);
        } catch (err) {
          r = { status: 0, body: err.message };
        }
        if ((r.status !== 503 && r.status !== 0) || attempt === 3) break;
        regRetries++;
        await new Promise((res) => setTimeout(res, 100));
      }
      regLatencies.push(performance.now() - started);
      if (r.status !== 201) {
        regFailures++;
        firstRegError ??= `register ${i}: ${r.status} ${JSON.stringify(r.body)}`;
        continue;
      }
      const n = { at, id: r.body.node_id, bearer: encodeNodeCredential(r.body.node_id, Buffer.from(r.body.nsk, 'base64')) };
      nodes[i] = n;
      registeredSoFar++;
      schedule(n, Math.random() * HEARTBEAT_MS);
    }
  }));
  clearInterval(ticker);
  const registerWallMs = performance.now() - t0;
  regLatencies.sort((a, b) => a - b);
  const registered = nodes.filter((n) => n !== undefined);
  Object.assign(progress, { loadavg_at_start: loadAtStart, registered: registered.length, register_failures: regFailures, register_wall_s: registerWallMs / 1000, register_p50_ms: pct(regLatencies, 50), register_p99_ms: pct(regLatencies, 99), first_register_error: firstRegError });
  if (registered.length === 0) throw new Error(`no agent registered; first error: ${firstRegError}`);
  for (let i = 0; i < registered.length; i += STREAM_BATCH) await Promise.all(registered.slice(i, i + STREAM_BATCH).map(connect));
  const streamsOpenS = (performance.now() - t0 - registerWallMs) / 1000;
  await new Promise((r) => setTimeout(r, 500));
  const rssStreams = replicas.map((r) => rssMiB(r.pid));
  Object.assign(progress, { streams_open: streams.length, stream_failures: streamFailures, streams_open_s: streamsOpenS, rss_streams_mib: rssStreams });

  w0 = performance.now();
  const cpu0 = { replicas: replicas.map((r) => cpuSeconds(r.pid)), bench: process.cpuUsage() };
  // The simulated agents' own event loop: a late loop inflates every latency measured here.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();

  await new Promise((r) => setTimeout(r, WINDOW_MS / 2));
  // One policy change made from another connection (as `control-plane policy set` does), timed
  // from when the worker calls setPolicy.
  armed = true;
  p0 = performance.now();
  const set = await admin.ask({ op: 'policy', rules: [{ action: 'allow', protocol: 'tcp', source_cidr: '10.100.0.0/16', destination_cidr: '10.100.0.0/16', ports: { from: 443, to: 443 } }] });
  p0 = set.startMs - performance.timeOrigin;
  const policyCommitMs = set.endMs - set.startMs;
  const policyTimedOut = await Promise.race([reachedAll.then(() => false), new Promise((r) => setTimeout(() => r(true), POLICY_TIMEOUT_MS))]);
  const policyMs = (policyTimedOut ? performance.now() : policyLastAt) - p0;
  const policyFirstMs = policyFirstAt - p0;
  await admin.ask({ op: 'close' });
  await admin.worker.terminate();
  admin = undefined;

  const rest = WINDOW_MS - (performance.now() - w0);
  if (rest > 0) await new Promise((r) => setTimeout(r, rest));
  const windowS = (performance.now() - w0) / 1000;
  const cpuWindow = {
    replicas: replicas.map((r, i) => (cpuSeconds(r.pid) - cpu0.replicas[i]) / windowS),
    bench: ((u) => (u.user + u.system) / 1e6 / windowS)(process.cpuUsage(cpu0.bench)),
  };
  hbStop = true;
  loopDelay.disable();
  for (const t of timers) clearTimeout(t);
  for (let waited = 0; inFlight > 0 && waited < 10_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  const rssEnd = replicas.map((r) => rssMiB(r.pid));
  const rssPeak = replicas.map((r) => rssMiB(r.pid, 'VmHWM'));
  const connections = await dbConnections(db);
  for (const l of [hbLatencies, hbNearPolicy, hbSteady]) l.sort((a, b) => a - b);

  tearingDown = true;
  for (const s of streams) s.req.destroy();
  const profile = await stopProfiledReplica();

  return {
    backend: BACKEND,
    replicas: REPLICAS,
    agents: AGENTS,
    node: process.version,
    loadavg_at_start: loadAtStart.map((l) => Number(l.toFixed(2))),
    register_concurrency_per_replica: CONCURRENCY,
    heartbeat_interval_s: HEARTBEAT_MS / 1000,
    window_s: Number(windowS.toFixed(1)),
    tokens_created_s: Number(tokensS.toFixed(1)),
    registered: registered.length,
    register_failures: regFailures,
    register_retries: regRetries,
    first_register_error: firstRegError ?? null,
    register_budget_s: REGISTER_BUDGET_MS / 1000,
    register_wall_s: Number((registerWallMs / 1000).toFixed(1)),
    registrations_per_s: Number((registered.length / (registerWallMs / 1000)).toFixed(0)),
    register_p50_ms: Number(pct(regLatencies, 50).toFixed(1)),
    register_p99_ms: Number(pct(regLatencies, 99).toFixed(1)),
    streams_open: streams.length,
    stream_failures: streamFailures,
    first_stream_error: firstStreamError ?? null,
    streams_open_s: Number(streamsOpenS.toFixed(1)),
    streams_dropped: streamsDropped,
    heartbeats: hbLatencies.length,
    heartbeat_failures: hbFailures,
    heartbeat_failures_before_window: hbFailuresBefore,
    first_heartbeat_error: firstHbError ?? null,
    heartbeat_p50_ms: Number(pct(hbLatencies, 50).toFixed(1)),
    heartbeat_p99_ms: Number(pct(hbLatencies, 99).toFixed(1)),
    heartbeat_steady_p99_ms: Number(pct(hbSteady, 99).toFixed(1)),
    heartbeat_policy_p99_ms: Number(pct(hbNearPolicy, 99).toFixed(1)),
    policy_ms: Number(policyMs.toFixed(0)),
    policy_commit_ms: Number(policyCommitMs.toFixed(0)),
    policy_first_ms: Number(policyFirstMs.toFixed(0)),
    policy_reached: policyReached,
    policy_timed_out: policyTimedOut,
    rss_mib: replicas.map((_, i) => ({ idle: Math.round(rssIdle[i]), streams: Math.round(rssStreams[i]), end: Math.round(rssEnd[i]), peak: Math.round(rssPeak[i]) })),
    bench_loop_delay_ms: { p99: Number((loopDelay.percentile(99) / 1e6).toFixed(1)), max: Number((loopDelay.max / 1e6).toFixed(1)) },
    cpu_in_window: { replicas: cpuWindow.replicas.map((c) => Number(c.toFixed(2))), bench: Number(cpuWindow.bench.toFixed(2)) },
    db_connections: connections,
    fds_needed: fdsNeeded,
    ulimit_n: fdLimit,
    serve_max_connections: maxConnections ?? CONTROL_PLANE_HTTP_LIMITS.maxConnections,
    notes,
    cpu_profile_top: profile,
  };
}

/** With --cpu-prof: stops replica 0 with SIGTERM so it writes its profiles (one per thread:
 *  CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile), returns each one's top 10. */
async function stopProfiledReplica() {
  const profDir = opts['cpu-prof'];
  const r = replicas[0];
  if (profDir === undefined || r === undefined) return null;
  r.child.kill('SIGTERM');
  for (let waited = 0; !r.exited && waited < 15_000; waited += 100) await new Promise((res) => setTimeout(res, 100));
  const files = (existsSync(profDir) ? readdirSync(profDir) : []).filter((f) => f.endsWith('.cpuprofile') && f.split('.')[3] === String(r.pid)).sort();
  const out = [];
  for (const file of files) {
    const top = await new Promise((resolve) => {
      const c = spawn(process.execPath, [new URL('./lib/cpuprofile-top.mjs', import.meta.url).pathname, join(profDir, file), '10'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      c.stdout.on('data', (d) => (text += d));
      c.once('exit', () => resolve(text));
    });
    out.push({ file: join(profDir, file), thread: Number(file.split('.')[4]), top: top.trimEnd().split('\n') });
  }
  return out.length === 0 ? null : out;
}

function verdict(ok) {
  return ok ? 'ok' : 'MISSED';
}

function printTable(r) {
  const goalRun = r.agents === GOALS.agents && r.replicas === GOALS.replicas;
  const lines = [];
  const row = (k, v, goal = '', ok) => lines.push(`${k.padEnd(50)} ${String(v).padEnd(22)} ${goal}${ok === undefined ? '' : ` ${verdict(ok)}`}`.trimEnd());
  lines.push(`control plane bench: ${r.agents} agents on ${r.replicas} replica(s), ${r.backend}, register concurrency ${r.register_concurrency_per_replica}/replica, heartbeat every ${r.heartbeat_interval_s} s ±10 %, Node ${r.node}`);
  lines.push(`goals are issue 20's for ${GOALS.agents} agents on ${GOALS.replicas} replicas${goalRun ? ' (this run)' : '; this run is smaller, so they are only indicative'}`);
  row('metric', 'value', 'goal');
  row('machine load at start (1/5/15 min)', r.loadavg_at_start.join(' / '));
  const partial = r.registered < r.agents ? ` (of ${r.agents}: budget ${r.register_budget_s} s)` : '';
  row(`registration wall time, ${r.registered} agents${partial} (s)`, r.register_wall_s, `< ${GOALS.registerWallS} s`, r.register_wall_s < GOALS.registerWallS && r.register_failures === 0 && partial === '');
  row('registrations per second', r.registrations_per_s, `>= ${(GOALS.agents / GOALS.registerWallS).toFixed(0)}/s`, r.registrations_per_s >= GOALS.agents / GOALS.registerWallS);
  row('registration latency p50 / p99 (ms)', `${r.register_p50_ms} / ${r.register_p99_ms}`);
  row(`heartbeat latency p50 / p99 (ms), ${r.heartbeats} in ${r.window_s} s`, `${r.heartbeat_p50_ms} / ${r.heartbeat_p99_ms}`, `p99 < ${GOALS.heartbeatP99Ms} ms`, r.heartbeat_p99_ms < GOALS.heartbeatP99Ms && r.heartbeat_failures === 0);
  row(`  p99 steady / in the ${POLICY_SPLIT_MS / 1000} s after the policy change`, `${r.heartbeat_steady_p99_ms} / ${r.heartbeat_policy_p99_ms}`);
  row(`policy change reaching all ${r.streams_open} streams (ms)`, r.policy_timed_out ? `timeout (${r.policy_reached}/${r.streams_open})` : r.policy_ms, `< ${GOALS.policyMs} ms`, !r.policy_timed_out && r.policy_ms < GOALS.policyMs);
  row('  of which setPolicy returned / first stream (ms)', `${r.policy_commit_ms} / ${r.policy_first_ms}`);
  row('RSS per replica idle / streams / end / peak (MiB)', r.rss_mib.map((m) => `${m.idle}/${m.streams}/${m.end}/${m.peak}`).join(', '));
  row('CPU in window, replicas | bench (cores)', `${r.cpu_in_window.replicas.join(', ')} | ${r.cpu_in_window.bench}`);
  row('bench event-loop delay in window p99 / max (ms)', `${r.bench_loop_delay_ms.p99} / ${r.bench_loop_delay_ms.max}`);
  row('DB connections (end of window)', r.db_connections);
  row('errors: register / stream / dropped / heartbeat', `${r.register_failures} / ${r.stream_failures} / ${r.streams_dropped} / ${r.heartbeat_failures}`);
  lines.push(`(tokens created in ${r.tokens_created_s} s; streams opened in ${r.streams_open_s} s; ${r.heartbeat_failures_before_window} heartbeat failures before the window; ${r.register_retries} registration retries; fds needed ~${r.fds_needed}, ulimit -n ${r.ulimit_n})`);
  for (const e of [r.first_register_error, r.first_stream_error, r.first_heartbeat_error]) if (e !== null) lines.push(`first error: ${e}`);
  for (const n of r.notes) lines.push(`note: ${n}`);
  for (const p of r.cpu_profile_top ?? []) lines.push(`replica 0 ${p.thread === 0 ? 'main thread' : `worker thread ${p.thread}`} CPU profile (${p.file}), self time:`, ...p.top.map((l) => `  ${l}`));
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  async (result) => {
    clearTimeout(deadline);
    await cleanup();
    if (opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else printTable(result);
    process.exit(0);
  },
  (err) => fail(err.stack ?? String(err)),
);
