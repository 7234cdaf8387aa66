// Control plane benchmark: one server in a child process (so its RSS is its own), 1,000
// simulated agents in this process (plain HTTP clients on loopback, no TUN) that register and
// then hold SSE streams. Prints p50/p99 registration latency, how long one policy change takes to
// reach all 1,000 streams, and the server's RSS. Run with `npm run bench:control-plane`.
// Loopback only; bounded by AGENTS and a global deadline; the child is killed on every exit path.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlaneStore } from '../dist/control-plane/store.js';
import { encodeNodeCredential } from '../dist/api/index.js';

const AGENTS = Number(process.env.AGENTS ?? 1000);
const CONCURRENCY = 32;
const DEADLINE_MS = 180_000;

const dir = mkdtempSync(join(tmpdir(), 'cp-bench-'));
const db = join(dir, 'cp.db');
let child;
const cleanup = () => {
  child?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
};
const deadline = setTimeout(() => {
  process.stderr.write(`bench: deadline of ${DEADLINE_MS} ms passed\n`);
  cleanup();
  process.exit(1);
}, DEADLINE_MS);

function rssMiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
const streamAgent = new Agent({ keepAlive: false, maxSockets: Infinity });

function post(base, path, body) {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body);
    const req = request(`${base}${path}`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }, timeout: 30_000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(text);
  });
}

/** Opens an SSE stream; calls onEvent(type) per event. Resolves when the headers arrive. */
function openStream(base, nodeId, bearer, onEvent) {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/v1/nodes/${nodeId}/events`, { agent: streamAgent, headers: { authorization: `Bearer ${bearer}` } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`stream ${res.statusCode}`));
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
      resolve(req);
    });
    req.on('error', reject);
    req.end();
  });
}

async function main() {
  // Tokens first (the CLI's path: the same database file), then the server.
  const admin = ControlPlaneStore.open(db);
  const tokens = Array.from({ length: AGENTS }, () => admin.createToken('default', 3_600_000).token);

  child = spawn(process.execPath, ['bin/plexd-userspace.js', 'control-plane', 'serve', '--listen', '127.0.0.1:0', '--db', db, '--insecure-http'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LOG_LEVEL: 'error' },
  });
  const base = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  const rssIdle = rssMiB(child.pid);

  // Registration: CONCURRENCY agents at a time.
  const nodes = [];
  const latencies = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < AGENTS) {
      const i = next++;
      const started = performance.now();
      const r = await post(base, '/v1/register', { project_id: 'default', resource_handle: `bench-${i}`, bootstrap_token: tokens[i], nonce: randomUUID(), public_key: randomBytes(32).toString('base64') });
      latencies.push(performance.now() - started);
      if (r.status !== 201) throw new Error(`register ${i}: ${r.status} ${JSON.stringify(r.body)}`);
      nodes.push({ id: r.body.node_id, bearer: encodeNodeCredential(r.body.node_id, Buffer.from(r.body.nsk, 'base64')) });
    }
  }));
  const registerWallMs = performance.now() - t0;
  latencies.sort((a, b) => a - b);

  // Streams.
  let policyReached = 0;
  let allReached;
  const reachedAll = new Promise((r) => (allReached = r));
  const streams = [];
  for (let i = 0; i < nodes.length; i += 100) {
    streams.push(...(await Promise.all(nodes.slice(i, i + 100).map((n) => openStream(base, n.id, n.bearer, (type) => {
      if (type === 'policy_updated' && ++policyReached === nodes.length) allReached();
    })))));
  }
  await new Promise((r) => setTimeout(r, 500));
  const rssStreams = rssMiB(child.pid);

  // One policy change made from another connection (as `control-plane policy set` does).
  const p0 = performance.now();
  admin.setPolicy('default', [{ action: 'allow', protocol: 'tcp', source_cidr: '10.100.0.0/16', destination_cidr: '10.100.0.0/16', ports: { from: 443, to: 443 } }]);
  await reachedAll;
  const policyMs = performance.now() - p0;
  const rssAfter = rssMiB(child.pid);

  for (const s of streams) s.destroy();
  admin.close();
  const row = (k, v) => process.stdout.write(`${k.padEnd(44)} ${v}\n`);
  process.stdout.write(`control plane bench: ${AGENTS} agents, register concurrency ${CONCURRENCY}, Node ${process.version}\n`);
  row('registration latency p50 (ms)', pct(latencies, 50).toFixed(1));
  row('registration latency p99 (ms)', pct(latencies, 99).toFixed(1));
  row('registrations per second', (AGENTS / (registerWallMs / 1000)).toFixed(0));
  row(`policy change reaching all ${AGENTS} streams (ms)`, policyMs.toFixed(0));
  row('server RSS idle / with streams / after (MiB)', `${rssIdle.toFixed(0)} / ${rssStreams.toFixed(0)} / ${rssAfter.toFixed(0)}`);
}

main().then(
  () => {
    clearTimeout(deadline);
    cleanup();
    process.exit(0);
  },
  (err) => {
    process.stderr.write(`bench: ${err.stack ?? err}\n`);
    cleanup();
    process.exit(1);
  },
);
