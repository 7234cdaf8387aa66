// Remote actions end to end on loopback (docs/operations.md "Remote actions", "Hooks"): our
// control plane over HTTP and a real agent (the code `plexd-userspace up` runs). Every built-in
// goes the whole way: queued in the store -> action_request -> state pull -> ack -> started ->
// terminal with output; an approved hook runs with its parameter, a big output is uploaded, an
// unapproved or changed hook is refused, a cancel aborts a running hook, and a redelivered
// execution runs once.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { approveHook, cancelExecution, capabilitiesOf, createExecution, getExecution, type ExecutionView } from '../../src/control-plane/actions.js';
import type { ControlPlane } from '../../src/control-plane/server.js';
import { silentLogger } from '../../src/log/logger.js';
import { until } from '../helpers/wait.js';
import { loopbackAgentConfig, startControlPlane, stopMesh } from './loopback-mesh.js';

let dir: string | undefined;
let cp: ControlPlane | undefined;
const agents: Agent[] = [];
let agent: Agent;
let hooksDir: string;

beforeAll(async () => {
  ({ dir, cp } = await startControlPlane('plexd-actions-loop-', { pollMs: 50 }));
  hooksDir = join(dir, 'hooks');
  mkdirSync(hooksDir);
  writeFileSync(join(hooksDir, 'greet'), '#!/bin/sh\necho "hello $PLEXD_PARAM_NAME from $PLEXD_NODE_ID ($#)"\n', { mode: 0o755 });
  writeFileSync(join(hooksDir, 'bulk'), '#!/bin/sh\nhead -c 40000 /dev/zero | tr "\\0" a\n', { mode: 0o755 });
  writeFileSync(join(hooksDir, 'count'), '#!/bin/sh\necho run >> "$PLEXD_PARAM_FILE"\nsleep 1\n', { mode: 0o755 });
  writeFileSync(join(hooksDir, 'sleeper'), '#!/bin/sh\nsleep 30\n', { mode: 0o755 });
  const config = loopbackAgentConfig(cp.url, dir, 0, 'actions-0', [
    ['registration.token', cp.store.createToken().token], ['reconcile.interval', '200ms'], ['actions.hooks_dir', hooksDir],
  ]);
  agent = await Agent.start({ config, logger: silentLogger, env: {}, health: false, nodeApi: false });
  agents.push(agent);
  await until('capabilities stored', 10_000, () => (capabilitiesOf(cp!.store.db, agent.identity.node_id)?.hooks?.length ?? 0) === 4);
}, 30_000);
afterAll(() => stopMesh(agents, cp, dir), 60_000);

async function run(action: string, parameters: Record<string, string> = {}, type = 'builtin'): Promise<ExecutionView> {
  const id = createExecution(cp!.store, { nodeId: agent.identity.node_id, action, type, parameters, timeoutMs: 60_000 });
  return until(`${action} finished`, 30_000, () => {
    const e = getExecution(cp!.store.db, id);
    return e !== undefined && ['succeeded', 'failed', 'cancelled'].includes(e.status) ? e : undefined;
  });
}

function digest(name: string): string {
  return capabilitiesOf(cp!.store.db, agent.identity.node_id)!.hooks!.find((h) => h.name === name)!.checksum;
}

describe('remote actions over the loop', () => {
  it('announces every built-in in its capabilities', () => {
    const names = capabilitiesOf(cp!.store.db, agent.identity.node_id)!.builtin_actions!.map((a) => a.name);
    expect(names).toEqual(['diagnostics.collect', 'diagnostics.ping_peer', 'diagnostics.traceroute_peer', 'service.restart', 'service.reload_config', 'service.upgrade', 'system.info', 'health.check', 'mesh.reconnect', 'config.dump', 'logs.snapshot']);
  });

  it('runs each built-in through ack -> started -> terminal with its output', async () => {
    const info = await run('system.info');
    expect(info).toMatchObject({ status: 'succeeded', exit_code: 0 });
    expect(JSON.parse(info.output!)).toMatchObject({ node_id: agent.identity.node_id, mesh_ip: agent.identity.mesh_ip });
    expect(info.acked_at).not.toBeNull();
    expect(info.started_at).not.toBeNull();
    const collect = await run('diagnostics.collect', { include_processes: 'false' });
    expect(collect.status).toBe('succeeded');
    expect(JSON.parse(collect.output!)).toHaveProperty('kernel_version');
    expect(JSON.parse((await run('health.check')).output!)).toHaveProperty('status');
    expect(JSON.parse((await run('mesh.reconnect')).output!)).toEqual({ status: 'reconnected' });
    const dump = await run('config.dump');
    expect(dump.status).toBe('succeeded');
    expect(dump.output).not.toMatch(/plx_|"token": "[^[]/);
    expect(dump.output).toContain('[redacted]');
    expect((await run('logs.snapshot', { lines: '5' })).status).toBe('succeeded');
    const reload = await run('service.reload_config');
    expect(reload).toMatchObject({ status: 'failed', exit_code: 1 });
    expect(reload.error).toMatch(/service\.restart instead/);
    const upgrade = await run('service.upgrade', { version: '9.9.9', checksum: 'abc' });
    expect(upgrade.status).toBe('failed');
    expect(upgrade.error).toMatch(/not supported by plexd-userspace/);
    // ping / traceroute: the tools may be missing here; either way a terminal with a reason.
    for (const a of ['diagnostics.ping_peer', 'diagnostics.traceroute_peer']) {
      const r = await run(a, { peer_id: '127.0.0.1', count: '1', max_hops: '2' });
      expect(['succeeded', 'failed']).toContain(r.status);
      if (r.status === 'failed') expect(r.error ?? '').not.toBe('');
    }
    const badPeer = await run('diagnostics.ping_peer', { peer_id: '127.0.0.1; reboot' });
    expect(badPeer.error).toMatch(/peer_id/);
    // service.restart is not run here: it would restart a real plexd.service on this machine.
    const unknown = await run('no.such.action');
    expect(unknown).toMatchObject({ status: 'failed', error: 'unknown_action' });
  }, 120_000);

  it('runs an approved hook with its parameter in the environment; refuses an unapproved one', async () => {
    expect(() => createExecution(cp!.store, { nodeId: agent.identity.node_id, action: 'greet', type: 'hook' })).toThrow(/not approved/);
    approveHook(cp!.store, { nodeId: agent.identity.node_id }, 'greet', digest('greet'));
    const r = await run('greet', { name: 'ops; $(id)' }, 'hook');
    expect(r).toMatchObject({ status: 'succeeded', exit_code: 0 });
    expect(r.output).toBe(`hello ops; $(id) from ${agent.identity.node_id} (0)\n`);
  }, 60_000);

  it('uploads an output over 16 KiB to the one-time URL', async () => {
    approveHook(cp!.store, {}, 'bulk', digest('bulk'));
    const r = await run('bulk', {}, 'hook');
    expect(r).toMatchObject({ status: 'succeeded', output_bytes: 40_000, output_object_key: `exec-output/${r.execution_id}` });
    expect(r.output).toBe('a'.repeat(40_000));
  }, 60_000);

  it('runs a redelivered execution once (event, periodic pulls, repeated state)', async () => {
    approveHook(cp!.store, { nodeId: agent.identity.node_id }, 'count', digest('count'));
    const file = join(dir!, 'count.log');
    const r = await run('count', { file }, 'hook');
    expect(r.status).toBe('succeeded');
    // The hook ran for 1 s while the agent pulled state every 200 ms.
    expect(readFileSync(file, 'utf8')).toBe('run\n');
    await agent.reconcileNow();
    expect(readFileSync(file, 'utf8')).toBe('run\n');
  }, 60_000);

  it('cancels a running hook', async () => {
    approveHook(cp!.store, { nodeId: agent.identity.node_id }, 'sleeper', digest('sleeper'));
    const id = createExecution(cp!.store, { nodeId: agent.identity.node_id, action: 'sleeper', type: 'hook', timeoutMs: 60_000 });
    await until('started', 10_000, () => getExecution(cp!.store.db, id)?.status === 'started');
    expect(cancelExecution(cp!.store, id)).toBe('cancel_requested');
    const e = await until('cancelled', 10_000, () => (getExecution(cp!.store.db, id)?.status === 'cancelled' ? getExecution(cp!.store.db, id) : undefined));
    expect(e!.error).toBe('cancelled');
  }, 30_000);

  it('refuses a hook changed after the agent pinned it, without running it', async () => {
    writeFileSync(join(hooksDir, 'greet'), '#!/bin/sh\necho tampered\n', { mode: 0o755 });
    await agent.reconcileNow();
    // The control plane still holds the approved digest and the agent its pin: both refuse.
    const r = await run('greet', {}, 'hook');
    expect(r.status).toBe('failed');
    expect(r.error).toMatch(/integrity check failed/);
    expect(r.output ?? '').not.toContain('tampered');
  }, 30_000);
});
