// The ingress's ClientHello reader (src/bridge/ingress/client-hello.ts) on real ClientHellos
// captured from node:tls, their prefixes, record fragmentations, and seeded random damage.

import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { HELLO_REFUSALS, MAX_CLIENT_HELLO, parseClientHello } from '../../../src/bridge/ingress/client-hello.js';
import { fuzzIterations, fuzzSeed } from '../../helpers/fuzz.js';
import { prng } from '../../helpers/prng.js';

/** The first flight node:tls sends for `servername` (undefined: none) and `alpn`. */
async function captureHello(servername: string | undefined, alpn?: string[]): Promise<Uint8Array> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const got = new Promise<Uint8Array>((resolve) => {
    server.once('connection', (s) => {
      let acc = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        acc = Buffer.concat([acc, d]);
        if (acc.length >= 5 && acc.length >= 5 + acc.readUInt16BE(3)) {
          resolve(new Uint8Array(acc));
          s.destroy();
        }
      });
    });
  });
  const c = tlsConnect({ host: '127.0.0.1', port, ...(servername !== undefined ? { servername } : {}), ...(alpn ? { ALPNProtocols: alpn } : {}), rejectUnauthorized: false });
  c.on('error', () => undefined);
  const hello = await got;
  c.destroy();
  server.close();
  return hello;
}

/** Re-frames a single-record ClientHello into records of at most `size` handshake bytes. */
function fragment(hello: Uint8Array, size: number): Uint8Array {
  const body = hello.subarray(5);
  const out: number[] = [];
  for (let o = 0; o < body.length; o += size) {
    const part = body.subarray(o, Math.min(body.length, o + size));
    out.push(22, 3, 1, part.length >> 8, part.length & 0xff, ...part);
  }
  return new Uint8Array(out);
}

describe('parseClientHello', () => {
  it('reads the SNI and ALPN of a real ClientHello, lower-cased', async () => {
    const hello = await captureHello('App.Example.TEST', ['h2', 'http/1.1']);
    expect(parseClientHello(hello)).toEqual({ kind: 'hello', sni: 'app.example.test', alpn: ['h2', 'http/1.1'] });
  });

  it('answers need-more for every proper prefix, never a refusal', async () => {
    const hello = await captureHello('b.test');
    for (let n = 0; n < hello.length; n++) expect(parseClientHello(hello.subarray(0, n)).kind, `prefix ${n}`).toBe('need-more');
  });

  it('reassembles a ClientHello fragmented across records', async () => {
    const hello = await captureHello('frag.test', ['acme-tls/1']);
    for (const size of [64, 200, 1000]) expect(parseClientHello(fragment(hello, size))).toEqual({ kind: 'hello', sni: 'frag.test', alpn: ['acme-tls/1'] });
    // 1-byte fragments: more records than any real client uses.
    expect(parseClientHello(fragment(hello, 1))).toEqual({ kind: 'refuse', reason: 'oversized' });
  });

  it('refuses a hello without SNI, plain HTTP, and other handshake messages', async () => {
    expect(parseClientHello(await captureHello(undefined))).toEqual({ kind: 'refuse', reason: 'no_sni' });
    expect(parseClientHello(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: a\r\n\r\n'))).toEqual({ kind: 'refuse', reason: 'not_tls' });
    expect(parseClientHello(Uint8Array.of(22, 3, 3, 0, 4, 2, 0, 0, 0))).toEqual({ kind: 'refuse', reason: 'not_client_hello' });
  });

  it('refuses oversized records and handshake lengths before reading them', () => {
    expect(parseClientHello(Uint8Array.of(22, 3, 1, 0x40, 0x01))).toEqual({ kind: 'refuse', reason: 'oversized' });
    const big = MAX_CLIENT_HELLO + 1 - 4;
    expect(parseClientHello(Uint8Array.of(22, 3, 1, 0x40, 0x00, 1, big >> 16, (big >> 8) & 0xff, big & 0xff))).toEqual({ kind: 'refuse', reason: 'oversized' });
  });

  it('refuses an SNI with bytes a host name cannot have', async () => {
    const hello = await captureHello('abc.test');
    const text = Buffer.from(hello);
    const at = text.indexOf('abc.test');
    text[at] = 0x00;
    expect(parseClientHello(new Uint8Array(text))).toEqual({ kind: 'refuse', reason: 'bad_sni' });
  });

  it('never throws on random damage, truncation or garbage, and answers from the closed list', async () => {
    const seed = fuzzSeed(0x1e1105);
    const rnd = prng(seed);
    const hellos = [await captureHello('app.test', ['http/1.1']), await captureHello('x.example.test')];
    const iterations = fuzzIterations(5_000);
    const started = performance.now();
    for (let i = 0; i < iterations; i++) {
      const base = hellos[i % hellos.length]!;
      let input: Uint8Array;
      const pick = rnd();
      if (pick < 0.6) {
        input = new Uint8Array(base);
        const flips = 1 + Math.floor(rnd() * 4);
        for (let f = 0; f < flips; f++) input[Math.floor(rnd() * input.length)] = Math.floor(rnd() * 256);
        if (rnd() < 0.3) input = input.subarray(0, Math.floor(rnd() * input.length));
      } else if (pick < 0.8) {
        input = fragment(base, 1 + Math.floor(rnd() * 600)).subarray(0, Math.floor(rnd() * (base.length + 40)));
      } else {
        input = new Uint8Array(Math.floor(rnd() * 300));
        for (let j = 0; j < input.length; j++) input[j] = Math.floor(rnd() * 256);
        if (input.length > 1 && rnd() < 0.5) input.set([22, 3], 0);
      }
      let r;
      try {
        r = parseClientHello(input);
      } catch (err) {
        throw new Error(`seed ${seed} iteration ${i}: threw ${(err as Error).message}`);
      }
      if (r.kind === 'refuse') expect(HELLO_REFUSALS).toContain(r.reason);
      if (r.kind === 'hello') expect(r.sni).toMatch(/^[a-z0-9_.-]+$/);
    }
    // Linear work per input: 5,000 inputs well under the test's 5 s budget.
    expect(performance.now() - started).toBeLessThan(5000);
  });
});
