// Derived per-pair PSKs: both ends see the same key, every pair and epoch a different one,
// registration writes no per-pair rows, rotating a pair changes only that pair (and tells both
// ends), and a schema-1 database keeps its stored keys through the migration.

import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { schemaVersion } from '../../src/control-plane/database.js';
import { derivePsk } from '../../src/control-plane/psk.js';
import { MIGRATIONS } from '../../src/control-plane/schema.js';
import { ControlPlaneStore } from '../../src/control-plane/store.js';
import { ALLOW_ALL_MESH_RULES } from '../../src/control-plane/policy.js';
import { harnessEach, openStream, randomKey } from './harness.js';

const h = harnessEach({}, { open: true });

const count = (table: string) => (h.cp.store.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;

/** psk each node sees for each other node, as "viewer>peer" -> base64. */
async function pskTable(nodes: ReadonlyArray<{ node_id: string; auth: Record<string, string> }>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const n of nodes) {
    const st = await h.call('GET', `/v1/nodes/${n.node_id}/state`, undefined, n.auth);
    for (const p of st.body.peers as Array<{ node_id: string; psk: string }>) out.set(`${n.node_id}>${p.node_id}`, p.psk);
  }
  return out;
}

describe('derived pair PSKs', () => {
  it('derivePsk is symmetric and separates pairs and epochs', () => {
    const m = new Uint8Array(32).fill(7);
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    expect(derivePsk(m, a, b, 0).equals(derivePsk(m, b, a, 0))).toBe(true);
    expect(derivePsk(m, a, b, 0)).toHaveLength(32);
    const all = [derivePsk(m, a, b, 0), derivePsk(m, a, c, 0), derivePsk(m, b, c, 0), derivePsk(m, a, b, 1), derivePsk(new Uint8Array(32).fill(8), a, b, 0)];
    expect(new Set(all.map((k) => k.toString('hex'))).size).toBe(all.length);
    expect(() => derivePsk(m, a, a, 0)).toThrow(RangeError);
  });

  it('registration stores no per-pair row; both ends agree; all pairs differ', async () => {
    const nodes = [];
    for (let i = 0; i < 5; i++) nodes.push(await h.register());
    expect(count('pair_psks')).toBe(0);
    expect(count('pair_psk_epochs')).toBe(0);
    const t = await pskTable(nodes);
    expect(t.size).toBe(20);
    for (const [k, v] of t) {
      const [x, y] = k.split('>') as [string, string];
      expect(t.get(`${y}>${x}`), k).toBe(v);
    }
    expect(new Set(t.values()).size).toBe(10);
    // The registration snapshot carries the same keys as the later state pull.
    const last = nodes[4]!;
    for (const p of last.peer_snapshot) expect(p.psk).toBe(t.get(`${last.node_id}>${p.node_id}`));
  });

  it('rotating a pair bumps its epoch, changes only that pair, and tells both ends', async () => {
    const [a, b, c] = [await h.register(), await h.register(), await h.register()];
    const before = await pskTable([a, b, c]);
    const sa = await openStream(h.cp.url, a.node_id, a.auth);
    const sc = await openStream(h.cp.url, c.node_id, c.auth);
    try {
      expect(h.cp.store.rotatePairPsk(a.node_id, b.node_id)).toBe(1);
      expect(h.cp.store.rotatePairPsk(b.node_id, a.node_id)).toBe(2);
      expect(h.cp.store.rotatePairPsk(a.node_id, a.node_id)).toBeUndefined();
      expect(h.cp.store.rotatePairPsk(a.node_id, randomUUID())).toBeUndefined();
      const e = await sa.next((x) => x.envelope.type === 'peer_psk_assigned');
      expect(e.envelope.payload).toEqual({ node_id: b.node_id });
      const after = await pskTable([a, b, c]);
      expect(after.get(`${a.node_id}>${b.node_id}`)).not.toBe(before.get(`${a.node_id}>${b.node_id}`));
      expect(after.get(`${a.node_id}>${b.node_id}`)).toBe(after.get(`${b.node_id}>${a.node_id}`));
      for (const k of [`${a.node_id}>${c.node_id}`, `${b.node_id}>${c.node_id}`, `${c.node_id}>${a.node_id}`]) expect(after.get(k)).toBe(before.get(k));
      expect(count('pair_psk_epochs')).toBe(1);
      await new Promise((r) => setTimeout(r, 200));
      expect(sc.events.some((x) => x.envelope.type === 'peer_psk_assigned')).toBe(false);
      // Removing a node forgets its epoch rows.
      expect(h.cp.store.removeNode(b.node_id, 'test')).toBe(true);
      expect(count('pair_psk_epochs')).toBe(0);
    } finally {
      sa.close();
      sc.close();
    }
  });

  it('survives a restart: same master, same keys', async () => {
    const [a, b] = [await h.register(), await h.register()];
    h.cp.store.rotatePairPsk(a.node_id, b.node_id);
    const before = await pskTable([a, b]);
    await h.restart();
    expect(await pskTable([a, b])).toEqual(before);
  });
});

describe('migration from schema 1', () => {
  it('keeps stored pair keys in use, derives new pairs, and rotation replaces a stored key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cp-psk-mig-'));
    try {
      const file = join(dir, 'v1.db');
      // A database as schema 1 left it: two nodes and their stored random PSK.
      const raw = new Database(file);
      raw.exec(MIGRATIONS[0]!);
      raw.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1)');
      raw.prepare("INSERT INTO projects (id, created_at) VALUES ('default', 0)").run();
      const insertNode = raw.prepare(`INSERT INTO nodes (node_id, project_id, resource_handle, mode, public_key, mesh_ip, mesh_ip_num, nsk_hash, status, registered_at, last_heartbeat_at)
        VALUES (?, 'default', ?, 'node', ?, ?, ?, ?, 'online', ?, ?)`);
      const ids = [randomUUID(), randomUUID()];
      ids.forEach((id, i) => insertNode.run(id, `h${i}`, randomKey(), `10.100.0.${i + 1}`, 0x0a640001 + i, Buffer.alloc(32), Date.now(), Date.now()));
      const stored = Buffer.alloc(32, 0x5a);
      raw.prepare('INSERT INTO pair_psks (a, b, psk) VALUES (1, 2, ?)').run(stored);
      raw.close();
      chmodSync(file, 0o600); // what the operator does first: a group/world-readable file is refused

      const store = ControlPlaneStore.open(file);
      try {
        expect(schemaVersion(store.db)).toBe(MIGRATIONS.length);
        store.setPolicy('default', ALLOW_ALL_MESH_RULES);
        const n0 = store.node(ids[0]!)!;
        expect(store.peersOf(n0)[0]!.psk).toBe(stored.toString('base64'));
        expect(store.peersOf(store.node(ids[1]!)!)[0]!.psk).toBe(stored.toString('base64'));
        // A node registered after the upgrade gets derived keys with both.
        const c = store.register({ project_id: 'default', resource_handle: 'c', bootstrap_token: store.createToken().token, nonce: randomUUID(), public_key: randomKey() });
        expect(c.peer_snapshot).toHaveLength(2);
        expect(c.peer_snapshot.every((p) => p.psk !== stored.toString('base64'))).toBe(true);
        expect((store.db.prepare('SELECT COUNT(*) AS n FROM pair_psks').get() as { n: number }).n).toBe(1);
        // Rotation moves the legacy pair to a derived key.
        expect(store.rotatePairPsk(ids[0]!, ids[1]!)).toBe(1);
        const rotated = store.peersOf(n0).find((p) => p.node_id === ids[1])!.psk;
        expect(rotated).not.toBe(stored.toString('base64'));
        expect(store.peersOf(store.node(ids[1]!)!).find((p) => p.node_id === ids[0])!.psk).toBe(rotated);
        expect((store.db.prepare('SELECT COUNT(*) AS n FROM pair_psks').get() as { n: number }).n).toBe(0);
      } finally {
        store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
