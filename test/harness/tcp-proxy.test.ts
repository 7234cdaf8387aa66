// The replica tests' TCP load balancer (test/helpers/tcp-proxy.ts): round robin over the
// backends, a dead backend skipped, setBackends, per-backend counts, and close() ending it all.

import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { until } from '../helpers/wait.js';

/** A backend that greets each connection with its name and echoes what it receives. */
async function nameServer(name: string): Promise<{ server: Server; addr: string; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.write(`${name}\n`);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  return { server, addr: `127.0.0.1:${port}`, sockets };
}

/** A port nothing listens on (bound, then released). */
async function deadAddr(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return `127.0.0.1:${port}`;
}

/** Connects through the proxy; resolves with the socket and the first line (the backend's name), or '' if closed first. */
function dialName(port: number): Promise<{ s: Socket; name: string }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => undefined);
    let buf = '';
    s.on('data', (d) => {
      buf += String(d);
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve({ s, name: buf.slice(0, nl) });
    });
    s.once('close', () => resolve({ s, name: '' }));
  });
}

describe('tcp proxy', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const serve = async (name: string) => {
    const b = await nameServer(name);
    cleanups.push(() => {
      for (const s of b.sockets) s.destroy();
      return new Promise<void>((r) => b.server.close(() => r()));
    });
    return b;
  };
  const proxyOf = async (backends: string[]): Promise<TcpProxy> => {
    const p = await startTcpProxy(backends);
    cleanups.push(() => p.close());
    return p;
  };

  it('spreads new connections round robin and pipes bytes both ways', async () => {
    const [a, b, c] = [await serve('a'), await serve('b'), await serve('c')];
    const proxy = await proxyOf([a.addr, b.addr, c.addr]);
    const names: string[] = [];
    for (let i = 0; i < 9; i++) {
      const { s, name } = await dialName(proxy.port);
      names.push(name);
      s.destroy();
    }
    expect(names).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c']);
    expect(Object.fromEntries(proxy.counts)).toEqual({ [a.addr]: 3, [b.addr]: 3, [c.addr]: 3 });

    const { s } = await dialName(proxy.port);
    const echoed = new Promise<string>((resolve) => s.once('data', (d) => resolve(String(d))));
    s.write('ping');
    expect(await echoed).toBe('ping');
    s.destroy();
  });

  it('skips a backend that refuses and closes the client when none answers', async () => {
    const a = await serve('a');
    const dead = await deadAddr();
    const proxy = await proxyOf([dead, a.addr]);
    for (let i = 0; i < 4; i++) {
      const { s, name } = await dialName(proxy.port);
      expect(name).toBe('a');
      s.destroy();
    }
    expect(proxy.counts.get(dead)).toBeUndefined();
    expect(proxy.counts.get(a.addr)).toBe(4);

    proxy.setBackends([dead]);
    const { name } = await dialName(proxy.port);
    expect(name).toBe('');
    expect(proxy.refused).toBe(1);

    proxy.setBackends([]);
    expect((await dialName(proxy.port)).name).toBe('');
    expect(proxy.refused).toBe(2);
    expect(() => proxy.setBackends(['no-port'])).toThrow(RangeError);
  });

  it('passes a backend reset on to the client, and setBackends moves new connections', async () => {
    const [a, b] = [await serve('a'), await serve('b')];
    const proxy = await proxyOf([a.addr]);
    const first = await dialName(proxy.port);
    expect(first.name).toBe('a');
    expect(proxy.active()).toBe(1);
    const closed = new Promise<void>((r) => first.s.once('close', () => r()));
    for (const s of a.sockets) s.destroy(); // the replica dies
    await closed;
    await until('the pair to be forgotten', 2000, () => proxy.active() === 0);

    proxy.setBackends([a.addr, b.addr]);
    await new Promise<void>((r) => a.server.close(() => r())); // and stays dead
    const again = await dialName(proxy.port);
    expect(again.name).toBe('b');
    again.s.destroy();
  });

  it('close() destroys open connections and stops listening', async () => {
    const a = await serve('a');
    const proxy = await startTcpProxy([a.addr]);
    const { s } = await dialName(proxy.port);
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    await proxy.close();
    await closed;
    await until('the backend side to close', 2000, () => a.sockets.size === 0);
    expect((await dialName(proxy.port)).name).toBe('');
  });
});
