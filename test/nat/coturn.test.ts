// Our STUN client against a server no one here wrote: coturn's turnserver (Debian package
// `coturn`) in STUN-only mode on 127.0.0.1, from a plain dgram socket and from a Device's
// WireGuard port. Skipped, with the reason printed, when turnserver is not installed.
// Loopback only; the process and its temp dir are removed afterwards, also on failure.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Device } from '../../src/device/device.js';
import { UdpBind } from '../../src/io/bind-udp.js';
import { stunOverDevice } from '../../src/nat/device-stun.js';
import { discoverNat } from '../../src/nat/nat-type.js';
import { StunClient } from '../../src/nat/stun-client.js';
import { decodeStun, encodeBindingRequest, readMappedAddress, readSoftware } from '../../src/nat/stun-message.js';

function skipReason(): string | undefined {
  const r = spawnSync('turnserver', ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined) return 'turnserver (Debian package coturn) is not installed';
  return undefined;
}
const reason = skipReason();
if (reason !== undefined) console.warn(`[skip] coturn interop: ${reason}`);

const HOST = '127.0.0.1';

async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, HOST, () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe.skipIf(reason !== undefined)('coturn turnserver --stun-only on loopback', () => {
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  let port = 0;
  let output = '';
  const kill = () => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };

  /** SIGTERM to the server's process group, SIGKILL after 2 s. */
  const stop = async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // gone
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
      kill();
    }
  };

  /** Starts turnserver on `port`; true once it answers STUN there and has bound it itself. */
  const startTurnserver = async (dir: string, port: number): Promise<boolean> => {
    child = spawn(
      'turnserver',
      ['-n', '--stun-only', '--no-cli', '--no-tls', '--no-dtls', '--listening-ip', HOST, '--listening-port', String(port),
        '--log-file', 'stdout', '--simple-log', '--pidfile', join(dir, 'pid'), '--userdb', join(dir, 'db')],
      { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-20_000)));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-20_000)));
    // Ready when it answers: short retransmits, bounded to ~10 s.
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, HOST, () => r()));
    const probe = new StunClient({ send: (d, to) => sock.send(d, to.port, to.address), rtoMs: 100, rc: 5, rm: 4 });
    sock.on('message', (m, rinfo) => probe.receive(m, rinfo));
    // An answer while its own bind failed would come from whoever holds the port.
    const taken = () => /Address already in use/.test(output);
    let ready = false;
    for (let i = 0; i < 3 && !ready && !taken(); i++) ready = (await probe.request({ address: HOST, port })).kind === 'mapped';
    sock.close();
    return ready && !taken();
  };

  beforeAll(async () => {
    process.once('exit', kill);
    dir = mkdtempSync(join(tmpdir(), 'plexd-coturn-'));
    // turnserver cannot take port 0: a port seen free may be taken before it binds (another test,
    // a parallel run), and then it retries the bind forever. Such a start is stopped and retried.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      output = '';
      if (await startTurnserver(dir, port)) break;
      await stop();
      if (attempt === 3) throw new Error(`turnserver did not answer on ${HOST}:${port} (3 ports tried):\n${output}`);
    }
  }, 60_000);

  afterAll(async () => {
    await stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('a plain socket gets its own address as the mapping; coturn\'s extra attributes parse', async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, HOST, () => r()));
    const ours = sock.address().port;
    const raw: Buffer[] = [];
    const client = new StunClient({ send: (d, to) => sock.send(d, to.port, to.address), rtoMs: 100, software: 'plexd-userspace test' });
    sock.on('message', (m, rinfo) => {
      raw.push(m);
      client.receive(m, rinfo);
    });
    const r = await client.request({ address: HOST, port });
    sock.close();
    expect(r).toMatchObject({ kind: 'mapped', mapped: { address: HOST, port: ours } });
    if (r.kind !== 'mapped') throw new Error(r.kind);
    const m = decodeStun(raw[0]!);
    if (!m.ok) throw new Error(m.reason);
    expect(m.message.cls).toBe('success');
    console.log(`[nat] coturn answered in ${r.elapsedMs.toFixed(1)} ms; SOFTWARE=${JSON.stringify(readSoftware(m.message))}; attributes ${m.message.attributes.map((a) => `0x${a.type.toString(16)}`).join(' ')}`);
    expect(client.counters.drops).toSatisfy((d: Record<string, number>) => Object.values(d).every((n) => n === 0));
  });

  it('the mapped port is exactly our socket\'s port, with FINGERPRINT requested too', async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, HOST, () => r()));
    const ours = sock.address().port;
    const replies: Buffer[] = [];
    sock.on('message', (m) => replies.push(m));
    const tid = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
    sock.send(encodeBindingRequest(tid, { fingerprint: true }), port, HOST);
    for (let i = 0; i < 50 && replies.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    sock.close();
    const m = decodeStun(replies[0]!);
    if (!m.ok) throw new Error(m.reason);
    expect(readMappedAddress(m.message)).toEqual({ address: HOST, port: ours });
  });

  it('from a Device\'s WireGuard port: mapping == listen port, classification from two requests', async () => {
    const device = await Device.create({ bind: new UdpBind({ ipv4Address: HOST, ipv6Address: null }), onPacket: () => {} });
    try {
      const client = stunOverDevice(device, { rtoMs: 100 });
      // The same server twice: plexd's rule sees one mapping -> full_cone, and no NAT on loopback.
      const r = await discoverNat(client, [{ address: HOST, port }, { address: HOST, port }], { port: device.listenPort, addresses: [HOST] });
      expect(r).toMatchObject({ natType: 'full_cone', behindNat: false, endpoint: { address: HOST, port: device.listenPort } });
      expect(Object.values(device.drops()).reduce((x, y) => x + y, 0)).toBe(0);
    } finally {
      await device.close();
    }
  });
});
