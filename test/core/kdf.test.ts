// WireGuard KDF1/2/3 against wireguard-go's known answers (vectors/wireguard-kdf.json), per provider.

import { describe, expect, it } from 'vitest';
import { loadVectorFile, type KdfFile } from '../../src/conformance/vectors.js';
import { nobleCrypto } from '../../src/core/crypto-noble.js';
import { kdf, kdf1, kdf2, kdf3 } from '../../src/core/kdf.js';
import { nodeCrypto } from '../../src/crypto/node.js';
import { fromHex as hex, toHex } from '../helpers/bytes.js';

const file = loadVectorFile<KdfFile>('wireguard-kdf.json');

describe.each([nobleCrypto, nodeCrypto])('KDF with the $name provider', (crypto) => {
  it.each(file.vectors)('$name', (v) => {
    const key = hex(v.key);
    const input = hex(v.input);
    expect(kdf3(crypto, key, input).map(toHex)).toEqual(v.outputs);
    expect(kdf2(crypto, key, input).map(toHex)).toEqual(v.outputs.slice(0, 2));
    expect(toHex(kdf1(crypto, key, input))).toBe(v.outputs[0]);
  });

  it('follows the whitepaper definition step by step', () => {
    const key = Uint8Array.from({ length: 32 }, (_, i) => i);
    const input = Uint8Array.from({ length: 45 }, (_, i) => 255 - i);
    const t0 = crypto.hmac(key, input);
    const t1 = crypto.hmac(t0, Uint8Array.of(1));
    const t2 = crypto.hmac(t0, Uint8Array.of(...t1, 2));
    const t3 = crypto.hmac(t0, Uint8Array.of(...t2, 3));
    expect(kdf3(crypto, key, input).map(toHex)).toEqual([t1, t2, t3].map(toHex));
  });

  it('does not modify its inputs and rejects other output counts', () => {
    const key = new Uint8Array(32).fill(7);
    const input = new Uint8Array(5).fill(9);
    kdf3(crypto, key, input);
    expect(key.every((b) => b === 7) && input.every((b) => b === 9)).toBe(true);
    expect(() => kdf(crypto, key, input, 4 as 3)).toThrow(RangeError);
  });
});
