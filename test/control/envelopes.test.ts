// Envelope acceptance: good ones pass; forged, unknown-key, stale, future, replayed, malformed
// ones are rejected and counted; signing_key_rotated switches keys with a transition window; only
// this node's and its project's envelopes of known types pass, in order (the high-water mark).

import { describe, expect, it } from 'vitest';
import { encodeBase64, formatRfc3339 } from '../../src/api/fields.js';
import { generateSigningKey, signEnvelope } from '../../src/api/signing.js';
import { EnvelopeVerifier, SigningKeyring } from '../../src/control/envelopes.js';

const NOW = 1_700_000_000_000;

/** A small replay window keeps the window test to a few hundred signatures. */
const WINDOW = 64;

function setup() {
  const k1 = generateSigningKey();
  let now = NOW;
  const v = new EnvelopeVerifier(new SigningKeyring('k1', encodeBase64(k1.publicKey)), { nodeId: 'x', projectId: 'p' }, { wallMs: () => now, replayWindow: WINDOW });
  let seq = 0;
  const make = (over: { id?: string; type?: string; scope?: string; key_id?: string; issued?: number; payload?: Record<string, unknown> } = {}, key = k1.secretKey) =>
    JSON.stringify(
      signEnvelope(
        { id: over.id ?? String(++seq), type: over.type ?? 'peer_added', scope: over.scope ?? 'node:x', key_id: over.key_id ?? 'k1', issued_at: formatRfc3339(over.issued ?? now), payload: over.payload ?? {} },
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
    const { v, k1, make } = setup();
    const bad = make({ type: 'signing_key_rotated', payload: { key_id: 'k2', public_key: 'short', previous_key_id: 'k1', transition_expires: formatRfc3339(NOW) } });
    expect(v.accept(bad)).toBeUndefined();
    expect(v.drops.bad_rotation).toBe(1);
    expect(v.keyring.currentId).toBe('k1');
    // k1 -> k2; k1 still verifies during the transition, but it may no longer name a successor.
    const [k2, k3] = [generateSigningKey(), generateSigningKey()];
    const announce = (from: string, key: Uint8Array, to: string, pub: Uint8Array) =>
      make({ type: 'signing_key_rotated', key_id: from, payload: { key_id: to, public_key: encodeBase64(pub), previous_key_id: from, transition_expires: formatRfc3339(NOW + 60_000) } }, key);
    expect(v.accept(announce('k1', k1.secretKey, 'k2', k2.publicKey))).toBeDefined();
    expect(v.accept(make())).toBeDefined(); // k1 inside its transition
    expect(v.accept(announce('k1', k1.secretKey, 'k3', k3.publicKey))).toBeUndefined();
    expect(v.drops.bad_rotation).toBe(2);
    expect(v.keyring.currentId).toBe('k2');
    expect(v.keyring.keyFor('k3', NOW)).toBeUndefined();
    expect(v.accept(make({ key_id: 'k3' }, k3.secretKey))).toBeUndefined();
    expect(v.drops.unknown_key_id).toBe(1);
  });
});

describe('EnvelopeVerifier: scope, type and order', () => {
  it('takes only envelopes scoped to this node or its project', () => {
    const { v, make } = setup();
    expect(v.accept(make({ scope: 'node:x' }))).toBeDefined();
    expect(v.accept(make({ scope: 'project:p' }))).toBeDefined();
    for (const scope of ['node:y', 'project:q', 'project:x', 'node:p', 'x', 'node:x ', 'NODE:x']) expect(v.accept(make({ scope }))).toBeUndefined();
    expect(v.drops.wrong_scope).toBe(7);
    expect(v.accepted).toBe(2);
  });

  it('drops and counts authentic envelopes of an unknown type', () => {
    const { v, make } = setup();
    expect(v.accept(make({ type: 'launch_missiles' }))).toBeUndefined();
    expect(v.accept(make({ type: 'Peer_Added' }))).toBeUndefined();
    expect(v.drops.unknown_type).toBe(2);
    expect(v.accept(make({ type: 'policy_updated' }))?.type).toBe('policy_updated');
  });

  it('refuses a sequenced id at or below the highest accepted one, seen or not', () => {
    const { v, make } = setup();
    const e7 = make({ id: '7' });
    expect(v.accept(make({ id: '5' }))).toBeDefined();
    expect(v.accept(make({ id: '9' }))).toBeDefined(); // gaps are normal: other nodes' events
    expect(v.highWater).toBe(9);
    expect(v.accept(e7)).toBeUndefined(); // never seen, but older than 9
    expect(v.accept(make({ id: '9' }))).toBeUndefined();
    expect(v.accept(make({ id: '1' }))).toBeUndefined();
    expect(v.drops.replayed).toBe(3);
    expect(v.accept(make({ id: '10' }))).toBeDefined();
    // Not canonical decimals: not sequenced, so they are checked as seen ids instead.
    for (const id of ['010', '+11', '1e3', '9007199254740993']) expect(v.accept(make({ id }))).toBeDefined();
    expect(v.highWater).toBe(10);
  });

  it('a replay stays refused after more than the replay window of other ids', () => {
    const { v, make } = setup();
    const first = make({ id: '1' });
    const gap = make({ id: 'gap-1', type: 'node_state_updated' });
    expect(v.accept(first)).toBeDefined();
    expect(v.accept(gap)).toBeDefined();
    for (let i = 2; i < 2 * WINDOW; i++) expect(v.accept(make({ id: String(i) }))).toBeDefined();
    expect(v.accept(first)).toBeUndefined();
    expect(v.accept(gap)).toBeUndefined();
    expect(v.drops.replayed).toBe(2);
    // Unsequenced ids: the window holds the newest WINDOW of them, and no more.
    for (let i = 0; i < WINDOW; i++) expect(v.accept(make({ id: `gap-x${i}`, type: 'node_state_updated' }))).toBeDefined();
    expect(v.accept(gap)).toBeDefined(); // gap-1 was the oldest: forgotten (issued_at still bounds it)
    expect(v.accept(make({ id: `gap-x${WINDOW - 1}`, type: 'node_state_updated' }))).toBeUndefined();
  });

  it('a Last-Event-ID replay and the stream notices between logged events pass in order', () => {
    const { v, k1, make } = setup();
    const k2 = generateSigningKey();
    // First stream: 1..3. Reconnect: a re-announced rotation and a gap notice (no SSE id), then
    // the log from Last-Event-ID 3 on, whatever key signed it.
    for (const id of ['1', '2', '3']) expect(v.accept(make({ id }))).toBeDefined();
    const rotation = (id: string) =>
      make({ id, type: 'signing_key_rotated', payload: { key_id: 'k2', public_key: encodeBase64(k2.publicKey), previous_key_id: 'k1', transition_expires: formatRfc3339(NOW + 60_000) } }, k1.secretKey);
    expect(v.accept(rotation('4'))).toBeDefined();
    expect(v.accept(rotation(`rotation-k2-${NOW}-1`))).toBeDefined();
    expect(v.accept(make({ id: 'gap-4', type: 'node_state_updated' }))).toBeDefined();
    expect(v.accept(make({ id: '5', key_id: 'k2' }, k2.secretKey))).toBeDefined();
    expect(v.accept(make({ id: '6', scope: 'project:p' }))).toBeDefined();
    expect(v.dropped).toBe(0);
  });

  it('rebind: a new node id changes the scope; another control plane\'s key restarts the sequence', () => {
    const { v, k1, make } = setup();
    expect(v.accept(make({ id: '50' }))).toBeDefined();
    v.rebind({ nodeId: 'x2', projectId: 'p' }, 'k1', encodeBase64(k1.publicKey)); // same control plane
    expect(v.accept(make({ id: '51' }))).toBeUndefined();
    expect(v.drops.wrong_scope).toBe(1);
    expect(v.accept(make({ id: '40', scope: 'node:x2' }))).toBeUndefined();
    expect(v.accept(make({ id: '52', scope: 'node:x2' }))).toBeDefined();
    const other = generateSigningKey();
    v.rebind({ nodeId: 'y', projectId: 'p' }, 'o1', encodeBase64(other.publicKey));
    expect(v.keyring.currentId).toBe('o1');
    expect(v.highWater).toBe(0);
    expect(v.accept(make({ id: '1', scope: 'node:y', key_id: 'o1' }, other.secretKey))).toBeDefined();
    expect(v.accept(make({ id: '60', scope: 'node:y' }))).toBeUndefined(); // the old key is gone
    expect(v.drops.unknown_key_id).toBe(1);
  });
});
