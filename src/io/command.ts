// Host commands (`ip`, `iptables`) for the layers that configure the OS around a TUN: run without
// a shell, so arguments never go through word splitting or expansion.

import { execFile } from 'node:child_process';

/** Runs `argv` (no shell, 10 s timeout); rejects with the command and its stderr. */
export function runCommand(argv: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(argv[0]!, argv.slice(1), { timeout: 10_000 }, (err, _out, stderr) => {
      if (err) reject(new Error(`${argv.join(' ')}: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}
