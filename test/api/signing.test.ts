import { describe, expect, it } from 'vitest';
import {
  envelopeSigningBytes,
  generateSigningKey,
  parseEnvelope,
  signEnvelope,
  signingKeyId,
  verifyEnvelope,
  type EventEnvelope,
} from '../../src/api/index.js';

const NOW = Date.parse('2025-01-02T03:04:05.000Z');
const key = generateSigningKey();
const keyId = signingKeyId(key.publicKey);
const keys = (id: string) => (id === keyId ? key.publicKey : undefined);

function unsigned(over: Partial<EventEnvelope> = {}): Omit<EventEnvelope, 'signature'> {
  return {
    id: '42',
    type: 'peer_removed',
    scope: 'node:abc',
    key_id: keyId,
    issued_at: new Date(NOW).toISOString(),
    payload: { node_id: 'n2', reason: 'removed' },
    ...over,
  };
}

describe('envelope signing', () => {
  it('signs exactly the compact JSON of the six fields in order', () => {
    const e = unsigned();
    const text = new TextDecoder().decode(envelopeSigningBytes({ ...e, extra: 1 } as never));
    expect(text).toBe(
      `{"id":"42","type":"peer_removed","scope":"node:abc","key_id":"${keyId}","issued_at":"2025-01-02T03:04:05.000Z","payload":{"node_id":"n2","reason":"removed"}}`,
    );
    // Order of the input object does not matter.
    const shuffled = { payload: e.payload, issued_at: e.issued_at, key_id: e.key_id, scope: e.scope, type: e.type, id: e.id };
    expect(envelopeSigningBytes(shuffled)).toEqual(envelopeSigningBytes(e));
  });

  it('verifies a signed envelope, also after a JSON round trip', () => {
    const env = signEnvelope(unsigned(), key.secretKey);
    expect(verifyEnvelope(env, keys, NOW)).toEqual({ ok: true });
    const parsed = parseEnvelope(JSON.parse(JSON.stringify(env)));
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(verifyEnvelope(parsed.value, keys, NOW + 299_000)).toEqual({ ok: true });
  });

  it('rejects each kind of bad envelope with its reason', () => {
    const env = signEnvelope(unsigned(), key.secretKey);
    const other = generateSigningKey();
    expect(verifyEnvelope({ ...env, key_id: 'nope' }, keys, NOW)).toEqual({ ok: false, reason: 'unknown_key_id' });
    expect(verifyEnvelope(signEnvelope(unsigned(), other.secretKey), keys, NOW)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifyEnvelope({ ...env, payload: { node_id: 'n3', reason: 'removed' } }, keys, NOW)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifyEnvelope({ ...env, type: 'peer_added' }, keys, NOW)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifyEnvelope({ ...env, signature: 'AAAA' }, keys, NOW)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifyEnvelope({ ...env, signature: '!'.repeat(88) }, keys, NOW)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifyEnvelope(env, keys, NOW + 301_000)).toEqual({ ok: false, reason: 'issued_at_stale' });
    expect(verifyEnvelope(env, keys, NOW - 301_000)).toEqual({ ok: false, reason: 'issued_at_future' });
    const badTime = signEnvelope(unsigned({ issued_at: 'yesterday' }), key.secretKey);
    expect(verifyEnvelope(badTime, keys, NOW)).toEqual({ ok: false, reason: 'issued_at_invalid' });
    expect(verifyEnvelope(null as never, keys, NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('parses envelopes leniently and reports broken ones by field', () => {
    const env = signEnvelope(unsigned(), key.secretKey);
    expect(parseEnvelope({ ...env, future_field: [1, 2] }).ok).toBe(true);
    const bad = parseEnvelope({ ...env, payload: 'x', signature: 'short', id: undefined });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.errors.map((e) => e.field).sort()).toEqual(['id', 'payload', 'signature']);
    for (const junk of [null, 1, 'x', [], true]) expect(parseEnvelope(junk).ok).toBe(false);
  });

  it('refuses a wrong-length secret key', () => {
    expect(() => signEnvelope(unsigned(), new Uint8Array(31))).toThrow(RangeError);
  });
});
