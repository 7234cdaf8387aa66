// Issue 17: the cloud metadata token source on a real agent. A MeshLab control plane, one agent
// namespace, and behind it an "instance metadata" namespace on 169.254.169.254 (a veth, the agent
// side 169.254.0.1/16) serving test/netns/fake-imds.mjs. The agent has no token in its config,
// file or environment, only registration.use_metadata: with IMDSv2 and with the v1 fallback it
// registers with the token the metadata service hands out (a token the control plane issued); a
// slow service (past metadata_timeout), an oversized body and a 404 make `up` exit 1 naming the
// reason. The token never appears in the agent's output.
//
// Network rule: traffic stays inside the namespaces this file creates (and their loopbacks).

import { type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, type Netns } from '../helpers/netns.js';
import { MeshLab, until } from '../helpers/mesh-lab.js';

const skip = requireRoot('metadata-token netns tests') !== undefined;
const FAKE_IMDS = join(import.meta.dirname, 'fake-imds.mjs');

describe.skipIf(skip)('bootstrap token from cloud metadata (169.254.169.254)', () => {
  const mesh = new MeshLab({ net: '10.79.0' });
  mesh.tokenFiles = true;
  let agentNs: Netns;
  let imdsNs: Netns;
  const agentIp = '10.79.0.11';

  beforeAll(async () => {
    await mesh.setup(0, 'plexd-metadata-');
    agentNs = await mesh.lab.namespace();
    await mesh.plug(agentNs, agentIp);
    imdsNs = await mesh.lab.namespace();
    await mesh.lab.veth(agentNs, imdsNs, { a: '169.254.0.1/16', b: '169.254.169.254/16' });
  }, 60_000);
  afterAll(() => mesh.cleanup());

  /** Starts the fake IMDS in `mode` serving `token`; resolves once it listens. */
  async function startImds(mode: string, token: string): Promise<ChildProcess> {
    const p = imdsNs.spawn([process.execPath, FAKE_IMDS, mode, token]);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('fake IMDS did not start')), 10_000);
      p.stdout!.on('data', (d: Buffer) => d.toString().includes('READY') && (clearTimeout(t), resolve()));
    });
    return p;
  }

  /** Runs one agent with use_metadata (no local token) against the fake IMDS in `mode`. */
  async function agentWith(mode: string): Promise<{ token: string; a: ReturnType<MeshLab['addAgent']>; up: ReturnType<MeshLab['spawnUp']>; imds: ChildProcess }> {
    const token = await mesh.token();
    const imds = await startImds(mode, token);
    const a = mesh.addAgent(agentNs, agentIp);
    const i = mesh.agents.length;
    const file = mesh.configFor(i, token);
    rmSync(mesh.tokenFile(i));
    writeFileSync(file, readFileSync(file, 'utf8').replace('registration: {', 'registration: {use_metadata: true, metadata_timeout: 1s, '));
    const up = mesh.spawnUp(agentNs, file);
    a.proc = up.proc;
    a.log = up.log;
    return { token, a, up, imds };
  }

  async function stop(p: ChildProcess): Promise<void> {
    if (p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill('SIGTERM');
    });
  }

  for (const [mode, protocol] of [['v2', 'IMDSv2'], ['v1', 'IMDSv1']] as const) {
    it(`registers with the token from ${protocol}`, async () => {
      const { token, a, up, imds } = await agentWith(mode);
      try {
        const meshIp = await until('agent registered', 20_000, async () => (await mesh.status(a))['mesh_ip'] as string | undefined);
        expect(meshIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
        const log = up.log.join('');
        expect(log).toContain(`bootstrap token: from cloud metadata (${protocol})`);
        expect(log).not.toContain(token);
      } finally {
        await stop(up.proc);
        await stop(imds);
      }
    }, 40_000);
  }

  for (const [mode, why] of [
    ['slow', /registration failed: no_token: .*cloud metadata: no answer from http:\/\/169\.254\.169\.254 within 1 s/],
    ['oversize', /registration failed: token_malformed: .*cloud metadata: .*larger than 512 bytes; refused/],
    ['missing', /registration failed: no_token: .*cloud metadata: GET http:\/\/169\.254\.169\.254\/plexd\/bootstrap-token: unexpected status 404/],
  ] as const) {
    it(`fails clearly: ${mode}`, async () => {
      const { token, up, imds } = await agentWith(mode);
      try {
        const code = await Promise.race([up.exit, new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
        expect(code, up.log.join('')).toBe(1);
        const log = up.log.join('');
        expect(log).toMatch(why);
        expect(log).not.toContain(token);
      } finally {
        await stop(up.proc);
        await stop(imds);
      }
    }, 40_000);
  }
});
