// scripts/install.mjs, the package's `install` script (issue 17): with the prebuilt for this
// platform it builds nothing; with no addon and no compiler on PATH it still succeeds and says
// what is lost and how to build later. Run in a copy of the package layout, PATH without tools.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const REPO = new URL('../../', import.meta.url).pathname;
const HOST = `${process.platform}-${process.arch}`;
let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A package root with scripts/install.mjs (and `withPrebuilt`: this host's prebuilt), and a bin dir with only node. */
function layout(withPrebuilt: boolean): { root: string; bin: string } {
  const tmp = mkdtempSync(join(tmpdir(), 'plexd-install-'));
  dirs.push(tmp);
  const root = join(tmp, 'pkg');
  mkdirSync(join(root, 'scripts'), { recursive: true });
  cpSync(join(REPO, 'scripts', 'install.mjs'), join(root, 'scripts', 'install.mjs'));
  if (withPrebuilt) cpSync(join(REPO, 'prebuilds', HOST), join(root, 'prebuilds', HOST), { recursive: true });
  const bin = join(tmp, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  return { root, bin };
}

const install = (root: string, bin: string) =>
  spawnSync(join(bin, 'node'), [join(root, 'scripts', 'install.mjs')], { cwd: root, env: { PATH: bin }, encoding: 'utf8', timeout: 30_000 });

describe.skipIf(process.platform !== 'linux' || !existsSync(join(REPO, 'prebuilds', HOST)))('scripts/install.mjs', () => {
  it('with the prebuilt for this platform: exits 0, builds nothing, says nothing', () => {
    const { root, bin } = layout(true);
    const r = install(root, bin);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(existsSync(join(root, 'build'))).toBe(false);
  });

  it('with no addon and no compiler: exits 0 and says what is lost and how to build later', () => {
    const { root, bin } = layout(false);
    const r = install(root, bin);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`no native addon for ${HOST} and no compiler to build one (missing: c++, make, python3)`);
    expect(r.stderr).toContain('TUN devices are unavailable');
    expect(r.stderr).toContain('npm rebuild plexd-userspace');
    expect(existsSync(join(root, 'build'))).toBe(false);
  });
});
