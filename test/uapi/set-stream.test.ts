// A `set=1` request is parsed line by line as it arrives into a packed transaction (issue 11
// item 10): any split of the bytes gives what the naive whole-text twin gives, a request over
// the cap is refused with wireguard-go's read-error errno, and a large pending set holds about
// its own size in memory, not ~10x (one object and Uint8Array per allowed_ip line did).

import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { UAPI_ERRNO } from '../../src/uapi/errors.js';
import { DEFAULT_MAX_REQUEST_BYTES, UapiRequestParser, type UapiRequest } from '../../src/uapi/protocol.js';
import { retainedBytes } from '../helpers/heap.js';
import { seededInts } from '../helpers/rng.js';
import { naiveSet, normalTx, randomSetBody, type NormalTx } from './naive-set.js';

/** The one transaction `chunks` frame, in normal form (fails on anything but one set). */
function parseChunks(chunks: Uint8Array[]): NormalTx {
  const p = new UapiRequestParser();
  const out: UapiRequest[] = [];
  for (const c of chunks) out.push(...p.push(c));
  expect(out.map((e) => e.kind)).toEqual(['set']);
  return normalTx((out[0] as Extract<UapiRequest, { kind: 'set' }>).tx);
}

describe('streamed set=1 against the naive twin', () => {
  it('200 random valid requests parse as the twin says, whole and in random pieces', () => {
    const int = seededInts(11);
    for (let round = 0; round < 200; round++) {
      const body = randomSetBody(int);
      const bytes = Buffer.from(`set=1\n${body}`, 'latin1');
      const expected = naiveSet(body);
      expect(parseChunks([bytes]), body).toEqual(expected);
      const pieces: Uint8Array[] = [];
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + int(40);
        pieces.push(bytes.subarray(at, at + n));
        at += n;
      }
      expect(parseChunks(pieces), body).toEqual(expected);
    }
  });

  it('a request split at every byte boundary parses the same as whole', () => {
    const int = seededInts(12);
    let body = '';
    while (!body.includes('public_key') || !body.includes('allowed_ip') || !body.includes('endpoint')) body = randomSetBody(int, 60);
    const bytes = Buffer.from(`set=1\n${body}`, 'latin1');
    const whole = naiveSet(body);
    for (let k = 0; k <= bytes.length; k++) {
      expect(parseChunks([bytes.subarray(0, k), bytes.subarray(k)]), `split at ${k}`).toEqual(whole);
    }
  });
});

describe('the set size cap', () => {
  it('is 8 MiB by default, enough for 130,000 of the longest allowed_ip lines wg writes', () => {
    const longest = `allowed_ip=${'ffff:'.repeat(7)}ffff/128\n`;
    expect(longest.length).toBe(55);
    expect(DEFAULT_MAX_REQUEST_BYTES).toBe(8 * 1024 * 1024);
    expect(130_000 * longest.length).toBeLessThan(DEFAULT_MAX_REQUEST_BYTES);
  });

  it('refuses a set over the cap with errno -5 (EIO, wireguard-go\'s read error) and closes', () => {
    const p = new UapiRequestParser({ maxRequestBytes: 4096 });
    const line = Buffer.from('allowed_ip=10.0.0.0/8\n');
    const out: UapiRequest[] = [...p.push(Buffer.from(`set=1\npublic_key=${'11'.repeat(32)}\n`))];
    for (let i = 0; i < 400 && !p.closed; i++) out.push(...p.push(line));
    expect(out).toMatchObject([{ kind: 'error', fatal: true, error: { errno: UAPI_ERRNO.IO } }]);
    expect(p.closed).toBe(true);
    expect(p.push(Buffer.from('\nget=1\n\n'))).toEqual([]);
  });
});

describe('memory of a pending set', () => {
  /** Bytes still held (heap + array buffers) by parsers that have taken `body` but not its end. */
  function retainedPerParser(body: Buffer, parsers = 2): number {
    const before = retainedBytes();
    const held: UapiRequestParser[] = [];
    for (let k = 0; k < parsers; k++) {
      const p = new UapiRequestParser();
      for (let i = 0; i < body.length; i += 65536) expect(p.push(body.subarray(i, i + 65536))).toEqual([]);
      held.push(p);
    }
    const after = retainedBytes();
    expect(held).toHaveLength(parsers);
    return (after - before) / parsers;
  }

  it('holds less than the request text for 290,000 allowed IPs (~7.5 MB; the old parser held ~10x)', () => {
    const lines = ['set=1', `public_key=${'22'.repeat(32)}`];
    for (let i = 0; i < 290_000; i++) lines.push(`allowed_ip=10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}/32`);
    const body = Buffer.from(`${lines.join('\n')}\n`);
    expect(body.length).toBeLessThan(DEFAULT_MAX_REQUEST_BYTES);
    expect(retainedPerParser(body)).toBeLessThan(body.length);
  });

  it('holds about the request text for a set of 100,000 bare peer sections (the old parser held ~4x)', () => {
    const lines = ['set=1'];
    for (let i = 0; i < 100_000; i++) lines.push(`public_key=${i.toString(16).padStart(64, '0')}`);
    const body = Buffer.from(`${lines.join('\n')}\n`);
    expect(retainedPerParser(body)).toBeLessThan(1.5 * body.length);
  });
});
