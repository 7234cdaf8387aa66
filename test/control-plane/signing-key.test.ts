// Event-signing key rotation on the server: `control-plane signing-key rotate` (another
// connection to the same file, as from a shell while `serve` runs) announces the new key in
// signing_key_rotated signed by the old key; every later event, registration and restart uses the
// new key; streams opened during the transition get the rotation re-announced (the logged one
// goes stale after 5 minutes), after it they do not.

import { describe, expect, it } from 'vitest';
import { decodeBase64, signingKeyId, verifyEnvelope } from '../../src/api/index.js';
import { harnessEach, openStream, runCli as cli } from './harness.js';

const h = harnessEach({}, { open: true });

describe('signing-key rotate', () => {
  it('announces the new key signed by the old one, then signs everything with the new one', async () => {
    const a = await h.register();
    const oldId = a.signing_key_id;
    const oldKey = decodeBase64(a.signing_public_key, 32)!;
    const s = await openStream(h.cp.url, a.node_id, a.auth);
    try {
      const r = await cli('signing-key', 'rotate', '--db', h.dbFile, '--transition', '30m', '--json');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.out) as { key_id: string; previous_key_id: string; transition_expires: string };
      expect(out.previous_key_id).toBe(oldId);
      expect(out.key_id).not.toBe(oldId);
      expect(Date.parse(out.transition_expires) - Date.now()).toBeGreaterThan(29 * 60_000);

      const ev = await s.next((e) => e.envelope.type === 'signing_key_rotated', 3000);
      expect(ev.envelope.key_id).toBe(oldId);
      expect(verifyEnvelope(ev.envelope, (id) => (id === oldId ? oldKey : undefined), Date.now())).toEqual({ ok: true });
      const p = ev.envelope.payload as { key_id: string; public_key: string; previous_key_id: string; transition_expires: string };
      expect(p).toEqual({ key_id: out.key_id, public_key: expect.any(String), previous_key_id: oldId, transition_expires: out.transition_expires });
      const newKey = decodeBase64(p.public_key, 32)!;
      expect(signingKeyId(newKey)).toBe(p.key_id);

      // The running server signs the next event (a registration's peer_added) with the new key,
      // and hands the new key to new nodes.
      const b = await h.register();
      expect(b.signing_key_id).toBe(out.key_id);
      expect(b.signing_public_key).toBe(p.public_key);
      const added = await s.next((e) => e.envelope.type === 'peer_added', 3000);
      expect(added.envelope.key_id).toBe(out.key_id);
      expect(verifyEnvelope(added.envelope, (id) => (id === out.key_id ? newKey : undefined), Date.now())).toEqual({ ok: true });

      // A stream opened during the transition starts with the rotation, freshly signed by the old key.
      const late = await openStream(h.cp.url, a.node_id, a.auth);
      try {
        const first = await late.next(() => true, 3000);
        expect(first.id).toBeUndefined();
        expect(first.envelope).toMatchObject({ type: 'signing_key_rotated', key_id: oldId, payload: p });
        expect(verifyEnvelope(first.envelope, (id) => (id === oldId ? oldKey : undefined), Date.now())).toEqual({ ok: true });
      } finally {
        late.close();
      }

      await h.restart();
      expect(h.cp.store.signer.keyId).toBe(out.key_id);
    } finally {
      s.close();
    }
  });

  it('after the transition a new stream gets no re-announcement; usage errors exit 2', async () => {
    const a = await h.register();
    h.cp.store.rotateSigningKey(1);
    await new Promise((r) => setTimeout(r, 5));
    const s = await openStream(h.cp.url, a.node_id, a.auth);
    try {
      h.cp.store.setPolicy('default', []);
      const first = await s.next(() => true, 3000);
      expect(first.envelope.type).toBe('policy_updated');
    } finally {
      s.close();
    }
    expect((await cli('signing-key', 'rotate', '--db', h.dbFile, '--transition', 'soon')).code).toBe(2);
    expect((await cli('signing-key', 'spin', '--db', h.dbFile)).code).toBe(2);
    expect(() => h.cp.store.rotateSigningKey(0)).toThrow(RangeError);
  });
});
