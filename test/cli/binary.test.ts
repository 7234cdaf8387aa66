// The standalone binary (scripts/build-binary.mjs, docs/deploy.md "Standalone binary") is the same
// program as `node bin/plexd-userspace.js`: for each command line below both give the same exit
// code and the same output once run-dependent values (numbers, temp paths) are masked. The binary
// is built first when missing or stale (test/helpers/binary.ts). No root; binds 127.0.0.1 only.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_TIMEOUT_MS, installedBinary } from '../helpers/binary.js';
import { DAEMON, ensureBuilt } from '../helpers/wg-lab.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const dir = mkdtempSync(join(tmpdir(), 'plexd-binary-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(argv: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    // The binary unpacks its addons under XDG_CACHE_HOME: a directory of this test, not ~/.cache.
    const child = spawn(argv[0]!, argv.slice(1), { cwd: dir, env: { ...process.env, XDG_CACHE_HOME: join(dir, 'cache'), LOG_LEVEL: 'error' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Output with what differs from run to run masked: temp directories, UUIDs, digits, column padding. */
function shape(text: string): string {
  return text
    // Where the addon comes from differs by design: the binary's own asset, the checkout's build.
    .replace(/^Addon: (standalone|source|prebuilt) \(.*\)$/m, 'Addon: FOUND')
    .replace(/plexd-demo-\w+/g, 'plexd-demo-X')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'UUID')
    .replace(/\d+/g, '0')
    .replace(/ {2,}/g, '  ');
}

let binary: string;
beforeAll(async () => {
  await ensureBuilt();
  binary = await installedBinary(dir);
}, BUILD_TIMEOUT_MS + 60_000);

const CASES: ReadonlyArray<{ argv: string[]; code: number }> = [
  { argv: ['--help'], code: 0 },
  { argv: ['--version'], code: 0 },
  { argv: [], code: 2 },
  { argv: ['--bogus'], code: 2 },
  { argv: ['demo', '--nodes', 'x'], code: 2 },
  { argv: ['relay', '--bogus'], code: 2 },
  { argv: ['demo'], code: 0 },
];

describe('standalone binary vs node bin/plexd-userspace.js', () => {
  it.each(CASES)('$argv: same exit code ($code) and output', async ({ argv, code }) => {
    const [viaNode, viaBinary] = await Promise.all([run([process.execPath, DAEMON, ...argv]), run([binary, ...argv])]);
    expect(viaNode.code, viaNode.stderr).toBe(code);
    expect(viaBinary.code, viaBinary.stderr).toBe(code);
    expect(shape(viaBinary.stdout)).toBe(shape(viaNode.stdout));
    expect(shape(viaBinary.stderr)).toBe(shape(viaNode.stderr));
  }, 120_000);

  it('conformance vectors: every vector file, carried as an asset, passes', async () => {
    const r = await run([binary, 'conformance', 'vectors', '--provider', 'node']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\d+ passed, 0 failed, 0 skipped/m);
    for (const name of ['x25519', 'blake2s', 'replay-kernel-selftest', 'wireguard-handshake-kat']) expect(r.stdout).toMatch(new RegExp(`^${name}/\\w+ +PASS`, 'm'));
  }, 60_000);

  it('--version names the addon the binary carries, and no run prints Node\'s SEA require warning', async () => {
    const r = await run([binary, '--version']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Addon: standalone \(asset:plexd_native\.node\)$/m);
    expect(r.stderr).not.toContain('single-executable');
  }, 60_000);

  it('conformance live says it needs the npm package (its adversary is a Node script)', async () => {
    const r = await run([binary, 'conformance', 'live', '--target', 'plexd-userspace']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('conformance live runs from the npm package, not the standalone binary');
  }, 60_000);
});
