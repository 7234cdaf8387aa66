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

describe('Ed25519 through node:crypto agrees with RFC 8032 and with noble', () => {
  it('RFC 8032 section 7.1 test 1: the public key of the secret, and the signature of the empty message', async () => {
    const { ed25519 } = await import('@noble/curves/ed25519.js');
    const { signingPublicKey } = await import('../../src/api/signing.js');
    const secret = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
    expect(Buffer.from(signingPublicKey(new Uint8Array(secret))).toString('hex')).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    expect(Buffer.from(ed25519.sign(new Uint8Array(0), secret)).toString('hex')).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
  });

  it('envelopes signed here verify with noble, and noble\'s verify here (20 random keys)', async () => {
    const { ed25519 } = await import('@noble/curves/ed25519.js');
    for (let i = 0; i < 20; i++) {
      const k = generateSigningKey();
      expect(Buffer.from(ed25519.getPublicKey(k.secretKey))).toEqual(Buffer.from(k.publicKey));
      const e = signEnvelope(unsigned({ id: String(i) }), k.secretKey);
      expect(ed25519.verify(Buffer.from(e.signature, 'base64'), envelopeSigningBytes(e), k.publicKey)).toBe(true);
      const theirs = { ...e, signature: Buffer.from(ed25519.sign(envelopeSigningBytes(e), k.secretKey)).toString('base64') };
      expect(verifyEnvelope(theirs, () => k.publicKey, NOW)).toEqual({ ok: true });
      // Not a point on the curve: refused, not thrown.
      expect(verifyEnvelope(theirs, () => new Uint8Array(32).fill(0xff), NOW)).toEqual({ ok: false, reason: 'bad_signature' });
    }
  });
});
