// Registration (src/agent/registration.ts) is one path for the first start and the re-registration
// after a 401: the module on its own (a stub control plane client: identity built and stored,
// token file deleted, bridge mode sent, a refusal stores nothing), then a real agent against an
// in-process control plane on a ManualClock: both registrations go through registerNode (its log
// lines, registered_at from the clock), and the status document's times and the spacing of key
// rotations follow the clock.

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegisterRequest, RegisterResponse } from '../../src/api/types.js';
import { Agent, ROTATE_KEYS_MIN_INTERVAL_MS } from '../../src/agent/agent.js';
import { generatePrivateKey, publicKeyOf } from '../../src/agent/keys.js';
import { registerNode, type RegistrationContext } from '../../src/agent/registration.js';
import { openStore } from '../../src/agent/store.js';
import type { ControlClient } from '../../src/control/api-client.js';
import { ApiError } from '../../src/control/http-client.js';
import { RegistrationError } from '../../src/control/register.js';
import type { ControlPlane } from '../../src/control-plane/server.js';
import { ManualClock } from '../../src/io/clock.js';
import { createLogger } from '../../src/log/logger.js';
import { loopbackAgentConfig, startControlPlane, stopMesh } from './loopback-mesh.js';
import { until } from '../helpers/wait.js';

const WALL = Date.UTC(2031, 0, 2, 3, 4, 5);
const iso = (ms: number) => new Date(ms).toISOString();

function response(n: number): RegisterResponse {
  return {
    node_id: `node-${n}`,
    mesh_ip: `10.100.0.${n}`,
    signing_public_key: Buffer.alloc(32, n).toString('base64'),
    signing_key_id: `sk-${n}`,
    nsk: Buffer.alloc(32, 100 + n).toString('base64'),
    peer_snapshot: [],
    domain_mesh_cidr: '10.100.0.0/16',
  };
}

describe('registerNode', () => {
  let dir: string;
  beforeAll(() => void (dir = mkdtempSync(join(tmpdir(), 'plexd-registration-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const context = (sub: string, mode: 'node' | 'bridge', answer: (req: RegisterRequest) => RegisterResponse) => {
    const tokenFile = join(dir, `${sub}.token`);
    writeFileSync(tokenFile, 'tok-' + sub);
    const config = loopbackAgentConfig('http://127.0.0.1:1', dir, 0, `handle-${sub}`, [
      ['registration.token_file', tokenFile],
      ['data_dir', join(dir, sub)],
      ['mode', mode],
    ]);
    const requests: RegisterRequest[] = [];
    const client = { register: async (req: RegisterRequest) => (requests.push(req), answer(req)) } as unknown as ControlClient;
    const clock = new ManualClock(0, WALL);
    const lines: string[] = [];
    const ctx: RegistrationContext = { config, store: openStore(config.dataDir), client, log: createLogger('info', '', (l) => void lines.push(l)), env: {}, clock };
    return { ctx, requests, tokenFile, clock, lines };
  };

  it('registers a new identity: stored, registered_at from the clock, the token file deleted', async () => {
    const { ctx, requests, tokenFile } = context('fresh', 'node', () => response(1));
    const key = generatePrivateKey();
    const { identity, response: res } = await registerNode(ctx, key);
    expect(requests).toEqual([expect.objectContaining({ project_id: 'default', resource_handle: 'handle-fresh', bootstrap_token: 'tok-fresh', public_key: publicKeyOf(key) })]);
    expect(requests[0]).not.toHaveProperty('mode');
    expect(res.node_id).toBe('node-1');
    expect(identity).toEqual({ ...response(1), peer_snapshot: undefined, api_base_url: 'http://127.0.0.1:1', registered_at: iso(WALL), private_key: key });
    expect(ctx.store.loadIdentity()).toEqual(identity);
    expect(existsSync(tokenFile)).toBe(false);
  });

  it('registers again over a previous identity (the 401 path): node fields replaced, the rest kept, bridge mode sent', async () => {
    const { ctx, requests, clock } = context('again', 'bridge', (req) => response(req.bootstrap_token === 'tok-again' ? 2 : 9));
    const key = generatePrivateKey();
    const previous = { ...(await registerNode(ctx, key)).identity, api_base_url: 'https://old.example' };
    writeFileSync(ctx.config.registration.tokenFile, 'tok-second');
    clock.advance(90_000);
    const { identity } = await registerNode(ctx, key, publicKeyOf(key), previous);
    expect(requests.map((r) => r.mode)).toEqual(['bridge', 'bridge']);
    expect(requests[0]!.nonce).not.toBe(requests[1]!.nonce);
    expect(identity).toMatchObject({ node_id: 'node-9', mesh_ip: '10.100.0.9', nsk: response(9).nsk, signing_key_id: 'sk-9', api_base_url: 'https://old.example', registered_at: iso(WALL + 90_000), private_key: key });
    expect(ctx.store.loadIdentity()?.node_id).toBe('node-9');
  });

  it('stores nothing and keeps the token file when the control plane refuses', async () => {
    const { ctx, tokenFile } = context('refused', 'node', () => {
      throw new ApiError('http', 'token consumed', { status: 401, problemCode: 'token_consumed' });
    });
    const err = await registerNode(ctx, generatePrivateKey()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistrationError);
    expect((err as RegistrationError).code).toBe('token_consumed');
    expect(ctx.store.loadIdentity()).toBeUndefined();
    expect(existsSync(tokenFile)).toBe(true);
  });
});

describe('an agent on a ManualClock', () => {
  let dir: string;
  let cp: ControlPlane;
  let agent: Agent;
  const clock = new ManualClock(0, WALL);
  const lines: string[] = [];
  const log = createLogger('info', '', (l) => void lines.push(l));
  const tokenFile = () => join(dir, 'n0.token');

  beforeAll(async () => {
    ({ dir, cp } = await startControlPlane('plexd-agent-clock-', { logger: createLogger('silent'), pollMs: 50, clock }, true));
    writeFileSync(tokenFile(), cp.store.createToken().token);
    const config = loopbackAgentConfig(cp.url, dir, 0, 'clocked', [['registration.token_file', tokenFile()]]);
    agent = await Agent.start({ config, logger: log, env: {}, clock, heartbeatIntervalMs: 100, health: false, nodeApi: false });
  }, 20_000);

  afterAll(() => stopMesh(agent ? [agent] : [], cp, dir));

  it('takes registered_at and the status times from the clock', async () => {
    expect(agent.identity.registered_at).toBe(iso(WALL));
    await until('a heartbeat and a reconcile', 5000, () => agent.status()['last_heartbeat'] !== null && agent.status()['last_reconcile'] !== null);
    expect(agent.status()).toMatchObject({ last_heartbeat: iso(WALL), last_reconcile: iso(WALL) });
    clock.advance(45_000);
    await until('a heartbeat at the new time', 5000, () => agent.status()['last_heartbeat'] === iso(WALL + 45_000));
    await agent.reconcileNow();
    expect(agent.status()['last_reconcile']).toBe(iso(WALL + 45_000));
  });

  it('spaces key rotations by the clock: a second within 5 min is skipped, one after it runs', async () => {
    const first = agent.status()['public_key'];
    expect(await agent.rotateKeys()).toBe(true);
    const second = agent.status()['public_key'];
    expect(second).not.toBe(first);
    expect(second).toBe(publicKeyOf(agent.identity.private_key));
    clock.advance(ROTATE_KEYS_MIN_INTERVAL_MS - 1);
    expect(await agent.rotateKeys()).toBe(false);
    expect(agent.status()['public_key']).toBe(second);
    clock.advance(1);
    expect(await agent.rotateKeys()).toBe(true);
    expect(agent.status()['public_key']).toBe(publicKeyOf(agent.identity.private_key));
    expect(agent.counters.keyRotations).toBe(2);
  });

  it('re-registers after a 401 through the same registration as the start', async () => {
    const first = lines.filter((l) => /registering clocked with .* \(token from file\)|registered as node/.test(l));
    expect(first).toHaveLength(2);
    const oldId = agent.identity.node_id;
    clock.advance(60_000);
    const at = clock.wallMs();
    writeFileSync(tokenFile(), cp.store.createToken().token);
    expect(cp.store.removeNode(oldId, 'test')).toBe(true);
    await until('re-registered', 5000, () => agent.counters.reRegistrations === 1);
    const all = lines.filter((l) => /registering clocked with .* \(token from file\)|registered as node/.test(l));
    expect(all).toHaveLength(4);
    expect(all[3]).toContain(`registered as node ${agent.identity.node_id}`);
    expect(agent.identity.node_id).not.toBe(oldId);
    expect(agent.identity.registered_at).toBe(iso(at));
    expect(agent.store.loadIdentity()).toEqual(agent.identity);
    expect(existsSync(tokenFile())).toBe(false);
  });

  it('without a token, re-registers on a backed-off schedule of the clock: one error line per attempt, not per 401', async () => {
    const count = (re: RegExp) => lines.filter((l) => re.test(l)).length;
    const failed = /re-registration failed: .*staying up on cached state; next attempt at the first 401 after (\d+) s/;
    lines.length = 0;
    const beats = agent.counters.heartbeatFailures;
    expect(cp.store.removeNode(agent.identity.node_id, 'test')).toBe(true);
    await until('the first attempt failed', 5000, () => count(failed) === 1);
    // Heartbeats every 100 ms of real time, each a 401; the clock stands still: no new attempt.
    await until('ten more rejected heartbeats', 5000, () => agent.counters.heartbeatFailures >= beats + 10);
    expect(count(failed)).toBe(1);
    expect(count(/rejected our credential \(401\)/)).toBe(1);
    expect(lines.find((l) => failed.test(l))).toContain('after 1 s');
    expect(agent.counters.reRegistrationFailures).toBe(1);
    clock.advance(999);
    await until('ten more rejected heartbeats', 5000, () => agent.counters.heartbeatFailures >= beats + 20);
    expect(count(failed)).toBe(1);
    // Past the wait, the next 401 tries again, and the wait doubles.
    clock.advance(1);
    await until('the second attempt failed', 5000, () => count(failed) === 2);
    expect(lines.filter((l) => failed.test(l))[1]).toContain('after 2 s');
    expect(count(/rejected our credential \(401\)/)).toBe(1);
    // With a token, the attempt after the wait succeeds and the schedule starts over.
    writeFileSync(tokenFile(), cp.store.createToken().token);
    clock.advance(2000);
    await until('re-registered', 5000, () => agent.counters.reRegistrations === 2);
    expect(agent.counters.reRegistrationFailures).toBe(2);
    lines.length = 0;
    expect(cp.store.removeNode(agent.identity.node_id, 'test')).toBe(true);
    await until('a fresh run of failures', 5000, () => count(failed) === 1);
    expect(count(/rejected our credential \(401\)/)).toBe(1);
    expect(lines.find((l) => failed.test(l))).toContain('after 1 s');
  });
});
