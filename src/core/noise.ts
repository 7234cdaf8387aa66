// Noise_IKpsk2 handshake steps (Noise rev. 34 section 5 and 9; whitepaper 5.4.2-5.4.5) over
// the crypto provider, independent of WireGuard framing: the message bodies are
// `e || enc(s) || enc(payload)` and `e || enc(payload)`, with caller-chosen prologue and payloads,
// so the same code reproduces the cacophony vectors and builds WireGuard's messages.

import type { CryptoProvider } from './crypto.js';
import { kdf1, kdf2, kdf3 } from './kdf.js';

/** Size of keys, hashes and chaining keys (X25519, BLAKE2s-256). */
export const KEY_SIZE = 32;
/** Size of the AEAD tag appended to every encrypted field. */
export const AEAD_TAG_SIZE = 16;
const EMPTY = new Uint8Array(0);

/**
 * The symmetric state of one handshake in progress (Noise 5.2): chaining key and transcript hash.
 * Mutated in place by the steps below; `wipe()` erases it.
 */
export class NoiseState {
  /** Chaining key Ci. */
  readonly chainKey = new Uint8Array(KEY_SIZE);
  /** Transcript hash Hi (the handshake hash once the handshake completes). */
  readonly hash = new Uint8Array(KEY_SIZE);

  /** Copies `other` into this state. */
  copyFrom(other: NoiseState): void {
    this.chainKey.set(other.chainKey);
    this.hash.set(other.hash);
  }

  /** Zeroes both fields. */
  wipe(): void {
    this.chainKey.fill(0);
    this.hash.fill(0);
  }
}

/**
 * The state every handshake starts from (Noise 5.2 InitializeSymmetric + MixHash(prologue);
 * whitepaper 5.4: C = HASH(CONSTRUCTION), H = HASH(C || IDENTIFIER)). Compute once, copyFrom it.
 */
export function initialState(crypto: CryptoProvider, protocolName: Uint8Array, prologue: Uint8Array): NoiseState {
  const st = new NoiseState();
  if (protocolName.length <= KEY_SIZE) st.hash.set(protocolName);
  else st.hash.set(crypto.hash(protocolName));
  st.chainKey.set(st.hash);
  mixHash(crypto, st, prologue);
  return st;
}

/** H = HASH(H || data) (Noise MixHash). */
export function mixHash(crypto: CryptoProvider, st: NoiseState, data: Uint8Array): void {
  st.hash.set(crypto.hash(st.hash, data));
}

/** C = KDF1(C, data) (the WireGuard handshake's MixKey without a derived cipher key). */
export function mixKey(crypto: CryptoProvider, st: NoiseState, data: Uint8Array): void {
  const ck = kdf1(crypto, st.chainKey, data);
  st.chainKey.set(ck);
  ck.fill(0);
}

/** (C, k) = KDF2(C, data): Noise MixKey; returns the cipher key k (caller wipes it). */
function mixKeyWithCipher(crypto: CryptoProvider, st: NoiseState, data: Uint8Array): Uint8Array {
  const [ck, k] = kdf2(crypto, st.chainKey, data);
  st.chainKey.set(ck);
  ck.fill(0);
  return k;
}

/** True when all 32 bytes are zero (a DH with a low-order point; whitepaper 5.4, RFC 7748 6.1). */
export function isZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < bytes.length; i++) acc |= bytes[i]!;
  return acc === 0;
}

/** DH that refuses the all-zero result; returns undefined for it. */
function dh(crypto: CryptoProvider, privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | undefined {
  const ss = crypto.x25519(privateKey, publicKey);
  return isZero(ss) ? undefined : ss;
}

/** EncryptAndHash with nonce 0 and a one-shot key: dst = AEAD(k, 0, plaintext, H); H = HASH(H || dst). */
function encryptAndHash(crypto: CryptoProvider, st: NoiseState, key: Uint8Array, plaintext: Uint8Array, dst: Uint8Array): void {
  const aead = crypto.aead(key);
  key.fill(0);
  aead.seal(0, plaintext, st.hash, dst);
  aead.wipe();
  mixHash(crypto, st, dst);
}

/** DecryptAndHash with nonce 0; false when authentication fails (state then unusable). */
function decryptAndHash(crypto: CryptoProvider, st: NoiseState, key: Uint8Array, ciphertext: Uint8Array, dst: Uint8Array): boolean {
  const aead = crypto.aead(key);
  key.fill(0);
  const n = aead.open(0, ciphertext, st.hash, dst);
  aead.wipe();
  if (n < 0) return false;
  mixHash(crypto, st, ciphertext);
  return true;
}

/** Length of the initiation body for a payload of `payloadLength` bytes. */
export function initiationBodyLength(payloadLength: number): number {
  return KEY_SIZE + KEY_SIZE + AEAD_TAG_SIZE + payloadLength + AEAD_TAG_SIZE;
}

/** Length of the response body for a payload of `payloadLength` bytes. */
export function responseBodyLength(payloadLength: number): number {
  return KEY_SIZE + payloadLength + AEAD_TAG_SIZE;
}

/** Inputs of createInitiation; every key is 32 bytes. */
export interface InitiationKeys {
  /** Our static public key, sent encrypted. */
  readonly localStaticPublic: Uint8Array;
  /** The responder's static public key (pre-message: Noise IK `<- s`). */
  readonly remoteStatic: Uint8Array;
  /** DH(our static private, remoteStatic), precomputed (whitepaper 5.4.2 `ss`). */
  readonly staticStatic: Uint8Array;
  /** Fresh ephemeral private key. */
  readonly ephemeralPrivate: Uint8Array;
}

/**
 * Initiator, message 1 (`-> e, es, s, ss` + payload; whitepaper 5.4.2): `st` starts as the initial
 * state; writes `e || enc(s) || enc(payload)` into `dst` (initiationBodyLength bytes). Returns
 * false when a DH result is zero (remote or precomputed key of low order).
 */
export function createInitiation(
  crypto: CryptoProvider,
  st: NoiseState,
  keys: InitiationKeys,
  payload: Uint8Array,
  dst: Uint8Array,
): boolean {
  if (isZero(keys.staticStatic)) return false;
  mixHash(crypto, st, keys.remoteStatic);
  const ephemeralPublic = crypto.x25519PublicKey(keys.ephemeralPrivate);
  dst.set(ephemeralPublic, 0);
  mixHash(crypto, st, ephemeralPublic);
  mixKey(crypto, st, ephemeralPublic);
  const es = dh(crypto, keys.ephemeralPrivate, keys.remoteStatic);
  if (es === undefined) return false;
  const staticEnd = 2 * KEY_SIZE + AEAD_TAG_SIZE;
  encryptAndHash(crypto, st, mixKeyWithCipher(crypto, st, es), keys.localStaticPublic, dst.subarray(KEY_SIZE, staticEnd));
  es.fill(0);
  const key = mixKeyWithCipher(crypto, st, keys.staticStatic);
  encryptAndHash(crypto, st, key, payload, dst.subarray(staticEnd, staticEnd + payload.length + AEAD_TAG_SIZE));
  return true;
}

/**
 * Responder, message 1, first half: `st` starts as the initial state; mixes our static key and
 * `e`, performs `es` and decrypts the initiator's static key. Returns it, or undefined when
 * authentication fails or a DH is zero. Finish with consumeInitiationPayload.
 */
export function consumeInitiationStatic(
  crypto: CryptoProvider,
  st: NoiseState,
  localStaticPrivate: Uint8Array,
  localStaticPublic: Uint8Array,
  body: Uint8Array,
): Uint8Array | undefined {
  mixHash(crypto, st, localStaticPublic);
  const ephemeral = body.subarray(0, KEY_SIZE);
  mixHash(crypto, st, ephemeral);
  mixKey(crypto, st, ephemeral);
  const es = dh(crypto, localStaticPrivate, ephemeral);
  if (es === undefined) return undefined;
  const remoteStatic = new Uint8Array(KEY_SIZE);
  const ok = decryptAndHash(crypto, st, mixKeyWithCipher(crypto, st, es), body.subarray(KEY_SIZE, 2 * KEY_SIZE + AEAD_TAG_SIZE), remoteStatic);
  es.fill(0);
  return ok ? remoteStatic : undefined;
}

/**
 * Responder, message 1, second half (`ss` + payload): decrypts the payload into `payloadOut`
 * (body length minus the static part minus a tag). False on authentication failure or zero `ss`.
 */
export function consumeInitiationPayload(
  crypto: CryptoProvider,
  st: NoiseState,
  staticStatic: Uint8Array,
  body: Uint8Array,
  payloadOut: Uint8Array,
): boolean {
  if (isZero(staticStatic)) return false;
  const key = mixKeyWithCipher(crypto, st, staticStatic);
  return decryptAndHash(crypto, st, key, body.subarray(2 * KEY_SIZE + AEAD_TAG_SIZE), payloadOut);
}

/** Inputs of createResponse; every key is 32 bytes. */
export interface ResponseKeys {
  /** The initiator's ephemeral public key from message 1. */
  readonly remoteEphemeral: Uint8Array;
  /** The initiator's static public key. */
  readonly remoteStatic: Uint8Array;
  /** Fresh ephemeral private key. */
  readonly ephemeralPrivate: Uint8Array;
  /** Pre-shared key Q (all zero when none; whitepaper 5.4.3). */
  readonly presharedKey: Uint8Array;
}

/**
 * Responder, message 2 (`<- e, ee, se, psk` + payload; whitepaper 5.4.3): `st` continues from
 * consumed message 1; writes `e || enc(payload)` into `dst` (responseBodyLength bytes).
 * Returns false when a DH result is zero.
 */
export function createResponse(
  crypto: CryptoProvider,
  st: NoiseState,
  keys: ResponseKeys,
  payload: Uint8Array,
  dst: Uint8Array,
): boolean {
  const ephemeralPublic = crypto.x25519PublicKey(keys.ephemeralPrivate);
  dst.set(ephemeralPublic, 0);
  mixHash(crypto, st, ephemeralPublic);
  mixKey(crypto, st, ephemeralPublic);
  const ee = dh(crypto, keys.ephemeralPrivate, keys.remoteEphemeral);
  if (ee === undefined) return false;
  mixKey(crypto, st, ee);
  ee.fill(0);
  const se = dh(crypto, keys.ephemeralPrivate, keys.remoteStatic);
  if (se === undefined) return false;
  mixKey(crypto, st, se);
  se.fill(0);
  const key = mixPresharedKey(crypto, st, keys.presharedKey);
  encryptAndHash(crypto, st, key, payload, dst.subarray(KEY_SIZE, KEY_SIZE + payload.length + AEAD_TAG_SIZE));
  return true;
}

/** Inputs of consumeResponse; every key is 32 bytes. */
export interface ResponseConsumerKeys {
  /** Our ephemeral private key from message 1. */
  readonly ephemeralPrivate: Uint8Array;
  /** Our static private key. */
  readonly localStaticPrivate: Uint8Array;
  /** Pre-shared key Q (all zero when none). */
  readonly presharedKey: Uint8Array;
}

/**
 * Initiator, message 2: `st` continues from created message 1; decrypts the payload into
 * `payloadOut`. False on authentication failure or a zero DH (then `st` is garbage: work on a copy).
 */
export function consumeResponse(
  crypto: CryptoProvider,
  st: NoiseState,
  keys: ResponseConsumerKeys,
  body: Uint8Array,
  payloadOut: Uint8Array,
): boolean {
  const ephemeral = body.subarray(0, KEY_SIZE);
  mixHash(crypto, st, ephemeral);
  mixKey(crypto, st, ephemeral);
  const ee = dh(crypto, keys.ephemeralPrivate, ephemeral);
  if (ee === undefined) return false;
  mixKey(crypto, st, ee);
  ee.fill(0);
  const se = dh(crypto, keys.localStaticPrivate, ephemeral);
  if (se === undefined) return false;
  mixKey(crypto, st, se);
  se.fill(0);
  const key = mixPresharedKey(crypto, st, keys.presharedKey);
  return decryptAndHash(crypto, st, key, body.subarray(KEY_SIZE), payloadOut);
}

/** (C, tau, k) = KDF3(C, Q); H = HASH(H || tau): Noise MixKeyAndHash (whitepaper 5.4.3). */
function mixPresharedKey(crypto: CryptoProvider, st: NoiseState, presharedKey: Uint8Array): Uint8Array {
  const [ck, tau, k] = kdf3(crypto, st.chainKey, presharedKey);
  st.chainKey.set(ck);
  ck.fill(0);
  mixHash(crypto, st, tau);
  tau.fill(0);
  return k;
}

/**
 * Derives the transport keys (Noise Split; whitepaper 5.4.5): (T_i->r, T_r->i) = KDF2(C, empty).
 * The initiator sends with the first, the responder with the second. Caller wipes both.
 */
export function split(crypto: CryptoProvider, st: NoiseState): [Uint8Array, Uint8Array] {
  return kdf2(crypto, st.chainKey, EMPTY);
}
