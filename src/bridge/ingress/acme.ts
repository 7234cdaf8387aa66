// ACME certificates for the ingress's acme rules (RFC 8555, through the acme-client package):
// HTTP-01 (RFC 8555 8.3) answered on the ingress's HTTP port and TLS-ALPN-01 (RFC 8737) on the
// rule's TLS port. The account key and each certificate with its key live in acme_cache_dir
// (directory 0700, files 0600, atomic writes), so a restart re-uses them with no new order. A
// certificate is renewed once a third of its lifetime is left; a failed issuance is retried with
// backoff (1 min doubling to 6 h) and its error shown in the status. acme_allowed_hosts (exact
// names or "*.suffix") restricts which hostnames may be issued; empty: any hostname of an acme rule.

import { Agent as HttpsAgent } from 'node:https';
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../io/atomic-file.js';
import { createSecureContext, type SecureContext } from 'node:tls';
import * as acme from 'acme-client';
import type { Logger } from '../../log/logger.js';
import type { CertificateSource } from './ingress.js';

/** First retry after a failed issuance (ms); doubles per failure in a row. */
export const ACME_RETRY_MIN_MS = 60_000;
/** Longest wait between issuance attempts (ms). */
export const ACME_RETRY_MAX_MS = 6 * 3600_000;
/** How often certificates are checked for renewal (ms). */
export const ACME_CHECK_MS = 3600_000;

/** Options of {@link AcmeManager}. */
export interface AcmeOptions {
  /** bridge.acme_directory_url. */
  readonly directoryUrl: string;
  /** bridge.acme_email (account contact), optional. */
  readonly email?: string;
  /** bridge.acme_cache_dir. */
  readonly cacheDir: string;
  /** bridge.acme_allowed_hosts: exact names or "*.suffix"; empty: all. */
  readonly allowedHosts: readonly string[];
  /** PEM roots trusted for the ACME server's HTTPS (bridge.acme_ca_file: a test CA like pebble's). */
  readonly caPem?: string;
  readonly log: Logger;
  /** Wall-clock ms (tests). */
  readonly now?: () => number;
  /** Retries of one ACME request on a network error, 5xx or 429 (default 3, 2 s apart growing):
   *  acme-client's own 5 x 5-75 s would hold the issuance queue for minutes. */
  readonly requestRetries?: number;
  /** Retry bounds (tests). */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

/** A hostname's certificate state (status). */
export type AcmeState = 'pending' | 'issuing' | 'valid' | 'failed' | 'refused';

interface HostState {
  state: AcmeState;
  context: SecureContext | undefined;
  notBefore: number;
  notAfter: number;
  failures: number;
  nextAttemptMs: number;
  lastError: string | undefined;
  /** Where the certificate in use came from. */
  source: 'cache' | 'issued' | undefined;
  /** The challenge type of the last order (http-01, tls-alpn-01). */
  challenge: string | undefined;
}

/** True when `host` is allowed by `patterns` (exact, or "*.suffix" for one or more labels). */
export function acmeHostAllowed(host: string, patterns: readonly string[]): boolean {
  if (patterns.length === 0) return true;
  return patterns.some((p) => {
    const q = p.trim().toLowerCase();
    return q.startsWith('*.') ? host.endsWith(q.slice(1)) && host.length > q.length - 1 : host === q;
  });
}


function readOrUndefined(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** ACME issuance and renewal for the ingress (a CertificateSource). */
export class AcmeManager implements CertificateSource {
  /** Orders this process created (successful or not), and certificates it obtained. */
  readonly counters = { orders: 0, issued: 0, failures: 0, loadedFromCache: 0 };
  readonly #opts: AcmeOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #hosts = new Map<string, HostState>();
  readonly #http = new Map<string, string>();
  readonly #alpn = new Map<string, SecureContext>();
  #http01 = false;
  #client: acme.Client | undefined;
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  /** Creates acme_cache_dir (0700). Throws the fs error when it cannot. */
  constructor(opts: AcmeOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    mkdirSync(opts.cacheDir, { recursive: true, mode: 0o700 });
    chmodSync(opts.cacheDir, 0o700);
    if (opts.caPem !== undefined) acme.axios.defaults.httpsAgent = new HttpsAgent({ ca: opts.caPem });
    const settings = (acme.axios.defaults as { acmeSettings?: { retryMaxAttempts: number; retryDefaultDelay: number } }).acmeSettings;
    if (settings !== undefined) {
      settings.retryMaxAttempts = opts.requestRetries ?? 3;
      settings.retryDefaultDelay = 2;
    }
  }

  contextFor(hostname: string): SecureContext | undefined {
    return this.#hosts.get(hostname)?.context;
  }

  alpnChallengeFor(hostname: string): SecureContext | undefined {
    return this.#alpn.get(hostname);
  }

  httpChallenge(token: string): string | undefined {
    return this.#http.get(token);
  }

  want(hostnames: readonly string[], http01: boolean): void {
    if (this.#closed) return;
    this.#http01 = http01;
    const keep = new Set(hostnames);
    for (const h of this.#hosts.keys()) if (!keep.has(h)) this.#hosts.delete(h);
    for (const h of hostnames) if (!this.#hosts.has(h)) this.#hosts.set(h, this.#fromCache(h));
    this.#kick();
  }

  describe(hostname: string): Record<string, unknown> | null {
    const s = this.#hosts.get(hostname);
    if (s === undefined) return null;
    return {
      source: 'acme',
      state: s.state,
      not_before: s.notBefore > 0 ? new Date(s.notBefore).toISOString() : null,
      not_after: s.notAfter > 0 ? new Date(s.notAfter).toISOString() : null,
      renew_after: s.notAfter > 0 ? new Date(renewAt(s)).toISOString() : null,
      from: s.source ?? null,
      challenge: s.challenge ?? null,
      failures: s.failures,
      next_attempt: s.state === 'failed' ? new Date(s.nextAttemptMs).toISOString() : null,
      last_error: s.lastError ?? null,
    };
  }

  /** The status view: counters, directory and every hostname's state. */
  snapshot(): Record<string, unknown> {
    return {
      directory_url: this.#opts.directoryUrl,
      cache_dir: this.#opts.cacheDir,
      http01: this.#http01,
      ...this.counters,
      hosts: Object.fromEntries([...this.#hosts.keys()].map((h) => [h, this.describe(h)])),
    };
  }

  /** Stops the renewal timer; an issuance under way finishes but is not followed by another. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  // A cached certificate for `host` that is still valid and names it, else a pending state.
  #fromCache(host: string): HostState {
    const s: HostState = { state: 'pending', context: undefined, notBefore: 0, notAfter: 0, failures: 0, nextAttemptMs: 0, lastError: undefined, source: undefined, challenge: undefined };
    if (!acmeHostAllowed(host, this.#opts.allowedHosts)) {
      s.state = 'refused';
      s.lastError = 'not in bridge.acme_allowed_hosts';
      return s;
    }
    const cert = readOrUndefined(join(this.#opts.cacheDir, `${host}.crt`));
    const key = readOrUndefined(join(this.#opts.cacheDir, `${host}.key`));
    if (cert === undefined || key === undefined) return s;
    try {
      const info = acme.crypto.readCertificateInfo(cert);
      const names = [info.domains.commonName, ...info.domains.altNames].map((n) => n.toLowerCase());
      if (!names.includes(host) || info.notAfter.getTime() <= this.#now()) return s;
      this.#install(s, cert, key, info.notBefore.getTime(), info.notAfter.getTime(), 'cache');
      this.counters.loadedFromCache++;
      this.#log.info(`acme: ${host}: certificate from the cache, valid until ${info.notAfter.toISOString()}`);
    } catch (err) {
      this.#log.error(`acme: ${host}: cached certificate unusable, ordering a new one: ${(err as Error).message}`);
    }
    return s;
  }

  #install(s: HostState, cert: string, key: string, notBefore: number, notAfter: number, source: 'cache' | 'issued'): void {
    s.context = createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
    s.notBefore = notBefore;
    s.notAfter = notAfter;
    s.state = 'valid';
    s.source = source;
    s.failures = 0;
    s.lastError = undefined;
  }

  /** The next hostname due for issuance or renewal, and when the next one is due otherwise. */
  #due(): { host: string | undefined; nextMs: number } {
    const now = this.#now();
    let next = now + ACME_CHECK_MS;
    for (const [host, s] of this.#hosts) {
      if (s.state === 'refused' || s.state === 'issuing') continue;
      const at = s.state === 'valid' ? renewAt(s) : s.state === 'failed' ? s.nextAttemptMs : now;
      if (at <= now) return { host, nextMs: now };
      next = Math.min(next, at);
    }
    return { host: undefined, nextMs: next };
  }

  // One issuance at a time; after each, look again; then sleep until the next one is due.
  #kick(): void {
    if (this.#running || this.#closed) return;
    clearTimeout(this.#timer);
    const { host, nextMs } = this.#due();
    if (host === undefined) {
      this.#timer = setTimeout(() => this.#kick(), Math.max(1000, Math.min(nextMs - this.#now(), ACME_CHECK_MS)));
      this.#timer.unref();
      return;
    }
    this.#running = true;
    void this.#issue(host).finally(() => {
      this.#running = false;
      this.#kick();
    });
  }

  async #accountKey(): Promise<Buffer> {
    const file = join(this.#opts.cacheDir, 'account.key');
    const have = readOrUndefined(file);
    if (have !== undefined) return Buffer.from(have);
    const key = await acme.crypto.createPrivateEcdsaKey('P-256');
    writeFileAtomic(file, key);
    return key;
  }

  async #issue(host: string): Promise<void> {
    const s = this.#hosts.get(host);
    if (s === undefined) return;
    const was = s.state;
    s.state = 'issuing';
    const http01 = this.#http01;
    try {
      this.#client ??= new acme.Client({ directoryUrl: this.#opts.directoryUrl, accountKey: await this.#accountKey() });
      const key = await acme.crypto.createPrivateEcdsaKey('P-256');
      const [, csr] = await acme.crypto.createCsr({ commonName: host, altNames: [host] }, key);
      this.counters.orders++;
      this.#log.info(`acme: ${host}: ordering a certificate (${was === 'valid' ? 'renewal' : 'new'}, ${http01 ? 'HTTP-01 or TLS-ALPN-01' : 'TLS-ALPN-01'})`);
      const cert = await this.#client.auto({
        csr,
        ...(this.#opts.email !== undefined ? { email: this.#opts.email } : {}),
        termsOfServiceAgreed: true,
        // The bridge cannot resolve its own public name reliably (split DNS, NAT): let the CA validate.
        skipChallengeVerification: true,
        challengePriority: http01 ? ['http-01', 'tls-alpn-01'] : ['tls-alpn-01'],
        challengeCreateFn: async (authz, challenge, keyAuthorization) => {
          s.challenge = challenge.type;
          if (challenge.type === 'http-01') this.#http.set(challenge.token, keyAuthorization);
          else if ((challenge.type as string) === 'tls-alpn-01') {
            const [k, c] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization);
            this.#alpn.set(authz.identifier.value.toLowerCase(), createSecureContext({ key: k, cert: c }));
          }
        },
        challengeRemoveFn: async (authz, challenge) => {
          if (challenge.type === 'http-01') this.#http.delete(challenge.token);
          else this.#alpn.delete(authz.identifier.value.toLowerCase());
        },
      });
      const info = acme.crypto.readCertificateInfo(cert);
      writeFileAtomic(join(this.#opts.cacheDir, `${host}.key`), key);
      writeFileAtomic(join(this.#opts.cacheDir, `${host}.crt`), cert);
      if (this.#hosts.get(host) !== s) return; // the rule went away meanwhile
      this.#install(s, cert, key.toString(), info.notBefore.getTime(), info.notAfter.getTime(), 'issued');
      this.counters.issued++;
      this.#log.info(`acme: ${host}: certificate issued, valid until ${info.notAfter.toISOString()}`);
    } catch (err) {
      this.counters.failures++;
      s.failures++;
      const wait = Math.min((this.#opts.retryMinMs ?? ACME_RETRY_MIN_MS) * 2 ** (s.failures - 1), this.#opts.retryMaxMs ?? ACME_RETRY_MAX_MS);
      s.nextAttemptMs = this.#now() + wait;
      s.lastError = (err as Error).message;
      // A still-valid certificate stays in use while renewal retries.
      s.state = s.context !== undefined && s.notAfter > this.#now() ? 'valid' : 'failed';
      if (s.state === 'valid') s.nextAttemptMs = Math.max(s.nextAttemptMs, renewAt(s));
      this.#log.error(`acme: ${host}: issuance failed (attempt ${s.failures}), retrying in ${Math.round(wait / 1000)} s: ${s.lastError}`);
    }
  }
}

/** When a certificate is due for renewal: a third of its lifetime before it ends. */
function renewAt(s: Pick<HostState, 'notBefore' | 'notAfter' | 'failures' | 'nextAttemptMs'>): number {
  const due = s.notAfter - (s.notAfter - s.notBefore) / 3;
  return s.failures > 0 ? Math.max(due, s.nextAttemptMs) : due;
}
