// Per-pair pre-shared keys (Noise_IKpsk2's psk slot): 32 bytes from the CSPRNG the first time a
// pair is needed, then stable for the pair until one side is removed.

import { randomBytes } from 'node:crypto';
import type { Db } from './database.js';
import { prepared } from './prepared.js';

/**
 * The PSKs node row `self` shares with each row in `peers` (nodes.row), creating missing ones
 * from the CSPRNG. One read of the node's pairs plus one insert per new pair. Call inside a write
 * transaction so both sides of a pair always see the same key.
 */
export function psksOf(db: Db, self: number, peers: readonly number[]): Map<number, Buffer> {
  const have = new Map<number, Buffer>();
  for (const r of prepared(db, 'SELECT a, b, psk FROM pair_psks WHERE a = ? UNION ALL SELECT a, b, psk FROM pair_psks WHERE b = ?').all(self, self) as Array<{ a: number; b: number; psk: Buffer }>) {
    have.set(r.a === self ? r.b : r.a, r.psk);
  }
  const missing = peers.filter((p) => p !== self && !have.has(p));
  if (missing.length > 0) {
    const pool = randomBytes(32 * missing.length);
    const insert = prepared(db, 'INSERT INTO pair_psks (a, b, psk) VALUES (?, ?, ?)');
    missing.forEach((p, i) => {
      const psk = pool.subarray(32 * i, 32 * i + 32);
      insert.run(Math.min(self, p), Math.max(self, p), psk);
      have.set(p, psk);
    });
  }
  return have;
}

/** Forgets every PSK of node row `row` (on removal). */
export function dropPsks(db: Db, row: number): void {
  prepared(db, 'DELETE FROM pair_psks WHERE a = ? OR b = ?').run(row, row);
}
