// Loads the native addon (native/addon.cc with tun.cc and udp.cc, built by node-gyp into
// build/Release/plexd_native.node) once, lazily. The only place that knows where the .node file
// lives; a failure names the feature that needed it and what to do.

import { createRequire } from 'node:module';
import { BindError, TunError } from './errors.js';
import { isStandaloneBinary, loadStandaloneAddon } from './sea.js';

/** The addon's raw surface; see native/addon.cc, tun.cc, udp.cc. Internal to src/io. */
export interface NativeAddon {
  open(
    name: string,
    buf: ArrayBuffer,
    meta: Uint32Array,
    maxBatch: number,
    onBatch: (count: number) => void,
    onClosed: (errno: number) => void,
  ): { handle: object; name: string };
  /** Bytes written, or -errno (e.g. -11 EAGAIN). */
  write(handle: object, packet: Uint8Array, offset: number, length: number): number;
  getMtu(handle: object): number;
  setMtu(handle: object, mtu: number): void;
  name(handle: object): string;
  close(handle: object): void;
  // Socket options node:dgram lacks (native/addon.cc).
  setSocketMark(fd: number, mark: number): void;
  forceSocketBuffers(fd: number, bytes: number): void;
  // The batched UDP bind (native/udp.cc; wrapped by bind-native.ts).
  udpOpen(v4: string | null, v6: string | null, port: number, bufferBytes: number, arrays: UdpArrays): { handle: object; port: number; v4: boolean; v6: boolean };
  /** Sends tx entries [0, count); returns how many the kernel took. */
  udpFlush(handle: object, count: number): number;
  udpSetMark(handle: object, mark: number): void;
  udpBufferSizes(handle: object): [number, number];
  udpClose(handle: object): void;
}

/** The JS-owned buffers the native UDP bind reads into and sends from; see native/udp.cc. */
export interface UdpArrays {
  readonly rxBuf: Uint8Array;
  readonly slotSize: number;
  readonly rxMeta: Uint32Array;
  readonly rxAddr: Uint8Array;
  readonly maxBatch: number;
  readonly onBatch: (count: number) => void;
  readonly txBuf: Uint8Array;
  readonly txMeta: Uint32Array;
  readonly txAddr: Uint8Array;
  readonly maxTx: number;
}

/**
 * What the addon is loaded for, which decides the error when it cannot be: 'tun' (a TUN device:
 * TunError ERR_TUN_UNSUPPORTED) or 'udp' (the batched UDP bind and socket options: BindError
 * ERR_BIND_FAILED, with the node:dgram bind as the way out).
 */
export type NativeFeature = 'tun' | 'udp';

// src/io (tests) and dist/io (the built package) both sit two levels below the package root,
// where node-gyp puts build/.
const ADDON_FILE = 'build/Release/plexd_native.node';
const ADDON_PATH = `../../${ADDON_FILE}`;
/** The asset name of the addon in the standalone binary (scripts/build-binary.mjs). */
const SEA_ADDON_ASSET = 'plexd_native.node';
const REBUILD = 'run `npm rebuild plexd-userspace` (needs g++, make, python3 and the Node headers)';

let addon: NativeAddon | undefined;
let loadError: unknown;

/**
 * The addon, loaded on first use. Throws, when it is unavailable (not Linux, or not built), the
 * error of `feature`: TunError ERR_TUN_UNSUPPORTED for 'tun', BindError ERR_BIND_FAILED for 'udp'.
 */
export function loadNativeAddon(feature: NativeFeature): NativeAddon {
  if (addon !== undefined) return addon;
  if (process.platform !== 'linux') {
    throw unavailable(feature, `needs Linux, not ${process.platform}`, []);
  }
  if (loadError === undefined) {
    try {
      addon = loadFromStandaloneBinary() ?? (createRequire(import.meta.url)(ADDON_PATH) as NativeAddon);
      return addon;
    } catch (err) {
      loadError = err;
    }
  }
  if (isStandaloneBinary()) {
    const why = loadError instanceof Error ? loadError.message : String(loadError);
    throw unavailable(feature, `needs the native addon, which the standalone binary carries but could not load (${why})`, [], loadError);
  }
  throw unavailable(feature, `needs the native addon (${ADDON_FILE}), which is not built or does not load`, [REBUILD], loadError);
}

/** The addon carried by the standalone binary (unpacked to a private cache, src/io/sea.ts), or undefined outside one. */
function loadFromStandaloneBinary(): NativeAddon | undefined {
  return isStandaloneBinary() ? (loadStandaloneAddon(SEA_ADDON_ASSET) as NativeAddon) : undefined;
}

// The error for `feature`, saying why and the ways out (the dgram bind is one for UDP).
function unavailable(feature: NativeFeature, why: string, fixes: string[], cause?: unknown): Error {
  if (feature === 'tun') return new TunError('ERR_TUN_UNSUPPORTED', [`a TUN device ${why}`, ...fixes].join('; '), { cause });
  const ways = [...fixes, 'use the node:dgram bind (PLEXD_BIND=dgram)'].join(', or ');
  return new BindError('ERR_BIND_FAILED', `the batched UDP bind ${why}; ${ways}`, { cause });
}
