// Bridge relay: forwarding both ways over loopback UDP, strangers dropped and counted, TTL and
// expires_at, the session limit, relay bindings (learned ends, the same-IP rule, authenticated
// bindings with the session's binding key), the embedded STUN server, and hostile datagrams.

import * as dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import type { RelaySession } from '../../src/api/types.js';
import { relayBindingAttributes, ATTR_RELAY_AUTH, ATTR_RELAY_SESSION } from '../../src/bridge/relay-binding.js';
import { RELAY_DROP_REASONS, RelayTable } from '../../src/bridge/relay-table.js';
import { createRelay, type Relay } from '../../src/bridge/relay.js';
import type { Endpoint } from '../../src/io/bind.js';
import { ManualClock } from '../../src/io/clock.js';
import { StunClient } from '../../src/nat/stun-client.js';
import { decodeStun, encodeBindingRequest, readMappedAddress } from '../../src/nat/stun-message.js';
import { seededInts, seededRandom } from '../helpers/rng.js';

const T0_WALL = 1_700_000_000_000;
const iso = (ms: number) => new Date(ms).toISOString();

function session(id: string, a: string, b: string, expiresAt = iso(T0_WALL + 3_600_000)): RelaySession {
  return { session_id: id, peer_a_id: `${id}-a`, peer_a_endpoint: a, peer_b_id: `${id}-b`, peer_b_endpoint: b, expires_at: expiresAt };
}

interface Sock {
  readonly socket: dgram.Socket;
  readonly endpoint: Endpoint;
  readonly inbox: { data: Buffer; from: Endpoint }[];
  send(data: Uint8Array, to: Endpoint): void;
  next(timeoutMs?: number): Promise<{ data: Buffer; from: Endpoint } | undefined>;
}

const sockets: dgram.Socket[] = [];
const relays: Relay[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
  for (const r of relays.splice(0)) r.close();
});

async function sock(address = '127.0.0.1'): Promise<Sock> {
  const socket = dgram.createSocket('udp4');
  sockets.push(socket);
  await new Promise<void>((r) => socket.bind(0, address, () => r()));
  const inbox: { data: Buffer; from: Endpoint }[] = [];
  const waiters: (() => void)[] = [];
  socket.on('message', (data, rinfo) => {
    inbox.push({ data, from: { address: rinfo.address, port: rinfo.port } });
    waiters.splice(0).forEach((w) => w());
  });
  return {
    socket,
    endpoint: { address, port: socket.address().port },
    inbox,
    send: (data, to) => socket.send(data, to.port, to.address),
    next: async (timeoutMs = 1000) => {
      if (inbox.length === 0) {
        await new Promise<void>((r) => {
          const t = setTimeout(r, timeoutMs);
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
      return inbox.shift();
    },
  };
}

async function relayOn(clock = new ManualClock(0, T0_WALL), opts: { maxSessions?: number; ttlMs?: number } = {}) {
  const relay = await createRelay({ listen: { address: '127.0.0.1', port: 0 }, clock, ...opts });
  relays.push(relay);
  return { relay, clock };
}

const text = (e: Endpoint) => `${e.address}:${e.port}`;

describe('relay over loopback UDP', () => {
  it('forwards both ways between the ends of a session, unchanged, from the relay address', async () => {
    const { relay } = await relayOn();
    const [a, b] = [await sock(), await sock()];
    expect(relay.addSession(session('s1', text(a.endpoint), text(b.endpoint)))).toBeUndefined();
    a.send(Buffer.from('ciphertext a->b'), relay.address);
    const gotB = await b.next();
    expect(gotB?.data.toString()).toBe('ciphertext a->b');
    expect(gotB?.from).toEqual(relay.address);
    b.send(Buffer.from([4, 0, 0, 0, 1, 2, 3]), relay.address);
    const gotA = await a.next();
    expect([...gotA!.data]).toEqual([4, 0, 0, 0, 1, 2, 3]);
    expect(relay.counters).toMatchObject({ forwardedPackets: 2, forwardedBytes: 22 });
    expect(relay.sessions()[0]).toMatchObject({ sessionId: 's1', packets: 2 });
  });

  it('drops and counts packets from anyone else; nothing reaches the ends', async () => {
    const { relay } = await relayOn();
    const [a, b, stranger] = [await sock(), await sock(), await sock()];
    relay.addSession(session('s1', text(a.endpoint), text(b.endpoint)));
    for (let i = 0; i < 5; i++) stranger.send(Buffer.from('let me in'), relay.address);
    a.send(Buffer.from('marker'), relay.address); // sent after the strangers: b sees only this
    expect((await b.next())?.data.toString()).toBe('marker');
    expect(relay.counters.drops['unknown-source']).toBe(5);
    expect(await a.next(100)).toBeUndefined();
    expect(stranger.inbox).toHaveLength(0);
  });

  it('a session whose other end is unknown drops with peer-not-bound', async () => {
    const { relay } = await relayOn();
    const a = await sock();
    relay.addSession(session('s1', text(a.endpoint), ''));
    a.send(Buffer.from('x'), relay.address);
    await expect.poll(() => relay.counters.drops['peer-not-bound']).toBe(1);
  });

  it('learns ends from relay bindings sent with the STUN client, then forwards', async () => {
    const { relay } = await relayOn();
    const [a, b] = [await sock(), await sock()];
    relay.addSession(session('s1', '', ''));
    for (const [s, id] of [[a, 's1-a'], [b, 's1-b']] as const) {
      const client = new StunClient({ send: (d, to) => s.send(d, to), rtoMs: 50 });
      s.socket.on('message', (m, rinfo) => client.receive(m, rinfo));
      const r = await client.request(relay.address, { attributes: relayBindingAttributes('s1', id) });
      expect(r).toMatchObject({ kind: 'mapped', mapped: s.endpoint });
      s.inbox.length = 0;
    }
    expect(relay.counters.bindings).toBe(2);
    expect(relay.sessions()[0]).toMatchObject({ a: a.endpoint, b: b.endpoint });
    b.send(Buffer.from('hi a'), relay.address);
    expect((await a.next())?.data.toString()).toBe('hi a');
  });

  it('answers plain STUN on the relay port and never forwards STUN', async () => {
    const { relay } = await relayOn();
    const [a, b] = [await sock(), await sock()];
    relay.addSession(session('s1', text(a.endpoint), text(b.endpoint)));
    a.send(encodeBindingRequest(new Uint8Array(12).fill(1)), relay.address);
    const reply = await a.next();
    const m = decodeStun(reply!.data);
    expect(m.ok && readMappedAddress(m.message)).toEqual(a.endpoint);
    expect(await b.next(100)).toBeUndefined();
  });
});

describe('RelayTable (manual clock)', () => {
  const A = { address: '198.51.100.1', port: 40000 };
  const B = { address: '198.51.100.2', port: 40001 };
  const data = Uint8Array.of(4, 0, 0, 0, 9);

  it('TTL: a session ends ttl after it was added, even with a later expires_at', () => {
    const t = new RelayTable({ ttlMs: 300_000 });
    t.addSession(session('s', text(A), text(B)), 0, T0_WALL);
    expect(t.handle(data, A, 299_999)).toEqual({ kind: 'forward', to: B });
    expect(t.handle(data, A, 300_000)).toEqual({ kind: 'drop', reason: 'expired' });
    expect(t.sessions(300_000)).toHaveLength(0);
    expect(t.handle(data, A, 300_001)).toEqual({ kind: 'drop', reason: 'unknown-source' });
  });

  it('expires_at earlier than the TTL wins; re-adding refreshes; past or invalid expiry is refused', () => {
    const t = new RelayTable();
    t.addSession(session('s', text(A), text(B), iso(T0_WALL + 10_000)), 0, T0_WALL);
    expect(t.handle(data, B, 10_000).kind).toBe('drop');
    expect(t.addSession(session('s', text(A), text(B), iso(T0_WALL - 1)), 0, T0_WALL)).toBe('expired');
    expect(t.addSession(session('s', text(A), text(B), 'tomorrow'), 0, T0_WALL)).toBe('invalid');
    expect(t.addSession({ ...session('s', text(A), text(B)), peer_b_id: 's-a' }, 0, T0_WALL)).toBe('invalid');
    t.addSession(session('r', text(A), text(B), iso(T0_WALL + 10_000)), 0, T0_WALL);
    t.addSession(session('r', text(A), text(B), iso(T0_WALL + 20_000 + 10_000)), 20_000, T0_WALL + 20_000);
    expect(t.handle(data, B, 25_000)).toEqual({ kind: 'forward', to: A });
  });

  it('the session limit holds; an expired session frees its slot', () => {
    const t = new RelayTable({ maxSessions: 100 });
    for (let i = 0; i < 100; i++) {
      const expires = iso(T0_WALL + (i === 0 ? 1_000 : 3_600_000));
      expect(t.addSession(session(`s${i}`, `10.0.${i}.1:1`, `10.1.${i}.1:1`, expires), 0, T0_WALL)).toBeUndefined();
    }
    expect(t.addSession(session('s100', '10.9.0.1:1', '10.9.0.2:1'), 0, T0_WALL)).toBe('full');
    expect(t.sessions(0)).toHaveLength(100);
    expect(t.addSession(session('s100', '10.9.0.1:1', '10.9.0.2:1'), 1_000, T0_WALL + 1_000)).toBeUndefined();
    expect(t.sessions(1_000).map((s) => s.sessionId)).not.toContain('s0');
    // The default is plexd's 100.
    expect(new RelayTable().maxSessions).toBe(100);
  });

  it('reconcile adds, keeps and removes to match a state pull', () => {
    const t = new RelayTable({ maxSessions: 2 });
    t.reconcile([session('x', text(A), text(B)), session('y', '', '')], 0, T0_WALL);
    const failed = t.reconcile([session('y', '', ''), session('z', '', ''), session('w', '', '')], 0, T0_WALL);
    expect(t.sessions(0).map((s) => s.sessionId).sort()).toEqual(['y', 'z']);
    expect([...failed]).toEqual([['w', 'full']]);
    expect(t.handle(data, A, 0)).toEqual({ kind: 'drop', reason: 'unknown-source' });
  });

  it('bindings: unknown session / peer, the same-IP rule for known ends, malformed attributes', () => {
    const t = new RelayTable();
    t.addSession(session('s', text(A), ''), 0, T0_WALL);
    const bind = (sid: string, pid: string, from: Endpoint) => t.handle(encodeBindingRequest(new Uint8Array(12).fill(3), { attributes: relayBindingAttributes(sid, pid) }), from, 0);
    expect(bind('nope', 's-a', A)).toEqual({ kind: 'drop', reason: 'unknown-session' });
    expect(bind('s', 'mallory', A)).toEqual({ kind: 'drop', reason: 'unknown-peer' });
    expect(bind('s', 's-a', { address: '203.0.113.66', port: 40000 })).toEqual({ kind: 'drop', reason: 'binding-address-mismatch' });
    // Same IP, new port (a symmetric NAT's mapping towards the relay): accepted, the old port forgotten.
    const moved = { address: A.address, port: 50000 };
    expect(bind('s', 's-a', moved).kind).toBe('reply');
    expect(bind('s', 's-b', B).kind).toBe('reply');
    expect(t.handle(data, moved, 0)).toEqual({ kind: 'forward', to: B });
    expect(t.handle(data, A, 0)).toEqual({ kind: 'drop', reason: 'unknown-source' });
    const half = encodeBindingRequest(new Uint8Array(12), { attributes: [{ type: ATTR_RELAY_SESSION, value: Buffer.from('s') }] });
    expect(t.handle(half, B, 0)).toEqual({ kind: 'drop', reason: 'malformed-binding' });
    expect(t.counters.bindings).toBe(2);
  });

  it('30,000 hostile datagrams from members and strangers: no throw, bounded state, every one accounted', () => {
    const t = new RelayTable({ stun: true });
    t.addSession(session('s', text(A), text(B)), 0, T0_WALL);
    const rnd = seededRandom(51821);
    const int = seededInts(51821);
    const sources = [A, B, { address: '203.0.113.9', port: 1 }, { address: '::ffff:198.51.100.1', port: 40000 }];
    let answered = 0;
    for (let i = 0; i < 30_000; i++) {
      const d = new Uint8Array(int(300));
      rnd(d);
      if (i % 3 === 0 && d.length >= 20) d.set([0, 1, (d.length - 20) >> 8, (d.length - 20) & 0xff, 0x21, 0x12, 0xa4, 0x42]);
      const a = t.handle(d, sources[int(sources.length)]!, i);
      if (a.kind === 'reply') answered++;
    }
    const drops = RELAY_DROP_REASONS.reduce((n, r) => n + t.counters.drops[r], 0);
    expect(drops + t.counters.forwardedPackets + answered).toBe(30_000);
    expect(t.sessions(30_000)).toHaveLength(1);
    expect(t.counters.drops['unknown-source']).toBeGreaterThan(0);
  });
});

describe('authenticated relay bindings (session binding_key)', () => {
  const A = { address: '198.51.100.1', port: 40000 };
  const B = { address: '198.51.100.2', port: 40001 };
  const STRANGER = { address: '203.0.113.66', port: 40000 };
  const data = Uint8Array.of(4, 0, 0, 0, 9);
  const KEY = new Uint8Array(32).fill(0x5a);
  const keyed = (id: string, key = KEY): RelaySession => ({ ...session(id, '', ''), binding_key: Buffer.from(key).toString('base64') });
  const bindReq = (t: RelayTable, from: Endpoint, peer: string, auth?: { key: Uint8Array; counter: bigint }, sid = 's') =>
    t.handle(encodeBindingRequest(new Uint8Array(12).fill(9), { attributes: relayBindingAttributes(sid, peer, auth) }), from, 0);
  const ends = (t: RelayTable) => t.sessions(0).map((x) => [x.a, x.b])[0];

  it('a stranger with the right ids but no or a wrong MAC cannot take over an authenticated end', () => {
    const t = new RelayTable();
    expect(t.addSession(keyed('s'), 0, T0_WALL)).toBeUndefined();
    expect(t.sessions(0)[0]!.authenticated).toBe(true);
    expect(bindReq(t, A, 's-a', { key: KEY, counter: 10n }).kind).toBe('reply');
    expect(bindReq(t, B, 's-b', { key: KEY, counter: 10n }).kind).toBe('reply');
    // No MAC: from elsewhere, and from the end's own IP on another port.
    expect(bindReq(t, STRANGER, 's-a')).toEqual({ kind: 'drop', reason: 'binding-unauthenticated' });
    expect(bindReq(t, { address: A.address, port: 1 }, 's-a')).toEqual({ kind: 'drop', reason: 'binding-unauthenticated' });
    // A MAC under another key, and a valid tag moved to a higher counter.
    expect(bindReq(t, STRANGER, 's-a', { key: new Uint8Array(32).fill(1), counter: 99n })).toEqual({ kind: 'drop', reason: 'binding-auth-failed' });
    const genuine = encodeBindingRequest(new Uint8Array(12), { attributes: relayBindingAttributes('s', 's-a', { key: KEY, counter: 11n }) });
    const forged = Buffer.from(genuine);
    forged[forged.length - 40 + 7]! ^= 0x10; // the counter's last byte
    expect(t.handle(forged, STRANGER, 0)).toEqual({ kind: 'drop', reason: 'binding-auth-failed' });
    // A captured binding replayed from elsewhere (counter not above the last one).
    const captured = encodeBindingRequest(new Uint8Array(12), { attributes: relayBindingAttributes('s', 's-a', { key: KEY, counter: 10n }) });
    expect(t.handle(captured, STRANGER, 0)).toEqual({ kind: 'drop', reason: 'binding-replayed' });
    // The same one again from the end itself is a retransmission: answered, nothing changes.
    expect(t.handle(captured, A, 0).kind).toBe('reply');
    expect(ends(t)).toEqual([A, B]);
    expect(t.handle(data, A, 0)).toEqual({ kind: 'forward', to: B });
    expect(t.handle(data, STRANGER, 0)).toEqual({ kind: 'drop', reason: 'unknown-source' });
    expect(t.counters.authenticatedBindings).toBe(3);
    // The genuine end may move (a new NAT mapping) with a newer binding.
    expect(t.handle(genuine, { address: '192.0.2.7', port: 5 }, 0).kind).toBe('reply');
    expect(t.handle(data, B, 0)).toEqual({ kind: 'forward', to: { address: '192.0.2.7', port: 5 } });
  });

  it('an authenticated binding replaces an unauthenticated claim, from any address', () => {
    const t = new RelayTable();
    t.addSession(keyed('s'), 0, T0_WALL);
    // The stranger got there first (no MAC: accepted while no end is authenticated) ...
    expect(bindReq(t, STRANGER, 's-a').kind).toBe('reply');
    expect(bindReq(t, B, 's-b', { key: KEY, counter: 1n }).kind).toBe('reply');
    expect(t.handle(data, B, 0)).toEqual({ kind: 'forward', to: STRANGER });
    // ... and the real end takes the side back, though from another IP address.
    expect(bindReq(t, A, 's-a', { key: KEY, counter: 1n }).kind).toBe('reply');
    expect(t.handle(data, B, 0)).toEqual({ kind: 'forward', to: A });
    expect(t.handle(data, STRANGER, 0)).toEqual({ kind: 'drop', reason: 'unknown-source' });
    expect(bindReq(t, STRANGER, 's-a')).toEqual({ kind: 'drop', reason: 'binding-unauthenticated' });
  });

  it('sessions without a key keep unauthenticated bindings (and ignore a MAC); bad or changed keys are refused', () => {
    const t = new RelayTable();
    t.addSession(session('s', '', ''), 0, T0_WALL);
    expect(t.sessions(0)[0]!.authenticated).toBe(false);
    expect(bindReq(t, A, 's-a', { key: KEY, counter: 5n }).kind).toBe('reply');
    expect(bindReq(t, { address: A.address, port: 2 }, 's-a').kind).toBe('reply'); // same IP: as before
    expect(bindReq(t, STRANGER, 's-a')).toEqual({ kind: 'drop', reason: 'binding-address-mismatch' });
    expect(t.counters.authenticatedBindings).toBe(0);
    expect(t.addSession({ ...session('k', '', ''), binding_key: 'c2hvcnQ=' }, 0, T0_WALL)).toBe('invalid');
    expect(t.addSession(keyed('s'), 0, T0_WALL)).toBe('invalid'); // a key for a session that had none
    expect(t.addSession(keyed('k'), 0, T0_WALL)).toBeUndefined();
    expect(t.addSession(keyed('k', new Uint8Array(32).fill(1)), 0, T0_WALL)).toBe('invalid');
    expect(t.addSession(keyed('k'), 0, T0_WALL)).toBeUndefined(); // the same key refreshes
    // A truncated auth attribute is malformed, not "unauthenticated".
    const cut = encodeBindingRequest(new Uint8Array(12), { attributes: [...relayBindingAttributes('k', 'k-a'), { type: ATTR_RELAY_AUTH, value: new Uint8Array(39) }] });
    expect(t.handle(cut, A, 0)).toEqual({ kind: 'drop', reason: 'malformed-binding' });
  });

  it('the STUN client on a real socket binds with a MAC; the relay learns the end', async () => {
    const { relay } = await relayOn();
    const [a, b, stranger] = [await sock(), await sock(), await sock()];
    expect(relay.addSession(keyed('s'))).toBeUndefined();
    for (const [s, peer] of [[a, 's-a'], [b, 's-b'], [stranger, 's-a']] as const) {
      const client = new StunClient({ send: (d, to) => s.send(d, to), rtoMs: 50, rc: 2, rm: 2 });
      const onMessage = (m: Buffer, rinfo: dgram.RemoteInfo) => client.receive(m, rinfo);
      s.socket.on('message', onMessage);
      const auth = s === stranger ? undefined : { key: KEY, counter: BigInt(Date.now()) };
      const r = await client.request(relay.address, { attributes: relayBindingAttributes('s', peer, auth) });
      s.socket.off('message', onMessage);
      expect(r.kind).toBe(s === stranger ? 'timeout' : 'mapped');
      s.inbox.length = 0;
    }
    a.send(data, relay.address);
    expect((await b.next())?.data).toEqual(Buffer.from(data));
    expect(relay.counters.drops['binding-unauthenticated']).toBeGreaterThan(0);
    expect(stranger.inbox).toHaveLength(0);
  });
});

describe('one relay port per session', () => {
  /** Free loopback UDP ports (bound, read, released). */
  async function freePorts(n: number): Promise<number[]> {
    const held = await Promise.all(Array.from({ length: n }, () => sock()));
    const ports = held.map((h) => h.endpoint.port);
    for (const h of held) {
      h.socket.close();
      sockets.splice(sockets.indexOf(h.socket), 1);
    }
    return ports;
  }
  const at = (port: number): Endpoint => ({ address: '127.0.0.1', port });
  const withPort = (id: string, a: string, b: string, port: number): RelaySession => ({ session_id: id, peer_a_id: a, peer_a_endpoint: '', peer_b_id: b, peer_b_endpoint: '', expires_at: iso(T0_WALL + 3_600_000), relay_port: port });
  async function bindFrom(s: Sock, relay: Endpoint, sessionId: string, nodeId: string): Promise<void> {
    const client = new StunClient({ send: (d, to) => s.send(d, to), rtoMs: 50 });
    const onMessage = (m: Buffer, rinfo: dgram.RemoteInfo) => client.receive(m, rinfo);
    s.socket.on('message', onMessage);
    const r = await client.request(relay, { attributes: relayBindingAttributes(sessionId, nodeId) });
    s.socket.off('message', onMessage);
    expect(r).toMatchObject({ kind: 'mapped', mapped: s.endpoint });
    s.inbox.length = 0;
  }

  it('a node relayed to two peers through one bridge from one socket: both pairs forward, each on its own port', async () => {
    const { relay } = await relayOn();
    const [p1, p2] = await freePorts(2);
    const [n, b, c] = [await sock(), await sock(), await sock()]; // n: the node with one WireGuard socket
    expect(relay.addSession(withPort('s-nb', 'n', 'b', p1!))).toBeUndefined();
    expect(relay.addSession(withPort('s-nc', 'n', 'c', p2!))).toBeUndefined();
    expect(await relay.settled()).toEqual(new Map());
    expect(relay.ports().sort()).toEqual([p1, p2].sort());
    // Each end binds on its session's port; n binds twice from the same source.
    await bindFrom(n, at(p1!), 's-nb', 'n');
    await bindFrom(b, at(p1!), 's-nb', 'b');
    await bindFrom(n, at(p2!), 's-nc', 'n');
    await bindFrom(c, at(p2!), 's-nc', 'c');
    expect(relay.sessions().map((s) => [s.sessionId, s.relayPort, s.a, s.b])).toEqual([
      ['s-nb', p1, n.endpoint, b.endpoint],
      ['s-nc', p2, n.endpoint, c.endpoint],
    ]);
    // n -> b and n -> c: each reaches only its peer, from the session's port.
    n.send(Buffer.from('to b'), at(p1!));
    n.send(Buffer.from('to c'), at(p2!));
    const atB = await b.next();
    expect([atB?.data.toString(), atB?.from]).toEqual(['to b', at(p1!)]);
    expect(b.inbox).toHaveLength(0);
    expect((await c.next())?.data.toString()).toBe('to c');
    // b -> n and c -> n: n sees each from its session's port, so WireGuard keeps the peers apart.
    b.send(Buffer.from('from b'), at(p1!));
    const first = await n.next();
    c.send(Buffer.from('from c'), at(p2!));
    const second = await n.next();
    expect([first?.data.toString(), first?.from]).toEqual(['from b', at(p1!)]);
    expect([second?.data.toString(), second?.from]).toEqual(['from c', at(p2!)]);
    expect(await b.next(100)).toBeUndefined();
    expect(await c.next(100)).toBeUndefined();
    expect(relay.counters.forwardedPackets).toBe(4);
    // The base port keeps answering STUN, but knows neither session: bindings and data there are dropped.
    n.send(encodeBindingRequest(new Uint8Array(12).fill(7), { attributes: relayBindingAttributes('s-nb', 'n') }), relay.address);
    n.send(Buffer.from('stray'), relay.address);
    await expect.poll(() => relay.counters.drops['unknown-session'] + relay.counters.drops['unknown-source']).toBe(2);
    expect(await b.next(100)).toBeUndefined();
  });

  it('a session port serves its own session only: strangers and other sessions\' bindings are dropped', async () => {
    const { relay } = await relayOn();
    const [p1, p2] = await freePorts(2);
    const [n, b, x] = [await sock(), await sock(), await sock()];
    relay.addSession(withPort('s1', 'n', 'b', p1!));
    relay.addSession(withPort('s2', 'n', 'c', p2!));
    await relay.settled();
    x.send(encodeBindingRequest(new Uint8Array(12).fill(9), { attributes: relayBindingAttributes('s2', 'n') }), at(p1!));
    await expect.poll(() => relay.counters.drops['unknown-session']).toBe(1);
    await bindFrom(n, at(p1!), 's1', 'n');
    await bindFrom(b, at(p1!), 's1', 'b');
    x.send(Buffer.from('stranger'), at(p1!));
    await expect.poll(() => relay.counters.drops['unknown-source']).toBe(1);
    expect(await n.next(100)).toBeUndefined();
    // The same port cannot be given to two sessions, nor can a session's port change.
    expect(relay.addSession(withPort('s3', 'y', 'z', p1!))).toBe('invalid');
    expect(relay.addSession(withPort('s1', 'n', 'b', p2!))).toBe('invalid');
  });

  it('ports are released on expiry, revocation and reconcile; the session limit bounds the sockets', async () => {
    const clock = new ManualClock(0, T0_WALL);
    const { relay } = await relayOn(clock, { maxSessions: 2 });
    const [p1, p2, p3] = await freePorts(3);
    const short = { ...withPort('short', 'n', 'b', p1!), expires_at: iso(T0_WALL + 1_000) };
    expect(relay.addSession(short)).toBeUndefined();
    expect(relay.addSession(withPort('long', 'n', 'c', p2!))).toBeUndefined();
    expect(relay.addSession(withPort('third', 'n', 'd', p3!))).toBe('full');
    await relay.settled();
    expect(relay.ports().sort()).toEqual([p1, p2].sort());
    // p3 was never opened.
    const probe3 = dgram.createSocket('udp4');
    await new Promise<void>((r, j) => probe3.once('error', j).bind(p3, '127.0.0.1', () => r()));
    probe3.close();
    // Expiry: the sweep closes the port, which can be bound again.
    clock.advance(1_000);
    relay.sweep();
    expect(relay.ports()).toEqual([p2]);
    const probe1 = dgram.createSocket('udp4');
    await new Promise<void>((r, j) => probe1.once('error', j).bind(p1, '127.0.0.1', () => r()));
    probe1.close();
    // The freed slot takes the third session and its port.
    expect(relay.addSession(withPort('third', 'n', 'd', p3!))).toBeUndefined();
    expect(await relay.settled()).toEqual(new Map());
    expect(relay.ports().sort()).toEqual([p2, p3].sort());
    // Revocation and reconcile close ports too.
    expect(relay.removeSession('third')).toBe(true);
    expect(relay.ports()).toEqual([p2]);
    relay.reconcile([]);
    expect(relay.ports()).toEqual([]);
    expect(relay.sessions()).toEqual([]);
  });

  it('a port that cannot be opened removes its session and is reported by settled()', async () => {
    const { relay } = await relayOn();
    const busy = await sock();
    expect(relay.addSession(withPort('s1', 'n', 'b', busy.endpoint.port))).toBeUndefined();
    const failures = await relay.settled();
    expect([...failures.keys()]).toEqual(['s1']);
    expect(relay.sessions()).toEqual([]);
    expect(relay.ports()).toEqual([]);
  });
});
