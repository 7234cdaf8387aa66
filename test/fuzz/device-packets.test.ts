// Packet fuzz through the device layer (issue 11): two Devices with MemoryTuns over a
// MemoryNetwork hold a live session; random datagrams and mutated captures of their real
// traffic (message types 1-4, STUN-shaped ones too) go into each Device through its MemoryBind, so the handshake
// queue, its budget, the under-load switch and the STUN demultiplexer are in the path. Asserts:
// nothing throws, nothing reaches a TUN, every input is one counted drop (or one call of the
// foreign handler for STUN-shaped input), peer/session/route counts stay flat, heap bounded.
// `npm run fuzz` scales it (PLEXD_FUZZ_ITERATIONS); a failure names its seed and input.

import { afterAll, describe, expect, it } from 'vitest';
import type { DropReason, Endpoint } from '../../src/core/actions.js';
import { MessageType } from '../../src/core/messages.js';
import { PEER_STAGED } from '../../src/core/peer.js';
import { Device, deviceEngine } from '../../src/device/device.js';
import { type MemoryBind, MemoryNetwork } from '../../src/io/bind-memory.js';
import { ManualClock } from '../../src/io/clock.js';
import { MemoryTun } from '../../src/io/tun-memory.js';
import { fuzzIterations, fuzzSeed, fuzzTimeout } from '../helpers/fuzz.js';
import { retainedBytes } from '../helpers/heap.js';
import { ipPacket } from '../helpers/ip-packet.js';
import { seededInts, seededRandom } from '../helpers/rng.js';

const ITERATIONS = fuzzIterations(40_000);
const SEED = fuzzSeed(0x11c0ffee);
const BATCH = 64;

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

interface Side {
  device: Device;
  /** Its MemoryBind: receive() feeds a datagram as if from the network. */
  bind: MemoryBind;
  tun: MemoryTun;
  endpoint: Endpoint;
  foreign: number;
}

/** Two devices with a session both ways and every datagram they sent, captured. */
async function livePair(clock: ManualClock): Promise<{ a: Side; b: Side; captures: Uint8Array[]; net: MemoryNetwork }> {
  const net = new MemoryNetwork();
  const captures: Uint8Array[] = [];
  net.setFilter((d) => {
    captures.push(d.data.slice());
    return d;
  });
  const make = async (address: string, port: number): Promise<Side> => {
    const tun = new MemoryTun({ name: `fz${port}` });
    const bind = net.createBind([address]);
    const device = await Device.create({ tun, bind, clock, listenPort: port });
    const side: Side = { device, bind, tun, endpoint: { address, port }, foreign: 0 };
    device.setForeignHandler(() => void side.foreign++);
    return side;
  };
  const a = await make('10.0.0.1', 51820);
  const b = await make('10.0.0.2', 51821);
  const key = (n: number) => Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + n) & 0xff);
  await a.device.configure({ privateKey: key(1) });
  await b.device.configure({ privateKey: key(2) });
  await a.device.configure({ peers: [{ publicKey: b.device.publicKey!, endpoint: '10.0.0.2:51821', allowedIps: ['192.168.0.2/32', 'fd10::2/128'] }] });
  await b.device.configure({ peers: [{ publicKey: a.device.publicKey!, endpoint: '10.0.0.1:51820', allowedIps: ['192.168.0.1/32', 'fd10::1/128'] }] });
  const settle = async () => {
    for (let i = 0; i < 20; i++) await turn();
  };
  a.tun.inject(ipPacket('192.168.0.1', '192.168.0.2', 'one'));
  await settle();
  b.tun.inject(ipPacket('192.168.0.2', '192.168.0.1', 'two'));
  b.tun.inject(ipPacket('fd10::2', 'fd10::1', 'six'));
  await settle();
  a.tun.inject(ipPacket('192.168.0.1', '192.168.0.2', 'three'));
  await settle();
  expect(b.tun.takeWritten()).toHaveLength(2);
  expect(a.tun.takeWritten()).toHaveLength(2);
  // A cookie reply too: b under load answers a's captured initiation with one.
  deviceEngine(b.device).setUnderLoad(clock.now() + 1);
  b.bind.receive(captures.find((c) => c[0] === MessageType.initiation)!.slice(), a.endpoint);
  await settle();
  deviceEngine(b.device).setUnderLoad(0);
  return { a, b, captures, net };
}

function flatState(s: Side): unknown {
  const e = deviceEngine(s.device);
  return { peers: e.peerCount, indices: e.indexCount, routes: e.allowedIps.size, staged: [...e.peers()].map((p) => p[PEER_STAGED].length) };
}

const totalDrops = (s: Side): number => Object.values(s.device.drops()).reduce((x, y) => x + y, 0);

describe('device packet fuzz', () => {
  const open: Device[] = [];
  afterAll(async () => {
    for (const d of open) await d.close();
  });

  it(`${ITERATIONS} random and mutated datagrams through the MemoryBind into the Device: no throw, nothing delivered, every one counted`, async () => {
    const clock = new ManualClock();
    const { a, b, captures, net } = await livePair(clock);
    open.push(a.device, b.device);
    const types = new Set(captures.map((c) => c[0]));
    for (const t of [MessageType.initiation, MessageType.response, MessageType.cookieReply, MessageType.transport]) expect(types.has(t)).toBe(true);
    // What the devices send while fuzzed is held back and tallied: cookie replies are expected,
    // timers may send keepalives, but no handshake response and no data may ever leave.
    const reactions = new Map<number, number>();
    net.setFilter((d) => {
      const kind = d.data[0] === MessageType.transport && d.data.length > 32 ? -1 : d.data[0]!;
      reactions.set(kind, (reactions.get(kind) ?? 0) + 1);
      return null;
    });
    const sides = [a, b];
    const int = seededInts(SEED);
    const fill = seededRandom(SEED ^ 0x5a5a5a5a);
    const before = sides.map(flatState);
    const dropsBefore = sides.map(totalDrops);
    const reasonsBefore = sides.map((s) => ({ ...s.device.drops() }));
    const foreignBefore = sides.map((s) => s.foreign);
    const tunBefore = sides.map((s) => s.tun.stats.txPackets);
    const heapBefore = retainedBytes();

    const stun = (): Uint8Array => {
      const m = new Uint8Array(20 + 4 * int(8));
      fill(m);
      m[0] = int(2);
      m[2] = (m.length - 20) >> 8;
      m[3] = (m.length - 20) & 0xff;
      m.set([0x21, 0x12, 0xa4, 0x42], 4);
      return m;
    };
    const input = (): Uint8Array => {
      const mode = int(10);
      if (mode === 0) {
        const m = new Uint8Array(int(220));
        fill(m);
        if (m.length > 0 && int(2) === 0) m[0] = 1 + int(4);
        if (m.length > 3 && int(2) === 0) m[1] = m[2] = m[3] = 0;
        return m;
      }
      if (mode === 1) return stun();
      const base = captures[int(captures.length)]!;
      if (mode <= 6) {
        const m = base.slice();
        for (let f = 1 + int(4); f > 0; f--) m[int(m.length)]! ^= 1 << int(8);
        if (m.every((x, j) => x === base[j])) m[int(m.length)]! ^= 1 << int(8);
        return m;
      }
      if (mode <= 8) return base.slice(0, int(base.length));
      const m = new Uint8Array(base.length + 1 + int(32));
      m.set(base);
      fill(m.subarray(base.length));
      return m;
    };

    let sent = 0;
    const seen = new Map<number, number>();
    for (let i = 0; i < ITERATIONS; i += BATCH) {
      const n = Math.min(BATCH, ITERATIONS - i);
      for (let k = 0; k < n; k++) {
        const m = input();
        const side = sides[int(2)]!;
        const other = side === a ? b : a;
        const from = int(3) === 0 ? { address: `198.18.${int(256)}.${int(256)}`, port: 1 + int(65535) } : other.endpoint;
        seen.set(m[0] ?? -1, (seen.get(m[0] ?? -1) ?? 0) + 1);
        try {
          side.bind.receive(m, from);
        } catch (err) {
          throw new Error(`seed ${SEED} input ${i + k} (type ${m[0]}, ${m.length} bytes) threw: ${String(err)}`);
        }
        sent++;
      }
      // Let the handshake queues drain (16 per device per turn), with a hang guard.
      const accounted = () => sides.reduce((t, s, j) => t + totalDrops(s) - dropsBefore[j]! + s.foreign - foreignBefore[j]!, 0);
      for (let guard = 0; accounted() < sent; guard++) {
        if (guard > 10_000) throw new Error(`seed ${SEED}: after input ${sent}, only ${accounted()} accounted for`);
        await turn();
      }
      expect(accounted(), `seed ${SEED} after input ${sent}`).toBe(sent);
      if ((i / BATCH) % 16 === 15) clock.advance(1 + int(40)); // time moves: load and limiters recover
    }

    const heapDelta = retainedBytes() - heapBefore;
    expect(sides.map(flatState)).toEqual(before);
    expect(sides.map((s) => s.tun.stats.txPackets)).toEqual(tunBefore);
    expect(sides.map((s) => s.tun.takeWritten().length)).toEqual([0, 0]);
    expect(heapDelta).toBeLessThan(32 * 1024 * 1024);
    expect([reactions.get(MessageType.response) ?? 0, reactions.get(-1) ?? 0]).toEqual([0, 0]);
    // The sessions survived: traffic still flows.
    net.setFilter(undefined);
    a.tun.inject(ipPacket('192.168.0.1', '192.168.0.2', 'after'));
    for (let k = 0; k < 20; k++) await turn();
    expect(b.tun.takeWritten()).toHaveLength(1);

    const reasons: Partial<Record<DropReason, number>> = {};
    for (const [j, s] of sides.entries()) {
      for (const [r, c] of Object.entries(s.device.drops()) as Array<[DropReason, number]>) {
        const d = c - reasonsBefore[j]![r];
        if (d > 0) reasons[r] = (reasons[r] ?? 0) + d;
      }
    }
    const foreign = sides.reduce((t, s, j) => t + s.foreign - foreignBefore[j]!, 0);
    console.log(
      `device-packets fuzz: seed ${SEED}, ${sent} inputs (first byte ${[...seen].sort((x, y) => x[0] - y[0]).filter(([t]) => t >= 0 && t <= 4).map(([t, c]) => `${t}:${c}`).join(' ')}), ` +
        `${foreign} to the STUN handler, drops ${JSON.stringify(reasons)}, delivered 0, sent back ${JSON.stringify(Object.fromEntries(reactions))}, heap delta ${(heapDelta / 1048576).toFixed(1)} MiB`,
    );
    for (const r of ['short', 'unknown-type', 'mac1', 'decrypt', 'unknown-index'] as const) expect(reasons[r] ?? 0).toBeGreaterThan(0);
  }, fuzzTimeout(ITERATIONS, 0.2));
});
