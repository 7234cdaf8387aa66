// The agent's action runner (upstream remote-actions-hooks.md "Dispatcher", "Executor"; docs/
// operations.md "Remote actions"): consumes the executions block of every state pull (the
// action_request event only triggers a pull), claims an entry with ack -> started before running
// it, runs a built-in or a verified hook under min(expires_at, max_action_timeout), caps the output
// and reports the terminal status, inline (<= 16 KiB, base64) or uploaded to the URL a repeated
// started returns. A refused entry walks ack -> started -> failed(reason). Backpressure (shutting
// down, already running, max_concurrent) defers without a callback: the next pull redelivers.
// Settled ids are remembered (and persisted) until their entry drains from the block, so a
// redelivery (another pull, the event's pull, a restart) never runs an execution twice.

import { createHash } from 'node:crypto';
import { INLINE_OUTPUT_MAX, type ActionInfo, type Execution, type ExecutionRefusal, type ExecutionReport, type ExecutionReportResponse, type HookInfo } from '../../api/types.js';
import type { Logger } from '../../log/logger.js';
import type { Builtin, BuiltinResult } from './builtins.js';
import { hookEnv, runExecutable, type HookRegistry, type RunOutput } from './hooks.js';

/** Problem codes that refuse a callback for good (upstream): abort, never double-report. */
const REFUSALS = new Set(['nsk_node_mismatch', 'invalid_state_transition', 'execution_already_terminal', 'execution_not_found']);
/** How long shutdown waits for running actions before cancelling them (plexd-api.md): 30 s. */
export const DRAIN_MS = 30_000;
/** Backoff of the terminal report's retries (ms): three attempts in all. */
const TERMINAL_RETRY_MS = [500, 1000] as const;

/** The control plane as the runner uses it. */
export interface ActionReporter {
  /** POST /v1/nodes/{id}/executions/{exec_id}. Rejects with an error carrying `code` on a problem. */
  report(executionId: string, req: ExecutionReport): Promise<ExecutionReportResponse>;
  /** PUT the output bytes to a one-time upload URL. */
  upload(url: string, body: Buffer): Promise<void>;
}

/** Timers the runner uses (a test passes manual ones). */
export interface RunnerTimers {
  wallMs(): number;
  /** Calls `fn` after `ms`; returns a cancel function. */
  after(ms: number, fn: () => void): () => void;
  /** Resolves after `ms`. */
  sleep(ms: number): Promise<void>;
}

/** The real timers. */
export const realTimers: RunnerTimers = {
  wallMs: () => Date.now(),
  after: (ms, fn) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return () => clearTimeout(t);
  },
  sleep: (ms) => new Promise((r) => setTimeout(r, ms).unref?.()),
};

/** Runner settings (AgentConfig.actions, in ms and bytes). */
export interface RunnerOptions {
  readonly enabled: boolean;
  readonly maxConcurrent: number;
  readonly maxActionTimeoutMs: number;
  readonly maxOutputBytes: number;
  readonly nodeId: () => string;
  readonly reporter: ActionReporter;
  readonly builtins: readonly Builtin[];
  readonly hooks: HookRegistry;
  readonly log: Logger;
  readonly timers?: RunnerTimers;
  /** Settled ids from an earlier process, and where to save them (best effort). */
  readonly settled?: Iterable<string>;
  readonly saveSettled?: (ids: readonly string[]) => void;
}

/** Counters of the runner (status document, tests). */
export interface RunnerCounters {
  started: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  rejected: number;
  deferred: number;
  orphans: number;
  malformed: number;
  uploads: number;
}

/** An execution running now. */
interface Active {
  readonly entry: Execution;
  readonly abort: AbortController;
  /** Why it was aborted: 'cancelled' (operator or shutdown) or 'timeout'. */
  why?: 'cancelled' | 'timeout';
  readonly done: Promise<void>;
}

/** The problem code of a failed callback, if the control plane sent one. */
function codeOf(err: unknown): string | undefined {
  const e = err as { problemCode?: unknown; code?: unknown } | null;
  const c = e?.problemCode ?? e?.code;
  return typeof c === 'string' ? c : undefined;
}

/** Runs remote actions for one node. */
export class ActionRunner {
  readonly counters: RunnerCounters = { started: 0, succeeded: 0, failed: 0, cancelled: 0, rejected: 0, deferred: 0, orphans: 0, malformed: 0, uploads: 0 };
  readonly #o: RunnerOptions;
  readonly #t: RunnerTimers;
  readonly #builtins: ReadonlyMap<string, Builtin>;
  readonly #active = new Map<string, Active>();
  /** Ids this node settled (ran, refused, reported lost); forgotten when they leave the block. */
  readonly #settled: Set<string>;
  /** Ids being claimed right now (between the first callback and the run). */
  readonly #claiming = new Set<string>();
  #shuttingDown = false;

  constructor(opts: RunnerOptions) {
    this.#o = opts;
    this.#t = opts.timers ?? realTimers;
    this.#builtins = new Map(opts.builtins.map((b) => [b.name, b]));
    this.#settled = new Set(opts.settled ?? []);
  }

  /** actions.enabled. */
  get enabled(): boolean {
    return this.#o.enabled;
  }

  /** Executions running now. */
  get activeCount(): number {
    return this.#active.size;
  }

  /** Whether `id` is running now. */
  isActive(id: string): boolean {
    return this.#active.has(id);
  }

  /** The manifest PUT to /v1/nodes/{id}/capabilities: built-ins and the pinned hooks. */
  capabilities(): { builtin_actions: ActionInfo[]; hooks: HookInfo[] } {
    return {
      builtin_actions: [...this.#builtins.values()].map((b) => ({ name: b.name, description: b.description, parameters: [...b.parameters] })),
      hooks: this.#o.hooks.list(),
    };
  }

  /**
   * Handles one pull's executions block: starts what is new, cancels what the operator cancelled,
   * reports runs lost to a restart. Resolves once every entry is claimed, refused or deferred (not
   * when the runs end). Never rejects.
   */
  async onState(entries: readonly Execution[], refused: readonly ExecutionRefusal[] = []): Promise<void> {
    for (const r of refused) {
      this.counters.malformed++;
      this.#o.log.error(`actions: executions entry ${r.execution_id === '' ? '(no id)' : r.execution_id} refused, not run: ${r.reason}`);
    }
    const inBlock = new Set(entries.map((e) => e.execution_id));
    let pruned = false;
    for (const id of this.#settled) {
      if (!inBlock.has(id) && !this.#active.has(id)) {
        this.#settled.delete(id);
        pruned = true;
      }
    }
    if (pruned) this.#persist();
    for (const e of entries) {
      try {
        await this.#dispatch(e);
      } catch (err) {
        this.#o.log.error(`actions: ${e.execution_id}: ${(err as Error).message}`);
      }
    }
  }

  async #dispatch(e: Execution): Promise<void> {
    const running = this.#active.get(e.execution_id);
    if (running !== undefined) {
      if (e.cancel_requested === true && running.why === undefined) {
        this.#o.log.info(`actions: ${e.execution_id} (${e.action}): cancel requested; aborting the run`);
        running.why = 'cancelled';
        running.abort.abort(new Error('cancelled'));
      }
      return;
    }
    if (this.#settled.has(e.execution_id) || this.#claiming.has(e.execution_id)) return;
    const expires = e.expires_at === '' ? undefined : Date.parse(e.expires_at);
    if (expires === undefined || Number.isNaN(expires)) {
      this.#o.log.error(`actions: ${e.execution_id} (${e.action}) carries no expires_at; refusing to dispatch`);
      this.#settle(e.execution_id);
      return;
    }
    if (expires <= this.#t.wallMs()) return; // the control plane owns the timeout
    if (e.status === 'started') {
      await this.#failOrphan(e);
      return;
    }
    if (!this.#o.enabled) return this.#reject(e, 'actions_disabled');
    if (e.type !== 'builtin' && e.type !== 'hook') return this.#reject(e, 'unsupported_action_type');
    if (e.type === 'builtin' ? !this.#builtins.has(e.action) : !this.#o.hooks.has(e.action)) return this.#reject(e, 'unknown_action');
    if (this.#shuttingDown || this.#active.size + this.#claiming.size >= this.#o.maxConcurrent) {
      this.counters.deferred++;
      this.#o.log.info(`actions: ${e.execution_id} deferred (${this.#shuttingDown ? 'shutting_down' : 'max_concurrent_reached'})`);
      return;
    }
    this.#claiming.add(e.execution_id);
    try {
      if (!(await this.#walk(e, e.status === 'pending' ? ['ack', 'started'] : ['started']))) return;
    } finally {
      this.#claiming.delete(e.execution_id);
    }
    this.#settle(e.execution_id);
    this.#start(e, expires);
  }

  /** Posts `steps` in order; false when one failed (a refusal settles the entry, a transient
   *  failure leaves it for the next pull). */
  async #walk(e: Execution, steps: ReadonlyArray<'ack' | 'started'>): Promise<boolean> {
    for (const status of steps) {
      try {
        await this.#o.reporter.report(e.execution_id, { status });
      } catch (err) {
        const code = codeOf(err);
        if (code !== undefined && REFUSALS.has(code)) {
          this.#o.log.error(`actions: ${e.execution_id}: callback ${status} refused (${code}); not running it`);
          this.#settle(e.execution_id);
        } else {
          this.#o.log.error(`actions: ${e.execution_id}: callback ${status} failed (${(err as Error).message}); the next pull retries`);
        }
        return false;
      }
    }
    return true;
  }

  /** A fail-fast refusal: every legal edge to failed(reason). */
  async #reject(e: Execution, reason: string): Promise<void> {
    this.#o.log.error(`actions: ${e.execution_id} (${e.type} ${e.action}) rejected: ${reason}`);
    const steps = e.status === 'pending' ? (['ack', 'started'] as const) : (['started'] as const);
    this.#claiming.add(e.execution_id);
    try {
      if (!(await this.#walk(e, steps))) return;
      await this.#o.reporter.report(e.execution_id, { status: 'failed', error: reason });
      this.counters.rejected++;
      this.#settle(e.execution_id);
    } catch (err) {
      if (REFUSALS.has(codeOf(err) ?? '')) this.#settle(e.execution_id);
      this.#o.log.error(`actions: ${e.execution_id}: failed callback for a rejected execution: ${(err as Error).message}`);
    } finally {
      this.#claiming.delete(e.execution_id);
    }
  }

  async #failOrphan(e: Execution): Promise<void> {
    this.counters.orphans++;
    this.#o.log.error(`actions: ${e.execution_id} (${e.action}) was started by an earlier agent process; reporting it failed, never running it again`);
    try {
      await this.#o.reporter.report(e.execution_id, { status: 'failed', error: 'execution lost to an agent restart' });
      this.#settle(e.execution_id);
    } catch (err) {
      if (REFUSALS.has(codeOf(err) ?? '')) this.#settle(e.execution_id);
    }
  }

  #settle(id: string): void {
    this.#settled.add(id);
    this.#persist();
  }

  #persist(): void {
    try {
      this.#o.saveSettled?.([...this.#settled]);
    } catch (err) {
      this.#o.log.error(`actions: cannot save the settled executions: ${(err as Error).message}`);
    }
  }

  #start(e: Execution, expires: number): void {
    const abort = new AbortController();
    const left = Math.min(expires - this.#t.wallMs(), this.#o.maxActionTimeoutMs);
    const active: Active = { entry: e, abort, done: Promise.resolve() };
    const done = (async () => {
      this.counters.started++;
      const began = this.#t.wallMs();
      let result: RunOutput;
      if (left <= 0) {
        result = { exitCode: -1, output: Buffer.alloc(0), truncated: false, error: 'execution deadline lapsed before the run started' };
      } else {
        const cancelTimer = this.#t.after(left, () => {
          if (active.why === undefined) active.why = 'timeout';
          abort.abort(new Error('action timed out'));
        });
        try {
          result = await this.#run(e, abort.signal);
        } finally {
          cancelTimer();
        }
      }
      await this.#finish(e, active, result, this.#t.wallMs() - began);
    })().finally(() => this.#active.delete(e.execution_id));
    (active as { done: Promise<void> }).done = done;
    this.#active.set(e.execution_id, active);
  }

  /** Runs the built-in or hook; never rejects. */
  async #run(e: Execution, signal: AbortSignal): Promise<RunOutput> {
    const cap = this.#o.maxOutputBytes;
    try {
      if (e.type === 'hook') {
        const path = this.#o.hooks.verify(e.action, e.checksum);
        const env = hookEnv(e.parameters, { nodeId: this.#o.nodeId(), executionId: e.execution_id });
        return await runExecutable(path, env, this.#o.hooks.dir, signal, cap);
      }
      const b = this.#builtins.get(e.action)!;
      const r: BuiltinResult = await Promise.race([
        b.run(e.parameters, signal),
        new Promise<BuiltinResult>((resolve) => signal.addEventListener('abort', () => resolve({ exitCode: -1, stdout: '', error: 'aborted' }), { once: true })),
      ]);
      const joined = Buffer.from(r.stdout + (r.stderr ?? ''), 'utf8');
      return { exitCode: r.exitCode, output: joined.subarray(0, cap), truncated: joined.length > cap, ...(r.error !== undefined ? { error: r.error } : {}) };
    } catch (err) {
      return { exitCode: -1, output: Buffer.alloc(0), truncated: false, error: (err as Error).message };
    }
  }

  async #finish(e: Execution, active: Active, r: RunOutput, ms: number): Promise<void> {
    const status = active.why === 'cancelled' ? 'cancelled' : r.exitCode === 0 && r.error === undefined && active.why === undefined ? 'succeeded' : 'failed';
    const error = active.why === 'timeout' ? 'action timed out' : active.why === 'cancelled' ? 'cancelled' : r.error ?? (r.exitCode !== 0 ? `exit code ${r.exitCode}` : undefined);
    const req: { -readonly [K in keyof ExecutionReport]: ExecutionReport[K] } = { status };
    if (r.exitCode >= 0) req.exit_code = r.exitCode;
    if (error !== undefined) req.error = error;
    if (r.output.length > 0) req.output = await this.#output(e, r.output);
    this.counters[status]++;
    this.#o.log.info(`actions: ${e.execution_id} (${e.action}) ${status} in ${ms} ms${error ? `: ${error}` : ''}${r.truncated ? ` (output capped at ${this.#o.maxOutputBytes} bytes)` : ''}`);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#o.reporter.report(e.execution_id, req);
        return;
      } catch (err) {
        const code = codeOf(err);
        const wait = TERMINAL_RETRY_MS[attempt];
        if ((code !== undefined && REFUSALS.has(code)) || wait === undefined) {
          this.#o.log.error(`actions: ${e.execution_id}: terminal callback not delivered after ${attempt + 1} attempts: ${(err as Error).message}`);
          return;
        }
        await this.#t.sleep(wait);
      }
    }
  }

  /** Inline when small; else declare, upload and reference; inline (cut to 16 KiB) when that fails. */
  async #output(e: Execution, bytes: Buffer): Promise<ExecutionReport['output']> {
    if (bytes.length <= INLINE_OUTPUT_MAX) return { inline: bytes.toString('base64') };
    try {
      const res = await this.#o.reporter.report(e.execution_id, { status: 'started', declared_output_bytes: bytes.length });
      const url = res.output_upload_url;
      if (url === undefined) throw new Error('no output_upload_url in the answer');
      await this.#o.reporter.upload(url, bytes);
      this.counters.uploads++;
      return { object_key: `exec-output/${e.execution_id}`, sha256: createHash('sha256').update(bytes).digest('hex') };
    } catch (err) {
      // Never log the URL: it is a credential.
      this.#o.log.error(`actions: ${e.execution_id}: output upload failed (${(err as Error).message.replace(/https?:\/\/\S+/g, '<url>')}); sending the first ${INLINE_OUTPUT_MAX} bytes inline`);
      return { inline: bytes.subarray(0, INLINE_OUTPUT_MAX).toString('base64') };
    }
  }

  /**
   * Stops taking executions, waits up to `drainMs` for running ones, then cancels the rest (they
   * report cancelled). Resolves when every run has reported.
   */
  async shutdown(drainMs = DRAIN_MS): Promise<void> {
    this.#shuttingDown = true;
    if (this.#active.size === 0) return;
    const all = () => Promise.allSettled([...this.#active.values()].map((a) => a.done));
    let timer: (() => void) | undefined;
    const drained = await Promise.race([all().then(() => true), new Promise<boolean>((r) => (timer = this.#t.after(drainMs, () => r(false))))]);
    timer?.();
    if (drained) return;
    for (const a of this.#active.values()) {
      if (a.why === undefined) a.why = 'cancelled';
      a.abort.abort(new Error('agent shutting down'));
    }
    await all();
  }
}
