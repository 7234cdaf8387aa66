// The agent's telemetry upload (issue 18; docs/operations.md "Telemetry"): three pipelines
// (metrics, logs, audit) with their sources, each spooled under <data_dir>/telemetry/<kind> and
// posted to the control plane with the node credential. The agent feeds it its own log lines,
// its security events and the Kubernetes audit events; `log-status` and `audit` read status().

import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TelemetryKind } from '../../api/index.js';
import type { ControlClient } from '../../control/api-client.js';
import type { Logger } from '../../log/logger.js';
import type { Routes } from '../local-http.js';
import type { TelemetrySettings, TelemetryKindSettings } from '../config.js';
import { encodeBatch, outcomeOf, TelemetryPipeline, type PipelineStatus, type Sender, type Source } from './pipeline.js';
import {
  agentMetrics,
  FileSource,
  HOSTNAME,
  journalctlAvailable,
  JournaldSource,
  k8sAuditEntry,
  passes,
  Ring,
  securityAuditEntry,
  systemMetrics,
  tunnelMetric,
  type SecurityEventType,
} from './sources.js';
import { Spool } from './spool.js';
import type { AuditEntry, LogLine, LogSeverity } from '../../api/index.js';

/** Our own log lines' unit name. */
export const OWN_UNIT = 'plexd-userspace';

/** Options of a {@link TelemetryService}. */
export interface TelemetryServiceOptions {
  readonly settings: TelemetrySettings;
  readonly dataDir: string;
  readonly client: ControlClient;
  readonly log: Logger;
  /** Monotonic ms (the agent's clock). */
  readonly now: () => number;
  /** Per-peer tunnel counters for the `tunnel` group. */
  readonly tunnels?: () => Array<{ peerId: string; lastHandshakeMs: number | null; rxBytes: number; txBytes: number; staleAfterMs: number }>;
  /** Test hook: intervals in ms instead of the settings' seconds. */
  readonly intervalsMs?: Partial<Record<TelemetryKind, { readonly collect: number; readonly report: number }>>;
  /** Test hook: run journalctl (default the real one when on PATH; null: no journald source). */
  readonly journal?: ((args: readonly string[]) => Promise<string>) | null;
}

/** The `log-status` / `audit` documents' extra source facts. */
export interface TelemetryStatus {
  readonly metrics: (PipelineStatus & { enabled: true }) | { enabled: false };
  readonly logs: ((PipelineStatus & { enabled: true }) | { enabled: false }) & { sources: Record<string, unknown>; filter: Record<string, unknown> };
  readonly audit: ((PipelineStatus & { enabled: true }) | { enabled: false }) & { sources: Record<string, unknown> };
}

/** The three pipelines and their sources. */
export class TelemetryService {
  readonly #o: TelemetryServiceOptions;
  readonly #pipelines = new Map<TelemetryKind, TelemetryPipeline>();
  readonly #ownLog = new Ring<LogLine>();
  readonly #audit = new Ring<AuditEntry>();
  readonly #journal: JournaldSource | undefined;
  readonly #files: FileSource | undefined;
  readonly #startedWall = Date.now();
  #k8sAudit = false;
  readonly #stop = new AbortController();
  #loops: Promise<void>[] = [];

  /** Opens the spools (creating <data_dir>/telemetry/<kind>, 0700). Throws on an unusable data_dir. */
  constructor(o: TelemetryServiceOptions) {
    this.#o = o;
    const s = o.settings;
    const journalRun = o.journal === undefined ? (journalctlAvailable() ? undefined : null) : o.journal;
    if (s.logs.enabled) {
      if (journalRun === null) o.log.info('journald not available, journald log source disabled');
      else this.#journal = new JournaldSource(journalRun);
      if (s.logs.filePatterns.length > 0) this.#files = new FileSource(s.logs.filePatterns);
    }
    const send: Sender = async (kind, batchId, lines) => {
      const { body, headers } = encodeBatch(kind, batchId, lines, new Date().toISOString());
      try {
        const r = await o.client.postTelemetry(kind, body, headers, this.#stop.signal);
        return outcomeOf(r.status, r.text);
      } catch (err) {
        return { kind: 'retry', reason: (err as Error).message };
      }
    };
    const make = (kind: TelemetryKind, k: TelemetryKindSettings, sources: Source[]) => {
      if (!k.enabled) return;
      const iv = o.intervalsMs?.[kind];
      this.#pipelines.set(kind, new TelemetryPipeline({
        kind,
        collectIntervalMs: iv?.collect ?? k.collectIntervalS * 1000,
        reportIntervalMs: iv?.report ?? k.reportIntervalS * 1000,
        batchSize: k.batchSize,
        sources,
        spool: new Spool(join(o.dataDir, 'telemetry', kind), k.spoolMaxBytes),
        send,
        log: o.log,
      }));
    };
    const filter = { minSeverity: s.logs.minSeverity, includeUnits: s.logs.includeUnits, excludeUnits: s.logs.excludeUnits };
    const filtered = (fn: () => LogLine[] | Promise<LogLine[]>): Source => async () => (await fn()).filter((l) => passes(filter, l));
    make('metrics', s.metrics, [
      () => {
        const now = new Date();
        return [systemMetrics(now, o.dataDir), agentMetrics(now, this.#startedWall, 0), ...(o.tunnels?.() ?? []).map((t) => tunnelMetric(now, t))];
      },
    ]);
    make('logs', s.logs, [
      filtered(() => this.#ownLog.drain()),
      ...(this.#journal === undefined ? [] : [filtered(() => this.#journal!.collect())]),
      ...(this.#files === undefined ? [] : [filtered(() => this.#files!.collect())]),
    ]);
    make('audit', s.audit, [() => this.#audit.drain()]);
  }

  /** Starts the pipelines' loops. */
  start(): void {
    for (const p of this.#pipelines.values()) this.#loops.push(this.#run(p));
  }

  async #run(p: TelemetryPipeline): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      let next: number;
      try {
        next = await p.tick(this.#o.now());
      } catch (err) {
        // A spool write failing (disk full): say so, try again in a while.
        this.#o.log.error(`telemetry ${p.kind}: ${(err as Error).message}`);
        next = this.#o.now() + 10_000;
      }
      await sleep(Math.max(10, next - this.#o.now()), undefined, { signal }).catch(() => undefined);
    }
  }

  /** One of our own log lines (from the tapped logger). */
  ownLog(severity: LogSeverity, message: string): void {
    if (!this.#pipelines.has('logs')) return;
    this.#ownLog.push({ severity, message: message.slice(0, 16 * 1024), timestamp: new Date().toISOString(), unit: OWN_UNIT, hostname: HOSTNAME });
  }

  /** One of our own security events as an audit entry. */
  security(eventType: SecurityEventType, e: Parameters<typeof securityAuditEntry>[2]): void {
    if (this.#pipelines.has('audit')) this.#audit.push(securityAuditEntry(new Date(), eventType, e));
  }

  /** One Kubernetes audit event (from AuditLogReader). */
  k8sAudit(event: Record<string, unknown>): void {
    this.#k8sAudit = true;
    if (this.#pipelines.has('audit')) this.#audit.push(k8sAuditEntry(event));
  }

  /** Runs every pipeline's collection and upload once now (`tick` at its next deadlines). */
  pipeline(kind: TelemetryKind): TelemetryPipeline | undefined {
    return this.#pipelines.get(kind);
  }

  /** The counters and sources. */
  status(): TelemetryStatus {
    const of = (k: TelemetryKind) => {
      const p = this.#pipelines.get(k);
      return p === undefined ? { enabled: false as const } : { enabled: true as const, ...p.status() };
    };
    const s = this.#o.settings.logs;
    return {
      metrics: of('metrics'),
      logs: {
        ...of('logs'),
        sources: {
          own_log: { dropped: this.#ownLog.dropped },
          journald: this.#journal === undefined ? 'unavailable' : { malformed_lines: this.#journal.malformed },
          files: { patterns: s.filePatterns, read_errors: this.#files?.readErrors ?? 0 },
        },
        filter: { min_severity: s.minSeverity ?? null, include_units: s.includeUnits, exclude_units: s.excludeUnits },
      },
      audit: { ...of('audit'), sources: { security_events: { dropped: this.#audit.dropped }, k8s_audit: this.#k8sAudit ? 'following' : 'not in Kubernetes' } },
    };
  }

  /** Stops the loops and writes what is buffered to the spools (sent after the next start). */
  async stop(): Promise<void> {
    if (this.#stop.signal.aborted) return;
    this.#stop.abort(new Error('telemetry stopped'));
    await Promise.allSettled(this.#loops);
    for (const p of this.#pipelines.values()) {
      try {
        p.spoolBuffer();
      } catch (err) {
        this.#o.log.error(`telemetry ${p.kind}: could not spool the last records: ${(err as Error).message}`);
      }
    }
  }
}

/** The node API routes of `log-status` and `audit`: 503 until the upload runs. */
export function telemetryRoutes(status: () => TelemetryStatus | undefined): Routes {
  const doc = (pick: (s: TelemetryStatus) => unknown) => (): readonly [number, unknown] => {
    const s = status();
    return s === undefined ? [503, { error: 'telemetry upload not running' }] : [200, pick(s)];
  };
  return {
    '/v1/telemetry/logs': doc((s) => s.logs),
    '/v1/telemetry/audit': doc((s) => s.audit),
    '/v1/telemetry/metrics': doc((s) => s.metrics),
  };
}
