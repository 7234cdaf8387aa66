// Loads the native addon (native/tun.cc, built by node-gyp into build/Release) once, lazily.
// The only place that knows where the .node file lives.

import { createRequire } from 'node:module';
import { TunError } from './errors.js';

/** The addon's raw surface; see native/tun.cc. Internal to src/io. */
export interface TunAddon {
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

// src/io (tests) and dist/io (the built package) both sit two levels below the package root,
// where node-gyp puts build/.
const ADDON_PATH = '../../build/Release/plexd_tun.node';

let addon: TunAddon | undefined;
let loadError: unknown;

/** The addon, or throws TunError ERR_TUN_UNSUPPORTED (not Linux, or not built: run `npm rebuild`). */
export function loadTunAddon(): TunAddon {
  if (addon !== undefined) return addon;
  if (process.platform !== 'linux') {
    throw new TunError('ERR_TUN_UNSUPPORTED', `TUN devices are only supported on Linux, not ${process.platform}`);
  }
  if (loadError === undefined) {
    try {
      addon = createRequire(import.meta.url)(ADDON_PATH) as TunAddon;
      return addon;
    } catch (err) {
      loadError = err;
    }
  }
  throw new TunError(
    'ERR_TUN_UNSUPPORTED',
    'the native TUN addon is not built (build/Release/plexd_tun.node); run `npm rebuild plexd-userspace` with g++ and Node headers installed',
    { cause: loadError },
  );
}
