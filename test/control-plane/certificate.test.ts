import { X509Certificate, createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { createSelfSignedCertificate, loadOrCreateTlsIdentity } from '../../src/control-plane/certificate.js';
import { integer, oid, time } from '../../src/control-plane/der.js';

const dir = mkdtempSync(join(tmpdir(), 'cp-cert-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('DER encoder', () => {
  it('encodes integers, OIDs and times as X.690 says', () => {
    expect(Buffer.from(integer(Uint8Array.of(0, 0, 0x80))).toString('hex')).toBe('02020080');
    expect(Buffer.from(integer(Uint8Array.of(0))).toString('hex')).toBe('020100');
    expect(Buffer.from(oid('1.2.840.10045.4.3.2')).toString('hex')).toBe('06082a8648ce3d040302');
    expect(Buffer.from(time(Date.UTC(2025, 0, 2, 3, 4, 5))).toString()).toContain('250102030405Z');
    expect(Buffer.from(time(Date.UTC(2051, 0, 1))).toString()).toContain('20510101000000Z');
    expect(() => oid('1')).toThrow(RangeError);
  });
});

describe('self-signed certificate', () => {
  const id = createSelfSignedCertificate(['192.0.2.7', 'cp.example', '2001:db8::1', '0.0.0.0']);

  it('parses with X509Certificate and says what we built', () => {
    const x = new X509Certificate(id.certPem);
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.ca).toBe(false);
    expect(x.subjectAltName).toBe('IP Address:192.0.2.7, DNS:cp.example, IP Address:2001:DB8:0:0:0:0:0:1, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(x.checkHost('cp.example')).toBe('cp.example');
    expect(x.checkIP('192.0.2.7')).toBe('192.0.2.7');
    expect(new Date(x.validTo).getTime()).toBeGreaterThan(Date.now() + 9 * 365 * 86400_000);
    expect(id.fingerprint).toBe(createHash('sha256').update(x.raw).digest('hex'));
    expect(x.fingerprint256.replaceAll(':', '').toLowerCase()).toBe(id.fingerprint);
  });

  it('is accepted by node:tls and verifies when trusted as its own CA', async () => {
    const server = createServer({ cert: id.certPem, key: id.keyPem }, (s) => s.end('hello'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const got = await new Promise<string>((resolve, reject) => {
        const s: TLSSocket = connect({ host: '127.0.0.1', port, ca: id.certPem, servername: 'localhost' }, () => {
          let data = '';
          s.on('data', (d: Buffer) => (data += d.toString()));
          s.on('end', () => resolve(data));
        });
        s.on('error', reject);
      });
      expect(got).toBe('hello');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('is stored next to the database on first use and reused after', () => {
    const db = join(dir, 'cp.db');
    const first = loadOrCreateTlsIdentity(db, ['127.0.0.1']);
    expect(statSync(`${db}.key.pem`).mode & 0o777).toBe(0o600);
    const again = loadOrCreateTlsIdentity(db, ['127.0.0.1']);
    expect(again.fingerprint).toBe(first.fingerprint);
    writeFileSync(`${db}.key.pem`, createSelfSignedCertificate([]).keyPem);
    expect(() => loadOrCreateTlsIdentity(db, [])).toThrow(/not the key/);
    rmSync(`${db}.key.pem`);
    expect(() => loadOrCreateTlsIdentity(db, [])).toThrow(/only one/);
  });
});
