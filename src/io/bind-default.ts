// Chooses the UDP transport a Device gets when the caller gives none: PLEXD_BIND=native|dgram.

import type { Bind } from './bind.js';
import { NativeBind } from './bind-native.js';
import { UdpBind } from './bind-udp.js';

/**
 * A new Bind per `PLEXD_BIND`: 'dgram' (node:dgram, the default) or 'native' (the addon's
 * batched recvmmsg/sendmmsg sockets, Linux). Throws RangeError for any other value.
 */
export function defaultBind(env: string | undefined = process.env['PLEXD_BIND']): Bind {
  if (env === undefined || env === '' || env === 'dgram') return new UdpBind();
  if (env === 'native') return new NativeBind();
  throw new RangeError(`expected PLEXD_BIND to be 'native' or 'dgram', got ${JSON.stringify(env)}`);
}
