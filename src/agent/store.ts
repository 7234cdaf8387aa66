// The agent's data_dir (plexd-api.md "Config"): directory 0700, files 0600, every write atomic
// (temp file in the same directory, fsync, rename, fsync of the directory), so a crash leaves
// either the old or the new file, never half of one. Holds identity.json, private_key,
// node_secret_key, signing_public_key, rotation_pending_key (a mesh key staged for an in-flight
// rotation, src/agent/key-rotation.ts), and our state.json cache of the last state pull.

import { chmodSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PlexdError, type PlexdErrorOptions } from '../errors.js';
import { writeFileAtomic } from '../io/atomic-file.js';

/** What registration gave us, minus the secrets (they live in their own files). */
export interface StoredIdentity {
  readonly node_id: string;
  readonly mesh_ip: string;
  readonly domain_mesh_cidr: string;
  readonly signing_key_id: string;
  readonly api_base_url: string;
  readonly registered_at: string;
}

/** A complete identity with keys, as base64 strings. */
export interface Identity extends StoredIdentity {
  /** Our WireGuard private key (base64). */
  readonly private_key: string;
  /** The node secret key from registration (base64, 32 bytes). */
  readonly nsk: string;
  /** The control plane's Ed25519 signing public key (base64). */
  readonly signing_public_key: string;
}

/** A data_dir that cannot be used (permissions, corrupt files). */
export class StoreError extends PlexdError<'ERR_AGENT_STORE'> {
  static readonly codes = ['ERR_AGENT_STORE'] as const;
  constructor(message: string, options?: PlexdErrorOptions) {
    super('ERR_AGENT_STORE', message, options);
  }
}

const FILES = ['identity.json', 'private_key', 'node_secret_key', 'signing_public_key', 'rotation_pending_key'] as const;

/** The data_dir. Construct with `openStore`, which creates it 0700. */
export class Store {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  #path(name: string): string {
    return join(this.dir, name);
  }

  #read(name: string): string | undefined {
    try {
      return readFileSync(this.#path(name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new StoreError(`cannot read ${this.#path(name)}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The stored identity, or undefined when there is none. Throws StoreError when it is partial or corrupt. */
  loadIdentity(): Identity | undefined {
    const text = this.#read('identity.json');
    if (text === undefined) return undefined;
    let meta: Partial<StoredIdentity>;
    try {
      meta = JSON.parse(text) as Partial<StoredIdentity>;
    } catch (err) {
      throw new StoreError(`${this.#path('identity.json')} is not JSON; remove the data_dir to register again`, { cause: err });
    }
    const privateKey = this.#read('private_key')?.trim();
    const nsk = this.#read('node_secret_key')?.trim();
    const signing = this.#read('signing_public_key')?.trim();
    for (const [name, v] of [['node_id', meta.node_id], ['mesh_ip', meta.mesh_ip], ['private_key', privateKey], ['node_secret_key', nsk], ['signing_public_key', signing]] as const) {
      if (typeof v !== 'string' || v === '') throw new StoreError(`${this.dir}: ${name} is missing; remove the data_dir to register again`);
    }
    return {
      node_id: meta.node_id!,
      mesh_ip: meta.mesh_ip!,
      domain_mesh_cidr: meta.domain_mesh_cidr ?? '',
      signing_key_id: meta.signing_key_id ?? '',
      api_base_url: meta.api_base_url ?? '',
      registered_at: meta.registered_at ?? '',
      private_key: privateKey!,
      nsk: nsk!,
      signing_public_key: signing!,
    };
  }

  /** Stores a whole identity (secrets first, identity.json last: its presence means complete). */
  saveIdentity(id: Identity): void {
    this.savePrivateKey(id.private_key);
    writeFileAtomic(this.#path('node_secret_key'), id.nsk + '\n');
    writeFileAtomic(this.#path('signing_public_key'), id.signing_public_key + '\n');
    this.#saveMeta(id);
  }

  #saveMeta(id: StoredIdentity): void {
    const meta: StoredIdentity = {
      node_id: id.node_id,
      mesh_ip: id.mesh_ip,
      domain_mesh_cidr: id.domain_mesh_cidr,
      signing_key_id: id.signing_key_id,
      api_base_url: id.api_base_url,
      registered_at: id.registered_at,
    };
    writeFileAtomic(this.#path('identity.json'), JSON.stringify(meta, null, 2) + '\n');
  }

  /** Replaces the WireGuard private key (key rotation). */
  savePrivateKey(base64: string): void {
    writeFileAtomic(this.#path('private_key'), base64 + '\n');
  }

  /** Stages the private key of an in-flight rotation (rotation_pending_key, before the POST). */
  savePendingKey(base64: string): void {
    writeFileAtomic(this.#path('rotation_pending_key'), base64 + '\n');
  }

  /** The staged rotation key, or undefined when no rotation is in flight (an empty file counts as none). */
  loadPendingKey(): string | undefined {
    const v = this.#read('rotation_pending_key')?.trim();
    return v === undefined || v === '' ? undefined : v;
  }

  /** Ends an in-flight rotation (committed or discarded). */
  removePendingKey(): void {
    rmSync(this.#path('rotation_pending_key'), { force: true });
  }

  /** Replaces the control plane's signing key (signing_key_rotated). */
  saveSigningKey(id: StoredIdentity, keyId: string, publicKey: string): void {
    writeFileAtomic(this.#path('signing_public_key'), publicKey + '\n');
    this.#saveMeta({ ...id, signing_key_id: keyId });
  }

  /** Caches the last state pull (JSON), so tunnels come up offline. */
  saveState(state: unknown): void {
    writeFileAtomic(this.#path('state.json'), JSON.stringify(state));
  }

  /** The cached state, undefined when absent or unreadable (a cache is never fatal). */
  loadState(): unknown {
    try {
      const text = this.#read('state.json');
      return text === undefined ? undefined : (JSON.parse(text) as unknown);
    } catch {
      return undefined;
    }
  }

  /** Deletes the identity and cache (after deregistration); `purge` removes the whole directory. */
  forget(purge: boolean): void {
    if (purge) {
      rmSync(this.dir, { recursive: true, force: true });
      return;
    }
    for (const f of [...FILES, 'state.json']) rmSync(this.#path(f), { force: true });
  }
}

/** Creates (0700) or opens the data_dir; tightens a looser mode. Throws StoreError. */
export function openStore(dir: string): Store {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    if (!st.isDirectory()) throw new StoreError(`${dir} is not a directory`);
    if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw new StoreError(`cannot use data_dir ${dir}: ${(err as Error).message}`, { cause: err });
  }
  return new Store(dir);
}
