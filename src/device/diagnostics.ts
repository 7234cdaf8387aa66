// The engine's protocol events and drops on node:diagnostics_channel (undici's way, STYLE.md 12):
// embedders and the metrics layer subscribe by name instead of parsing log lines. A message is
// built only when its channel has subscribers, so without any the cost is one property read.
// Names and message shapes are documented in docs/api.md ("Diagnostics channels").

import { channel, type Channel } from 'node:diagnostics_channel';
import type { DropReason, Endpoint, EngineEvent } from '../core/actions.js';
import type { Peer } from '../core/peer.js';
import type { Device } from './device.js';

/** Every channel name, by the EngineEvent kind it carries (plus `drop`). */
export const DIAGNOSTICS_CHANNELS = {
  'handshake-initiation-sent': 'plexd-userspace:peer:handshake-initiation-sent',
  'handshake-response-sent': 'plexd-userspace:peer:handshake-response-sent',
  'handshake-complete': 'plexd-userspace:peer:handshake-complete',
  'handshake-gave-up': 'plexd-userspace:peer:handshake-gave-up',
  'keypair-created': 'plexd-userspace:peer:keypair-created',
  'keys-zeroed': 'plexd-userspace:peer:keys-zeroed',
  'endpoint-changed': 'plexd-userspace:peer:endpoint-changed',
  'cookie-sent': 'plexd-userspace:device:cookie-sent',
  drop: 'plexd-userspace:device:drop',
} as const;

/**
 * A message on a `plexd-userspace:peer:*` channel. `device` is the Device whose engine
 * raised it; `publicKey` is a copy of the peer's key. `retry` comes with
 * handshake-initiation-sent, `isInitiator` with keypair-created, `endpoint` (a copy) with
 * endpoint-changed.
 */
export interface PeerEventMessage {
  readonly device: Device;
  readonly publicKey: Uint8Array;
  readonly retry?: boolean;
  readonly isInitiator?: boolean;
  readonly endpoint?: Endpoint;
}

/** A message on `plexd-userspace:device:cookie-sent`: a cookie reply went to `to` (under load). */
export interface CookieSentMessage {
  readonly device: Device;
  readonly to: Endpoint;
}

/** A message on `plexd-userspace:device:drop`: a counted drop; `publicKey` (a copy) when the peer is known. */
export interface DropMessage {
  readonly device: Device;
  readonly reason: DropReason;
  readonly publicKey: Uint8Array | undefined;
}

type EventKind = EngineEvent<Peer>['kind'];

const eventChannels = Object.fromEntries(
  (Object.keys(DIAGNOSTICS_CHANNELS) as Array<keyof typeof DIAGNOSTICS_CHANNELS>).map((k) => [k, channel(DIAGNOSTICS_CHANNELS[k])]),
) as Record<EventKind | 'drop', Channel>;

/** The drop channel, for a hasSubscribers check on the per-packet path. */
export const dropChannel: Channel = eventChannels.drop;

/** Publishes `e` from `device` when its channel has subscribers. */
export function publishEvent(device: Device, e: EngineEvent<Peer>): void {
  const ch = eventChannels[e.kind];
  if (!ch.hasSubscribers) return;
  if (e.kind === 'cookie-sent') {
    ch.publish({ device, to: { address: e.to.address, port: e.to.port } } satisfies CookieSentMessage);
    return;
  }
  const publicKey = e.peer.publicKey.slice();
  let message: PeerEventMessage;
  switch (e.kind) {
    case 'handshake-initiation-sent':
      message = { device, publicKey, retry: e.retry };
      break;
    case 'keypair-created':
      message = { device, publicKey, isInitiator: e.isInitiator };
      break;
    case 'endpoint-changed':
      message = { device, publicKey, endpoint: { address: e.endpoint.address, port: e.endpoint.port } };
      break;
    default:
      message = { device, publicKey };
  }
  ch.publish(message);
}

/** Publishes a drop; call only when dropChannel.hasSubscribers (the caller checks, per packet). */
export function publishDrop(device: Device, reason: DropReason, peer: Peer | undefined): void {
  dropChannel.publish({ device, reason, publicKey: peer?.publicKey.slice() } satisfies DropMessage);
}
