// Loads the native addon (native/addon.cc with tun.cc and udp.cc) once, lazily: a source build
// (node-gyp's build/Release/plexd_native.node) or the prebuilt the package ships for this platform
// (prebuilds/linux-x64|linux-arm64, scripts/prebuild.sh). The only place that knows where the .node
// file lives (addonCandidates); a failure names the feature that needed it and what to do.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
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
    offload?: boolean,
  ): { handle: object; name: string; offloads?: number };
  /** writev per entry of spec ([iovCount, off, len, ...] into buf); result = [written, dropped, errors, errno]. */
  writeBatch(handle: object, buf: Uint8Array, spec: Uint32Array, count: number, result: Int32Array): void;
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
  udpOpen(v4: string | null, v6: string | null, port: number, bufferBytes: number, arrays: UdpArrays): { handle: object; port: number; v4: boolean; v6: boolean; gso?: boolean; gro?: boolean };
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
  /** UDP GSO on send where the kernel has it (default true). */
  readonly gso?: boolean;
  /** UDP GRO on receive on kernels 5.12+ (default true); rxMeta/rxAddr then hold more entries than maxBatch. */
  readonly gro?: boolean;
}

/**
 * What the addon is loaded for, which decides the error when it cannot be: 'tun' (a TUN device:
 * TunError ERR_TUN_UNSUPPORTED) or 'udp' (the batched UDP bind and socket options: BindError
 * ERR_BIND_FAILED, with the node:dgram bind as the way out).
 */
export type NativeFeature = 'tun' | 'udp';

/** Where a loaded addon came from: node-gyp's build of native/ here, a shipped prebuilt, or the
 *  asset of the standalone binary (unpacked to a private cache, src/io/sea.ts). */
export type AddonOrigin = 'source' | 'prebuilt' | 'standalone';

/** One place the addon may be loaded from (see addonCandidates). */
export interface AddonCandidate {
  readonly origin: AddonOrigin;
  /** Absolute path of the .node file. */
  readonly path: string;
}

/** Which addon this process uses (nativeAddonStatus); 'none' with why not. */
export type AddonStatus = AddonCandidate | { readonly origin: 'none'; readonly reason: string };

const ADDON_NAME = 'plexd_native.node';
/** The asset name of the addon in the standalone binary (scripts/build-binary.mjs). */
const SEA_ADDON_ASSET = 'plexd_native.node';

// src/io (tests) and dist/io (the built package) both sit two levels below the package root, where
// node-gyp puts build/ and the package keeps prebuilds/.
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const REBUILD = 'build it with `npm rebuild plexd-userspace` (needs g++, make and python3)';
const NO_TUN = 'or run without a TUN: the agent\'s packet-callback mode (wireguard.packet_callback: true) or the library\'s Device onPacket';

/**
 * The places the addon is looked for under package root `root`, in the order tried: the source
 * build first (a developer's `node-gyp rebuild` wins over what ships), then the prebuilt for
 * `platform`-`arch`. A further source (say, an asset of a single executable) is one more entry.
 */
export function addonCandidates(root: string = PACKAGE_ROOT, platform: string = process.platform, arch: string = process.arch): AddonCandidate[] {
  return [
    { origin: 'source', path: join(root, 'build', 'Release', ADDON_NAME) },
    { origin: 'prebuilt', path: join(root, 'prebuilds', `${platform}-${arch}`, ADDON_NAME) },
  ];
}

/**
 * Tries `candidates` in order with `load` (require of a path); the first that loads wins. Else
 * the reasons, one per candidate ("build/Release/plexd_native.node: absent" or its load error).
 */
export function chooseAddon(
  candidates: readonly AddonCandidate[],
  load: (path: string) => unknown,
  exists: (path: string) => boolean = existsSync,
  root: string = PACKAGE_ROOT,
): { readonly addon: NativeAddon; readonly from: AddonCandidate } | { readonly failures: string[]; readonly cause?: unknown } {
  const failures: string[] = [];
  let cause: unknown;
  for (const c of candidates) {
    const shown = c.path.startsWith(root) ? relative(root, c.path) : c.path;
    if (!exists(c.path)) {
      failures.push(`${shown}: absent`);
      continue;
    }
    try {
      return { addon: load(c.path) as NativeAddon, from: c };
    } catch (err) {
      cause ??= err;
      failures.push(`${shown}: ${firstLine(err)}`);
    }
  }
  return { failures, cause };
}

let loaded: { readonly addon: NativeAddon; readonly from: AddonCandidate } | undefined;
let failure: { readonly why: string; readonly fixes: string[]; readonly cause?: unknown } | undefined;

// Loads the addon once; remembers the failure (a .node that did not load will not on a retry).
function tryLoad(): void {
  if (loaded !== undefined || failure !== undefined) return;
  if (process.platform !== 'linux') {
    failure = { why: `needs Linux, not ${process.platform}`, fixes: [] };
    return;
  }
  if (isStandaloneBinary()) {
    // The binary carries its own addon; the package's build/ and prebuilds/ are not there.
    try {
      loaded = { addon: loadStandaloneAddon(SEA_ADDON_ASSET) as NativeAddon, from: { origin: 'standalone', path: `asset:${SEA_ADDON_ASSET}` } };
    } catch (err) {
      failure = { why: `needs the native addon, which the standalone binary carries but could not load (${firstLine(err)})`, fixes: [], cause: err };
    }
    return;
  }
  const result = chooseAddon(addonCandidates(), createRequire(import.meta.url));
  if ('addon' in result) loaded = result;
  else failure = { why: `needs the native addon ${ADDON_NAME}, and none loads for ${process.platform}-${process.arch} (${result.failures.join('; ')})`, fixes: [REBUILD], cause: result.cause };
}

/**
 * The addon, loaded on first use. Throws, when it is unavailable (not Linux, no prebuilt for this
 * platform and no source build, or neither loads), the error of `feature`: TunError
 * ERR_TUN_UNSUPPORTED for 'tun', BindError ERR_BIND_FAILED for 'udp'.
 */
export function loadNativeAddon(feature: NativeFeature): NativeAddon {
  tryLoad();
  if (loaded !== undefined) return loaded.addon;
  throw unavailableError(feature, failure!.why, failure!.fixes, failure!.cause);
}

/** Which addon this process uses, loading it if not yet tried; never throws (for --version). */
export function nativeAddonStatus(): AddonStatus {
  tryLoad();
  return loaded?.from ?? { origin: 'none', reason: failure!.why };
}

/**
 * The error for `feature` when the addon is unavailable for reason `why` (after "a TUN device" or
 * "the batched UDP bind"), naming `fixes` and the way around it: no TUN (packet-callback mode) for
 * 'tun', the node:dgram bind for 'udp'. Internal to src/io (exported for its tests).
 */
export function unavailableError(feature: NativeFeature, why: string, fixes: readonly string[], cause?: unknown): Error {
  if (feature === 'tun') return new TunError('ERR_TUN_UNSUPPORTED', [`a TUN device ${why}`, ...fixes, NO_TUN].join('; '), { cause });
  const ways = [...fixes, 'use the node:dgram bind (PLEXD_BIND=dgram)'].join(', or ');
  return new BindError('ERR_BIND_FAILED', `the batched UDP bind ${why}; ${ways}`, { cause });
}

// An error's first line (dlopen errors are one line; require's MODULE_NOT_FOUND adds a stack list).
function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n', 1)[0]!;
}
