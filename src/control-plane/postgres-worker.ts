// The worker thread of postgres.ts, as source text (started with `eval: true`, so it runs the same
// from src/ under vitest, from dist/ and from an installed package). It owns one node-postgres
// connection and answers one request at a time: the main thread posts a request, blocks on
// Atomics.wait, and reads the answer with receiveMessageOnPort. All SQL logic stays on the main
// thread; this only moves bytes and keeps the connection's state honest:
// - a connection that fails inside a transaction poisons it: every statement fails until the main
//   thread's ROLLBACK, so nothing after a reconnect runs outside the transaction it belonged to;
// - after a failed connect, requests fail at once until a backoff (250 ms doubling to 5 s) passes,
//   so a database outage costs each request microseconds, not a connect timeout.

/** Source of the worker (CommonJS, run by `new Worker(source, { eval: true })`). workerData:
 *  { pg: resolved path of the pg package, url, flag: SharedArrayBuffer(4), port: MessagePort,
 *    statementTimeoutMs, lockTimeoutMs, connectTimeoutMs }. */
export const POSTGRES_WORKER_SOURCE = String.raw`
'use strict';
const { workerData } = require('node:worker_threads');
const pg = require(workerData.pg);
const flag = new Int32Array(workerData.flag);
const port = workerData.port;
const parsers = {
  getTypeParser(oid, format) {
    // int8 and numeric as numbers (every integer the control plane stores is below 2^53).
    if (oid === 20 || oid === 1700) return (v) => (v === null ? null : Number(v));
    return pg.types.getTypeParser(oid, format);
  },
};
let client = null;
let connecting = null;
let txDepth = 0;
let poisoned = null;
let backoffMs = 0;
let retryAt = 0;
const names = new Map();

function unavailable(message) {
  return { unavailable: true, message };
}

function drop(reason) {
  const c = client;
  client = null;
  if (txDepth > 0 && poisoned === null) poisoned = reason;
  if (c !== null) c.end().catch(() => {});
}

async function connection() {
  if (client !== null) return client;
  if (Date.now() < retryAt) throw unavailable('not connected (retrying in ' + (retryAt - Date.now()) + ' ms)');
  if (connecting === null) {
    connecting = (async () => {
      const c = new pg.Client({
        connectionString: workerData.url,
        connectionTimeoutMillis: workerData.connectTimeoutMs,
        keepAlive: true,
        application_name: 'plexd-userspace control-plane',
        types: parsers,
      });
      c.on('error', (e) => { if (client === c) drop(e.message); });
      c.on('end', () => { if (client === c) drop('connection closed'); });
      try {
        await c.connect();
        await c.query('SET statement_timeout = ' + workerData.statementTimeoutMs + '; SET lock_timeout = ' + workerData.lockTimeoutMs + "; SET idle_in_transaction_session_timeout = 60000; SET TIME ZONE 'UTC'");
      } catch (e) {
        c.end().catch(() => {});
        backoffMs = Math.min(5000, backoffMs === 0 ? 250 : backoffMs * 2);
        retryAt = Date.now() + backoffMs;
        throw unavailable(e.message || String(e));
      }
      backoffMs = 0;
      client = c;
      return c;
    })().finally(() => { connecting = null; });
  }
  return connecting;
}

function toBuffers(values) {
  return values === undefined ? undefined : values.map((v) => (v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v));
}

/** True for errors of the connection rather than of the statement. */
function lostConnection(e) {
  if (e && e.unavailable) return true;
  const code = e && e.code;
  if (typeof code === 'string' && (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03')) return true;
  return !code || /ECONN|EPIPE|ETIMEDOUT|terminated|not queryable|Connection/i.test(String(e && e.message));
}

async function handle(m) {
  if (m.op === 'close') return { rows: [], rowCount: 0 };
  if (m.op === 'rollback' && poisoned !== null) {
    poisoned = null;
    txDepth = 0;
    return { rows: [], rowCount: 0 };
  }
  if (poisoned !== null) throw unavailable('connection lost inside a transaction (' + poisoned + ')');
  const c = await connection();
  try {
    switch (m.op) {
      case 'begin': {
        try {
          await c.query(m.readOnly ? 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' : m.lock === undefined ? 'BEGIN' : 'BEGIN; SELECT pg_advisory_xact_lock(' + m.lock + ')');
        } catch (e) {
          // BEGIN ran but the lock wait failed (lock_timeout): the transaction is open and
          // aborted; end it here, the caller never saw it start.
          await c.query('ROLLBACK').catch(() => {});
          throw e;
        }
        txDepth = 1;
        return { rows: [], rowCount: 0 };
      }
      case 'commit':
      case 'rollback': {
        try {
          await c.query(m.op === 'commit' ? 'COMMIT' : 'ROLLBACK');
        } finally {
          txDepth = 0;
        }
        return { rows: [], rowCount: 0 };
      }
      case 'exec': {
        await c.query(m.text);
        return { rows: [], rowCount: 0 };
      }
      default: {
        // Named (server-side prepared once per connection) for the control plane's fixed
        // statements; a bounded number of names, so generated SQL cannot grow the cache.
        let name = names.get(m.text);
        if (name === undefined && names.size < 2000) {
          name = 'plexd_' + names.size;
          names.set(m.text, name);
        }
        const r = await c.query({ name, text: m.text, values: toBuffers(m.values), rowMode: m.array ? 'array' : undefined });
        return { rows: r.rows, rowCount: r.rowCount ?? 0 };
      }
    }
  } catch (e) {
    if (lostConnection(e)) {
      drop(e.message || String(e));
      throw e && e.unavailable ? e : unavailable(e.message || String(e));
    }
    throw e;
  }
}

let chain = Promise.resolve();
port.on('message', (m) => {
  chain = chain.then(async () => {
    let out;
    try {
      out = { id: m.id, ok: await handle(m) };
    } catch (e) {
      out = { id: m.id, error: e && e.unavailable ? { unavailable: true, message: e.message } : { message: (e && e.message) || String(e), code: e && e.code, detail: e && e.detail, constraint: e && e.constraint } };
    }
    if (m.op === 'close') { if (client !== null) await client.end().catch(() => {}); client = null; }
    try {
      port.postMessage(out);
    } catch (e) {
      port.postMessage({ id: m.id, error: { message: 'answer not transferable: ' + ((e && e.message) || String(e)) } });
    }
    Atomics.add(flag, 0, 1);
    Atomics.notify(flag, 0);
    if (m.op === 'close') port.close();
  });
});
`;
