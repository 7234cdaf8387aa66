// data_dir store: 0700 directory, 0600 files, atomic writes, identity reuse, corrupt files.

import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, StoreError, type Identity } from '../../src/agent/store.js';
import { writeFileAtomic } from '../../src/io/atomic-file.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'plexd-store-'));
  dirs.push(d);
  return d;
}

const ID: Identity = {
  node_id: '6f1c2c64-4a59-4b8e-9a61-1d0f6f0e7b11',
  mesh_ip: '10.100.0.2',
  domain_mesh_cidr: '10.100.0.0/16',
  signing_key_id: 'k1',
  api_base_url: 'http://127.0.0.1:1',
  registered_at: '2025-01-01T00:00:00Z',
  private_key: Buffer.alloc(32, 1).toString('base64'),
  nsk: Buffer.alloc(32, 2).toString('base64'),
  signing_public_key: Buffer.alloc(32, 3).toString('base64'),
};

describe('data_dir store', () => {
  it('creates the directory 0700 (tightening a loose one) and files 0600', () => {
    const dir = join(tmp(), 'data');
    const s = openStore(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    s.saveIdentity(ID);
    for (const f of ['identity.json', 'private_key', 'node_secret_key', 'signing_public_key']) {
      expect(statSync(join(dir, f)).mode & 0o777, f).toBe(0o600);
    }
    chmodSync(dir, 0o755);
    openStore(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('round-trips the identity and reuses it after a reopen', () => {
    const dir = tmp();
    openStore(dir).saveIdentity(ID);
    expect(openStore(dir).loadIdentity()).toEqual(ID);
    expect(openStore(tmp()).loadIdentity()).toBeUndefined();
  });

  it('writes atomically: no temp files left, the old content replaced whole', () => {
    const dir = tmp();
    const p = join(dir, 'f');
    writeFileAtomic(p, 'old');
    writeFileAtomic(p, 'new content');
    expect(readdirSync(dir)).toEqual(['f']);
    expect(statSync(p).size).toBe(11);
  });

  it('refuses a partial or corrupt identity with a clear error', () => {
    const dir = tmp();
    const s = openStore(dir);
    s.saveIdentity(ID);
    rmSync(join(dir, 'node_secret_key'));
    expect(() => s.loadIdentity()).toThrow(/node_secret_key is missing/);
    writeFileSync(join(dir, 'identity.json'), '{nope');
    expect(() => s.loadIdentity()).toThrow(StoreError);
  });

  it('caches state, ignores a corrupt cache, forgets and purges', () => {
    const dir = tmp();
    const s = openStore(dir);
    s.saveIdentity(ID);
    s.saveState({ peers: [] });
    expect(s.loadState()).toEqual({ peers: [] });
    writeFileSync(join(dir, 'state.json'), 'garbage');
    expect(s.loadState()).toBeUndefined();
    s.forget(false);
    expect(s.loadIdentity()).toBeUndefined();
    s.forget(true);
    expect(() => statSync(dir)).toThrow();
  });
});
