// What the sans-IO engine asks its driver to do (STYLE.md item 2): send a datagram, deliver a
// packet to the tunnel, count a drop, observe an event. A closed set of calls, no exceptions.

import type { Endpoint } from './endpoint.js';

export type { Endpoint };

/**
 * Why a packet was not delivered. Every hostile or broken input maps to one of these and is
 * counted; none of them throws. Grouped by where they arise.
 */
export const DROP_REASONS = [
  // framing (messages.ts)
  'short', // fewer than 4 bytes: no message type
  'unknown-type', // type byte not 1-4
  'reserved-nonzero', // the 3 reserved header bytes are not zero
  'bad-length', // not the exact length of its type (transport: under 32 bytes)
  // handshake and cookie (whitepaper 5.4.2-5.4.7)
  'no-identity', // no private key configured
  'mac1', // MAC1 invalid
  'cookie-required', // under load without a valid MAC2: a cookie reply was sent instead
  'rate-limited', // under load, too many handshake messages (or cookie replies) for this source
  'handshake-queue-full', // the driver's bounded handshake queue was full (flood): not even MAC1 was checked
  'handshake-decrypt', // initiation/response failed authentication or a DH was zero
  'unknown-peer', // initiation from a static key that is not a configured peer
  'stale-timestamp', // initiation TAI64N not newer than the last accepted one (replay)
  'initiation-flood', // initiation sooner than HANDSHAKE_INITIATION_RATE after the last
  'unexpected-response', // response or cookie reply for no handshake in the right state
  'cookie-decrypt', // cookie reply failed authentication
  // transport (whitepaper 5.4.6)
  'unknown-index', // receiver index names no live keypair
  'expired-keypair', // keypair older than REJECT_AFTER_TIME
  'decrypt', // transport data failed authentication
  'replay', // counter seen before, too old for the window, or >= REJECT_AFTER_MESSAGES
  'inner-malformed', // decrypted packet is not a well-formed IPv4/IPv6 header
  'allowed-ips', // inner source address not routed to the sending peer
  // outbound
  'no-route', // destination address not in allowed IPs
  'not-ip', // outbound packet is not a well-formed IPv4/IPv6 header
  'too-large', // outbound packet longer than a transport message can carry
  'no-endpoint', // the peer has no known endpoint yet
  'queue-full', // the oldest packet waiting for a handshake was pushed out
  'handshake-timeout', // waiting packet flushed after REKEY_ATTEMPT_TIME without a handshake
  'keys-zeroed', // waiting packet flushed when the peer's keys were erased or the peer removed
] as const;

/** A counted reason for not delivering a packet (see DROP_REASONS). */
export type DropReason = (typeof DROP_REASONS)[number];

/** Observable protocol events, for logs and stats; the engine works the same without a listener. */
export type EngineEvent<P> =
  | { readonly kind: 'handshake-initiation-sent'; readonly peer: P; readonly retry: boolean }
  | { readonly kind: 'handshake-initiation-resent'; readonly peer: P } // the unanswered one, to a new endpoint
  | { readonly kind: 'handshake-response-sent'; readonly peer: P }
  | { readonly kind: 'handshake-complete'; readonly peer: P } // a new keypair is confirmed
  | { readonly kind: 'handshake-gave-up'; readonly peer: P } // REKEY_ATTEMPT_TIME passed
  | { readonly kind: 'keypair-created'; readonly peer: P; readonly isInitiator: boolean }
  | { readonly kind: 'keys-zeroed'; readonly peer: P } // ZERO_KEY_MATERIAL_TIME passed
  | { readonly kind: 'endpoint-changed'; readonly peer: P; readonly endpoint: Endpoint }
  | { readonly kind: 'cookie-sent'; readonly to: Endpoint };

/**
 * Receives the engine's actions, synchronously, during an engine call. Implementations must not
 * call back into the engine from inside these methods.
 */
export interface ActionSink<P> {
  /**
   * Send `data` as one UDP datagram to `endpoint`. Return true when done with `data` (sent
   * synchronously or dropped): the engine may then reuse its buffer for the next message.
   * Otherwise `data` belongs to the receiver from now on.
   */
  network(peer: P | undefined, endpoint: Endpoint, data: Uint8Array): boolean | void;
  /** Deliver a decrypted IP packet: a view into the datagram passed to decapsulate (may be kept). */
  tun(peer: P, data: Uint8Array): void;
  /** Count a dropped packet; `peer` when it is known. */
  drop(reason: DropReason, peer: P | undefined): void;
  /** Optional observer of protocol events. */
  event?(e: EngineEvent<P>): void;
}
