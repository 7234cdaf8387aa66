// The node's WireGuard key pair in the agent (docs/security.md "Secrets"): the private key is held
// as bytes the holder owns (never a view of Node's shared Buffer pool), its public key is derived
// once per key, and the bytes are wiped when the key is replaced or the holder closed, as the core
// wipes its handshake and session keys. The data_dir keeps the key as base64 text (store.ts); the
// text is decoded here, once.

import { getRandomValues } from 'node:crypto';
import { decodeBase64, encodeBase64 } from '../api/fields.js';
import { nodeCrypto } from '../crypto/node.js';

/** Derives an X25519 public key from a 32-byte private key (a CryptoProvider's x25519PublicKey). */
export type DerivePublicKey = (privateKey: Uint8Array) => Uint8Array;

/**
 * Decodes a base64 X25519 private key into a fresh 32-byte array the caller owns and must wipe.
 * Throws TypeError when `privateKeyBase64` is not 32 bytes of canonical base64.
 */
export function decodePrivateKey(privateKeyBase64: string): Uint8Array {
  const bytes = typeof privateKeyBase64 === 'string' ? decodeBase64(privateKeyBase64, 32) : undefined;
  if (bytes === undefined) throw new TypeError('expected a private key of 32 bytes in base64 (44 characters)');
  return bytes;
}

/** A fresh X25519 private key (clamped as RFC 7748 5 and `wg genkey` do) as base64. */
export function generatePrivateKey(): string {
  const k = getRandomValues(new Uint8Array(32));
  k[0]! &= 248;
  k[31] = (k[31]! & 127) | 64;
  try {
    return encodeBase64(k);
  } finally {
    k.fill(0);
  }
}

/** The X25519 public key (base64) of a base64 private key; the decoded copy is wiped. Throws
 *  TypeError for a malformed key. Each call derives anew: hold a {@link NodeKeys} to derive once. */
export function publicKeyOf(privateKeyBase64: string): string {
  const k = decodePrivateKey(privateKeyBase64);
  try {
    return encodeBase64(nodeCrypto.x25519PublicKey(k));
  } finally {
    k.fill(0);
  }
}

/**
 * The node's private key as owned bytes and its public key, derived once per key. `replace` swaps
 * in a new key (the old bytes are wiped); `close` wipes the bytes. Throws TypeError for a
 * malformed key, and Error when used after close.
 */
export class NodeKeys {
  readonly #derive: DerivePublicKey;
  #privateKey: Uint8Array;
  #publicKey: string;
  #closed = false;

  constructor(privateKeyBase64: string, derive: DerivePublicKey = nodeCrypto.x25519PublicKey) {
    this.#derive = derive;
    this.#privateKey = decodePrivateKey(privateKeyBase64);
    this.#publicKey = encodeBase64(derive(this.#privateKey));
  }

  /** The private key bytes (32; owned by the holder: do not keep them past a replace or close). */
  get privateKey(): Uint8Array {
    this.#check();
    return this.#privateKey;
  }

  /** The public key (base64) of the key held now. */
  get publicKey(): string {
    this.#check();
    return this.#publicKey;
  }

  /** Holds `privateKeyBase64` from now on and wipes the previous key's bytes. */
  replace(privateKeyBase64: string): void {
    this.#check();
    const next = decodePrivateKey(privateKeyBase64);
    let pub: string;
    try {
      pub = encodeBase64(this.#derive(next));
    } catch (err) {
      next.fill(0);
      throw err;
    }
    this.#privateKey.fill(0);
    this.#privateKey = next;
    this.#publicKey = pub;
  }

  /** Wipes the private key. Idempotent. */
  close(): void {
    this.#privateKey.fill(0);
    this.#closed = true;
  }

  #check(): void {
    if (this.#closed) throw new Error('the node keys were closed');
  }
}
