// How an agent tells the relay which session its packets belong to (docs/nat.md "Relay binding"):
// a STUN Binding request to the relay port, sent from the WireGuard socket, carrying two
// comprehension-optional attributes with the session ID and the sender's node ID. The relay locks
// that side of the session to the datagram's source (its NAT mapping towards the relay, which a
// symmetric NAT makes different from the STUN-reported one) and answers with a Binding success,
// which the agent's STUN client takes like any other. Ordinary STUN servers ignore the attributes.
//
// Authentication (ours): when the session carries a `binding_key` (32 random bytes the control
// plane gives only to the session's two peers and its bridge), the binding also carries
// PLEXD-RELAY-AUTH: a 64-bit counter that rises with every binding the sender makes, and
// HMAC-SHA256(binding_key, label || session ID || peer ID || counter). The IDs travel in
// cleartext; the key never does, and the counter makes a captured binding useless once a newer
// one was accepted.

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { StunAttribute, StunMessage } from '../nat/stun-message.js';
import { getAttribute } from '../nat/stun-message.js';

/** PLEXD-RELAY-SESSION: the relay session ID, UTF-8 (private-use comprehension-optional range). */
export const ATTR_RELAY_SESSION = 0xc501;
/** PLEXD-RELAY-PEER: the sending node's ID, UTF-8. */
export const ATTR_RELAY_PEER = 0xc502;
/** PLEXD-RELAY-AUTH: 8-byte big-endian counter, then the 32-byte HMAC-SHA256 tag. */
export const ATTR_RELAY_AUTH = 0xc503;
/** Longest session or node ID accepted (UUIDs are 36). */
export const MAX_RELAY_ID_BYTES = 128;
/** Size of a session's binding key. */
export const RELAY_BINDING_KEY_BYTES = 32;

const AUTH_BYTES = 8 + 32;
const LABEL = Buffer.from('plexd relay binding v1', 'utf8');

/** A relay binding as read from a request; `auth` when PLEXD-RELAY-AUTH was present. */
export interface RelayBinding {
  readonly sessionId: string;
  readonly peerId: string;
  readonly auth?: { readonly counter: bigint; readonly tag: Uint8Array };
}

/** The MAC of a binding: HMAC-SHA256(key, label || len || session || len || peer || counter). */
function bindingTag(key: Uint8Array, sessionId: Uint8Array, peerId: Uint8Array, counter: bigint): Buffer {
  const c = Buffer.alloc(8);
  c.writeBigUInt64BE(counter);
  return createHmac('sha256', key).update(LABEL).update(Uint8Array.of(sessionId.length)).update(sessionId).update(Uint8Array.of(peerId.length)).update(peerId).update(c).digest();
}

/**
 * The attributes of a binding request for `sessionId` from node `peerId`, authenticated when
 * `auth` (the session's binding key and a counter above every earlier one) is given. Throws
 * RangeError for empty or over-long IDs, a key that is not 32 bytes, or a counter outside 64 bits.
 */
export function relayBindingAttributes(sessionId: string, peerId: string, auth?: { readonly key: Uint8Array; readonly counter: bigint }): StunAttribute[] {
  const s = Buffer.from(sessionId, 'utf8');
  const p = Buffer.from(peerId, 'utf8');
  for (const [name, v] of [['sessionId', s], ['peerId', p]] as const) {
    if (v.length === 0 || v.length > MAX_RELAY_ID_BYTES) throw new RangeError(`expected ${name} of 1..${MAX_RELAY_ID_BYTES} bytes, got ${v.length}`);
  }
  const attrs: StunAttribute[] = [
    { type: ATTR_RELAY_SESSION, value: s },
    { type: ATTR_RELAY_PEER, value: p },
  ];
  if (auth === undefined) return attrs;
  if (auth.key.length !== RELAY_BINDING_KEY_BYTES) throw new RangeError(`expected a ${RELAY_BINDING_KEY_BYTES}-byte binding key, got ${auth.key.length} bytes`);
  if (auth.counter < 0n || auth.counter >= 2n ** 64n) throw new RangeError(`expected a 64-bit counter, got ${auth.counter}`);
  const value = Buffer.alloc(AUTH_BYTES);
  value.writeBigUInt64BE(auth.counter);
  bindingTag(auth.key, s, p, auth.counter).copy(value, 8);
  attrs.push({ type: ATTR_RELAY_AUTH, value });
  return attrs;
}

/**
 * The session and peer IDs (and authentication, if any) of a binding request; undefined for a
 * plain Binding (no session or peer attribute); 'malformed' when only one of the IDs is there, an
 * ID is empty or too long, or PLEXD-RELAY-AUTH has the wrong size.
 */
export function readRelayBinding(message: StunMessage): RelayBinding | 'malformed' | undefined {
  const s = getAttribute(message, ATTR_RELAY_SESSION);
  const p = getAttribute(message, ATTR_RELAY_PEER);
  if (s === undefined && p === undefined) return undefined;
  if (s === undefined || p === undefined) return 'malformed';
  if (s.length === 0 || p.length === 0 || s.length > MAX_RELAY_ID_BYTES || p.length > MAX_RELAY_ID_BYTES) return 'malformed';
  const binding = { sessionId: Buffer.from(s).toString('utf8'), peerId: Buffer.from(p).toString('utf8') };
  const a = getAttribute(message, ATTR_RELAY_AUTH);
  if (a === undefined) return binding;
  if (a.length !== AUTH_BYTES) return 'malformed';
  const v = Buffer.from(a.buffer, a.byteOffset, a.length);
  return { ...binding, auth: { counter: v.readBigUInt64BE(0), tag: v.subarray(8) } };
}

/** True when `binding` carries a tag made with `key` over its own IDs and counter. */
export function relayBindingAuthentic(binding: RelayBinding, key: Uint8Array): boolean {
  if (binding.auth === undefined) return false;
  const expected = bindingTag(key, Buffer.from(binding.sessionId, 'utf8'), Buffer.from(binding.peerId, 'utf8'), binding.auth.counter);
  return timingSafeEqual(expected, binding.auth.tag);
}
