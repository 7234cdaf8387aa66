// Chooses the UDP transport a Device gets when the caller gives none: PLEXD_BIND=native|dgram.

import type { Bind, SocketBindOptions } from './bind.js';
import { NativeBind } from './bind-native.js';
import { UdpBind } from './bind-udp.js';
import { loadNativeAddon } from './native.js';

/**
 * A new Bind per `PLEXD_BIND`: 'native' (the addon's batched recvmmsg/sendmmsg sockets; the
 * default on Linux — measured faster, see docs/performance.md) or 'dgram' (node:dgram; the
 * default where the addon cannot load). Throws RangeError for any other value. `options` (local
 * addresses, buffer size) go to whichever is chosen.
 */
export function defaultBind(env: string | undefined = process.env['PLEXD_BIND'], options: SocketBindOptions = {}): Bind {
  if (env === 'native') return new NativeBind(options);
  if (env === 'dgram') return new UdpBind(options);
  if (env !== undefined && env !== '') {
    throw new RangeError(`expected PLEXD_BIND to be 'native' or 'dgram', got ${JSON.stringify(env)}`);
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
