// NativeBind beyond the shared Bind contract (bind-udp.test.ts runs that for both binds):
// batched receive, endpoint caching, big and oversized datagrams, hostile destinations, fwmark,
// PLEXD_BIND, and two Devices talking over it. Loopback only.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Device } from '../../src/device/device.js';
import { defaultBind } from '../../src/io/bind-default.js';
import { NativeBind, type NativeBindOptions } from '../../src/io/bind-native.js';
import { UdpBind } from '../../src/io/bind-udp.js';
import type { Endpoint } from '../../src/io/bind.js';
import { ipPacket } from '../helpers/ip-packet.js';
import { loopbackBinds } from '../helpers/loopback-binds.js';
import { waitFor } from '../helpers/wait.js';

const open: Array<NativeBind | Device> = [];
afterEach(async () => {
  for (const x of open.splice(0)) await x.close();
});

const { bind: loopbackBind, openedPair } = loopbackBinds((o: NativeBindOptions) => new NativeBind(o), open);

if (process.getuid?.() !== 0) console.warn('[skip] bind-native fwmark: setting SO_MARK needs root (netns tier covers it)');

describe('NativeBind', () => {
  it('UDP GSO/GRO: trains of equal-size datagrams (a shorter last one) arrive as the same datagrams, in order', async () => {
    for (const [sendOpts, recvOpts] of [[{}, {}], [{}, { gro: false }], [{ gso: false }, {}]] as const) {
      const [, a] = await openedPair({ ...sendOpts, batchSize: 64 });
      const [, b] = await openedPair({ ...recvOpts, batchSize: 64 });
      const [, c] = await openedPair({ ...recvOpts, batchSize: 64 });
      if (process.platform === 'linux') {
        expect(a.offloads.gso).toBe(sendOpts.gso !== false);
        expect(c.offloads.gro).toBe(recvOpts.gro !== false);
        expect(b.offloads.gro).toBe(recvOpts.gro !== false);
      }
      const seen = new Map<NativeBind, string[]>([[b, []], [c, []]]);
      b.onReceiveBatch((data) => seen.get(b)!.push(Buffer.from(data).toString('hex')), () => {});
      c.onReceiveBatch((data) => seen.get(c)!.push(Buffer.from(data).toString('hex')), () => {});
      const want = new Map<NativeBind, string[]>([[b, []], [c, []]]);
      // Trains of 1..70 datagrams of 1..1500 bytes, to b and c in turn (one flush).
      let k = 0;
      for (let train = 0; train < 6; train++) {
        const to = train % 2 === 0 ? b : c;
        const size = 1 + ((train * 337) % 1500);
        const count = [1, 70, 5, 45, 2, 30][train]!;
        for (let i = 0; i < count; i++) {
          const d = randomBytes(i === count - 1 && count > 1 ? Math.max(1, size >> 1) : size);
          d[0] = k++ & 0xff;
          want.get(to)!.push(d.toString('hex'));
          expect(a.send(d, { address: '127.0.0.1', port: to.port })).toBe('sent');
        }
      }
      await waitFor(() => seen.get(b)!.length === want.get(b)!.length && seen.get(c)!.length === want.get(c)!.length, 3000, 5);
      expect(seen.get(b)).toEqual(want.get(b));
      expect(seen.get(c)).toEqual(want.get(c));
      expect(a.stats.txDropped).toBe(0);
    }
  });

  it('drains many datagrams per wakeup and hands out one cached Endpoint per source', async () => {
    const [a, b] = await openedPair({ batchSize: 16 });
    const seen: number[] = [];
    const sources = new Set<Endpoint>();
    let batches = 0;
    b.onReceiveBatch(
      (data, from) => {
        seen.push(data[0]! | (data[1]! << 8));
        sources.add(from);
      },
      () => batches++,
    );
    const N = 600;
    for (let i = 0; i < N; i++) {
      expect(a.send(new Uint8Array([i & 0xff, i >> 8, 0, 0]), { address: i % 2 === 0 ? '127.0.0.1' : '::1', port: b.port })).toBe('sent');
    }
    await waitFor(() => seen.length === N, 3000, 5);
    expect(seen.length).toBe(N);
    // Per family, order is kept; every datagram arrived once.
    expect(seen.filter((v) => v % 2 === 0)).toEqual(Array.from({ length: N / 2 }, (_, i) => 2 * i));
    expect(new Set(seen).size).toBe(N);
    expect(batches).toBeLessThan(N / 4);
    expect([...sources].map((e) => `${e.address} ${e.port}`).sort()).toEqual([`127.0.0.1 ${a.port}`, `::1 ${a.port}`]);
    expect(a.stats).toMatchObject({ txPackets: N, txBytes: 4 * N, txDropped: 0 });
    expect(b.stats).toMatchObject({ rxPackets: N, rxBytes: 4 * N });
    // An endpoint handed out by the bind is immutable and sends back without parsing.
    const [from] = sources;
    expect(Object.isFrozen(from)).toBe(true);
  });

  it('onReceive gets a copy the handler may keep; onReceiveBatch a view into the batch buffer', async () => {
    const [a, b] = await openedPair();
    const kept: Uint8Array[] = [];
    b.onReceive((data) => kept.push(data));
    for (let i = 0; i < 3; i++) a.send(new Uint8Array([i, i, i]), { address: '127.0.0.1', port: b.port });
    await waitFor(() => kept.length === 3, 3000, 5);
    a.send(new Uint8Array([9, 9, 9]), { address: '127.0.0.1', port: b.port });
    await waitFor(() => kept.length === 4, 3000, 5);
    expect(kept.map((d) => [...d])).toEqual([[0, 0, 0], [1, 1, 1], [2, 2, 2], [9, 9, 9]]);
    const views: Uint8Array[] = [];
    b.onReceiveBatch((data) => views.push(data), () => {});
    a.send(new Uint8Array([5]), { address: '127.0.0.1', port: b.port });
    await waitFor(() => views.length === 1, 3000, 5);
    expect(views[0]!.buffer.byteLength).toBeGreaterThan(65536);
    expect(() => b.onReceiveBatch(() => {}, 1 as unknown as () => void)).toThrow(TypeError);
  });

  it('carries the largest datagrams; oversized ones are dropped and counted, never thrown', async () => {
    const [a, b] = await openedPair();
    const got: number[] = [];
    b.onReceive((data) => got.push(data.length));
    const big4 = randomBytes(65507); // the IPv4 maximum
    const big6 = randomBytes(65527); // IPv6 without jumbograms
    expect(a.send(big4, { address: '127.0.0.1', port: b.port })).toBe('sent');
    expect(a.send(big6, { address: '::1', port: b.port })).toBe('sent');
    expect(a.send(new Uint8Array(65508), { address: '127.0.0.1', port: b.port })).toBe('sent'); // kernel: EMSGSIZE
    expect(a.send(new Uint8Array(70000), { address: '127.0.0.1', port: b.port })).toBe('dropped');
    a.flush();
    await waitFor(() => got.length === 2, 3000, 5);
    expect(got.sort()).toEqual([65507, 65527]);
    expect(a.stats).toMatchObject({ txPackets: 2, txDropped: 2 });
  });

  it('hostile destinations: closed ports, bad endpoints, a closed bind', async () => {
    const [a, b] = await openedPair();
    const dead = loopbackBind();
    const deadPort = await dead.open(0);
    dead.close();
    for (let i = 0; i < 200; i++) expect(a.send(new Uint8Array([i]), { address: '127.0.0.1', port: deadPort })).toBe('sent');
    for (const bad of [{ address: 'not-an-ip', port: 9 }, { address: '999.1.1.1', port: 9 }, { address: '127.0.0.1', port: 0 }, { address: '::1', port: 70000 }]) {
      expect(a.send(new Uint8Array([1]), bad)).toBe('dropped');
    }
    await new Promise((r) => setTimeout(r, 20));
    // The ICMP port-unreachable replies leave the socket working.
    const got: number[] = [];
    a.onReceive((d) => got.push(d[0]!));
    b.send(new Uint8Array([42]), { address: '127.0.0.1', port: a.port });
    await waitFor(() => got.length === 1, 3000, 5);
    expect(got).toEqual([42]);
    expect(dead.send(new Uint8Array([1]), { address: '127.0.0.1', port: a.port })).toBe('dropped');
    expect(() => new NativeBind({ batchSize: 0 })).toThrow(RangeError);
    expect(() => new NativeBind({ socketBufferSize: -1 })).toThrow(RangeError);
  });

  it('port 0 on a machine-wide wildcard pair, and a taken port keeps the old sockets', async () => {
    const a = new NativeBind();
    open.push(a);
    const port = await a.open(0);
    expect(a.families.ipv4).toBe(true);
    const b = loopbackBind({ ipv6Address: null });
    await expect(b.open(port)).rejects.toMatchObject({ name: 'BindError', code: 'ERR_BIND_IN_USE', errno: 'EADDRINUSE' });
    await b.open(0);
    await expect(b.rebind(port)).rejects.toMatchObject({ code: 'ERR_BIND_IN_USE' });
    expect(b.port).not.toBe(port);
  });

  it.runIf(process.getuid?.() === 0)('applies fwmark (root) to the sockets, also after a rebind', async () => {
    const a = loopbackBind();
    await a.open(0);
    expect(a.setFwmark(0x2a)).toBe(true);
    await a.rebind(0);
    expect(a.fwmark).toBe(0x2a);
    expect(a.setFwmark(0)).toBe(true);
    const sizes = a.socketBufferSizes!;
    expect(sizes.recv).toBeGreaterThanOrEqual(7 * 1024 * 1024); // forced past rmem_max
  });

  it('PLEXD_BIND chooses the Device default', () => {
    expect(defaultBind(undefined)).toBeInstanceOf(process.platform === 'linux' ? NativeBind : UdpBind);
    expect(defaultBind('')).toBeInstanceOf(process.platform === 'linux' ? NativeBind : UdpBind);
    expect(defaultBind('dgram')).toBeInstanceOf(UdpBind);
    expect(defaultBind('native')).toBeInstanceOf(NativeBind);
    expect(() => defaultBind('io_uring')).toThrow(RangeError);
  });

  it('two Devices exchange data over it (batched receive path of the Device)', async () => {
    const got: Uint8Array[] = [];
    const a = await Device.create({ onPacket: () => {}, bind: new NativeBind({ ipv4Address: '127.0.0.1', ipv6Address: null }) });
    const b = await Device.create({ onPacket: (p) => got.push(p.slice()), bind: new NativeBind({ ipv4Address: '127.0.0.1', ipv6Address: null }) });
    open.push(a, b);
    await a.configure({ privateKey: randomBytes(32) });
    await b.configure({ privateKey: randomBytes(32) });
    await a.configure({ peers: [{ publicKey: b.publicKey!, endpoint: `127.0.0.1:${b.listenPort}`, allowedIps: ['192.168.0.2/32'] }] });
    await b.configure({ peers: [{ publicKey: a.publicKey!, allowedIps: ['192.168.0.1/32'] }] });
    const packets = Array.from({ length: 50 }, (_, i) => ipPacket('192.168.0.1', '192.168.0.2', new Uint8Array(1000).fill(i)));
    a.writePacket(packets[0]!);
    await waitFor(() => got.length === 1, 3000, 5);
    for (const p of packets.slice(1)) a.writePacket(p);
    await waitFor(() => got.length === packets.length, 3000, 5);
    expect(got.map((p) => Buffer.from(p).toString('hex'))).toEqual(packets.map((p) => Buffer.from(p).toString('hex')));
  });
});
