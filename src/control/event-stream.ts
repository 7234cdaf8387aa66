// The agent's event subscription (plexd-api.md "Lifecycle"): GET /v1/nodes/{id}/events as SSE,
// reconnecting with backoff (1 s doubling to 60 s, +-25 % jitter) and Last-Event-ID; every
// successful connect triggers exactly one reconcile; 90 s without a byte is a dead stream.
// Delivery modes: `streaming` while connected; after 5 min of failing, `degraded_polling` (pull
// state every 60 s while still trying to reconnect); `501 signed_event_bus_not_provisioned`
// -> `pull_only` (pull every 60 s, re-probe SSE every 10 min).

import type { IncomingMessage } from 'node:http';
import { Backoff, sleep as realSleep } from './backoff.js';
import { SseParser, type SseEvent } from './sse-parser.js';

/** How events currently reach the agent. */
export type DeliveryMode = 'streaming' | 'pull_only' | 'degraded_polling';

/** Timings (ms); defaults from plexd-api.md. */
export interface EventStreamTimings {
  readonly idleTimeoutMs: number;
  readonly degradeAfterMs: number;
  readonly pollIntervalMs: number;
  readonly reprobeMs: number;
  /** A stream must stay up this long before the backoff resets (a flapping server stays backed off). */
  readonly stableAfterMs: number;
}

/** Default timings. */
export const EVENT_STREAM_TIMINGS: EventStreamTimings = {
  idleTimeoutMs: 90_000,
  degradeAfterMs: 5 * 60_000,
  pollIntervalMs: 60_000,
  reprobeMs: 10 * 60_000,
  stableAfterMs: 10_000,
};

/** What the stream needs from the agent. */
export interface EventStreamOptions {
  /** Opens the SSE request (ControlClient.openEvents). */
  readonly open: (lastEventId: string | undefined, signal: AbortSignal) => Promise<IncomingMessage>;
  /** Each SSE event's data (an envelope to verify). */
  readonly onEvent: (event: SseEvent) => void;
  /** After each successful connect: reconcile once. */
  readonly onConnected: () => void;
  /** Pull state (pull_only / degraded_polling). Errors are the callee's to log. */
  readonly poll: () => Promise<void>;
  /** 401 on the stream: the credential is gone (re-register). */
  readonly onUnauthorized?: () => void;
  readonly onModeChange?: (mode: DeliveryMode) => void;
  readonly log?: (m: string) => void;
  readonly timings?: Partial<EventStreamTimings>;
  readonly now?: () => number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly random?: () => number;
  /** SSE parser limits (default 1 MiB each). */
  readonly maxEventChars?: number;
}

/** Counters of the subscription. */
export interface EventStreamCounters {
  connects: number;
  failures: number;
  idleTimeouts: number;
  polls: number;
  linesTooLong: number;
  eventsTooLarge: number;
}

/** A running subscription; `stop()` ends it. */
export class EventStream {
  readonly counters: EventStreamCounters = { connects: 0, failures: 0, idleTimeouts: 0, polls: 0, linesTooLong: 0, eventsTooLarge: 0 };
  readonly #o: EventStreamOptions;
  readonly #t: EventStreamTimings;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #backoff: Backoff;
  readonly #stop = new AbortController();
  #mode: DeliveryMode = 'streaming';
  #lastEventId: string | undefined;
  #failingSince: number | undefined;
  #lastPoll = -Infinity;
  #done: Promise<void> | undefined;
  #connected = false;

  constructor(opts: EventStreamOptions) {
    this.#o = opts;
    this.#t = { ...EVENT_STREAM_TIMINGS, ...opts.timings };
    this.#now = opts.now ?? (() => performance.now());
    this.#sleep = opts.sleep ?? realSleep;
    this.#backoff = new Backoff({ ...(opts.random ? { random: opts.random } : {}) });
  }

  /** The current delivery mode. */
  get mode(): DeliveryMode {
    return this.#mode;
  }

  /** True while an SSE stream is open. */
  get connected(): boolean {
    return this.#connected;
  }

  /** The last event id received (sent as Last-Event-ID on reconnect). */
  get lastEventId(): string | undefined {
    return this.#lastEventId;
  }

  /** Starts the loop (idempotent). */
  start(): void {
    this.#done ??= this.#run().catch((err: unknown) => {
      if (!this.#stop.signal.aborted) this.#o.log?.(`event stream stopped: ${(err as Error).message}`);
    });
  }

  /** Stops and waits for the loop to end. */
  async stop(): Promise<void> {
    this.#stop.abort(new Error('stopped'));
    await this.#done;
  }

  #setMode(mode: DeliveryMode): void {
    if (mode === this.#mode) return;
    this.#mode = mode;
    this.#o.log?.(`delivery mode: ${mode}`);
    this.#o.onModeChange?.(mode);
  }

  async #poll(): Promise<void> {
    this.#lastPoll = this.#now();
    this.counters.polls++;
    try {
      await this.#o.poll();
    } catch (err) {
      this.#o.log?.(`state poll failed: ${(err as Error).message}`);
    }
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      const outcome = await this.#connectOnce(signal);
      if (signal.aborted) return;
      if (outcome === 'not_provisioned') {
        this.#setMode('pull_only');
        const until = this.#now() + this.#t.reprobeMs;
        while (!signal.aborted && this.#now() < until) {
          await this.#poll();
          await this.#sleep(Math.min(this.#t.pollIntervalMs, Math.max(0, until - this.#now())), signal).catch(() => undefined);
        }
        continue;
      }
      if (outcome === 'unauthorized') this.#o.onUnauthorized?.();
      if (outcome !== 'stable') {
        this.counters.failures++;
        this.#failingSince ??= this.#now();
      }
      if (this.#failingSince !== undefined && this.#now() - this.#failingSince >= this.#t.degradeAfterMs) {
        this.#setMode('degraded_polling');
        if (this.#now() - this.#lastPoll >= this.#t.pollIntervalMs) await this.#poll();
      } else if (this.#mode === 'pull_only') {
        this.#setMode('streaming');
      }
      if (outcome === 'stable') this.#backoff.reset();
      const delay = this.#backoff.next();
      await this.#sleep(delay, signal).catch(() => undefined);
    }
  }

  /** One connection attempt and, when it opens, the stream until it ends. */
  async #connectOnce(signal: AbortSignal): Promise<'failed' | 'stable' | 'not_provisioned' | 'unauthorized'> {
    const ctl = new AbortController();
    const onStop = () => ctl.abort(signal.reason);
    signal.addEventListener('abort', onStop, { once: true });
    let headTimer: NodeJS.Timeout | undefined = setTimeout(() => ctl.abort(new Error('no response')), this.#t.idleTimeoutMs);
    try {
      let res: IncomingMessage;
      try {
        res = await this.#o.open(this.#lastEventId, ctl.signal);
      } catch (err) {
        this.#o.log?.(`event stream: ${(err as Error).message}`);
        return 'failed';
      }
      clearTimeout(headTimer);
      headTimer = undefined;
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        res.resume();
        res.on('error', () => {});
        if (status === 501) return 'not_provisioned';
        this.#o.log?.(`event stream: HTTP ${status}`);
        if (status === 401) return 'unauthorized';
        return 'failed';
      }
      const ctype = String(res.headers['content-type'] ?? '');
      if (!ctype.toLowerCase().startsWith('text/event-stream')) {
        res.destroy();
        this.#o.log?.(`event stream: unexpected content-type ${JSON.stringify(ctype.slice(0, 64))}`);
        return 'failed';
      }
      return await this.#consume(res, ctl);
    } finally {
      if (headTimer !== undefined) clearTimeout(headTimer);
      signal.removeEventListener('abort', onStop);
      ctl.abort(new Error('done'));
    }
  }

  #consume(res: IncomingMessage, ctl: AbortController): Promise<'failed' | 'stable'> {
    const opened = this.#now();
    this.counters.connects++;
    this.#connected = true;
    this.#failingSince = undefined;
    this.#setMode('streaming');
    const parser = new SseParser({
      ...(this.#o.maxEventChars !== undefined ? { maxEventChars: this.#o.maxEventChars, maxLineChars: this.#o.maxEventChars } : {}),
      onEvent: (ev) => {
        if (ev.lastEventId !== '') this.#lastEventId = ev.lastEventId;
        try {
          this.#o.onEvent(ev);
        } catch (err) {
          this.#o.log?.(`event handler failed: ${(err as Error).message}`);
        }
      },
    });
    this.#o.onConnected();
    return new Promise((resolve) => {
      let idle: NodeJS.Timeout | undefined;
      const arm = () => {
        if (idle !== undefined) clearTimeout(idle);
        idle = setTimeout(() => {
          this.counters.idleTimeouts++;
          this.#o.log?.(`event stream idle for ${this.#t.idleTimeoutMs / 1000} s; reconnecting`);
          res.destroy();
        }, this.#t.idleTimeoutMs);
      };
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        if (idle !== undefined) clearTimeout(idle);
        idle = undefined;
        this.#connected = false;
        parser.end();
        this.counters.linesTooLong += parser.counters.linesTooLong;
        this.counters.eventsTooLarge += parser.counters.eventsTooLarge;
        resolve(this.#now() - opened >= this.#t.stableAfterMs ? 'stable' : 'failed');
      };
      arm();
      res.on('data', (chunk: Buffer) => {
        arm();
        parser.feed(chunk);
      });
      res.once('end', finish);
      res.once('close', finish);
      res.once('error', () => finish());
      ctl.signal.addEventListener('abort', () => res.destroy(), { once: true });
    });
  }
}
