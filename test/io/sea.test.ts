// src/io/sea.ts outside a standalone binary: where addons are unpacked, and unpackAddon's refusals,
// which keep the binary from loading a file another user could have written (the binary itself
// is exercised by test/cli/binary.test.ts and test/netns/binary.test.ts).

import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addonCacheDir, isStandaloneBinary, loadStandaloneAddon, selfCommand, standaloneAsset, unpackAddon } from '../../src/io/sea.js';

const root = mkdtempSync(join(tmpdir(), 'plexd-sea-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `d${n++}`);
const BYTES = new TextEncoder().encode('not really an ELF, but bytes to carry');

describe('outside the standalone binary', () => {
  it('is not one, has no assets, re-runs itself as node SCRIPT, and refuses to load an addon', () => {
    expect(isStandaloneBinary()).toBe(false);
    expect(standaloneAsset('vectors/x25519.json')).toBeUndefined();
    expect(selfCommand('/x/bin/plexd-userspace.js')).toEqual([process.execPath, '/x/bin/plexd-userspace.js']);
    expect(() => loadStandaloneAddon('plexd_native.node')).toThrow(/not running as the standalone binary/);
  });
});

describe('addonCacheDir', () => {
  it('XDG_CACHE_HOME when absolute, else /var/lib/plexd/cache for root, else ~/.cache', () => {
    expect(addonCacheDir({ XDG_CACHE_HOME: '/c' }, 1000)).toBe('/c/plexd-userspace');
    expect(addonCacheDir({ XDG_CACHE_HOME: '/c' }, 0)).toBe('/c/plexd-userspace');
    expect(addonCacheDir({ XDG_CACHE_HOME: 'relative' }, 0)).toBe('/var/lib/plexd/cache');
    expect(addonCacheDir({}, 0)).toBe('/var/lib/plexd/cache');
    expect(addonCacheDir({}, 1000)).toBe(join(homedir(), '.cache', 'plexd-userspace'));
  });
});

describe('unpackAddon', () => {
  it('writes the bytes once to a 0600 file named by their hash in a 0700 directory', () => {
    const dir = fresh();
    const file = unpackAddon('plexd_native.node', BYTES, dir);
    expect(file).toMatch(new RegExp(`^${dir}/plexd_native-[0-9a-f]{16}\\.node$`));
    expect(readFileSync(file)).toEqual(Buffer.from(BYTES));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const mtime = statSync(file).mtimeMs;
    expect(unpackAddon('plexd_native.node', BYTES, dir)).toBe(file);
    expect(statSync(file).mtimeMs).toBe(mtime);
  });

  it('refuses a file whose content is not the asset (and loads nothing)', () => {
    const dir = fresh();
    const file = unpackAddon('plexd_native.node', BYTES, dir);
    writeFileSync(file, 'tampered');
    expect(() => unpackAddon('plexd_native.node', BYTES, dir)).toThrow(/hash mismatch/);
  });

  it('refuses a directory or file that group or others may touch', () => {
    const dir = fresh();
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o770);
    expect(() => unpackAddon('plexd_native.node', BYTES, dir)).toThrow(/mode 770; it must be private/);
    chmodSync(dir, 0o700);
    const file = unpackAddon('plexd_native.node', BYTES, dir);
    chmodSync(file, 0o644);
    expect(() => unpackAddon('plexd_native.node', BYTES, dir)).toThrow(/mode 644; it must be private/);
  });

  it('refuses a symlink in place of the directory or the file', () => {
    const real = fresh();
    mkdirSync(real, { mode: 0o700 });
    const link = fresh();
    symlinkSync(real, link);
    expect(() => unpackAddon('plexd_native.node', BYTES, link)).toThrow(/is not a plain directory/);
    const dir = fresh();
    const file = unpackAddon('plexd_native.node', BYTES, dir);
    rmSync(file);
    const elsewhere = join(real, 'planted.node');
    writeFileSync(elsewhere, BYTES, { mode: 0o600 });
    symlinkSync(elsewhere, file);
    expect(() => unpackAddon('plexd_native.node', BYTES, dir)).toThrow(/is not a plain file/);
  });
});
