// LinuxTun argument checks that run before the kernel is touched (no root needed), and the
// addon being built by `npm ci`.
import { describe, expect, it, vi } from 'vitest';
import { checkInterfaceName, openTun } from '../../src/io/tun-linux.js';
import { loadNativeAddon } from '../../src/io/native.js';

if (process.platform !== 'linux') console.warn(`[skip] tun-linux: the native addon check needs Linux (platform ${process.platform})`);

describe('LinuxTun without the kernel', () => {
  it('checks names like the kernel: at most 15 bytes, no / : or whitespace', () => {
    for (const ok of ['', 'wg0', 'x'.repeat(15), 'plexd-0.1_a']) expect(() => checkInterfaceName(ok)).not.toThrow();
    expect(() => checkInterfaceName('x'.repeat(16))).toThrow(expect.objectContaining({ name: 'TunError', code: 'ERR_TUN_NAME_TOO_LONG' }));
    // 8 two-byte characters are 16 bytes.
    expect(() => checkInterfaceName('é'.repeat(8))).toThrow(expect.objectContaining({ code: 'ERR_TUN_NAME_TOO_LONG' }));
    for (const bad of ['a/b', 'a:1', 'a b', '.', '..', 'tab\t']) {
      expect(() => checkInterfaceName(bad)).toThrow(expect.objectContaining({ code: 'ERR_TUN_NAME_INVALID' }));
    }
    expect(() => checkInterfaceName(7 as unknown as string)).toThrow(TypeError);
  });

  it('rejects a bad batch size before opening anything', () => {
    expect(() => openTun({ name: 'wg0', batchSize: 0 })).toThrow(RangeError);
    expect(() => openTun({ name: 'wg0', batchSize: 1.5 })).toThrow(/expected batchSize/);
  });

  it.skipIf(process.platform !== 'linux')('has the native addon (the prebuilt or a source build)', () => {
    const addon = loadNativeAddon('tun');
    for (const fn of ['open', 'write', 'getMtu', 'setMtu', 'name', 'close', 'setSocketMark', 'forceSocketBuffers'] as const) {
      expect(typeof addon[fn]).toBe('function');
    }
    for (const fn of ['udpOpen', 'udpFlush', 'udpSetMark', 'udpBufferSizes', 'udpClose'] as const) {
      expect(typeof addon[fn]).toBe('function');
    }
    expect(loadNativeAddon('udp')).toBe(addon);
  });
});

describe('loadNativeAddon where the addon cannot work', () => {
  it('names the feature and the way out: TunError for a TUN, BindError (dgram bind) for UDP', async () => {
    const platform = Object.getOwnPropertyDescriptor(process, 'platform')!;
    Object.defineProperty(process, 'platform', { value: 'darwin' });
    try {
      vi.resetModules();
      const { loadNativeAddon: fresh } = await import('../../src/io/native.js');
      expect(() => fresh('tun')).toThrow(expect.objectContaining({ name: 'TunError', code: 'ERR_TUN_UNSUPPORTED', message: "a TUN device needs Linux, not darwin; or run without a TUN: the agent's packet-callback mode (wireguard.packet_callback: true) or the library's Device onPacket" }));
      expect(() => fresh('udp')).toThrow(expect.objectContaining({
        name: 'BindError',
        code: 'ERR_BIND_FAILED',
        message: 'the batched UDP bind needs Linux, not darwin; use the node:dgram bind (PLEXD_BIND=dgram)',
      }));
    } finally {
      Object.defineProperty(process, 'platform', platform);
      vi.resetModules();
    }
  });
});
