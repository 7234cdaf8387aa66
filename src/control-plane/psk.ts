// Per-pair pre-shared keys (Noise_IKpsk2's psk slot), derived instead of stored: PSK =
// HMAC-SHA256(master, label || lo || 0 || hi || 0 || epoch) over the sorted pair of node ids, the
// master being 32 CSPRNG bytes made once per database and stored sealed (secrets.ts). A pair's epoch (0 unless rotated) is the
// only per-pair row, and only when non-zero, so registering a node writes nothing per peer.
// Pairs created before schema 2 keep their stored random PSK (`pair_psks`) until rotated, so an
// upgrade does not change any live tunnel's key.

import { createHmac, randomBytes } from 'node:crypto';
import type { Db } from './database.js';
import { prepared } from './prepared.js';
import { isSealed, type SecretBox } from './secrets.js';

/** A node as far as PSKs care: its row (legacy pairs) and its id (derived pairs). */
export interface PskNode {
  readonly row: number;
  readonly node_id: string;
}

const LABEL = Buffer.from('plexd-userspace pair psk v1\0');
const MASTER_KEY = 'psk_master';
/** Additional data of the sealed master: what the secret is. */
const MASTER_PURPOSE = 'plexd-cp meta psk_master';

/** The database's PSK master secret, created from the CSPRNG on first use and stored sealed by
 *  `box`; a plaintext one (older builds) is sealed in place. Call inside a write transaction, so
 *  two processes opening a new file agree on one. Throws ControlPlaneFileError when it does not
 *  open with `box`. */
export function pskMaster(db: Db, box: SecretBox): Buffer {
  prepared(db, 'INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(MASTER_KEY, box.seal(MASTER_PURPOSE, randomBytes(32)).toString('base64'));
  const stored = Buffer.from((prepared(db, 'SELECT value FROM meta WHERE key = ?').get(MASTER_KEY) as { value: string }).value, 'base64');
  const master = box.reveal(MASTER_PURPOSE, stored);
  if (!isSealed(stored)) prepared(db, 'UPDATE meta SET value = ? WHERE key = ?').run(box.seal(MASTER_PURPOSE, master).toString('base64'), MASTER_KEY);
  return master;
}

/** How the database holds its PSK master: not yet, in plaintext (older builds), or sealed. */
export function pskMasterState(db: Db): 'absent' | 'plain' | 'sealed' {
  const row = prepared(db, 'SELECT value FROM meta WHERE key = ?').get(MASTER_KEY) as { value: string } | undefined;
  if (row === undefined) return 'absent';
  return isSealed(Buffer.from(row.value, 'base64')) ? 'sealed' : 'plain';
}

/** The PSK of the pair {a, b} (node ids, either order) at `epoch`, in the project's PSK
 *  `generation` (0 unless a wide policy change cut pairs off; 0 derives as before it existed).
 *  Throws RangeError when a === b. */
export function derivePsk(master: Uint8Array, a: string, b: string, epoch: number, generation = 0): Buffer {
  if (a === b) throw new RangeError(`expected two different node ids, got ${a} twice`);
  const [lo, hi] = a < b ? [a, b] : [b, a];
  return createHmac('sha256', master).update(LABEL).update(`${lo}\0${hi}\0${epoch}${generation === 0 ? '' : `\0g${generation}`}`).digest();
}

/**
 * The PSKs `self` shares with each of `peers`, by peer node id: a legacy stored key when the pair
 * has one, else the key derived at the pair's epoch. Two indexed reads, whatever the mesh size.
 */
export function psksOf(db: Db, master: Uint8Array, self: PskNode, peers: readonly PskNode[], generation = 0): Map<string, Buffer> {
  const legacy = new Map<number, Buffer>();
  for (const r of prepared(db, 'SELECT a, b, psk FROM pair_psks WHERE a = ? UNION ALL SELECT a, b, psk FROM pair_psks WHERE b = ?').all(self.row, self.row) as Array<{ a: number; b: number; psk: Buffer }>) {
    legacy.set(r.a === self.row ? r.b : r.a, r.psk);
  }
  const epochs = new Map<string, number>();
  for (const r of prepared(db, 'SELECT a, b, epoch FROM pair_psk_epochs WHERE a = ? UNION ALL SELECT a, b, epoch FROM pair_psk_epochs WHERE b = ?').all(self.node_id, self.node_id) as Array<{ a: string; b: string; epoch: number }>) {
    epochs.set(r.a === self.node_id ? r.b : r.a, r.epoch);
  }
  const out = new Map<string, Buffer>();
  for (const p of peers) {
    if (p.node_id === self.node_id) continue;
    out.set(p.node_id, legacy.get(p.row) ?? derivePsk(master, self.node_id, p.node_id, epochs.get(p.node_id) ?? 0, generation));
  }
  return out;
}

/** Gives the pair {a, b} a new PSK: bumps its epoch and forgets a legacy stored key. Returns the
 *  new epoch. Call inside a write transaction. */
export function bumpPairEpoch(db: Db, a: PskNode, b: PskNode): number {
  const [lo, hi] = a.node_id < b.node_id ? [a, b] : [b, a];
  prepared(db, 'DELETE FROM pair_psks WHERE a = ? AND b = ?').run(Math.min(a.row, b.row), Math.max(a.row, b.row));
  return (prepared(db, 'INSERT INTO pair_psk_epochs (a, b, epoch) VALUES (?, ?, 1) ON CONFLICT (a, b) DO UPDATE SET epoch = pair_psk_epochs.epoch + 1 RETURNING epoch').get(lo.node_id, hi.node_id) as { epoch: number }).epoch;
}

/** Gives every pair of a project a new PSK at once: bumps its PSK generation and forgets the
 *  project's legacy stored keys. For a change too wide to bump pairs one by one. Call inside a
 *  write transaction. */
export function bumpProjectPskGeneration(db: Db, projectId: string): void {
  prepared(db, 'UPDATE projects SET psk_generation = psk_generation + 1 WHERE id = ?').run(projectId);
  prepared(db, 'DELETE FROM pair_psks WHERE a IN (SELECT row FROM nodes WHERE project_id = ?) OR b IN (SELECT row FROM nodes WHERE project_id = ?)').run(projectId, projectId);
}

/** The PSK generation of a project (0 when never bumped). */
export function projectPskGeneration(db: Db, projectId: string): number {
  return (prepared(db, 'SELECT psk_generation FROM projects WHERE id = ?').pluck().get(projectId) as number | undefined) ?? 0;
}

/** Forgets every stored PSK row (legacy keys and epochs) of a node being removed. */
export function dropPsks(db: Db, node: PskNode): void {
  prepared(db, 'DELETE FROM pair_psks WHERE a = ? OR b = ?').run(node.row, node.row);
  prepared(db, 'DELETE FROM pair_psk_epochs WHERE a = ? OR b = ?').run(node.node_id, node.node_id);
}
