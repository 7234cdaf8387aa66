// The node API's state routes (plexd nodeapi: /v1/state, metadata, data, secrets, report) and the
// report syncer (docs/operations.md "Node state and secrets"). Metadata and data come from the
// state pull's `state` block; a secret is fetched from the control plane on every request and
// opened with the node secret key in memory, never written to disk or to the log; reports written
// locally reach the control plane through ReportSyncer (debounced, 501 -> quiet for 5 minutes).

import { openSecretEnvelope } from '../api/secret-envelope.js';
import { formatRfc3339 } from '../api/fields.js';
import { MAX_REPORT_VALUE_BYTES, SECRET_KEY_PATTERN, STATE_KEY_PATTERN, type NodeStateBlock, type NodeStateReportRequest } from '../api/types.js';
import type { LocalReply, LocalRequest, RouteResult, Routes } from './local-http.js';

/** A report as the node API holds it. */
export interface ReportEntry {
  readonly key: string;
  readonly content_type: string;
  /** Any JSON value; its serialization is at most MAX_REPORT_VALUE_BYTES. */
  readonly payload: unknown;
  /** 1 on creation, +1 per update. */
  readonly version: number;
  readonly updated_at: string;
}

/** A data entry as the node API serves it: the state's opaque string as a JSON string payload. */
export interface DataEntry {
  readonly key: string;
  readonly content_type: string;
  readonly payload: string;
  readonly version: number;
  readonly updated_at: string;
}

/** What the syncer and the secret route need from the control plane (ControlClient has it). */
export interface NodeStateClient {
  fetchSecret(name: string, version?: number): Promise<{ envelope: Buffer; version: number; kid: string }>;
  putStateReport(key: string, req: NodeStateReportRequest): Promise<void>;
  deleteStateReport(key: string): Promise<void>;
}

/** An error of the client: ApiError's fields the routes and the syncer look at. */
interface ClientError {
  readonly kind?: string;
  readonly status?: number;
  readonly problemCode?: string;
  readonly retryAfterMs?: number;
}

/** Syncer timing (ms). Upstream: debounce 5 s, retry 30 s, 501 quiets 5 min. */
export interface SyncTiming {
  readonly debounceMs: number;
  readonly retryMs: number;
  readonly notProvisionedMs: number;
}

/** Default SyncTiming. */
export const SYNC_TIMING: SyncTiming = { debounceMs: 5000, retryMs: 30_000, notProvisionedMs: 300_000 };

/**
 * Ships report changes to the control plane: per key, last write wins; a flush runs `debounceMs`
 * after the first change of a burst and reconciles keys in ascending order. Time is an argument
 * (the caller's clock): `deadline()` says when `run(now)` next has work.
 */
export class ReportSyncer {
  readonly #client: NodeStateClient;
  readonly #timing: SyncTiming;
  readonly #log: (line: string) => void;
  /** key -> entry to PUT, or null to DELETE. */
  readonly #dirty = new Map<string, ReportEntry | null>();
  #due: number | undefined;
  #quietUntil = 0;
  #running = false;
  readonly counters = { puts: 0, deletes: 0, failures: 0, dropped: 0, notProvisioned: 0 };

  constructor(client: NodeStateClient, timing: SyncTiming = SYNC_TIMING, log: (line: string) => void = () => {}) {
    this.#client = client;
    this.#timing = timing;
    this.#log = log;
  }

  /** Records a change of `key` (null: deleted) at `now`. */
  change(key: string, entry: ReportEntry | null, now: number): void {
    this.#dirty.set(key, entry);
    this.#due ??= Math.max(now + this.#timing.debounceMs, this.#quietUntil);
  }

  /** When run() next has work (monotonic ms), or undefined. */
  deadline(): number | undefined {
    return this.#due;
  }

  /** Keys not yet accepted by the control plane. */
  pending(): string[] {
    return [...this.#dirty.keys()].sort();
  }

  /** Flushes when due at `now`. Never rejects. */
  async run(now: number): Promise<void> {
    if (this.#running || this.#due === undefined || now < this.#due) return;
    this.#running = true;
    this.#due = undefined;
    try {
      for (const key of [...this.#dirty.keys()].sort()) {
        const entry = this.#dirty.get(key);
        if (entry === undefined) continue;
        try {
          if (entry === null) await this.#client.deleteStateReport(key);
          else await this.#client.putStateReport(key, { value: JSON.stringify(entry.payload) });
          if (entry === null) this.counters.deletes++;
          else this.counters.puts++;
          this.#settle(key, entry);
        } catch (err) {
          const e = err as ClientError;
          if (entry === null && e.status === 404) {
            this.#settle(key, entry);
          } else if (e.status === 400) {
            this.counters.dropped++;
            this.#log(`report ${key}: refused by the control plane (${e.problemCode ?? 'HTTP 400'}); dropped`);
            this.#settle(key, entry);
          } else if (e.status === 501) {
            this.counters.notProvisioned++;
            if (this.#quietUntil <= now) this.#log(`reports: the control plane does not take reports (501); trying again in ${this.#timing.notProvisionedMs / 1000} s`);
            this.#quietUntil = now + this.#timing.notProvisionedMs;
            this.#due = this.#quietUntil;
            return;
          } else {
            this.counters.failures++;
            this.#log(`report ${key}: ${(err as Error).message}; retrying in ${this.#timing.retryMs / 1000} s`);
            this.#due = Math.min(this.#due ?? Infinity, now + this.#timing.retryMs);
          }
        }
      }
    } finally {
      this.#running = false;
    }
  }

  /** Clears `key` if it still holds what was sent (a write that raced the flush stays dirty). */
  #settle(key: string, sent: ReportEntry | null): void {
    if (this.#dirty.get(key) === sent) this.#dirty.delete(key);
  }
}

/** Options of NodeState. */
export interface NodeStateOptions {
  readonly client: NodeStateClient;
  /** The current node secret key (32 bytes); read per request (it changes on re-registration). */
  readonly nsk: () => Uint8Array;
  /** Monotonic ms (for the syncer) and wall ms (for updated_at). */
  readonly clock: { now(): number; wallMs(): number };
  readonly timing?: SyncTiming;
  readonly log?: (line: string) => void;
}

const DATA_CONTENT_TYPE = 'text/plain; charset=utf-8';

function err(status: number, message: string): RouteResult {
  return [status, { error: message }];
}

/** A path segment decoded and checked against `pattern`, or undefined. */
function keyOf(rest: string, pattern: RegExp): string | undefined {
  let key: string;
  try {
    key = decodeURIComponent(rest);
  } catch {
    return undefined;
  }
  return pattern.test(key) ? key : undefined;
}

/** The node's state as the node API serves it. */
export class NodeState {
  readonly #o: NodeStateOptions;
  readonly syncer: ReportSyncer;
  #metadata = new Map<string, string>();
  #data = new Map<string, DataEntry>();
  readonly #reports = new Map<string, ReportEntry>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(o: NodeStateOptions) {
    this.#o = o;
    this.syncer = new ReportSyncer(o.client, o.timing ?? SYNC_TIMING, o.log);
  }

  /** Takes the `state` block of a state pull: null clears metadata and data, absent (an older
   *  control plane) keeps them. A data entry's version grows when its value changes. */
  applyState(block: NodeStateBlock | null | undefined): void {
    if (block === undefined) return;
    this.#metadata = new Map((block?.metadata ?? []).map((e) => [e.key, e.value]));
    const now = formatRfc3339(this.#o.clock.wallMs());
    const data = new Map<string, DataEntry>();
    for (const e of block?.data ?? []) {
      const old = this.#data.get(e.key);
      data.set(e.key, old !== undefined && old.payload === e.value ? old : { key: e.key, content_type: DATA_CONTENT_TYPE, payload: e.value, version: (old?.version ?? 0) + 1, updated_at: now });
    }
    this.#data = data;
  }

  /** Stops the syncer's timer (pending reports are not sent). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    const due = this.syncer.deadline();
    if (due === undefined) return;
    this.#timer = setTimeout(() => {
      void this.syncer.run(this.#o.clock.now()).then(() => this.#schedule());
    }, Math.max(0, due - this.#o.clock.now()));
    this.#timer.unref();
  }

  /** Writes a report (as PUT /v1/state/report/{key}); `ifMatch` the expected version (0: must
   *  not exist). Returns the entry, or an error reply. */
  putReport(key: string, contentType: string, payload: unknown, ifMatch?: number): ReportEntry | LocalReply {
    const old = this.#reports.get(key);
    if (ifMatch !== undefined && (old?.version ?? 0) !== ifMatch) return { status: 409, json: { error: 'version_conflict', version: old?.version ?? 0 } };
    const entry: ReportEntry = { key, content_type: contentType, payload, version: (old?.version ?? 0) + 1, updated_at: formatRfc3339(this.#o.clock.wallMs()) };
    this.#reports.set(key, entry);
    this.syncer.change(key, entry, this.#o.clock.now());
    this.#schedule();
    return entry;
  }

  /** Removes a report; false when there was none. */
  deleteReport(key: string): boolean {
    if (!this.#reports.delete(key)) return false;
    this.syncer.change(key, null, this.#o.clock.now());
    this.#schedule();
    return true;
  }

  /** GET /v1/state/secrets/{key}: fetched and opened now, answered, forgotten. */
  async #secret(req: LocalRequest): Promise<RouteResult> {
    const key = keyOf(req.rest, SECRET_KEY_PATTERN);
    if (key === undefined) return err(400, `secret key: expected ${SECRET_KEY_PATTERN.source}`);
    const v = req.query.get('version');
    if (v !== null && !/^[1-9][0-9]{0,8}$/.test(v)) return err(400, 'version: expected a positive integer');
    let got: { envelope: Buffer; version: number };
    try {
      got = await this.#o.client.fetchSecret(key, v === null ? undefined : Number(v));
    } catch (e) {
      const ce = e as ClientError;
      if (ce.status === 403) return err(403, 'this node may not read this secret');
      if (ce.status === 404) return err(404, 'secret not found');
      if (ce.status === 429) return { status: 429, json: { error: 'rate limited by the control plane' }, ...(ce.retryAfterMs === undefined ? {} : { headers: { 'retry-after': String(Math.ceil(ce.retryAfterMs / 1000)) } }) };
      return err(503, 'control plane unavailable');
    }
    const plain = openSecretEnvelope(this.#o.nsk(), got.envelope);
    if (plain === undefined) return err(500, 'decryption failed');
    try {
      return [200, { key, value: plain.toString('utf8'), version: got.version }];
    } finally {
      plain.fill(0);
    }
  }

  #reportPut(req: LocalRequest, key: string): RouteResult {
    let body: unknown;
    try {
      body = JSON.parse(req.body.toString('utf8')) as unknown;
    } catch {
      return err(400, 'invalid JSON');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return err(400, 'expected {"content_type", "payload"}');
    const { content_type: ct, payload } = body as { content_type?: unknown; payload?: unknown };
    if (typeof ct !== 'string' || ct === '' || ct.length > 128) return err(400, 'content_type: required, at most 128 characters');
    if (payload === undefined) return err(400, 'payload: required');
    if (Buffer.byteLength(JSON.stringify(payload)) > MAX_REPORT_VALUE_BYTES) return err(400, `payload: more than ${MAX_REPORT_VALUE_BYTES} bytes`);
    const im = req.headers['if-match'];
    if (im !== undefined && (typeof im !== 'string' || !/^[0-9]{1,9}$/.test(im.replace(/^"|"$/g, '')))) return err(400, 'If-Match: expected an integer version');
    const out = this.putReport(key, ct, payload, im === undefined ? undefined : Number(im.replace(/^"|"$/g, '')));
    return 'status' in out ? out : [200, out];
  }

  /** The node API routes of the state. */
  routes(): Routes {
    const summaryOf = (m: Map<string, { key: string; version: number; content_type?: string }>) =>
      [...m.values()].sort((a, b) => (a.key < b.key ? -1 : 1)).map((e) => ({ key: e.key, version: e.version, ...(e.content_type === undefined ? {} : { content_type: e.content_type }) }));
    return {
      '/v1/state': () => [200, { metadata: Object.fromEntries(this.#metadata), data_keys: summaryOf(this.#data), secret_keys: [], report_keys: summaryOf(this.#reports).map(({ key, version }) => ({ key, version })) }],
      '/v1/state/metadata': () => [200, Object.fromEntries(this.#metadata)],
      '/v1/state/metadata/*': (req) => {
        const key = keyOf(req.rest, STATE_KEY_PATTERN);
        const value = key === undefined ? undefined : this.#metadata.get(key);
        return value === undefined ? err(404, 'not found') : [200, { key, value }];
      },
      '/v1/state/data': () => [200, summaryOf(this.#data)],
      '/v1/state/data/*': (req) => {
        const key = keyOf(req.rest, STATE_KEY_PATTERN);
        const e = key === undefined ? undefined : this.#data.get(key);
        return e === undefined ? err(404, 'not found') : [200, e];
      },
      // Upstream keeps a secret index that nothing feeds any more; the list is always empty.
      '/v1/state/secrets': () => [200, []],
      '/v1/state/secrets/*': (req) => this.#secret(req),
      '/v1/state/report': () => [200, summaryOf(this.#reports).map(({ key, version }) => ({ key, version }))],
      '/v1/state/report/*': {
        GET: (req) => {
          const key = keyOf(req.rest, STATE_KEY_PATTERN);
          if (key === undefined) return err(400, `report key: expected ${STATE_KEY_PATTERN.source}`);
          const e = this.#reports.get(key);
          return e === undefined ? err(404, 'not found') : [200, e];
        },
        PUT: (req) => {
          const key = keyOf(req.rest, STATE_KEY_PATTERN);
          return key === undefined ? err(400, `report key: expected ${STATE_KEY_PATTERN.source}`) : this.#reportPut(req, key);
        },
        DELETE: (req) => {
          const key = keyOf(req.rest, STATE_KEY_PATTERN);
          if (key === undefined) return err(400, `report key: expected ${STATE_KEY_PATTERN.source}`);
          return this.deleteReport(key) ? { status: 204 } : err(404, 'not found');
        },
      },
    };
  }
}
