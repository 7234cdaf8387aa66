// File changes that can be undone: what `plexd-userspace install` does to a file system, one step
// at a time, each recorded so a failure later in the run puts back exactly what was there before
// (docs/deploy.md "Bare metal"). Every file is written atomically (a temp file in the same
// directory, fsync, rename, fsync of the directory) with its mode set explicitly, so the umask
// does not decide it and a crash leaves the old or the new file, never half of one.

import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants, copyFileSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync, rmdirSync, symlinkSync, unlinkSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { renameIntoPlace, writeFileAtomic as writeAtomic } from '../io/atomic-file.js';

/** What stood at a path before a change: nothing, or a file (content and mode), or a symlink. */
type Before = { kind: 'none' } | { kind: 'file'; data: Buffer; mode: number } | { kind: 'symlink'; target: string };

/** lstat, or undefined when nothing is there (ENOENT, or a parent that is a file: ENOTDIR). */
export function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

function tempName(path: string): string {
  return `${path}.tmp-${randomBytes(6).toString('hex')}`;
}

/** Copies the file `src` to `dest` atomically with exactly `mode`. */
function copyAtomic(src: string, dest: string, mode: number): void {
  const tmp = tempName(dest);
  try {
    copyFileSync(src, tmp, constants.COPYFILE_EXCL);
    chmodSync(tmp, mode);
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // the copy never created it
    }
    throw err;
  }
  renameIntoPlace(tmp, dest);
}

/**
 * A journal of file changes. Each method makes one change and records how to undo it;
 * `rollback()` undoes them all, last first. Paths are absolute (already under any --root).
 */
export class FileChanges {
  readonly #undo: Array<{ what: string; undo: () => void }> = [];

  /** The paths changed so far, in order (for messages). */
  get changed(): string[] {
    return this.#undo.map((u) => u.what);
  }

  /**
   * Creates `dir` and every missing parent with `mode` (set explicitly). An existing directory is
   * left as it is, unless `tighten` and its mode grants more than `mode`: then it is chmodded.
   */
  mkdir(dir: string, mode: number, tighten = false): void {
    const st = lstatOrUndefined(dir);
    if (st !== undefined) {
      if (!st.isDirectory()) throw Object.assign(new Error(`${dir} exists and is not a directory`), { code: 'ENOTDIR' });
      const old = st.mode & 0o7777;
      if (tighten && (old & ~mode) !== 0) {
        chmodSync(dir, mode);
        this.#undo.push({ what: dir, undo: () => chmodSync(dir, old) });
      }
      return;
    }
    this.mkdir(dirname(dir), 0o755);
    mkdirSync(dir, { mode: 0o700 });
    this.#undo.push({ what: dir, undo: () => rmdirSync(dir) });
    chmodSync(dir, mode);
  }

  /** Writes `data` to `path` (atomically, exactly `mode`); undo restores what was there. */
  writeFile(path: string, data: string | Uint8Array, mode: number): void {
    const before = this.#before(path);
    writeAtomic(path, data, mode);
    this.#undo.push({ what: path, undo: () => this.#restore(path, before) });
  }

  /** Copies `src` to `path` (atomically, exactly `mode`); undo restores what was there. */
  copyFile(src: string, path: string, mode: number): void {
    const before = this.#before(path);
    copyAtomic(src, path, mode);
    this.#undo.push({ what: path, undo: () => this.#restore(path, before) });
  }

  /** Records an action outside the file system (a systemctl call) and how to undo it. */
  record(what: string, undo: () => void): void {
    this.#undo.push({ what, undo });
  }

  /** Undoes every change, last first. Returns the messages of undo steps that failed (best effort). */
  rollback(): string[] {
    const failed: string[] = [];
    while (this.#undo.length !== 0) {
      const u = this.#undo.pop()!;
      try {
        u.undo();
      } catch (err) {
        failed.push(`${u.what}: ${(err as Error).message}`);
      }
    }
    return failed;
  }

  #before(path: string): Before {
    const st = lstatOrUndefined(path);
    if (st === undefined) return { kind: 'none' };
    if (st.isSymbolicLink()) return { kind: 'symlink', target: readlinkSync(path) };
    if (!st.isFile()) throw Object.assign(new Error(`${path} exists and is not a regular file`), { code: 'EISDIR' });
    return { kind: 'file', data: readFileSync(path), mode: st.mode & 0o7777 };
  }

  #restore(path: string, before: Before): void {
    switch (before.kind) {
      case 'none':
        unlinkSync(path);
        return;
      case 'file':
        writeAtomic(path, before.data, before.mode);
        return;
      case 'symlink': {
        const tmp = tempName(path);
        symlinkSync(before.target, tmp);
        renameIntoPlace(tmp, path);
      }
    }
  }
}
