// STUN client and server: RFC 8489 retransmit schedule on a manual clock, transaction-ID and
// source checks with counted drops, error responses, NAT classification (pure, and end to end
// through simulated NATs on the memory network), and the server's handling of hostile input.

import { describe, expect, it } from 'vitest';
import type { Endpoint } from '../../src/io/bind.js';
import { MemoryNetwork } from '../../src/io/bind-memory.js';
import { classifyNat, discoverNat } from '../../src/nat/nat-type.js';
import { sameEndpoint } from '../../src/core/endpoint.js';
import { StunClient, type StunResult } from '../../src/nat/stun-client.js';
import {
  STUN_ATTR,
  decodeStun,
  encodeBindingRequest,
  encodeBindingSuccess,
  encodeErrorResponse,
  encodeStun,
  readErrorCode,
  readMappedAddress,
} from '../../src/nat/stun-message.js';
import { StunResponder, createStunServer } from '../../src/nat/stun-server.js';
import { seededRandom } from '../helpers/rng.js';
import { MemoryNat, natFilter } from './memory-nat.js';
import { ManualTimers } from './manual-timers.js';

const SERVER: Endpoint = { address: '192.0.2.1', port: 3478 };

function harness(opts: { rtoMs?: number; rc?: number; rm?: number } = {}) {
  const timers = new ManualTimers();
  const sent: { at: number; data: Uint8Array; to: Endpoint }[] = [];
  const client = new StunClient({ send: (data, to) => sent.push({ at: timers.now(), data, to }), timers, fillRandom: seededRandom(1), ...opts });
  return { timers, sent, client };
}

function settled(p: Promise<StunResult>): { value: StunResult | undefined } {
  const box: { value: StunResult | undefined } = { value: undefined };
  void p.then((v) => (box.value = v));
  return box;
}

const flush = () => new Promise((r) => setImmediate(r));

describe('StunClient retransmits (RFC 8489 section 6.2.1)', () => {
  it('default timers: 7 transmissions at 0, 500, 1500, ... 31500 ms, timeout at 39500 ms', async () => {
    const { timers, sent, client } = harness();
    const r = settled(client.request(SERVER));
    timers.advance(39_499);
    await flush();
    expect(sent.map((s) => s.at)).toEqual([0, 500, 1500, 3500, 7500, 15500, 31500]);
    expect(r.value).toBeUndefined();
    timers.advance(1);
    await flush();
    expect(r.value).toEqual({ kind: 'timeout', server: SERVER, elapsedMs: 39_500, transmissions: 7 });
    expect(client.counters).toMatchObject({ requests: 1, retransmits: 6, timeouts: 1 });
    expect(client.pending).toBe(0);
    expect(timers.size).toBe(0);
    // Every transmission is the same request.
    expect(new Set(sent.map((s) => Buffer.from(s.data).toString('hex'))).size).toBe(1);
  });

  it('configurable: rto 10, rc 3, rm 2 -> sends at 0, 10, 30; timeout at 50', async () => {
    const { timers, sent, client } = harness({ rtoMs: 10, rc: 3, rm: 2 });
    const r = settled(client.request(SERVER));
    timers.advance(100);
    await flush();
    expect(sent.map((s) => s.at)).toEqual([0, 10, 30]);
    expect(r.value).toMatchObject({ kind: 'timeout', elapsedMs: 50 });
  });

  it('an answer after a retransmit settles and stops the timers', async () => {
    const { timers, sent, client } = harness();
    const p = client.request(SERVER);
    timers.advance(600);
    const req = decodeStun(sent[1]!.data);
    if (!req.ok) throw new Error(req.reason);
    expect(client.receive(encodeBindingSuccess(req.message.transactionId, { address: '203.0.113.5', port: 40000 }), SERVER)).toBe(true);
    expect(await p).toEqual({ kind: 'mapped', server: SERVER, mapped: { address: '203.0.113.5', port: 40000 }, elapsedMs: 600, transmissions: 2 });
    expect(timers.size).toBe(0);
    timers.advance(60_000);
    expect(sent).toHaveLength(2);
  });

  it('refuses bad options and too many requests in flight', () => {
    expect(() => new StunClient({ send: () => {}, rtoMs: 0 })).toThrow(RangeError);
    expect(() => new StunClient({ send: () => {}, rc: 1.5 })).toThrow(RangeError);
    expect(() => new StunClient({} as never)).toThrow(TypeError);
    const { client } = harness();
    const c = new StunClient({ send: () => {}, maxPending: 2, timers: new ManualTimers() });
    void c.request(SERVER);
    void c.request(SERVER);
    expect(() => c.request(SERVER)).toThrow(RangeError);
    c.close();
    client.close();
  });
});

describe('StunClient input checks', () => {
  it('ignores and counts wrong transaction IDs, wrong sources, requests; non-STUN is not taken', async () => {
    const { sent, client } = harness();
    const p = client.request(SERVER);
    const req = decodeStun(sent[0]!.data);
    if (!req.ok) throw new Error(req.reason);
    const tid = req.message.transactionId;
    const other = tid.slice();
    other[11]! ^= 1;
    expect(client.receive(encodeBindingSuccess(other, { address: '6.6.6.6', port: 6 }), SERVER)).toBe(true);
    expect(client.receive(encodeBindingSuccess(tid, { address: '6.6.6.6', port: 6 }), { address: '192.0.2.66', port: 3478 })).toBe(true);
    expect(client.receive(encodeBindingSuccess(tid, { address: '6.6.6.6', port: 6 }), { address: '192.0.2.1', port: 3479 })).toBe(true);
    expect(client.receive(encodeBindingRequest(tid), SERVER)).toBe(true);
    expect(client.receive(encodeStun(1, 'success', tid, []), SERVER)).toBe(true);
    expect(client.receive(encodeStun(2, 'success', tid, []), SERVER)).toBe(true);
    const truncated = encodeBindingSuccess(tid, { address: '6.6.6.6', port: 6 }, { fingerprint: true });
    truncated[25]! ^= 0xff;
    expect(client.receive(truncated, SERVER)).toBe(true);
    expect(client.receive(Uint8Array.of(4, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), SERVER)).toBe(false);
    expect(client.pending).toBe(1);
    expect(client.counters.drops).toMatchObject({
      'unknown-transaction': 1,
      'wrong-source': 2,
      'not-a-response': 1,
      'bad-address': 1,
      'not-binding': 1,
      'fingerprint-mismatch': 1,
    });
    // The real answer still works, from the IPv4-mapped spelling of the server's address too.
    expect(client.receive(encodeBindingSuccess(tid, { address: '198.51.100.7', port: 1234 }), { address: '::ffff:192.0.2.1', port: 3478 })).toBe(true);
    expect(await p).toMatchObject({ kind: 'mapped', mapped: { address: '198.51.100.7', port: 1234 } });
    // A duplicate after settling is unknown now.
    expect(client.receive(encodeBindingSuccess(tid, { address: '198.51.100.7', port: 1234 }), SERVER)).toBe(true);
    expect(client.counters.drops['unknown-transaction']).toBe(2);
  });

  it('an error response settles with its code', async () => {
    const { sent, client } = harness();
    const p = client.request(SERVER);
    const req = decodeStun(sent[0]!.data);
    if (!req.ok) throw new Error(req.reason);
    client.receive(encodeErrorResponse(1, req.message.transactionId, 401, 'Unauthorized'), SERVER);
    expect(await p).toMatchObject({ kind: 'error-response', code: 401, reason: 'Unauthorized' });
  });

  it('close() settles everything with closed and refuses new requests', async () => {
    const { client } = harness();
    const p = client.request(SERVER);
    client.close();
    expect(await p).toEqual({ kind: 'closed', server: SERVER });
    expect(await client.request(SERVER)).toEqual({ kind: 'closed', server: SERVER });
  });
});

describe('classifyNat (plexd-api.md rule)', () => {
  const a = { address: '203.0.113.1', port: 51820 };
  const b = { address: '203.0.113.1', port: 40001 };
  it('same mapping -> full_cone, different -> symmetric, one -> unknown, none -> unknown', () => {
    expect(classifyNat([a, { ...a }])).toEqual({ natType: 'full_cone', endpoint: a, behindNat: true });
    expect(classifyNat([a, b]).natType).toBe('symmetric');
    expect(classifyNat([undefined, b])).toEqual({ natType: 'unknown', endpoint: b, behindNat: true });
    expect(classifyNat([undefined, undefined])).toEqual({ natType: 'unknown', endpoint: undefined, behindNat: undefined });
  });
  it('no NAT: mapped port == local port (and the address ours when known)', () => {
    expect(classifyNat([a, a], { port: 51820 }).behindNat).toBe(false);
    expect(classifyNat([a, a], { port: 51820, addresses: ['203.0.113.1'] }).behindNat).toBe(false);
    // A port-preserving NAT keeps the port but not the address.
    expect(classifyNat([a, a], { port: 51820, addresses: ['10.0.0.2'] }).behindNat).toBe(true);
    expect(classifyNat([b, b], { port: 51820 }).behindNat).toBe(true);
  });
  it('sameEndpoint treats IPv4-mapped IPv6 as IPv4', () => {
    expect(sameEndpoint({ address: '::ffff:1.2.3.4', port: 1 }, { address: '1.2.3.4', port: 1 })).toBe(true);
    expect(sameEndpoint({ address: '1.2.3.4', port: 1 }, { address: '1.2.3.4', port: 2 })).toBe(false);
  });
});

describe('discovery through simulated NATs (memory network)', () => {
  for (const [mode, expected] of [
    ['endpoint-independent', 'full_cone'],
    ['symmetric', 'symmetric'],
  ] as const) {
    it(`${mode} NAT -> ${expected}`, async () => {
      const net = new MemoryNetwork();
      const nat = new MemoryNat(['10.0.0.2'], '198.51.100.1', mode);
      net.setFilter(natFilter(nat));
      const servers = await Promise.all(
        ['192.0.2.1', '192.0.2.2'].map((address) => createStunServer({ listen: { address, port: 3478 }, bind: net.createBind([address]) })),
      );
      const node = net.createBind(['10.0.0.2']);
      const client = new StunClient({ send: (d, to) => node.send(d, to), rtoMs: 5 });
      node.onReceive((d, from) => client.receive(d, from));
      const port = await node.open(51820);
      const r = await discoverNat(client, servers.map((s) => s.address), { port, addresses: ['10.0.0.2'] });
      expect(r.natType).toBe(expected);
      expect(r.behindNat).toBe(true);
      expect(r.endpoint?.address).toBe('198.51.100.1');
      if (mode === 'endpoint-independent') expect(r.endpoint?.port).toBe(51820);
      expect(servers.map((s) => s.counters.answered)).toEqual([1, 1]);
      for (const s of servers) s.close();
      node.close();
    });
  }

  it('one server silent -> unknown after the (short) retransmit schedule', async () => {
    const net = new MemoryNetwork();
    const server = await createStunServer({ listen: { address: '192.0.2.1', port: 3478 }, bind: net.createBind(['192.0.2.1']) });
    const node = net.createBind(['10.0.0.2']);
    const client = new StunClient({ send: (d, to) => node.send(d, to), rtoMs: 2, rc: 2, rm: 2 });
    node.onReceive((d, from) => client.receive(d, from));
    await node.open(0);
    const r = await discoverNat(client, [server.address, { address: '192.0.2.99', port: 3478 }]);
    expect(r.natType).toBe('unknown');
    expect(r.results.map((x) => x.kind)).toEqual(['mapped', 'timeout']);
    server.close();
    node.close();
  });
});

describe('StunResponder', () => {
  const from = { address: '198.51.100.9', port: 6000 };
  const tid = new Uint8Array(12).fill(7);

  it('answers Binding with XOR-MAPPED-ADDRESS and SOFTWARE, FINGERPRINT when asked', () => {
    const s = new StunResponder({ rateLimit: false });
    for (const fingerprint of [false, true]) {
      const a = s.handle(encodeBindingRequest(tid, { fingerprint }), from, 0);
      if (a.kind !== 'reply') throw new Error(a.reason);
      const m = decodeStun(a.data);
      if (!m.ok) throw new Error(m.reason);
      expect(m.message.cls).toBe('success');
      expect(m.message.hasFingerprint).toBe(fingerprint);
      expect(readMappedAddress(m.message)).toEqual(from);
    }
    // IPv4-mapped sources are reported as IPv4.
    const a = s.handle(encodeBindingRequest(tid), { address: '::ffff:10.1.1.1', port: 9 }, 0);
    if (a.kind !== 'reply') throw new Error(a.reason);
    const m = decodeStun(a.data);
    expect(m.ok && readMappedAddress(m.message)).toEqual({ address: '10.1.1.1', port: 9 });
  });

  it('420 with UNKNOWN-ATTRIBUTES for unknown comprehension-required attributes', () => {
    const s = new StunResponder({ rateLimit: false });
    const a = s.handle(encodeBindingRequest(tid, { attributes: [{ type: 0x0003, value: new Uint8Array(4) }, { type: 0xc001, value: new Uint8Array(1) }] }), from, 0);
    if (a.kind !== 'reply') throw new Error(a.reason);
    const m = decodeStun(a.data);
    if (!m.ok) throw new Error(m.reason);
    expect(readErrorCode(m.message)?.code).toBe(420);
    expect(Array.from(m.message.attributes.find((x) => x.type === STUN_ATTR.UNKNOWN_ATTRIBUTES)!.value)).toEqual([0, 3]);
    expect(s.counters.unknownAttributes).toBe(1);
  });

  it('drops everything else with a counted reason, and rate-limits per source', () => {
    const s = new StunResponder();
    const reasons = [
      s.handle(new Uint8Array(10), from, 0),
      s.handle(encodeBindingSuccess(tid, from), from, 0),
      s.handle(encodeStun(2, 'request', tid, []), from, 0),
      s.handle(encodeStun(1, 'indication', tid, []), from, 0),
    ].map((a) => (a.kind === 'drop' ? a.reason : 'reply'));
    expect(reasons).toEqual(['too-short', 'not-a-request', 'not-binding', 'not-a-request']);
    let answered = 0;
    for (let i = 0; i < 100; i++) if (s.handle(encodeBindingRequest(tid), from, 0).kind === 'reply') answered++;
    // The WireGuard handshake limiter's burst (5 tokens, strictly more than one needed per packet).
    expect(answered).toBeGreaterThan(0);
    expect(answered).toBeLessThanOrEqual(5);
    expect(s.counters.drops['rate-limited']).toBe(100 - answered);
    // Another source is unaffected; time refills the bucket.
    expect(s.handle(encodeBindingRequest(tid), { address: '198.51.100.10', port: 1 }, 0).kind).toBe('reply');
    expect(s.handle(encodeBindingRequest(tid), from, 1000).kind).toBe('reply');
  });

  it('20,000 random datagrams: never throws; every reply is a well-formed answer to its request', () => {
    const s = new StunResponder({ rateLimit: false });
    const rnd = seededRandom(99);
    let replies = 0;
    for (let i = 0; i < 20_000; i++) {
      const d = new Uint8Array(20 + (i % 80));
      rnd(d);
      if (i % 2 === 0) d.set([0, 1, 0, d.length - 20, 0x21, 0x12, 0xa4, 0x42]);
      const a = s.handle(d, from, i);
      if (a.kind !== 'reply') continue;
      replies++;
      const m = decodeStun(a.data);
      if (!m.ok) throw new Error(m.reason);
      expect(['success', 'error']).toContain(m.message.cls);
      expect(Buffer.from(m.message.transactionId).equals(d.subarray(8, 20))).toBe(true);
    }
    expect(replies).toBeGreaterThan(0);
    expect(replies + Object.values(s.counters.drops).reduce((x, y) => x + y, 0)).toBe(20_000);
  });
});

describe('createStunServer on loopback UDP', () => {
  it('answers a real client over 127.0.0.1', async () => {
    const server = await createStunServer({ listen: { address: '127.0.0.1', port: 0 } });
    const dgram = await import('node:dgram');
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const client = new StunClient({ send: (d, to) => sock.send(d, to.port, to.address), rtoMs: 50 });
    sock.on('message', (m, rinfo) => client.receive(m, rinfo));
    const r = await client.request(server.address);
    expect(r).toMatchObject({ kind: 'mapped', mapped: { address: '127.0.0.1', port: sock.address().port } });
    sock.close();
    server.close();
  });
});
