// UAPI server over a real unix socket in a temp directory (no root): requests, errno replies,
// keep-alive, hostile clients, stale/live socket handling and cleanup.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UapiError, UapiSocketError } from '../../src/uapi/errors.js';
import type { Device } from '../../src/device/device.js';
import type { UapiHandler } from '../../src/uapi/handler.js';
import type { SetTransaction } from '../../src/uapi/protocol.js';
import { startUapiServer, uapiRequest, type UapiServer } from '../../src/uapi/server.js';
import { memoryDevice } from '../helpers/memory-device.js';

const K1 = 'e53b41985234e339d15b61e1882d7be20cad3709abff0d4d283426e6edef271e';
const SK = '3083f6dc2c13eaa361feb3b025f3fcfcb2d2c2f6a411b2d02c929d156b908074';

/** The get=1 line of the device's initial port (memoryDevice binds 51820). */
const PORT_LINE = 'listen_port=51820\n';

/** A memory-backed Device as the handler, counting apply() calls; it can be told to fail or stall. */
class SpyHandler implements UapiHandler {
  readonly device: Device;
  applied = 0;
  fail: unknown = undefined;
  delayMs = 0;
  constructor(device: Device) {
    this.device = device;
  }
  snapshot(): ReturnType<Device['snapshot']> {
    return this.device.snapshot();
  }
  async apply(tx: SetTransaction): Promise<void> {
    this.applied++;
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.fail !== undefined) throw this.fail;
    await this.device.apply(tx);
  }
}

/** Raw exchange: writes `chunks`, collects everything until the server closes or `waitMs` passes. */
function raw(path: string, chunks: Array<string | Buffer>, opts: { end?: boolean; waitMs?: number } = {}) {
  return new Promise<{ reply: string; closed: boolean }>((resolve) => {
    const c = net.createConnection(path);
    let reply = '';
    const timer = setTimeout(() => {
      c.destroy();
      resolve({ reply, closed: false });
    }, opts.waitMs ?? 500);
    c.setEncoding('latin1');
    c.on('data', (d: string) => (reply += d));
    c.on('error', () => {});
    c.on('close', () => {
      clearTimeout(timer);
      resolve({ reply, closed: true });
    });
    for (const chunk of chunks) c.write(chunk);
    if (opts.end) c.end();
  });
}

let dir: string;
let handler: SpyHandler;
let server: UapiServer;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'uapi-'));
  handler = new SpyHandler(await memoryDevice());
  server = await startUapiServer({ interfaceName: 'wgt0', handler, socketDir: join(dir, 'run', 'wireguard'), idleTimeoutMs: 2000 });
});

afterEach(async () => {
  await server.close();
  await handler.device.close();
  await rm(dir, { recursive: true, force: true });
});

const settle = async () => {
  for (let i = 0; i < 50 && server.connectionCount > 0; i++) await new Promise((r) => setTimeout(r, 20));
};

describe('UAPI server', () => {
  it('creates the directory and a 0700 socket named IFNAME.sock', async () => {
    expect(server.path).toBe(join(dir, 'run', 'wireguard', 'wgt0.sock'));
    const sock = await stat(server.path);
    expect(sock.isSocket()).toBe(true);
    expect(sock.mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'run', 'wireguard'))).isDirectory()).toBe(true);
  });

  it('serves get and set with errno replies', async () => {
    expect(await uapiRequest(server.path, 'get=1\n\n')).toBe(`${PORT_LINE}errno=0\n\n`);
    const set = `set=1\nprivate_key=${SK}\nlisten_port=51820\npublic_key=${K1}\nendpoint=[fd00::1]:51820\nallowed_ip=10.0.0.1/24\n\n`;
    expect(await uapiRequest(server.path, set)).toBe('errno=0\n\n');
    const get = await uapiRequest(server.path, 'get=1\n\n');
    expect(get).toContain(`private_key=${SK}\nlisten_port=51820\npublic_key=${K1}\n`);
    expect(get).toContain('endpoint=[fd00::1]:51820\n');
    expect(get.endsWith('allowed_ip=10.0.0.0/24\nerrno=0\n\n')).toBe(true);
  });

  it('serves several requests on one connection in order', async () => {
    const { reply, closed } = await raw(server.path, ['get=1\n\nset=1\nlisten_port=7\n\nget', '=1\n\n']);
    expect(closed).toBe(false);
    expect(reply).toBe(`${PORT_LINE}errno=0\n\nerrno=0\n\nlisten_port=7\nerrno=0\n\n`);
  });

  it('answers a malformed set with its errno and never calls apply', async () => {
    const cases: Array<[string, string]> = [
      [`set=1\nlisten_port=1\npublic_key=${K1}\nallowed_ip=10.0.0.0/33\n\n`, 'errno=-22\n\n'],
      ['set=1\nlisten_port=1\nnonsense\n\n', 'errno=-71\n\n'],
      ['set=1\nlisten_port=1\nfwmark=1\nbogus=2\n\n', 'errno=-22\n\n'],
      [`set=1\npublic_key=${K1}\nlisten_port=1\n\n`, 'errno=-22\n\n'],
    ];
    for (const [request, reply] of cases) expect(await uapiRequest(server.path, request)).toBe(reply);
    expect(handler.applied).toBe(0);
    expect(await uapiRequest(server.path, 'get=1\n\n')).toBe(`${PORT_LINE}errno=0\n\n`);
  });

  it("reports apply's UapiError errno, and -55 for any other exception", async () => {
    handler.fail = new UapiError('ERR_UAPI_PORT_IN_USE', 'port 1 in use');
    expect(await uapiRequest(server.path, 'set=1\nlisten_port=1\n\n')).toBe('errno=-98\n\n');
    handler.fail = new Error('boom');
    expect(await uapiRequest(server.path, 'set=1\nlisten_port=1\n\n')).toBe('errno=-55\n\n');
    handler.fail = undefined;
    expect(await uapiRequest(server.path, 'set=1\nlisten_port=1\n\n')).toBe('errno=0\n\n');
  });

  it('answers -55 when snapshot() throws before any output', async () => {
    handler.snapshot = () => {
      throw new Error('no snapshot');
    };
    expect(await uapiRequest(server.path, 'get=1\n\n')).toBe('errno=-55\n\n');
  });

  it('a get waits for a set that is still applying', async () => {
    handler.delayMs = 150;
    const set = uapiRequest(server.path, 'set=1\nlisten_port=4242\n\n');
    await new Promise((r) => setTimeout(r, 20));
    const get = await uapiRequest(server.path, 'get=1\n\n');
    expect(get).toBe('listen_port=4242\nerrno=0\n\n');
    expect(await set).toBe('errno=0\n\n');
  });

  it('applies a set that ends at end of input without the blank line, as wireguard-go does', async () => {
    const { reply, closed } = await raw(server.path, ['set=1\nlisten_port=51998'], { end: true });
    expect({ reply, closed }).toEqual({ reply: 'errno=0\n\n', closed: true });
    expect(handler.device.listenPort).toBe(51998);
  });

  it('streams a 130,000 allowed-IP reply to a slow reader', async () => {
    const lines = ['set=1', `public_key=${K1}`];
    for (let i = 0; i < 130_000; i++) lines.push(`allowed_ip=10.${i >> 16}.${(i >> 8) & 0xff}.${i & 0xff}/32`);
    expect(await uapiRequest(server.path, `${lines.join('\n')}\n\n`)).toBe('errno=0\n\n');
    const { reply } = await new Promise<{ reply: string }>((resolve) => {
      const c = net.createConnection(server.path);
      const parts: string[] = [];
      c.setEncoding('latin1');
      c.on('data', (d: string) => {
        parts.push(d);
        if (d.endsWith('errno=0\n\n')) {
          c.destroy();
          resolve({ reply: parts.join('') });
        } else if (parts.length % 8 === 0) {
          c.pause();
          setTimeout(() => c.resume(), 5);
        }
      });
      c.write('get=1\n\n');
    });
    expect(reply.split('\n').filter((l) => l.startsWith('allowed_ip='))).toEqual(lines.slice(2));
  });
});

describe('UAPI server against hostile clients', () => {
  it('closes without a reply on an unknown operation, after answering earlier requests', async () => {
    expect(await raw(server.path, ['get=1\n\nGET=1\n\n'])).toEqual({ reply: `${PORT_LINE}errno=0\n\n`, closed: true });
    expect(await raw(server.path, [Buffer.from([0, 0xff, 0xfe, 10, 0x80, 1, 2, 3])])).toEqual({ reply: '', closed: true });
  });

  it('answers -5 to a line longer than 65535 bytes and closes', async () => {
    const { reply, closed } = await raw(server.path, [`set=1\nlisten_port=1\n${'x'.repeat(200_000)}`], { waitMs: 2000 });
    expect({ reply, closed }).toEqual({ reply: 'errno=-5\n\n', closed: true });
    expect(handler.applied).toBe(0);
  });

  it('answers -5 to a set over the 8 MiB cap, applies nothing and closes', async () => {
    const body = `set=1\npublic_key=${K1}\n${'allowed_ip=10.0.0.0/8\n'.repeat(400_000)}\n`;
    expect(body.length).toBeGreaterThan(8 * 1024 * 1024);
    const { reply, closed } = await raw(server.path, [body], { waitMs: 10_000 });
    expect({ reply, closed }).toEqual({ reply: 'errno=-5\n\n', closed: true });
    expect(handler.applied).toBe(0);
  });

  it('closes a connection that sends nothing once idle', async () => {
    const fast = await startUapiServer({ interfaceName: 'wgt1', handler, socketDir: dir, idleTimeoutMs: 150 });
    try {
      const started = Date.now();
      expect(await raw(fast.path, [], { waitMs: 3000 })).toEqual({ reply: '', closed: true });
      expect(Date.now() - started).toBeGreaterThanOrEqual(100);
      const partial = await raw(fast.path, ['set=1\nlisten_port=9\n'], { waitMs: 3000 });
      expect(partial.closed).toBe(true);
      expect(handler.applied).toBe(0);
    } finally {
      await fast.close();
    }
  });

  it('survives clients that disconnect mid-request and leaks no connection', async () => {
    for (let i = 0; i < 20; i++) {
      const c = net.createConnection(server.path);
      c.on('error', () => {});
      await new Promise<void>((r) => c.once('connect', () => r()));
      c.write(i % 2 === 0 ? `set=1\npublic_key=${K1}\nallowed_ip=10.0` : 'get=1\n');
      c.destroy();
    }
    // a reader that vanishes in the middle of a large reply
    expect(await uapiRequest(server.path, `set=1\npublic_key=${K1}\n${'allowed_ip=10.0.0.0/8\n'.repeat(5000)}\n`)).toBe('errno=0\n\n');
    for (let i = 0; i < 5; i++) {
      const c = net.createConnection(server.path);
      c.on('error', () => {});
      c.once('data', () => c.destroy());
      c.write('get=1\n\n');
    }
    await settle();
    expect(server.connectionCount).toBe(0);
    expect(await uapiRequest(server.path, 'get=1\n\n')).toMatch(/errno=0\n\n$/);
  });

  it('with every slot held by idle connections, serves a get at once by closing the one idle longest', async () => {
    const full = await startUapiServer({ interfaceName: 'wgt2', handler, socketDir: dir }); // 64 slots, 30 s idle
    const held: Array<{ socket: net.Socket; closed: boolean }> = [];
    try {
      for (let i = 0; i < 64; i++) {
        const entry = { socket: net.createConnection(full.path), closed: false };
        entry.socket.on('error', () => {});
        entry.socket.on('close', () => (entry.closed = true));
        await new Promise<void>((r) => entry.socket.once('connect', () => r()));
        held.push(entry);
      }
      for (let i = 0; i < 50 && full.connectionCount < 64; i++) await new Promise((r) => setTimeout(r, 10));
      expect(full.connectionCount).toBe(64);
      // The hang guard is far below the 30 s idle timeout that used to be the wait.
      expect(await uapiRequest(full.path, 'get=1\n\n', { timeoutMs: 5000 })).toBe(`${PORT_LINE}errno=0\n\n`);
      await new Promise((r) => setTimeout(r, 50));
      expect(held.map((h) => h.closed)).toEqual([true, ...new Array<boolean>(63).fill(false)]);
    } finally {
      for (const h of held) h.socket.destroy();
      await full.close();
    }
  });

  it('refuses a connection only while every open one is busy with a request', async () => {
    const small = await startUapiServer({ interfaceName: 'wgt2', handler, socketDir: dir, maxConnections: 2 });
    try {
      handler.delayMs = 300;
      const sets = [uapiRequest(small.path, 'set=1\nlisten_port=1\n\n'), uapiRequest(small.path, 'set=1\nlisten_port=2\n\n')];
      await new Promise((r) => setTimeout(r, 50));
      await expect(uapiRequest(small.path, 'get=1\n\n')).rejects.toBeInstanceOf(UapiSocketError);
      expect(await Promise.all(sets)).toEqual(['errno=0\n\n', 'errno=0\n\n']);
      handler.delayMs = 0;
      expect(await uapiRequest(small.path, 'get=1\n\n')).toBe('listen_port=2\nerrno=0\n\n');
    } finally {
      await small.close();
    }
  });
});

describe('UAPI socket lifecycle', () => {
  it('refuses to start over a live daemon, leaving it serving', async () => {
    await expect(startUapiServer({ interfaceName: 'wgt0', handler, socketDir: join(dir, 'run', 'wireguard') })).rejects.toMatchObject({
      code: 'ERR_UAPI_SOCKET_IN_USE',
      errno: 'EADDRINUSE',
    });
    expect(await uapiRequest(server.path, 'get=1\n\n')).toBe(`${PORT_LINE}errno=0\n\n`);
  });

  it('replaces a stale socket left by a dead process', async () => {
    const path = join(dir, 'wgt3.sock');
    const script = `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`;
    spawnSync(process.execPath, ['-e', script]);
    expect((await stat(path)).isSocket()).toBe(true);
    const next = await startUapiServer({ interfaceName: 'wgt3', handler, socketDir: dir });
    try {
      expect(await uapiRequest(next.path, 'get=1\n\n')).toBe(`${PORT_LINE}errno=0\n\n`);
    } finally {
      await next.close();
    }
  });

  it('refuses a path occupied by something that is not a socket', async () => {
    await writeFile(join(dir, 'wgt4.sock'), 'not a socket');
    await expect(startUapiServer({ interfaceName: 'wgt4', handler, socketDir: dir })).rejects.toMatchObject({
      code: 'ERR_UAPI_SOCKET_NOT_SOCKET',
    });
  });

  it('removes the socket on close, once', async () => {
    const s = await startUapiServer({ interfaceName: 'wgt5', handler, socketDir: dir });
    const held = net.createConnection(s.path);
    held.on('error', () => {});
    await new Promise<void>((r) => held.once('connect', () => r()));
    await Promise.all([s.close(), s.close()]);
    await expect(stat(s.path)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(uapiRequest(s.path, 'get=1\n\n')).rejects.toMatchObject({ code: 'ERR_UAPI_SOCKET_FAILED', errno: 'ENOENT' });
  });

  it('rejects misuse with TypeError/RangeError', async () => {
    const base = { handler, socketDir: dir };
    await expect(startUapiServer({ ...base, interfaceName: '' })).rejects.toThrow(RangeError);
    await expect(startUapiServer({ ...base, interfaceName: '../etc' })).rejects.toThrow(RangeError);
    await expect(startUapiServer({ ...base, interfaceName: 'a-very-long-interface' })).rejects.toThrow(RangeError);
    await expect(startUapiServer({ ...base, interfaceName: 7 as unknown as string })).rejects.toThrow(TypeError);
    await expect(startUapiServer({ interfaceName: 'x', handler: {} as UapiHandler, socketDir: dir })).rejects.toThrow(TypeError);
    await expect(startUapiServer({ ...base, interfaceName: 'x', idleTimeoutMs: 0 })).rejects.toThrow(RangeError);
    await expect(startUapiServer({ ...base, interfaceName: 'x', socketDir: `/tmp/${'d'.repeat(120)}` })).rejects.toThrow(RangeError);
    expect(() => uapiRequest(server.path, 5 as unknown as string)).toThrow(TypeError);
  });
});
