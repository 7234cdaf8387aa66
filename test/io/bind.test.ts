// The Bind contract (src/io/bind.ts) run against every implementation: the in-memory twin
// (MemoryBind on a MemoryNetwork), UdpBind over node:dgram and NativeBind over the addon. The
// socket binds use loopback only (127.0.0.1 and ::1); the twin gets the same addresses on a
// fresh virtual network per test. NativeBind-only behaviour: bind-native.test.ts; the twin's
// network (filters, manual delivery): bind-memory.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryNetwork } from '../../src/io/bind-memory.js';
import { NativeBind, type NativeBindOptions } from '../../src/io/bind-native.js';
import { UdpBind, type UdpBindOptions } from '../../src/io/bind-udp.js';
import { socketBindSettings, type Bind, type Endpoint } from '../../src/io/bind.js';
import { loopbackBinds } from '../helpers/loopback-binds.js';

/** A Bind with what the socket binds and the twin all report beyond the interface. */
type TestBind = Bind & { readonly families: { ipv4: boolean; ipv6: boolean } };
type TestBindOptions = UdpBindOptions & NativeBindOptions;

let network = new MemoryNetwork();

/** The twin takes the socket binds' options: one address per enabled family. */
function memoryBind(options: TestBindOptions): TestBind {
  const { ipv4Address, ipv6Address } = socketBindSettings(options);
  return network.createBind([ipv4Address, ipv6Address].filter((a): a is string => a !== null));
}

const IMPLEMENTATIONS: Array<[string, (o: TestBindOptions) => TestBind]> = [
  ['MemoryBind', memoryBind],
  ['UdpBind', (o) => new UdpBind(o)],
  ['NativeBind', (o) => new NativeBind(o)],
];

const open: TestBind[] = [];

afterEach(() => {
  for (const b of open.splice(0)) b.close();
  network = new MemoryNetwork();
});

function nextDatagram(bind: TestBind, timeoutMs = 2000): Promise<{ data: Uint8Array; from: Endpoint }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no datagram within timeout')), timeoutMs);
    bind.onReceive((data, from) => {
      clearTimeout(timer);
      resolve({ data, from: { address: from.address, port: from.port } });
    });
  });
}

describe.each(IMPLEMENTATIONS)('%s', (name, create) => {
  const { bind: loopbackBind, openedPair } = loopbackBinds(create, open);

  it('port 0 picks one free port shared by both families', async () => {
    const a = loopbackBind();
    expect(a.families).toEqual({ ipv4: false, ipv6: false });
    const port = await a.open(0);
    expect(port).toBeGreaterThan(0);
    expect(a.port).toBe(port);
    expect(a.families).toEqual({ ipv4: true, ipv6: true });
  });

  it('sends and receives over IPv4 and IPv6', async () => {
    const [a, b] = await openedPair();
    let got = nextDatagram(b);
    expect(a.send(new Uint8Array([1, 2, 3]), { address: '127.0.0.1', port: b.port })).toBe('sent');
    let d = await got;
    expect([...d.data]).toEqual([1, 2, 3]);
    expect(d.from).toEqual({ address: '127.0.0.1', port: a.port });
    got = nextDatagram(b);
    expect(a.send(new Uint8Array([4]), { address: '::1', port: b.port })).toBe('sent');
    d = await got;
    expect([...d.data]).toEqual([4]);
    expect(d.from).toEqual({ address: '::1', port: a.port });
    // IPv4-mapped IPv6 goes out over the IPv4 socket.
    got = nextDatagram(b);
    expect(a.send(new Uint8Array([5]), { address: '::ffff:127.0.0.1', port: b.port })).toBe('sent');
    d = await got;
    expect(d.from.address).toBe('127.0.0.1');
    expect(a.stats).toMatchObject({ txPackets: 3, txBytes: 5 });
    expect(b.stats).toMatchObject({ rxPackets: 3, rxBytes: 5 });
  });

  it('send returns before the bytes can change: the kernel has them', async () => {
    const [a, b] = await openedPair();
    const got = nextDatagram(b);
    const buf = new Uint8Array([7, 7, 7]);
    expect(a.send(buf, { address: '127.0.0.1', port: b.port })).toBe('sent');
    buf.fill(0);
    expect([...(await got).data]).toEqual([7, 7, 7]);
  });

  it('rebind moves to a new port and keeps the handler', async () => {
    const [a, b] = await openedPair();
    const seen: number[] = [];
    b.onReceive((data) => seen.push(data[0]!));
    const oldPort = b.port;
    const newPort = await b.rebind(0);
    expect(newPort).not.toBe(oldPort);
    expect(await b.rebind(newPort)).toBe(newPort);
    a.send(new Uint8Array([1]), { address: '127.0.0.1', port: oldPort });
    a.send(new Uint8Array([2]), { address: '::1', port: newPort });
    const deadline = Date.now() + 2000;
    while (seen.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toEqual([2]);
    // The old port is free again.
    const c = loopbackBind();
    expect(await c.open(oldPort)).toBe(oldPort);
  });

  it('a taken port is ERR_BIND_IN_USE and a failed rebind keeps the old sockets', async () => {
    const a = loopbackBind();
    const b = loopbackBind();
    const port = await a.open(0);
    await expect(b.open(port)).rejects.toMatchObject({ name: 'BindError', code: 'ERR_BIND_IN_USE', errno: 'EADDRINUSE' });
    expect(b.port).toBe(0);
    await b.open(0);
    const before = b.port;
    await expect(b.rebind(port)).rejects.toMatchObject({ code: 'ERR_BIND_IN_USE' });
    expect(b.port).toBe(before);
    const got = nextDatagram(b);
    a.send(new Uint8Array([9]), { address: '127.0.0.1', port: before });
    expect([...(await got).data]).toEqual([9]);
  });

  it('IPv4-only and IPv6-only binds drop the other family', async () => {
    const v4 = loopbackBind({ ipv6Address: null });
    const v6 = loopbackBind({ ipv4Address: null });
    await v4.open(0);
    await v6.open(0);
    expect(v4.families).toEqual({ ipv4: true, ipv6: false });
    expect(v4.send(new Uint8Array([1]), { address: '::1', port: v6.port })).toBe('dropped');
    expect(v6.send(new Uint8Array([1]), { address: '127.0.0.1', port: v4.port })).toBe('dropped');
    const got = nextDatagram(v6);
    expect(v6.send(new Uint8Array([1]), { address: '::1', port: v6.port })).toBe('sent');
    expect((await got).from.port).toBe(v6.port);
  });

  it('hostile and misuse: closed binds, closed destinations, bad endpoints', async () => {
    const [a, b] = await openedPair();
    const deadPort = b.port;
    b.close();
    b.close();
    // To a closed bind: nothing listens, nothing crashes.
    for (let i = 0; i < 20; i++) expect(a.send(new Uint8Array([i]), { address: '127.0.0.1', port: deadPort })).toBe('sent');
    expect(b.send(new Uint8Array([1]), { address: '127.0.0.1', port: a.port })).toBe('dropped');
    expect(a.send(new Uint8Array([1]), { address: '127.0.0.1', port: 0 })).toBe('dropped');
    expect(a.send(new Uint8Array([1]), { address: '::1', port: 70000 })).toBe('dropped');
    // Not an IP literal: the kernel refuses it; lost like any datagram, never thrown.
    a.send(new Uint8Array([1]), { address: 'not-an-ip', port: 9 });
    a.send(new Uint8Array([1]), { address: '999.1.1.1', port: 9 });
    await new Promise((r) => setTimeout(r, 20));
    expect(() => a.open(0)).toThrow(TypeError);
    expect(() => create({ ipv4Address: null, ipv6Address: null })).toThrow(TypeError);
    expect(() => a.rebind(-1)).toThrow(RangeError);
  });

  it('stores fwmark and refuses one outside uint32', async () => {
    const a = loopbackBind();
    await a.open(0);
    expect(() => a.setFwmark(2 ** 32)).toThrow(RangeError);
    expect(() => a.setFwmark(-1)).toThrow(RangeError);
    expect(a.fwmark).toBe(0);
  });

  // Kernel sockets only: the memory twin has no buffers to report (and no such property).
  if (name !== 'MemoryBind') {
    it('reports the socket buffer sizes the kernel granted', async () => {
      const a = loopbackBind() as UdpBind | NativeBind;
      await a.open(0);
      const sizes = a.socketBufferSizes!;
      expect(sizes.recv).toBeGreaterThan(0);
      expect(sizes.send).toBeGreaterThan(0);
    });
  }
});
