// Issue 11 item 1: the database, its companions and the keys are private to the owner (0600, a
// created directory 0700) whatever the umask; a database readable by others is refused unless
// --allow-insecure-permissions; the event-signing key and the PSK master are sealed under a key
// file kept apart from the database, plaintext rows of older builds are sealed on start, and a
// missing key file is an error, never a silent regeneration.

import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateSigningKey, signingKeyId, signingPublicKey } from '../../src/api/index.js';
import { ControlPlaneFileError } from '../../src/control-plane/errors.js';
import { derivePsk } from '../../src/control-plane/psk.js';
import { isSealed } from '../../src/control-plane/secrets.js';
import { createControlPlane } from '../../src/control-plane/server.js';
import { ControlPlaneStore } from '../../src/control-plane/store.js';
import { ALLOW_ALL_MESH_RULES } from '../../src/control-plane/policy.js';
import { randomKey, runCli } from './harness.js';

const mode = (file: string): number => statSync(file).mode & 0o777;

let dir: string;
let umask: number;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cp-modes-'));
  umask = process.umask(0o022); // the common default, under which SQLite would make 0644 files
});
afterEach(() => {
  process.umask(umask);
  rmSync(dir, { recursive: true, force: true });
});

function registerOne(store: ControlPlaneStore): string {
  return store.register({ project_id: 'default', resource_handle: 'h', bootstrap_token: store.createToken().token, nonce: randomUUID(), public_key: randomKey() }).node_id;
}

/** Every byte of the database and its companions, to look for a secret in. */
function fileBytes(db: string): Buffer {
  return Buffer.concat(['', '-wal', '-shm'].filter((s) => existsSync(db + s)).map((s) => readFileSync(db + s)));
}

describe('file modes under umask 022', () => {
  it('creates the directory 0700 and the database, -wal, -shm, secrets key and TLS key 0600', async () => {
    const db = join(dir, 'state', 'cp.db');
    const cp = await createControlPlane({ db, listen: '127.0.0.1:0' });
    try {
      cp.store.createToken(); // a write, so the WAL exists
      expect(mode(join(dir, 'state'))).toBe(0o700);
      for (const f of [db, `${db}-wal`, `${db}-shm`, `${db}.secrets.key`, `${db}.key.pem`]) expect([f, mode(f)]).toEqual([f, 0o600]);
    } finally {
      await cp.close();
    }
  });

  it('a stale or planted TLS key temp file neither loosens the new key nor is written through', async () => {
    const db = join(dir, 'cp.db');
    writeFileSync(`${db}.key.pem.tmp`, 'stale', { mode: 0o644 }); // left by a crash of an older build
    const elsewhere = join(dir, 'elsewhere');
    writeFileSync(elsewhere, 'untouched', { mode: 0o644 });
    symlinkSync(elsewhere, `${db}.cert.pem.tmp`);
    const cp = await createControlPlane({ db, listen: '127.0.0.1:0' });
    try {
      expect(mode(`${db}.key.pem`)).toBe(0o600);
      expect(readFileSync(elsewhere, 'utf8')).toBe('untouched');
      expect(readFileSync(`${db}.key.pem.tmp`, 'utf8')).toBe('stale');
    } finally {
      await cp.close();
    }
  });

  it('refuses a database readable by others, naming the fix; --allow-insecure-permissions opens it as it is', async () => {
    const db = join(dir, 'cp.db');
    ControlPlaneStore.open(db).close();
    chmodSync(db, 0o644);
    expect(() => ControlPlaneStore.open(db)).toThrow(ControlPlaneFileError);
    await expect(createControlPlane({ db, listen: '127.0.0.1:0', insecureHttp: true })).rejects.toMatchObject({ code: 'ERR_CP_INSECURE_PERMISSIONS' });
    const refused = await runCli('nodes', 'list', '--db', db);
    expect(refused.code).toBe(1);
    expect(refused.err).toBe(`control-plane: --db ${db}: database ${db} has mode 0644: readable or writable by group or others; run chmod 600 ${db}, or pass --allow-insecure-permissions\n`);
    const allowed = await runCli('nodes', 'list', '--db', db, '--allow-insecure-permissions');
    expect(allowed.code).toBe(0);
    expect(mode(db)).toBe(0o644);
    const cp = await createControlPlane({ db, listen: '127.0.0.1:0', insecureHttp: true, allowInsecurePermissions: true });
    await cp.close();
  });

  it('tightens -wal and -shm files an older build left 0644', () => {
    const db = join(dir, 'cp.db');
    ControlPlaneStore.open(db).close();
    // Another connection (an older build's server, still running) holds a WAL with pages in it;
    // SQLite itself only fixes the mode of an empty companion.
    const older = new Database(db);
    try {
      older.pragma('wal_autocheckpoint = 0');
      older.prepare("INSERT INTO projects (id, created_at) VALUES ('p', 0)").run();
      expect(statSync(`${db}-wal`).size).toBeGreaterThan(0);
      chmodSync(`${db}-wal`, 0o644);
      chmodSync(`${db}-shm`, 0o644);
      const store = ControlPlaneStore.open(db);
      try {
        expect(mode(`${db}-wal`)).toBe(0o600);
        expect(mode(`${db}-shm`)).toBe(0o600);
      } finally {
        store.close();
      }
    } finally {
      older.close();
    }
  });

  it('refuses a secrets key or TLS key readable by others', async () => {
    const db = join(dir, 'cp.db');
    const cp = await createControlPlane({ db, listen: '127.0.0.1:0' });
    await cp.close();
    chmodSync(`${db}.key.pem`, 0o640);
    await expect(createControlPlane({ db, listen: '127.0.0.1:0' })).rejects.toThrow(/TLS key .* has mode 0640/);
    chmodSync(`${db}.key.pem`, 0o600);
    chmodSync(`${db}.secrets.key`, 0o604);
    expect(() => ControlPlaneStore.open(db)).toThrow(/secrets key .* has mode 0604/);
  });
});

describe('secrets sealed at rest', () => {
  it('stores the signing key and PSK master sealed: neither appears in the database files', () => {
    const db = join(dir, 'cp.db');
    const store = ControlPlaneStore.open(db);
    store.setPolicy('default', ALLOW_ALL_MESH_RULES);
    const a = registerOne(store);
    const b = registerOne(store);
    const secret = Buffer.from(store.signer.secretKey);
    const psk = store.peersOf(store.node(a)!)[0]!.psk!;
    store.close();
    const raw = new Database(db, { readonly: true });
    try {
      expect(isSealed(raw.prepare('SELECT secret_key FROM signing_keys').pluck().get() as Buffer)).toBe(true);
      expect(isSealed(Buffer.from(raw.prepare("SELECT value FROM meta WHERE key = 'psk_master'").pluck().get() as string, 'base64'))).toBe(true);
    } finally {
      raw.close();
    }
    expect(fileBytes(db).includes(secret)).toBe(false);
    // Reopened with the key file: the same signing key and the same PSKs.
    const again = ControlPlaneStore.open(db);
    try {
      expect(Buffer.from(again.signer.secretKey).equals(secret)).toBe(true);
      expect(again.peersOf(again.node(b)!)[0]!.psk).toBe(psk);
    } finally {
      again.close();
    }
  });

  it('seals the retry copy of a new node\'s nsk; a retry with the same nonce still gets it', () => {
    const db = join(dir, 'cp.db');
    const store = ControlPlaneStore.open(db);
    try {
      const req = { project_id: 'default', resource_handle: 'h', bootstrap_token: store.createToken().token, nonce: randomUUID(), public_key: randomKey() };
      const first = store.register(req);
      const stored = store.db.prepare('SELECT nsk FROM registrations WHERE nonce = ?').pluck().get(req.nonce) as Buffer;
      expect(isSealed(stored)).toBe(true);
      expect(fileBytes(db).includes(Buffer.from(first.nsk, 'base64'))).toBe(false);
      expect(store.register(req).nsk).toBe(first.nsk);
    } finally {
      store.close();
    }
  });

  it('seals plaintext secrets of an older build in place, keeping the same keys and PSKs', () => {
    const db = join(dir, 'cp.db');
    ControlPlaneStore.open(db).close();
    // What a build before sealing left: plaintext rows, and no key file.
    const master = Buffer.alloc(32, 0x6d);
    const k = generateSigningKey();
    const raw = new Database(db);
    raw.prepare("UPDATE meta SET value = ? WHERE key = 'psk_master'").run(master.toString('base64'));
    raw.prepare('DELETE FROM signing_keys').run();
    raw.prepare('INSERT INTO signing_keys (key_id, secret_key, public_key, created_at, active) VALUES (?, ?, ?, 0, 1)').run(signingKeyId(k.publicKey), Buffer.from(k.secretKey), Buffer.from(k.publicKey));
    raw.close();
    rmSync(`${db}.secrets.key`);

    const store = ControlPlaneStore.open(db);
    try {
      expect(store.signer.keyId).toBe(signingKeyId(k.publicKey));
      expect(Buffer.from(store.signer.publicKey).equals(Buffer.from(signingPublicKey(k.secretKey)))).toBe(true);
      store.setPolicy('default', ALLOW_ALL_MESH_RULES);
      const a = registerOne(store);
      const b = registerOne(store);
      expect(store.peersOf(store.node(a)!)[0]!.psk).toBe(derivePsk(master, a, b, 0).toString('base64'));
      expect(mode(`${db}.secrets.key`)).toBe(0o600);
      const bytes = fileBytes(db);
      expect(bytes.includes(master)).toBe(false);
      expect(bytes.includes(master.toString('base64'))).toBe(false);
      expect(bytes.includes(Buffer.from(k.secretKey))).toBe(false);
    } finally {
      store.close();
    }
  });

  it('a missing key file is an error naming it, and nothing is regenerated', async () => {
    const db = join(dir, 'cp.db');
    ControlPlaneStore.open(db).close();
    rmSync(`${db}.secrets.key`);
    expect(() => ControlPlaneStore.open(db)).toThrow(expect.objectContaining({ code: 'ERR_CP_SECRETS_KEY', message: expect.stringContaining(`secrets key ${db}.secrets.key is missing`) }));
    const r = await runCli('token', 'create', '--db', db);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/is missing, but the database holds secrets sealed with it; restore the file/);
    expect(existsSync(`${db}.secrets.key`)).toBe(false);
  });

  it('another key file is refused: the secrets do not open', () => {
    const db = join(dir, 'cp.db');
    ControlPlaneStore.open(db).close();
    writeFileSync(`${db}.secrets.key`, `${Buffer.alloc(32, 7).toString('base64')}\n`, { mode: 0o600 });
    expect(() => ControlPlaneStore.open(db)).toThrow(expect.objectContaining({ code: 'ERR_CP_SECRETS_KEY', message: expect.stringContaining('not the key this database was sealed with') }));
  });

  it('--secrets-key keeps the key where it is told, and every command needs it', async () => {
    const db = join(dir, 'cp.db');
    const key2 = join(dir, 'cp.key');
    expect((await runCli('project', 'create', 'p2', '--db', db, '--secrets-key', key2)).code).toBe(0);
    expect(mode(key2)).toBe(0o600);
    expect(existsSync(`${db}.secrets.key`)).toBe(false);
    expect((await runCli('token', 'create', '--db', db)).code).toBe(1);
    expect((await runCli('token', 'create', '--db', db, '--secrets-key', key2, '--project', 'p2')).code).toBe(0);
  });
});
