// Root tier: `plexd-userspace conformance live` end to end through the built command, in both
// pairings with Debian's wireguard-go (every scenario must pass), against a test double that
// accepts replayed packets (exactly the replay scenario must fail), and interrupted with Ctrl-C
// (nothing may be left behind). Skipped with a printed reason when not root.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIVE_SCENARIOS } from '../../src/conformance/live.js';
import { requireRoot } from '../helpers/netns.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin/plexd-userspace.js');
const BROKEN = join(ROOT, 'test/conformance/fixtures/accept-replay-target.mjs');

function skipReason(): string | undefined {
  const r = requireRoot('test/netns/conformance-live.test.ts');
  if (r !== undefined) return r;
  if (spawnSync('wireguard-go', ['--version']).status !== 0) {
    console.warn('[skip] test/netns/conformance-live.test.ts: wireguard-go is not installed');
    return 'wireguard-go is not installed';
  }
  return undefined;
}
const reason = skipReason();

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly pid: number;
}

/** Runs the built command; `interruptOn` sends SIGINT once stderr matches it. */
function conformance(args: readonly string[], interruptOn?: RegExp): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'conformance', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (interruptOn !== undefined && !interrupted && interruptOn.test(stderr)) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, pid: child.pid! });
    });
  });
}

/** Namespaces, links and UAPI sockets named after the runner process `pid` that still exist. */
function leftovers(pid: number): string[] {
  const prefix = `plxt${pid.toString(36)}-`;
  const names = [
    ...(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '').split('\n').map((l) => l.split(' ')[0] ?? ''),
    ...(spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout ?? '').split('\n').map((l) => ((l.split(': ')[1] ?? '').split('@')[0] ?? '')),
    ...readdirSync('/var/run/wireguard').map((f) => `${f}`),
  ];
  const procs = (spawnSync('pgrep', ['-f', prefix], { encoding: 'utf8' }).stdout ?? '').trim();
  return [...names.filter((n) => n.startsWith(prefix)), ...(procs === '' ? [] : [`processes ${procs}`])];
}

interface JsonReport {
  passed: boolean;
  results: Array<{ name: string; result: string; detail: string }>;
}

describe.skipIf(reason !== undefined)('plexd-userspace conformance live', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'plexd-conformance-'));
    // The command runs the built JavaScript (bin -> dist), as users run it.
    spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'ignore' });
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['plexd-userspace', 'wireguard-go'],
    ['wireguard-go', 'plexd-userspace'],
  ])('--target %s --peer %s: every scenario passes, JUnit written, nothing left behind', async (target, peer) => {
    const junit = join(dir, `${target}.xml`);
    const r = await conformance(['live', '--target', target, '--peer', peer, '--json', '--junit', junit]);
    const report = JSON.parse(r.stdout) as JsonReport;
    expect(report.results.filter((x) => x.result !== 'pass')).toEqual([]);
    expect(report.results.map((x) => x.name)).toEqual([...LIVE_SCENARIOS]);
    expect(r.code).toBe(0);
    expect(readFileSync(junit, 'utf8')).toContain(`tests="${LIVE_SCENARIOS.length}" failures="0"`);
    expect(leftovers(r.pid)).toEqual([]);
  });

  it('reports a target that accepts replayed packets as failing the replay scenario only', async () => {
    const r = await conformance(['live', '--target', BROKEN, '--only', 'handshake-peer-initiates,replay,malformed', '--json']);
    const report = JSON.parse(r.stdout) as JsonReport;
    const byName = new Map(report.results.map((x) => [x.name, x]));
    expect(byName.get('replay')).toMatchObject({ result: 'fail', detail: expect.stringMatching(/answered a replayed transport packet/) });
    expect(byName.get('handshake-peer-initiates')?.result).toBe('pass');
    expect(byName.get('malformed')?.result).toBe('pass');
    expect(byName.get('rekey')?.result).toBe('skip');
    expect(report.passed).toBe(false);
    expect(r.code).toBe(1);
    expect(leftovers(r.pid)).toEqual([]);
  });

  it('cleans up namespaces, interfaces, sockets and processes on Ctrl-C', async () => {
    const r = await conformance(['live', '--target', 'wireguard-go', '--peer', 'plexd-userspace'], /running data-ipv4/);
    expect(r.stderr).toMatch(/SIGINT: cleaning up/);
    expect(r.code).toBe(130);
    expect(leftovers(r.pid)).toEqual([]);
  });
});
