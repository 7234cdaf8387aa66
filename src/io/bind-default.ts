// Chooses the UDP transport a Device gets when the caller gives none: 'native' or 'dgram' (the CLI
// reads the choice from PLEXD_BIND; library code reads no environment).

import type { Bind, SocketBindOptions } from './bind.js';
import { NativeBind } from './bind-native.js';
import { UdpBind } from './bind-udp.js';
import { loadNativeAddon } from './native.js';

/**
 * A new Bind of `kind`: 'native' (the addon's batched recvmmsg/sendmmsg sockets; the default on
 * Linux — measured faster, see docs/performance.md) or 'dgram' (node:dgram; the default where the
 * addon cannot load); undefined or '' picks the default. Throws RangeError for any other kind.
 * `options` (local addresses, buffer size) go to whichever is chosen.
 */
export function defaultBind(kind?: string, options: SocketBindOptions = {}): Bind {
  if (kind === 'native') return new NativeBind(options);
  if (kind === 'native-nogso') return new NativeBind({ ...options, gso: false, gro: false }); // A/B of UDP GSO/GRO
  if (kind === 'native-nogro') return new NativeBind({ ...options, gro: false });
  if (kind === 'dgram') return new UdpBind(options);
  if (kind !== undefined && kind !== '') {
    throw new RangeError(`expected a bind kind 'native', 'native-nogso' or 'dgram' (PLEXD_BIND), got ${JSON.stringify(kind)}`);
  }
  return nativeAvailable() ? new NativeBind(options) : new UdpBind(options);
}

function nativeAvailable(): boolean {
  try {
    loadNativeAddon('udp');
    return true;
  } catch {
    return false;
  }
}
