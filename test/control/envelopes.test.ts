// Envelope acceptance: good ones pass; forged, unknown-key, stale, future, replayed, malformed
// ones are rejected and counted; signing_key_rotated switches keys with a transition window.

import { describe, expect, it } from 'vitest';
import { encodeBase64, formatRfc3339 } from '../../src/api/fields.js';
import { generateSigningKey, signEnvelope } from '../../src/api/signing.js';
import { EnvelopeVerifier, SigningKeyring } from '../../src/control/envelopes.js';

const NOW = 1_700_000_000_000;

function setup() {
  const k1 = generateSigningKey();
  let now = NOW;
  const v = new EnvelopeVerifier(new SigningKeyring('k1', encodeBase64(k1.publicKey)), () => now);
  let seq = 0;
  const make = (over: { type?: string; key_id?: string; issued?: number; payload?: Record<string, unknown> } = {}, key = k1.secretKey) =>
    JSON.stringify(
      signEnvelope(
        { id: String(++seq), type: over.type ?? 'peer_added', scope: 'node:x', key_id: over.key_id ?? 'k1', issued_at: formatRfc3339(over.issued ?? now), payload: over.payload ?? {} },
        key,
      ),
    );
  return { v, k1, make, setNow: (t: number) => (now = t) };
}

describe('EnvelopeVerifier', () => {
  it('accepts a good envelope and rejects each kind of bad one with its reason', () => {
    const { v, make } = setup();
    expect(v.accept(make())?.type).toBe('peer_added');
    const forged = JSON.parse(make()) as Record<string, unknown>;
    forged['payload'] = { evil: true };
    expect(v.accept(JSON.stringify(forged))).toBeUndefined();
    const other = generateSigningKey();
    expect(v.accept(make({}, other.secretKey))).toBeUndefined();
    expect(v.accept(make({ key_id: 'k9' }))).toBeUndefined();
    expect(v.accept(make({ issued: NOW - 6 * 60_000 }))).toBeUndefined();
    expect(v.accept(make({ issued: NOW + 6 * 60_000 }))).toBeUndefined();
    const good = make();
    expect(v.accept(good)).toBeDefined();
    expect(v.accept(good)).toBeUndefined();
    expect(v.accept('{not json')).toBeUndefined();
    expect(v.accept('{"id":1}')).toBeUndefined();
    expect(v.accept('x'.repeat(100_000))).toBeUndefined();
    expect(v.drops).toMatchObject({ bad_signature: 2, unknown_key_id: 1, issued_at_stale: 1, issued_at_future: 1, replayed: 1, not_json: 2, malformed: 1 });
    expect(v.accepted).toBe(2);
  });

  it('follows signing_key_rotated signed by the old key; the old key expires after the transition', () => {
    const { v, make, setNow } = setup();
    const k2 = generateSigningKey();
    const rotated: string[] = [];
    v.onKeyRotated = (id) => rotated.push(id);
    const rotation = make({
      type: 'signing_key_rotated',
      payload: { key_id: 'k2', public_key: encodeBase64(k2.publicKey), previous_key_id: 'k1', transition_expires: formatRfc3339(NOW + 60_000) },
    });
    expect(v.accept(rotation)?.type).toBe('signing_key_rotated');
    expect(rotated).toEqual(['k2']);
    expect(v.accept(make({ key_id: 'k2' }, k2.secretKey))).toBeDefined();
    expect(v.accept(make())).toBeDefined(); // old key inside the transition
    setNow(NOW + 120_000);
    expect(v.accept(make())).toBeUndefined();
    expect(v.drops.unknown_key_id).toBe(1);
  });

  it('takes a re-announced rotation (a chain, or one already applied) as a repeat, not a drop', () => {
    const { v, k1, make } = setup();
    const [k2, k3] = [generateSigningKey(), generateSigningKey()];
    const rotated: string[] = [];
    v.onKeyRotated = (id) => rotated.push(id);
    const announce = (from: string, key: Uint8Array, to: string, pub: Uint8Array) =>
      make({ type: 'signing_key_rotated', key_id: from, payload: { key_id: to, public_key: encodeBase64(pub), previous_key_id: from, transition_expires: formatRfc3339(NOW + 60_000) } }, key);
    // What a reconnect during two transitions sends: k1 -> k2, then k2 -> k3; then both again.
    expect(v.accept(announce('k1', k1.secretKey, 'k2', k2.publicKey))).toBeDefined();
    expect(v.accept(announce('k2', k2.secretKey, 'k3', k3.publicKey))).toBeDefined();
    expect(v.accept(announce('k1', k1.secretKey, 'k2', k2.publicKey))).toBeDefined();
    expect(v.accept(announce('k2', k2.secretKey, 'k3', k3.publicKey))).toBeDefined();
    expect(rotated).toEqual(['k2', 'k3']);
    expect(v.keyring.currentId).toBe('k3');
    expect(v.dropped).toBe(0);
    // The same key id with other key bytes is not a repeat.
    expect(v.accept(announce('k2', k2.secretKey, 'k3', generateSigningKey().publicKey))).toBeUndefined();
    expect(v.drops.bad_rotation).toBe(1);
    expect(v.keyring.currentId).toBe('k3');
  });

  it('refuses a rotation announced by a non-current key or with a bad key', () => {
    const { v, make } = setup();
    const bad = make({ type: 'signing_key_rotated', payload: { key_id: 'k2', public_key: 'short', previous_key_id: 'k1', transition_expires: formatRfc3339(NOW) } });
    expect(v.accept(bad)).toBeUndefined();
    expect(v.drops.bad_rotation).toBe(1);
    expect(v.keyring.currentId).toBe('k1');
  });
});
