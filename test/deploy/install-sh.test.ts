// deploy/install.sh (issue 17): fetches nothing; given the standalone binary it runs `install`
// from it, given the npm tarball it installs it with npm into /opt/plexd (under --root) and runs
// that package's `install`; the remaining arguments pass through and the exit code comes back.
// Fake binaries and a fake tarball record how they were called; one fake binary runs our real
// CLI, so the whole path ends in files under a --root. shellcheck-clean where shellcheck exists.

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { INSTALL_PATHS, unitFile } from '../../src/cli/install.js';

const SCRIPT = join(import.meta.dirname, '../../deploy/install.sh');
const BIN = join(import.meta.dirname, '../../bin/plexd-userspace.js');
const top = mkdtempSync(join(tmpdir(), 'plexd-install-sh-'));
afterAll(() => rmSync(top, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string) => {
  const d = join(top, `${name}${n++}`);
  mkdirSync(d);
  return d;
};

function sh(args: string[], env: Record<string, string> = {}): { code: number; out: string; err: string } {
  const r = spawnSync('sh', [SCRIPT, ...args], { encoding: 'utf8', env: { ...process.env, TMPDIR: top, ...env }, timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** A fake binary that writes its $0 and arguments, one a line, to $FAKE_LOG and exits $FAKE_EXIT. */
function fakeBinary(executable = true): string {
  const f = join(fresh('bin'), 'plexd-userspace-linux-x64');
  writeFileSync(f, '#!/bin/sh\nprintf \'%s\\n\' "$0" "$@" > "$FAKE_LOG"\nexit "${FAKE_EXIT:-0}"\n');
  chmodSync(f, executable ? 0o755 : 0o644);
  return f;
}

const shellcheck = spawnSync('shellcheck', ['--version']).status === 0;

describe('deploy/install.sh', () => {
  it.skipIf(!shellcheck)('is shellcheck-clean as POSIX sh', () => {
    const r = spawnSync('shellcheck', ['--shell=sh', SCRIPT], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('runs the binary\'s install with the remaining arguments and returns its exit code', () => {
    const bin = fakeBinary();
    const log = join(top, `log${n++}`);
    const r = sh([bin, '--api-url', 'https://cp.example', '--token-file', '/root/token'], { FAKE_LOG: log, FAKE_EXIT: '0' });
    expect(r.code).toBe(0);
    expect(readFileSync(log, 'utf8')).toBe(`${bin}\ninstall\n--api-url\nhttps://cp.example\n--token-file\n/root/token\n`);
    expect(sh([bin, '--bogus'], { FAKE_LOG: log, FAKE_EXIT: '2' }).code).toBe(2);
  });

  it('a binary copied without its exec bit runs from a private copy that is removed afterwards', () => {
    const bin = fakeBinary(false);
    const log = join(top, `log${n++}`);
    const before = readdirSync(top).length;
    const r = sh([bin, '--root', '/x'], { FAKE_LOG: log, FAKE_EXIT: '1' });
    expect(r.code).toBe(1);
    const [self, ...args] = readFileSync(log, 'utf8').trimEnd().split('\n');
    expect(self).toMatch(new RegExp(`^${top}/plexd-userspace\\.`));
    expect(args).toEqual(['install', '--root', '/x']);
    expect(existsSync(self!)).toBe(false);
    expect(readdirSync(top).length).toBe(before + 1); // only the log is new
  });

  it('the npm tarball goes into --root/opt/plexd with npm, and its bin runs install', () => {
    const pkg = fresh('pkg');
    mkdirSync(join(pkg, 'package/bin'), { recursive: true });
    writeFileSync(join(pkg, 'package/package.json'), JSON.stringify({ name: 'plexd-userspace', version: '0.0.0-fake', bin: { 'plexd-userspace': 'bin/fake.js' } }));
    writeFileSync(join(pkg, 'package/bin/fake.js'), '#!/usr/bin/env node\nrequire("node:fs").writeFileSync(process.env.FAKE_LOG, JSON.stringify({ argv: process.argv.slice(2), script: __filename }));\n', { mode: 0o755 });
    const tgz = join(pkg, 'plexd-userspace-0.0.0-fake.tgz');
    expect(spawnSync('tar', ['czf', tgz, '-C', pkg, 'package']).status).toBe(0);
    const root = fresh('root');
    const log = join(top, `log${n++}`);
    const r = sh([tgz, '--root', root, '--api-url', 'https://cp.example'], { FAKE_LOG: log, npm_config_offline: 'true' });
    expect(r.err).not.toMatch(/ERR!/);
    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(log, 'utf8'))).toEqual({ argv: ['install', '--root', root, '--api-url', 'https://cp.example'], script: join(root, 'opt/plexd/node_modules/plexd-userspace/bin/fake.js') });
  });

  it('ends in an installed tree: a fake binary that is our CLI, into a --root', () => {
    const bin = join(fresh('bin'), 'plexd-userspace');
    writeFileSync(bin, `#!/bin/sh\nexec '${process.execPath}' '${BIN}' "$@"\n`, { mode: 0o755 });
    const root = fresh('root');
    const token = join(top, `token${n++}`);
    writeFileSync(token, 'tok-install-sh-1\n');
    const r = sh([bin, '--root', root, '--api-url', 'https://cp.example', '--token-file', token]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).not.toContain('tok-install-sh-1');
    expect(readFileSync(join(root, INSTALL_PATHS.unitFile), 'utf8')).toBe(unitFile());
    expect(readFileSync(join(root, INSTALL_PATHS.tokenFile), 'utf8')).toBe('tok-install-sh-1\n');
    expect(existsSync(join(root, INSTALL_PATHS.binary))).toBe(true);
  });

  it('bad command lines: usage (2) without a file or with a flag first, 1 for a missing file', () => {
    const none = sh([]);
    expect(none.code).toBe(2);
    expect(none.err).toContain('sh install.sh FILE [install arguments ...]');
    const flag = sh(['--api-url', 'x']);
    expect(flag.code).toBe(2);
    expect(flag.err).toBe('install.sh: the first argument is the file to install (binary or npm tarball), got --api-url\n');
    const missing = sh([join(top, 'nope.tgz'), '--api-url', 'x']);
    expect(missing.code).toBe(1);
    expect(missing.err).toBe(`install.sh: ${join(top, 'nope.tgz')}: no such file\n`);
    const help = sh(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('It fetches nothing');
  });
});
