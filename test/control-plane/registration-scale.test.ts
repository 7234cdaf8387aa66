// Registration at scale (issue 20, schema 15), on both backends (unit and unit-pg):
// - mesh_alloc.dense_below lets allocation start above the dense bottom of the range, and a freed
//   address below it (removal) is still handed out first, lowest first;
// - membership_appends lets another process (a replica) extend its cached visibility model by the
//   nodes registered since, and any other membership change (labels, removal) makes it re-read;
// - the quiet heartbeat (store.ts #quietHeartbeat) takes one conditional UPDATE outside the writer
//   transaction, and everything that must be announced still goes through the locked path.
import { afterEach, describe, expect, it } from 'vitest';
import { ControlPlaneStore } from '../../src/control-plane/store.js';
import { harnessEach, randomKey } from './harness.js';

const h = harnessEach();
const opened: ControlPlaneStore[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});

/** A second store on the harness's database: another process, as a replica is. */
function otherProcess(): ControlPlaneStore {
  const s = ControlPlaneStore.open(h.dbFile);
  opened.push(s);
  return s;
}

/** Nodes labelled role=web see those labelled role=db (the labels must exist first). */
function webSeesDb(s: ControlPlaneStore): void {
  s.setPolicy('default', [{ action: 'allow', protocol: 'any', source_group: 'role=web', destination_group: 'role=db', ports: null }] as never);
}

function register(s: ControlPlaneStore, labels: Record<string, string> = {}, i = Math.random().toString(36).slice(2)): { node_id: string; mesh_ip: string } {
  const token = s.createToken('default', 60_000, labels).token;
  return s.register({ project_id: 'default', resource_handle: `h-${i}`, bootstrap_token: token, nonce: `n-${i}`, public_key: randomKey() });
}

describe('mesh address allocation', () => {
  it('hands out a freed address below the dense part first, lowest first, then continues above', () => {
    const s = h.cp.store;
    const ips = Array.from({ length: 6 }, (_, i) => register(s, {}, `a${i}`));
    expect(ips.map((n) => n.mesh_ip)).toEqual(['10.100.0.1', '10.100.0.2', '10.100.0.3', '10.100.0.4', '10.100.0.5', '10.100.0.6']);
    expect(s.removeNode(ips[3]!.node_id, 'test')).toBe(true);
    expect(s.removeNode(ips[1]!.node_id, 'test')).toBe(true);
    expect(register(s, {}, 'b0').mesh_ip).toBe('10.100.0.2');
    expect(register(s, {}, 'b1').mesh_ip).toBe('10.100.0.4');
    expect(register(s, {}, 'b2').mesh_ip).toBe('10.100.0.7');
  });

  it('sees a removal made by another process (the hint is in the database, lowered by trigger)', () => {
    const s = h.cp.store;
    const first = register(s, {}, 'c0');
    register(s, {}, 'c1');
    const other = otherProcess();
    expect(other.removeNode(first.node_id, 'test')).toBe(true);
    expect(register(s, {}, 'c2').mesh_ip).toBe('10.100.0.1');
    expect(register(other, {}, 'c3').mesh_ip).toBe('10.100.0.3');
  });

  it('still finds a free address when the stored hint is wrong (past a free one)', () => {
    const s = h.cp.store;
    register(s, {}, 'd0');
    s.db.prepare('UPDATE mesh_alloc SET dense_below = ? WHERE id = 1').run(0x0a64ff00); // 10.100.255.0: above every node
    expect(register(s, {}, 'd1').mesh_ip).toBe('10.100.255.0');
    s.db.prepare('UPDATE mesh_alloc SET dense_below = ? WHERE id = 1').run(0x0a650000); // past the range
    expect(register(s, {}, 'd2').mesh_ip).toBe('10.100.0.2');
  });
});

describe('the visibility model of another process', () => {
  it('is extended by the nodes registered since (not re-read), and equals a fresh read', () => {
    const s = h.cp.store;
    const old = register(s, { role: 'web' }, 'e0');
    s.createToken('default', 60_000, { role: 'db' });
    webSeesDb(s);
    const other = otherProcess();
    other.visibility('default'); // current at this generation
    const added = [register(s, { role: 'db' }, 'e1'), register(s, { role: 'web' }, 'e2'), register(s, { role: 'db' }, 'e3')];
    // Behind the stores' backs (no new generation): a re-read would see this label, an extended
    // model keeps the one it had. This tells the two paths apart; the model is then compared.
    s.db.prepare('UPDATE nodes SET labels = ? WHERE node_id = ?').run(JSON.stringify({ role: 'db' }), old.node_id);
    const grown = other.visibility('default');
    expect(grown.nodes.map((n) => n.id)).toEqual([old, ...added].map((n) => n.node_id));
    expect(grown.nodes[0]!.labels).toEqual({ role: 'web' });
    expect(grown.canSee(old.node_id, added[0]!.node_id)).toBe(true);
    expect(grown.canSee(added[1]!.node_id, added[2]!.node_id)).toBe(true);
    expect(grown.canSee(added[0]!.node_id, added[2]!.node_id)).toBe(false);
  });

  it('is re-read when the chain breaks: a label change or a removal in between', () => {
    const s = h.cp.store;
    const a = register(s, { role: 'web' }, 'f0');
    s.createToken('default', 60_000, { role: 'db' });
    webSeesDb(s);
    const other = otherProcess();
    other.visibility('default');
    const b = register(s, { role: 'db' }, 'f1');
    s.labelNode(a.node_id, { role: 'db' }); // a membership change that logs no append
    const c = register(s, { role: 'web' }, 'f2');
    const seen = other.visibility('default');
    expect(seen.nodes.map((n) => [n.id, n.labels.role])).toEqual([
      [a.node_id, 'db'],
      [b.node_id, 'db'],
      [c.node_id, 'web'],
    ]);
    expect(seen.canSee(c.node_id, a.node_id)).toBe(true);
    expect(s.removeNode(b.node_id, 'test')).toBe(true);
    const d = register(s, { role: 'db' }, 'f3');
    expect(other.visibility('default').nodes.map((n) => n.id)).toEqual([a.node_id, c.node_id, d.node_id]);
  });

  it('is re-read when the appends it needs were pruned', () => {
    const s = h.cp.store;
    const a = register(s, { role: 'web' }, 'g0');
    s.createToken('default', 60_000, { role: 'db' });
    webSeesDb(s);
    const other = otherProcess();
    other.visibility('default');
    const b = register(s, { role: 'db' }, 'g1');
    s.db.prepare('DELETE FROM membership_appends').run();
    s.db.prepare('UPDATE nodes SET labels = ? WHERE node_id = ?').run(JSON.stringify({ role: 'db' }), a.node_id);
    const seen = other.visibility('default');
    expect(seen.nodes.map((n) => [n.id, n.labels.role])).toEqual([
      [a.node_id, 'db'],
      [b.node_id, 'db'],
    ]);
  });
});

describe('the quiet heartbeat', () => {
  const beat = (endpoint?: string) => ({
    client_now: new Date().toISOString(),
    binary_version: '1.2.3',
    binary_checksum: 'sha256:00',
    nat_summary: endpoint === undefined ? {} : { endpoint, nat_type: 'full-cone' },
  });

  it('records the heartbeat and answers rotate_keys without writing an event', () => {
    const s = h.cp.store;
    const n = register(s, {}, 'h0');
    const node = s.node(n.node_id)!;
    const seq = (): number => s.db.prepare('SELECT COUNT(*) FROM events').pluck().get() as number;
    const before = seq();
    s.db.prepare('UPDATE nodes SET last_heartbeat_at = 0 WHERE node_id = ?').run(n.node_id);
    const out = s.heartbeat(node, beat() as never, true);
    expect(out.rotate_keys).toBe(false);
    const row = s.node(n.node_id)!;
    expect(row.last_heartbeat_at).toBeGreaterThan(0);
    expect(row.status).toBe('online');
    expect(seq()).toEqual(before);
    s.requestKeyRotation(n.node_id);
    expect(s.heartbeat(s.node(n.node_id)!, beat() as never, true).rotate_keys).toBe(true);
  });

  it('a new endpoint and a return from offline still announce (the locked path)', () => {
    const s = h.cp.store;
    const n = register(s, {}, 'i0');
    const types = (): string[] => s.db.prepare('SELECT type FROM events ORDER BY seq').pluck().all() as string[];
    s.heartbeat(s.node(n.node_id)!, beat('192.0.2.1:51820') as never, true);
    expect(types().at(-1)).toBe('peer_endpoint_changed');
    const count = types().length;
    s.heartbeat(s.node(n.node_id)!, beat('192.0.2.1:51820') as never, true); // same endpoint: quiet
    expect(types().length).toBe(count);
    s.db.prepare("UPDATE nodes SET status = 'offline' WHERE node_id = ?").run(n.node_id);
    const back = s.heartbeat(s.node(n.node_id)!, beat('192.0.2.1:51820') as never, true);
    expect(back.reconcile).toBe(true);
    expect(types().at(-1)).toBe('peer_added');
    expect(s.node(n.node_id)!.status).toBe('online');
  });

  it('falls back to the locked path when the row changed after it was read', () => {
    const s = h.cp.store;
    const n = register(s, {}, 'j0');
    const stale = s.node(n.node_id)!; // read as online
    s.db.prepare("UPDATE nodes SET status = 'offline' WHERE node_id = ?").run(n.node_id);
    const out = s.heartbeat(stale, beat() as never, true);
    expect(out.reconcile).toBe(true); // the locked path saw it offline
    expect(s.node(n.node_id)!.status).toBe('online');
  });
});
