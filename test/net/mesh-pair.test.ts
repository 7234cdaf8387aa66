// Two MeshNets wired back to back (each one's outbound packets are the other's input, on the
// next macrotask like a link would): TCP via the Duplex API with sha256, http.get and fetch
// through the mesh agent, UDP, ping, and the socket's errors (refused, unknown host).

import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { MeshNet } from '../../src/net/mesh.js';
import { NetError } from '../../src/net/net-error.js';
import type { MeshSocket } from '../../src/net/socket.js';

let nets: MeshNet[] = [];

function pair(loss = 0): [MeshNet, MeshNet] {
  const a = new MeshNet({ addresses: ['10.77.0.1', 'fd77::1'], hosts: { beta: '10.77.0.2' } });
  const b = new MeshNet({ addresses: ['10.77.0.2', 'fd77::2'] });
  const link = (to: MeshNet) => (p: Uint8Array) => {
    if (loss > 0 && Math.random() < loss) return;
    setImmediate(() => to.receive(p));
  };
  a.attach(link(b));
  b.attach(link(a));
  nets.push(a, b);
  return [a, b];
}

afterEach(async () => {
  for (const n of nets) await n.close();
  nets = [];
});

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

async function readAll(s: MeshSocket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('MeshNet pair', () => {
  it('carries 4 MB each way over TCP (IPv4 and IPv6) with matching sha256', async () => {
    const [a, b] = pair();
    const up = randomBytes(4 << 20);
    const down = randomBytes(4 << 20);
    const server = b.createServer({ allowHalfOpen: true }, (s) => {
      // Not readAll: async iteration destroys the stream at its end, as it does a net.Socket.
      const hash = createHash('sha256');
      s.on('data', (d: Buffer) => hash.update(d));
      s.on('end', () => s.end(Buffer.concat([hash.digest(), down])));
    });
    await once(server.listen(8080), 'listening');
    for (const host of ['10.77.0.2', 'fd77::2']) {
      const c = a.connect({ host, port: 8080, allowHalfOpen: true });
      await once(c, 'connect');
      expect(c.remoteAddress).toBe(host);
      c.end(up);
      const reply = await readAll(c);
      expect(reply.subarray(0, 32).toString('hex')).toBe(sha(up));
      expect(sha(reply.subarray(32))).toBe(sha(down));
    }
  }, 60_000);

  it('completes a transfer at 2% loss', async () => {
    const [a, b] = pair(0.02);
    const data = randomBytes(512 << 10);
    let got: Promise<Buffer> | undefined;
    b.createServer((s) => (got = readAll(s))).listen(9);
    const c = a.connect({ host: 'beta', port: 9 });
    c.end(data);
    await once(c, 'finish');
    await expect.poll(() => got, { timeout: 30_000 }).toBeDefined();
    expect(sha(await got!)).toBe(sha(data));
  }, 60_000);

  it('http.get and fetch reach an http server on the other node', async () => {
    const [a, b] = pair();
    const web = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => res.end(`${req.method} ${req.url} ${body}`));
    });
    b.createServer((s) => web.emit('connection', s)).listen(80);
    const text = await new Promise<string>((resolve, reject) => {
      http.get('http://beta/hello', { agent: a.httpAgent }, (res) => {
        let t = '';
        res.setEncoding('utf8').on('data', (d) => (t += d)).on('end', () => resolve(t));
      }).on('error', reject);
    });
    expect(text).toBe('GET /hello ');
    const res = await a.fetch('http://10.77.0.2/x', { method: 'POST', body: 'ping' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('POST /x ping');
    web.close();
  }, 30_000);

  it('refused and unknown hosts surface as socket errors', async () => {
    const [a] = pair();
    const refused = a.connect({ host: '10.77.0.2', port: 1 });
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
    const unknown = a.connect({ host: 'nowhere', port: 1 });
    const [err2] = (await once(unknown, 'error')) as [Error];
    expect(err2).toBeInstanceOf(NetError);
    await expect(a.fetch('http://nowhere/')).rejects.toThrow(TypeError);
  });

  it('UDP datagrams and ICMP echo both ways', async () => {
    const [a, b] = pair();
    const server = b.dgram.createSocket('udp4');
    server.on('message', (msg, rinfo) => server.send(Buffer.concat([Buffer.from('re:'), msg]), rinfo.port, rinfo.address));
    await once(server.bind(5353), 'listening');
    const client = a.dgram.createSocket('udp4');
    client.send('hi', 5353, '10.77.0.2');
    const [msg, rinfo] = (await once(client, 'message')) as [Buffer, { address: string; port: number }];
    expect(msg.toString()).toBe('re:hi');
    expect(rinfo).toMatchObject({ address: '10.77.0.2', port: 5353 });
    expect(await a.ping('10.77.0.2')).toBeGreaterThanOrEqual(0);
    expect(await a.ping('fd77::2')).toBeGreaterThanOrEqual(0);
    expect(b.stack.counters.echoRequests).toBe(2);
    client.close();
    server.close();
  });
});
