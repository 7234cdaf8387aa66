// The standalone binary (Node's single executable application, scripts/build-binary.mjs): whether
// we run as one, the data files it carries as assets (vectors/*.json), and its native addons
// (plexd_native.node, better_sqlite3.node), which dlopen can only load from a file. Each addon is
// written once to a private cache directory (0700, file 0600, both ours), named after its SHA-256,
// and its content is checked against the asset's hash before every load, so nothing another user
// can write is ever loaded.

import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as sea from 'node:sea';
import { writeFileAtomic } from './atomic-file.js';

/** True when this process is the standalone binary (a Node single executable application). */
export function isStandaloneBinary(): boolean {
  return sea.isSea();
}

/** The asset `name` of the standalone binary as text, or undefined outside one or when absent. */
export function standaloneAsset(name: string): string | undefined {
  if (!sea.isSea()) return undefined;
  try {
    return sea.getAsset(name, 'utf8');
  } catch {
    return undefined;
  }
}

/** The argv prefix that starts this program again: the binary itself, or Node with `script`. */
export function selfCommand(script: string): string[] {
  return sea.isSea() ? [process.execPath] : [process.execPath, script];
}

/**
 * Where the binary's addons are unpacked: $XDG_CACHE_HOME/plexd-userspace when set (absolute),
 * else /var/lib/plexd/cache for root (the systemd unit's writable state directory; ProtectHome
 * hides /root), else ~/.cache/plexd-userspace.
 */
export function addonCacheDir(env: NodeJS.ProcessEnv = process.env, uid = process.geteuid?.() ?? -1): string {
  const xdg = env['XDG_CACHE_HOME'];
  if (xdg !== undefined && xdg.startsWith('/')) return join(xdg, 'plexd-userspace');
  if (uid === 0) return '/var/lib/plexd/cache';
  return join(homedir(), '.cache', 'plexd-userspace');
}

/**
 * Loads the addon carried as asset `name` (e.g. 'plexd_native.node') and returns its exports.
 * Throws Error when not running as the standalone binary, when the asset is missing, or when the
 * cache directory or file is not private to us (owner, mode, symlink) or does not hold the
 * asset's bytes.
 */
export function loadStandaloneAddon(name: string, dir = addonCacheDir()): unknown {
  if (!sea.isSea()) throw new Error(`${name}: not running as the standalone binary`);
  let raw: ArrayBuffer;
  try {
    raw = sea.getRawAsset(name) as ArrayBuffer;
  } catch {
    throw new Error(`${name} is not in this standalone binary (built for ${process.platform}-${process.arch} without it); use the npm package for what needs it`);
  }
  const bytes = new Uint8Array(raw);
  const file = unpackAddon(name, bytes, dir);
  const module = { exports: {} as unknown };
  process.dlopen(module, file);
  return module.exports;
}

/**
 * Writes `bytes` to `dir`/<name stem>-<sha256 prefix>.node (unless a verified copy is there) and
 * returns its path, after checking that `dir` and the file are ours and private and that the file
 * holds exactly `bytes`. Throws Error otherwise. Exported for tests.
 */
export function unpackAddon(name: string, bytes: Uint8Array, dir: string): string {
  const digest = createHash('sha256').update(bytes).digest('hex');
  const file = join(dir, `${name.replace(/\.node$/, '')}-${digest.slice(0, 16)}.node`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  assertPrivate(dir, 'directory');
  if (lstatSync(file, { throwIfNoEntry: false }) === undefined) writeFileAtomic(file, bytes);
  assertPrivate(file, 'file');
  const held = readFileSync(file);
  if (createHash('sha256').update(held).digest('hex') !== digest) {
    throw new Error(`${file} does not hold the binary's ${name} (hash mismatch); delete it and run again`);
  }
  return file;
}

// Refuses a symlink, another owner, or any group/other permission bit on `path`.
function assertPrivate(path: string, what: 'directory' | 'file'): void {
  const st = lstatSync(path);
  const ok = what === 'directory' ? st.isDirectory() : st.isFile();
  const uid = process.geteuid?.();
  if (!ok) throw new Error(`addon cache ${what} ${path} is not a plain ${what}`);
  if (uid !== undefined && st.uid !== uid) throw new Error(`addon cache ${what} ${path} belongs to uid ${st.uid}, not to us (${uid})`);
  if ((st.mode & 0o077) !== 0) throw new Error(`addon cache ${what} ${path} has mode ${(st.mode & 0o777).toString(8)}; it must be private (0700/0600)`);
}

