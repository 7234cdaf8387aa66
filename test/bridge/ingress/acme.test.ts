// The ingress's ACME manager (src/bridge/ingress/acme.ts) without a CA: certificates from the
// cache are used with no order, acme_allowed_hosts refuses other names, a failed issuance backs
// off and is reported, the cache directory is 0700. The issuance itself runs against pebble in
// test/netns/bridge-ingress.test.ts.

import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acmeHostAllowed, AcmeManager } from '../../../src/bridge/ingress/acme.js';
import { createSelfSignedCertificate } from '../../../src/control-plane/certificate.js';
import { silentLogger } from '../../../src/log/logger.js';
import { until } from '../../helpers/wait.js';

const dirs: string[] = [];
const managers: AcmeManager[] = [];
afterEach(() => {
  for (const m of managers.splice(0)) m.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function manager(over: Partial<ConstructorParameters<typeof AcmeManager>[0]> = {}): { m: AcmeManager; dir: string } {
  const dir = join(mkdtempSync(join(tmpdir(), 'acme-test-')), 'cache');
  dirs.push(dir.replace(/\/cache$/, ''));
  // A directory URL on a closed loopback port: any order attempt fails fast and is counted.
  const m = new AcmeManager({ directoryUrl: 'http://127.0.0.1:9/dir', cacheDir: dir, allowedHosts: [], log: silentLogger, retryMinMs: 60_000, requestRetries: 0, ...over });
  managers.push(m);
  return { m, dir };
}

describe('AcmeManager', () => {
  it('uses a valid cached certificate with no order, and creates the cache 0700', () => {
    const { m, dir } = manager();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const id = createSelfSignedCertificate(['app.test']);
    writeFileSync(join(dir, 'app.test.crt'), id.certPem);
    writeFileSync(join(dir, 'app.test.key'), id.keyPem);
    m.want(['app.test'], true);
    expect(m.contextFor('app.test')).toBeDefined();
    expect(m.counters).toMatchObject({ orders: 0, loadedFromCache: 1 });
    expect(m.describe('app.test')).toMatchObject({ state: 'valid', from: 'cache', failures: 0 });
  });

  it('ignores a cached certificate for another name and orders instead; a failure backs off and is reported', async () => {
    const { m, dir } = manager();
    const other = createSelfSignedCertificate(['other.test']);
    writeFileSync(join(dir, 'app.test.crt'), other.certPem);
    writeFileSync(join(dir, 'app.test.key'), other.keyPem);
    m.want(['app.test'], true);
    expect(m.contextFor('app.test')).toBeUndefined();
    const d = await until('issuance failed', 10_000, () => (m.describe('app.test')?.['state'] === 'failed' ? m.describe('app.test')! : undefined));
    expect(d['failures']).toBe(1);
    expect(String(d['last_error'])).not.toBe('');
    expect(Date.parse(String(d['next_attempt'])) - Date.now()).toBeGreaterThan(50_000);
    expect(m.counters).toMatchObject({ orders: 1, failures: 1 });
    // The account key was made and kept (0600) before the directory failed.
    expect(statSync(join(dir, 'account.key')).mode & 0o777).toBe(0o600);
  });

  it('refuses hostnames outside acme_allowed_hosts without an order', async () => {
    const { m } = manager({ allowedHosts: ['app.test', '*.apps.test'] });
    m.want(['evil.test', 'x.apps.test'], true);
    expect(m.describe('evil.test')).toMatchObject({ state: 'refused', last_error: 'not in bridge.acme_allowed_hosts' });
    await until('x.apps.test attempted', 10_000, () => (m.counters.orders === 1 ? true : undefined));
    await new Promise((r) => setTimeout(r, 200));
    expect(m.counters.orders).toBe(1);
  });

  it('matches allowed hosts exactly or by *.suffix', () => {
    expect(acmeHostAllowed('a.test', [])).toBe(true);
    expect(acmeHostAllowed('a.test', ['a.test'])).toBe(true);
    expect(acmeHostAllowed('b.a.test', ['*.a.test'])).toBe(true);
    expect(acmeHostAllowed('a.test', ['*.a.test'])).toBe(false);
    expect(acmeHostAllowed('xa.test', ['*.a.test'])).toBe(false);
  });
});

