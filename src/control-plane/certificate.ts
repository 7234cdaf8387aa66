// The control plane's TLS identity: an ECDSA P-256 key and a self-signed X.509 v3 certificate
// (RFC 5280) built with der.ts, because node:crypto can sign but not make certificates. Made on
// first start and kept next to the database; agents pin its SHA-256 fingerprint.

import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { bitString, boolean, explicit, implicit, integer, octetString, oid, sequence, set, time, utf8String } from './der.js';
import { assertPrivateFile, writePrivateFileOnce } from './private-file.js';

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const COMMON_NAME = '2.5.4.3';
const SUBJECT_ALT_NAME = '2.5.29.17';
const BASIC_CONSTRAINTS = '2.5.29.19';
const EXT_KEY_USAGE = '2.5.29.37';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

/** How long a generated certificate is valid: 10 years. */
export const CERT_VALIDITY_MS = 10 * 365 * 24 * 3600_000;

/** A certificate and its key in PEM, plus the certificate's fingerprint. */
export interface TlsIdentity {
  readonly certPem: string;
  readonly keyPem: string;
  /** Lowercase hex SHA-256 of the DER certificate (what agents pin as api.tls_fingerprint). */
  readonly fingerprint: string;
}

function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

function ipBytes(host: string): Uint8Array | undefined {
  const family = isIP(host);
  if (family === 4) return Uint8Array.from(host.split('.').map(Number));
  if (family !== 6) return undefined;
  // Expand "::" and any embedded IPv4 into eight 16-bit groups.
  let text = host;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 !== null) {
    const b = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

/** Subject alternative names for `hosts`: IP addresses as iPAddress, the rest as dNSName. */
function subjectAltNames(hosts: readonly string[]): Uint8Array {
  const names = [...new Set(hosts.filter((h) => h !== '' && h !== '0.0.0.0' && h !== '::'))].map((h) => {
    const ip = ipBytes(h);
    return ip === undefined ? implicit(2, new TextEncoder().encode(h)) : implicit(7, ip);
  });
  return sequence(...names);
}

/**
 * A self-signed X.509 v3 certificate for `hosts` (the listen host; loopback names are always
 * added), ECDSA P-256 with SHA-256, valid from an hour before `nowMs` for 10 years, marked as a
 * non-CA TLS server certificate.
 */
export function createSelfSignedCertificate(hosts: readonly string[], nowMs = Date.now()): TlsIdentity {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const name = sequence(set(sequence(oid(COMMON_NAME), utf8String('plexd-userspace control plane'))));
  const algorithm = sequence(oid(ECDSA_WITH_SHA256));
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f | 0x01; // positive and non-zero (RFC 5280 4.1.2.2)
  const extensions = sequence(
    sequence(oid(SUBJECT_ALT_NAME), octetString(subjectAltNames([...hosts, 'localhost', '127.0.0.1', '::1']))),
    sequence(oid(BASIC_CONSTRAINTS), boolean(true), octetString(sequence())),
    sequence(oid(EXT_KEY_USAGE), octetString(sequence(oid(SERVER_AUTH)))),
  );
  const tbs = sequence(
    explicit(0, integer(Uint8Array.of(2))),
    integer(serial),
    algorithm,
    name,
    sequence(time(nowMs - 3600_000), time(nowMs + CERT_VALIDITY_MS)),
    name,
    new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })),
    explicit(3, extensions),
  );
  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' });
  const der = sequence(tbs, algorithm, bitString(new Uint8Array(signature)));
  return {
    certPem: pem('CERTIFICATE', der),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    fingerprint: createHash('sha256').update(der).digest('hex'),
  };
}

/** Lowercase hex SHA-256 of a PEM certificate's DER. */
export function pemFingerprint(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex');
}

/**
 * Loads `${dbFile}.cert.pem` / `${dbFile}.key.pem`, or creates them (key file mode 0600, atomic
 * writes) when absent. Throws when only one exists or they do not belong together, and
 * ControlPlaneFileError when the key file is readable by group or others, unless `allowInsecure`.
 */
export function loadOrCreateTlsIdentity(dbFile: string, hosts: readonly string[], allowInsecure = false): TlsIdentity {
  const certFile = `${dbFile}.cert.pem`;
  const keyFile = `${dbFile}.key.pem`;
  const haveCert = existsSync(certFile);
  if (haveCert !== existsSync(keyFile)) throw new Error(`found only one of ${certFile} and ${keyFile}; remove it to generate a new pair`);
  if (haveCert) {
    assertPrivateFile(keyFile, 'TLS key', allowInsecure);
    const certPem = readFileSync(certFile, 'utf8');
    const keyPem = readFileSync(keyFile, 'utf8');
    if (!new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem))) throw new Error(`${keyFile} is not the key of ${certFile}`);
    return { certPem, keyPem, fingerprint: pemFingerprint(certPem) };
  }
  const id = createSelfSignedCertificate(hosts);
  // The key through an exclusively created 0600 temp file of a fresh name: a leftover or planted
  // `.tmp` (a symlink, or a 0644 file whose mode writeFileSync would keep) is never written to.
  if (writePrivateFileOnce(keyFile, id.keyPem) !== id.keyPem) {
    throw new Error(`${keyFile} was created by another process meanwhile; start again to load it`);
  }
  const certTmp = `${certFile}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(certTmp, id.certPem, { mode: 0o644, flag: 'wx' });
  renameSync(certTmp, certFile);
  return id;
}

