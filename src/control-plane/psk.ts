// Per-pair pre-shared keys (Noise_IKpsk2's psk slot): 32 bytes from the CSPRNG the first time a
// pair is needed, then stable for the pair until one side is removed.

import { randomBytes } from 'node:crypto';
import type { Db } from './database.js';
import { prepared } from './prepared.js';

/** The PSK shared by nodes with rows `x` and `y` (nodes.row), created on first use. Call inside a
 *  write transaction so both sides of a pair always see the same key. */
export function pairPsk(db: Db, x: number, y: number): Buffer {
  if (x === y) throw new RangeError(`a node has no PSK with itself (row ${x})`);
  const a = Math.min(x, y);
  const b = Math.max(x, y);
  prepared(db, 'INSERT OR IGNORE INTO pair_psks (a, b, psk) VALUES (?, ?, ?)').run(a, b, randomBytes(32));
  return (prepared(db, 'SELECT psk FROM pair_psks WHERE a = ? AND b = ?').get(a, b) as { psk: Buffer }).psk;
}

/** Forgets every PSK of node row `row` (on removal). */
export function dropPsks(db: Db, row: number): void {
  prepared(db, 'DELETE FROM pair_psks WHERE a = ? OR b = ?').run(row, row);
}
