// Telemetry ingest of the control plane (src/control-plane/telemetry.ts): the three endpoints,
// authentication, hostile bodies (oversized, gzip bomb, malformed NDJSON), batch-id dedup,
// retention, and the `logs` / `metrics` CLI.

import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { listTelemetry } from '../../src/control-plane/telemetry.js';
import { harnessEach, runCli, type Registered } from './harness.js';

const h = harnessEach({ telemetry: { maxBodyBytes: 64 * 1024, maxDecodedBytes: 256 * 1024, maxRecords: 500, maxRows: { metrics: 50, logs: 5, audit: 50 } } });

const sentAt = () => ({ 'x-plexsphere-sent-at': new Date().toISOString() });

async function post(node: Registered, kind: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const res = await fetch(`${h.cp.url}/v1/nodes/${node.node_id}/${kind}`, {
    method: 'POST',
    headers: { ...node.auth, ...sentAt(), 'content-type': kind === 'metrics' ? 'application/json' : 'application/x-ndjson', ...headers },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

const logLine = (message: string, severity = 'info') => JSON.stringify({ severity, message, timestamp: new Date().toISOString(), unit: 'plexd.service', hostname: 'n1' });

describe('telemetry ingest', () => {
  it('takes metrics (JSON array), logs and audit (NDJSON, gzip or not) with 202 and a receipt', async () => {
    const a = await h.register();
    const metrics = [{ timestamp: new Date().toISOString(), group: 'system', data: { cpu_usage_percent: 1.5 } }, { timestamp: new Date().toISOString(), group: 'tunnel', peer_id: 'p1', data: { rx_bytes: 1 } }];
    const m = await post(a, 'metrics', JSON.stringify(metrics));
    expect(m.status).toBe(202);
    expect(m.body.records).toBe(2);
    expect(typeof m.body.accepted_at).toBe('string');
    const l = await post(a, 'logs', gzipSync(`${logLine('one')}\n\n${logLine('two', 'err')}\n`), { 'content-encoding': 'gzip' });
    expect(l).toMatchObject({ status: 202, body: { records: 2 } });
    const audit = JSON.stringify({ timestamp: new Date().toISOString(), source: 'plexd', event_type: 'auth_failure', subject: { node_id: a.node_id }, object: 'control-plane', action: 'authenticate', result: 'failure', hostname: 'n1', raw: '' });
    expect((await post(a, 'audit', audit + '\n')).status).toBe(202);
    expect(listTelemetry(h.cp.store.db, a.node_id, 'logs').map((r) => r.record.message)).toEqual(['one', 'two']);
    expect(listTelemetry(h.cp.store.db, a.node_id, 'audit')[0]!.record).toMatchObject({ event_type: 'auth_failure', subject: { node_id: a.node_id } });
  });

  it('needs the node credential of the path node', async () => {
    const a = await h.register();
    const b = await h.register();
    expect((await post(a, 'logs', logLine('x'), { authorization: 'Bearer nope' })).status).toBe(401);
    const other = await fetch(`${h.cp.url}/v1/nodes/${b.node_id}/logs`, { method: 'POST', headers: { ...a.auth, ...sentAt() }, body: logLine('x') });
    expect(other.status).toBe(403);
    await other.text();
  });

  it('refuses a missing or bad X-Plexsphere-Sent-At and an unknown encoding', async () => {
    const a = await h.register();
    expect((await post(a, 'logs', logLine('x'), { 'x-plexsphere-sent-at': 'yesterday' })).body.code).toBe('ingest_sent_at_invalid');
    const r = await post(a, 'logs', logLine('x'), { 'content-encoding': 'br' });
    expect(r).toMatchObject({ status: 415, body: { code: 'ingest_encoding_unsupported' } });
  });

  it('refuses an oversized body and a gzip bomb with 413, storing nothing', async () => {
    const a = await h.register();
    const big = `${logLine('y'.repeat(1000))}\n`.repeat(100); // ~110 KiB > 64 KiB
    expect((await post(a, 'logs', big)).status).toBe(413);
    // 64 MiB of zeros compress to ~64 KiB; decoding must stop at the 256 KiB cap.
    const bomb = gzipSync(Buffer.alloc(64 << 20, 0x20), { level: 9 });
    expect(bomb.length).toBeLessThan(64 * 1024);
    const before = process.memoryUsage().rss;
    const r = await post(a, 'logs', bomb, { 'content-encoding': 'gzip' });
    expect(r).toMatchObject({ status: 413, body: { code: 'payload_too_large' } });
    expect(r.body.detail).toContain('decompresses to more than');
    expect(process.memoryUsage().rss - before).toBeLessThan(48 << 20);
    const garbage = await post(a, 'logs', Buffer.from('not gzip at all'), { 'content-encoding': 'gzip' });
    expect(garbage.body.code).toBe('ingest_batch_malformed');
    expect(listTelemetry(h.cp.store.db, a.node_id, 'logs')).toEqual([]);
  });

  it('refuses a batch with malformed NDJSON lines, counting and naming them; an empty batch too', async () => {
    const a = await h.register();
    const body = [logLine('ok'), '{not json', JSON.stringify({ severity: 'loud', message: 'x', timestamp: new Date().toISOString() }), JSON.stringify({ severity: 'info', message: '', timestamp: 'now' }), logLine('ok2')].join('\n');
    const r = await post(a, 'logs', body);
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('ingest_batch_malformed');
    expect(r.body.detail).toMatch(/^3 of 5 records malformed, batch refused: line 2: not JSON; line 3: severity/);
    expect(r.body.detail).toContain('line 4:');
    expect((await post(a, 'logs', '\n\n')).body.code).toBe('ingest_batch_malformed');
    expect((await post(a, 'metrics', '{"group":"system"}')).body.detail).toContain('expected a JSON array');
    expect((await post(a, 'metrics', JSON.stringify([{ timestamp: new Date().toISOString(), group: 'system', data: 3 }]))).body.detail).toContain('element 0: data');
    expect(listTelemetry(h.cp.store.db, a.node_id, 'logs')).toEqual([]);
  });

  it('stores a batch re-sent with the same batch id once', async () => {
    const a = await h.register();
    const id = { 'x-plexd-batch-id': 'b-000001' };
    expect((await post(a, 'logs', logLine('once'), id)).status).toBe(202);
    expect((await post(a, 'logs', logLine('once'), id)).status).toBe(202);
    expect(listTelemetry(h.cp.store.db, a.node_id, 'logs')).toHaveLength(1);
  });

  it('keeps the newest maxRows rows per node and kind, and prunes by age', async () => {
    const a = await h.register();
    for (let i = 0; i < 4; i++) await post(a, 'logs', `${logLine(`m${2 * i}`)}\n${logLine(`m${2 * i + 1}`)}`);
    expect(listTelemetry(h.cp.store.db, a.node_id, 'logs').map((r) => r.record.message)).toEqual(['m3', 'm4', 'm5', 'm6', 'm7']);
  });

  it('answers 501 observability_ingest_not_provisioned when ingest is off', async () => {
    await h.start({ telemetry: false });
    const a = await h.register();
    const r = await post(a, 'logs', logLine('x'));
    expect(r).toMatchObject({ status: 501, body: { code: 'observability_ingest_not_provisioned' } });
  });

  it('control-plane logs and metrics print what was uploaded', async () => {
    const a = await h.register();
    await post(a, 'logs', `${logLine('hello \u001b[31mred')}\n${logLine('second', 'warning')}`);
    await post(a, 'metrics', JSON.stringify([{ timestamp: '2026-01-01T00:00:00Z', group: 'system', data: { load_avg_1: 0.5 } }, { timestamp: '2026-01-01T00:00:15Z', group: 'system', data: { load_avg_1: 0.7 } }]));
    const logs = await runCli('logs', a.node_id, '--db', h.dbFile);
    expect(logs.code).toBe(0);
    expect(logs.out).toContain('info    n1 plexd.service: hello \\x1b[31mred');
    expect(logs.out).toContain('warning n1 plexd.service: second');
    const json = await runCli('logs', a.node_id, '--db', h.dbFile, '--json', '--lines', '1');
    expect(JSON.parse(json.out)).toMatchObject({ message: 'second' });
    const m = await runCli('metrics', a.node_id, '--db', h.dbFile);
    expect(m.out).toContain('load_avg_1=0.7');
    expect(m.out).not.toContain('load_avg_1=0.5');
    expect((await runCli('logs', '00000000-0000-0000-0000-000000000000', '--db', h.dbFile)).code).toBe(1);
  });
});
