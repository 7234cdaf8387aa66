// MemoryTun: the shared Tun contract (test/helpers/tun-contract.ts, also run against the Linux
// TUN in test/netns/tun.test.ts), then what only the twin has: microtask or manual delivery,
// copies, write capacity, simulated deletion.
import { describe, expect, it } from 'vitest';
import { MemoryTun } from '../../src/io/tun-memory.js';
import type { TunCloseReason } from '../../src/io/tun.js';
import { tunContract, udpPacket } from '../helpers/tun-contract.js';

tunContract('MemoryTun', () => ({
  create: async (options = {}) => {
    const tun = new MemoryTun(options);
    return {
      tun,
      injectUdp: async (count) => {
        for (let i = 0; i < count; i++) tun.inject(udpPacket(29));
      },
      delete: async () => tun.simulateDelete(),
    };
  },
}));

function packet(len: number, fill: number): Uint8Array {
  return new Uint8Array(len).fill(fill);
}

function collect(tun: MemoryTun): Uint8Array[][] {
  const batches: Uint8Array[][] = [];
  tun.onPackets((buf, offsets, count) => {
    const batch: Uint8Array[] = [];
    for (let i = 0; i < count; i++) batch.push(buf.slice(offsets[i], offsets[i + 1]));
    batches.push(batch);
  });
  return batches;
}

describe('MemoryTun', () => {
  it('delivers packets injected in one tick as one batch on a microtask', async () => {
    const tun = new MemoryTun();
    const batches = collect(tun);
    tun.inject(packet(20, 1));
    tun.inject(packet(1420, 2));
    tun.inject(packet(1, 3));
    expect(batches).toHaveLength(0);
    await Promise.resolve();
    expect(batches).toHaveLength(1);
    expect(batches[0]!.map((p) => [p.length, p[0]])).toEqual([[20, 1], [1420, 2], [1, 3]]);
    expect(tun.stats).toMatchObject({ rxPackets: 3, rxBatches: 1 });
  });

  it('splits into batches of batchSize and by buffer space, in manual mode only on flush()', () => {
    const tun = new MemoryTun({ batchSize: 4, delivery: 'manual' });
    const batches = collect(tun);
    for (let i = 0; i < 10; i++) tun.inject(packet(100 + i, i));
    expect(tun.pendingCount).toBe(10);
    expect(tun.flush()).toBe(10);
    expect(batches.map((b) => b.length)).toEqual([4, 4, 2]);
    expect(batches.flat().map((p) => p[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Maximal packets: the buffer holds batchSize * 2048 + 65535 bytes, so one per batch here.
    for (let i = 0; i < 3; i++) tun.inject(packet(65535, i));
    tun.flush();
    expect(batches.slice(3).map((b) => b.length)).toEqual([1, 1, 1]);
  });

  it('copies injected packets and collects writes as copies', () => {
    const tun = new MemoryTun({ delivery: 'manual' });
    const p = packet(10, 7);
    tun.inject(p);
    p.fill(0);
    const seen: number[] = [];
    tun.onPackets((buf, offsets) => seen.push(buf[offsets[0]!]!));
    tun.flush();
    expect(seen).toEqual([7]);
    const out = packet(30, 0x69);
    expect(tun.write(out, 10, 5)).toBe(true);
    out.fill(0);
    expect(tun.takeWritten()).toEqual([packet(5, 0x69)]);
    expect(tun.takeWritten()).toEqual([]);
  });

  it('drops writes beyond writeCapacity (as the kernel when its queue is full: EAGAIN)', () => {
    const tun = new MemoryTun({ writeCapacity: 1, mtu: 100 });
    expect(tun.write(packet(101, 0x45))).toBe(true);
    expect(tun.write(packet(10, 0x45))).toBe(false);
    tun.takeWritten();
    expect(tun.write(packet(10, 0x60))).toBe(true);
    tun.close();
    expect(tun.write(packet(10, 0x45))).toBe(false);
    expect(tun.stats).toMatchObject({ txPackets: 2, txDropped: 1, txErrors: 1 });
  });

  it('reports deletion once and stops delivering', async () => {
    const tun = new MemoryTun();
    const reasons: TunCloseReason[] = [];
    tun.onClose((r) => reasons.push(r));
    const batches = collect(tun);
    tun.inject(packet(10, 1));
    tun.simulateDelete();
    tun.close();
    await Promise.resolve();
    expect(batches).toHaveLength(0);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]!.kind).toBe('deleted');
    expect(reasons[0]!.kind === 'deleted' && reasons[0]!.error.code).toBe('ERR_TUN_CLOSED');
    expect(tun.closed).toBe(true);
    expect(() => tun.mtu).toThrow(/closed/);
  });

  it('validates arguments', () => {
    const tun = new MemoryTun();
    expect(() => tun.write(packet(10, 1), 5, 6)).toThrow(RangeError);
    expect(() => tun.write('x' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => tun.inject(new Uint8Array(0))).toThrow(RangeError);
    expect(() => tun.setMtu(70000)).toThrow(RangeError);
    expect(() => new MemoryTun({ batchSize: 0 })).toThrow(/expected batchSize/);
    expect(() => tun.onPackets(null as never)).toThrow(TypeError);
    tun.setMtu(1280);
    expect(tun.mtu).toBe(1280);
  });
});
