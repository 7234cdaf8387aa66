// Issue 11 item 2: a WireGuard public key belongs to one node. Registration and POST
// /v1/keys/rotate with another node's key are refused (409 public_key_in_use), a UNIQUE index
// backs it, and a database from before the index that already holds duplicates still starts: the
// later holder is marked, left out of peer lists and logged until it rotates.

import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../src/control-plane/schema.js';
import { createControlPlane } from '../../src/control-plane/server.js';
import { ControlPlaneStore } from '../../src/control-plane/store.js';
import { createLogger } from '../../src/log/logger.js';
import { ALLOW_ALL_MESH_RULES } from '../../src/control-plane/policy.js';
import { harnessEach, randomKey } from './harness.js';

const h = harnessEach({}, { open: true });

describe('public keys are unique', () => {
  it('registration with a key another node holds is 409 public_key_in_use, and uses no token', async () => {
    const a = await h.register();
    const token = h.cp.store.createToken().token;
    const r = await h.call('POST', '/v1/register', { project_id: 'default', resource_handle: 'claimer', bootstrap_token: token, nonce: randomUUID(), public_key: h.cp.store.node(a.node_id)!.public_key });
    expect(r.status).toBe(409);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect(r.body).toMatchObject({ type: 'urn:plexd:problem:public_key_in_use', code: 'public_key_in_use', status: 409 });
    expect(h.cp.store.listNodes()).toHaveLength(1);
    await h.register({ bootstrap_token: token }); // the token was not consumed
  });

  it('rotating to another node\'s key is 409, and nobody\'s view changes', async () => {
    const a = await h.register();
    const b = await h.register();
    const c = await h.register();
    const stateOfC = async () => (await h.call('GET', `/v1/nodes/${c.node_id}/state`, undefined, c.auth)).body;
    const before = await stateOfC();
    const aKey = h.cp.store.node(a.node_id)!.public_key;
    const r = await h.call('POST', '/v1/keys/rotate', { new_public_key: aKey }, b.auth);
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({ code: 'public_key_in_use' });
    expect(await stateOfC()).toEqual(before);
    // Its own fresh key still rotates, and repeating it is the same rotation.
    const fresh = randomKey();
    const ok = await h.call('POST', '/v1/keys/rotate', { new_public_key: fresh }, b.auth);
    expect(ok.status).toBe(200);
    expect((await h.call('POST', '/v1/keys/rotate', { new_public_key: fresh }, b.auth)).body).toEqual(ok.body);
  });

  it('the UNIQUE index refuses a duplicate written past the store', async () => {
    const a = await h.register();
    const b = await h.register();
    const key = h.cp.store.node(a.node_id)!.public_key;
    expect(() => h.cp.store.db.prepare('UPDATE nodes SET public_key = ? WHERE node_id = ?').run(key, b.node_id)).toThrow(/UNIQUE constraint failed: nodes.public_key|duplicate key value violates unique constraint "nodes_public_key"/);
  });
});

describe('migration 4 over existing duplicates', () => {
  it('starts, keeps the longest holder, hides and logs the later one until it rotates', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cp-dupkey-'));
    try {
      const file = join(dir, 'v3.db');
      const raw = new Database(file);
      for (const m of MIGRATIONS.slice(0, 3)) raw.exec(m);
      raw.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (3)');
      raw.prepare("INSERT INTO projects (id, created_at) VALUES ('default', 0)").run();
      const insert = raw.prepare(`INSERT INTO nodes (node_id, project_id, resource_handle, mode, public_key, key_rotated_at, mesh_ip, mesh_ip_num, nsk_hash, status, registered_at, last_heartbeat_at)
        VALUES (?, 'default', ?, 'node', ?, ?, ?, ?, ?, 'online', ?, ?)`);
      const shared = randomKey();
      const now = Date.now();
      // The claimer registered FIRST and rotated onto the owner's key later: the owner has held it longest.
      const [claimer, owner, other] = [randomUUID(), randomUUID(), randomUUID()];
      insert.run(claimer, 'claimer', shared, now - 1000, '10.100.0.1', 0x0a640001, Buffer.alloc(32), now - 5000, now);
      insert.run(owner, 'owner', shared, null, '10.100.0.2', 0x0a640002, Buffer.alloc(32), now - 4000, now);
      insert.run(other, 'other', randomKey(), null, '10.100.0.3', 0x0a640003, Buffer.alloc(32), now - 3000, now);
      raw.close();
      chmodSync(file, 0o600);

      const lines: string[] = [];
      const cp = await createControlPlane({ db: file, listen: '127.0.0.1:0', insecureHttp: true, logger: createLogger('error', '', (l) => void lines.push(l)) });
      try {
        const store: ControlPlaneStore = cp.store;
        store.setPolicy('default', ALLOW_ALL_MESH_RULES);
        expect(store.keyConflicts().map((n) => n.node_id)).toEqual([claimer]);
        expect(lines.filter((l) => l.includes(claimer) && l.includes('shares its WireGuard public key'))).toHaveLength(1);
        const peersOfOther = () => store.peersOf(store.node(other)!).map((p) => p.node_id);
        expect(peersOfOther()).toEqual([owner]);
        // Its conflicting key cannot be confirmed by "rotating" to it again.
        expect(() => store.rotateKey(store.node(claimer)!, shared)).toThrow(expect.objectContaining({ code: 'public_key_in_use' }));
        store.rotateKey(store.node(claimer)!, randomKey());
        expect(store.keyConflicts()).toEqual([]);
        expect(peersOfOther().sort()).toEqual([claimer, owner].sort());
      } finally {
        await cp.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
