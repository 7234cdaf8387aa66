// MAC1/MAC2 and cookie replies (whitepaper 5.4.4 and 5.4.7, wireguard-go device/cookie.go): the
// responder's CookieChecker and the initiator's per-peer CookieGenerator. Time and randomness are
// passed in; `now` is the core's monotonic milliseconds.

import type { Endpoint } from './actions.js';
import { COOKIE_REFRESH_TIME, LABEL_COOKIE, LABEL_MAC1 } from './constants.js';
import type { CryptoProvider } from './crypto.js';
import { parseIp } from './ip.js';
import { COOKIE_REPLY_SIZE, CookieReplyOffset, MAC_SIZE, MessageType, writeU32 } from './messages.js';

const encoder = new TextEncoder();
const LABEL_MAC1_BYTES = encoder.encode(LABEL_MAC1);
const LABEL_COOKIE_BYTES = encoder.encode(LABEL_COOKIE);
const NONCE_SIZE = 24;

/** Constant-time equality of two byte strings of equal length (length itself is not secret). */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * The bytes a cookie binds to (whitepaper 5.4.7 A_m'): the source IP (4 or 16 bytes) followed by
 * the port, little-endian as wireguard-go's netip.AddrPort encoding. Only this host reads it.
 */
export function endpointBytes(endpoint: Endpoint): Uint8Array {
  const ip = parseIp(endpoint.address) ?? encoder.encode(endpoint.address);
  const out = new Uint8Array(ip.length + 2);
  out.set(ip);
  out[ip.length] = endpoint.port & 0xff;
  out[ip.length + 1] = (endpoint.port >>> 8) & 0xff;
  return out;
}

/** HASH(label || publicKey): the MAC1 key or the cookie encryption key of a public key. */
function labelKey(crypto: CryptoProvider, label: Uint8Array, publicKey: Uint8Array): Uint8Array {
  return crypto.hash(label, publicKey);
}

/**
 * Responder side (one per device, keyed by our public key): checks MAC1 and MAC2 of incoming
 * handshake messages and creates cookie replies under load. The secret rotates every
 * COOKIE_REFRESH_TIME (whitepaper 5.4.7).
 */
export class CookieChecker {
  readonly #crypto: CryptoProvider;
  #mac1Key: Uint8Array = new Uint8Array(32);
  #encryptionKey: Uint8Array = new Uint8Array(32);
  readonly #secret = new Uint8Array(32);
  #secretSetAt = -Infinity;

  /** `publicKey`: our static public key, or undefined while none is configured. */
  constructor(crypto: CryptoProvider, publicKey?: Uint8Array) {
    this.#crypto = crypto;
    if (publicKey !== undefined) this.init(publicKey);
  }

  /** Rekeys for a new static public key (also forgets the cookie secret). */
  init(publicKey: Uint8Array): void {
    this.#mac1Key = labelKey(this.#crypto, LABEL_MAC1_BYTES, publicKey);
    this.#encryptionKey = labelKey(this.#crypto, LABEL_COOKIE_BYTES, publicKey);
    this.#secret.fill(0);
    this.#secretSetAt = -Infinity;
  }

  /** True when the MAC1 field (32 to 16 bytes from the end) of `msg` is valid (whitepaper 5.4.4). */
  checkMac1(msg: Uint8Array): boolean {
    const smac1 = msg.length - 2 * MAC_SIZE;
    if (smac1 < 0) return false;
    const mac1 = this.#crypto.mac(this.#mac1Key, msg.subarray(0, smac1));
    return equalBytes(mac1, msg.subarray(smac1, smac1 + MAC_SIZE));
  }

  /**
   * True when the MAC2 field (last 16 bytes) of `msg` proves a current cookie for `source`
   * (endpointBytes). Always false when the secret is older than COOKIE_REFRESH_TIME.
   */
  checkMac2(msg: Uint8Array, source: Uint8Array, now: number): boolean {
    if (now - this.#secretSetAt > COOKIE_REFRESH_TIME) return false;
    const smac2 = msg.length - MAC_SIZE;
    if (smac2 < MAC_SIZE) return false;
    // A sender without a cookie leaves MAC2 zero (5.4.4); a real MAC2 is zero with chance 2^-128.
    // Saves two BLAKE2s per cookie-less message under a flood.
    let any = 0;
    for (let i = smac2; i < msg.length; i++) any |= msg[i]!;
    if (any === 0) return false;
    const cookie = this.#crypto.mac(this.#secret, source);
    const mac2 = this.#crypto.mac(cookie, msg.subarray(0, smac2));
    cookie.fill(0);
    return equalBytes(mac2, msg.subarray(smac2));
  }

  /**
   * Builds the 64-byte cookie reply to handshake message `msg` from `source` (endpointBytes),
   * addressed to the message's sender index `receiver` (whitepaper 5.4.7). Rotates the secret
   * when stale; `fillRandom` supplies the secret and the 24-byte nonce.
   */
  createReply(msg: Uint8Array, receiver: number, source: Uint8Array, now: number, fillRandom: (buf: Uint8Array) => void): Uint8Array {
    if (now - this.#secretSetAt > COOKIE_REFRESH_TIME) {
      fillRandom(this.#secret);
      this.#secretSetAt = now;
    }
    const smac1 = msg.length - 2 * MAC_SIZE;
    const cookie = this.#crypto.mac(this.#secret, source);
    const out = new Uint8Array(COOKIE_REPLY_SIZE);
    out[0] = MessageType.cookieReply;
    writeU32(out, CookieReplyOffset.receiver, receiver);
    const nonce = out.subarray(CookieReplyOffset.nonce, CookieReplyOffset.cookie);
    fillRandom(nonce);
    const sealed = this.#crypto.xseal(this.#encryptionKey, nonce, cookie, msg.subarray(smac1, smac1 + MAC_SIZE));
    out.set(sealed, CookieReplyOffset.cookie);
    cookie.fill(0);
    return out;
  }

  /** Erases the keys and the secret. */
  wipe(): void {
    this.#mac1Key.fill(0);
    this.#encryptionKey.fill(0);
    this.#secret.fill(0);
    this.#secretSetAt = -Infinity;
  }
}

/**
 * Initiator side (one per peer, keyed by the peer's public key): writes MAC1 and, while a cookie
 * from this peer is fresh, MAC2 into outgoing handshake messages; consumes cookie replies.
 */
export class CookieGenerator {
  readonly #crypto: CryptoProvider;
  readonly #publicKey: Uint8Array;
  // Derived, cookie and last-MAC1 buffers are made on first use: most configured peers never
  // exchange a handshake message, and two hashes per peer slowed loading many of them.
  #mac1Key: Uint8Array | undefined;
  #encryptionKey: Uint8Array | undefined;
  #cookie: Uint8Array | undefined;
  #cookieSetAt = -Infinity;
  #lastMac1: Uint8Array | undefined;

  /** `publicKey`: the peer's static public key (32 bytes); kept by reference, never written. */
  constructor(crypto: CryptoProvider, publicKey: Uint8Array) {
    this.#crypto = crypto;
    this.#publicKey = publicKey;
  }

  /**
   * Fills the MAC1 and MAC2 fields (the last 32 bytes) of handshake message `msg` in place
   * (whitepaper 5.4.4): MAC2 is zero unless a cookie younger than COOKIE_REFRESH_TIME is held.
   */
  addMacs(msg: Uint8Array, now: number): void {
    const smac2 = msg.length - MAC_SIZE;
    const smac1 = smac2 - MAC_SIZE;
    this.#mac1Key ??= labelKey(this.#crypto, LABEL_MAC1_BYTES, this.#publicKey);
    const mac1 = this.#crypto.mac(this.#mac1Key, msg.subarray(0, smac1));
    msg.set(mac1, smac1);
    (this.#lastMac1 ??= new Uint8Array(MAC_SIZE)).set(mac1);
    if (this.#cookie === undefined || now - this.#cookieSetAt > COOKIE_REFRESH_TIME) {
      msg.fill(0, smac2);
      return;
    }
    msg.set(this.#crypto.mac(this.#cookie, msg.subarray(0, smac2)), smac2);
  }

  /**
   * Decrypts a cookie reply's nonce and sealed cookie against the MAC1 we last sent; true when it
   * authenticates, and the cookie is then used for MAC2 for COOKIE_REFRESH_TIME.
   */
  consumeReply(nonce: Uint8Array, sealedCookie: Uint8Array, now: number): boolean {
    if (this.#lastMac1 === undefined || nonce.length !== NONCE_SIZE) return false;
    this.#encryptionKey ??= labelKey(this.#crypto, LABEL_COOKIE_BYTES, this.#publicKey);
    const cookie = this.#crypto.xopen(this.#encryptionKey, nonce, sealedCookie, this.#lastMac1);
    if (cookie === undefined || cookie.length !== MAC_SIZE) return false;
    (this.#cookie ??= new Uint8Array(MAC_SIZE)).set(cookie);
    cookie.fill(0);
    this.#cookieSetAt = now;
    return true;
  }

  /** Erases the held cookie and the last MAC1 (keys derived from public data are kept). */
  wipe(): void {
    this.#cookie?.fill(0);
    this.#cookieSetAt = -Infinity;
    // Dropped, not only zeroed: "no MAC1 sent" is what makes consumeReply refuse.
    this.#lastMac1?.fill(0);
    this.#lastMac1 = undefined;
  }
}
