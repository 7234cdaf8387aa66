// The node:crypto provider (OpenSSL): ChaCha20-Poly1305 (RFC 8439), X25519 (RFC 7748), BLAKE2s-256
// and HMAC-BLAKE2s (RFC 7693, RFC 2104); keyed BLAKE2s and XChaCha20-Poly1305, which node:crypto
// does not expose, come from the noble provider. Same vectors as every provider.

import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  timingSafeEqual,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { copyBytes } from '../core/bytes.js';
import type { CryptoProvider } from '../core/crypto.js';
import {
  CounterAead,
  TAG_LENGTH,
  checkAeadArgs,
  expectBytes,
  nobleCrypto,
} from '../core/crypto-noble.js';

const AEAD_ALGORITHM = 'chacha20-poly1305';
const AEAD_OPTIONS = { authTagLength: TAG_LENGTH } as const;
// What a wiped Aead holds instead of its key, so the real KeyObject can be collected.
const WIPED_KEY = createSecretKey(new Uint8Array(32));

function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

// OpenSSL derives the public half itself from `d` and ignores `x`, but Node's JWK import insists
// on an `x`; a placeholder avoids computing it. JWK import measured ~14x faster than PKCS#8 DER
// import (OpenSSL 3 decoder lookup); the base64url copy of `d` it needs, like the KeyObject, is
// left to the garbage collector. Should a Node version start checking `x` against `d`, the
// import throws and we fall back to DER for good.
const X_PLACEHOLDER = toBase64Url(new Uint8Array(32));
const PKCS8_X25519_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);
let jwkImport = true;

function importPrivate(privateKey: Uint8Array): KeyObject {
  if (jwkImport) {
    try {
      return createPrivateKey({
        key: { kty: 'OKP', crv: 'X25519', d: toBase64Url(privateKey), x: X_PLACEHOLDER },
        format: 'jwk',
      });
    } catch {
      jwkImport = false;
    }
  }
  const der = new Uint8Array(PKCS8_X25519_PREFIX.length + 32);
  der.set(PKCS8_X25519_PREFIX);
  der.set(privateKey, PKCS8_X25519_PREFIX.length);
  try {
    return createPrivateKey({ key: Buffer.from(der.buffer), format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

// Private KeyObjects for the two most recently used scalars. A handshake alternates between the
// static key (every handshake) and one ephemeral key (used twice), so two slots make the static
// import nearly free. Entries hold copies that are wiped on eviction; OpenSSL's own copy inside
// the KeyObject is freed by the garbage collector, as for any KeyObject.
type PrivateSlot = { bytes: Uint8Array; key: KeyObject };
const privateSlots: PrivateSlot[] = [];

function privateKeyObject(privateKey: Uint8Array): KeyObject {
  for (const slot of privateSlots) {
    if (timingSafeEqual(slot.bytes, privateKey)) return slot.key;
  }
  const key = importPrivate(privateKey);
  privateSlots.unshift({ bytes: copyBytes(privateKey), key });
  if (privateSlots.length > 2) privateSlots.pop()?.bytes.fill(0);
  return key;
}

function x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  expectBytes('private key', privateKey, 32);
  expectBytes('public key', publicKey, 32);
  const pub = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: toBase64Url(publicKey) }, format: 'jwk' });
  try {
    const shared = diffieHellman({ privateKey: privateKeyObject(privateKey), publicKey: pub });
    return new Uint8Array(shared.buffer, shared.byteOffset, shared.byteLength);
  } catch (err) {
    // OpenSSL refuses to return the all-zero secret of a low-order point (RFC 7748 6.1); the
    // interface returns it as is and lets the handshake reject it.
    if ((err as { code?: unknown }).code === 'ERR_OSSL_FAILED_DURING_DERIVATION') return new Uint8Array(32);
    throw err;
  }
}

function x25519PublicKey(privateKey: Uint8Array): Uint8Array {
  expectBytes('private key', privateKey, 32);
  const jwk = createPublicKey(importPrivate(privateKey)).export({ format: 'jwk' });
  const pub = Buffer.from(jwk.x ?? '', 'base64url');
  return new Uint8Array(pub.buffer, pub.byteOffset, pub.byteLength);
}

/**
 * RFC 8439 2.8 ChaCha20-Poly1305 seal with an explicit 12-byte nonce: writes ciphertext || tag
 * to `dst` (may overlap `plaintext` at the same offset) and returns the bytes written. `key` is
 * 32 raw bytes or a secret KeyObject made from them (faster when reused).
 */
export function chacha20Poly1305Seal(
  key: Uint8Array | KeyObject,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array | undefined,
  dst: Uint8Array,
): number {
  if (key instanceof Uint8Array) expectBytes('key', key, 32);
  expectBytes('nonce', nonce, 12);
  const outLen = checkAeadArgs(true, plaintext, aad, dst);
  const cipher = createCipheriv(AEAD_ALGORITHM, key, nonce, AEAD_OPTIONS);
  if (aad !== undefined && aad.length > 0) cipher.setAAD(aad, { plaintextLength: plaintext.length });
  // Node's cipher API only returns fresh buffers, so one copy into dst is the floor; the copy
  // also makes in-place operation safe.
  const body = cipher.update(plaintext);
  cipher.final();
  dst.set(body, 0);
  dst.set(cipher.getAuthTag(), plaintext.length);
  return outLen;
}

/**
 * RFC 8439 2.8 ChaCha20-Poly1305 open with an explicit 12-byte nonce into `dst` (may overlap
 * `ciphertext` at the same offset). Returns the plaintext length, or -1 when the tag is wrong.
 */
export function chacha20Poly1305Open(
  key: Uint8Array | KeyObject,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  aad: Uint8Array | undefined,
  dst: Uint8Array,
): number {
  if (key instanceof Uint8Array) expectBytes('key', key, 32);
  expectBytes('nonce', nonce, 12);
  const outLen = checkAeadArgs(false, ciphertext, aad, dst);
  if (outLen < 0) return -1;
  const decipher = createDecipheriv(AEAD_ALGORITHM, key, nonce, AEAD_OPTIONS);
  decipher.setAuthTag(ciphertext.subarray(outLen));
  if (aad !== undefined && aad.length > 0) decipher.setAAD(aad, { plaintextLength: outLen });
  const body = decipher.update(ciphertext.subarray(0, outLen));
  try {
    decipher.final();
  } catch {
    // Arguments were validated above, so the only failure left is the tag check. The
    // unauthenticated plaintext never reaches dst.
    body.fill(0);
    return -1;
  }
  dst.set(body, 0);
  return outLen;
}

function hash(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('blake2s256');
  for (const p of parts) {
    expectBytes('hash input', p);
    h.update(p);
  }
  const d = h.digest();
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  expectBytes('hmac key', key);
  expectBytes('hmac data', data);
  const d = createHmac('blake2s256', key).update(data).digest();
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/**
 * The node:crypto provider: OpenSSL ChaCha20-Poly1305, X25519, BLAKE2s and HMAC-BLAKE2s, with
 * noble's keyed BLAKE2s (mac) and XChaCha20-Poly1305 (xseal/xopen). Faster than noble on Node.
 */
export const nodeCrypto: CryptoProvider = {
  name: 'node',
  x25519PublicKey,
  x25519,
  aead(key) {
    expectBytes('key', key, 32);
    // The KeyObject saves key setup per message; its OpenSSL copy cannot be overwritten from JS,
    // so wipe() drops it for the garbage collector.
    return new CounterAead(createSecretKey(key), chacha20Poly1305Seal, chacha20Poly1305Open, () => WIPED_KEY);
  },
  xseal: nobleCrypto.xseal,
  xopen: nobleCrypto.xopen,
  hash,
  mac: nobleCrypto.mac,
  hmac,
};
