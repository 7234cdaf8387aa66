// Issue 17, "no compiler needed to install": `npm pack`, then install that tarball with a PATH
// that has only node, npm, npx and sh (no cc, c++, make or python3) and nothing fetched from the
// network (`npm ci --offline` from the npm cache `npm ci` of the checkout filled). From the install:
// --version names the prebuilt addon, `demo` forms its mesh; without the addon --version says
// none, the demo (packet-callback mode, node:dgram bind) still works and a TUN device fails with
// one message saying what to do; without better-sqlite3 `control-plane` says how to get it.
//
// better-sqlite3 gets its binary from a download at install (prebuild-install), which this closed
// network refuses; the test stands a local prebuild (the checkout's own compiled binary, packed
// the way prebuild-install unpacks it) in for that download, through prebuild-install's
// npm_config_better_sqlite3_local_prebuilds. In the root tier: the TUN step runs as root in a
// namespace of its own, and the tier runs once per CI run.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsLab, requireRoot, type Netns } from '../helpers/netns.js';
import { ensureBuilt } from '../helpers/wg-lab.js';

const REPO = new URL('../../', import.meta.url).pathname;
const skipReason = requireRoot('test/netns/pack-install.test.ts');

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `file args` in `cwd` with exactly `env`; never rejects (a spawn failure is code 127). */
function exec(file: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 127;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** The first `name` on the test process's PATH. */
function which(name: string): string {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error(`${name} is not on PATH`);
}

const sha512 = (file: string) => `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;

interface LockEntry {
  version?: string;
  dev?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [key: string]: unknown;
}

/**
 * The lockfile of an application depending on the tarball: the tarball's own entry plus the
 * checkout's lockfile's non-dev packages (hoisted the same way), so `npm ci --offline` resolves
 * nothing and finds every tarball by integrity in the cache.
 */
function appLock(tarball: string): object {
  const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as LockEntry & { bin: Record<string, string>; engines: object; license: string };
  const packages: Record<string, unknown> = {
    '': { name: 'app', dependencies: { 'plexd-userspace': `file:${tarball}` } },
    'node_modules/plexd-userspace': {
      version: pkg.version,
      resolved: `file:${tarball}`,
      integrity: sha512(tarball),
      hasInstallScript: true,
      license: pkg.license,
      dependencies: pkg.dependencies,
      optionalDependencies: pkg.optionalDependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev === true || entry['link'] === true) continue;
    packages[path] = entry;
  }
  return { name: 'app', lockfileVersion: 3, requires: true, packages };
}

describe.skipIf(skipReason !== undefined)('the packed tarball installs and runs without a compiler', () => {
  let tmp: string;
  let app: string;
  let env: NodeJS.ProcessEnv;
  let installed: string;
  let install: Result;
  let installMs: number;
  const lab = new NetnsLab();
  const npx = (args: readonly string[]) => exec(join(tmp, 'bin', 'npx'), ['--offline', 'plexd-userspace', ...args], app, env);

  beforeAll(async () => {
    await ensureBuilt();
    tmp = mkdtempSync(join(tmpdir(), 'plexd-pack-'));
    // A PATH with only what npm needs to run scripts: no compiler, make or python.
    const bin = join(tmp, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, 'node'));
    for (const tool of ['npm', 'npx', 'sh']) symlinkSync(which(tool), join(bin, tool));
    env = { HOME: process.env['HOME'], PATH: bin, LANG: 'C', npm_config_update_notifier: 'false' };
    // dist/ is current (ensureBuilt), so pack without running `prepare` (the tsc build) again.
    const pack = await exec('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp], REPO, process.env);
    expect(pack.code, pack.stderr).toBe(0);
    const tarball = join(tmp, pack.stdout.trim().split('\n').pop()!);
    // better-sqlite3's binary where prebuild-install looks before it downloads.
    const bsq = dirname(createRequire(join(REPO, 'package.json')).resolve('better-sqlite3/package.json'));
    const bsqVersion = (JSON.parse(readFileSync(join(bsq, 'package.json'), 'utf8')) as { version: string }).version;
    const local = join(tmp, 'sqlite-prebuilds');
    mkdirSync(local);
    const packed = join(local, `better-sqlite3-v${bsqVersion}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`);
    const tar = await exec('tar', ['czf', packed, '-C', bsq, 'build/Release/better_sqlite3.node'], tmp, process.env);
    expect(tar.code, tar.stderr).toBe(0);
    app = join(tmp, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, dependencies: { 'plexd-userspace': `file:${tarball}` } }));
    writeFileSync(join(app, 'package-lock.json'), JSON.stringify(appLock(tarball), null, 2));
    const started = performance.now();
    install = await exec(join(bin, 'npm'), ['ci', '--offline', '--no-audit', '--no-fund', '--foreground-scripts'], app, {
      ...env,
      npm_config_better_sqlite3_local_prebuilds: local,
    }, 240_000);
    installMs = performance.now() - started;
    installed = join(app, 'node_modules', 'plexd-userspace');
  }, 300_000);

  afterAll(async () => {
    await lab.cleanup();
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  it('installs offline with no compiler on PATH, using the prebuilt addon', async () => {
    for (const tool of ['cc', 'c++', 'gcc', 'g++', 'make', 'python3']) {
      expect((await exec(join(tmp, 'bin', 'sh'), ['-c', `command -v ${tool}`], tmp, env)).code, tool).not.toBe(0);
    }
    expect(install.code, `${install.stdout}\n${install.stderr}`).toBe(0);
    console.log(`[pack-install] npm ci of the tarball without a compiler: ${(installMs / 1000).toFixed(1)} s`);
    expect(existsSync(join(installed, 'build')), 'nothing was compiled').toBe(false);
    expect(existsSync(join(app, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'))).toBe(true);
  });

  it('--version names the prebuilt addon; demo forms its mesh', async () => {
    const v = await npx(['--version']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toContain(`Node.js: ${process.version}`);
    expect(v.stdout).toContain(`Addon: prebuilt (${join(installed, 'prebuilds', `${process.platform}-${process.arch}`, 'plexd_native.node')})`);
    expect(v.stdout).toContain('Crypto provider: node');
    const demo = await npx(['demo']);
    expect(demo.code, `${demo.stdout}\n${demo.stderr}`).toBe(0);
    expect(demo.stdout).toContain('all 6 pairs answered');
  });

  it('without any addon: --version says none, demo still works, a TUN fails with one clear message', async () => {
    renameSync(join(installed, 'prebuilds'), join(installed, 'prebuilds.off'));
    try {
      const v = await npx(['--version']);
      expect(v.code, v.stderr).toBe(0);
      expect(v.stdout).toContain('Addon: none (TUN devices unavailable:');
      const demo = await npx(['demo']);
      expect(demo.code, `${demo.stdout}\n${demo.stderr}`).toBe(0);
      expect(demo.stdout).toContain('all 6 pairs answered');
      // As root, in a namespace of its own, so nothing could reach the host even if a TUN opened.
      const ns: Netns = await lab.namespace();
      const name = lab.uniqueName('p');
      const r = await ns.run(['env', `PATH=${env['PATH']}`, `HOME=${env['HOME']}`, process.execPath, join(installed, 'bin', 'plexd-userspace.js'), '-f', name], { timeoutMs: 30_000 });
      expect(r.code).toBe(1);
      const said = `${r.stdout}${r.stderr}`;
      expect(said.match(/a TUN device needs the native addon plexd_native\.node/g), said).toHaveLength(1);
      expect(said).toContain('npm rebuild plexd-userspace');
      expect(said).toContain('packet_callback');
    } finally {
      renameSync(join(installed, 'prebuilds.off'), join(installed, 'prebuilds'));
    }
  });

  it('without better-sqlite3: control-plane says how to get it, --version still works', async () => {
    rmSync(join(app, 'node_modules', 'better-sqlite3'), { recursive: true, force: true });
    const cp = await npx(['control-plane', 'serve']);
    expect(cp.code).toBe(1);
    expect(cp.stderr).toContain('needs the optional dependency better-sqlite3');
    expect(cp.stderr).toContain('npm install better-sqlite3');
    expect(cp.stderr).not.toMatch(/\n\s+at /); // one message, not a stack
    expect((await npx(['--version'])).code).toBe(0);
  });
});
