// Acceptance of signed event envelopes (plexd-api.md "Signed events"): JSON -> shape -> Ed25519
// verification against a keyring that follows signing_key_rotated (the new key is signed by the
// old one; the old one stays valid until transition_expires) -> replay check on the envelope id.
// Every rejection is counted by reason; nothing here throws on hostile input.

import { parseEnvelope, type EventEnvelope } from '../api/events.js';
import { decodeBase64, parseRfc3339 } from '../api/fields.js';
import { verifyEnvelope, type EnvelopeRejection } from '../api/signing.js';

/** Why an SSE data payload was not accepted. */
export type EnvelopeDrop = EnvelopeRejection | 'not_json' | 'replayed' | 'bad_rotation';

/** Envelopes seen per envelope id to catch replays (bounded). */
const REPLAY_WINDOW = 4096;

/** The signing keys the agent trusts, by key id. */
export class SigningKeyring {
  readonly #keys = new Map<string, { key: Uint8Array; expiresMs: number }>();
  #currentId: string;

  /** Starts with one key (from registration or the data_dir). Throws TypeError for a bad key. */
  constructor(keyId: string, publicKeyBase64: string) {
    const key = decodeBase64(publicKeyBase64, 32);
    if (key === undefined) throw new TypeError('expected the signing public key as base64 of 32 bytes');
    this.#keys.set(keyId, { key, expiresMs: Infinity });
    this.#currentId = keyId;
  }

  /** The current key id. */
  get currentId(): string {
    return this.#currentId;
  }

  /** The key for `id` at `nowMs`, undefined when unknown or past its transition. */
  keyFor(id: string, nowMs: number): Uint8Array | undefined {
    const k = this.#keys.get(id);
    return k !== undefined && nowMs <= k.expiresMs ? k.key : undefined;
  }

  /** Makes `keyId` current; the previous current key stays valid until `previousExpiresMs`. */
  rotate(keyId: string, key: Uint8Array, previousExpiresMs: number): void {
    const prev = this.#keys.get(this.#currentId);
    if (prev !== undefined && this.#currentId !== keyId) prev.expiresMs = previousExpiresMs;
    this.#keys.set(keyId, { key, expiresMs: Infinity });
    this.#currentId = keyId;
    for (const [id, k] of this.#keys) if (k.expiresMs < previousExpiresMs - 86_400_000) this.#keys.delete(id);
  }
}

/** Verifies incoming envelopes and counts drops. */
export class EnvelopeVerifier {
  readonly keyring: SigningKeyring;
  readonly drops: Record<EnvelopeDrop, number> = {
    malformed: 0,
    unknown_key_id: 0,
    bad_signature: 0,
    issued_at_invalid: 0,
    issued_at_stale: 0,
    issued_at_future: 0,
    not_json: 0,
    replayed: 0,
    bad_rotation: 0,
  };
  accepted = 0;
  readonly #seen = new Set<string>();
  readonly #wallMs: () => number;
  /** Called when a verified signing_key_rotated changed the keyring (persist it). */
  onKeyRotated: ((keyId: string, publicKeyBase64: string) => void) | undefined;

  constructor(keyring: SigningKeyring, wallMs: () => number = Date.now) {
    this.keyring = keyring;
    this.#wallMs = wallMs;
  }

  /** Total dropped envelopes. */
  get dropped(): number {
    return Object.values(this.drops).reduce((a, b) => a + b, 0);
  }

  /**
   * Checks one SSE data payload. Returns the envelope when it is authentic, fresh and new (and
   * applies a signing_key_rotated to the keyring); undefined, counted, otherwise.
   */
  accept(data: string): EventEnvelope | undefined {
    let json: unknown;
    try {
      json = JSON.parse(data) as unknown;
    } catch {
      this.drops.not_json++;
      return undefined;
    }
    const parsed = parseEnvelope(json);
    if (!parsed.ok) {
      this.drops.malformed++;
      return undefined;
    }
    const env = parsed.value;
    const now = this.#wallMs();
    const verdict = verifyEnvelope(env, (id) => this.keyring.keyFor(id, now), now);
    if (!verdict.ok) {
      this.drops[verdict.reason]++;
      return undefined;
    }
    if (this.#seen.has(env.id)) {
      this.drops.replayed++;
      return undefined;
    }
    this.#seen.add(env.id);
    if (this.#seen.size > REPLAY_WINDOW) this.#seen.delete(this.#seen.values().next().value!);
    if (env.type === 'signing_key_rotated' && this.#rotate(env, now) === 'refused') {
      this.drops.bad_rotation++;
      return undefined;
    }
    this.accepted++;
    return env;
  }

  /** Applies a verified signing_key_rotated: 'rotated', 'repeat' (the announced key is one we
   *  already hold, same bytes: the control plane re-announces rotations on every connect during
   *  the transition), or 'refused'. */
  #rotate(env: EventEnvelope, now: number): 'rotated' | 'repeat' | 'refused' {
    const p = env.payload;
    const keyId = p['key_id'];
    const pub = p['public_key'];
    const expires = typeof p['transition_expires'] === 'string' ? parseRfc3339(p['transition_expires']) : undefined;
    if (typeof keyId !== 'string' || keyId === '' || keyId.length > 128 || typeof pub !== 'string') return 'refused';
    const key = decodeBase64(pub, 32);
    if (key === undefined) return 'refused';
    const have = this.keyring.keyFor(keyId, now);
    if (have !== undefined) return Buffer.from(have).equals(key) ? 'repeat' : 'refused';
    // Signed by the old key: only the current key may announce its successor.
    if (env.key_id !== this.keyring.currentId) return 'refused';
    this.keyring.rotate(keyId, key, Math.min(expires ?? now, now + 7 * 86_400_000));
    this.onKeyRotated?.(keyId, pub);
    return 'rotated';
  }
}
