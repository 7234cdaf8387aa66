// Visibility through the control plane (issue 23): peer lists, registration snapshots and peer
// events follow the policy; revisions tell the nodes that gain or lose a peer and give lost pairs
// a new PSK; groups by label compile to addresses for agents; bad policies change nothing.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FirewallRule } from '../../src/api/index.js';
import { harnessEach, openStream, runCli as cli, type Registered } from './harness.js';

const h = harnessEach();

const allowPair = (x: string, y: string): FirewallRule => ({ action: 'allow', protocol: 'any', source_cidr: `${x}/32`, destination_cidr: `${y}/32`, ports: null });
const ALL: FirewallRule = { action: 'allow', protocol: 'any', source_cidr: '10.100.0.0/16', destination_cidr: '10.100.0.0/16', ports: null };

async function stateOf(n: Registered): Promise<{ peers: Array<{ node_id: string; psk: string; public_key: string }>; policy: { rules: FirewallRule[]; fingerprint: string } | null }> {
  return (await h.call('GET', `/v1/nodes/${n.node_id}/state`, undefined, n.auth)).body;
}
const ids = (st: { peers: Array<{ node_id: string }> }): string[] => st.peers.map((p) => p.node_id).sort();

describe('visibility from the policy', () => {
  it('no policy: no node sees another, in snapshots, state or events', async () => {
    const a = await h.register();
    const s = await openStream(h.cp.url, a.node_id, a.auth);
    try {
      const b = await h.register();
      expect(b.peer_snapshot).toEqual([]);
      expect((await stateOf(a)).peers).toEqual([]);
      await h.call('PUT', `/v1/nodes/${b.node_id}/endpoint`, { endpoint: '192.0.2.7:51820', nat_type: 'full_cone', reported_at: new Date().toISOString() }, b.auth);
      h.cp.store.requestKeyRotation(a.node_id); // an event a does get: the end marker
      await s.next((e) => e.envelope.type === 'rotate_keys');
      expect(JSON.stringify(s.events)).not.toContain(b.node_id);
    } finally {
      s.close();
    }
  });

  it('allow n1<->n2 only: n3 learns neither; widening adds it, narrowing removes it with a new PSK', async () => {
    const [n1, n2, n3] = [await h.register(), await h.register(), await h.register()];
    h.cp.store.setPolicy('default', [allowPair(n1.mesh_ip, n2.mesh_ip)]);
    const s3 = await openStream(h.cp.url, n3.node_id, n3.auth);
    try {
      expect(ids(await stateOf(n1))).toEqual([n2.node_id]);
      expect(ids(await stateOf(n2))).toEqual([n1.node_id]); // the reply direction counts
      const st3 = await stateOf(n3);
      expect(st3.peers).toEqual([]);
      const text3 = JSON.stringify(st3);
      for (const n of [n1, n2]) for (const secret of [n.node_id, (await stateOf(n1 === n ? n2 : n1)).peers[0]!.public_key]) expect(text3).not.toContain(secret);
      // An endpoint change of n1 reaches n2, not n3.
      const s2 = await openStream(h.cp.url, n2.node_id, n2.auth);
      try {
        await h.call('PUT', `/v1/nodes/${n1.node_id}/endpoint`, { endpoint: '192.0.2.1:51820', nat_type: 'full_cone', reported_at: new Date().toISOString() }, n1.auth);
        await s2.next((e) => e.envelope.type === 'peer_endpoint_changed');
      } finally {
        s2.close();
      }
      // Widen: n3 gets peer_added for both, targeted at it.
      h.cp.store.setPolicy('default', [ALL]);
      await s3.next((e) => e.envelope.type === 'peer_added' && (e.envelope.payload.peer as { node_id: string }).node_id === n2.node_id);
      const added = s3.events.filter((e) => e.envelope.type === 'peer_added').map((e) => (e.envelope.payload.peer as { node_id: string }).node_id).sort();
      expect(added).toEqual([n1.node_id, n2.node_id].sort());
      expect(s3.events.some((e) => e.envelope.type === 'peer_endpoint_changed')).toBe(false);
      const granted = await stateOf(n3);
      expect(ids(granted)).toEqual([n1.node_id, n2.node_id].sort());
      const oldPsk = granted.peers.find((p) => p.node_id === n1.node_id)!.psk;
      // Narrow: n3 loses both (peer_removed, reason policy); n1<->n2 untouched.
      const psk12 = (await stateOf(n1)).peers.find((p) => p.node_id === n2.node_id)!.psk;
      h.cp.store.setPolicy('default', [allowPair(n1.mesh_ip, n2.mesh_ip)]);
      await s3.next((e) => e.envelope.type === 'peer_removed' && e.envelope.payload.node_id === n1.node_id);
      expect(s3.events.find((e) => e.envelope.type === 'peer_removed')!.envelope.payload.reason).toBe('policy');
      expect((await stateOf(n3)).peers).toEqual([]);
      expect((await stateOf(n1)).peers.find((p) => p.node_id === n2.node_id)!.psk).toBe(psk12);
      // A re-grant uses a new PSK for the pair that lost visibility.
      h.cp.store.setPolicy('default', [ALL]);
      const regranted = (await stateOf(n3)).peers.find((p) => p.node_id === n1.node_id)!.psk;
      expect(regranted).not.toBe(oldPsk);
      expect((await stateOf(n1)).peers.find((p) => p.node_id === n3.node_id)!.psk).toBe(regranted);
    } finally {
      s3.close();
    }
  });

  it('registration: the new node\'s snapshot and peer_added follow the policy', async () => {
    const n1 = await h.register();
    const n2 = await h.register();
    // 10.100.0.3 (the next node) may reach n1 only.
    h.cp.store.setPolicy('default', [allowPair('10.100.0.3', n1.mesh_ip)]);
    const s2 = await openStream(h.cp.url, n2.node_id, n2.auth);
    const s1 = await openStream(h.cp.url, n1.node_id, n1.auth);
    try {
      const n3 = await h.register();
      expect(n3.mesh_ip).toBe('10.100.0.3');
      expect(n3.peer_snapshot.map((p) => p.node_id)).toEqual([n1.node_id]);
      await s1.next((e) => e.envelope.type === 'peer_added');
      h.cp.store.requestKeyRotation(n2.node_id);
      await s2.next((e) => e.envelope.type === 'rotate_keys');
      expect(s2.events.map((e) => e.envelope.type)).toEqual(['rotate_keys']);
    } finally {
      s1.close();
      s2.close();
    }
  });
});

describe('groups', () => {
  it('labels from the token and `nodes label`; group rules compile to member addresses; a relabel moves visibility', async () => {
    const web = await h.register({ bootstrap_token: h.cp.store.createToken('default', 60_000, { role: 'web' }).token });
    const db = await h.register({ bootstrap_token: h.cp.store.createToken('default', 60_000, { role: 'db' }).token });
    const other = await h.register();
    const rule = { action: 'allow' as const, protocol: 'tcp' as const, source_cidr: '0.0.0.0/0', destination_cidr: '0.0.0.0/0', ports: { from: 5432, to: 5432 }, source_group: 'role=web', destination_group: 'role=db' };
    const out = h.cp.store.setPolicy('default', [rule]);
    expect(out.warnings).toEqual([]);
    expect(ids(await stateOf(web))).toEqual([db.node_id]);
    expect(ids(await stateOf(other))).toEqual([]);
    const dbState = await stateOf(db);
    expect(dbState.policy!.rules).toEqual([{ action: 'allow', protocol: 'tcp', source_cidr: `${web.mesh_ip}/32`, destination_cidr: `${db.mesh_ip}/32`, ports: { from: 5432, to: 5432 } }]);
    // `other` joins the web group: it sees db, db's compiled rules name it, fingerprint changes.
    const sdb = await openStream(h.cp.url, db.node_id, db.auth);
    try {
      const r = await cli('nodes', 'label', other.node_id, 'role=web', 'zone=a', '--db', h.dbFile);
      expect(r.code).toBe(0);
      await sdb.next((e) => e.envelope.type === 'peer_added');
    } finally {
      sdb.close();
    }
    expect(ids(await stateOf(other))).toEqual([db.node_id]);
    const after = await stateOf(db);
    expect(after.policy!.rules.map((x) => x.source_cidr).sort()).toEqual([`${web.mesh_ip}/32`, `${other.mesh_ip}/32`].sort());
    expect(after.policy!.fingerprint).not.toBe(dbState.policy!.fingerprint);
    const list = await cli('nodes', 'list', '--db', h.dbFile, '--json');
    expect(JSON.parse(list.out).find((n: { node_id: string }) => n.node_id === other.node_id).labels).toEqual({ role: 'web', zone: 'a' });
    // Removing the label takes it out again.
    expect((await cli('nodes', 'label', other.node_id, 'role-', '--db', h.dbFile)).code).toBe(0);
    expect(ids(await stateOf(other))).toEqual([]);
    // show --for and explain answer "why can't A reach B?".
    const show = await cli('policy', 'show', '--for', db.node_id, '--db', h.dbFile);
    expect(show.out).toContain(`allow tcp port 5432 ${web.mesh_ip}/32 -> ${db.mesh_ip}/32`);
    expect(show.out).toContain(`visible peers: 1\n  ${web.node_id} ${web.mesh_ip}`);
    const why = await cli('policy', 'explain', web.mesh_ip, db.node_id, 'tcp/5432', '--db', h.dbFile);
    expect(why.out).toContain('allowed: tcp/5432');
    expect(why.out).toContain('rules[0] allow tcp port 5432 group role=web -> group role=db');
    const whyNot = await cli('policy', 'explain', other.node_id, db.node_id, 'tcp/5432', '--db', h.dbFile);
    expect(whyNot.out).toContain('denied: no rule matches tcp/5432');
    expect(whyNot.out).toContain('do not see each other');
  });

  it('policy_updated reaches only the nodes whose compiled rules or peers change', async () => {
    const labelled = (role: string): Promise<Registered> => h.register({ bootstrap_token: h.cp.store.createToken('default', 60_000, { role }).token });
    const [web, db, c1, c2, x] = [await labelled('web'), await labelled('db'), await labelled('cache'), await labelled('cache'), await h.register()];
    const group = (action: 'allow' | 'deny', protocol: 'tcp' | 'udp', port: number, from: string, to: string) =>
      ({ action, protocol, source_cidr: '0.0.0.0/0', destination_cidr: '0.0.0.0/0', ports: { from: port, to: port }, source_group: `role=${from}`, destination_group: `role=${to}` }) as const;
    const p1 = [group('allow', 'tcp', 5432, 'web', 'db')];
    h.cp.store.setPolicy('default', p1);
    const nodes = [web, db, c1, c2, x];
    const streams = await Promise.all(nodes.map((n) => openStream(h.cp.url, n.node_id, n.auth)));
    try {
      // A rule among the cache nodes: they gain each other; web, db and x compile as before.
      const p2 = [...p1, group('allow', 'tcp', 6379, 'cache', 'cache')];
      const r2 = h.cp.store.setPolicy('default', p2).policy.revision_id;
      // A deny between web and db: their compiled rules change, nobody's peers do.
      const p3 = [group('deny', 'udp', 53, 'web', 'db'), ...p2];
      const r3 = h.cp.store.setPolicy('default', p3).policy.revision_id;
      // A group-free rule is in every node's compiled list: everyone.
      const r4 = h.cp.store.setPolicy('default', [...p3, { action: 'allow', protocol: 'icmp', source_cidr: '10.100.0.0/16', destination_cidr: '10.100.0.0/16', ports: null }]).policy.revision_id;
      const got = await Promise.all(
        streams.map(async (s) => {
          await s.next((e) => e.envelope.type === 'policy_updated' && e.envelope.payload.revision_id === r4);
          return s.events.filter((e) => e.envelope.type === 'policy_updated').map((e) => e.envelope.payload.revision_id);
        }),
      );
      expect(got).toEqual([[r3, r4], [r3, r4], [r2, r4], [r2, r4], [r4]]);
    } finally {
      for (const s of streams) s.close();
    }
  });

  it('refuses bad policies and changes nothing; warns about groups matching no node', async () => {
    await h.register({ bootstrap_token: h.cp.store.createToken('default', 60_000, { role: 'web' }).token });
    const a = await h.register();
    h.cp.store.setPolicy('default', [ALL]);
    const before = JSON.stringify([h.cp.store.policy('default'), h.cp.store.db.prepare('SELECT seq, type FROM events').all()]);
    const refuse = (rules: unknown[], message: RegExp) => expect(() => h.cp.store.setPolicy('default', rules as FirewallRule[])).toThrow(expect.objectContaining({ code: 'validation_failed', message: expect.stringMatching(message) }));
    refuse([{ ...ALL, source_group: 'team=x' }], /rules\[0\]\.source_group: unknown group "team=x"/);
    refuse([{ ...ALL, destination_group: 'role=' }], /expected a label key=value/);
    refuse([allowPair(a.mesh_ip, a.mesh_ip)], /rules\[0\]: names 10\.100\.0\.2 on both sides .*own peer/);
    expect(JSON.stringify([h.cp.store.policy('default'), h.cp.store.db.prepare('SELECT seq, type FROM events').all()])).toBe(before);
    expect(h.cp.store.setPolicy('default', [{ ...ALL, source_group: 'role=db' }]).warnings).toEqual(['rules[0].source_group: "role=db" matches no node yet']);
    // The CLI: file errors name the field; malformed labels are usage errors.
    const file = join(h.dir, 'rules.json');
    writeFileSync(file, JSON.stringify([{ ...ALL, source_group: 7 }]));
    const bad = await cli('policy', 'set', '--db', h.dbFile, '--file', file);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('rules[0].source_group: expected a label selector');
    writeFileSync(file, JSON.stringify([{ action: 'allow', source_cidr: '10.0.0.0/8', source_group: 'role=web' }]));
    expect((await cli('policy', 'set', '--db', h.dbFile, '--file', file)).err).toContain('either source_cidr or source_group');
    expect((await cli('token', 'create', '--db', h.dbFile, '--label', 'bad label')).code).toBe(2);
    expect((await cli('nodes', 'label', a.node_id, '=x', '--db', h.dbFile)).code).toBe(2);
    const tok = await cli('token', 'create', '--db', h.dbFile, '--label', 'team=blue', '--json');
    expect(JSON.parse(tok.out).labels).toEqual({ team: 'blue' });
  });
});

describe('a change too wide to diff pair by pair', () => {
  it('allow-all to nothing on 1,100 nodes: no pair set blows up, every pair of the project gets a new PSK', async () => {
    const { ControlPlaneStore, MAX_DIFF_PAIRS } = await import('../../src/control-plane/store.js');
    const store = ControlPlaneStore.open(join(h.dir, 'wide.db'));
    try {
      const insert = store.db.prepare(`INSERT INTO nodes (node_id, project_id, resource_handle, mode, public_key, mesh_ip, mesh_ip_num, nsk_hash, status, registered_at, last_heartbeat_at)
        VALUES (?, 'default', ?, 'node', ?, ?, ?, ?, 'online', 0, 0)`);
      const n = Math.ceil(Math.sqrt(MAX_DIFF_PAIRS)) + 100;
      store.db.transaction(() => {
        for (let i = 0; i < n; i++) insert.run(`00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, `n${i}`, Buffer.alloc(32, i % 251).toString('base64') + i, `10.100.${(i + 1) >> 8}.${(i + 1) & 255}`, ((10 << 24) | (100 << 16)) + i + 1, Buffer.alloc(32));
        store.db.prepare("UPDATE projects SET membership_gen = 7 WHERE id = 'default'").run();
      })();
      const [x, y] = store.listNodes() as [NonNullable<ReturnType<typeof store.node>>, NonNullable<ReturnType<typeof store.node>>];
      store.setPolicy('default', [ALL]);
      const before = store.peersOf(x).find((p) => p.node_id === y.node_id)!.psk;
      expect(store.peersOf(x)).toHaveLength(n - 1);
      store.setPolicy('default', [allowPair(x.mesh_ip, '10.100.0.250')]);
      expect(store.db.prepare("SELECT psk_generation FROM projects WHERE id = 'default'").pluck().get()).toBe(1);
      store.setPolicy('default', [ALL]);
      expect(store.peersOf(x).find((p) => p.node_id === y.node_id)!.psk).not.toBe(before);
    } finally {
      store.close();
    }
  }, 60_000);
});

describe('a heartbeat without a stream is told to reconcile', () => {
  it('also when more than a page of events it cannot see precede the one it should get', async () => {
    const [n1, n2, n3] = [await h.register(), await h.register(), await h.register()];
    h.cp.store.setPolicy('default', [allowPair(n1.mesh_ip, n2.mesh_ip)]);
    await stateOf(n3); // n3's last_state_seq is now the head of the log
    const now = (): string => new Date().toISOString();
    const beat = async (): Promise<boolean> =>
      (await h.call('POST', `/v1/nodes/${n3.node_id}/heartbeat`, { client_now: now(), binary_checksum: 'ab', binary_version: '0.1.0', nat_summary: {} }, n3.auth)).body.reconcile;
    // 70 endpoint changes of n1: n2 hears of them, n3 does not.
    for (let i = 0; i < 70; i++) {
      h.cp.store.reportEndpoint(h.cp.store.node(n1.node_id)!, { endpoint: `192.0.2.1:${20000 + i}`, nat_type: 'full_cone', reported_at: now() });
    }
    expect(await beat()).toBe(false);
    h.cp.store.requestKeyRotation(n3.node_id); // an event for n3, behind the 70
    expect(await beat()).toBe(true);
  });
});
