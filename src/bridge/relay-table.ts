// The sans-IO core of the bridge relay (plexd-api.md "Relay"; upstream docs/reference/bridge/
// nat-relay.md): sessions {session_id, peer_a_id, peer_a_endpoint, peer_b_id, peer_b_endpoint,
// expires_at}, an index from source endpoint to (session, side), and the decision for each
// datagram: forward to the other side, answer (STUN / relay binding), or drop with a reason.
// The relay never looks inside forwarded datagrams: it sees WireGuard ciphertext only.
//
// Ends are known from the session's endpoints (upstream's model), or learned from a relay
// binding (relay-binding.ts) for agents whose public mapping towards the relay is not known in
// advance (symmetric NAT, empty endpoint). A binding for a side whose endpoint is known must come
// from the same IP address (the port may differ): a stranger who learns a session ID cannot take
// over a known end from elsewhere. Time: monotonic ms for deadlines, wall ms to read expires_at.
//
// Sessions with a `binding_key` (ours; the control plane gives it to the two peers and the bridge
// only) take authenticated bindings (relay-binding.ts): one with a valid MAC and a counter above
// the side's last sets the end from any address, so it replaces an unauthenticated claim; a bad
// MAC or an old counter is dropped; and once a side is bound with a MAC only a MAC moves it.
// Unauthenticated bindings (agents without the key, sessions without one such as hand-written
// `relay --sessions` files) keep the rules above.
//
// One relay port per session (ours, TURN-like; docs/nat.md): a session with `relay_port` is served
// on that port alone. Its ends are matched only on datagrams that arrive on that port (handle's
// `localPort`), so one node relayed to several peers through the same bridge from its one
// WireGuard socket is unambiguous: the port says which session. Sessions without `relay_port`
// share the base port and its source index (upstream's model: one source, one session end).

import { decodeBase64, endpointOf } from '../api/fields.js';
import type { RelaySession } from '../api/types.js';
import { endpointKey as key, sameEndpoint, type Endpoint } from '../core/endpoint.js';
import { decodeStun, encodeBindingSuccess, looksLikeStun } from '../nat/stun-message.js';
import { StunResponder } from '../nat/stun-server.js';
import { readRelayBinding, relayBindingAuthentic, RELAY_BINDING_KEY_BYTES } from './relay-binding.js';

/** plexd's defaults: 100 sessions, 5 minutes. */
export const DEFAULT_MAX_SESSIONS = 100;
export const DEFAULT_SESSION_TTL_MS = 5 * 60_000;

/** Why a datagram was not forwarded. */
export const RELAY_DROP_REASONS = [
  'unknown-source', // not an end of any live session
  'peer-not-bound', // the other end's endpoint is not known yet
  'expired', // the session's deadline passed (it is removed)
  'unknown-session', // a relay binding for no live session
  'unknown-peer', // a relay binding naming neither peer of the session
  'binding-address-mismatch', // a binding for a known end from another IP address
  'malformed-binding', // one relay attribute without the other, or an unusable one
  'binding-auth-failed', // a binding MAC that does not verify with the session's binding key
  'binding-replayed', // an authenticated binding whose counter is not above the side's last one
  'binding-unauthenticated', // a binding without MAC for a side bound with one
  'stun', // a STUN message the embedded STUN server did not answer (see stunCounters)
  'send-failed', // the socket refused the forwarded datagram
] as const;
/** One of RELAY_DROP_REASONS. */
export type RelayDropReason = (typeof RELAY_DROP_REASONS)[number];

/** What to do with one datagram. */
export type RelayAction =
  | { readonly kind: 'forward'; readonly to: Endpoint }
  | { readonly kind: 'reply'; readonly data: Uint8Array }
  | { readonly kind: 'drop'; readonly reason: RelayDropReason };

/** A live session as the relay sees it. */
export interface RelaySessionState {
  readonly sessionId: string;
  readonly peerAId: string;
  readonly peerBId: string;
  /** Current ends (undefined: not known yet). */
  readonly a: Endpoint | undefined;
  readonly b: Endpoint | undefined;
  /** Monotonic deadline (ms). */
  readonly deadline: number;
  readonly packets: number;
  readonly bytes: number;
  /** The session's own relay port; undefined: served on the base port. */
  readonly relayPort: number | undefined;
  /** True when bindings can be authenticated (the session has a binding key). */
  readonly authenticated: boolean;
}

/** Counters: forwarded traffic, bindings and drops per reason. */
export interface RelayCounters {
  forwardedPackets: number;
  forwardedBytes: number;
  /** Bindings accepted, and how many of them carried a valid MAC. */
  bindings: number;
  authenticatedBindings: number;
  readonly drops: Record<RelayDropReason, number>;
}

/** Why addSession refused a session. */
export type RelayAddError = 'full' | 'invalid' | 'expired';

interface Session {
  readonly sessionId: string;
  readonly peerAId: string;
  readonly peerBId: string;
  a: Endpoint | undefined;
  b: Endpoint | undefined;
  deadline: number;
  packets: number;
  bytes: number;
  readonly relayPort: number | undefined;
  readonly bindingKey: Uint8Array | undefined;
  /** Counter of the last authenticated binding per side; undefined: that end has none. */
  readonly authCounter: { a: bigint | undefined; b: bigint | undefined };
}

/** Options of {@link RelayTable}. */
export interface RelayTableOptions {
  readonly maxSessions?: number;
  readonly ttlMs?: number;
  /** Answer plain STUN Binding requests on the relay port (default true). */
  readonly stun?: boolean;
  /** The base port: a session may not claim it as its relay_port. */
  readonly basePort?: number;
  /** Called after a session is removed (revoked, expired, replaced); the relay closes its port. */
  readonly onRemove?: (sessionId: string, relayPort: number | undefined) => void;
}

/** Sessions, the source index and the per-datagram decision. Bounded by maxSessions. */
export class RelayTable {
  readonly counters: RelayCounters;
  readonly maxSessions: number;
  readonly ttlMs: number;
  readonly #sessions = new Map<string, Session>();
  readonly #bySource = new Map<string, { session: Session; side: 'a' | 'b' }>();
  readonly #byPort = new Map<number, Session>();
  readonly #stun: StunResponder | undefined;
  readonly #basePort: number | undefined;
  readonly #onRemove: RelayTableOptions['onRemove'];

  constructor(options: RelayTableOptions = {}) {
    this.#basePort = options.basePort;
    this.#onRemove = options.onRemove;
    this.maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    this.ttlMs = options.ttlMs ?? DEFAULT_SESSION_TTL_MS;
    if (!Number.isInteger(this.maxSessions) || this.maxSessions < 1) throw new RangeError(`expected maxSessions >= 1, got ${this.maxSessions}`);
    if (!(this.ttlMs > 0)) throw new RangeError(`expected ttlMs > 0, got ${this.ttlMs}`);
    this.#stun = options.stun === false ? undefined : new StunResponder();
    const drops = Object.fromEntries(RELAY_DROP_REASONS.map((r) => [r, 0])) as Record<RelayDropReason, number>;
    this.counters = { forwardedPackets: 0, forwardedBytes: 0, bindings: 0, authenticatedBindings: 0, drops };
  }

  /** Counters of the embedded STUN server (undefined when disabled). */
  get stunCounters(): StunResponder['counters'] | undefined {
    return this.#stun?.counters;
  }

  /** Live sessions (expired ones are removed first). */
  sessions(now: number): RelaySessionState[] {
    this.#sweep(now);
    // The key and counters stay inside.
    return [...this.#sessions.values()].map(({ bindingKey, authCounter: _, ...s }) => ({ ...s, authenticated: bindingKey !== undefined }));
  }

  /**
   * Adds a session, or refreshes one with the same ID (deadline and any endpoints given). The
   * deadline is min(now + ttl, expires_at). Returns undefined on success, else why not: 'full'
   * (maxSessions live), 'invalid' (missing IDs, unparsable expires_at, a binding_key that is not
   * base64 of 32 bytes or differs from the session's), 'expired' (already past).
   */
  addSession(s: RelaySession, now: number, wallNow: number): RelayAddError | undefined {
    if (typeof s?.session_id !== 'string' || s.session_id === '' || typeof s.peer_a_id !== 'string' || typeof s.peer_b_id !== 'string' || s.peer_a_id === s.peer_b_id) {
      return 'invalid';
    }
    const expiresWall = typeof s.expires_at === 'string' ? Date.parse(s.expires_at) : Number.NaN;
    if (Number.isNaN(expiresWall)) return 'invalid';
    const relayPort = s.relay_port ?? undefined;
    const bindingKey = s.binding_key === undefined ? undefined : decodeBase64(s.binding_key, RELAY_BINDING_KEY_BYTES);
    if (s.binding_key !== undefined && bindingKey === undefined) return 'invalid';
    if (relayPort !== undefined && (!Number.isInteger(relayPort) || relayPort < 1 || relayPort > 65535 || relayPort === this.#basePort)) return 'invalid';
    const deadline = Math.min(now + this.ttlMs, now + (expiresWall - wallNow));
    if (deadline <= now) return 'expired';
    this.#sweep(now);
    let session = this.#sessions.get(s.session_id);
    if (session === undefined) {
      if (this.#sessions.size >= this.maxSessions) return 'full';
      if (relayPort !== undefined && this.#byPort.has(relayPort)) return 'invalid';
      session = { sessionId: s.session_id, peerAId: s.peer_a_id, peerBId: s.peer_b_id, a: undefined, b: undefined, deadline, packets: 0, bytes: 0, relayPort, bindingKey, authCounter: { a: undefined, b: undefined } };
      this.#sessions.set(s.session_id, session);
      if (relayPort !== undefined) this.#byPort.set(relayPort, session);
    } else if (session.peerAId !== s.peer_a_id || session.peerBId !== s.peer_b_id || session.relayPort !== relayPort || !sameKey(session.bindingKey, bindingKey)) {
      return 'invalid';
    }
    session.deadline = deadline;
    const a = endpointOf(s.peer_a_endpoint);
    const b = endpointOf(s.peer_b_endpoint);
    if (a !== undefined) this.#setEnd(session, 'a', a);
    if (b !== undefined) this.#setEnd(session, 'b', b);
    return undefined;
  }

  /** Removes a session; false when there was none. */
  removeSession(sessionId: string): boolean {
    const s = this.#sessions.get(sessionId);
    if (s === undefined) return false;
    this.#remove(s);
    return true;
  }

  /**
   * Makes the live set equal to `desired` (a state pull): removes the others, adds or refreshes
   * these. Returns the IDs that could not be added, with the reason.
   */
  reconcile(desired: readonly RelaySession[], now: number, wallNow: number): Map<string, RelayAddError> {
    const want = new Set(desired.map((d) => d.session_id));
    for (const s of [...this.#sessions.values()]) if (!want.has(s.sessionId)) this.#remove(s);
    const failed = new Map<string, RelayAddError>();
    for (const d of desired) {
      const err = this.addSession(d, now, wallNow);
      if (err !== undefined) failed.set(String(d?.session_id), err);
    }
    return failed;
  }

  /** The sessions' own relay ports (expired sessions are removed first). */
  ports(now: number): number[] {
    this.#sweep(now);
    return [...this.#byPort.keys()];
  }

  /**
   * Decides the fate of one datagram from `from` at monotonic `now`. `localPort`: the session
   * port it arrived on (undefined: the base port). Never throws on input.
   */
  handle(data: Uint8Array, from: Endpoint, now: number, localPort?: number): RelayAction {
    let scope: Session | undefined;
    if (localPort !== undefined && localPort !== this.#basePort) {
      scope = this.#byPort.get(localPort);
      if (scope === undefined) return this.#drop('unknown-source');
      if (scope.deadline <= now) {
        this.#remove(scope);
        return this.#drop('expired');
      }
    }
    if (looksLikeStun(data)) return this.#handleStun(data, from, now, scope);
    let s: Session;
    let side: 'a' | 'b';
    if (scope !== undefined) {
      s = scope;
      const k = key(from);
      if (s.a !== undefined && key(s.a) === k) side = 'a';
      else if (s.b !== undefined && key(s.b) === k) side = 'b';
      else return this.#drop('unknown-source');
    } else {
      const hit = this.#bySource.get(key(from));
      if (hit === undefined) return this.#drop('unknown-source');
      s = hit.session;
      side = hit.side;
      if (s.deadline <= now) {
        this.#remove(s);
        return this.#drop('expired');
      }
    }
    const to = side === 'a' ? s.b : s.a;
    if (to === undefined) return this.#drop('peer-not-bound');
    s.packets++;
    s.bytes += data.length;
    this.counters.forwardedPackets++;
    this.counters.forwardedBytes += data.length;
    return { kind: 'forward', to };
  }

  /** Counts a forward the socket refused. */
  sendFailed(): void {
    this.counters.drops['send-failed']++;
  }

  #handleStun(data: Uint8Array, from: Endpoint, now: number, scope: Session | undefined): RelayAction {
    const decoded = decodeStun(data);
    if (decoded.ok && decoded.message.cls === 'request') {
      const binding = readRelayBinding(decoded.message);
      if (binding === 'malformed') return this.#drop('malformed-binding');
      if (binding !== undefined) {
        const s = this.#sessions.get(binding.sessionId);
        if (s === undefined || s.deadline <= now) {
          if (s !== undefined) this.#remove(s);
          return this.#drop('unknown-session');
        }
        // A session with its own port is bound on that port only (the NAT mapping towards the
        // base port is not the one its datagrams will come from); on a session port, only that
        // session.
        if (s !== scope && (scope !== undefined || s.relayPort !== undefined)) return this.#drop('unknown-session');
        const side = binding.peerId === s.peerAId ? 'a' : binding.peerId === s.peerBId ? 'b' : undefined;
        if (side === undefined) return this.#drop('unknown-peer');
        const current = s[side];
        const last = s.authCounter[side];
        if (s.bindingKey !== undefined && binding.auth !== undefined) {
          if (!relayBindingAuthentic(binding, s.bindingKey)) return this.#drop('binding-auth-failed');
          // The same counter again from the current end is a retransmission: answer it, change nothing.
          const repeat = binding.auth.counter === last && current !== undefined && sameEndpoint(current, from);
          if (last !== undefined && binding.auth.counter <= last && !repeat) return this.#drop('binding-replayed');
          s.authCounter[side] = binding.auth.counter;
          this.counters.authenticatedBindings++;
        } else if (last !== undefined) {
          return this.#drop('binding-unauthenticated');
        } else if (current !== undefined && !sameEndpoint({ address: current.address, port: 0 }, { address: from.address, port: 0 })) {
          return this.#drop('binding-address-mismatch');
        }
        this.#setEnd(s, side, { address: from.address, port: from.port });
        this.counters.bindings++;
        return { kind: 'reply', data: encodeBindingSuccess(decoded.message.transactionId, from) };
      }
    }
    if (this.#stun === undefined) return this.#drop('stun');
    const action = decoded.ok ? this.#stun.handleMessage(decoded.message, from, now) : this.#stun.handle(data, from, now);
    return action.kind === 'reply' ? action : this.#drop('stun');
  }

  #setEnd(s: Session, side: 'a' | 'b', e: Endpoint): void {
    const old = s[side];
    if (old !== undefined && this.#bySource.get(key(old))?.session === s) this.#bySource.delete(key(old));
    s[side] = e;
    // Sessions with their own port are matched on that port, not through the shared index.
    if (s.relayPort !== undefined) return;
    // One source belongs to one base-port session end: the newest claim wins (docs/nat.md).
    this.#bySource.set(key(e), { session: s, side });
  }

  #remove(s: Session): void {
    if (this.#sessions.get(s.sessionId) !== s) return;
    this.#sessions.delete(s.sessionId);
    if (s.relayPort !== undefined && this.#byPort.get(s.relayPort) === s) this.#byPort.delete(s.relayPort);
    for (const e of [s.a, s.b]) {
      if (e !== undefined && this.#bySource.get(key(e))?.session === s) this.#bySource.delete(key(e));
    }
    this.#onRemove?.(s.sessionId, s.relayPort);
  }

  #sweep(now: number): void {
    for (const s of [...this.#sessions.values()]) if (s.deadline <= now) this.#remove(s);
  }

  #drop(reason: RelayDropReason): RelayAction {
    this.counters.drops[reason]++;
    return { kind: 'drop', reason };
  }
}

function sameKey(x: Uint8Array | undefined, y: Uint8Array | undefined): boolean {
  return x === undefined || y === undefined ? x === y : Buffer.from(x).equals(y);
}
