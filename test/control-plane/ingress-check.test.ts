// The pure checks behind `control-plane ingress add` (src/control-plane/ingress.ts): hostnames at
// and past their limits, targets, and certificates for a name (SANs, wildcards, expiry).

import { describe, expect, it } from 'vitest';
import { createSelfSignedCertificate } from '../../src/control-plane/certificate.js';
import { checkCertificate, checkHostname, MAX_PEM_BYTES, parseTarget } from '../../src/control-plane/ingress.js';

describe('checkHostname', () => {
  it('accepts names at the limits and returns them lowercase', () => {
    const label63 = 'a'.repeat(63);
    const name253 = `${[label63, label63, label63].join('.')}.${'b'.repeat(61)}`;
    expect(name253).toHaveLength(253);
    expect(checkHostname(name253)).toBe(name253);
    expect(checkHostname('App.Example.COM')).toBe('app.example.com');
    expect(checkHostname('xn--bcher-kva.example')).toBe('xn--bcher-kva.example');
    expect(checkHostname('a-b.c0')).toBe('a-b.c0');
    expect(checkHostname('1.example.com')).toBe('1.example.com');
  });

  it.each([
    ['', /expected 1\.\.253 characters, got 0/],
    [`${'a.'.repeat(126)}bc`, /expected 1\.\.253 characters, got 254/],
    [`${'a'.repeat(64)}.com`, /labels of 1\.\.63/],
    ['-a.com', /labels/],
    ['a-.com', /labels/],
    ['a..com', /labels/],
    ['a.com.', /labels/],
    ['bücher.example', /labels.*IDNs as xn--/],
    ['a b.com', /labels/],
    ['*.example.com', /wildcards are not supported/],
    ['com', /fully qualified/],
    ['192.168.0.1', /not an address/],
  ])('refuses %j', (name, message) => {
    expect(() => checkHostname(name)).toThrow(message);
  });

  it('does not echo a huge name whole', () => {
    let message = '';
    try {
      checkHostname(`${'x'.repeat(200)}_.com`);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/labels/);
    expect(message.length).toBeLessThan(300);
  });
});

describe('parseTarget', () => {
  it('reads IPv4:PORT in canonical form', () => {
    expect(parseTarget('10.100.0.2:8080')).toEqual({ ip: 0x0a640002, port: 8080, addr: '10.100.0.2:8080' });
    expect(parseTarget('10.100.0.02:1').addr).toBe('10.100.0.2:1');
    expect(parseTarget('10.100.0.2:65535').port).toBe(65535);
  });
  it.each(['10.100.0.2', '10.100.0.2:0', '10.100.0.2:65536', '10.100.0.256:80', '[::1]:80', 'app.test:80', '10.100.0.2:80 ', ' 10.100.0.2:80'])('refuses %j', (t) => {
    expect(() => parseTarget(t)).toThrow(/--target: expected MESH_IP:PORT/);
  });
});

describe('checkCertificate', () => {
  const now = Date.now();
  it('accepts a certificate whose SANs cover the name, wildcards included', () => {
    const id = createSelfSignedCertificate(['*.example.com']);
    expect(checkCertificate(id.certPem, id.keyPem, 'app.example.com', now)).toMatchObject({ warnings: [], notAfter: expect.any(Number) });
    expect(() => checkCertificate(id.certPem, id.keyPem, 'a.b.example.com', now)).toThrow(/does not cover a\.b\.example\.com/);
  });
  it('warns about an expired or not yet valid certificate', () => {
    const old = createSelfSignedCertificate(['app.test'], now - 11 * 365 * 24 * 3600_000);
    expect(checkCertificate(old.certPem, old.keyPem, 'app.test', now).warnings).toEqual([expect.stringMatching(/expired/)]);
    const later = createSelfSignedCertificate(['app.test'], now + 24 * 3600_000);
    expect(checkCertificate(later.certPem, later.keyPem, 'app.test', now).warnings).toEqual([expect.stringMatching(/not valid before/)]);
  });
  it('refuses oversized PEM before parsing it', () => {
    const id = createSelfSignedCertificate(['app.test']);
    expect(() => checkCertificate(id.certPem + ' '.repeat(MAX_PEM_BYTES), id.keyPem, 'app.test', now)).toThrow(/--cert: expected at most 65536 bytes/);
    expect(() => checkCertificate(id.certPem, id.keyPem + '\n'.repeat(MAX_PEM_BYTES), 'app.test', now)).toThrow(/--key: expected at most 65536 bytes/);
  });
  it('refuses a key in the certificate slot and a certificate in the key slot', () => {
    const id = createSelfSignedCertificate(['app.test']);
    expect(() => checkCertificate(id.keyPem, id.keyPem, 'app.test', now)).toThrow(/--cert: not a PEM certificate/);
    expect(() => checkCertificate(id.certPem, id.certPem, 'app.test', now)).toThrow(/--key: not an unencrypted PEM private key/);
  });
});
