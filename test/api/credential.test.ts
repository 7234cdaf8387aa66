import { describe, expect, it } from 'vitest';
import { encodeNodeCredential, parseBearer, parseNodeCredential, uuidFromBytes, uuidToBytes } from '../../src/api/index.js';
import { decodeBase64Url, encodeBase64Url } from '../../src/api/fields.js';

/** Other texts whose last character differs but which Node's lenient decoder reads as the same bytes. */
function alternateSpellings(text: string): string[] {
  const same = Buffer.from(text, 'base64url');
  return 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    .split('')
    .filter((c) => c !== text.at(-1))
    .map((c) => text.slice(0, -1) + c)
    .filter((t) => Buffer.from(t, 'base64url').equals(same));
}

const NODE = '0f8fad5b-d9cb-469f-a165-70867728950e';
const nsk = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 250) & 0xff);

describe('node credential', () => {
  it('round-trips node id, nsk and env', () => {
    const text = encodeNodeCredential(NODE, nsk, 'test');
    expect(text).toMatch(/^nsk_test_[A-Za-z0-9_-]{64}$/);
    const c = parseNodeCredential(text);
    expect(c?.env).toBe('test');
    expect(c?.nodeId).toBe(NODE);
    expect(c?.nsk).toEqual(nsk);
  });

  it('parses a body that itself contains underscores', () => {
    // Search for an nsk whose encoding contains '_' so the env/body split is exercised.
    for (let seed = 0; seed < 256; seed++) {
      const key = new Uint8Array(32).fill(seed);
      key[0] = 0xff;
      const text = encodeNodeCredential(NODE, key);
      if (text.slice(9).includes('_')) {
        expect(parseNodeCredential(text)?.nsk).toEqual(key);
        return;
      }
    }
    throw new Error('no seed produced an underscore');
  });

  it('matches the layout byte for byte', () => {
    const text = encodeNodeCredential(NODE, nsk);
    const raw = Buffer.from(text.slice('nsk_live_'.length), 'base64url');
    expect(raw.subarray(0, 16)).toEqual(Buffer.from(uuidToBytes(NODE)));
    expect(raw.subarray(16)).toEqual(Buffer.from(nsk));
    expect(uuidFromBytes(uuidToBytes(NODE.toUpperCase()))).toBe(NODE);
  });

  it('rejects malformed credentials', () => {
    const good = encodeNodeCredential(NODE, nsk);
    const body = good.slice('nsk_live_'.length);
    for (const bad of [
      '',
      'nsk_',
      'nsk_live_',
      `nsk__${body}`,
      `nsk_LIVE_${body}`,
      `nsk_live_${body}=`,
      `nsk_live_${body.slice(1)}`,
      `nsk_live_${body}A`,
      `nsk_live_${body.slice(0, 63)}+`,
      `nsk_live_${body.slice(0, 63)}/`,
      `xsk_live_${body}`,
      `nsk_waytoolongenvironment_${body}`,
      'nsk_live_' + 'A'.repeat(10_000),
    ]) {
      expect(parseNodeCredential(bad), bad.slice(0, 40)).toBeUndefined();
    }
    // 48 bytes fill 64 characters exactly: the body has no stray low bits, so no second spelling.
    expect(alternateSpellings(body)).toEqual([]);
  });

  it('refuses a second spelling of the same bytes (stray low bits in the last character)', () => {
    // 32 bytes -> 43 characters, 2 spare bits: three other last characters decode to the same bytes.
    const text = encodeBase64Url(nsk);
    expect(decodeBase64Url(text)).toEqual(nsk);
    const alts = alternateSpellings(text);
    expect(alts).toHaveLength(3);
    for (const alt of alts) expect(decodeBase64Url(alt), alt).toBeUndefined();
  });

  it('reads Authorization headers', () => {
    const good = encodeNodeCredential(NODE, nsk);
    expect(parseBearer(`Bearer ${good}`)?.nodeId).toBe(NODE);
    expect(parseBearer(`bearer ${good}`)?.nodeId).toBe(NODE);
    expect(parseBearer(undefined)).toBeUndefined();
    expect(parseBearer(good)).toBeUndefined();
    expect(parseBearer(`Basic ${good}`)).toBeUndefined();
    expect(parseBearer(`Bearer ${good} extra`)).toBeUndefined();
  });

  it('refuses misuse with typed errors', () => {
    expect(() => encodeNodeCredential('not-a-uuid', nsk)).toThrow(TypeError);
    expect(() => encodeNodeCredential(NODE, new Uint8Array(31))).toThrow(RangeError);
    expect(() => encodeNodeCredential(NODE, nsk, 'a_b')).toThrow(TypeError);
  });
});
