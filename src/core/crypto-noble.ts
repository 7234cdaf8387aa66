// The pure-TypeScript crypto provider over @noble/* (RFC 7748, RFC 8439, draft-irtf-cfrg-xchacha,
// RFC 7693, RFC 2104): portable, no node:* imports, checked against vectors/ like every provider.

import { x25519 as nobleX25519 } from '@noble/curves/ed25519.js';
import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import { copyBytes } from './bytes.js';
import type { Aead, CryptoProvider } from './crypto.js';

/** Poly1305 tag length in bytes (RFC 8439 2.8). */
export const TAG_LENGTH = 16;

/**
 * Throws TypeError unless `value` is a Uint8Array, RangeError unless its length is `length`
 * (when given). Shared argument check for every provider.
 */
export function expectBytes(name: string, value: unknown, length?: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`expected ${name} to be a Uint8Array, got ${value === null ? 'null' : typeof value}`);
  }
  if (length !== undefined && value.length !== length) {
    throw new RangeError(`expected ${name} of ${length} bytes, got ${value.length}`);
  }
}

/**
 * Writes WireGuard's 12-byte AEAD nonce (4 zero bytes || little-endian 64-bit `counter`) into
 * `nonce` (whitepaper 5.4.6). Throws RangeError unless `counter` is an integer in [0, 2^53).
 */
export function writeWgNonce(nonce: Uint8Array, counter: number): void {
  if (!Number.isSafeInteger(counter) || counter < 0) {
    throw new RangeError(`expected counter to be an integer in [0, 2^53), got ${counter}`);
  }
  const lo = counter >>> 0;
  const hi = (counter - lo) / 0x1_0000_0000;
  nonce[4] = lo;
  nonce[5] = lo >>> 8;
  nonce[6] = lo >>> 16;
  nonce[7] = lo >>> 24;
  nonce[8] = hi;
  nonce[9] = hi >>> 8;
  nonce[10] = hi >>> 16;
  nonce[11] = hi >>> 24;
}

/**
 * Checks seal/open buffer arguments and returns the output length; -1 for a ciphertext shorter
 * than a tag (peer data: open reports it as a failed open, not as misuse). Throws RangeError when
 * `dst` is too small. Shared by every provider.
 */
export function checkAeadArgs(
  sealing: boolean,
  input: Uint8Array,
  aad: Uint8Array | undefined,
  dst: Uint8Array,
): number {
  expectBytes(sealing ? 'plaintext' : 'ciphertext', input);
  if (aad !== undefined) expectBytes('aad', aad);
  expectBytes('dst', dst);
  const outLen = sealing ? input.length + TAG_LENGTH : input.length - TAG_LENGTH;
  if (outLen < 0) return -1;
  if (dst.length < outLen) throw new RangeError(`expected dst of at least ${outLen} bytes, got ${dst.length}`);
  return outLen;
}

const ZERO32 = new Uint8Array(32);

function x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  expectBytes('private key', privateKey, 32);
  expectBytes('public key', publicKey, 32);
  try {
    return nobleX25519.getSharedSecret(privateKey, publicKey);
  } catch {
    // noble rejects the low-order inputs before the ladder; each of them yields the all-zero
    // secret per RFC 7748 6.1, which the interface returns for the handshake to reject.
    return ZERO32.slice();
  }
}

/**
 * RFC 8439 2.8 ChaCha20-Poly1305 seal with an explicit 12-byte nonce: writes ciphertext || tag
 * to `dst` (may overlap `plaintext` at the same offset) and returns the bytes written.
 */
export function chacha20Poly1305Seal(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array | undefined,
  dst: Uint8Array,
): number {
  expectBytes('key', key, 32);
  expectBytes('nonce', nonce, 12);
  const outLen = checkAeadArgs(true, plaintext, aad, dst);
  chacha20poly1305(key, nonce, aad).encrypt(plaintext, dst.subarray(0, outLen));
  return outLen;
}

/**
 * RFC 8439 2.8 ChaCha20-Poly1305 open with an explicit 12-byte nonce into `dst` (may overlap
 * `ciphertext` at the same offset). Returns the plaintext length, or -1 when the tag is wrong.
 */
export function chacha20Poly1305Open(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  aad: Uint8Array | undefined,
  dst: Uint8Array,
): number {
  expectBytes('key', key, 32);
  expectBytes('nonce', nonce, 12);
  const outLen = checkAeadArgs(false, ciphertext, aad, dst);
  if (outLen < 0) return -1;
  try {
    chacha20poly1305(key, nonce, aad).decrypt(ciphertext, dst.subarray(0, outLen));
  } catch {
    // Arguments were validated above, so the only failure left is the tag check.
    return -1;
  }
  return outLen;
}

/** An RFC 8439 AEAD operation with an explicit 12-byte nonce, over some key representation K. */
export type NonceAeadFn<K> = (
  key: K,
  nonce: Uint8Array,
  input: Uint8Array,
  aad: Uint8Array | undefined,
  dst: Uint8Array,
) => number;

/**
 * The Aead every provider hands out: a bound key plus WireGuard's counter nonce (whitepaper
 * 5.4.6) over the provider's explicit-nonce `seal`/`open`. `wipeKey` clears the key and returns
 * what to hold instead. Use after wipe() throws TypeError.
 */
export class CounterAead<K> implements Aead {
  #key: K;
  #nonce = new Uint8Array(12);
  #wiped = false;
  readonly #seal: NonceAeadFn<K>;
  readonly #open: NonceAeadFn<K>;
  readonly #wipeKey: (key: K) => K;

  constructor(key: K, seal: NonceAeadFn<K>, open: NonceAeadFn<K>, wipeKey: (key: K) => K) {
    this.#key = key;
    this.#seal = seal;
    this.#open = open;
    this.#wipeKey = wipeKey;
  }

  seal(counter: number, plaintext: Uint8Array, aad: Uint8Array | undefined, dst: Uint8Array): number {
    if (this.#wiped) throw new TypeError('expected a live Aead, got one already wiped');
    writeWgNonce(this.#nonce, counter);
    return this.#seal(this.#key, this.#nonce, plaintext, aad, dst);
  }

  open(counter: number, ciphertext: Uint8Array, aad: Uint8Array | undefined, dst: Uint8Array): number {
    if (this.#wiped) throw new TypeError('expected a live Aead, got one already wiped');
    writeWgNonce(this.#nonce, counter);
    return this.#open(this.#key, this.#nonce, ciphertext, aad, dst);
  }

  wipe(): void {
    this.#key = this.#wipeKey(this.#key);
    this.#wiped = true;
  }
}

function xseal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  expectBytes('key', key, 32);
  expectBytes('nonce', nonce, 24);
  expectBytes('plaintext', plaintext);
  expectBytes('aad', aad);
  return xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
}

function xopen(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
  expectBytes('key', key, 32);
  expectBytes('nonce', nonce, 24);
  expectBytes('ciphertext', ciphertext);
  expectBytes('aad', aad);
  if (ciphertext.length < TAG_LENGTH) return undefined;
  try {
    return xchacha20poly1305(key, nonce, aad).decrypt(ciphertext);
  } catch {
    return undefined;
  }
}

function hash(...parts: Uint8Array[]): Uint8Array {
  const h = blake2s.create();
  for (const p of parts) {
    expectBytes('hash input', p);
    h.update(p);
  }
  return h.digest();
}

function mac(key: Uint8Array, data: Uint8Array): Uint8Array {
  expectBytes('mac key', key);
  expectBytes('mac data', data);
  if (key.length < 1 || key.length > 32) {
    throw new RangeError(`expected mac key of 1..32 bytes, got ${key.length}`);
  }
  return blake2s(data, { key, dkLen: 16 });
}

function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  expectBytes('hmac key', key);
  expectBytes('hmac data', data);
  return nobleHmac(blake2s, key, data);
}

/** The @noble/* provider: pure TypeScript, runs anywhere, the portable default. */
export const nobleCrypto: CryptoProvider = {
  name: 'noble',
  x25519PublicKey(privateKey) {
    expectBytes('private key', privateKey, 32);
    return nobleX25519.getPublicKey(privateKey);
  },
  x25519,
  aead(key) {
    expectBytes('key', key, 32);
    return new CounterAead(copyBytes(key), chacha20Poly1305Seal, chacha20Poly1305Open, (k) => k.fill(0));
  },
  xseal,
  xopen,
  hash,
  mac,
  hmac,
};
