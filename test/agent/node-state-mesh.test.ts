// Node state and secrets end to end, without root: our control plane in-process and a real
// packet-callback agent. A secret set with `control-plane secrets set` is served by the agent's
// node API (curl --unix-socket, and `plexd-userspace state get secret`) in plaintext, while the
// agent's data_dir, its log output and the control plane's database hold no trace of it;
// metadata set on the control plane reaches the agent; a report written on the node API lands on
// the control plane after the debounce and leaves it on DELETE.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { runState } from '../../src/cli/agent.js';
import { secrets } from '../../src/cli/control-plane-secrets.js';
import { nodeStateOf, setStateEntry } from '../../src/control-plane/node-state.js';
import type { ControlPlane } from '../../src/control-plane/server.js';
import { createLogger } from '../../src/log/logger.js';
import { until } from '../helpers/wait.js';
import { loopbackAgentConfig, startControlPlane, stopMesh } from './loopback-mesh.js';

// Async: the agent serving the socket runs in this process.
const curl = async (...args: string[]): Promise<string> => (await promisify(execFile)('curl', ['-sS', '--max-time', '10', ...args], { encoding: 'utf8' })).stdout;

const SECRET = 'pa55-Wörd-7f3a9c1e-unique';

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...filesUnder(p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

async function captureStdout(fn: () => Promise<number> | number): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  });
  try {
    return { code: await fn(), out };
  } finally {
    spy.mockRestore();
  }
}

describe('node state and secrets: control plane -> agent node API', () => {
  let dir: string;
  let cp: ControlPlane;
  let agent: Agent;
  const lines: string[] = [];
  const socket = () => join(dir, 'api.sock');
  const db = () => join(dir, 'cp.db');

  beforeAll(async () => {
    ({ dir, cp } = await startControlPlane('plexd-node-state-', { logger: createLogger('silent', '') }));
    const cfg = loopbackAgentConfig(cp.url, dir, 0, 'state-node', [
      ['registration.token', cp.store.createToken().token],
      ['health.listen', '127.0.0.1:0'],
      ['node_api.socket', socket()],
      ['node_api.debounce_period', '0.1'],
    ]);
    agent = await Agent.start({ config: cfg, logger: createLogger('verbose', '', (l) => void lines.push(l)), heartbeatIntervalMs: 60_000 });
  }, 30_000);

  afterAll(() => stopMesh(agent === undefined ? [] : [agent], cp, dir));

  it('a secret set on the control plane is served in plaintext by the node API, and written nowhere', async () => {
    const nodeId = agent.identity.node_id;
    const set = await captureStdout(() => secrets(['set', nodeId, 'db-password', '--value', SECRET, '--db', db()]));
    expect(set).toEqual({ code: 0, out: `secret db-password of ${nodeId}: version 1\n` });

    const viaCurl = JSON.parse(await curl('--unix-socket', socket(), 'http://localhost/v1/state/secrets/db-password')) as unknown;
    expect(viaCurl).toEqual({ key: 'db-password', value: SECRET, version: 1 });

    // A second version, and the first still reachable with ?version=1.
    await captureStdout(() => secrets(['set', nodeId, 'db-password', '--value', `${SECRET}-2`, '--db', db()]));
    const cli = await captureStdout(() => runState(['get', 'secret', 'db-password', '--node-api-socket', socket()]));
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.out)).toEqual({ key: 'db-password', value: `${SECRET}-2`, version: 2 });
    const v1 = JSON.parse(await curl('--unix-socket', socket(), 'http://localhost/v1/state/secrets/db-password?version=1')) as { value: string };
    expect(v1.value).toBe(SECRET);

    // A project secret is served too; the node's own hides the project's of the same name.
    await captureStdout(() => secrets(['set', '--project', 'default', 'shared-key', '--value', 'project-wide', '--db', db()]));
    expect(JSON.parse(await curl('--unix-socket', socket(), 'http://localhost/v1/state/secrets/shared-key'))).toMatchObject({ value: 'project-wide' });
    const listed = await captureStdout(() => secrets(['list', '--json', '--db', db()]));
    expect(JSON.parse(listed.out)).toEqual([
      expect.objectContaining({ owner: nodeId, name: 'db-password', version: 2 }),
      expect.objectContaining({ owner: 'project:default', name: 'shared-key', version: 1 }),
    ]);
    expect(listed.out).not.toContain(SECRET);

    // Absent: in any file of the agent's data_dir, in its log lines, in the control plane's files.
    const needles = [Buffer.from(SECRET), Buffer.from(SECRET, 'utf16le')];
    for (const f of filesUnder(join(dir, 'n0'))) for (const n of needles) expect(readFileSync(f).includes(n), f).toBe(false);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain(SECRET);
    for (const f of readdirSync(dir).filter((n) => n.startsWith('cp.db'))) expect(readFileSync(join(dir, f)).includes(needles[0]!), f).toBe(false);

    // Removed on the control plane: the node API says 404.
    await captureStdout(() => secrets(['rm', nodeId, 'db-password', '--db', db()]));
    const gone = await captureStdout(() => runState(['get', 'secret', 'db-password', '--node-api-socket', socket()]));
    expect(gone.code).toBe(1);
  });

  it('metadata set on the control plane reaches the node API', async () => {
    setStateEntry(cp.store, agent.identity.node_id, 'metadata', 'region', 'eu-west-1');
    setStateEntry(cp.store, agent.identity.node_id, 'data', 'app.conf', 'x=1');
    await until('metadata on the node API', 10_000, async () => {
      const r = await captureStdout(() => runState(['get', 'metadata', 'region', '--node-api-socket', socket()]));
      return r.code === 0 && r.out.includes('eu-west-1');
    });
    const data = await captureStdout(() => runState(['get', 'data', 'app.conf', '--node-api-socket', socket()]));
    expect(JSON.parse(data.out)).toMatchObject({ key: 'app.conf', payload: 'x=1' });
  });

  it('a report written on the node API reaches the control plane after the debounce, and leaves on DELETE', async () => {
    const r = await captureStdout(() => runState(['report', 'app-health', '--data', '{"status":"ok"}', '--node-api-socket', socket()]));
    expect(r.code).toBe(0);
    const reports = () => nodeStateOf(cp.store.db, agent.identity.node_id).reports;
    await until('report on the control plane', 10_000, () => reports().some((e) => e.key === 'app-health' && e.value === '{"status":"ok"}'));
    const shown = await captureStdout(() => secrets(['list', '--db', db()]));
    expect(shown.code).toBe(0);
    await curl('-X', 'DELETE', '--unix-socket', socket(), 'http://localhost/v1/state/report/app-health');
    await until('report gone from the control plane', 10_000, () => reports().length === 0);
  });
});

describe('node API over HTTP (node_api.http_enabled)', () => {
  let dir: string;
  let cp: ControlPlane;
  const agents: Agent[] = [];
  afterAll(() => stopMesh(agents, cp, dir));

  it('refuses to start without a usable token file; with one, only the bearer token is served', async () => {
    ({ dir, cp } = await startControlPlane('plexd-node-state-http-', { logger: createLogger('silent', '') }));
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const tokenFile = join(dir, 'api-token');
    const cfg = (i: number, extra: Array<[string, string]>) =>
      loopbackAgentConfig(cp.url, dir, i, `http-node-${i}`, [['registration.token', cp.store.createToken().token], ['node_api.socket', join(dir, `h${i}.sock`)], ['node_api.http_enabled', 'true'], ['node_api.http_listen', `127.0.0.1:${port}`], ...extra]);
    const start = (c: ReturnType<typeof cfg>) => Agent.start({ config: c, logger: createLogger('silent', ''), heartbeatIntervalMs: 60_000, health: false });
    await expect(start(cfg(1, []))).rejects.toThrow(/http_token_file/);
    writeFileSync(tokenFile, 'short\n');
    await expect(start(cfg(2, [['node_api.http_token_file', tokenFile]]))).rejects.toThrow(/at least 16/);
    writeFileSync(tokenFile, 'token-0123456789abcdef\n', { mode: 0o600 });
    agents.push(await start(cfg(3, [['node_api.http_token_file', tokenFile]])));
    const url = `http://127.0.0.1:${port}/v1/state`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: 'Bearer token-0123456789abcdeX' } })).status).toBe(401);
    const ok = await fetch(url, { headers: { authorization: 'Bearer token-0123456789abcdef' } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ metadata: {}, secret_keys: [] });
  }, 30_000);
});
