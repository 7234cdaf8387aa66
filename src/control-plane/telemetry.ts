// Telemetry ingest of the control plane (issue 18; upstream observability/metrics-collection,
// log-forwarding, audit-forwarding "API Contract"; docs/operations.md "Telemetry"):
// POST /v1/nodes/{id}/metrics (a JSON array of MetricPoint), /logs and /audit (NDJSON of LogLine /
// AuditEntry), gzip or identity, X-Plexsphere-Sent-At required, 202 with an IngestReceipt. Hostile
// bodies end in a problem: the compressed body and the decompressed text are both capped (a gzip
// bomb stops at the cap), a batch with a malformed line or element is refused naming and counting
// them. Records are kept in one table with a row cap per node and kind and a maximum age.

import type { IncomingMessage } from 'node:http';
import { gunzip } from 'node:zlib';
import {
  BATCH_ID_HEADER,
  formatRfc3339,
  parseAuditEntry,
  parseLogLine,
  parseMetricPoint,
  parseRfc3339,
  SENT_AT_HEADER,
  type IngestReceipt,
  type ParseResult,
  type TelemetryKind,
} from '../api/index.js';
import type { Db } from './database.js';
import { ControlPlaneError } from './errors.js';
import { prepared } from './prepared.js';
import { readBodyBytes } from './http-io.js';

/** Limits of the ingest and of what is kept (docs/operations.md "Telemetry"). */
export interface TelemetryLimits {
  /** Largest request body as sent (compressed or not), bytes. */
  readonly maxBodyBytes: number;
  /** Largest body after gzip decompression, bytes: the gzip-bomb cap. */
  readonly maxDecodedBytes: number;
  /** Most records in one batch. */
  readonly maxRecords: number;
  /** Rows kept per node and kind; the oldest go first. */
  readonly maxRows: Readonly<Record<TelemetryKind, number>>;
  /** Rows older than this (by receipt) are removed, ms. */
  readonly maxAgeMs: Readonly<Record<TelemetryKind, number>>;
}

const DAY = 86_400_000;

/** The defaults: 1 MiB sent, 8 MiB decoded, 10,000 records a batch; per node 20,000 metric points
 *  and 50,000 log lines and audit entries, 7 days (audit 30 days). */
export const DEFAULT_TELEMETRY_LIMITS: TelemetryLimits = {
  maxBodyBytes: 1 << 20,
  maxDecodedBytes: 8 << 20,
  maxRecords: 10_000,
  maxRows: { metrics: 20_000, logs: 50_000, audit: 50_000 },
  maxAgeMs: { metrics: 7 * DAY, logs: 7 * DAY, audit: 30 * DAY },
};

/** How long a batch id is remembered for duplicate detection (ms). */
const BATCH_ID_TTL_MS = DAY;
const BATCH_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** Malformed lines named in a refusal at most (all are counted). */
const NAMED_LINES = 10;

/** The ingest options of the server: limits, or false to answer 501 (not provisioned). */
export type TelemetryOptions = Partial<TelemetryLimits> | false;

/** Decompresses per Content-Encoding (gzip or identity), at most `maxDecoded` bytes out. */
async function decode(body: Buffer, encoding: string | undefined, maxDecoded: number): Promise<string> {
  const enc = (encoding ?? 'identity').trim().toLowerCase();
  if (enc === 'identity' || enc === '') {
    if (body.length > maxDecoded) throw new ControlPlaneError('payload_too_large', `body larger than ${maxDecoded} bytes`);
    return body.toString('utf8');
  }
  if (enc !== 'gzip') throw new ControlPlaneError('ingest_encoding_unsupported', `Content-Encoding ${JSON.stringify(enc.slice(0, 40))} is neither gzip nor identity`);
  const out = await new Promise<Buffer>((resolve, reject) => {
    // maxOutputLength stops inflating at the cap: a bomb costs at most maxDecoded bytes.
    gunzip(body, { maxOutputLength: maxDecoded }, (err, buf) => (err === null ? resolve(buf) : reject(err)));
  }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ERR_BUFFER_TOO_LARGE') throw new ControlPlaneError('payload_too_large', `gzip body decompresses to more than ${maxDecoded} bytes`);
    throw new ControlPlaneError('ingest_batch_malformed', `gzip body does not decompress: ${err.message.slice(0, 200)}`);
  });
  return out.toString('utf8');
}

/** The records of a decoded batch, or ingest_batch_malformed naming and counting the bad ones. */
export function parseBatch(kind: TelemetryKind, text: string, maxRecords: number): unknown[] {
  const items: Array<{ line: number; value: unknown }> = [];
  const bad: string[] = [];
  let badCount = 0;
  const parser: (v: unknown) => ParseResult<unknown> = kind === 'metrics' ? parseMetricPoint : kind === 'logs' ? parseLogLine : parseAuditEntry;
  const check = (line: number, value: unknown, what: string) => {
    const r = parser(value);
    if (r.ok) items.push({ line, value: r.value });
    else {
      badCount++;
      if (bad.length < NAMED_LINES) bad.push(`${what} ${line}: ${r.errors.slice(0, 2).map((e) => `${e.field} ${e.message}`).join(', ').slice(0, 200)}`);
    }
  };
  if (kind === 'metrics') {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new ControlPlaneError('ingest_batch_malformed', `metrics body is not JSON: ${(err as Error).message.slice(0, 200)}`);
    }
    if (!Array.isArray(doc)) throw new ControlPlaneError('ingest_batch_malformed', 'metrics body: expected a JSON array of metric points');
    if (doc.length > maxRecords) throw new ControlPlaneError('payload_too_large', `batch of ${doc.length} records, at most ${maxRecords}`);
    doc.forEach((v, i) => check(i, v, 'element'));
  } else {
    const lines = text.split('\n');
    let n = 0;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.replace(/\r$/, '');
      if (line.trim() === '') continue;
      if (++n > maxRecords) throw new ControlPlaneError('payload_too_large', `batch of more than ${maxRecords} records`);
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        badCount++;
        if (bad.length < NAMED_LINES) bad.push(`line ${i + 1}: not JSON`);
        continue;
      }
      check(i + 1, value, 'line');
    }
  }
  if (badCount > 0) {
    throw new ControlPlaneError('ingest_batch_malformed', `${badCount} of ${badCount + items.length} records malformed, batch refused: ${bad.join('; ')}${badCount > bad.length ? '; ...' : ''}`);
  }
  if (items.length === 0) throw new ControlPlaneError('ingest_batch_malformed', 'batch has no records');
  return items.map((i) => i.value);
}

/** A stored telemetry record as the CLI reads it. */
export interface TelemetryRow {
  readonly id: number;
  readonly received_at: number;
  readonly record: Record<string, unknown>;
}

/** Ingest and storage of node telemetry over the control plane's database. */
export class TelemetryStore {
  readonly limits: TelemetryLimits;
  readonly #db: Db;

  constructor(db: Db, limits: Partial<TelemetryLimits> = {}) {
    this.#db = db;
    this.limits = { ...DEFAULT_TELEMETRY_LIMITS, ...limits };
  }

  /**
   * Handles one POST: checks the headers, reads, decodes and parses the body, stores the records
   * (once per batch id) and trims the node's rows. Throws ControlPlaneError (the handler answers it).
   */
  async ingest(req: IncomingMessage, nodeId: string, kind: TelemetryKind, nowMs: number): Promise<IngestReceipt> {
    const sentAt = req.headers[SENT_AT_HEADER];
    if (typeof sentAt !== 'string' || parseRfc3339(sentAt) === undefined) {
      throw new ControlPlaneError('ingest_sent_at_invalid', `${SENT_AT_HEADER} is ${sentAt === undefined ? 'missing' : 'not an RFC 3339 timestamp'}`);
    }
    const batchHeader = req.headers[BATCH_ID_HEADER];
    const batchId = typeof batchHeader === 'string' && BATCH_ID.test(batchHeader) ? batchHeader : undefined;
    const raw = await readBodyBytes(req, this.limits.maxBodyBytes);
    const enc = req.headers['content-encoding'];
    const text = await decode(raw, typeof enc === 'string' ? enc : undefined, this.limits.maxDecodedBytes);
    const records = parseBatch(kind, text, this.limits.maxRecords);
    const accepted_at = formatRfc3339(nowMs);
    this.#db.transaction(() => {
      if (batchId !== undefined) {
        const fresh = prepared(this.#db, 'INSERT OR IGNORE INTO telemetry_batches (node_id, kind, batch_id, received_at) VALUES (?, ?, ?, ?)').run(nodeId, kind, batchId, nowMs);
        if (fresh.changes === 0) return; // a re-send after a lost 202: stored already
      }
      const insert = prepared(this.#db, 'INSERT INTO telemetry (node_id, kind, received_at, ts, record) VALUES (?, ?, ?, ?, ?)');
      for (const r of records) insert.run(nodeId, kind, nowMs, (r as { timestamp: string }).timestamp, JSON.stringify(r));
      this.#trim(nodeId, kind);
    }).immediate();
    return { accepted_at, records: records.length };
  }

  /** Keeps the newest maxRows rows of (node, kind). */
  #trim(nodeId: string, kind: TelemetryKind): void {
    const cut = prepared(this.#db, 'SELECT id FROM telemetry WHERE node_id = ? AND kind = ? ORDER BY id DESC LIMIT 1 OFFSET ?').get(nodeId, kind, this.limits.maxRows[kind]) as { id: number } | undefined;
    if (cut !== undefined) prepared(this.#db, 'DELETE FROM telemetry WHERE node_id = ? AND kind = ? AND id <= ?').run(nodeId, kind, cut.id);
  }

  /** Removes rows past their kind's maximum age and forgotten batch ids; returns rows removed. */
  prune(nowMs: number): number {
    let n = 0;
    for (const [kind, age] of Object.entries(this.limits.maxAgeMs)) {
      n += prepared(this.#db, 'DELETE FROM telemetry WHERE kind = ? AND received_at < ?').run(kind, nowMs - age).changes;
    }
    prepared(this.#db, 'DELETE FROM telemetry_batches WHERE received_at < ?').run(nowMs - BATCH_ID_TTL_MS);
    return n;
  }
}

/** Stored records of one node and kind with id > afterId, oldest first; the newest `limit` of
 *  them when `newest` (what `logs` shows first). */
export function listTelemetry(db: Db, nodeId: string, kind: TelemetryKind, opts: { afterId?: number; limit?: number; newest?: boolean } = {}): TelemetryRow[] {
  const limit = opts.limit ?? 1000;
  const rows = (
    opts.newest === true
      ? prepared(db, 'SELECT id, received_at, record FROM telemetry WHERE node_id = ? AND kind = ? AND id > ? ORDER BY id DESC LIMIT ?').all(nodeId, kind, opts.afterId ?? 0, limit).reverse()
      : prepared(db, 'SELECT id, received_at, record FROM telemetry WHERE node_id = ? AND kind = ? AND id > ? ORDER BY id LIMIT ?').all(nodeId, kind, opts.afterId ?? 0, limit)
  ) as Array<{ id: number; received_at: number; record: string }>;
  return rows.map((r) => ({ id: r.id, received_at: r.received_at, record: JSON.parse(r.record) as Record<string, unknown> }));
}

/** The newest metric point of each (group, peer_id) of a node. */
export function latestMetrics(db: Db, nodeId: string): TelemetryRow[] {
  const rows = prepared(
    db,
    `SELECT t.id, t.received_at, t.record FROM telemetry t JOIN (
       SELECT MAX(id) AS id FROM telemetry WHERE node_id = ? AND kind = 'metrics'
       GROUP BY json_extract(record, '$.group'), json_extract(record, '$.peer_id')) m ON t.id = m.id ORDER BY t.id`,
  ).all(nodeId) as Array<{ id: number; received_at: number; record: string }>;
  return rows.map((r) => ({ id: r.id, received_at: r.received_at, record: JSON.parse(r.record) as Record<string, unknown> }));
}
