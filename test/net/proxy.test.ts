// The local entry points into a userspace mesh: a SOCKS5 CONNECT (IPv4 and domain forms, a
// refused port) and a TCP forward, each from a real loopback socket to an echo server on the
// other MeshNet of a back-to-back pair.

import { once } from 'node:events';
import { connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MeshNet } from '../../src/net/mesh.js';
import { parseForward, startForward, startSocks5 } from '../../src/net/proxy.js';

let cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function setup(): Promise<MeshNet> {
  const a = new MeshNet({ addresses: ['10.78.0.1'], hosts: { db: '10.78.0.2' } });
  const b = new MeshNet({ addresses: ['10.78.0.2'] });
  a.attach((p) => setImmediate(() => b.receive(p)));
  b.attach((p) => setImmediate(() => a.receive(p)));
  b.createServer((s) => s.pipe(s)).listen(5432);
  cleanup.push(() => a.close(), () => b.close());
  return a;
}

function port(server: Server): number {
  cleanup.push(() => void server.close());
  return (server.address() as { port: number }).port;
}

async function read(sock: Socket, n: number): Promise<Buffer> {
  let buf = Buffer.alloc(0);
  while (buf.length < n) {
    const chunk = sock.read() as Buffer | null;
    if (chunk === null) {
      await Promise.race([once(sock, 'readable'), once(sock, 'close')]);
      if (sock.destroyed && sock.readableLength === 0) break;
      continue;
    }
    buf = Buffer.concat([buf, chunk]);
  }
  if (buf.length > n) sock.unshift(buf.subarray(n));
  return buf.subarray(0, n);
}

describe('SOCKS5 and forwards into the mesh', () => {
  it('SOCKS5 CONNECT by address and by mesh name reaches the echo server; a closed port is refused', async () => {
    const net = await setup();
    const p = port(await startSocks5(net, { host: '127.0.0.1', port: 0 }));
    const requests = [
      Buffer.from([5, 1, 0, 1, 10, 78, 0, 2, 0x15, 0x38]),
      Buffer.concat([Buffer.from([5, 1, 0, 3, 2]), Buffer.from('db'), Buffer.from([0x15, 0x38])]),
    ];
    for (const req of requests) {
      const s = connect(p, '127.0.0.1');
      cleanup.push(() => void s.destroy());
      s.write(Buffer.from([5, 1, 0]));
      expect([...(await read(s, 2))]).toEqual([5, 0]);
      s.write(Buffer.concat([req, Buffer.from('early bytes;')])); // data right after the request too
      expect((await read(s, 10))[1]).toBe(0);
      s.write('echo me');
      expect((await read(s, 19)).toString()).toBe('early bytes;echo me');
    }
    const refused = connect(p, '127.0.0.1');
    cleanup.push(() => void refused.destroy());
    refused.write(Buffer.from([5, 1, 0]));
    await read(refused, 2);
    refused.write(Buffer.from([5, 1, 0, 1, 10, 78, 0, 2, 0, 1]));
    expect([...(await read(refused, 10))]).toEqual([5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
  });

  it('a forward carries a local connection to the mesh port', async () => {
    const net = await setup();
    const spec = parseForward('127.0.0.1:0=db:5432');
    const p = port(await startForward(net, spec));
    const s = connect(p, '127.0.0.1');
    cleanup.push(() => void s.destroy());
    s.write('through the forward');
    expect((await read(s, 19)).toString()).toBe('through the forward');
    expect(() => parseForward('nope')).toThrow(RangeError);
  });
});
