// The PostgreSQL backend itself (issue 20), in the unit-pg project only (it needs the project's
// PostgreSQL server): migrate, copy from SQLite, a transaction whose connection dies, the leader
// lock, and input PostgreSQL cannot store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/control-plane/database.js';
import { lastSeq } from '../../src/control-plane/event-log.js';
import { listSecrets, setSecret } from '../../src/control-plane/node-state.js';
import { ALLOW_ALL_MESH_RULES } from '../../src/control-plane/policy.js';
import { PostgresDatabase } from '../../src/control-plane/postgres.js';
import { ControlPlaneStore } from '../../src/control-plane/store.js';
import { createTestDatabase, dropTestDatabase, randomKey, runCli, testPostgresUrl } from './harness.js';

const onPostgres = testPostgresUrl() !== undefined;

describe.skipIf(!onPostgres)('PostgreSQL backend', () => {
  let dir: string;
  let url: string;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cp-pg-'));
    url = (await createTestDatabase({ empty: true }))!;
  });
  afterEach(async () => {
    await dropTestDatabase(url);
    rmSync(dir, { recursive: true, force: true });
  });

  const register = (s: ControlPlaneStore, handle: string) =>
    s.register({ project_id: 'default', resource_handle: handle, bootstrap_token: s.createToken().token, nonce: `${handle}-nonce`, public_key: randomKey() });

  it('migrate is idempotent on both backends and makes what serve needs', async () => {
    const key = join(dir, 'pg.secrets.key');
    const first = await runCli('migrate', '--db', url, '--secrets-key', key, '--json');
    expect(first.code, first.err).toBe(0);
    expect(JSON.parse(first.out)).toEqual({ backend: 'postgres', from: 0, to: expect.any(Number) });
    const again = await runCli('migrate', '--db', url, '--secrets-key', key);
    expect(again.out).toMatch(/^schema version \d+ \(postgres\): up to date/);
    const file = join(dir, 'cp.db');
    expect((await runCli('migrate', '--db', file)).out).toMatch(/^schema version 0 -> \d+ \(sqlite\)/);
    expect((await runCli('migrate', '--db', file)).out).toMatch(/^schema version \d+ \(sqlite\): up to date/);
    // Without the key the PostgreSQL database is refused with the reason.
    delete process.env.PLEXD_CP_SECRETS_KEY;
    const nokey = await runCli('migrate', '--db', url);
    expect(nokey.code).toBe(1);
    expect(nokey.err).toMatch(/needs --secrets-key FILE/);
  });

  it('copy moves a SQLite database into PostgreSQL: nodes, policy history, sealed secrets, counters', async () => {
    const file = join(dir, 'cp.db');
    const sqlite = ControlPlaneStore.open(file);
    const nodes = ['a', 'b', 'c'].map((h) => register(sqlite, h));
    sqlite.setPolicy('default', ALLOW_ALL_MESH_RULES);
    sqlite.setPolicy('default', [...ALLOW_ALL_MESH_RULES].reverse());
    setSecret(sqlite, { project: 'default' }, 'db-password', Buffer.from('hunter2'));
    sqlite.removeNode(nodes[2]!.node_id, 'test');
    const seqBefore = lastSeq(sqlite.db);
    const rowsBefore = sqlite.db.prepare('SELECT node_id, mesh_ip, public_key FROM nodes ORDER BY row').all();
    const revisionsBefore = sqlite.db.prepare('SELECT revision, fingerprint FROM policy_revisions ORDER BY revision').all();
    sqlite.close();

    const r = await runCli('copy', '--db', file, '--to', url, '--json');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ secrets_key: `${file}.secrets.key` });

    const pg = ControlPlaneStore.open(url, { secretsKeyFile: `${file}.secrets.key` });
    try {
      expect(pg.db.prepare('SELECT node_id, mesh_ip, public_key FROM nodes ORDER BY row').all()).toEqual(rowsBefore);
      expect(pg.db.prepare('SELECT revision, fingerprint FROM policy_revisions ORDER BY revision').all()).toEqual(revisionsBefore);
      expect(listSecrets(pg.db, 'default').map((s) => s.name)).toEqual(['db-password']);
      expect(lastSeq(pg.db)).toBe(seqBefore);
      // The counters continue: a new node gets a row past the removed one, a new event the next seq.
      const d = register(pg, 'd');
      expect(pg.db.prepare('SELECT row FROM nodes WHERE node_id = ?').pluck().get(d.node_id)).toBe(4);
      expect(lastSeq(pg.db)).toBeGreaterThan(seqBefore);
    } finally {
      pg.close();
    }
    // Into a database that has rows: refused, nothing changed.
    const twice = await runCli('copy', '--db', file, '--to', url);
    expect(twice.code).toBe(1);
    expect(twice.err).toMatch(/the destination is not empty/);
  });

  it('a transaction whose connection dies is rolled back and never continued on the next one', () => {
    const db = openDatabase(url) as PostgresDatabase;
    const killer = PostgresDatabase.open(url);
    try {
      const pid = db.prepare('SELECT pg_backend_pid()').pluck().get();
      expect(() =>
        db.transaction(() => {
          db.prepare("INSERT INTO meta (key, value) VALUES ('half', '1')").run();
          killer.prepare('SELECT pg_terminate_backend(?)').get(pid);
          db.prepare("INSERT INTO meta (key, value) VALUES ('other-half', '2')").run();
        })(),
      ).toThrow(/database unavailable/);
      // The next statement runs on a new connection, and neither half is there.
      expect(db.prepare('SELECT pg_backend_pid()').pluck().get()).not.toBe(pid);
      expect(db.prepare("SELECT COUNT(*) FROM meta WHERE key IN ('half', 'other-half')").pluck().get()).toBe(0);
    } finally {
      killer.close();
      db.close();
    }
  });

  it('a transaction that cannot get the writer lock in time fails with 503 and leaves its connection usable', () => {
    openDatabase(url).close();
    const a = PostgresDatabase.open(url);
    const b = PostgresDatabase.open(url, { lockTimeoutMs: 200 });
    try {
      a.transaction(() => {
        // a holds the writer lock (another replica's long transaction): b gives up after 200 ms.
        expect(() => b.transaction(() => b.prepare("INSERT INTO meta (key, value) VALUES ('b', '1')").run())()).toThrow(expect.objectContaining({ code: 'unavailable', message: expect.stringMatching(/database busy, retry \(.*lock timeout/) }));
      })();
      // b's connection is not left inside an aborted transaction.
      expect(b.prepare('SELECT 1 AS one').pluck().get()).toBe(1);
      b.transaction(() => b.prepare("INSERT INTO meta (key, value) VALUES ('b', '1')").run())();
      expect(a.prepare("SELECT value FROM meta WHERE key = 'b'").pluck().get()).toBe('1');
    } finally {
      a.close();
      b.close();
    }
  });

  it('a .deferred transaction is a read-only snapshot that does not wait for the writer lock', () => {
    openDatabase(url).close();
    const a = PostgresDatabase.open(url);
    const b = PostgresDatabase.open(url, { lockTimeoutMs: 200 });
    try {
      a.prepare("INSERT INTO meta (key, value) VALUES ('r', 'old')").run();
      a.transaction(() => {
        // a holds the writer lock and has changed r, uncommitted: b reads the committed value
        // at once (a locked transaction would time out here, as the test above shows).
        a.prepare("UPDATE meta SET value = 'new' WHERE key = 'r'").run();
        expect(b.transaction(() => b.prepare("SELECT value FROM meta WHERE key = 'r'").pluck().get()).deferred()).toBe('old');
        // A write inside it fails (read-only), and b's connection stays usable.
        expect(() => b.transaction(() => b.prepare("INSERT INTO meta (key, value) VALUES ('w', '1')").run()).deferred()).toThrow(/read-only transaction/);
      })();
      expect(b.prepare("SELECT value FROM meta WHERE key = 'r'").pluck().get()).toBe('new');
      expect(b.prepare("SELECT COUNT(*) FROM meta WHERE key = 'w'").pluck().get()).toBe(0);
      // Repeatable read: one snapshot for the whole transaction.
      const seen = b.transaction(() => {
        const first = b.prepare("SELECT value FROM meta WHERE key = 'r'").pluck().get();
        a.prepare("UPDATE meta SET value = 'newer' WHERE key = 'r'").run();
        return [first, b.prepare("SELECT value FROM meta WHERE key = 'r'").pluck().get()];
      }).deferred();
      expect(seen).toEqual(['new', 'new']);
    } finally {
      a.close();
      b.close();
    }
  });

  it('one replica leads (sweeps and prunes); another takes over when its connection ends', async () => {
    openDatabase(url).close();
    const a = PostgresDatabase.open(url);
    const b = PostgresDatabase.open(url);
    try {
      expect(a.leads()).toBe(true);
      expect(a.leads()).toBe(true);
      expect(b.leads()).toBe(false);
      a.close();
      let took = false;
      for (let i = 0; i < 50 && !took; i++) {
        took = b.leads();
        if (!took) await new Promise((r) => setTimeout(r, 20));
      }
      expect(took).toBe(true);
    } finally {
      a.close();
      b.close();
    }
  });

  it('text PostgreSQL cannot hold (NUL) is a validation error, not a crash', () => {
    const s = ControlPlaneStore.open(url, { secretsKeyFile: join(dir, 'k') });
    try {
      expect(() => s.node('x\0y')).toThrow(expect.objectContaining({ code: 'validation_failed' }));
      expect(s.listNodes()).toEqual([]);
    } finally {
      s.close();
    }
  });
});
