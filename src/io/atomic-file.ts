// Atomic file writes: a temp file (O_EXCL, never a symlink followed) in the same directory, fsync,
// rename, fsync of the directory, so a crash leaves either the old or the new file, never half of
// one. The one implementation for the agent's data_dir, install's files, the ACME cache and the
// standalone binary's addon cache.

import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Writes `data` to `path` atomically with exactly `mode` (default 0600; not masked by the umask). */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    if (mode !== 0o600) fchmodSync(fd, mode);
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // best effort
    }
    throw err;
  }
  closeSync(fd);
  renameIntoPlace(tmp, path);
}

/**
 * Moves the fully written temp file `tmp` onto `path` (rename is atomic; `tmp` is removed when it
 * fails), then fsyncs the directory so the rename survives a crash.
 */
export function renameIntoPlace(tmp: string, path: string): void {
  try {
    renameSync(tmp, path);
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
  try {
    const dfd = openSync(join(path, '..'), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // directories cannot be fsynced on every filesystem
  }
}
