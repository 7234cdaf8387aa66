// The ingress engine (src/bridge/ingress/ingress.ts) on loopback: SNI routing of passthrough and
// terminate rules, refusals, live reconcile, the HTTP port (redirects, HTTP-01), counters.

import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import type { IngressRule } from '../../../src/api/types.js';
import { Ingress, type CertificateSource } from '../../../src/bridge/ingress/ingress.js';
import { createSelfSignedCertificate } from '../../../src/control-plane/certificate.js';
import { silentLogger } from '../../../src/log/logger.js';

const closers: Array<() => void> = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => server.close());
  return (server.address() as AddressInfo).port;
}

/** A free loopback port (bound, then released). */
async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const p = (s.address() as AddressInfo).port;
  s.close();
  return p;
}

/** A plain TCP "app" answering each line with `name:line`. */
async function app(name: string): Promise<number> {
  return listen(createServer((s) => s.on('data', (d) => s.write(`${name}:${d.toString()}`))));
}

/** Connects with TLS for `servername`, sends `msg`, resolves the answer and the peer certificate's fingerprint. */
async function ask(port: number, servername: string, msg: string): Promise<{ answer: string; fingerprint: string }> {
  const c: TLSSocket = tlsConnect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
  closers.push(() => c.destroy());
  await once(c, 'secureConnect');
  const fingerprint = c.getPeerCertificate().fingerprint256.replace(/:/g, '').toLowerCase();
  c.write(msg);
  const [d] = (await once(c, 'data')) as [Buffer];
  return { answer: d.toString(), fingerprint };
}

/** Resolves 'closed' when the server closes the connection before a TLS handshake completes. */
async function refusedTls(port: number, servername: string | undefined): Promise<string> {
  const c = tlsConnect({ host: '127.0.0.1', port, ...(servername ? { servername } : {}), rejectUnauthorized: false });
  closers.push(() => c.destroy());
  return new Promise((resolve) => {
    c.once('secureConnect', () => resolve('handshake'));
    c.once('error', () => resolve('closed'));
    c.once('close', () => resolve('closed'));
  });
}

const rule = (over: Partial<IngressRule> & Pick<IngressRule, 'rule_id' | 'hostname' | 'listen_port' | 'target_addr' | 'mode'>): IngressRule => over;

describe('Ingress', () => {
  it('routes by SNI on one port: passthrough keeps the target certificate, terminate uses the rule certificate', async () => {
    const bCert = createSelfSignedCertificate(['b.test']);
    const bTls = createTlsServer({ cert: bCert.certPem, key: bCert.keyPem }, (s) => s.on('data', (d) => s.write(`B:${d.toString()}`)));
    const bPort = await listen(bTls);
    const cPort = await app('C');
    const cCert = createSelfSignedCertificate(['c.test']);
    const port = await freePort();
    const ing = new Ingress({ log: silentLogger, address: '127.0.0.1', httpPort: null });
    closers.push(() => ing.close());
    const refused = await ing.reconcile([
      rule({ rule_id: 'b', hostname: 'b.test', listen_port: port, target_addr: `127.0.0.1:${bPort}`, mode: 'passthrough' }),
      rule({ rule_id: 'c', hostname: 'C.test', listen_port: port, target_addr: `127.0.0.1:${cPort}`, mode: 'terminate', cert_pem: cCert.certPem, key_pem: cCert.keyPem }),
    ]);
    expect(refused.size).toBe(0);
    expect(await ask(port, 'b.test', 'hi')).toEqual({ answer: 'B:hi', fingerprint: bCert.fingerprint });
    expect(await ask(port, 'c.test', 'yo')).toEqual({ answer: 'C:yo', fingerprint: cCert.fingerprint });
    const snap = ing.snapshot() as { rules: Array<Record<string, unknown>> };
    const c = snap.rules.find((r) => r.rule_id === 'c')!;
    expect(c).toMatchObject({ connections: 1, bytes_in: 2, bytes_out: 4, state: 'active' });
    expect(typeof (c.certificate as { not_after: string }).not_after).toBe('string');
  });

  it('closes unknown SNI, no SNI and garbage, counted, while a rule on the same port keeps working', async () => {
    const aPort = await app('A');
    const cert = createSelfSignedCertificate(['a.test']);
    const port = await freePort();
    const ing = new Ingress({ log: silentLogger, address: '127.0.0.1', httpPort: null });
    closers.push(() => ing.close());
    await ing.reconcile([rule({ rule_id: 'a', hostname: 'a.test', listen_port: port, target_addr: `127.0.0.1:${aPort}`, mode: 'terminate', cert_pem: cert.certPem, key_pem: cert.keyPem })]);
    const c = tlsConnect({ host: '127.0.0.1', port, servername: 'a.test', rejectUnauthorized: false });
    closers.push(() => c.destroy());
    await once(c, 'secureConnect');
    expect(await refusedTls(port, 'other.test')).toBe('closed');
    expect(await refusedTls(port, undefined)).toBe('closed');
    const raw: Socket = (await import('node:net')).connect(port, '127.0.0.1');
    raw.write('GET / HTTP/1.1\r\n\r\n');
    await once(raw, 'close');
    expect(ing.refused).toMatchObject({ unknown_sni: 1, no_sni: 1, not_tls: 1 });
    c.write('still');
    const [d] = (await once(c, 'data')) as [Buffer];
    expect(d.toString()).toBe('A:still');
  });

  it('reconciles live: adding a rule keeps other connections; a removed rule is refused at once and its connections closed', async () => {
    const aPort = await app('A');
    const bPort = await app('B');
    const cert = createSelfSignedCertificate(['a.test', 'b.test']);
    const port = await freePort();
    const ing = new Ingress({ log: silentLogger, address: '127.0.0.1', httpPort: null });
    closers.push(() => ing.close());
    const a = rule({ rule_id: 'a', hostname: 'a.test', listen_port: port, target_addr: `127.0.0.1:${aPort}`, mode: 'terminate', cert_pem: cert.certPem, key_pem: cert.keyPem });
    const b = rule({ rule_id: 'b', hostname: 'b.test', listen_port: port, target_addr: `127.0.0.1:${bPort}`, mode: 'terminate', cert_pem: cert.certPem, key_pem: cert.keyPem });
    await ing.reconcile([a]);
    const ca = tlsConnect({ host: '127.0.0.1', port, servername: 'a.test', rejectUnauthorized: false });
    closers.push(() => ca.destroy());
    await once(ca, 'secureConnect');
    expect(await refusedTls(port, 'b.test')).toBe('closed');
    await ing.reconcile([a, b]);
    expect((await ask(port, 'b.test', '1')).answer).toBe('B:1');
    const cb = tlsConnect({ host: '127.0.0.1', port, servername: 'b.test', rejectUnauthorized: false });
    closers.push(() => cb.destroy());
    await once(cb, 'secureConnect');
    await ing.reconcile([a]);
    await once(cb, 'close');
    expect(await refusedTls(port, 'b.test')).toBe('closed');
    ca.write('x');
    const [d] = (await once(ca, 'data')) as [Buffer];
    expect(d.toString()).toBe('A:x');
    // No rule left on the port: the listener closes.
    await ing.reconcile([]);
    expect(ing.ports()).toEqual([]);
  });

  it('refuses bad rules with a reason and keeps the good ones', async () => {
    const port = await freePort();
    const ing = new Ingress({ log: silentLogger, address: '127.0.0.1', httpPort: null, maxRules: 2 });
    closers.push(() => ing.close());
    const base = { listen_port: port, target_addr: '127.0.0.1:1', mode: 'passthrough' as const };
    const refused = await ing.reconcile([
      rule({ ...base, rule_id: 'ok', hostname: 'ok.test' }),
      rule({ ...base, rule_id: 'dup', hostname: 'OK.test' }),
      rule({ ...base, rule_id: 'bad', hostname: 'bad host' }),
      rule({ ...base, rule_id: 'ip', hostname: '10.0.0.1' }),
      rule({ ...base, rule_id: 'noCert', hostname: 't.test', mode: 'terminate' }),
      rule({ ...base, rule_id: 'badCert', hostname: 'u.test', mode: 'terminate', cert_pem: 'x', key_pem: 'y' }),
      rule({ ...base, rule_id: 'acme', hostname: 'v.test', mode: 'acme' }),
      rule({ ...base, rule_id: 'two', hostname: 'two.test' }),
      rule({ ...base, rule_id: 'three', hostname: 'three.test' }),
    ]);
    expect([...refused.keys()]).toEqual(['dup', 'bad', 'ip', 'noCert', 'badCert', 'acme', 'three']);
    expect(refused.get('dup')).toMatch(/already has a rule/);
    expect(refused.get('acme')).toMatch(/acme_enabled/);
    expect(refused.get('three')).toMatch(/max_ingress_rules \(2\)/);
  });

  it('counts a target that refuses the dial as a dial failure and closes the client', async () => {
    const dead = await freePort();
    const port = await freePort();
    const ing = new Ingress({ log: silentLogger, address: '127.0.0.1', httpPort: null });
    closers.push(() => ing.close());
    await ing.reconcile([rule({ rule_id: 'p', hostname: 'p.test', listen_port: port, target_addr: `127.0.0.1:${dead}`, mode: 'passthrough' })]);
    expect(await refusedTls(port, 'p.test')).toBe('closed');
    const snap = ing.snapshot() as { rules: Array<Record<string, unknown>> };
    expect(snap.rules[0]).toMatchObject({ connections: 1, dial_failures: 1, active: 0 });
  });

  it('closes a client that never finishes its ClientHello after the hello timeout', async () => {
    const port = await freePort();
    const ing = new Ingress({ log: silentLogger, address: '127.0.0.1', httpPort: null, helloTimeoutMs: 200 });
    closers.push(() => ing.close());
    await ing.reconcile([rule({ rule_id: 'p', hostname: 'p.test', listen_port: port, target_addr: '127.0.0.1:1', mode: 'passthrough' })]);
    const raw = (await import('node:net')).connect(port, '127.0.0.1');
    raw.write(Uint8Array.of(22, 3, 1, 0, 200));
    await once(raw, 'close');
    expect(ing.refused.hello_timeout).toBe(1);
  });

  it('answers HTTP-01 and redirects plain HTTP for hostnames with a rule', async () => {
    const port = await freePort();
    const wanted: string[][] = [];
    const certs: CertificateSource = {
      contextFor: () => undefined,
      alpnChallengeFor: () => undefined,
      httpChallenge: (t) => (t === 'tok' ? 'tok.thumb' : undefined),
      want: (h) => void wanted.push([...h]),
      describe: () => ({ state: 'pending' }),
    };
    const ing = new Ingress({ log: silentLogger, address: '127.0.0.1', httpPort: 0, certificates: certs });
    closers.push(() => ing.close());
    await ing.reconcile([rule({ rule_id: 'a', hostname: 'app.test', listen_port: port, target_addr: '127.0.0.1:1', mode: 'acme' })]);
    expect(wanted.at(-1)).toEqual(['app.test']);
    const get = (path: string, host: string) =>
      new Promise<{ status: number; location: string | undefined; body: string }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: ing.httpPort, path, headers: { host } }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, body }));
        });
        req.on('error', reject);
        req.end();
      });
    expect(await get('/.well-known/acme-challenge/tok', 'app.test')).toMatchObject({ status: 200, body: 'tok.thumb' });
    expect(await get('/.well-known/acme-challenge/nope', 'app.test')).toMatchObject({ status: 404 });
    expect(await get('/x?y=1', 'APP.test:80')).toMatchObject({ status: 301, location: `https://app.test:${port}/x?y=1` });
    expect(await get('/', 'other.test')).toMatchObject({ status: 404 });
    // A pending certificate: the TLS connection is refused (counted), not served with a wrong one.
    expect(await refusedTls(port, 'app.test')).toBe('closed');
    expect(ing.refused.no_certificate).toBe(1);
  });
});

describe('Ingress handshake deadline', () => {
  it('closes a terminate client that sends its ClientHello and then stalls the handshake', async () => {
    const cert = createSelfSignedCertificate(['s.test']);
    const port = await freePort();
    const ing = new Ingress({ log: silentLogger, address: '127.0.0.1', httpPort: null, helloTimeoutMs: 300 });
    closers.push(() => ing.close());
    await ing.reconcile([rule({ rule_id: 's', hostname: 's.test', listen_port: port, target_addr: '127.0.0.1:1', mode: 'terminate', cert_pem: cert.certPem, key_pem: cert.keyPem })]);
    // A real ClientHello from node:tls, forwarded once; the rest of the handshake never comes.
    const hello = await new Promise<Buffer>((resolve) => {
      const s = createServer((c) => c.once('data', (d: Buffer) => (resolve(d), c.destroy())));
      s.listen(0, '127.0.0.1', () => {
        const t = tlsConnect({ host: '127.0.0.1', port: (s.address() as AddressInfo).port, servername: 's.test', rejectUnauthorized: false });
        t.on('error', () => undefined);
        closers.push(() => (t.destroy(), s.close()));
      });
    });
    const raw = (await import('node:net')).connect(port, '127.0.0.1');
    raw.on('error', () => undefined);
    raw.write(hello);
    raw.resume(); // read the ServerHello, so the close is seen
    const t0 = performance.now();
    await once(raw, 'close');
    expect(performance.now() - t0).toBeLessThan(3000);
    expect((ing.snapshot() as { rules: Array<Record<string, unknown>> }).rules[0]).toMatchObject({ tls_failures: 1 });
  }, 10_000);

  it('close() closes connections still sending their ClientHello, not only routed ones', async () => {
    const port = await freePort();
    const ing = new Ingress({ log: silentLogger, address: '127.0.0.1', httpPort: null, helloTimeoutMs: 60_000 });
    closers.push(() => ing.close());
    await ing.reconcile([rule({ rule_id: 'p', hostname: 'p.test', listen_port: port, target_addr: '127.0.0.1:1', mode: 'passthrough' })]);
    const raw = (await import('node:net')).connect(port, '127.0.0.1');
    closers.push(() => raw.destroy());
    raw.on('error', () => undefined);
    raw.write(Uint8Array.of(22, 3, 1, 0, 200));
    await new Promise((r) => setTimeout(r, 100));
    expect(ing.snapshot()).toMatchObject({ pending_hellos: 1 });
    ing.close();
    const t0 = performance.now();
    await once(raw, 'close');
    expect(performance.now() - t0).toBeLessThan(2000);
  }, 10_000);

  it('closes a TLS-ALPN-01 validation connection that sends its ClientHello and then stalls', async () => {
    const cert = createSelfSignedCertificate(['v.test']);
    const { createSecureContext } = await import('node:tls');
    const ctx = createSecureContext({ cert: cert.certPem, key: cert.keyPem });
    const certs: CertificateSource = { contextFor: () => undefined, alpnChallengeFor: () => ctx, httpChallenge: () => undefined, want: () => undefined, describe: () => null };
    const port = await freePort();
    const ing = new Ingress({ log: silentLogger, address: '127.0.0.1', httpPort: null, helloTimeoutMs: 300, certificates: certs });
    closers.push(() => ing.close());
    await ing.reconcile([rule({ rule_id: 'v', hostname: 'v.test', listen_port: port, target_addr: '127.0.0.1:1', mode: 'acme' })]);
    const hello = await new Promise<Buffer>((resolve) => {
      const s = createServer((c) => c.once('data', (d: Buffer) => (resolve(d), c.destroy())));
      s.listen(0, '127.0.0.1', () => {
        const t = tlsConnect({ host: '127.0.0.1', port: (s.address() as AddressInfo).port, servername: 'v.test', ALPNProtocols: ['acme-tls/1'], rejectUnauthorized: false });
        t.on('error', () => undefined);
        closers.push(() => (t.destroy(), s.close()));
      });
    });
    const raw = (await import('node:net')).connect(port, '127.0.0.1');
    closers.push(() => raw.destroy());
    raw.on('error', () => undefined);
    raw.write(hello);
    raw.resume();
    const t0 = performance.now();
    await once(raw, 'close');
    expect(performance.now() - t0).toBeLessThan(3000);
  }, 10_000);

  it('close() during a reconcile that is still opening its listeners: the reconcile ends, no port stays listening', async () => {
    const port = await freePort();
    const ing = new Ingress({ log: silentLogger, address: '127.0.0.1', httpPort: 0 });
    const pending = ing.reconcile([rule({ rule_id: 'p', hostname: 'p.test', listen_port: port, target_addr: '127.0.0.1:1', mode: 'passthrough' })]);
    ing.close();
    await pending;
    await new Promise((r) => setTimeout(r, 50));
    expect(ing.ports()).toEqual([]);
    expect(ing.httpPort).toBeUndefined();
    const probe = createServer();
    closers.push(() => probe.close());
    const bound = await new Promise<string>((resolve) => {
      probe.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      probe.listen(port, '127.0.0.1', () => resolve('free'));
    });
    expect(bound).toBe('free');
  }, 5_000);
});
