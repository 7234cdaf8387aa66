// The secret envelope (src/api/secret-envelope.ts) against an independent AES-256-GCM computation
// with node:crypto: layout nonce(12) || ciphertext || tag(16), no additional data; tampering,
// another key and short input are refused alike.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openSecretEnvelope, sealSecretEnvelope } from '../../src/api/secret-envelope.js';

describe('secret envelope', () => {
  const nsk = randomBytes(32);
  const plain = Buffer.from('s3cret-value: über');

  it('seals exactly as AES-256-GCM over the plaintext with the given nonce, no AAD', () => {
    const nonce = randomBytes(12);
    const env = sealSecretEnvelope(nsk, plain, nonce);
    const c = createCipheriv('aes-256-gcm', nsk, nonce);
    const expected = Buffer.concat([nonce, c.update(plain), c.final(), c.getAuthTag()]);
    expect(env.equals(expected)).toBe(true);
    expect(env.length).toBe(12 + plain.length + 16);
  });

  it('opens what an independent sealer produced, and the independent opener opens ours', () => {
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', nsk, nonce);
    const theirs = Buffer.concat([nonce, c.update(plain), c.final(), c.getAuthTag()]);
    expect(openSecretEnvelope(nsk, theirs)?.toString()).toBe(plain.toString());
    const ours = sealSecretEnvelope(nsk, plain);
    const d = createDecipheriv('aes-256-gcm', nsk, ours.subarray(0, 12));
    d.setAuthTag(ours.subarray(ours.length - 16));
    expect(Buffer.concat([d.update(ours.subarray(12, ours.length - 16)), d.final()]).toString()).toBe(plain.toString());
  });

  it('a fresh nonce per seal', () => {
    expect(sealSecretEnvelope(nsk, plain).subarray(0, 12).equals(sealSecretEnvelope(nsk, plain).subarray(0, 12))).toBe(false);
  });

  it('refuses a flipped bit anywhere, another key, and short input with one answer', () => {
    const env = sealSecretEnvelope(nsk, plain);
    for (let i = 0; i < env.length; i++) {
      const bad = Buffer.from(env);
      bad[i]! ^= 1;
      expect(openSecretEnvelope(nsk, bad)).toBeUndefined();
    }
    expect(openSecretEnvelope(randomBytes(32), env)).toBeUndefined();
    expect(openSecretEnvelope(nsk, env.subarray(0, 27))).toBeUndefined();
    expect(openSecretEnvelope(nsk, Buffer.alloc(0))).toBeUndefined();
  });

  it('throws RangeError on a wrong key or nonce length (misuse)', () => {
    expect(() => sealSecretEnvelope(randomBytes(16), plain)).toThrow(RangeError);
    expect(() => sealSecretEnvelope(nsk, plain, randomBytes(8))).toThrow(RangeError);
    expect(() => openSecretEnvelope(randomBytes(31), Buffer.alloc(40))).toThrow(RangeError);
  });
});
