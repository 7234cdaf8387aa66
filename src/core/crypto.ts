// The crypto provider interface: every primitive WireGuard needs (whitepaper 5.4, RFC 7748,
// RFC 8439, draft-irtf-cfrg-xchacha, RFC 7693, RFC 2104). The core only ever talks to this
// interface; implementations live in crypto-noble.ts (pure TypeScript, in core) and
// ../crypto/node.ts (node:crypto, outside core because it imports node:*).

/** A ChaCha20-Poly1305 key bound once, used for many messages (RFC 8439 AEAD construction). */
export interface Aead {
  /**
   * Encrypts `plaintext` with the WireGuard nonce (4 zero bytes || little-endian 64-bit
   * `counter`) and writes ciphertext || 16-byte tag to `dst` (length >= plaintext.length + 16).
   * `dst` may overlap `plaintext` at the same offset (in-place). Returns bytes written.
   * `counter` is a non-negative integer below 2^53.
   */
  seal(counter: number, plaintext: Uint8Array, aad: Uint8Array | undefined, dst: Uint8Array): number;
  /**
   * Verifies and decrypts `ciphertext` (data || 16-byte tag) into `dst`
   * (length >= ciphertext.length - 16); `dst` may overlap `ciphertext` at the same offset.
   * Returns the plaintext length, or -1 when authentication fails (dst content then undefined).
   */
  open(counter: number, ciphertext: Uint8Array, aad: Uint8Array | undefined, dst: Uint8Array): number;
  /** Overwrites the key material held by this object. The object is unusable afterwards. */
  wipe(): void;
}

/** Every primitive the protocol core uses. Implementations must pass vectors/ unchanged. */
export interface CryptoProvider {
  /** Short stable name: 'noble' or 'node'. */
  readonly name: string;
  /** RFC 7748 X25519 public key for a 32-byte private scalar (clamped internally). */
  x25519PublicKey(privateKey: Uint8Array): Uint8Array;
  /**
   * RFC 7748 X25519 shared secret (32 bytes). Returns the all-zero result as is when the peer key
   * is a low-order point; the caller decides (the handshake rejects it).
   */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  /** Binds a 32-byte ChaCha20-Poly1305 key for repeated use (transport and handshake AEAD). */
  aead(key: Uint8Array): Aead;
  /** XChaCha20-Poly1305 seal with a 24-byte nonce; returns ciphertext || tag (cookie replies). */
  xseal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /** XChaCha20-Poly1305 open; returns the plaintext, or undefined when authentication fails. */
  xopen(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array | undefined;
  /** Unkeyed BLAKE2s-256 of the concatenation of `parts` (RFC 7693). */
  hash(...parts: Uint8Array[]): Uint8Array;
  /** Keyed BLAKE2s with a 16-byte output (RFC 7693 keyed mode), WireGuard's MAC(key, input). */
  mac(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** HMAC (RFC 2104) over BLAKE2s-256 with block size 64; output 32 bytes. */
  hmac(key: Uint8Array, data: Uint8Array): Uint8Array;
}
