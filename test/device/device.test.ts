// Device (src/device/device.ts) with the in-memory twins: two devices over a MemoryNetwork, one
// with a MemoryTun and one in packet-callback mode, configured like UAPI, exchanging data; the
// get=1 text after traffic; removing and replacing peers; listen port changes; close.

import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { CookieGenerator } from '../../src/core/cookie.js';
import { INITIATION_SIZE, MessageType } from '../../src/core/messages.js';
import { nodeCrypto } from '../../src/crypto/node.js';
import { Device, deviceEngine } from '../../src/device/device.js';
import { MemoryNetwork } from '../../src/io/bind-memory.js';
import { ManualClock } from '../../src/io/clock.js';
import { MemoryTun } from '../../src/io/tun-memory.js';
import { DeviceError } from '../../src/device/errors.js';
import { BindError } from '../../src/io/errors.js';
import { formatGetResponse } from '../../src/uapi/serialize.js';
import { ipPacket } from '../helpers/ip-packet.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

/** Lets microtask-delivered datagrams and TUN batches run until the network is quiet. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

const open: Device[] = [];
afterEach(async () => {
  for (const d of open.splice(0)) await d.close();
});

/** Device A (MemoryTun, 10.0.0.1 / fd00::1, port 51820) and B (callbacks, 10.0.0.2, port 51821). */
async function pair() {
  const net = new MemoryNetwork();
  const clock = new ManualClock();
  const tunA = new MemoryTun({ name: 'memA' });
  const toB: Array<{ packet: Uint8Array; from: string }> = [];
  const a = await Device.create({ tun: tunA, bind: net.createBind(['10.0.0.1', 'fd00::1']), clock, listenPort: 51820 });
  const bindB = net.createBind(['10.0.0.2']);
  const b = await Device.create({
    onPacket: (packet, key) => toB.push({ packet: packet.slice(), from: b64(key) }),
    bind: bindB,
    clock,
    listenPort: 51821,
  });
  open.push(a, b);
  const privA = randomBytes(32);
  const privB = randomBytes(32);
  await a.configure({ privateKey: privA });
  await b.configure({ privateKey: privB });
  const pubA = a.publicKey!;
  const pubB = b.publicKey!;
  await a.configure({ peers: [{ publicKey: pubB, endpoint: '10.0.0.2:51821', allowedIps: ['192.168.0.2/32', 'fd10::2/128'] }] });
  await b.configure({ peers: [{ publicKey: pubA, allowedIps: ['192.168.0.1/32', 'fd10::1/128'] }] });
  return { net, clock, tunA, toB, a, b, bindB, privA, pubA, pubB };
}

/** get=1 text as key/value pairs, in order. */
function getLines(d: Device): Array<[string, string]> {
  return formatGetResponse(d.snapshot())
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const at = l.indexOf('=');
      return [l.slice(0, at), l.slice(at + 1)];
    });
}

describe('Device over the memory twins', () => {
  it('hands packets both ways: TUN -> peer callback, writePacket -> TUN, IPv4 and IPv6', async () => {
    const { tunA, toB, a, b, pubA } = await pair();
    const out4 = ipPacket('192.168.0.1', '192.168.0.2', 'a to b, queued until the handshake');
    const out6 = ipPacket('fd10::1', 'fd10::2', 'a to b over IPv6');
    tunA.inject(out4);
    tunA.inject(out6);
    await settle();
    expect(toB.map((p) => hex(p.packet))).toEqual([hex(out4), hex(out6)]);
    expect(toB.every((p) => p.from === b64(pubA))).toBe(true);

    const back = ipPacket('192.168.0.2', '192.168.0.1', 'b to a');
    b.writePacket(back);
    await settle();
    expect(tunA.takeWritten().map(hex)).toEqual([hex(back)]);
    expect(a.counters.tunWriteDropped).toBe(0);
    expect(a.drops()['allowed-ips']).toBe(0);
  });

  it('under a handshake flood, serves transport at once and bounds handshakes by a queue and a per-turn budget', async () => {
    const { clock, tunA, toB, b, bindB, pubB } = await pair();
    tunA.inject(ipPacket('192.168.0.1', '192.168.0.2', 'session'));
    await settle();
    expect(toB).toHaveLength(1);
    const gen = new CookieGenerator(nodeCrypto, pubB);
    const flood = (): Uint8Array => {
      const m = new Uint8Array(randomBytes(INITIATION_SIZE));
      m.set([MessageType.initiation, 0, 0, 0]);
      m.fill(0, INITIATION_SIZE - 32);
      gen.addMacs(m, 0);
      return m;
    };
    for (let i = 0; i < 20; i++) tunA.inject(ipPacket('192.168.0.1', '192.168.0.2', `d${i}`));
    // 2,000 MAC1-valid initiations from 32 addresses within one loop turn: 16 are handled (the
    // budget), 1,024 wait (the queue), the rest are dropped without a MAC1 check.
    for (let i = 0; i < 2000; i++) bindB.receive(flood(), { address: `198.18.0.${i % 32}`, port: 40000 });
    expect(b.drops()['handshake-queue-full']).toBe(2000 - 1024 - 16);
    expect(deviceEngine(b).isUnderLoad(clock.now())).toBe(true); // the backlog is over 1/8 of the queue
    await settle();
    expect(toB.map((p) => new TextDecoder().decode(p.packet.subarray(20)))).toEqual(['session', ...Array.from({ length: 20 }, (_, i) => `d${i}`)]);
    for (let i = 0; i < 100; i++) await new Promise((r) => setImmediate(r)); // the queue drains, 16 per turn
    const d = b.drops();
    expect(d['cookie-required'] + d['rate-limited'] + d['handshake-decrypt']).toBe(1024 + 16);
    expect(d['cookie-required']).toBeLessThanOrEqual(32 * 4); // the per-source cookie limit's burst
  });

  it('pads transport no further than the TUN\'s MTU: a full 1420-byte packet leaves as a 1452-byte datagram', async () => {
    const { net, tunA, toB } = await pair();
    const sizes: number[] = [];
    net.setFilter((d) => {
      sizes.push(d.data.length);
      return d;
    });
    tunA.inject(ipPacket('192.168.0.1', '192.168.0.2', 'handshake first'));
    await settle();
    sizes.length = 0;
    const full = ipPacket('192.168.0.1', '192.168.0.2', 'x'.repeat(1420 - 20));
    expect(full.length).toBe(1420);
    tunA.inject(full);
    tunA.inject(ipPacket('192.168.0.1', '192.168.0.2', 'x'.repeat(1410 - 20)));
    await settle();
    expect(toB.map((p) => p.packet.length).slice(-2)).toEqual([1420, 1410]);
    // 16 header + 1420 (not 1424) + 16 tag: with IPv6 and UDP headers exactly a 1500-byte underlay.
    expect(sizes).toEqual([1452, 1452]);
  });

  it('drops an inbound packet whose inner source is not the peer\'s, and counts it', async () => {
    const { tunA, a, b } = await pair();
    tunA.inject(ipPacket('192.168.0.1', '192.168.0.2', 'handshake first'));
    await settle();
    b.writePacket(ipPacket('192.168.0.99', '192.168.0.1', 'spoofed source'));
    await settle();
    expect(tunA.takeWritten()).toEqual([]);
    expect(a.drops()['allowed-ips']).toBe(1);
  });

  it('reports traffic through get=1: keys, endpoint learnt, handshake time, equal byte counts, allowed IPs', async () => {
    const { clock, tunA, toB, a, b, privA, pubA, pubB } = await pair();
    tunA.inject(ipPacket('192.168.0.1', '192.168.0.2', 'x'.repeat(100)));
    await settle();
    b.writePacket(ipPacket('fd10::2', 'fd10::1', 'y'.repeat(50)));
    await settle();
    expect(toB).toHaveLength(1);
    expect(tunA.takeWritten()).toHaveLength(1);

    const la = getLines(a);
    const wall = clock.wallMs();
    expect(la).toEqual([
      ['private_key', hex(privA.map((v, i) => (i === 0 ? v & 248 : i === 31 ? (v & 127) | 64 : v)))],
      ['listen_port', '51820'],
      ['public_key', hex(pubB)],
      ['preshared_key', '0'.repeat(64)],
      ['protocol_version', '1'],
      ['endpoint', '10.0.0.2:51821'],
      ['last_handshake_time_sec', String(Math.floor(wall / 1000))],
      ['last_handshake_time_nsec', String((wall % 1000) * 1e6)],
      ['tx_bytes', expect.stringMatching(/^[1-9]\d*$/)],
      ['rx_bytes', expect.stringMatching(/^[1-9]\d*$/)],
      ['persistent_keepalive_interval', '0'],
      ['allowed_ip', '192.168.0.2/32'],
      ['allowed_ip', 'fd10::2/128'],
      ['errno', '0'],
    ]);
    const lb = new Map(getLines(b));
    expect(lb.get('public_key')).toBe(hex(pubA));
    expect(lb.get('endpoint')).toBe('10.0.0.1:51820');
    // Whole datagrams, counted alike on both sides (what `wg show` compares across peers).
    const la2 = new Map(la);
    expect(la2.get('tx_bytes')).toBe(lb.get('rx_bytes'));
    expect(la2.get('rx_bytes')).toBe(lb.get('tx_bytes'));
    // initiation 148 + data (32 + 128 padded IPv4 packet) out; response 92 + data (32 + 96) in.
    expect(Number(la2.get('tx_bytes'))).toBe(148 + 32 + 128);
    expect(Number(la2.get('rx_bytes'))).toBe(92 + 32 + 96);
  });

  it('removes a peer: gone from get=1, its traffic no longer routed', async () => {
    const { tunA, toB, a, pubB } = await pair();
    await a.configure({ peers: [{ publicKey: pubB, remove: true }] });
    expect(getLines(a).filter(([k]) => k === 'public_key')).toEqual([]);
    tunA.inject(ipPacket('192.168.0.1', '192.168.0.2'));
    await settle();
    expect(toB).toEqual([]);
    expect(a.drops()['no-route']).toBe(1);
  });

  it('replace_peers leaves exactly the listed peers; update_only does not create one', async () => {
    const { a, pubB } = await pair();
    const c = randomBytes(32);
    c[0] = 9;
    const d = randomBytes(32);
    d[0] = 10;
    await a.configure({ replacePeers: true, peers: [{ publicKey: c, allowedIps: ['10.9.0.0/16'] }, { publicKey: d, updateOnly: true }] });
    const keys = getLines(a).filter(([k]) => k === 'public_key').map(([, v]) => v);
    expect(keys).toEqual([hex(c)]);
    expect(keys).not.toContain(hex(pubB));
    expect(getLines(a).filter(([k]) => k === 'allowed_ip')).toEqual([['allowed_ip', '10.9.0.0/16']]);
  });

  it('a listen port change keeps peers and session; the peer follows on the next packet', async () => {
    const { tunA, toB, a, b } = await pair();
    tunA.inject(ipPacket('192.168.0.1', '192.168.0.2', 'before'));
    await settle();
    expect(toB).toHaveLength(1);
    const before = getLines(a).filter(([k]) => k !== 'listen_port' && k !== 'tx_bytes' && k !== 'rx_bytes');
    await a.configure({ listenPort: 40000 });
    expect(a.listenPort).toBe(40000);
    expect(getLines(a).filter(([k]) => k !== 'listen_port' && k !== 'tx_bytes' && k !== 'rx_bytes')).toEqual(before);
    tunA.inject(ipPacket('192.168.0.1', '192.168.0.2', 'after'));
    await settle();
    expect(toB).toHaveLength(2);
    expect(new Map(getLines(b)).get('endpoint')).toBe('10.0.0.1:40000');
    b.writePacket(ipPacket('192.168.0.2', '192.168.0.1', 'reply reaches the new port'));
    await settle();
    expect(tunA.takeWritten()).toHaveLength(1);
  });

  it('snapshot() hands out copies of the keys: writing them changes nothing in use', async () => {
    const { a, pubB } = await pair();
    await a.configure({ peers: [{ publicKey: pubB, presharedKey: randomBytes(32) }] });
    const before = formatGetResponse(a.snapshot());
    const snap = a.snapshot();
    snap.privateKey!.fill(0);
    for (const p of snap.peers) {
      p.publicKey.fill(0);
      p.presharedKey?.fill(0);
    }
    expect(formatGetResponse(a.snapshot())).toBe(before);
  });

  it('a port in use rejects the whole set with ERR_DEVICE_PORT_IN_USE (cause: the BindError) and changes nothing', async () => {
    const { net, a, pubB } = await pair();
    const squatter = net.createBind(['10.0.0.1']);
    await squatter.open(40001);
    const before = formatGetResponse(a.snapshot());
    const err = await a.configure({ privateKey: randomBytes(32), listenPort: 40001, peers: [{ publicKey: pubB, remove: true }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as DeviceError).code).toBe('ERR_DEVICE_PORT_IN_USE');
    expect((err as DeviceError).cause).toBeInstanceOf(BindError);
    expect(formatGetResponse(a.snapshot())).toBe(before);
    squatter.close();
  });

  it('close ends everything once: TUN closed, port released, handlers called, later calls inert', async () => {
    const { net, tunA, a } = await pair();
    const reasons: string[] = [];
    a.onClose((r) => reasons.push(r));
    await a.close('test');
    await a.close('again');
    expect(reasons).toEqual(['test']);
    expect(a.closed).toBe(true);
    expect(tunA.closed).toBe(true);
    expect(a.listenPort).toBe(0);
    expect(a.snapshot().privateKey).toBeNull();
    expect(() => a.writePacket(ipPacket('192.168.0.1', '192.168.0.2'))).not.toThrow();
    await expect(a.configure({ listenPort: 1 })).rejects.toMatchObject({ name: 'DeviceError', code: 'ERR_DEVICE_CLOSED' });
    // The port is free again for another device.
    const other = await Device.create({ onPacket: () => {}, bind: net.createBind(['10.0.0.1']), listenPort: 51820 });
    open.push(other);
    expect(other.listenPort).toBe(51820);
  });

  it('closes itself when the TUN is deleted', async () => {
    const { tunA, a } = await pair();
    const reasons: string[] = [];
    a.onClose((r) => reasons.push(r));
    tunA.simulateDelete();
    await settle();
    expect(a.closed).toBe(true);
    expect(reasons).toEqual(['interface deleted']);
  });
});
