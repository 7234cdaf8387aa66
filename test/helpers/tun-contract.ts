// The Tun contract (src/io/tun.ts) as one suite, run against the in-memory twin
// (test/io/tun-memory.test.ts) and the Linux TUN in a namespace (test/netns/tun.test.ts), so the
// twin cannot drift from the kernel: batches packed back to back, what write() takes and
// refuses, MTU, close and deletion reported once.

import { describe, expect, it } from 'vitest';
import type { Tun, TunCloseReason } from '../../src/io/tun.js';
import { until } from './wait.js';

/** One Tun under test and its host side. */
export interface TunUnderTest {
  readonly tun: Tun;
  /**
   * Makes the host route `count` IPv4 UDP datagrams (one byte to port 9 of 10.77.0.2, 29 bytes
   * on the wire) into the TUN, all before the Tun's next read.
   */
  injectUdp(count: number): Promise<void>;
  /** Deletes the interface under the Tun (`ip link del`). */
  delete(): Promise<void>;
}

/** Creates Tuns for the suite; each is up, with room for at least `batchSize` per read. */
export interface TunHarness {
  create(options?: { batchSize?: number }): Promise<TunUnderTest>;
}

/** An IPv4 UDP packet 10.77.0.2:9 -> 10.77.0.1:9 of `length` bytes (>= 28); checksums zero. */
export function udpPacket(length: number): Uint8Array {
  const p = new Uint8Array(length);
  p[0] = 0x45;
  p[2] = length >> 8;
  p[3] = length & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set([10, 77, 0, 2], 12);
  p.set([10, 77, 0, 1], 16);
  p[21] = 9;
  p[23] = 9;
  p[24] = (length - 20) >> 8;
  p[25] = (length - 20) & 0xff;
  return p;
}

/** Registers the Tun contract tests for `harness` under describe(`name`). */
export function tunContract(name: string, harness: () => TunHarness): void {
  describe(`Tun contract: ${name}`, () => {
    it('hands host packets over in batches of at most batchSize, back to back', async () => {
      const { tun, injectUdp } = await harness().create({ batchSize: 64 });
      const sizes: number[] = [];
      let udp = 0;
      let contiguous = true;
      // A kernel interface may have read packets of its own (IPv6 router solicitations) already.
      const before = { ...tun.stats };
      tun.onPackets((buf, offsets, count) => {
        sizes.push(count);
        for (let i = 0; i < count; i++) {
          const start = offsets[i]!;
          const end = offsets[i + 1]!;
          if (end <= start) contiguous = false;
          // IPv4 UDP to port 9 with a one-byte payload: 20 + 8 + 1 bytes.
          if (buf[start]! >> 4 === 4 && buf[start + 9] === 17 && end - start === 29 && buf[start + 23] === 9) udp++;
        }
      });
      await injectUdp(200);
      await until('200 UDP packets from the TUN', 5000, () => udp >= 200, 5);
      expect(udp).toBe(200);
      expect(contiguous).toBe(true);
      expect(Math.max(...sizes)).toBe(64);
      expect(tun.stats.rxBatches - before.rxBatches).toBe(sizes.length);
      expect(tun.stats.rxPackets - before.rxPackets).toBe(sizes.reduce((a, b) => a + b, 0));
      expect(sizes.length).toBeLessThan(udp);
    });

    it('write takes IPv4/IPv6 packets, also beyond the MTU, and refuses empty or non-IP ones', async () => {
      const { tun } = await harness().create();
      tun.setMtu(1280);
      expect(tun.mtu).toBe(1280);
      const small = udpPacket(40);
      expect(tun.write(small)).toBe(true);
      // The MTU limits what the host sends; the kernel takes a larger packet from us.
      expect(tun.write(udpPacket(1400))).toBe(true);
      const framed = new Uint8Array(50);
      framed.set(small, 5);
      expect(tun.write(framed, 5, 40)).toBe(true);
      expect(tun.write(new Uint8Array(0))).toBe(false); // EINVAL
      expect(tun.write(new Uint8Array(30).fill(9))).toBe(false); // version 0: EINVAL
      expect(tun.write(small, 40, 0)).toBe(false);
      expect(tun.stats).toMatchObject({ txPackets: 3, txErrors: 3, txDropped: 0 });
    });

    it('checks its arguments: write range, MTU range, handlers', async () => {
      const { tun } = await harness().create();
      expect(() => tun.write(udpPacket(40), 30, 11)).toThrow(RangeError);
      expect(() => tun.write(udpPacket(40), -1)).toThrow(RangeError);
      expect(() => tun.write('x' as unknown as Uint8Array)).toThrow(TypeError);
      expect(() => tun.setMtu(67)).toThrow(RangeError);
      expect(() => tun.setMtu(65536)).toThrow(RangeError);
      expect(() => tun.onPackets(null as never)).toThrow(TypeError);
      expect(() => tun.onClose(undefined as never)).toThrow(TypeError);
      expect(tun.stats).toMatchObject({ txPackets: 0, txErrors: 0 });
    });

    it('close() reports kind closed once; afterwards writes are refused and mtu throws', async () => {
      const { tun } = await harness().create();
      const reasons: TunCloseReason[] = [];
      tun.onClose((r) => reasons.push(r));
      expect(tun.closed).toBe(false);
      tun.close();
      tun.close();
      expect(reasons).toEqual([{ kind: 'closed' }]);
      expect(tun.closed).toBe(true);
      expect(tun.write(udpPacket(40))).toBe(false);
      expect(tun.stats.txErrors).toBe(1);
      expect(() => tun.mtu).toThrow(expect.objectContaining({ name: 'TunError', code: 'ERR_TUN_CLOSED' }));
      expect(() => tun.setMtu(1280)).toThrow(expect.objectContaining({ code: 'ERR_TUN_CLOSED' }));
    });

    it('deletion of the interface reports kind deleted (ERR_TUN_CLOSED) once, and nothing after', async () => {
      const { tun, delete: remove } = await harness().create();
      const reasons: TunCloseReason[] = [];
      tun.onClose((r) => reasons.push(r));
      await remove();
      await until('the close event', 3000, () => reasons.length > 0, 5);
      const reason = reasons[0]!;
      expect(reason.kind).toBe('deleted');
      expect(reason.kind === 'deleted' && reason.error).toMatchObject({ name: 'TunError', code: 'ERR_TUN_CLOSED' });
      expect(tun.closed).toBe(true);
      expect(tun.write(udpPacket(40))).toBe(false);
      tun.close();
      expect(reasons).toHaveLength(1);
    });
  });
}
