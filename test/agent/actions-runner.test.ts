// The action runner (src/agent/actions/runner.ts) against a scripted control plane and manual
// timers: the claim walk, refusals, deferral, redelivery, deadline, cancellation, output capping
// and upload, orphans, drain on shutdown.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Execution, ExecutionReport, ExecutionReportResponse } from '../../src/api/types.js';
import type { Builtin } from '../../src/agent/actions/builtins.js';
import { HookRegistry } from '../../src/agent/actions/hooks.js';
import { ActionRunner, type RunnerTimers } from '../../src/agent/actions/runner.js';
import { silentLogger } from '../../src/log/logger.js';

/** Timers that move only when told to. */
class ManualTimers implements RunnerTimers {
  now = 1_700_000_000_000;
  #due: Array<{ at: number; fn: () => void }> = [];
  wallMs(): number {
    return this.now;
  }
  after(ms: number, fn: () => void): () => void {
    const t = { at: this.now + ms, fn };
    this.#due.push(t);
    return () => (this.#due = this.#due.filter((x) => x !== t));
  }
  sleep(ms: number): Promise<void> {
    return new Promise((r) => this.after(ms, r));
  }
  advance(ms: number): void {
    this.now += ms;
    const ready = this.#due.filter((t) => t.at <= this.now);
    this.#due = this.#due.filter((t) => t.at > this.now);
    for (const t of ready) t.fn();
  }
}

/** Records callbacks; `refuse` makes a status answer with a problem code. */
class Cp {
  calls: Array<{ id: string; req: ExecutionReport }> = [];
  uploads: Buffer[] = [];
  refuse: Partial<Record<string, string>> = {};
  failTransient = 0;
  async report(id: string, req: ExecutionReport): Promise<ExecutionReportResponse> {
    if (this.failTransient > 0) {
      this.failTransient--;
      throw Object.assign(new Error('network down'), { kind: 'network' });
    }
    const code = this.refuse[req.status];
    if (code !== undefined) throw Object.assign(new Error(code), { problemCode: code });
    this.calls.push({ id, req });
    return { execution_id: id, status: req.status, ...(req.declared_output_bytes ? { output_upload_url: `http://cp/v1/executions/${id}/output?token=t` } : {}) };
  }
  async upload(_url: string, body: Buffer): Promise<void> {
    this.uploads.push(body);
  }
  statuses(id: string): string[] {
    return this.calls.filter((c) => c.id === id).map((c) => c.req.status);
  }
  terminal(id: string): ExecutionReport | undefined {
    return this.calls.filter((c) => c.id === id && ['succeeded', 'failed', 'cancelled'].includes(c.req.status)).at(-1)?.req;
  }
}

const settle = () => new Promise((r) => setImmediate(r));
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await settle();
}

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

function setup(over: { maxConcurrent?: number; maxOutputBytes?: number; enabled?: boolean; builtins?: Builtin[]; timeoutMs?: number } = {}) {
  const t = new ManualTimers();
  const cp = new Cp();
  const dir = mkdtempSync(join(tmpdir(), 'plexd-runner-'));
  dirs.push(dir);
  const hooks = new HookRegistry(dir);
  let saved: readonly string[] = [];
  const gates = new Map<string, () => void>();
  const echo: Builtin = { name: 'test.echo', description: '', parameters: [], run: async (p) => ({ exitCode: 0, stdout: p.text ?? 'hi' }) };
  const big: Builtin = { name: 'test.big', description: '', parameters: [], run: async (p) => ({ exitCode: 0, stdout: 'x'.repeat(Number(p.n)) }) };
  const gate: Builtin = {
    name: 'test.gate', description: '', parameters: [],
    run: (p, signal) => new Promise((resolve) => {
      gates.set(p.id ?? '', () => resolve({ exitCode: 0, stdout: 'opened' }));
      signal.addEventListener('abort', () => resolve({ exitCode: -1, stdout: '', error: 'aborted' }));
    }),
  };
  const runner = new ActionRunner({
    enabled: over.enabled ?? true, maxConcurrent: over.maxConcurrent ?? 5, maxActionTimeoutMs: over.timeoutMs ?? 600_000, maxOutputBytes: over.maxOutputBytes ?? 1024 * 1024,
    nodeId: () => 'node-1', reporter: cp, builtins: over.builtins ?? [echo, big, gate], hooks, log: silentLogger, timers: t,
    saveSettled: (ids) => (saved = ids),
  });
  const entry = (id: string, action: string, extra: Partial<Execution> = {}): Execution => ({
    execution_id: id, action, type: 'builtin', parameters: {}, status: 'pending', requested_at: new Date(t.now).toISOString(), expires_at: new Date(t.now + 300_000).toISOString(), ...extra,
  });
  return { t, cp, runner, entry, gates, hooks, dir, saved: () => saved };
}

describe('action runner', () => {
  it('claims with ack then started, runs once, reports succeeded with inline output', async () => {
    const { cp, runner, entry, saved } = setup();
    const e = entry('e1', 'test.echo', { parameters: { text: 'hello' } });
    await runner.onState([e]);
    await flush();
    expect(cp.statuses('e1')).toEqual(['ack', 'started', 'succeeded']);
    expect(Buffer.from(cp.terminal('e1')!.output!.inline!, 'base64').toString()).toBe('hello');
    expect(saved()).toEqual(['e1']);
    // Redelivered by the next pull (and by the pull an action_request triggers): never run again.
    await runner.onState([{ ...e, status: 'started' }]);
    await runner.onState([e]);
    await flush();
    expect(cp.statuses('e1')).toEqual(['ack', 'started', 'succeeded']);
    // Drained from the block: forgotten.
    await runner.onState([]);
    expect(saved()).toEqual([]);
  });

  it('an entry at ack is started without a second ack', async () => {
    const { cp, runner, entry } = setup();
    await runner.onState([entry('e1', 'test.echo', { status: 'ack' })]);
    await flush();
    expect(cp.statuses('e1')).toEqual(['started', 'succeeded']);
  });

  it('refusals walk ack -> started -> failed(reason): unknown action, unknown type, disabled', async () => {
    const { cp, runner, entry } = setup();
    await runner.onState([entry('u1', 'no.such'), entry('u2', 'test.echo', { type: 'wasm' }), entry('u3', 'nohook', { type: 'hook' })]);
    await flush();
    expect(cp.statuses('u1')).toEqual(['ack', 'started', 'failed']);
    expect(cp.terminal('u1')!.error).toBe('unknown_action');
    expect(cp.terminal('u2')!.error).toBe('unsupported_action_type');
    expect(cp.terminal('u3')!.error).toBe('unknown_action');
    const off = setup({ enabled: false });
    await off.runner.onState([off.entry('d1', 'test.echo')]);
    expect(off.cp.statuses('d1')).toEqual(['ack', 'started', 'failed']);
    expect(off.cp.terminal('d1')!.error).toBe('actions_disabled');
  });

  it('malformed entries are refused and logged; the rest still runs', async () => {
    const { cp, runner, entry } = setup();
    await runner.onState([entry('ok', 'test.echo')], [{ execution_id: 'bad', reason: 'parameters more than 64 parameters' }]);
    await flush();
    expect(runner.counters.malformed).toBe(1);
    expect(cp.statuses('ok')).toEqual(['ack', 'started', 'succeeded']);
    expect(cp.statuses('bad')).toEqual([]);
  });

  it('no expires_at: refused without a callback; lapsed: left to the control plane', async () => {
    const { t, cp, runner, entry } = setup();
    await runner.onState([entry('n1', 'test.echo', { expires_at: '' }), entry('n2', 'test.echo', { expires_at: new Date(t.now - 1).toISOString() })]);
    await flush();
    expect(cp.calls).toEqual([]);
  });

  it('max_concurrent defers without a callback; the next pull runs it', async () => {
    const { cp, runner, entry, gates } = setup({ maxConcurrent: 1 });
    const a = entry('a', 'test.gate', { parameters: { id: 'a' } });
    const b = entry('b', 'test.echo');
    await runner.onState([a, b]);
    expect(cp.statuses('b')).toEqual([]);
    expect(runner.counters.deferred).toBe(1);
    gates.get('a')!();
    await flush();
    await runner.onState([b]);
    await flush();
    expect(cp.statuses('b')).toEqual(['ack', 'started', 'succeeded']);
  });

  it('a transient claim failure runs nothing and retries at the next pull; a refusal settles', async () => {
    const { cp, runner, entry } = setup();
    cp.failTransient = 1;
    await runner.onState([entry('t1', 'test.echo')]);
    expect(cp.calls).toEqual([]);
    await runner.onState([entry('t1', 'test.echo')]);
    await flush();
    expect(cp.statuses('t1')).toEqual(['ack', 'started', 'succeeded']);
    cp.refuse = { ack: 'execution_already_terminal' };
    await runner.onState([entry('t2', 'test.echo')]);
    cp.refuse = {};
    await runner.onState([entry('t2', 'test.echo')]);
    await flush();
    expect(cp.statuses('t2')).toEqual([]);
  });

  it('the deadline fails a run with "action timed out"', async () => {
    const { t, cp, runner, entry } = setup({ timeoutMs: 10_000 });
    await runner.onState([entry('slow', 'test.gate')]);
    t.advance(9_999);
    await flush();
    expect(cp.terminal('slow')).toBeUndefined();
    t.advance(1);
    await flush();
    expect(cp.terminal('slow')).toMatchObject({ status: 'failed', error: 'action timed out' });
  });

  it('cancel_requested aborts a running execution, reported cancelled', async () => {
    const { cp, runner, entry } = setup();
    const e = entry('c1', 'test.gate');
    await runner.onState([e]);
    expect(runner.isActive('c1')).toBe(true);
    await runner.onState([{ ...e, status: 'started', cancel_requested: true }]);
    await flush();
    expect(cp.terminal('c1')).toMatchObject({ status: 'cancelled' });
    expect(runner.activeCount).toBe(0);
  });

  it('a started entry this process does not run was lost to a restart: failed, never re-run', async () => {
    const { cp, runner, entry } = setup();
    await runner.onState([entry('o1', 'test.echo', { status: 'started' })]);
    expect(cp.statuses('o1')).toEqual(['failed']);
    expect(cp.terminal('o1')!.error).toBe('execution lost to an agent restart');
  });

  it('output over 16 KiB is declared, uploaded and referenced; capped at max_output_bytes', async () => {
    const { cp, runner, entry } = setup({ maxOutputBytes: 20_000 });
    await runner.onState([entry('big', 'test.big', { parameters: { n: '50000' } })]);
    await flush();
    expect(cp.statuses('big')).toEqual(['ack', 'started', 'started', 'succeeded']);
    expect(cp.calls[2]!.req.declared_output_bytes).toBe(20_000);
    expect(cp.uploads[0]!.length).toBe(20_000);
    expect(cp.terminal('big')!.output).toMatchObject({ object_key: 'exec-output/big' });
    expect(cp.terminal('big')!.output!.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('shutdown drains for 30 s, then cancels what still runs; new entries defer', async () => {
    const { t, cp, runner, entry, gates } = setup();
    await runner.onState([entry('s1', 'test.gate', { parameters: { id: 's1' } }), entry('s2', 'test.gate', { parameters: { id: 's2' } })]);
    const down = runner.shutdown();
    gates.get('s1')!();
    await flush();
    expect(cp.terminal('s1')).toMatchObject({ status: 'succeeded' });
    await runner.onState([entry('s3', 'test.echo')]);
    expect(cp.statuses('s3')).toEqual([]);
    t.advance(30_000);
    await down;
    expect(cp.terminal('s2')).toMatchObject({ status: 'cancelled' });
  });

  it('a hook runs only while its file hashes to the pin and the approved digest', async () => {
    const { cp, runner, entry, hooks, dir } = setup();
    writeFileSync(join(dir, 'hello'), '#!/bin/sh\necho "p=$PLEXD_PARAM_WHO n=$#"\n', { mode: 0o755 });
    hooks.scan();
    const pin = hooks.list()[0]!.checksum;
    await runner.onState([entry('h1', 'hello', { type: 'hook', parameters: { who: '$(id); x' }, checksum: pin })]);
    for (let i = 0; i < 50 && cp.terminal('h1') === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    expect(cp.terminal('h1')).toMatchObject({ status: 'succeeded', exit_code: 0 });
    expect(Buffer.from(cp.terminal('h1')!.output!.inline!, 'base64').toString()).toBe('p=$(id); x n=0\n');
    // The control plane approved another digest: refused.
    await runner.onState([entry('h2', 'hello', { type: 'hook', checksum: `sha256:${'0'.repeat(64)}` })]);
    for (let i = 0; i < 50 && cp.terminal('h2') === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    expect(cp.terminal('h2')).toMatchObject({ status: 'failed' });
    expect(cp.terminal('h2')!.error).toMatch(/integrity check failed/);
    // Tampered after discovery: refused, not run.
    writeFileSync(join(dir, 'hello'), '#!/bin/sh\ntouch "$HOME/pwned"; echo evil\n', { mode: 0o755 });
    hooks.scan();
    await runner.onState([entry('h3', 'hello', { type: 'hook' })]);
    for (let i = 0; i < 50 && cp.terminal('h3') === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    expect(cp.terminal('h3')).toMatchObject({ status: 'failed' });
    expect(cp.terminal('h3')!.error).toMatch(/changed file/);
    expect(cp.terminal('h3')!.output).toBeUndefined();
  });
});
