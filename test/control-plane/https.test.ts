import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { createControlPlane } from '../../src/control-plane/server.js';

const dir = mkdtempSync(join(tmpdir(), 'cp-https-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** GET over https pinning the certificate's SHA-256 instead of trusting a CA. */
function pinnedGet(url: string, pin: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, rejectUnauthorized: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    // Check the pin as soon as TLS is up, before the request (and any credential) is sent.
    req.on('socket', (socket) => {
      (socket as TLSSocket).once('secureConnect', () => {
        const got = createHash('sha256').update((socket as TLSSocket).getPeerCertificate().raw).digest('hex');
        if (got !== pin) req.destroy(new Error(`pin mismatch: ${got}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('HTTPS', () => {
  it('serves with a generated certificate that pins by fingerprint and survives restart', async () => {
    const db = join(dir, 'cp.db');
    let cp = await createControlPlane({ db, listen: '127.0.0.1:0' });
    try {
      expect(cp.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(cp.fingerprint).toMatch(/^[0-9a-f]{64}$/);
      const r = await pinnedGet(`${cp.url}/v1/nope`, cp.fingerprint!);
      expect(r.status).toBe(404);
      expect(JSON.parse(r.body).code).toBe('not_found');
      await expect(pinnedGet(`${cp.url}/v1/nope`, '00'.repeat(32))).rejects.toThrow(/pin mismatch/);
      const fp = cp.fingerprint;
      await cp.close();
      cp = await createControlPlane({ db, listen: '127.0.0.1:0' });
      expect(cp.fingerprint).toBe(fp);
    } finally {
      await cp.close();
    }
  });
});
