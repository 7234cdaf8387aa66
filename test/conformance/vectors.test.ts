// `conformance vectors`: every known-answer check passes with both providers, and a provider that
// is wrong in one primitive is reported failing exactly the checks that use it.

import { describe, expect, it } from 'vitest';
import type { CryptoProvider } from '../../src/core/crypto.js';
import { nobleCrypto } from '../../src/core/crypto-noble.js';
import {
  VECTOR_PROVIDERS,
  bytesToHex,
  checkHandshakeKat,
  evaluateSelftestExpr,
  hexToBytes,
  loadVectorFile,
  runVectorChecks,
  vectorChecks,
  type HandshakeKatFile,
} from '../../src/conformance/vectors.js';

describe('conformance vectors', () => {
  it('passes every check with both providers and covers every vector file', () => {
    const results = runVectorChecks(vectorChecks([VECTOR_PROVIDERS.noble, VECTOR_PROVIDERS.node]));
    expect(results.filter((r) => !r.ok)).toEqual([]);
    const files = new Set(results.map((r) => r.file));
    expect([...files].sort()).toEqual([
      'blake2s.json',
      'cacophony-ikpsk2.json',
      'chacha20poly1305.json',
      'replay-kernel-selftest.json',
      'wireguard-handshake-kat.json',
      'wireguard-kdf.json',
      'x25519.json',
      'xchacha20poly1305.json',
    ]);
    for (const p of ['noble', 'node', 'core']) expect(results.some((r) => r.provider === p)).toBe(true);
    // 14 + 14 + 11 + 27 + 3 + 1 + 1 per provider, 14 + 21 provider-independent.
    expect(results).toHaveLength(2 * 71 + 35);
  });

  it('reports a provider with a wrong BLAKE2s mac as failing the mac vectors and the handshake', () => {
    const broken: CryptoProvider = {
      ...nobleCrypto,
      name: 'broken-mac',
      mac: (key, data) => {
        const out = nobleCrypto.mac(key, data);
        out[0]! ^= 1;
        return out;
      },
    };
    const results = runVectorChecks(vectorChecks([{ ...VECTOR_PROVIDERS.noble, provider: broken }]));
    const failed = results.filter((r) => !r.ok);
    expect(new Set(failed.map((r) => r.file))).toEqual(new Set(['blake2s.json', 'wireguard-handshake-kat.json']));
    expect(failed.filter((r) => r.file === 'blake2s.json').every((r) => r.name.startsWith('mac '))).toBe(true);
    expect(failed.find((r) => r.file === 'wireguard-handshake-kat.json')?.detail).toMatch(/^initiation: expected/);
  });

  it('turns a throwing check into a failure with the message', () => {
    const [r] = runVectorChecks([{ file: 'f', provider: 'p', name: 'n', run: () => { throw new Error('boom'); } }]);
    expect(r).toMatchObject({ ok: false, detail: 'threw: boom' });
  });

  it('rejects a tampered known-answer file', () => {
    const kat = loadVectorFile<HandshakeKatFile>('wireguard-handshake-kat.json');
    expect(checkHandshakeKat(nobleCrypto, kat)).toBeUndefined();
    const flipped = hexToBytes(kat.outputs.response);
    flipped[10]! ^= 0x80;
    expect(checkHandshakeKat(nobleCrypto, { ...kat, outputs: { ...kat.outputs, response: bytesToHex(flipped) } })).toMatch(/^response: /);
    const wrongReason = { ...kat, invalid: [{ ...kat.invalid[0]!, reason: 'mac1' }] };
    expect(checkHandshakeKat(nobleCrypto, wrongReason)).toMatch(/expected drop mac1, got decrypt/);
  });

  it('evaluates selftest expressions and refuses anything else', () => {
    expect(evaluateSelftestExpr('(W + 1) * 2 - LIMIT', { W: 10, LIMIT: 3 })).toBe(19);
    expect(() => evaluateSelftestExpr('W / 2', { W: 10 })).toThrow(/bad expression/);
    expect(() => evaluateSelftestExpr('X', { W: 10 })).toThrow(/unexpected X/);
    expect(() => evaluateSelftestExpr('constructor', {})).toThrow(/bad expression/);
    expect(() => hexToBytes('abc')).toThrow(RangeError);
  });
});
