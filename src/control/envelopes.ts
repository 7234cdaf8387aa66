// Acceptance of signed event envelopes (plexd-api.md "Signed events"): JSON -> shape -> Ed25519
// verification against a keyring that follows signing_key_rotated (the new key is signed by the
// old one; the old one stays valid until transition_expires) -> scope (this node or its project)
// -> known type -> order and replay check on the envelope id. Every rejection is counted by
// reason; nothing here throws on hostile input.
//
// Order: our control plane's envelope ids are its event log's seq (docs/control-plane.md: a
// global, never reused sequence, delivered in order, also across Last-Event-ID replays, restarts
// and signing-key rotations), so a decimal id must be above the highest one accepted (the
// high-water mark): an old id is refused even when it was never seen. Ids that are not decimal
// (the stream's `gap-*` and `rotation-*` notices, which carry no SSE id) go through a bounded set
// of ids seen. Both last for the verifier's life; `rebind` (a registration with another control
// plane) starts them afresh. issued_at freshness (5 min) bounds what a restarted agent can be
// replayed.

import { isEventType, parseEnvelope, type EventEnvelope } from '../api/events.js';
import { decodeBase64, parseRfc3339 } from '../api/fields.js';
import { verifyEnvelope, type EnvelopeRejection } from '../api/signing.js';

/** Why an SSE data payload was not accepted. `replayed`: an id at or below the high-water mark
 *  (sequenced ids) or already seen (others); `wrong_scope`: addressed to another node or project;
 *  `unknown_type`: authentic, but not an EVENT_TYPES type. */
export type EnvelopeDrop = EnvelopeRejection | 'not_json' | 'wrong_scope' | 'unknown_type' | 'replayed' | 'bad_rotation';

/** Unsequenced (non-decimal) envelope ids remembered to catch replays (bounded, oldest forgotten). */
export const REPLAY_WINDOW = 4096;

/** The audience the agent belongs to: envelopes must be scoped `node:<nodeId>` or `project:<projectId>`. */
export interface EnvelopeScope {
  readonly nodeId: string;
  readonly projectId: string;
}

/** A canonical decimal id ("1", "42"; no sign, no leading zero) as a number; undefined otherwise. */
function sequenceOf(id: string): number | undefined {
  if (!/^[1-9][0-9]{0,15}$/.test(id)) return undefined;
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : undefined;
}

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
  readonly drops: Record<EnvelopeDrop, number> = {
    malformed: 0,
    unknown_key_id: 0,
    bad_signature: 0,
    issued_at_invalid: 0,
    issued_at_stale: 0,
    issued_at_future: 0,
    not_json: 0,
    wrong_scope: 0,
    unknown_type: 0,
    replayed: 0,
    bad_rotation: 0,
  };
  accepted = 0;
  #keyring: SigningKeyring;
  #scopes: ReadonlySet<string>;
  /** Highest sequenced id accepted (0: none yet). */
  #highWater = 0;
  readonly #seen = new Set<string>();
  readonly #window: number;
  readonly #wallMs: () => number;
  /** Called when a verified signing_key_rotated changed the keyring (persist it). */
  onKeyRotated: ((keyId: string, publicKeyBase64: string) => void) | undefined;

  /** `options.wallMs`: wall clock (ms) for issued_at and transitions; `options.replayWindow`:
   *  unsequenced ids remembered (default REPLAY_WINDOW). Throws RangeError for a window < 1. */
  constructor(keyring: SigningKeyring, scope: EnvelopeScope, options: { readonly wallMs?: () => number; readonly replayWindow?: number } = {}) {
    this.#keyring = keyring;
    this.#scopes = scopesOf(scope);
    this.#wallMs = options.wallMs ?? Date.now;
    this.#window = options.replayWindow ?? REPLAY_WINDOW;
    if (!Number.isInteger(this.#window) || this.#window < 1) throw new RangeError(`expected replayWindow >= 1, got ${this.#window}`);
  }

  /** The keys trusted now. */
  get keyring(): SigningKeyring {
    return this.#keyring;
  }

  /** The highest sequenced envelope id accepted so far (0: none). */
  get highWater(): number {
    return this.#highWater;
  }

  /**
   * After a new registration: envelopes are now scoped to `scope`. A signing key other than the
   * current one means another control plane (another event log): the keyring restarts from it
   * and the high-water mark and seen ids are forgotten. Throws TypeError for a bad key.
   */
  rebind(scope: EnvelopeScope, keyId: string, publicKeyBase64: string): void {
    this.#scopes = scopesOf(scope);
    const key = decodeBase64(publicKeyBase64, 32);
    const have = this.#keyring.keyFor(keyId, this.#wallMs());
    if (key !== undefined && have !== undefined && Buffer.from(have).equals(key)) return;
    this.#keyring = new SigningKeyring(keyId, publicKeyBase64);
    this.#highWater = 0;
    this.#seen.clear();
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
    const verdict = verifyEnvelope(env, (id) => this.#keyring.keyFor(id, now), now);
    if (!verdict.ok) return this.#drop(verdict.reason);
    if (!this.#scopes.has(env.scope)) return this.#drop('wrong_scope');
    if (!isEventType(env.type)) return this.#drop('unknown_type');
    const seq = sequenceOf(env.id);
    if (seq !== undefined ? seq <= this.#highWater : this.#seen.has(env.id)) return this.#drop('replayed');
    if (env.type === 'signing_key_rotated' && this.#rotate(env, now) === 'refused') return this.#drop('bad_rotation');
    if (seq !== undefined) this.#highWater = seq;
    else {
      this.#seen.add(env.id);
      if (this.#seen.size > this.#window) this.#seen.delete(this.#seen.values().next().value!);
    }
    this.accepted++;
    return env;
  }

  #drop(reason: EnvelopeDrop): undefined {
    this.drops[reason]++;
    return undefined;
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
    const have = this.#keyring.keyFor(keyId, now);
    if (have !== undefined) return Buffer.from(have).equals(key) ? 'repeat' : 'refused';
    // Signed by the old key: only the current key may announce its successor.
    if (env.key_id !== this.#keyring.currentId) return 'refused';
    this.#keyring.rotate(keyId, key, Math.min(expires ?? now, now + 7 * 86_400_000));
    this.onKeyRotated?.(keyId, pub);
    return 'rotated';
  }
}

function scopesOf(scope: EnvelopeScope): ReadonlySet<string> {
  return new Set([`node:${scope.nodeId}`, `project:${scope.projectId}`]);
}
