// Crash-safe mesh key rotation (src/agent/key-rotation.ts). A crash at each step, twice: in
// process (the rotation hook never returns at that step, nothing after it is written, the agent is
// stopped) and for real (an agent in a child process on dist/ whose hook sends itself SIGKILL at
// that step); then a new agent starts on the same data_dir, as after a crash. Whatever the
// step, it converges: no staged key left, the control plane, the key file and the device hold one
// and the same key, and the peer is reached again. The answers of the control plane decide what
// happens to a staged key: 409 and permanent refusals discard it, 5xx and network errors keep it,
// 422 keys_rotate_public_key_unchanged commits it.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, generatePrivateKey, publicKeyOf } from '../../src/agent/agent.js';
import type { AgentConfig } from '../../src/agent/config.js';
import { attemptRotation, type RotationStep } from '../../src/agent/key-rotation.js';
import { openStore } from '../../src/agent/store.js';
import { ApiError } from '../../src/control/http-client.js';
import type { ControlPlane } from '../../src/control-plane/server.js';
import { createLogger } from '../../src/log/logger.js';
import { REPO_DIR, ensureBuilt } from '../helpers/wg-lab.js';
import { loopbackAgentConfig, startControlPlane, stopMesh } from './loopback-mesh.js';
import { until } from '../helpers/wait.js';

const log = createLogger('silent', '');

describe('key rotation survives a crash at each step', () => {
  let dir: string;
  let cp: ControlPlane;
  let a: Agent;
  let b: Agent;
  let configA: AgentConfig;

  beforeAll(async () => {
    ({ dir, cp } = await startControlPlane('plexd-rotation-crash-', { logger: log, pollMs: 50 }, true));
    configA = loopbackAgentConfig(cp.url, dir, 0, 'rot-a', [['registration.token_value', cp.store.createToken().token]]);
    const configB = loopbackAgentConfig(cp.url, dir, 1, 'rot-b', [['registration.token_value', cp.store.createToken().token]]);
    a = await Agent.start({ config: configA, logger: log, heartbeatIntervalMs: 60_000, health: false, nodeApi: false });
    b = await Agent.start({ config: configB, logger: log, heartbeatIntervalMs: 60_000, health: false, nodeApi: false });
    await until('A reaches B', 10_000, async () => (await a.iface.ping(b.identity.mesh_ip, 1000)) !== undefined);
  }, 30_000);

  afterAll(() => stopMesh([a, b], cp, dir));

  const pending = () => existsSync(join(configA.dataDir, 'rotation_pending_key'));
  const cpKey = () => cp.store.node(a.identity.node_id)!.public_key;

  const restartOpts = { logger: log, heartbeatIntervalMs: 60_000, health: false, nodeApi: false } as const;

  /** What the crash left on disk and on the control plane, for the key staged at `step`. */
  function expectCrashState(step: RotationStep, before: string): string {
    const staged = openStore(configA.dataDir).loadPendingKey()!;
    expect(pending()).toBe(true);
    expect(cpKey()).toBe(step === 'staged' ? before : publicKeyOf(staged));
    expect(publicKeyOf(openStore(configA.dataDir).loadIdentity()!.private_key)).toBe(step === 'committed' ? publicKeyOf(staged) : before);
    return staged;
  }

  /** Restarts A on its data_dir; it must converge on `staged` and reach B again. */
  async function expectConverged(staged: string): Promise<void> {
    a = await Agent.start({ config: configA, ...restartOpts });
    await until('the staged rotation is recovered', 10_000, () => !pending());
    const onDisk = publicKeyOf(openStore(configA.dataDir).loadIdentity()!.private_key);
    expect(onDisk).toBe(publicKeyOf(staged));
    expect(cpKey()).toBe(onDisk);
    expect(publicKeyOf(a.identity.private_key)).toBe(onDisk);
    expect(publicKeyOf(Buffer.from(a.iface.device.snapshot().privateKey!).toString('base64'))).toBe(onDisk);
    await until('A reaches B on the rotated key', 10_000, async () => (await a.iface.ping(b.identity.mesh_ip, 1000)) !== undefined);
    expect(await b.iface.ping(a.identity.mesh_ip, 1000)).toBeTypeOf('number');
  }

  it.each(['staged', 'submitted', 'committed'] as const)('in process, crash after %s: a restart converges to one key and the mesh comes back', async (step: RotationStep) => {
    const before = cpKey();
    let crashed!: () => void;
    const atCrash = new Promise<void>((r) => (crashed = r));
    await a.stop();
    a = await Agent.start({ config: configA, ...restartOpts, rotationHook: (s) => (s === step ? (crashed(), new Promise<void>(() => undefined)) : undefined) });
    void a.rotateKeys();
    await atCrash;
    await a.stop(); // the "kill": the rotation never gets past `step`
    await expectConverged(expectCrashState(step, before));
  }, 30_000);

  it.each(['staged', 'submitted', 'committed'] as const)('kill -9 of a child-process agent after %s: a restart converges to one key and the mesh comes back', async (step: RotationStep) => {
    await ensureBuilt();
    const before = cpKey();
    await a.stop();
    const script = `
      const { Agent } = await import(${JSON.stringify(join(REPO_DIR, 'dist/agent/agent.js'))});
      const { resolveConfig } = await import(${JSON.stringify(join(REPO_DIR, 'dist/agent/config.js'))});
      const { createLogger } = await import(${JSON.stringify(join(REPO_DIR, 'dist/log/logger.js'))});
      const config = resolveConfig({ env: {}, flags: new Map(JSON.parse(process.env.CHILD_FLAGS)) });
      const a = await Agent.start({ config, logger: createLogger('silent', ''), heartbeatIntervalMs: 60000, health: false, nodeApi: false,
        rotationHook: (s) => { if (s === process.env.CHILD_STEP) process.kill(process.pid, 'SIGKILL'); } });
      await a.rotateKeys();
      process.stdout.write('rotation finished without a crash\\n');
      process.exit(3);`;
    const flags = [['api.base_url', cp.url], ['data_dir', configA.dataDir], ['registration.resource_handle', 'rot-a'], ['wireguard.packet_callback', 'true'], ['wireguard.bind_address', '127.0.0.1'], ['wireguard.listen_port', '0']];
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, CHILD_FLAGS: JSON.stringify(flags), CHILD_STEP: step }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, sig) => resolve(sig)));
    expect(signal, out).toBe('SIGKILL');
    await expectConverged(expectCrashState(step, before));
  }, 60_000);
});

describe('attemptRotation by the control plane\'s answer', () => {
  const store = () => openStore(join(dir0, String(Math.random()).slice(2)));
  const dir0 = join(process.env['TMPDIR'] ?? '/tmp', `plexd-rotation-unit-${process.pid}`);
  afterAll(async () => (await import('node:fs')).rmSync(dir0, { recursive: true, force: true }));
  const receipt = { rotation_id: 'r', kid: 'k', wrap_key_version: 2 };
  const fail = (status: number, code?: string) => () => Promise.reject(new ApiError('http', `status ${status}`, { status, ...(code ? { problemCode: code } : {}) }));

  it('stages before submitting, commits a 200, and reuses a staged key on the next attempt', async () => {
    const s = store();
    s.savePrivateKey(generatePrivateKey());
    let seenOnDisk: string | undefined;
    const r = await attemptRotation({ store: s, generate: generatePrivateKey, publicKeyOf, submit: async (pub) => ((seenOnDisk = publicKeyOf(s.loadPendingKey()!)), expect(pub).toBe(seenOnDisk), receipt) });
    expect(r.outcome).toBe('committed');
    expect(s.loadPendingKey()).toBeUndefined();
    const staged = generatePrivateKey();
    s.savePendingKey(staged);
    const again = await attemptRotation({ store: s, generate: () => 'never', publicKeyOf, submit: async () => receipt });
    expect(again).toEqual({ outcome: 'committed', privateKey: staged });
  });

  it('422 keys_rotate_public_key_unchanged commits; 409 and permanent refusals discard; 5xx and network keep', async () => {
    const cases: Array<[() => Promise<never>, string]> = [
      [fail(422, 'keys_rotate_public_key_unchanged'), 'committed'],
      [fail(409, 'keys_rotate_no_pending_rotation'), 'discarded'],
      [fail(404, 'keys_rotate_peer_not_found'), 'discarded'],
      [fail(422, 'keys_rotate_public_key_invalid'), 'discarded'],
      [fail(400), 'discarded'],
      [fail(503), 'pending'],
      [fail(429), 'pending'],
      [() => Promise.reject(new ApiError('network', 'ECONNREFUSED')), 'pending'],
    ];
    for (const [submit, want] of cases) {
      const s = store();
      s.savePrivateKey(generatePrivateKey());
      const r = await attemptRotation({ store: s, generate: generatePrivateKey, publicKeyOf, submit });
      expect(r.outcome).toBe(want);
      expect(s.loadPendingKey() !== undefined).toBe(want === 'pending');
    }
  });
});
