// The bounded on-disk spool of one telemetry kind (docs/operations.md "Telemetry"): each batch is
// one file in <data_dir>/telemetry/<kind>/, named by a sequence number (the order of sending), a
// random tag and its record count; the batch id sent with it is derived from the name, so a batch
// re-sent after a restart or a lost 202 carries the same id and the control plane stores it once.
// Past maxBytes the oldest batches are deleted and their records counted as dropped: a long
// control-plane outage costs the oldest telemetry, never unbounded disk.

import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const NAME = /^(\d{12})_([0-9a-f]{8})_(\d{1,6})\.ndjson$/;

/** One spooled batch. */
export interface SpooledBatch {
  readonly file: string;
  readonly seq: number;
  /** Sent as X-Plexd-Batch-Id. */
  readonly id: string;
  readonly records: number;
  readonly bytes: number;
}

/** A directory of batches, oldest first, at most maxBytes in total (one batch always fits). */
export class Spool {
  readonly dir: string;
  readonly maxBytes: number;
  #batches: SpooledBatch[] = [];
  #bytes = 0;
  #nextSeq = 1;
  /** Records and batches deleted to stay under maxBytes, and files found unreadable. */
  droppedRecords = 0;
  droppedBatches = 0;

  /** Opens (creating, 0700) `dir` and takes the batches already there. Throws on an unusable dir. */
  constructor(dir: string, maxBytes: number) {
    if (!(maxBytes > 0)) throw new RangeError(`expected maxBytes > 0, got ${maxBytes}`);
    this.dir = dir;
    this.maxBytes = maxBytes;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(dir).sort()) {
      const m = NAME.exec(name);
      if (m === null) {
        // A temp file of a write cut short by a crash: never renamed, never announced.
        if (name.endsWith('.tmp')) unlinkSync(join(dir, name));
        continue;
      }
      const file = join(dir, name);
      const seq = Number(m[1]);
      this.#batches.push({ file, seq, id: `${m[2]}-${m[1]}`, records: Number(m[3]), bytes: statSync(file).size });
      this.#bytes += statSync(file).size;
      this.#nextSeq = Math.max(this.#nextSeq, seq + 1);
    }
    this.#trim();
  }

  /** Batches waiting, oldest first. */
  get batches(): readonly SpooledBatch[] {
    return this.#batches;
  }

  /** Records waiting. */
  get records(): number {
    return this.#batches.reduce((n, b) => n + b.records, 0);
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Writes a batch of `records` NDJSON lines (atomically: temp file, rename), then drops the
   *  oldest batches past maxBytes. Returns the batch. */
  append(lines: readonly string[]): SpooledBatch {
    if (lines.length === 0 || lines.length > 999_999) throw new RangeError(`expected 1..999999 records, got ${lines.length}`);
    const seq = this.#nextSeq++;
    const tag = randomBytes(4).toString('hex');
    const seqText = String(seq).padStart(12, '0');
    const file = join(this.dir, `${seqText}_${tag}_${lines.length}.ndjson`);
    const text = lines.join('\n') + '\n';
    writeFileSync(`${file}.tmp`, text, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
    const batch: SpooledBatch = { file, seq, id: `${tag}-${seqText}`, records: lines.length, bytes: Buffer.byteLength(text) };
    this.#batches.push(batch);
    this.#bytes += batch.bytes;
    this.#trim();
    return batch;
  }

  /** The NDJSON lines of a batch; undefined (and the batch removed, its records counted as
   *  dropped) when its file is gone or unreadable. */
  read(batch: SpooledBatch): string[] | undefined {
    try {
      return readFileSync(batch.file, 'utf8').split('\n').filter((l) => l !== '');
    } catch {
      this.remove(batch);
      this.droppedRecords += batch.records;
      this.droppedBatches++;
      return undefined;
    }
  }

  /** Deletes a batch (sent, or dropped by the caller). */
  remove(batch: SpooledBatch): void {
    const i = this.#batches.indexOf(batch);
    if (i < 0) return;
    this.#batches.splice(i, 1);
    this.#bytes -= batch.bytes;
    try {
      unlinkSync(batch.file);
    } catch {
      // already gone
    }
  }

  /** Drops the oldest batches while over maxBytes, keeping the newest one. */
  #trim(): void {
    while (this.#bytes > this.maxBytes && this.#batches.length > 1) {
      const oldest = this.#batches[0]!;
      this.remove(oldest);
      this.droppedRecords += oldest.records;
      this.droppedBatches++;
    }
  }
}
