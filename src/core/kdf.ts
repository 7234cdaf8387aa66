// WireGuard's KDF_n (whitepaper 5.4, "KDF_n(key, input)"): HKDF (RFC 5869) with HMAC-BLAKE2s,
// extract-then-expand with one-byte counters, returning n 32-byte values.

import type { CryptoProvider } from './crypto.js';

const ONE = Uint8Array.of(1);

/**
 * KDF_n(key, input) for n in 1..3: tau0 = HMAC(key, input), tau1 = HMAC(tau0, 0x1),
 * tau_i = HMAC(tau0, tau_(i-1) || i); returns [tau1, ..., tau_n] (32 bytes each). Throws RangeError
 * for another n. tau0 and the scratch input are wiped before returning.
 */
export function kdf(crypto: CryptoProvider, key: Uint8Array, input: Uint8Array, n: 1 | 2 | 3): Uint8Array[] {
  if (n !== 1 && n !== 2 && n !== 3) throw new RangeError(`expected n of 1, 2 or 3, got ${String(n)}`);
  const prk = crypto.hmac(key, input);
  const out: Uint8Array[] = [crypto.hmac(prk, ONE)];
  const scratch = new Uint8Array(33);
  for (let i = 2; i <= n; i++) {
    scratch.set(out[i - 2] as Uint8Array, 0);
    scratch[32] = i;
    out.push(crypto.hmac(prk, scratch));
  }
  prk.fill(0);
  scratch.fill(0);
  return out;
}

/** KDF1(key, input): one 32-byte value (tau1). */
export function kdf1(crypto: CryptoProvider, key: Uint8Array, input: Uint8Array): Uint8Array {
  return kdf(crypto, key, input, 1)[0] as Uint8Array;
}

/** KDF2(key, input): two 32-byte values (tau1, tau2). */
export function kdf2(crypto: CryptoProvider, key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array] {
  return kdf(crypto, key, input, 2) as [Uint8Array, Uint8Array];
}

/** KDF3(key, input): three 32-byte values (tau1, tau2, tau3). */
export function kdf3(
  crypto: CryptoProvider,
  key: Uint8Array,
  input: Uint8Array,
): [Uint8Array, Uint8Array, Uint8Array] {
  return kdf(crypto, key, input, 3) as [Uint8Array, Uint8Array, Uint8Array];
}
