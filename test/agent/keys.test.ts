// The agent's key pair (src/agent/keys.ts): private keys decode into arrays the holder owns (no
// copy left in Node's shared Buffer pool), the public key is derived once per key, and the bytes
// are wiped on replace and close. publicKeyOf and generatePrivateKey agree with node:crypto. An
// agent whose stored key is damaged refuses to start with a StoreError.

import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeBase64 } from '../../src/api/fields.js';
import { Agent } from '../../src/agent/agent.js';
import { decodePrivateKey, generatePrivateKey, NodeKeys, publicKeyOf } from '../../src/agent/keys.js';
import { openStore, StoreError } from '../../src/agent/store.js';
import { nodeCrypto } from '../../src/crypto/node.js';
import { createLogger } from '../../src/log/logger.js';
import { loopbackAgentConfig } from './loopback-mesh.js';

/** The X25519 public key of a base64 private key through node:crypto's PKCS#8 import (the twin). */
function slowPublicKeyOf(privateKeyBase64: string): string {
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), Buffer.from(privateKeyBase64, 'base64')]);
  const pub = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' });
  return pub.subarray(pub.length - 32).toString('base64');
}

/** True when `needle` occurs in `hay`. */
function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

describe('agent keys', () => {
  it('publicKeyOf agrees with node:crypto, and generatePrivateKey gives clamped 32-byte keys', () => {
    for (let i = 0; i < 20; i++) {
      const k = generatePrivateKey();
      const raw = Buffer.from(k, 'base64');
      expect(raw.length).toBe(32);
      expect(raw[0]! & 7).toBe(0);
      expect(raw[31]! & 0xc0).toBe(0x40);
      expect(publicKeyOf(k)).toBe(slowPublicKeyOf(k));
    }
    const { privateKey } = generateKeyPairSync('x25519');
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    const k = der.subarray(der.length - 32).toString('base64');
    expect(publicKeyOf(k)).toBe(slowPublicKeyOf(k));
    expect(() => publicKeyOf('not a key')).toThrow(TypeError);
    expect(() => new NodeKeys(Buffer.alloc(31).toString('base64'))).toThrow(TypeError);
  });

  it('decodes a private key into an array of its own, leaving no copy in the shared Buffer pool', () => {
    for (let i = 0; i < 4; i++) {
      const text = generatePrivateKey();
      const expected = new Uint8Array(32); // decoded without the pool: the test leaves no copy there either
      Buffer.from(expected.buffer).write(text, 'base64');
      // Pool-backed Buffers made just before and after the decode: the decode would land between.
      const before = Buffer.from('x');
      const k = decodePrivateKey(text);
      const after = Buffer.from('y');
      expect(k.byteLength).toBe(32);
      expect(k.buffer.byteLength).toBe(32);
      expect(k).toEqual(expected);
      for (const pooled of [before, after]) expect(pooled.buffer.byteLength).toBeGreaterThan(32);
      expect(contains(new Uint8Array(before.buffer), expected)).toBe(false);
      expect(contains(new Uint8Array(after.buffer), expected)).toBe(false);
      k.fill(0);
    }
    // decodeBase64 keeps its contract: lengths, padding optional, non-canonical refused.
    expect(decodeBase64('YWI=')).toEqual(new Uint8Array([0x61, 0x62]));
    expect(decodeBase64('YWI')).toEqual(new Uint8Array([0x61, 0x62]));
    expect(decodeBase64('')).toEqual(new Uint8Array(0));
    expect(decodeBase64('YWJ=')).toBeUndefined();
    expect(decodeBase64('YWI=', 3)).toBeUndefined();
    expect(decodeBase64('Y')).toBeUndefined();
  });

  it('derives the public key once per key and wipes the private key on replace and close', () => {
    let derivations = 0;
    const derive = (k: Uint8Array) => (derivations++, nodeCrypto.x25519PublicKey(k));
    const first = generatePrivateKey();
    const keys = new NodeKeys(first, derive);
    for (let i = 0; i < 5; i++) expect(keys.publicKey).toBe(publicKeyOf(first));
    expect(derivations).toBe(1);
    const held = keys.privateKey;
    expect(held).toEqual(new Uint8Array(Buffer.from(first, 'base64')));
    expect(held.buffer.byteLength).toBe(32);

    const second = generatePrivateKey();
    keys.replace(second);
    expect(held.every((b) => b === 0)).toBe(true);
    for (let i = 0; i < 5; i++) expect(keys.publicKey).toBe(publicKeyOf(second));
    expect(derivations).toBe(2);

    // A malformed replacement changes nothing.
    expect(() => keys.replace('nope')).toThrow(TypeError);
    expect(keys.publicKey).toBe(publicKeyOf(second));

    const last = keys.privateKey;
    keys.close();
    expect(last.every((b) => b === 0)).toBe(true);
    expect(() => keys.privateKey).toThrow(/closed/);
    expect(() => keys.publicKey).toThrow(/closed/);
    keys.close();
  });
});

describe('an agent with a damaged stored private key', () => {
  it('refuses to start with a StoreError naming the file, and leaves nothing running', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plexd-badkey-'));
    try {
      const config = loopbackAgentConfig('http://127.0.0.1:1', dir, 0, 'badkey', []);
      const store = openStore(config.dataDir);
      store.saveIdentity({ node_id: '0b6f1d9e-3c1a-4a3e-9d1e-2f8c6b7a5e41', mesh_ip: '10.100.0.5', domain_mesh_cidr: '10.100.0.0/16', signing_key_id: 'k', api_base_url: 'http://127.0.0.1:1', registered_at: '', private_key: 'AAAA', nsk: Buffer.alloc(32).toString('base64'), signing_public_key: Buffer.alloc(32).toString('base64') });
      const err = await Agent.start({ config, logger: createLogger('silent'), env: {}, health: false, nodeApi: false }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect((err as Error).message).toMatch(/private_key is not 32 bytes of base64/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
