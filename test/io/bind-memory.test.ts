// MemoryNetwork / MemoryBind: binds find each other by address:port; filters drop or rewrite.
import { describe, expect, it } from 'vitest';
import { MemoryNetwork, type MemoryDatagram } from '../../src/io/bind-memory.js';
import type { Endpoint } from '../../src/io/bind.js';

function inbox(bind: { onReceive(h: (d: Uint8Array, f: Endpoint) => void): void }): Array<{ data: number[]; from: Endpoint }> {
  const got: Array<{ data: number[]; from: Endpoint }> = [];
  bind.onReceive((data, from) => got.push({ data: [...data], from: { address: from.address, port: from.port } }));
  return got;
}

describe('MemoryNetwork', () => {
  it('delivers between binds over IPv4 and IPv6 with the right source', async () => {
    const net = new MemoryNetwork();
    const a = net.createBind(['10.0.0.1', 'fd00::1']);
    const b = net.createBind(['10.0.0.2', 'fd00:0:0::2']);
    const pa = await a.open(0);
    const pb = await b.open(51820);
    expect(pa).toBeGreaterThanOrEqual(49152);
    const got = inbox(b);
    const data = new Uint8Array([1, 2, 3]);
    expect(a.send(data, { address: '10.0.0.2', port: pb })).toBe('sent');
    data[0] = 9; // the network copied it
    expect(a.send(data, { address: 'fd00::2', port: pb })).toBe('sent');
    await Promise.resolve();
    expect(got).toEqual([
      { data: [1, 2, 3], from: { address: '10.0.0.1', port: pa } },
      { data: [9, 2, 3], from: { address: 'fd00::1', port: pa } },
    ]);
    expect(net.stats.delivered).toBe(2);
  });

  it('manual delivery, unreachable destinations and closed binds', async () => {
    const net = new MemoryNetwork({ delivery: 'manual' });
    const a = net.createBind(['10.0.0.1']);
    const b = net.createBind(['10.0.0.2']);
    await a.open(1000);
    await b.open(2000);
    const got = inbox(b);
    a.send(new Uint8Array([1]), { address: '10.0.0.2', port: 2000 });
    a.send(new Uint8Array([2]), { address: '10.0.0.3', port: 2000 });
    expect(net.pendingCount).toBe(2);
    b.close();
    expect(net.deliver()).toBe(0);
    expect(got).toEqual([]);
    expect(net.stats.unreachable).toBe(2);
    // No IPv6 address on a: nothing to send from.
    expect(a.send(new Uint8Array([1]), { address: 'fd00::2', port: 2000 })).toBe('dropped');
    expect(b.send(new Uint8Array([1]), { address: '10.0.0.1', port: 1000 })).toBe('dropped');
    expect(a.send(new Uint8Array([1]), { address: '10.0.0.2', port: 0 })).toBe('dropped');
    expect(a.stats.txDropped).toBe(2);
  });

  it('rejects a taken port and rebinds keeping the handler', async () => {
    const net = new MemoryNetwork();
    const a = net.createBind(['10.0.0.1']);
    const b = net.createBind(['10.0.0.1']);
    await a.open(1000);
    await expect(b.open(1000)).rejects.toMatchObject({ code: 'ERR_BIND_IN_USE' });
    expect(() => a.open(1)).toThrow(TypeError);
    const c = net.createBind(['10.0.0.9']);
    await c.open(3000);
    const got = inbox(a);
    expect(await a.rebind(1001)).toBe(1001);
    expect(await a.rebind(1001)).toBe(1001);
    c.send(new Uint8Array([5]), { address: '10.0.0.1', port: 1001 });
    c.send(new Uint8Array([6]), { address: '10.0.0.1', port: 1000 });
    await Promise.resolve();
    expect(got.map((g) => g.data)).toEqual([[5]]);
    await b.open(1000); // the old port was released
  });

  it('filter drops and rewrites (loss, NAT)', async () => {
    const net = new MemoryNetwork();
    const inside = net.createBind(['192.168.1.2']);
    const server = net.createBind(['198.51.100.1']);
    await inside.open(5000);
    await server.open(51820);
    const got = inbox(server);
    let n = 0;
    net.setFilter((d: MemoryDatagram) => {
      n++;
      if (n === 2) return null; // lose the second datagram
      if (d.from.address === '192.168.1.2') return { ...d, from: { address: '203.0.113.7', port: 40000 } };
      return d;
    });
    for (let i = 0; i < 3; i++) inside.send(new Uint8Array([i]), { address: '198.51.100.1', port: 51820 });
    await Promise.resolve();
    expect(got).toEqual([
      { data: [0], from: { address: '203.0.113.7', port: 40000 } },
      { data: [2], from: { address: '203.0.113.7', port: 40000 } },
    ]);
    expect(net.stats.filtered).toBe(1);
    net.setFilter(undefined);
  });

  it('stops a ping-pong loop at the delivery limit', async () => {
    const net = new MemoryNetwork({ delivery: 'manual' });
    const a = net.createBind(['10.0.0.1']);
    const b = net.createBind(['10.0.0.2']);
    await a.open(1);
    await b.open(2);
    a.onReceive((d, from) => a.send(d, from));
    b.onReceive((d, from) => b.send(d, from));
    a.send(new Uint8Array([0]), { address: '10.0.0.2', port: 2 });
    expect(net.deliver(50)).toBe(50);
    expect(net.pendingCount).toBe(1);
  });

  it('validates arguments', () => {
    const net = new MemoryNetwork();
    expect(() => net.createBind([])).toThrow(TypeError);
    const a = net.createBind(['10.0.0.1']);
    expect(() => a.open(70000)).toThrow(RangeError);
    expect(() => a.setFwmark(-1)).toThrow(RangeError);
    expect(a.setFwmark(51820)).toBe(true);
    expect(a.fwmark).toBe(51820);
  });
});
