// One telemetry kind's collect -> batch -> spool -> upload loop (upstream metrics Manager, logfwd
// and auditfwd Forwarder; docs/operations.md "Telemetry"). Time is an argument: tick(now) runs
// what is due and returns the next deadline, so tests drive it with a manual clock. Every batch
// goes through the on-disk spool before it is sent, and leaves it on 202 (or when the control
// plane refuses it for good); a failure to reach the control plane leaves it there for the next
// report. 501 drops the batch and pauses the kind (NOT_PROVISIONED_PAUSE_MS).

import { gzipSync } from 'node:zlib';
import { BATCH_ID_HEADER, GZIP_THRESHOLD_BYTES, SENT_AT_HEADER, type TelemetryKind } from '../../api/index.js';
import type { Logger } from '../../log/logger.js';
import type { Spool, SpooledBatch } from './spool.js';

/** How long a kind stays paused after a 501 (ms): its collected records are dropped meanwhile. */
export const NOT_PROVISIONED_PAUSE_MS = 5 * 60_000;

/** The outcome of sending one batch. */
export type SendOutcome =
  | { readonly kind: 'accepted' }
  /** 501: ingest not provisioned: drop the batch, pause the kind. */
  | { readonly kind: 'not_provisioned' }
  /** A verdict on the bytes (400 malformed, 413, other 4xx): drop the batch. */
  | { readonly kind: 'refused'; readonly reason: string }
  /** Unreachable, 5xx, 429, 401 (re-registering), a bad Sent-At: keep it, send again later. */
  | { readonly kind: 'retry'; readonly reason: string };

/** Sends one batch of NDJSON record lines of `kind`. Never rejects. */
export type Sender = (kind: TelemetryKind, batchId: string, lines: readonly string[]) => Promise<SendOutcome>;

/** A source of records: called every collect interval. May throw (counted, the others go on). */
export type Source = () => readonly unknown[] | Promise<readonly unknown[]>;

/** Options of a {@link TelemetryPipeline}. */
export interface PipelineOptions {
  readonly kind: TelemetryKind;
  readonly collectIntervalMs: number;
  readonly reportIntervalMs: number;
  readonly batchSize: number;
  readonly sources: readonly Source[];
  readonly spool: Spool;
  readonly send: Sender;
  readonly log: Logger;
  readonly pauseMs?: number;
}

/** The counters `log-status` and `audit` show. */
export interface PipelineStatus {
  readonly kind: TelemetryKind;
  readonly collected: number;
  readonly sent_records: number;
  readonly sent_batches: number;
  readonly buffered: number;
  readonly spooled_records: number;
  readonly spooled_batches: number;
  readonly spool_bytes: number;
  readonly spool_max_bytes: number;
  readonly dropped_spool_full: number;
  readonly dropped_not_provisioned: number;
  readonly dropped_refused: number;
  readonly source_errors: number;
  readonly send_failures: number;
  readonly paused: boolean;
  readonly last_error: string | null;
}

/** Encodes a batch for the wire: metrics as a JSON array, logs and audit as NDJSON; gzip above
 *  GZIP_THRESHOLD_BYTES. Returns the body and its headers (no credential). */
export function encodeBatch(kind: TelemetryKind, batchId: string, lines: readonly string[], sentAt: string): { body: Buffer; headers: Record<string, string> } {
  const text = kind === 'metrics' ? `[${lines.join(',')}]` : lines.join('\n') + '\n';
  const raw = Buffer.from(text, 'utf8');
  const headers: Record<string, string> = {
    'content-type': kind === 'metrics' ? 'application/json' : 'application/x-ndjson',
    [SENT_AT_HEADER]: sentAt,
    [BATCH_ID_HEADER]: batchId,
  };
  if (raw.length <= GZIP_THRESHOLD_BYTES) return { body: raw, headers };
  return { body: gzipSync(raw), headers: { ...headers, 'content-encoding': 'gzip' } };
}

/** What an HTTP answer means for the batch (upstream log-forwarding "Ingest errors"). */
export function outcomeOf(status: number, text: string): SendOutcome {
  if (status >= 200 && status < 300) return { kind: 'accepted' };
  if (status === 501) return { kind: 'not_provisioned' };
  let code = '';
  try {
    code = String((JSON.parse(text) as { code?: unknown }).code ?? '');
  } catch {
    // not a problem body
  }
  const reason = `HTTP ${status}${code === '' ? '' : ` ${code}`}`;
  // The header is stamped anew on every attempt, and 415 is the deployment's, not the batch's.
  if (code === 'ingest_sent_at_invalid' || status === 415) return { kind: 'retry', reason };
  if (status === 401 || status === 408 || status === 429 || status >= 500) return { kind: 'retry', reason };
  return { kind: 'refused', reason };
}

/** One kind's pipeline. Not reentrant: the driver awaits each tick. */
export class TelemetryPipeline {
  readonly kind: TelemetryKind;
  readonly #o: PipelineOptions;
  readonly #pauseMs: number;
  #buffer: string[] = [];
  #nextCollect: number | undefined;
  #nextReport: number | undefined;
  #pausedUntil = -Infinity;
  #collected = 0;
  #sentRecords = 0;
  #sentBatches = 0;
  #droppedNotProvisioned = 0;
  #droppedRefused = 0;
  #sourceErrors = 0;
  #sendFailures = 0;
  #lastError: string | null = null;
  #now = 0;

  constructor(o: PipelineOptions) {
    if (!(o.batchSize >= 1)) throw new RangeError(`expected batchSize >= 1, got ${o.batchSize}`);
    this.kind = o.kind;
    this.#o = o;
    this.#pauseMs = o.pauseMs ?? NOT_PROVISIONED_PAUSE_MS;
  }

  /**
   * Runs what is due at `now` (ms, any monotonic clock): a collection (the first one at once),
   * then a report when the report interval passed or a full batch is buffered. Returns the next
   * deadline.
   */
  async tick(now: number): Promise<number> {
    this.#now = now;
    this.#nextCollect ??= now;
    this.#nextReport ??= now + this.#o.reportIntervalMs;
    if (now >= this.#nextCollect) {
      await this.#collect();
      this.#nextCollect = now + this.#o.collectIntervalMs;
    }
    if (now >= this.#nextReport || this.#buffer.length >= this.#o.batchSize) {
      await this.flush(now);
      this.#nextReport = now + this.#o.reportIntervalMs;
    }
    return Math.min(this.#nextCollect, this.#nextReport);
  }

  async #collect(): Promise<void> {
    for (const source of this.#o.sources) {
      try {
        for (const r of await source()) this.#buffer.push(JSON.stringify(r));
      } catch (err) {
        this.#sourceErrors++;
        this.#lastError = `source: ${(err as Error).message}`;
        this.#o.log.error(`telemetry ${this.kind}: a source failed: ${(err as Error).message}`);
      }
    }
  }

  /** Moves the buffer into the spool (batches of batchSize); during a 501 pause drops it. */
  spoolBuffer(now = this.#now): void {
    const lines = this.#buffer;
    this.#buffer = [];
    this.#collected += lines.length;
    if (now < this.#pausedUntil) {
      this.#droppedNotProvisioned += lines.length;
      return;
    }
    for (let i = 0; i < lines.length; i += this.#o.batchSize) this.#o.spool.append(lines.slice(i, i + this.#o.batchSize));
  }

  /** Spools the buffer and sends the spool oldest first until a send fails. */
  async flush(now: number): Promise<void> {
    this.spoolBuffer(now);
    if (now < this.#pausedUntil) return;
    const spool = this.#o.spool;
    for (const batch of [...spool.batches] as SpooledBatch[]) {
      const lines = spool.read(batch);
      if (lines === undefined) continue;
      const out = await this.#o.send(this.kind, batch.id, lines);
      switch (out.kind) {
        case 'accepted':
          if (this.#pausedUntil !== -Infinity) this.#o.log.info(`telemetry ${this.kind}: the control plane takes it again`);
          this.#pausedUntil = -Infinity;
          spool.remove(batch);
          this.#sentRecords += batch.records;
          this.#sentBatches++;
          break;
        case 'not_provisioned':
          spool.remove(batch);
          this.#droppedNotProvisioned += batch.records;
          if (this.#pausedUntil === -Infinity) this.#o.log.info(`telemetry ${this.kind}: the control plane has no ${this.kind} ingest (501); dropping, next try in ${Math.round(this.#pauseMs / 1000)} s`);
          this.#pausedUntil = now + this.#pauseMs;
          return;
        case 'refused':
          spool.remove(batch);
          this.#droppedRefused += batch.records;
          this.#lastError = out.reason;
          this.#o.log.error(`telemetry ${this.kind}: batch of ${batch.records} refused (${out.reason}); dropped`);
          break;
        case 'retry':
          this.#sendFailures++;
          this.#lastError = out.reason;
          this.#o.log.verbose(`telemetry ${this.kind}: upload failed (${out.reason}); ${spool.records} records wait in the spool`);
          return;
      }
    }
  }

  /** The counters. */
  status(): PipelineStatus {
    const s = this.#o.spool;
    return {
      kind: this.kind,
      collected: this.#collected + this.#buffer.length,
      sent_records: this.#sentRecords,
      sent_batches: this.#sentBatches,
      buffered: this.#buffer.length,
      spooled_records: s.records,
      spooled_batches: s.batches.length,
      spool_bytes: s.bytes,
      spool_max_bytes: s.maxBytes,
      dropped_spool_full: s.droppedRecords,
      dropped_not_provisioned: this.#droppedNotProvisioned,
      dropped_refused: this.#droppedRefused,
      source_errors: this.#sourceErrors,
      send_failures: this.#sendFailures,
      paused: this.#now < this.#pausedUntil,
      last_error: this.#lastError,
    };
  }
}
