// What a Device shows and publishes (issue 12 items 5, 6, 8, 11): no engine-callback method a
// caller could use to inject a packet "from a peer"; engine events on node:diagnostics_channel
// for a real handshake between two memory-bound devices; no environment read by the library;
// the STUN demultiplexer taking what io/datagram-kinds.ts looksLikeStun takes.

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { nobleCrypto } from '../../src/core/crypto-noble.js';
import { nodeCrypto } from '../../src/crypto/node.js';
import { deviceChoicesFromEnv } from '../../src/cli/device-env.js';
import { defaultCrypto, Device, deviceEngine } from '../../src/device/device.js';
import { DIAGNOSTICS_CHANNELS, type DropMessage, type PeerEventMessage } from '../../src/device/diagnostics.js';
import { looksLikeStun } from '../../src/io/datagram-kinds.js';
import { MemoryNetwork } from '../../src/io/bind-memory.js';
import { ManualClock } from '../../src/io/clock.js';
import { ipPacket } from '../helpers/ip-packet.js';

const open: Device[] = [];
afterEach(async () => {
  for (const d of open.splice(0)) await d.close();
});

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/** A (10.0.0.1:51820) and B (10.0.0.2:51821) in packet-callback mode, peered, no handshake yet. */
async function pair() {
  const net = new MemoryNetwork();
  const clock = new ManualClock();
  const bindA = net.createBind(['10.0.0.1']);
  const bindB = net.createBind(['10.0.0.2']);
  const toB: Uint8Array[] = [];
  const a = await Device.create({ onPacket: () => {}, bind: bindA, clock, listenPort: 51820 });
  const b = await Device.create({ onPacket: (p) => void toB.push(p.slice()), bind: bindB, clock, listenPort: 51821 });
  open.push(a, b);
  await a.configure({ privateKey: randomBytes(32) });
  await b.configure({ privateKey: randomBytes(32) });
  await a.configure({ peers: [{ publicKey: b.publicKey!, endpoint: '10.0.0.2:51821', allowedIps: ['192.168.0.2/32'] }] });
  await b.configure({ peers: [{ publicKey: a.publicKey!, allowedIps: ['192.168.0.1/32'] }] });
  return { a, b, bindA, bindB, toB };
}

describe('Device public surface', () => {
  it('has no engine-callback or engine member a caller could reach', async () => {
    const { a } = await pair();
    for (const name of ['network', 'tun', 'drop', 'event', 'receive', 'engine']) {
      expect(name in a, name).toBe(false);
    }
    // The engine is reachable only through the internal accessor (not exported by src/index.ts).
    expect(deviceEngine(a).peerCount).toBe(1);
  });
});

describe('diagnostics channels', () => {
  it('publishes the events of a real handshake, with copies of keys and endpoints', async () => {
    const { a, b } = await pair();
    const seen: Array<{ name: string; message: PeerEventMessage }> = [];
    const handlers = Object.entries(DIAGNOSTICS_CHANNELS)
      .filter(([kind]) => kind !== 'drop')
      .map(([, name]) => {
        const fn = (message: unknown) => void seen.push({ name, message: message as PeerEventMessage });
        subscribe(name, fn);
        return [name, fn] as const;
      });
    try {
      a.writePacket(ipPacket('192.168.0.1', '192.168.0.2', 'hello'));
      await settle();
    } finally {
      for (const [name, fn] of handlers) unsubscribe(name, fn);
    }
    const names = seen.map((s) => `${s.message.device === a ? 'a' : s.message.device === b ? 'b' : '?'} ${s.name}`);
    expect(names).toEqual([
      'a plexd-userspace:peer:handshake-initiation-sent',
      'b plexd-userspace:peer:endpoint-changed',
      'b plexd-userspace:peer:keypair-created',
      'b plexd-userspace:peer:handshake-response-sent',
      'a plexd-userspace:peer:keypair-created',
      'a plexd-userspace:peer:handshake-complete',
      'b plexd-userspace:peer:handshake-complete',
    ]);
    const init = seen[0]!.message;
    expect(init.retry).toBe(false);
    expect(Buffer.from(init.publicKey).equals(Buffer.from(b.publicKey!))).toBe(true);
    expect(seen[1]!.message.endpoint).toEqual({ address: '10.0.0.1', port: 51820 });
    expect(seen.filter((s) => s.name.endsWith('keypair-created')).map((s) => s.message.isInitiator)).toEqual([false, true]);
    // Subscribers get copies: scribbling on them changes nothing in the device.
    init.publicKey.fill(0);
    expect(deviceEngine(a).getPeer(b.publicKey!)).toBeDefined();
  });

  it('publishes drops with their reason, and nothing once unsubscribed', async () => {
    const { a, bindA } = await pair();
    const drops: DropMessage[] = [];
    const fn = (m: unknown) => void drops.push(m as DropMessage);
    subscribe(DIAGNOSTICS_CHANNELS.drop, fn);
    try {
      bindA.receive(Uint8Array.of(9, 0, 0, 0, 1, 2, 3, 4), { address: '10.0.0.9', port: 1 });
      a.writePacket(ipPacket('192.168.0.1', '10.9.9.9', 'nowhere'));
    } finally {
      unsubscribe(DIAGNOSTICS_CHANNELS.drop, fn);
    }
    bindA.receive(Uint8Array.of(9, 0, 0, 0), { address: '10.0.0.9', port: 1 });
    expect(drops.map((d) => [d.device === a, d.reason, d.publicKey])).toEqual([
      [true, 'unknown-type', undefined],
      [true, 'no-route', undefined],
    ]);
    expect(a.drops()['unknown-type']).toBe(2);
  });
});

describe('no environment in the library', () => {
  it('ignores PLEXD_CRYPTO and PLEXD_BIND; the CLI turns them into options', async () => {
    const saved = { c: process.env['PLEXD_CRYPTO'], b: process.env['PLEXD_BIND'] };
    process.env['PLEXD_CRYPTO'] = 'no-such-provider';
    process.env['PLEXD_BIND'] = 'no-such-bind';
    try {
      expect(defaultCrypto()).toBe(nodeCrypto);
      const d = await Device.create({ onPacket: () => {}, bind: new MemoryNetwork().createBind(['10.0.0.1']) });
      open.push(d);
      expect(deviceChoicesFromEnv({ PLEXD_CRYPTO: 'noble', PLEXD_BIND: 'dgram', PLEXD_TUN_OFFLOAD: '0' })).toEqual({ crypto: nobleCrypto, bindKind: 'dgram', tunOffload: false });
      expect(deviceChoicesFromEnv({})).toEqual({ crypto: nodeCrypto, bindKind: undefined, tunOffload: true });
      expect(() => deviceChoicesFromEnv({ PLEXD_CRYPTO: 'rot13' })).toThrow(RangeError);
    } finally {
      for (const [k, v] of [['PLEXD_CRYPTO', saved.c], ['PLEXD_BIND', saved.b]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe('STUN demultiplexing', () => {
  it('routes to the foreign handler exactly what looksLikeStun takes', async () => {
    const { a, bindA } = await pair();
    const foreign: number[] = [];
    a.setForeignHandler((data) => void foreign.push(data[0]!));
    const dropsBefore = Object.values(a.drops()).reduce((x, y) => x + y, 0);
    const inputs: Uint8Array[] = [];
    for (const first of [0x00, 0x01, 0x02, 0x3f, 0x40, 0x80]) {
      const m = new Uint8Array(28);
      m.set([first, 0x01, 0, 8, 0x21, 0x12, 0xa4, 0x42]);
      inputs.push(m);
    }
    for (const m of inputs) bindA.receive(m, { address: '198.51.100.1', port: 3478 });
    expect(foreign).toEqual(inputs.filter(looksLikeStun).map((m) => m[0]));
    expect(foreign).toEqual([0x00, 0x01, 0x02, 0x3f]);
    expect(Object.values(a.drops()).reduce((x, y) => x + y, 0) - dropsBefore).toBe(2); // 0x40, 0x80: the engine's
  });
});
