// The Kubernetes audit-log reader (upstream's K8sAuditLogReader, deployment docs "Kubernetes"):
// follows a JSON-lines audit log (/var/log/kubernetes/audit/audit.log by default) across
// rotation, both rename+create (the old file is read to its end, then the new one from 0) and
// copytruncate (the file shrinks under our offset: read again from 0; lines written after the copy
// and before our next poll that grow the file past the old offset again are not noticed as a
// truncation, as with every offset-based follower), and parses each line.
// Its events go to the audit upload (src/agent/telemetry/, source "k8s-audit") and are counted in `status`.
// Hostile input is counted, never fatal: a malformed line, a line over the length cap (skipped
// to its newline without buffering it), a read error. Memory is bounded by the line cap.

import { open, stat, type FileHandle } from 'node:fs/promises';

/** The audit log kube-apiserver writes with --audit-log-path on most distributions. */
export const DEFAULT_AUDIT_LOG_PATH = '/var/log/kubernetes/audit/audit.log';
/** Longest line kept (bytes): audit events with request bodies can be large; longer ones are skipped. */
export const MAX_AUDIT_LINE = 256 * 1024;
/** Bytes read per poll at most; the rest is read by the next poll (a backlog does not stall the loop). */
const MAX_READ_PER_POLL = 4 << 20;
const CHUNK = 64 * 1024;

/** The counters and state `status` shows. */
export interface AuditLogStatus {
  readonly path: string;
  /** following: open; missing: not there (yet); error: the last open/read failed (reason in last_error). */
  readonly state: 'following' | 'missing' | 'error';
  readonly events: number;
  readonly malformed_lines: number;
  readonly oversized_lines: number;
  readonly rotations: number;
  readonly truncations: number;
  readonly read_errors: number;
  /** The stageTimestamp (else requestReceivedTimestamp) of the last event, as written. */
  readonly last_event_at: string | null;
  readonly last_error: string | null;
}

/** Options of {@link AuditLogReader}. */
export interface AuditLogOptions {
  readonly path?: string;
  /** Default MAX_AUDIT_LINE. */
  readonly maxLineBytes?: number;
  /** Called with each parsed event (a JSON object); for the audit upload once it exists. */
  readonly onEvent?: (event: Record<string, unknown>) => void;
}

/**
 * Follows one audit log. Call {@link poll} on a timer (or {@link start}); each poll reads what was
 * appended since the last one. Starts at the beginning of the file it first opens.
 */
export class AuditLogReader {
  readonly path: string;
  readonly #maxLine: number;
  readonly #onEvent: AuditLogOptions['onEvent'];
  #fh: FileHandle | undefined;
  #ino = -1;
  #offset = 0;
  /** Bytes of the current line not yet ended by a newline (at most maxLine). */
  #partial: Buffer[] = [];
  #partialBytes = 0;
  /** The current line went over the cap: drop bytes until its newline. */
  #skipping = false;
  #state: AuditLogStatus['state'] = 'missing';
  #lastError: string | null = null;
  #lastEventAt: string | null = null;
  #polling: Promise<void> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  readonly counters = { events: 0, malformed: 0, oversized: 0, rotations: 0, truncations: 0, readErrors: 0 };

  /** Throws RangeError for a maxLineBytes below 1. */
  constructor(opts: AuditLogOptions = {}) {
    this.path = opts.path ?? DEFAULT_AUDIT_LOG_PATH;
    this.#maxLine = opts.maxLineBytes ?? MAX_AUDIT_LINE;
    if (!Number.isInteger(this.#maxLine) || this.#maxLine < 1) throw new RangeError(`expected maxLineBytes to be a positive integer, got ${String(opts.maxLineBytes)}`);
    this.#onEvent = opts.onEvent;
  }

  /** Polls every `intervalMs` until {@link close}; the timer does not keep the process alive. */
  start(intervalMs: number): void {
    if (this.#timer !== undefined) return;
    void this.poll();
    this.#timer = setInterval(() => void this.poll(), intervalMs);
    this.#timer.unref();
  }

  /** Reads what was appended since the last poll; concurrent calls share one read. Never rejects. */
  poll(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#polling ??= this.#poll().finally(() => (this.#polling = undefined));
    return this.#polling;
  }

  async #poll(): Promise<void> {
    try {
      if (this.#fh === undefined && !(await this.#open())) return;
      let budget = MAX_READ_PER_POLL;
      budget -= await this.#drain(budget);
      // Rotated away (rename+create)? The old file was read to its end above; switch to the new one.
      const now = await stat(this.path).catch(() => undefined);
      if (now !== undefined && now.ino !== this.#ino) {
        this.counters.rotations++;
        await this.#closeFile();
        this.#resetLine();
        if (await this.#open()) await this.#drain(budget);
      }
    } catch (err) {
      this.counters.readErrors++;
      this.#state = 'error';
      this.#lastError = (err as Error).message;
      await this.#closeFile();
    }
  }

  /** Opens the path at offset 0; false (state missing) when it does not exist. */
  async #open(): Promise<boolean> {
    try {
      this.#fh = await open(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.#state = 'missing';
        return false;
      }
      throw err;
    }
    this.#ino = (await this.#fh.stat()).ino;
    this.#offset = 0;
    this.#state = 'following';
    this.#lastError = null;
    return true;
  }

  async #closeFile(): Promise<void> {
    const fh = this.#fh;
    this.#fh = undefined;
    this.#ino = -1;
    await fh?.close().catch(() => undefined);
  }

  #resetLine(): void {
    this.#partial = [];
    this.#partialBytes = 0;
    this.#skipping = false;
  }

  /** Reads the open file from the offset to its end (at most `budget` bytes); returns bytes read. */
  async #drain(budget: number): Promise<number> {
    const fh = this.#fh!;
    const { size } = await fh.stat();
    if (size < this.#offset) {
      // copytruncate: the file was emptied (and perhaps written again) under us.
      this.counters.truncations++;
      this.#offset = 0;
      this.#resetLine();
    }
    const buf = Buffer.allocUnsafe(CHUNK);
    let total = 0;
    while (total < budget) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, budget - total), this.#offset);
      if (bytesRead === 0) break;
      this.#offset += bytesRead;
      total += bytesRead;
      this.#feed(buf.subarray(0, bytesRead));
    }
    return total;
  }

  /** Splits `chunk` into lines; keeps an unfinished line (bounded) for the next read. */
  #feed(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      if (!this.#skipping) {
        if (this.#partialBytes + (end - start) > this.#maxLine) {
          this.counters.oversized++;
          this.#skipping = true;
          this.#partial = [];
          this.#partialBytes = 0;
        } else if (nl >= 0) {
          const line = this.#partialBytes === 0 ? chunk.subarray(start, end) : Buffer.concat([...this.#partial, chunk.subarray(start, end)]);
          this.#partial = [];
          this.#partialBytes = 0;
          this.#line(line);
        } else if (end > start) {
          // Copied: the read buffer is reused by the next read.
          this.#partial.push(Buffer.from(chunk.subarray(start, end)));
          this.#partialBytes += end - start;
        }
      }
      if (nl < 0) return;
      this.#skipping = false;
      start = nl + 1;
    }
  }

  #line(line: Buffer): void {
    const text = line.toString('utf8').trim();
    if (text === '') return;
    let event: unknown;
    try {
      event = JSON.parse(text);
    } catch {
      this.counters.malformed++;
      return;
    }
    if (event === null || typeof event !== 'object' || Array.isArray(event)) {
      this.counters.malformed++;
      return;
    }
    const e = event as Record<string, unknown>;
    this.counters.events++;
    const at = typeof e['stageTimestamp'] === 'string' ? e['stageTimestamp'] : e['requestReceivedTimestamp'];
    if (typeof at === 'string' && at.length <= 64) this.#lastEventAt = at;
    this.#onEvent?.(e);
  }

  /** The counters and state for `status`. */
  status(): AuditLogStatus {
    const c = this.counters;
    return {
      path: this.path,
      state: this.#state,
      events: c.events,
      malformed_lines: c.malformed,
      oversized_lines: c.oversized,
      rotations: c.rotations,
      truncations: c.truncations,
      read_errors: c.readErrors,
      last_event_at: this.#lastEventAt,
      last_error: this.#lastError,
    };
  }

  /** Stops the timer and closes the file (after a poll in progress). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#polling;
    await this.#closeFile();
  }
}
