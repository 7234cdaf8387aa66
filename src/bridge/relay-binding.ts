// How an agent tells the relay which session its packets belong to (docs/nat.md "Relay binding"):
// a STUN Binding request to the relay port, sent from the WireGuard socket, carrying two
// comprehension-optional attributes with the session ID and the sender's node ID. The relay locks
// that side of the session to the datagram's source (its NAT mapping towards the relay, which a
// symmetric NAT makes different from the STUN-reported one) and answers with a Binding success,
// which the agent's STUN client takes like any other. Ordinary STUN servers ignore the attributes.

import type { StunAttribute, StunMessage } from '../nat/stun-message.js';
import { getAttribute } from '../nat/stun-message.js';

/** PLEXD-RELAY-SESSION: the relay session ID, UTF-8 (private-use comprehension-optional range). */
export const ATTR_RELAY_SESSION = 0xc501;
/** PLEXD-RELAY-PEER: the sending node's ID, UTF-8. */
export const ATTR_RELAY_PEER = 0xc502;
/** Longest session or node ID accepted (UUIDs are 36). */
export const MAX_RELAY_ID_BYTES = 128;

/** The attributes of a binding request for `sessionId` from node `peerId`. Throws RangeError for empty or over-long IDs. */
export function relayBindingAttributes(sessionId: string, peerId: string): StunAttribute[] {
  const s = Buffer.from(sessionId, 'utf8');
  const p = Buffer.from(peerId, 'utf8');
  for (const [name, v] of [['sessionId', s], ['peerId', p]] as const) {
    if (v.length === 0 || v.length > MAX_RELAY_ID_BYTES) throw new RangeError(`expected ${name} of 1..${MAX_RELAY_ID_BYTES} bytes, got ${v.length}`);
  }
  return [
    { type: ATTR_RELAY_SESSION, value: s },
    { type: ATTR_RELAY_PEER, value: p },
  ];
}

/**
 * The session and peer IDs of a binding request; undefined for a plain Binding (neither
 * attribute); 'malformed' when only one is there or one is empty or too long.
 */
export function readRelayBinding(message: StunMessage): { sessionId: string; peerId: string } | 'malformed' | undefined {
  const s = getAttribute(message, ATTR_RELAY_SESSION);
  const p = getAttribute(message, ATTR_RELAY_PEER);
  if (s === undefined && p === undefined) return undefined;
  if (s === undefined || p === undefined) return 'malformed';
  if (s.length === 0 || p.length === 0 || s.length > MAX_RELAY_ID_BYTES || p.length > MAX_RELAY_ID_BYTES) return 'malformed';
  return { sessionId: Buffer.from(s).toString('utf8'), peerId: Buffer.from(p).toString('utf8') };
}
