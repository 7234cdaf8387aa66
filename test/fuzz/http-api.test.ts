// Fuzz target: the control plane's HTTP API (issue 11). Every route x methods, paths, headers and
// bodies: plausible requests with one or more fields mutated (wrong types, huge values, control
// characters, deep nesting, prototype keys), invalid JSON, random bytes, oversized bodies
// (declared and streamed), valid and forged credentials, and raw bytes that are not HTTP at all,
// against a real server on 127.0.0.1 port 0. Asserts: never a 5xx; every 4xx an API answer is
// problem+json with a code (the HTTP parser's own refusals, before any route, are counted apart);
// the server answers normally afterwards; heap and RSS stay bounded.
// Unit tier: a few seconds. `npm run fuzz` scales it with PLEXD_FUZZ_ITERATIONS.

import { randomUUID } from 'node:crypto';
import { Agent as HttpAgent, request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeNodeCredential } from '../../src/api/index.js';
import { createHarness, randomKey, type Registered } from '../control-plane/harness.js';
import { fuzzIterations, fuzzSeed, fuzzTimeout } from '../helpers/fuzz.js';
import { prng } from '../helpers/prng.js';

const ITERATIONS = fuzzIterations(600);
const SEED = fuzzSeed(0x11a_0001);
/** Requests in flight at once. */
const PARALLEL = 8;
/** Per-request hang guard (a request the server never answers is a failure, not a skip). */
const REQUEST_TIMEOUT_MS = 10_000;
/** Heap growth allowed over the whole run (a leak per request would exceed it at 10^6). */
const MAX_HEAP_GROWTH = 128 * 1024 * 1024;

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: Rand, n: number): number => Math.floor(r() * n);

/** Strings a parser or a terminal could trip on. */
const NASTY_STRINGS = [
  '', ' ', 'a'.repeat(300), 'x'.repeat(70_000), '\0', 'a\x1b[2Jb', '\u202e', '\ud800', '😀'.repeat(100), '../../etc/passwd',
  '%00', '${jndi:x}', '<script>', "'; DROP TABLE nodes; --", 'null', 'NaN', '-1', '1e309', '0x10', 'default', 'live',
  '2024-13-45T25:61:61Z', '9999-12-31T23:59:59Z', '1970-01-01T00:00:00Z', '127.0.0.1:0', '[::1]:65536', '999.1.1.1:1',
  'nsk_live_', 'AAAA', Buffer.alloc(31).toString('base64'), Buffer.alloc(33).toString('base64'), 'not base64!!',
];

function nastyValue(r: Rand, depth = 0): unknown {
  switch (int(r, 12)) {
    case 0: return null;
    case 1: return pick(r, [0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, Number.MAX_SAFE_INTEGER + 2]);
    case 2: return r() < 0.5;
    case 3: return depth > 3 ? [] : Array.from({ length: int(r, 4) }, () => nastyValue(r, depth + 1));
    case 4: return depth > 3 ? {} : Object.fromEntries(Array.from({ length: int(r, 4) }, (_, i) => [`k${i}`, nastyValue(r, depth + 1)]));
    case 5: return JSON.parse('['.repeat(200) + ']'.repeat(200));
    case 6: return Array.from({ length: 2000 }, (_, i) => ({ node_id: randomUUIDFrom(r, i), direct: i % 2 === 0 }));
    case 7: return randomUUIDFrom(r, 0);
    case 8: return randomKeyFrom(r);
    default: return pick(r, NASTY_STRINGS);
  }
}

function randomUUIDFrom(r: Rand, salt: number): string {
  const hex = Array.from({ length: 32 }, (_, i) => ((int(r, 16) + salt + i) & 15).toString(16)).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20)}`;
}

function randomKeyFrom(r: Rand): string {
  return Buffer.from(Array.from({ length: 32 }, () => int(r, 256))).toString('base64');
}

/** A plausible body for a route, as an agent would send it. */
function plausibleBody(r: Rand, route: string, ctx: { token: () => string; peer: () => string }): Record<string, unknown> {
  const now = new Date().toISOString();
  switch (route) {
    case 'register':
      return { project_id: pick(r, ['default', 'default', 'default', 'p2', 'nope']), resource_handle: `fuzz-${int(r, 1000)}`, bootstrap_token: ctx.token(), nonce: randomUUID(), public_key: randomKeyFrom(r), ...(r() < 0.2 ? { mode: pick(r, ['node', 'bridge', 'router']) } : {}) };
    case 'heartbeat':
      return { client_now: now, binary_version: '0.1.0', binary_checksum: 'sha256:0', nat_summary: { endpoint: `127.0.0.${1 + int(r, 250)}:${1 + int(r, 65535)}`, nat_type: pick(r, ['full_cone', 'symmetric', 'unknown', 'weird']) } };
    case 'endpoint':
      // candidates (issue 13): up to 20 (the limit is 16), duplicates and IPv6 among them.
      return {
        endpoint: `127.0.0.${1 + int(r, 250)}:${1 + int(r, 65535)}`,
        nat_type: pick(r, ['full_cone', 'symmetric', 'unknown']),
        reported_at: now,
        candidates: Array.from({ length: int(r, 21) }, () => (r() < 0.3 ? `[fd00::${int(r, 9)}]:51820` : `127.0.0.${1 + int(r, 4)}:${1 + int(r, 3)}`)),
      };
    case 'peer-paths':
      return { paths: Array.from({ length: int(r, 5) }, () => ({ node_id: ctx.peer(), direct: r() < 0.5 })) };
    case 'capabilities':
      return { features: ['sse', 'relay'], binary_version: '0.1.0', os: 'linux', arch: 'x64' };
    case 'deregister':
      return { reason: 'fuzz' };
    case 'executions':
      return { status: pick(r, ['ack', 'started', 'succeeded', 'failed', 'cancelled', 'pending', 'bogus']), exit_code: int(r, 3), output: 'ok', reported_at: now };
    case 'rotate':
      return { new_public_key: r() < 0.2 ? ctx.peer() : randomKeyFrom(r) };
    default:
      return {};
  }
}

/** `body` with a few fields replaced, removed or added. */
function mutateBody(r: Rand, body: Record<string, unknown>): unknown {
  const out: Record<string, unknown> = { ...body };
  const keys = Object.keys(out);
  for (let n = 1 + int(r, 3); n > 0; n--) {
    const op = int(r, 4);
    if (op === 0 && keys.length > 0) delete out[pick(r, keys)];
    else if (op === 1 && keys.length > 0) out[pick(r, keys)] = nastyValue(r);
    else if (op === 2) out[pick(r, ['__proto__', 'constructor', 'extra', 'paths', 'nat_summary'])] = nastyValue(r);
    else if (keys.length > 0) {
      const k = pick(r, keys);
      out[k] = typeof out[k] === 'object' && out[k] !== null ? nastyValue(r) : [out[k]];
    }
  }
  return r() < 0.05 ? pick(r, [null, 0, 'x', [], [out]]) : out;
}

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  /** Streamed in chunks without a content-length. */
  chunked: boolean;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

const OUTCOMES: Record<string, number> = {};
const count = (k: string): void => void (OUTCOMES[k] = (OUTCOMES[k] ?? 0) + 1);

describe('fuzz: control-plane HTTP API', () => {
  const h = createHarness();
  const agent = new HttpAgent({ keepAlive: true, maxSockets: PARALLEL });
  let nodes: Registered[] = [];

  beforeAll(async () => {
    await h.start();
    h.cp.store.createProject('p2');
    for (let i = 0; i < 4; i++) nodes.push(await h.register());
  });
  afterAll(async () => {
    agent.destroy();
    await h.stop();
  });

  function send(s: Sent): Promise<Answer | 'closed'> {
    return new Promise((resolve, reject) => {
      const req = request(h.cp.url + (s.path.startsWith('/') ? s.path : `/${s.path}`), { method: s.method, headers: s.headers, agent, timeout: REQUEST_TIMEOUT_MS });
      req.on('timeout', () => {
        req.destroy();
        reject(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms to ${s.method} ${s.path.slice(0, 100)}`));
      });
      req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' || (err as NodeJS.ErrnoException).code === 'EPIPE' ? resolve('closed') : reject(err)));
      req.on('response', (res) => {
        if (String(res.headers['content-type']).startsWith('text/event-stream')) {
          // A stream opened by a valid credential: that is an answer; do not hold it.
          res.destroy();
          req.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', () => resolve('closed'));
      });
      if (s.body !== undefined && s.chunked) {
        for (let i = 0; i < s.body.length; i += 16_384) req.write(s.body.subarray(i, i + 16_384));
        req.end();
      } else req.end(s.body);
    });
  }

  /** Bytes that are not (quite) HTTP on a fresh connection; any status line must not be 5xx. */
  function sendRaw(bytes: Buffer): Promise<string> {
    return new Promise((resolve, reject) => {
      const url = new URL(h.cp.url);
      const sock = connect(Number(url.port), url.hostname);
      let got = '';
      const timer = setTimeout(() => {
        sock.destroy();
        resolve(got === '' ? 'no answer' : got);
      }, 1000);
      sock.on('data', (d) => {
        got += d.toString('latin1');
        if (got.includes('\r\n')) {
          clearTimeout(timer);
          sock.destroy();
          resolve(got);
        }
      });
      sock.on('error', () => undefined);
      sock.on('close', () => {
        clearTimeout(timer);
        resolve(got);
      });
      sock.on('connect', () => sock.end(bytes));
      sock.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED' ? reject(err) : undefined));
    });
  }

  function build(r: Rand): Sent | Buffer {
    const node = nodes.length > 0 ? pick(r, nodes) : undefined;
    const other = nodes.length > 0 ? pick(r, nodes) : undefined;
    const ids = [node?.node_id ?? randomUUID(), other?.node_id ?? randomUUID(), randomUUID(), 'not-a-uuid', (node?.node_id ?? randomUUID()).toUpperCase(), '%2e%2e', 'x'.repeat(5000)];
    const id = r() < 0.6 ? ids[0]! : pick(r, ids);
    const routes: Array<[string, string, string]> = [
      ['register', 'POST', '/v1/register'],
      ['events', 'GET', `/v1/nodes/${id}/events`],
      ['heartbeat', 'POST', `/v1/nodes/${id}/heartbeat`],
      ['endpoint', 'PUT', `/v1/nodes/${id}/endpoint`],
      ['state', 'GET', `/v1/nodes/${id}/state`],
      ['peer-paths', 'POST', `/v1/nodes/${id}/peer-paths`],
      ['capabilities', 'PUT', `/v1/nodes/${id}/capabilities`],
      ['deregister', 'POST', `/v1/nodes/${id}/deregister`],
      ['executions', 'POST', `/v1/nodes/${id}/executions/${pick(r, [randomUUID(), 'x'.repeat(129), '..', 'e1'])}`],
      ['rotate', 'POST', '/v1/keys/rotate'],
    ];
    const [route, method0, path0] = pick(r, routes);
    if (r() < 0.06) {
      // Not HTTP, or HTTP broken at the framing: bad request lines, bad header bytes, lies about length.
      const valid = `${method0} ${path0} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`;
      const raw = Buffer.from(pick(r, [
        valid.replace('HTTP/1.1', 'HTTP/9.9'), valid.replace(' ', '\0 '), valid.replace('host: x', 'host: x\rbad: y'),
        valid.replace('content-length: 2', 'content-length: -1'), valid.replace('content-length: 2', 'content-length: 2\r\ncontent-length: 3'),
        valid.replace('content-length: 2', 'content-length: 0'), valid.replace('content-length: 2', 'content-length: 99999999999'), valid.replace('content-length: 2', 'content-length: 12'),
        valid.replace('content-length: 2', 'transfer-encoding: chunked\r\ncontent-length: 2'), `${'A'.repeat(20_000)} / HTTP/1.1\r\n\r\n`,
        `GET / HTTP/1.1\r\n${'x-h: v\r\n'.repeat(200)}\r\n`, `GET / HTTP/1.1\r\nx: ${'v'.repeat(20_000)}\r\n\r\n`, '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', valid,
      ]), 'latin1');
      const flips = int(r, 3);
      for (let i = 0; i < flips; i++) raw[int(r, raw.length)] = int(r, 256);
      return raw;
    }
    const method = r() < 0.85 ? method0 : pick(r, ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND', 'M-SEARCH']);
    let path = path0;
    if (r() < 0.15) {
      path = pick(r, [
        `${path0}?last_event_id=${pick(r, ['1', '-1', 'x', '9'.repeat(30)])}`, `/${path0}`, `${path0}/`, `${path0}/../register`, path0.toUpperCase(),
        `${path0}%00`, `${path0}#frag`, '/', '/v1', '/v2/register', '*', `/${'a/'.repeat(2000)}`, `/v1/nodes/${id}`, path0.replace('/v1/', '/v1//'),
      ]);
    }
    const headers: Record<string, string> = {};
    const auth = pick(r, ['own', 'own', 'own', 'other', 'none', 'garbage', 'wrong-nsk', 'test-env', 'basic']);
    if (auth === 'own' && node !== undefined) headers.authorization = `Bearer ${node.bearer}`;
    else if (auth === 'other' && other !== undefined) headers.authorization = `Bearer ${other.bearer}`;
    else if (auth === 'garbage') headers.authorization = pick(r, ['Bearer', 'Bearer ', 'Bearer nsk_live_x', `Bearer ${'A'.repeat(5000)}`, 'bearer  nsk__', 'Bearer \u00ff']);
    else if (auth === 'wrong-nsk' && node !== undefined) headers.authorization = `Bearer ${encodeNodeCredential(node.node_id, new Uint8Array(32).fill(int(r, 256)))}`;
    else if (auth === 'test-env' && node !== undefined) headers.authorization = `Bearer ${encodeNodeCredential(node.node_id, Buffer.from(node.nsk, 'base64'), 'test')}`;
    else if (auth === 'basic') headers.authorization = 'Basic dXNlcjpwYXNz';
    if (r() < 0.8) headers['content-type'] = pick(r, ['application/json', 'application/json', 'text/plain', 'application/json; charset=utf-16', 'multipart/form-data; boundary=x', '']);
    if (r() < 0.1) headers['last-event-id'] = pick(r, ['0', '1', '-5', 'abc', '9'.repeat(40), String(Number.MAX_SAFE_INTEGER)]);
    if (r() < 0.1) headers['x-correlation-id'] = pick(r, ['ok-1', 'a'.repeat(500), 'bad id', '']);
    if (r() < 0.05) headers['x-pad'] = 'p'.repeat(int(r, 20_000)); // up to past the 16 KiB header limit
    if (r() < 0.05) headers.expect = '100-continue';

    let body: Buffer | undefined;
    let chunked = false;
    const shape = int(r, 20);
    const ctx = { token: () => (r() < 0.8 ? h.cp.store.createToken(r() < 0.8 ? 'default' : 'p2').token : pick(r, ['pbt_nope', 'x'.repeat(600), ''])), peer: () => (other?.node_id ?? randomUUID()) };
    if (shape < 6) body = Buffer.from(JSON.stringify(plausibleBody(r, route, ctx)));
    else if (shape < 13) body = Buffer.from(JSON.stringify(mutateBody(r, plausibleBody(r, route, ctx))) ?? 'null');
    else if (shape === 13) body = Buffer.from(pick(r, ['{', '{"a":', '[1,2', '"unterminated', '{"a":1}{"b":2}', 'nul\0l', '\ufeff{}', '{"a":1e999999}', 'tru', ' ']));
    else if (shape === 14) body = Buffer.from(Array.from({ length: int(r, 2048) }, () => int(r, 256)));
    else if (shape === 15) {
      body = Buffer.alloc(64 * 1024 + 1 + int(r, 200_000), 0x20);
      chunked = r() < 0.5;
    } else if (shape === 16) body = Buffer.from(JSON.stringify({ ...plausibleBody(r, route, ctx), pad: 'x'.repeat(60_000) }));
    else if (shape === 17) body = Buffer.from(`${'['.repeat(5000)}${']'.repeat(5000)}`);
    else body = undefined;
    // Framed properly (node's client sends no length for a GET or OPTIONS body): lies about the
    // length go through sendRaw, where they cannot desynchronize a shared keep-alive connection.
    if (body !== undefined) headers[chunked ? 'transfer-encoding' : 'content-length'] = chunked ? 'chunked' : String(body.length);
    return { method, path, headers, body, chunked };
  }

  function check(sent: Sent, a: Answer | 'closed'): void {
    if (a === 'closed') return count('closed');
    const where = `${sent.method} ${sent.path.slice(0, 120)} -> ${a.status} ${a.body.slice(0, 300)}`;
    expect(a.status, where).toBeGreaterThanOrEqual(100);
    expect(a.status, where).toBeLessThan(500);
    count(String(a.status));
    if (a.status < 400 || sent.method === 'HEAD') return;
    const type = String(a.headers['content-type'] ?? '');
    if (type === '' && a.body === '') return count('http-parser-refusal'); // refused before any route
    expect(type, where).toBe('application/problem+json');
    const problem = JSON.parse(a.body) as { code?: unknown; status?: unknown };
    expect(typeof problem.code, where).toBe('string');
    expect(problem.status, where).toBe(a.status);
    count(`code:${String(problem.code)}`);
  }

  it(`${ITERATIONS} hostile requests: no 5xx, problem+json 4xx, still serving, memory bounded`, async () => {
    const r = prng(SEED);
    const heap0 = process.memoryUsage().heapUsed;
    const rss0 = process.memoryUsage().rss;
    let next = 0;
    let rawSent = 0;
    const worker = async (): Promise<void> => {
      while (next < ITERATIONS) {
        const i = next++;
        const input = build(r);
        try {
          if (Buffer.isBuffer(input)) {
            rawSent++;
            const head = await sendRaw(input);
            expect(head, `raw input ${i}`).not.toMatch(/^HTTP\/1\.[01] 5/);
            count(head === '' ? 'raw-closed' : head === 'no answer' ? 'raw-no-answer' : `raw-${head.slice(9, 12)}`);
          } else {
            check(input, await send(input));
          }
        } catch (err) {
          (err as Error).message = `seed ${SEED} iteration ${i}: ${(err as Error).message}; input ${Buffer.isBuffer(input) ? JSON.stringify(input.toString("latin1").slice(0, 200)) : JSON.stringify({ ...input, body: input.body?.toString("utf8").slice(0, 200), bodyLength: input.body?.length })}`;
          throw err;
        }
        // Removed or re-keyed nodes (deregister, rotate) are replaced, so credentials keep working.
        if (i % 50 === 0) nodes = nodes.filter((n) => h.cp.store.node(n.node_id) !== undefined);
        if (nodes.length < 3) nodes.push(await h.register());
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));

    // Still serving, normally.
    const fresh = await h.register();
    const state = await h.call('GET', `/v1/nodes/${fresh.node_id}/state`, undefined, fresh.auth);
    expect(state.status).toBe(200);
    expect((await h.call('POST', '/v1/keys/rotate', { new_public_key: randomKey() }, fresh.auth)).status).toBe(200);
    const heapGrowth = process.memoryUsage().heapUsed - heap0;
    const rssGrowth = process.memoryUsage().rss - rss0;
    const summary = Object.entries(OUTCOMES).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k}=${v}`).join(' ');
    console.log(`fuzz http-api: seed ${SEED}, ${ITERATIONS} inputs (${rawSent} raw), outcomes ${summary}, heap ${(heapGrowth / 1048576).toFixed(1)} MiB, rss ${(rssGrowth / 1048576).toFixed(1)} MiB, streams left ${h.cp.streams}`);
    expect(heapGrowth).toBeLessThan(MAX_HEAP_GROWTH);
    expect(rssGrowth).toBeLessThan(4 * MAX_HEAP_GROWTH);
  }, fuzzTimeout(ITERATIONS, 20));
});
