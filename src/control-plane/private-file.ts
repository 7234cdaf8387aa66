// File modes of the control plane's secrets on disk (docs/control-plane.md "Files and modes"): the
// database, its SQLite companions, the secrets key and the TLS key are created 0600 in a 0700
// directory, and a file someone made readable by group or others is refused unless the operator
// said --allow-insecure-permissions.

import { chmodSync, closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ControlPlaneFileError } from './errors.js';

/** Mode bits that let group or others read or write a file. */
const LOOSE_BITS = 0o066;

/** Octal text of a mode's permission bits, e.g. "0644". */
function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

/** Creates the directory of `file` with mode 0700 when it does not exist (an existing one is left
 *  as it is: it may be shared, such as /var/lib). */
export function ensurePrivateDir(file: string): void {
  const dir = dirname(file);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/**
 * Throws ControlPlaneFileError ERR_CP_INSECURE_PERMISSIONS when `file` is readable or writable by
 * group or others, unless `allowInsecure`. `what` names the file in the message ("database").
 */
export function assertPrivateFile(file: string, what: string, allowInsecure: boolean): void {
  const st = statSync(file);
  if (!st.isFile()) throw new ControlPlaneFileError('ERR_CP_NOT_A_FILE', `${what} ${file} is not a regular file`);
  if ((st.mode & LOOSE_BITS) !== 0 && !allowInsecure) {
    throw new ControlPlaneFileError(
      'ERR_CP_INSECURE_PERMISSIONS',
      `${what} ${file} has mode ${octal(st.mode)}: readable or writable by group or others; run chmod 600 ${file}, or pass --allow-insecure-permissions`,
    );
  }
}

/** Sets `file` to 0600 when it exists with group or other bits. Returns whether it changed. */
export function tightenIfPresent(file: string): boolean {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  if ((mode & 0o077) === 0) return false;
  chmodSync(file, 0o600);
  return true;
}

/** Creates an empty `file` with mode 0600 unless it exists. Returns whether it was created. */
export function createEmptyPrivateFile(file: string): boolean {
  try {
    closeSync(openSync(file, 'wx', 0o600));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/**
 * Writes `data` to `file` (mode 0600) only if `file` does not exist, atomically: a reader never
 * sees it partly written, and of two processes racing, one wins and the other reads its file.
 * Returns the content of `file` afterwards (ours or the winner's).
 */
export function writePrivateFileOnce(file: string, data: string): string {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  return readFileSync(file, 'utf8');
}
