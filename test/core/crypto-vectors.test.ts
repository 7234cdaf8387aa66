// One runner for every crypto vector file in vectors/ (see vectors/README.md): each provider must
// reproduce the valid vectors and reject the invalid ones; the providers must agree with each other.

import { blake2s } from '@noble/hashes/blake2.js';
import { describe, expect, it } from 'vitest';
import {
  VECTOR_PROVIDERS,
  blake2sSelftest,
  loadVectorFile as load,
  type AeadFile,
  type Blake2sFile,
  type X25519File,
} from '../../src/conformance/vectors.js';
import type { CryptoProvider } from '../../src/core/crypto.js';
import { fromHex as hex, toHex } from '../helpers/bytes.js';
import { prng } from '../helpers/prng.js';

const PROVIDERS = [VECTOR_PROVIDERS.noble, VECTOR_PROVIDERS.node];
/** Seeded random bytes and integers, so a failing random case replays from its seed. */
function rng(seed: number): { bytes(n: number): Uint8Array; int(max: number): number } {
  const next = prng(seed);
  const int = (max: number): number => Math.floor(next() * max);
  return { int, bytes: (n) => Uint8Array.from({ length: n }, () => int(256)) };
}


describe.each(PROVIDERS)('$provider.name provider', ({ provider, seal, open }) => {
  describe('X25519 (RFC 7748)', () => {
    const v = load<X25519File>('x25519.json');

    it.each(v.scalarmult)('$name', (t) => {
      expect(toHex(provider.x25519(hex(t.scalar), hex(t.u)))).toBe(t.out);
    });
    it.each(v.publicKey)('public key: $name', (t) => {
      expect(toHex(provider.x25519PublicKey(hex(t.private)))).toBe(t.public);
    });
    it('iterated vectors (1 and 1,000 iterations; 1,000,000 skipped as too slow)', () => {
      let k = hex(v.iterated.start);
      let u = hex(v.iterated.start);
      let done = 0;
      for (const r of v.iterated.results.filter((x) => x.skip === undefined)) {
        for (; done < r.iterations; done++) [k, u] = [provider.x25519(k, u), k];
        expect(toHex(k), `${r.iterations} iterations`).toBe(r.out);
      }
    });
    it.each(v.lowOrder.u)('low-order public key %s gives the all-zero secret', (u) => {
      expect(toHex(provider.x25519(hex(v.lowOrder.scalar), hex(u)))).toBe('00'.repeat(32));
    });
    it('rejects keys of the wrong length', () => {
      expect(() => provider.x25519(new Uint8Array(31), new Uint8Array(32))).toThrow(RangeError);
      expect(() => provider.x25519PublicKey(new Uint8Array(33))).toThrow(RangeError);
      expect(() => provider.x25519('x' as unknown as Uint8Array, new Uint8Array(32))).toThrow(TypeError);
    });
  });

  describe('ChaCha20-Poly1305 (RFC 8439)', () => {
    const v = load<AeadFile>('chacha20poly1305.json');

    it.each(v.valid)('seal/open $name', (t) => {
      const pt = hex(t.plaintext);
      const aad = hex(t.aad);
      const dst = new Uint8Array(pt.length + 16);
      expect(seal(hex(t.key), hex(t.nonce), pt, aad, dst)).toBe(dst.length);
      expect(toHex(dst)).toBe(t.ciphertext + t.tag);
      const back = new Uint8Array(pt.length);
      expect(open(hex(t.key), hex(t.nonce), dst, aad, back)).toBe(pt.length);
      expect(toHex(back)).toBe(t.plaintext);
    });
    it.each(v.invalid)('rejects $name', (t) => {
      const ct = hex(t.ciphertext + t.tag);
      expect(open(hex(t.key), hex(t.nonce), ct, hex(t.aad), new Uint8Array(ct.length))).toBe(-1);
    });
    it('rejects a ciphertext shorter than a tag without throwing', () => {
      expect(open(new Uint8Array(32), new Uint8Array(12), new Uint8Array(15), undefined, new Uint8Array(0))).toBe(-1);
      expect(provider.aead(new Uint8Array(32)).open(0, new Uint8Array(3), undefined, new Uint8Array(3))).toBe(-1);
    });

    it('Aead uses the WireGuard nonce: 4 zero bytes || little-endian 64-bit counter', () => {
      const key = hex(v.valid[0]!.key);
      const aead = provider.aead(key);
      const pt = hex(v.valid[0]!.plaintext);
      const aad = hex(v.valid[0]!.aad);
      for (const counter of [0, 1, 255, 256, 0xffff_ffff, 0x1_0000_0000, 2 ** 53 - 1]) {
        const nonce = new Uint8Array(12);
        new DataView(nonce.buffer).setBigUint64(4, BigInt(counter), true);
        const want = new Uint8Array(pt.length + 16);
        seal(key, nonce, pt, aad, want);
        const got = new Uint8Array(pt.length + 16);
        expect(aead.seal(counter, pt, aad, got)).toBe(got.length);
        expect(toHex(got), `counter ${counter}`).toBe(toHex(want));
        const back = new Uint8Array(pt.length);
        expect(aead.open(counter, got, aad, back)).toBe(pt.length);
        expect(aead.open(counter + (counter === 0 ? 1 : -1), got, aad, back)).toBe(-1);
      }
    });
    it('Aead seals and opens in place, with and without AAD, at an offset', () => {
      const aead = provider.aead(hex(v.valid[1]!.key));
      const r = rng(7);
      for (const len of [0, 1, 15, 16, 17, 64, 1420]) {
        for (const aad of [undefined, r.bytes(32)]) {
          const pt = r.bytes(len);
          const buf = new Uint8Array(16 + len + 16 + 8);
          buf.set(pt, 16);
          const region = buf.subarray(16, 16 + len + 16);
          const plainView = buf.subarray(16, 16 + len);
          const copy = new Uint8Array(len + 16);
          aead.seal(9, pt, aad, copy);
          expect(aead.seal(9, plainView, aad, region)).toBe(len + 16);
          expect(toHex(region)).toBe(toHex(copy));
          expect(aead.open(9, region, aad, plainView)).toBe(len);
          expect(toHex(plainView)).toBe(toHex(pt));
        }
      }
    });
    it('Aead rejects misuse with TypeError/RangeError', () => {
      expect(() => provider.aead(new Uint8Array(16))).toThrow(RangeError);
      const aead = provider.aead(new Uint8Array(32));
      expect(() => aead.seal(-1, new Uint8Array(1), undefined, new Uint8Array(17))).toThrow(RangeError);
      expect(() => aead.seal(1.5, new Uint8Array(1), undefined, new Uint8Array(17))).toThrow(RangeError);
      expect(() => aead.seal(2 ** 53, new Uint8Array(1), undefined, new Uint8Array(17))).toThrow(RangeError);
      expect(() => aead.seal(0, new Uint8Array(1), undefined, new Uint8Array(16))).toThrow(RangeError);
      expect(() => aead.open(0, new Uint8Array(20), undefined, new Uint8Array(3))).toThrow(RangeError);
      aead.wipe();
      expect(() => aead.seal(0, new Uint8Array(1), undefined, new Uint8Array(17))).toThrow(TypeError);
      expect(() => aead.open(0, new Uint8Array(17), undefined, new Uint8Array(1))).toThrow(TypeError);
    });
  });

  describe('XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha)', () => {
    const v = load<AeadFile>('xchacha20poly1305.json');

    it.each(v.valid)('xseal/xopen $name', (t) => {
      const sealed = provider.xseal(hex(t.key), hex(t.nonce), hex(t.plaintext), hex(t.aad));
      expect(toHex(sealed)).toBe(t.ciphertext + t.tag);
      const opened = provider.xopen(hex(t.key), hex(t.nonce), sealed, hex(t.aad));
      expect(opened && toHex(opened)).toBe(t.plaintext);
    });
    it.each(v.invalid)('rejects $name', (t) => {
      expect(provider.xopen(hex(t.key), hex(t.nonce), hex(t.ciphertext + t.tag), hex(t.aad))).toBeUndefined();
    });
    it('rejects short ciphertexts and wrong lengths', () => {
      expect(provider.xopen(new Uint8Array(32), new Uint8Array(24), new Uint8Array(15), new Uint8Array(0))).toBeUndefined();
      expect(() => provider.xseal(new Uint8Array(32), new Uint8Array(12), new Uint8Array(1), new Uint8Array(0))).toThrow(
        RangeError,
      );
    });
  });

  describe('BLAKE2s (RFC 7693)', () => {
    const v = load<Blake2sFile>('blake2s.json');

    it.each(v.hash)('hash $name', (t) => {
      const input = hex(t.input);
      expect(toHex(provider.hash(input))).toBe(t.out);
      // The same digest over the input split into parts, as the handshake hashes H || data.
      const cut = input.length >> 1;
      expect(toHex(provider.hash(input.subarray(0, cut), new Uint8Array(0), input.subarray(cut)))).toBe(t.out);
    });
    it.each(v.mac)('mac $name', (t) => {
      expect(toHex(provider.mac(hex(t.key), hex(t.input)))).toBe(t.out);
    });
  });

  describe('KDF inputs: HMAC-BLAKE2s', () => {
    it('matches a from-scratch RFC 2104 HMAC over the provider hash, for short and long keys', () => {
      const r = rng(11);
      for (const keyLen of [0, 1, 32, 64, 65, 100]) {
        const key = r.bytes(keyLen);
        const data = r.bytes(r.int(200));
        // RFC 2104 with B = 64: keys longer than B are hashed first, then zero-padded to B.
        const k0 = new Uint8Array(64);
        k0.set(keyLen > 64 ? provider.hash(key) : key);
        const ipad = k0.map((b) => b ^ 0x36);
        const opad = k0.map((b) => b ^ 0x5c);
        const want = provider.hash(opad, provider.hash(ipad, data));
        expect(toHex(provider.hmac(key, data)), `key length ${keyLen}`).toBe(toHex(want));
      }
    });
  });
});

describe('BLAKE2s primitive under both providers\' mac (noble blake2s)', () => {
  const v = load<Blake2sFile>('blake2s.json');

  it.each(v.keyed256)('keyed 32-byte output: $name', (t) => {
    expect(toHex(blake2s(hex(t.input), { key: hex(t.key) }))).toBe(t.out);
  });
  it('RFC 7693 Appendix E self-test grand hash', () => {
    expect(blake2sSelftest(v.selftest)).toBe(v.selftest.out);
    expect(blake2sSelftest({ ...v.selftest, inlens: v.selftest.inlens.slice(1) })).not.toBe(v.selftest.out);
  });
});

describe('noble and node agree on random inputs', () => {
  const [a, b] = PROVIDERS.map((p) => p.provider) as [CryptoProvider, CryptoProvider];

  it('200 random AEAD messages (length 0..2000): identical ciphertexts, each opens with the other', () => {
    const r = rng(2024);
    for (let i = 0; i < 200; i++) {
      const key = r.bytes(32);
      const counter = r.int(2 ** 31) * 4096 + r.int(4096);
      const pt = r.bytes(r.int(2001));
      const aad = r.int(2) === 0 ? undefined : r.bytes(r.int(80));
      const [sealer, opener] = i % 2 === 0 ? [a, b] : [b, a];
      const ct = new Uint8Array(pt.length + 16);
      sealer.aead(key).seal(counter, pt, aad, ct);
      const ct2 = new Uint8Array(pt.length + 16);
      opener.aead(key).seal(counter, pt, aad, ct2);
      expect(toHex(ct2), `message ${i}`).toBe(toHex(ct));
      const back = new Uint8Array(pt.length);
      expect(opener.aead(key).open(counter, ct, aad, back)).toBe(pt.length);
      expect(toHex(back)).toBe(toHex(pt));
    }
  });
  it('random X25519, hash, mac, hmac and XChaCha20-Poly1305', () => {
    const r = rng(99);
    for (let i = 0; i < 40; i++) {
      const sk = r.bytes(32);
      const pk = r.bytes(32);
      expect(toHex(b.x25519PublicKey(sk))).toBe(toHex(a.x25519PublicKey(sk)));
      expect(toHex(b.x25519(sk, pk))).toBe(toHex(a.x25519(sk, pk)));
      const data = r.bytes(r.int(300));
      const key = r.bytes(1 + r.int(32));
      expect(toHex(b.hash(data, key))).toBe(toHex(a.hash(data, key)));
      expect(toHex(b.mac(key, data))).toBe(toHex(a.mac(key, data)));
      expect(toHex(b.hmac(key, data))).toBe(toHex(a.hmac(key, data)));
      const k32 = r.bytes(32);
      const n24 = r.bytes(24);
      const sealed = a.xseal(k32, n24, data, key);
      expect(toHex(b.xseal(k32, n24, data, key))).toBe(toHex(sealed));
      expect(toHex(b.xopen(k32, n24, sealed, key) ?? new Uint8Array(0))).toBe(toHex(data));
    }
  });
  it('X25519 shared secrets agree both ways (Diffie-Hellman)', () => {
    const r = rng(5);
    for (let i = 0; i < 10; i++) {
      const s1 = r.bytes(32);
      const s2 = r.bytes(32);
      const shared = a.x25519(s1, b.x25519PublicKey(s2));
      expect(toHex(b.x25519(s2, a.x25519PublicKey(s1)))).toBe(toHex(shared));
      // The node provider caches two private KeyObjects: interleave to exercise eviction.
      expect(toHex(b.x25519(s1, b.x25519PublicKey(s2)))).toBe(toHex(shared));
    }
  });
});
