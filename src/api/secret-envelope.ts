// The secret envelope of `GET /v1/nodes/{id}/secrets/{key}` (plexd-api.md "Node API"): the raw
// bytes nonce(12) || ciphertext || tag(16), AES-256-GCM (NIST SP 800-38D) under the node's
// 32-byte node secret key (NSK), no additional data. The control plane seals, the agent opens.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** GCM nonce and tag lengths of the envelope. */
export const SECRET_NONCE_BYTES = 12;
export const SECRET_TAG_BYTES = 16;

function checkKey(nsk: Uint8Array): void {
  if (nsk.length !== 32) throw new RangeError(`expected a 32-byte node secret key, got ${nsk.length} bytes`);
}

/** `plaintext` sealed under `nsk` with a fresh random nonce (`nonce` only for tests). Throws
 *  RangeError for a key or nonce of the wrong length. */
export function sealSecretEnvelope(nsk: Uint8Array, plaintext: Uint8Array, nonce: Uint8Array = randomBytes(SECRET_NONCE_BYTES)): Buffer {
  checkKey(nsk);
  if (nonce.length !== SECRET_NONCE_BYTES) throw new RangeError(`expected a ${SECRET_NONCE_BYTES}-byte nonce, got ${nonce.length} bytes`);
  const c = createCipheriv('aes-256-gcm', nsk, nonce);
  const body = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([nonce, body, c.getAuthTag()]);
}

/** The plaintext of `envelope` under `nsk`, or undefined when it is too short, altered, or sealed
 *  under another key (one answer for all, so nothing about the failure leaks). */
export function openSecretEnvelope(nsk: Uint8Array, envelope: Uint8Array): Buffer | undefined {
  checkKey(nsk);
  if (envelope.length < SECRET_NONCE_BYTES + SECRET_TAG_BYTES) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', nsk, envelope.subarray(0, SECRET_NONCE_BYTES));
    d.setAuthTag(envelope.subarray(envelope.length - SECRET_TAG_BYTES));
    return Buffer.concat([d.update(envelope.subarray(SECRET_NONCE_BYTES, envelope.length - SECRET_TAG_BYTES)), d.final()]);
  } catch {
    return undefined;
  }
}
