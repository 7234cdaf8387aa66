// Remote actions in the running agent (docs/operations.md "Remote actions"): the runner fed by
// each state pull, the hooks directory watched (and re-scanned on each pull) with the capabilities
// manifest PUT whenever it changes, settled execution ids kept in data_dir/actions-settled.json,
// and shutdown draining the runs in flight.

import { readFileSync, renameSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { StateResponse } from '../../api/types.js';
import type { ControlClient } from '../../control/api-client.js';
import type { Logger } from '../../log/logger.js';
import { VERSION } from '../../version.js';
import type { AgentConfig } from '../config.js';
import type { Routes } from '../local-http.js';
import { builtins, type ActionHost } from './builtins.js';
import { HookRegistry } from './hooks.js';
import { ActionRunner, type RunnerTimers } from './runner.js';

/** Most settled ids kept on disk (the block is the bound; this caps a hostile one). */
const MAX_SETTLED = 4096;
const SETTLED_FILE = 'actions-settled.json';

/** Settled ids saved by an earlier process; [] when absent or unreadable. */
export function loadSettled(dataDir: string): string[] {
  try {
    const v = JSON.parse(readFileSync(join(dataDir, SETTLED_FILE), 'utf8')) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.length <= 128).slice(-MAX_SETTLED) : [];
  } catch {
    return [];
  }
}

function saveSettled(dataDir: string, ids: readonly string[]): void {
  const path = join(dataDir, SETTLED_FILE);
  writeFileSync(`${path}.tmp`, JSON.stringify(ids.slice(-MAX_SETTLED)), { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

/** Options of {@link ActionsService}. */
export interface ActionsServiceOptions {
  readonly config: AgentConfig;
  readonly client: ControlClient;
  readonly host: ActionHost;
  readonly log: Logger;
  readonly timers?: RunnerTimers;
}

/** The agent's remote actions. */
export class ActionsService {
  readonly runner: ActionRunner;
  readonly hooks: HookRegistry;
  readonly #o: ActionsServiceOptions;
  #manifestSent = '';
  #sending: Promise<void> | undefined;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  /** Aborts callbacks only after the drain: runs finishing during shutdown still report. */
  readonly #abort = new AbortController();

  constructor(o: ActionsServiceOptions) {
    this.#o = o;
    const cfg = o.config.actions;
    this.hooks = new HookRegistry(cfg.hooksDir, (m) => o.log.error(m));
    this.runner = new ActionRunner({
      enabled: cfg.enabled,
      maxConcurrent: cfg.maxConcurrent,
      maxActionTimeoutMs: cfg.maxActionTimeoutS * 1000,
      maxOutputBytes: cfg.maxOutputBytes,
      nodeId: () => o.host.nodeId(),
      builtins: builtins(o.host),
      hooks: this.hooks,
      log: o.log,
      reporter: {
        report: (id, req) => o.client.reportExecution(id, req, this.#abort.signal),
        upload: (url, body) => o.client.uploadOutput(url, body, this.#abort.signal),
      },
      settled: loadSettled(o.config.dataDir),
      saveSettled: (ids) => saveSettled(o.config.dataDir, ids),
      ...(o.timers ? { timers: o.timers } : {}),
    });
  }

  /** Scans the hooks, sends the manifest and watches the hooks directory. */
  start(): void {
    this.hooks.scan();
    void this.sendCapabilities();
    try {
      this.#watcher = watch(this.hooks.dir, () => {
        clearTimeout(this.#debounce);
        this.#debounce = setTimeout(() => this.reload(), 200);
        this.#debounce.unref();
      });
      this.#watcher.on('error', () => this.#watcher?.close());
    } catch {
      // No hooks directory (yet): each state pull re-scans.
    }
  }

  /** Re-scans the hooks directory; sends the manifest when it changed. Returns the hooks. */
  reload(): ReturnType<HookRegistry['list']> {
    if (this.hooks.scan()) void this.sendCapabilities();
    return this.hooks.list();
  }

  /** PUT /v1/nodes/{id}/capabilities when the manifest differs from the last one accepted. */
  async sendCapabilities(): Promise<void> {
    if (this.#sending !== undefined) return this.#sending;
    const body = { features: [] as string[], binary: { version: VERSION }, ...this.runner.capabilities() };
    const text = JSON.stringify(body);
    if (text === this.#manifestSent) return;
    this.#sending = this.#o.client.updateCapabilities(body, this.#abort.signal).then(
      () => {
        this.#manifestSent = text;
        this.#o.log.info(`actions: capabilities sent (${body.builtin_actions.length} built-ins, ${body.hooks.length} hooks)`);
      },
      (err: unknown) => this.#o.log.error(`actions: capabilities not sent (${(err as Error).message}); retrying at the next state pull`),
    ).finally(() => (this.#sending = undefined));
    return this.#sending;
  }

  /** A state pull arrived: re-scan hooks, (re)send the manifest if needed, run the block. */
  onState(state: StateResponse): void {
    this.reload();
    void this.sendCapabilities();
    void this.runner.onState(state.executions, state.executions_refused ?? []);
  }

  /** Stops the watcher and drains running actions (30 s, then cancels them). */
  async stop(drainMs?: number): Promise<void> {
    clearTimeout(this.#debounce);
    this.#watcher?.close();
    await this.runner.shutdown(drainMs);
    this.#abort.abort(new Error('agent stopped'));
  }
}

/**
 * The node API's action documents (upstream GET /v1/actions, GET /v1/hooks): the built-ins and
 * hooks with their pinned digests; /v1/hooks/reload re-scans the directory first (a re-read of the
 * disk, safe to repeat; upstream's is a POST, ours waits for the node API to take POSTs).
 */
export function actionRoutes(get: () => ActionsService | undefined): Routes {
  const off = [503, { error: 'actions not started' }] as const;
  return {
    '/v1/actions': () => {
      const a = get();
      if (a === undefined) return off;
      const caps = a.runner.capabilities();
      return [200, { enabled: a.runner.enabled, builtin_actions: caps.builtin_actions, hooks: caps.hooks, active: a.runner.activeCount, counters: a.runner.counters }] as const;
    },
    '/v1/hooks': () => {
      const a = get();
      return a === undefined ? off : ([200, { hooks_dir: a.hooks.dir, hooks: a.hooks.list() }] as const);
    },
    '/v1/hooks/reload': () => {
      const a = get();
      return a === undefined ? off : ([200, { status: 'reloaded', hooks: a.reload() }] as const);
    },
  };
}
