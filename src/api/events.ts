// Signed event envelopes of the plexd event bus (plexd-api.md "Signed events"): the envelope
// shape, the event types, the payloads our control plane sends, and a lenient envelope parser.
// Signing and verification live in signing.ts.

import { FieldReader, type ParseResult } from './fields.js';
import type { PeerInfo } from './types.js';

/** Every event type plexd defines. Agents dispatch on the envelope `type`, not the SSE `event:`. */
export const EVENT_TYPES = [
  'node_state_updated',
  'policy_updated',
  'bridge_config_updated',
  'action_request',
  'peer_added',
  'peer_removed',
  'peer_key_rotated',
  'peer_endpoint_changed',
  'peer_psk_assigned',
  'rotate_keys',
  'signing_key_rotated',
  'relay_session_assigned',
  'relay_session_revoked',
] as const;
/** One of EVENT_TYPES. */
export type EventType = (typeof EVENT_TYPES)[number];

/** True when `t` is a known event type (unknown ones should be counted and ignored, or treated
 *  as "reconcile now"). */
export function isEventType(t: string): t is EventType {
  return (EVENT_TYPES as readonly string[]).includes(t);
}

/** A signed event as it travels in an SSE `data:` line. */
export interface EventEnvelope {
  /** Unique, monotonically increasing per node stream; also the SSE `id:` (Last-Event-ID). */
  readonly id: string;
  readonly type: string;
  /** "node:<node_id>" or "project:<project_id>". */
  readonly scope: string;
  readonly key_id: string;
  /** RFC 3339. */
  readonly issued_at: string;
  readonly payload: Readonly<Record<string, unknown>>;
  /** Base64 Ed25519 signature (64 bytes) over `envelopeSigningBytes`. */
  readonly signature: string;
}

/** Payloads our control plane sends, by type. Types not listed carry `{}` or free-form data. */
export interface EventPayloads {
  peer_added: { peer: PeerInfo };
  peer_removed: { node_id: string; reason?: string };
  peer_key_rotated: { peer: PeerInfo };
  peer_endpoint_changed: { node_id: string; endpoint: string };
  peer_psk_assigned: { node_id: string };
  policy_updated: { revision_id: string; fingerprint: string };
  node_state_updated: Record<string, never>;
  rotate_keys: Record<string, never>;
  signing_key_rotated: { key_id: string; public_key: string; previous_key_id: string; transition_expires: string };
}

/** Parses the JSON of an SSE `data:` line into an envelope (shape only; verify separately). */
export function parseEnvelope(body: unknown): ParseResult<EventEnvelope> {
  const r = new FieldReader(body);
  const value: EventEnvelope = {
    id: r.string('id', 128),
    type: r.string('type', 64),
    scope: r.string('scope', 256),
    key_id: r.string('key_id', 128),
    issued_at: r.string('issued_at', 64),
    payload: r.object('payload', (p) => p.obj),
    signature: r.base64Key('signature', 64),
  };
  return r.result(value);
}
