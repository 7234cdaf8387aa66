// The path prober (src/agent/path-prober.ts) on a manual clock: two nodes joined by several
// simulated paths (per-path one-way delay, each can die), then two real Devices on a memory
// network with the prober on their WireGuard sockets.

import { describe, expect, it } from 'vitest';
import { FULL_REPROBE_MS, KEEPALIVE_MS, MAX_LEARNED, PathProber, PONG_TIMEOUT_MS, isPrivateAddress, type ProbeSocket } from '../../src/agent/path-prober.js';
import { nobleCrypto } from '../../src/core/crypto-noble.js';
import { Device } from '../../src/device/device.js';
import type { Endpoint, SendResult } from '../../src/io/bind.js';
import { MemoryNetwork } from '../../src/io/bind-memory.js';
import { ProbeCodec } from '../../src/nat/path-probe.js';
import { ManualTimers } from '../nat/manual-timers.js';
import { seededRandom } from '../helpers/rng.js';

const b64 = (k: Uint8Array) => Buffer.from(k).toString('base64');
const PORT = 51820;

function privateKey(seed: number): Uint8Array {
  const k = new Uint8Array(32);
  seededRandom(seed)(k);
  return k;
}

/** Path i joins address `a[i]` of node A and `b[i]` of node B, with a one-way delay; it can die. */
interface SimPath {
  readonly a: string;
  readonly b: string;
  delayMs: number;
  up: boolean;
}

class SimNode implements ProbeSocket {
  handler: ((data: Uint8Array, from: Endpoint) => void) | undefined;
  sent = 0;
  readonly net: SimNet;
  readonly side: 'a' | 'b';
  constructor(net: SimNet, side: 'a' | 'b') {
    this.net = net;
    this.side = side;
  }
  setProbeHandler(h: ((data: Uint8Array, from: Endpoint) => void) | undefined): void {
    this.handler = h;
  }
  sendRaw(data: Uint8Array, to: Endpoint): SendResult {
    this.sent++;
    this.net.carry(this.side, data.slice(), to);
    return 'sent';
  }
}

class SimNet {
  readonly timers = new ManualTimers();
  readonly a = new SimNode(this, 'a');
  readonly b = new SimNode(this, 'b');
  readonly paths: SimPath[];
  constructor(paths: SimPath[]) {
    this.paths = paths;
  }
  carry(from: 'a' | 'b', data: Uint8Array, to: Endpoint): void {
    const path = this.paths.find((p) => (from === 'a' ? p.b : p.a) === to.address && to.port === PORT);
    if (path === undefined || !path.up) return;
    const src = { address: from === 'a' ? path.a : path.b, port: PORT };
    const dst = from === 'a' ? this.b : this.a;
    this.timers.setTimeout(() => {
      if (path.up) dst.handler?.(data, src);
    }, path.delayMs);
  }
}

function lab(paths: SimPath[]) {
  const net = new SimNet(paths);
  const keyA = privateKey(1);
  const keyB = privateKey(2);
  const pubA = b64(nobleCrypto.x25519PublicKey(keyA));
  const pubB = b64(nobleCrypto.x25519PublicKey(keyB));
  const chosenByA: Array<string | undefined> = [];
  const mk = (socket: SimNode, key: Uint8Array, seed: number, log?: Array<string | undefined>) =>
    new PathProber({
      socket,
      crypto: nobleCrypto,
      privateKey: key,
      timers: net.timers,
      wallMs: () => 1_700_000_000_000 + net.timers.now(),
      fillRandom: seededRandom(seed),
      onChange: (_k, ep) => log?.push(ep?.address),
    });
  const a = mk(net.a, keyA, 11, chosenByA);
  const b = mk(net.b, keyB, 12);
  a.setPeer(pubB, paths.map((p) => ({ address: p.b, port: PORT })));
  b.setPeer(pubA, paths.map((p) => ({ address: p.a, port: PORT })));
  return { net, a, b, pubA, pubB, chosenByA, keyA };
}

describe('PathProber', () => {
  it('of several candidates where only one works, picks that one', () => {
    const { net, a, pubB, chosenByA } = lab([
      { a: '10.0.0.1', b: '10.0.0.2', delayMs: 1, up: false },
      { a: '198.51.100.1', b: '203.0.113.2', delayMs: 10, up: true },
      { a: '192.168.7.1', b: '192.168.7.2', delayMs: 1, up: false },
    ]);
    net.timers.advance(3000);
    expect(a.pathOf(pubB)).toMatchObject({ endpoint: { address: '203.0.113.2', port: PORT }, kind: 'direct-public', rttMs: 20, candidates: 3, live: 1 });
    expect(a.pathOf(pubB)?.observed).toEqual({ address: '198.51.100.1', port: PORT });
    expect(chosenByA).toEqual(['203.0.113.2']);
  });

  it('of two working paths with different RTTs picks the faster; a LAN path close in RTT beats a public one', () => {
    const { net, a, pubB } = lab([
      { a: '198.51.100.1', b: '203.0.113.2', delayMs: 2, up: true },
      { a: '10.1.0.1', b: '10.1.0.2', delayMs: 20, up: true },
    ]);
    net.timers.advance(3000);
    expect(a.pathOf(pubB)).toMatchObject({ endpoint: { address: '203.0.113.2' }, rttMs: 4, live: 2 });
    const close = lab([
      { a: '198.51.100.1', b: '203.0.113.2', delayMs: 1, up: true },
      { a: '10.1.0.1', b: '10.1.0.2', delayMs: 2, up: true },
    ]);
    close.net.timers.advance(3000);
    expect(close.a.pathOf(close.pubB)).toMatchObject({ endpoint: { address: '10.1.0.2' }, kind: 'direct-lan' });
    // The faster public answer came first and was chosen at once, then the LAN one took over.
    expect(close.chosenByA).toEqual(['203.0.113.2', '10.1.0.2']);
  });

  it('when the chosen path dies, moves to the other within a keepalive period plus the pong timeout', () => {
    const paths: SimPath[] = [
      { a: '10.1.0.1', b: '10.1.0.2', delayMs: 1, up: true },
      { a: '198.51.100.1', b: '203.0.113.2', delayMs: 15, up: true },
    ];
    const { net, a, pubB, chosenByA } = lab(paths);
    net.timers.advance(10_000);
    expect(a.pathOf(pubB)?.endpoint?.address).toBe('10.1.0.2');
    paths[0]!.up = false;
    const diedAt = net.timers.now();
    let movedAt: number | undefined;
    for (let t = 0; t < FULL_REPROBE_MS && movedAt === undefined; t += 100) {
      net.timers.advance(100);
      if (a.pathOf(pubB)?.endpoint?.address === '203.0.113.2') movedAt = net.timers.now();
    }
    expect(movedAt).toBeDefined();
    expect(movedAt! - diedAt).toBeLessThanOrEqual(KEEPALIVE_MS + PONG_TIMEOUT_MS + 100);
    expect(chosenByA).toEqual(['10.1.0.2', '203.0.113.2']);
    // Back up: the next full re-probe returns to the LAN path.
    paths[0]!.up = true;
    net.timers.advance(FULL_REPROBE_MS + 5000);
    expect(a.pathOf(pubB)?.endpoint?.address).toBe('10.1.0.2');
    // Both dead: no direct path is reported.
    paths[0]!.up = paths[1]!.up = false;
    net.timers.advance(FULL_REPROBE_MS + 5000);
    expect(a.pathOf(pubB)).toMatchObject({ endpoint: undefined, live: 0 });
    expect(chosenByA.at(-1)).toBeUndefined();
  });

  it("a stranger's probes and forged, replayed or unsolicited ones are dropped, counted and never answered", () => {
    const { net, a, pubA } = lab([{ a: '10.1.0.1', b: '10.1.0.2', delayMs: 1, up: true }]);
    net.timers.advance(3000);
    const stranger = new ProbeCodec(nobleCrypto, privateKey(3), seededRandom(13));
    stranger.addPeer(Buffer.from(pubA, 'base64'));
    const sentBefore = net.a.sent;
    const from = { address: '203.0.113.66', port: 4444 };
    a.receive(stranger.ping(new Uint8Array(Buffer.from(pubA, 'base64')), new Uint8Array(12), Date.now()), from);
    const forged = new Uint8Array(73);
    seededRandom(5)(forged);
    forged.set([0xf0, 0x70, 0x6c, 0x78, 1], 0);
    a.receive(forged, from);
    expect(net.a.sent).toBe(sentBefore); // neither answered
    // A genuine ping from b, captured and replayed.
    let captured: Uint8Array | undefined;
    const real = net.b.sendRaw.bind(net.b);
    net.b.sendRaw = (d, to) => ((captured = d.slice()), real(d, to));
    net.timers.advance(KEEPALIVE_MS);
    net.b.sendRaw = real;
    const sentAfterGenuine = net.a.sent;
    a.receive(captured!, from);
    expect(a.drops()).toMatchObject({ 'unknown-sender': 2, replay: 1 }); // forged: its random id names no peer
    expect(net.a.sent).toBe(sentAfterGenuine);
    expect(sentBefore).toBeLessThan(sentAfterGenuine); // a did answer b's genuine pings
  });

  it('a genuine pong for no outstanding ping, and a duplicated one, are dropped and counted', () => {
    const { net, a, pubA } = lab([{ a: '10.1.0.1', b: '10.1.0.2', delayMs: 1, up: true }]);
    const real = net.b.sendRaw.bind(net.b);
    net.b.sendRaw = (d, to) => (real(d, to), real(d, to));
    net.timers.advance(3000);
    // Each pong arrives twice: the copy is a replay to the codec's window.
    expect(a.drops().replay).toBeGreaterThan(0);
    expect(a.counters.pongsReceived).toBeGreaterThan(0);
    // b's key (as b would seal it, later counter): a pong whose tx id a never sent.
    const asB = new ProbeCodec(nobleCrypto, privateKey(2), seededRandom(77));
    asB.addPeer(new Uint8Array(Buffer.from(pubA, 'base64')));
    const sent = net.a.sent;
    a.receive(asB.pong(new Uint8Array(Buffer.from(pubA, 'base64')), new Uint8Array(12).fill(9), { address: '10.1.0.1', port: PORT }, 1_800_000_000_000), { address: '10.1.0.2', port: PORT });
    expect(a.drops().unsolicited).toBe(1);
    expect(net.a.sent).toBe(sent);
  });

  it('learns a peer-reflexive candidate from an authenticated ping and uses it once it answers', () => {
    // B is reachable only at 203.0.113.2:51820, but A was told a mapping that does not work
    // (the port B's STUN server saw); B pings A's listed address, so A learns where B really is.
    const { net, a, pubA, pubB } = lab([{ a: '198.51.100.1', b: '203.0.113.2', delayMs: 5, up: true }]);
    a.setPeer(pubB, [{ address: '203.0.113.2', port: 40000 }]);
    net.timers.advance(3000);
    expect(a.pathOf(pubB)).toMatchObject({ endpoint: { address: '203.0.113.2', port: PORT }, kind: 'direct-public', candidates: 2, learned: 1, live: 1 });
    expect(a.counters.learned).toBe(1);
    // More learned addresses than kept (b's genuine pings from new ports): the one in use stays.
    const asB = new ProbeCodec(nobleCrypto, privateKey(2), seededRandom(98));
    const keyA = new Uint8Array(Buffer.from(pubA, 'base64'));
    asB.addPeer(keyA);
    for (let i = 0; i < MAX_LEARNED + 1; i++) a.receive(asB.ping(keyA, new Uint8Array(12).fill(i + 1), 1_700_000_000_000 + net.timers.now() + 1), { address: '203.0.113.2', port: 41000 + i });
    expect(a.pathOf(pubB)).toMatchObject({ endpoint: { address: '203.0.113.2', port: PORT }, candidates: 1 + MAX_LEARNED, learned: MAX_LEARNED });
    net.timers.advance(3000);
    expect(a.pathOf(pubB)).toMatchObject({ endpoint: { address: '203.0.113.2', port: PORT }, live: 1 });
    // A new list from the control plane keeps what was learned; listing it makes it an ordinary one.
    a.setPeer(pubB, [{ address: '203.0.113.2', port: 40001 }]);
    net.timers.advance(3000);
    expect(a.pathOf(pubB)).toMatchObject({ endpoint: { address: '203.0.113.2', port: PORT }, candidates: 1 + MAX_LEARNED, learned: MAX_LEARNED });
    a.setPeer(pubB, [{ address: '203.0.113.2', port: PORT }]);
    expect(a.pathOf(pubB)).toMatchObject({ endpoint: { address: '203.0.113.2', port: PORT }, candidates: MAX_LEARNED, learned: MAX_LEARNED - 1 });
    expect(a.counters.learned).toBe(2 + MAX_LEARNED);
  });

  it('learns at most MAX_LEARNED addresses per peer, and nothing from forged or replayed pings', () => {
    const { net, a, pubA, pubB } = lab([{ a: '10.1.0.1', b: '10.1.0.2', delayMs: 1, up: true }]);
    net.timers.advance(3000);
    // Genuine pings of b arriving from ever new addresses (as through a port-randomizing NAT),
    // sealed as b would (its counter floor is the wall clock, kept just ahead of b's own).
    let port = 30000;
    const real = net.b.sendRaw.bind(net.b);
    const pings: Uint8Array[] = [];
    net.b.sendRaw = (d, to) => (d[4] === 1 && pings.push(d.slice()), real(d, to));
    net.timers.advance(4 * KEEPALIVE_MS);
    net.b.sendRaw = real;
    expect(pings.length).toBeGreaterThan(0);
    const sender = new ProbeCodec(nobleCrypto, privateKey(2), seededRandom(99));
    sender.addPeer(new Uint8Array(Buffer.from(pubA, 'base64')));
    for (let i = 0; i < 3 * MAX_LEARNED; i++) a.receive(sender.ping(new Uint8Array(Buffer.from(pubA, 'base64')), new Uint8Array(12).fill(i + 1), 1_700_000_000_000 + net.timers.now() + 1), { address: '203.0.113.9', port: port++ });
    expect(a.counters.learned).toBe(3 * MAX_LEARNED);
    expect(a.pathOf(pubB)).toMatchObject({ candidates: 1 + MAX_LEARNED, learned: MAX_LEARNED });
    // Replays of b's earlier genuine pings from yet another address, and a stranger: not learned.
    for (const d of pings) a.receive(d, { address: '203.0.113.10', port: 1 });
    const stranger = new ProbeCodec(nobleCrypto, privateKey(3), seededRandom(13));
    stranger.addPeer(new Uint8Array(Buffer.from(pubA, 'base64')));
    a.receive(stranger.ping(new Uint8Array(Buffer.from(pubA, 'base64')), new Uint8Array(12), 1_700_000_000_000 + net.timers.now() + 2), { address: '203.0.113.11', port: 1 });
    expect(a.counters.learned).toBe(3 * MAX_LEARNED);
    expect(a.drops()).toMatchObject({ replay: pings.length, 'unknown-sender': 1 });
    // The learned ones never answer: the LAN path stays chosen.
    net.timers.advance(FULL_REPROBE_MS + 5000);
    expect(a.pathOf(pubB)?.endpoint?.address).toBe('10.1.0.2');
  });

  it('classifies private addresses', () => {
    for (const x of ['10.2.3.4', '172.16.0.1', '172.31.255.255', '192.168.1.1', 'fd00::1', 'fe80::1', '127.0.0.1', '::1']) expect(isPrivateAddress(x)).toBe(true);
    for (const x of ['172.32.0.1', '8.8.8.8', '100.64.0.1', '2001:db8::1', 'nonsense']) expect(isPrivateAddress(x)).toBe(false);
  });
});

describe('PathProber on Devices', () => {
  it('probes over the WireGuard socket: the dead candidate is skipped, WireGuard still works, foreign probes are dropped', async () => {
    const net = new MemoryNetwork();
    const timers = new ManualTimers();
    const keys = [privateKey(21), privateKey(22)];
    const got: string[] = [];
    const devices = await Promise.all(
      ['10.9.0.1', '10.9.0.2'].map((address) =>
        Device.create({ bind: net.createBind([address]), crypto: nobleCrypto, fillRandom: seededRandom(address.length), onPacket: (p) => got.push(Buffer.from(p.subarray(20)).toString()) }),
      ),
    );
    const [da, db] = devices as [Device, Device];
    const pubs = keys.map((k) => b64(nobleCrypto.x25519PublicKey(k)));
    for (let i = 0; i < 2; i++) await devices[i]!.configure({ privateKey: b64(keys[i]!), replacePeers: true, peers: [{ publicKey: pubs[1 - i]!, allowedIps: ['0.0.0.0/0'] }] });
    const endpoints: Array<Endpoint | undefined> = [];
    const pa = new PathProber({ socket: da, crypto: nobleCrypto, privateKey: keys[0]!, timers, fillRandom: seededRandom(31), onChange: (_k, ep) => void endpoints.push(ep) });
    const pb = new PathProber({ socket: db, crypto: nobleCrypto, privateKey: keys[1]!, timers, fillRandom: seededRandom(32), onChange: () => {} });
    pa.setPeer(pubs[1]!, [{ address: '10.9.9.9', port: db.listenPort }, { address: '10.9.0.2', port: db.listenPort }]);
    pb.setPeer(pubs[0]!, [{ address: '10.9.0.1', port: da.listenPort }]);
    const settle = async () => {
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    };
    await settle();
    timers.advance(3000);
    await settle();
    expect(endpoints).toEqual([{ address: '10.9.0.2', port: db.listenPort }]);
    expect(pa.pathOf(pubs[1]!)).toMatchObject({ kind: 'direct-lan', candidates: 2, live: 1 });
    // WireGuard on the same port, the endpoint set from the probe result.
    await da.configure({ peers: [{ publicKey: pubs[1]!, updateOnly: true, endpoint: `10.9.0.2:${db.listenPort}` }] });
    const pkt = new Uint8Array(24);
    pkt.set([0x45, 0, 0, 24, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    pkt.set(Buffer.from('ping'), 20);
    da.writePacket(pkt);
    for (let i = 0; i < 50 && got.length === 0; i++) await settle();
    expect(got).toEqual(['ping']);
    // A stranger's probe to b's socket: dropped and counted, nothing sent back.
    const stranger = new ProbeCodec(nobleCrypto, privateKey(23), seededRandom(33));
    stranger.addPeer(nobleCrypto.x25519PublicKey(keys[1]!));
    const sbind = net.createBind(['10.9.0.66']);
    let answers = 0;
    sbind.onReceive(() => void answers++);
    await sbind.open(0);
    sbind.send(stranger.ping(nobleCrypto.x25519PublicKey(keys[1]!), new Uint8Array(12), Date.now()), { address: '10.9.0.2', port: db.listenPort });
    await settle();
    expect(pb.drops()['unknown-sender']).toBe(1);
    expect(answers).toBe(0);
    pa.close();
    pb.close();
    sbind.close();
    await da.close();
    await db.close();
  });
});
