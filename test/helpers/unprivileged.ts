// Running part of the package as an unprivileged user from a test. When we are root the command
// drops to nobody with `setpriv`; nobody cannot be assumed to read the checkout (a clone in /root
// sits under a 0700 directory, and under umask 077 every file in it is 0600), so what it runs is
// first copied into a fresh temp directory that everyone can read, made here and removed after.
// Anything that cannot be arranged is a printed reason to skip, never a failure.

import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestContext } from 'vitest';

/** The uid and gid the privilege drop switches to (nobody / nogroup on Debian). */
const UNPRIVILEGED_ID = 65534;

const asRoot = process.getuid?.() === 0;

/**
 * argv run as an unprivileged user: behind `setpriv` (to nobody, no groups, no inheritable
 * capabilities) when we are root, unchanged when we are not root already.
 */
function unprivileged(argv: readonly string[]): string[] {
  if (!asRoot) return [...argv];
  const id = String(UNPRIVILEGED_ID);
  return ['setpriv', `--reuid=${id}`, `--regid=${id}`, '--clear-groups', '--inh-caps=-all', ...argv];
}

/** A directory every user can read, holding copies of package files; remove() deletes it. */
interface ReadableCopy {
  /** The copy's root: a package-relative path `p` is at join(dir, p). */
  readonly dir: string;
  /** Deletes the copy. Idempotent, never throws. */
  remove(): void;
}

/** True when every directory from `dir` up to / lets other users through (search bit for others). */
function traversableByOthers(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) return false;
    if (d === dirname(d)) return true;
  }
}

/** Temp bases in order of preference: $TMPDIR first, the world-writable system ones after it. */
function readableBase(): string | undefined {
  for (const candidate of new Set([tmpdir(), '/tmp', '/var/tmp', '/dev/shm'])) {
    try {
      const real = realpathSync(candidate);
      if (traversableByOthers(real)) return real;
    } catch {
      // missing: try the next
    }
  }
  return undefined;
}

/**
 * Gives others read access to everything under `path` (and search access to directories),
 * whatever the umask made. Leaves symlinks (none after a dereferencing copy) and what they point to alone.
 */
function openUp(path: string): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  chmodSync(path, st.isDirectory() || (st.mode & 0o100) !== 0 ? 0o755 : 0o644);
  if (!st.isDirectory()) return;
  for (const entry of readdirSync(path)) openUp(join(path, entry));
}

/**
 * The packages under `root`/node_modules that the package at `root` needs at run time: its
 * dependencies and theirs (optional ones when installed), each a top-level node_modules entry.
 * Packages nested in another's node_modules come along with it. Throws if a required one is missing.
 */
export function runtimeDependencies(root: string): string[] {
  const seen = new Set<string>();
  const visit = (dir: string): void => {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    const optional = new Set(Object.keys(pkg.optionalDependencies ?? {}));
    for (const name of new Set([...Object.keys(pkg.dependencies ?? {}), ...optional])) {
      if (seen.has(name)) continue;
      const at = join(root, 'node_modules', name);
      if (!existsSync(join(at, 'package.json'))) {
        if (optional.has(name)) continue;
        throw new Error(`runtime dependency ${name} is not installed in ${join(root, 'node_modules')}`);
      }
      seen.add(name);
      visit(at);
    }
  };
  visit(root);
  return [...seen].sort();
}

/**
 * Copies `paths` (relative to `root`; files or directories, symlinks followed) into a fresh
 * directory that every user can read, or returns the reason it cannot be made (no temp base
 * whose parents let others through).
 */
function readableCopy(root: string, paths: readonly string[]): ReadableCopy | string {
  const base = readableBase();
  if (base === undefined) return `no temp directory other users can reach (TMPDIR=${tmpdir()}, /tmp, /var/tmp and /dev/shm are closed to them)`;
  const dir = mkdtempSync(join(base, 'plexd-readable-'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    for (const p of paths) cpSync(join(root, p), join(dir, p), { recursive: true, dereference: true });
    openUp(dir);
  } catch (err) {
    remove();
    throw err;
  }
  return { dir, remove };
}

/**
 * Why the unprivileged user cannot run `node` on `file` here (setpriv missing, node or the file
 * unreadable to them), or undefined when it can: a probe with the same privilege drop.
 */
function unprivilegedNodeUnavailableReason(file: string): string | undefined {
  const argv = unprivileged([process.execPath, '-e', `require('node:fs').accessSync(${JSON.stringify(file)}, require('node:fs').constants.R_OK)`]);
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 20_000 });
  if (r.error !== undefined) return `${argv[0]} cannot be run: ${r.error.message}`;
  if (r.status !== 0) return `uid ${asRoot ? UNPRIVILEGED_ID : process.getuid?.()} cannot run ${process.execPath} on ${file}: ${r.stderr.trim().split('\n').at(-1) ?? `exit ${r.status}`}`;
  return undefined;
}

/** What runUnprivileged() runs: package files to stage, the one the user must read, and the command. */
export interface UnprivilegedRun {
  /** Named in the printed `[skip] what: reason`. */
  readonly what: string;
  /** The package root the paths are relative to. */
  readonly root: string;
  /** Files or directories the command needs, relative to root. */
  readonly paths: readonly string[];
  /** The path (relative to root) the probe checks the user can read. */
  readonly probe: string;
  /** The command, given the directory holding the paths. */
  readonly argv: (dir: string) => string[];
  /** Time limit in ms (default 30 s). */
  readonly timeoutMs?: number;
}

/**
 * Runs `run.argv(dir)` as the unprivileged user, `dir` holding `run.paths`: a world-readable copy
 * (removed afterwards) when we are root, `run.root` itself when we are not. When that cannot be
 * arranged it prints `[skip] what: reason` and skips the test through `ctx`.
 */
export function runUnprivileged(ctx: TestContext, run: UnprivilegedRun): SpawnSyncReturns<string> {
  const skip = (why: string): never => {
    console.warn(`[skip] ${run.what}: ${why}`);
    return ctx.skip(why);
  };
  const copy = asRoot ? readableCopy(run.root, run.paths) : { dir: run.root, remove: () => {} };
  if (typeof copy === 'string') return skip(copy);
  try {
    const unavailable = unprivilegedNodeUnavailableReason(join(copy.dir, run.probe));
    if (unavailable !== undefined) return skip(unavailable);
    const [cmd, ...args] = unprivileged(run.argv(copy.dir));
    return spawnSync(cmd!, args, { encoding: 'utf8', timeout: run.timeoutMs ?? 30_000 });
  } finally {
    copy.remove();
  }
}
