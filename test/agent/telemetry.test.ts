// The agent's telemetry upload pieces (src/agent/telemetry/*): the bounded spool, the wire
// encoding (gzip above 1 KiB), what an answer means, the pipeline on a manual clock (batching,
// intervals, outage, 501), and the sources (filter, journald, files, K8s audit mapping).

import { mkdtempSync, rmSync, writeFileSync, appendFileSync, renameSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeBatch, outcomeOf, TelemetryPipeline, type SendOutcome } from '../../src/agent/telemetry/pipeline.js';
import { FileSource, JournaldSource, k8sAuditEntry, passes, Ring, tapLogger } from '../../src/agent/telemetry/sources.js';
import { Spool } from '../../src/agent/telemetry/spool.js';
import { createLogger, silentLogger } from '../../src/log/logger.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'telemetry-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('Spool', () => {
  it('keeps batches across a reopen with the same ids, and drops the oldest past maxBytes, counted', () => {
    const s = new Spool(join(dir, 'logs'), 1000);
    const line = 'x'.repeat(98); // 99 bytes with its newline
    const a = s.append([line, line, line]); // 297
    s.append([line, line, line]); // 594
    s.append([line, line, line]); // 891
    expect(s.droppedRecords).toBe(0);
    const d = s.append([line, line]); // 1089 > 1000: a goes
    expect(s.batches.map((b) => b.records)).toEqual([3, 3, 2]);
    expect(s.batches[0]!.seq).toBe(a.seq + 1);
    expect(s.droppedRecords).toBe(3);
    expect(s.droppedBatches).toBe(1);
    expect(s.bytes).toBe(792);
    const again = new Spool(join(dir, 'logs'), 1000);
    expect(again.batches.map((b) => b.id)).toEqual(s.batches.map((b) => b.id));
    expect(again.read(again.batches.at(-1)!)).toEqual([line, line]);
    expect(again.append(['y']).seq).toBe(d.seq + 1);
  });

  it('keeps the newest batch even when it alone is over the bound', () => {
    const s = new Spool(join(dir, 'm'), 10);
    s.append(['a'.repeat(50)]);
    s.append(['b'.repeat(50)]);
    expect(s.batches).toHaveLength(1);
    expect(s.read(s.batches[0]!)).toEqual(['b'.repeat(50)]);
    expect(s.droppedRecords).toBe(1);
  });

  it('removes a temp file left by a crash mid-write', () => {
    const d = join(dir, 'a');
    new Spool(d, 1000);
    writeFileSync(join(d, '000000000001_deadbeef_1.ndjson.tmp'), 'half');
    const s = new Spool(d, 1000);
    expect(s.batches).toEqual([]);
    expect(readdirSync(d)).toEqual([]);
  });
});

describe('encodeBatch', () => {
  it('sends up to 1 KiB as is and gzips above, with the headers', () => {
    const small = encodeBatch('logs', 'id-1', ['{"a":1}', '{"a":2}'], '2026-01-01T00:00:00Z');
    expect(small.body.toString()).toBe('{"a":1}\n{"a":2}\n');
    expect(small.headers).toMatchObject({ 'content-type': 'application/x-ndjson', 'x-plexsphere-sent-at': '2026-01-01T00:00:00Z', 'x-plexd-batch-id': 'id-1' });
    expect(small.headers['content-encoding']).toBeUndefined();
    // Exactly 1024 bytes stays identity; 1025 is gzip.
    const at = (n: number) => encodeBatch('logs', 'i', ['y'.repeat(n - 1)], 't');
    expect(at(1024).headers['content-encoding']).toBeUndefined();
    const big = at(1025);
    expect(big.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(big.body).toString()).toBe('y'.repeat(1024) + '\n');
    expect(encodeBatch('metrics', 'i', ['{"a":1}', '{"b":2}'], 't').body.toString()).toBe('[{"a":1},{"b":2}]');
  });

  it('maps answers: 2xx accepted, 501 not provisioned, verdicts on the bytes refused, the rest retried', () => {
    expect(outcomeOf(202, '').kind).toBe('accepted');
    expect(outcomeOf(501, '{"code":"observability_ingest_not_provisioned"}').kind).toBe('not_provisioned');
    expect(outcomeOf(400, '{"code":"ingest_batch_malformed"}')).toEqual({ kind: 'refused', reason: 'HTTP 400 ingest_batch_malformed' });
    expect(outcomeOf(413, '').kind).toBe('refused');
    expect(outcomeOf(400, '{"code":"ingest_sent_at_invalid"}').kind).toBe('retry');
    for (const s of [401, 415, 429, 500, 503]) expect(outcomeOf(s, 'not json').kind).toBe('retry');
  });
});

/** A pipeline on a manual clock, with a scripted control plane. */
function rig(opts: { batchSize?: number; spoolMax?: number; collect?: () => unknown[] } = {}) {
  let n = 0;
  const received: unknown[] = [];
  const sends: Array<{ id: string; count: number; at: number }> = [];
  let answer: () => SendOutcome = () => ({ kind: 'accepted' });
  let now = 0;
  const spool = new Spool(join(dir, 'spool'), opts.spoolMax ?? 1 << 20);
  const p = new TelemetryPipeline({
    kind: 'metrics',
    collectIntervalMs: 15_000,
    reportIntervalMs: 60_000,
    batchSize: opts.batchSize ?? 100,
    sources: [opts.collect ?? (() => [{ n: n++ }])],
    spool,
    send: async (_k, id, lines) => {
      sends.push({ id, count: lines.length, at: now });
      const a = answer();
      if (a.kind === 'accepted') received.push(...lines.map((l) => JSON.parse(l)));
      return a;
    },
    log: silentLogger,
  });
  return {
    p,
    spool,
    received,
    sends,
    setAnswer: (f: () => SendOutcome) => (answer = f),
    /** Runs every deadline up to `until` (ms). */
    async runUntil(until: number) {
      let next = await p.tick(now);
      while (next <= until) {
        now = next;
        next = await p.tick(now);
      }
      now = until;
    },
  };
}

describe('TelemetryPipeline (manual clock)', () => {
  it('collects every 15 s and reports every 60 s (upstream metrics defaults)', async () => {
    const r = rig();
    await r.runUntil(59_999);
    expect(r.sends).toEqual([]);
    await r.runUntil(60_000);
    // Collections at 0, 15, 30, 45 and 60 s; the report at 60 s takes all five.
    expect(r.sends).toHaveLength(1);
    expect(r.sends[0]).toMatchObject({ count: 5, at: 60_000 });
    await r.runUntil(120_000);
    expect(r.sends.map((s) => s.at)).toEqual([60_000, 120_000]);
    expect(r.received.map((x) => (x as { n: number }).n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('sends at once when a full batch is buffered, in chunks of batch_size', async () => {
    const r = rig({ batchSize: 3, collect: () => [1, 2, 3, 4, 5, 6, 7] });
    await r.runUntil(0);
    expect(r.sends.map((s) => s.count)).toEqual([3, 3, 1]);
    expect(r.sends.every((s) => s.at === 0)).toBe(true);
  });

  it('keeps batches in the spool through an outage and sends each once, in order, afterwards', async () => {
    const r = rig();
    r.setAnswer(() => ({ kind: 'retry', reason: 'connection refused' }));
    await r.runUntil(300_000);
    expect(r.received).toEqual([]);
    expect(r.spool.records).toBe(21);
    expect(r.p.status()).toMatchObject({ send_failures: 5, spooled_records: 21, last_error: 'connection refused' });
    r.setAnswer(() => ({ kind: 'accepted' }));
    await r.runUntil(360_000);
    expect(r.received.map((x) => (x as { n: number }).n)).toEqual([...Array(25).keys()]);
    expect(r.spool.records).toBe(0);
    // The batch that failed five times was offered with one id each time.
    const first = r.sends[0]!.id;
    expect(r.sends.filter((s) => s.id === first)).toHaveLength(6);
  });

  it('drops the oldest records when the spool fills during an outage, and counts them', async () => {
    const r = rig({ spoolMax: 300, collect: () => [{ pad: 'z'.repeat(40) }] }); // ~52 bytes a record
    r.setAnswer(() => ({ kind: 'retry', reason: 'down' }));
    await r.runUntil(600_000); // 41 records collected, 10 reports
    const st = r.p.status();
    expect(st.dropped_spool_full).toBeGreaterThan(0);
    expect(st.spooled_records + st.dropped_spool_full).toBe(41 - st.buffered);
    expect(st.spool_bytes).toBeLessThanOrEqual(300);
  });

  it('501: drops the batch, pauses the kind for 5 minutes (dropping), then tries again', async () => {
    const r = rig();
    r.setAnswer(() => ({ kind: 'not_provisioned' }));
    await r.runUntil(60_000);
    expect(r.sends).toHaveLength(1);
    expect(r.p.status()).toMatchObject({ dropped_not_provisioned: 5, paused: true, spooled_records: 0 });
    await r.runUntil(359_999);
    expect(r.sends).toHaveLength(1); // paused: nothing sent
    expect(r.p.status().dropped_not_provisioned).toBe(5 + 4 * 4); // reports at 120..300 s, 4 records each
    r.setAnswer(() => ({ kind: 'accepted' }));
    await r.runUntil(420_000);
    expect(r.sends.map((s) => s.at)).toEqual([60_000, 360_000, 420_000]);
    expect(r.p.status()).toMatchObject({ paused: false });
    expect(r.received.length).toBeGreaterThan(0);
  });

  it('drops a batch the control plane refuses and goes on with the next', async () => {
    const r = rig({ batchSize: 2, collect: () => [1, 2, 3, 4] });
    let i = 0;
    r.setAnswer(() => (i++ === 0 ? { kind: 'refused', reason: 'HTTP 400 ingest_batch_malformed' } : { kind: 'accepted' }));
    await r.runUntil(0);
    expect(r.received).toEqual([3, 4]);
    expect(r.p.status().dropped_refused).toBe(2);
  });
});

describe('sources', () => {
  it('filters by min_severity, include_units and exclude_units (upstream order)', () => {
    const f = { minSeverity: 'warning', includeUnits: ['a.service', 'b.service'], excludeUnits: ['b.service'] };
    expect(passes(f, { severity: 'err', unit: 'a.service' })).toBe(true);
    expect(passes(f, { severity: 'notice', unit: 'a.service' })).toBe(false);
    expect(passes(f, { severity: 'crit', unit: 'b.service' })).toBe(false);
    expect(passes(f, { severity: 'crit', unit: 'c.service' })).toBe(false);
    expect(passes({ minSeverity: undefined, includeUnits: [], excludeUnits: [] }, { severity: 'debug' })).toBe(true);
  });

  it('reads journalctl JSON with a cursor, maps priorities, skips malformed lines', async () => {
    const calls: string[][] = [];
    const outputs = [
      `${JSON.stringify({ __CURSOR: 'c1', MESSAGE: 'hello', PRIORITY: '3', _SYSTEMD_UNIT: 'sshd.service', __REALTIME_TIMESTAMP: '1767225600000000' })}\n{broken\n${JSON.stringify({ __CURSOR: 'c2', MESSAGE: [104, 105], PRIORITY: '9' })}\n`,
      '',
    ];
    const j = new JournaldSource(async (args) => {
      calls.push([...args]);
      return outputs.shift() ?? '';
    });
    const lines = await j.collect();
    expect(lines).toEqual([
      expect.objectContaining({ severity: 'err', message: 'hello', unit: 'sshd.service', timestamp: '2026-01-01T00:00:00.000Z' }),
      expect.objectContaining({ severity: 'info', message: 'hi' }),
    ]);
    expect(j.malformed).toBe(1);
    await j.collect();
    expect(calls[0]).toContain('--since=-60s');
    expect(calls[1]).toContain('--after-cursor=c2');
  });

  it('follows files of a pattern: whole lines only, rotation, truncation, 16 KiB cap', () => {
    const f = join(dir, 'app.log');
    writeFileSync(f, 'one\ntwo\npart');
    writeFileSync(join(dir, 'other.txt'), 'not matched\n');
    const src = new FileSource([join(dir, '*.log')]);
    expect(src.collect().map((l) => l.message)).toEqual(['one', 'two']);
    appendFileSync(f, 'ial\n');
    expect(src.collect()).toEqual([expect.objectContaining({ message: 'partial', unit: f, severity: 'info' })]);
    renameSync(f, join(dir, 'app.log.1'));
    writeFileSync(f, 'fresh\n');
    expect(src.collect().map((l) => l.message)).toEqual(['fresh']);
    writeFileSync(f, 'x\n'); // truncated below the offset (same inode)
    expect(src.collect().map((l) => l.message)).toEqual(['x']);
    appendFileSync(f, `${'q'.repeat(20_000)}\n`);
    const long = src.collect()[0]!.message;
    expect(long).toBe(`${'q'.repeat(16 * 1024)}[truncated]`);
  });

  it('maps a Kubernetes audit event as upstream does', () => {
    const e = k8sAuditEntry({ verb: 'create', user: { username: 'system:serviceaccount:default:deployer', groups: ['system:serviceaccounts'] }, objectRef: { namespace: 'prod', resource: 'pods', name: 'web-1' }, responseStatus: { code: 201 }, stageTimestamp: '2026-02-12T10:30:01Z' }, 'n1');
    expect(e).toMatchObject({ source: 'k8s-audit', event_type: 'create', action: 'create', result: 'success', object: 'prod/pods/web-1', subject: { username: 'system:serviceaccount:default:deployer', groups: ['system:serviceaccounts'] }, timestamp: '2026-02-12T10:30:01.000Z', hostname: 'n1' });
    expect(k8sAuditEntry({ verb: 'get', objectRef: { resource: 'nodes' }, responseStatus: { code: 403 } }).result).toBe('failure');
  });

  it('a ring keeps the newest entries and counts the dropped; a tapped logger hands on emitted lines only', () => {
    const ring = new Ring<number>(3);
    for (let i = 0; i < 5; i++) ring.push(i);
    expect(ring.drain()).toEqual([2, 3, 4]);
    expect(ring.dropped).toBe(2);
    const got: string[] = [];
    const log = tapLogger(createLogger('info', '', () => {}), (sev, m) => got.push(`${sev}:${m}`));
    log.error('bad');
    log.child('(x) ').info('fine');
    log.verbose('hidden');
    expect(got).toEqual(['err:bad', 'info:fine']);
  });
});
