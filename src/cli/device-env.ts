// The environment every Device the binary creates honours (main.ts usage text), turned into
// Device options here at the edge: PLEXD_CRYPTO=node|noble, PLEXD_BIND=native|dgram and
// PLEXD_TUN_OFFLOAD=0 (plain TUN packets, no IFF_VNET_HDR offloads; for A/B and odd kernels). Library
// code (device/, io/, agent/) takes the options and reads no environment itself.

import type { CryptoProvider } from '../core/crypto.js';
import { defaultCrypto } from '../device/device.js';

/** What PLEXD_CRYPTO and PLEXD_BIND choose. */
export interface DeviceEnvChoices {
  /** PLEXD_CRYPTO's provider (node:crypto when unset). */
  readonly crypto: CryptoProvider;
  /** PLEXD_BIND's bind kind for defaultBind (undefined when unset: the platform's default). */
  readonly bindKind: string | undefined;
  /** False when PLEXD_TUN_OFFLOAD=0: open the TUN without offloads. */
  readonly tunOffload: boolean;
}

/** Reads PLEXD_CRYPTO, PLEXD_BIND and PLEXD_TUN_OFFLOAD from `env`. Throws RangeError for an unknown crypto name. */
export function deviceChoicesFromEnv(env: Readonly<Record<string, string | undefined>>): DeviceEnvChoices {
  return { crypto: defaultCrypto(env['PLEXD_CRYPTO']), bindKind: env['PLEXD_BIND'] || undefined, tunOffload: env['PLEXD_TUN_OFFLOAD'] !== '0' };
}
