// Path choice per peer (src/agent/relay-client.ts) over STUN on the WireGuard port
// (src/nat/port-stun.ts), on a manual clock with two fake sockets joined by a switchable wire:
// an assigned session binds to the relay at once and moves the peer there; an answered direct probe
// brings it back and reports direct; a stalled direct peer whose probe goes unanswered moves to
// the relay and reports the failure; wrong transaction IDs are ignored; a session with a
// binding_key gets bindings with a valid MAC and a rising counter.

import { describe, expect, it } from 'vitest';
import type { StateResponse } from '../../src/api/types.js';
import { ATTR_RELAY_SESSION, readRelayBinding, relayBindingAuthentic } from '../../src/bridge/relay-binding.js';
import type { DeviceTransaction } from '../../src/device/contract.js';
import type { Endpoint } from '../../src/io/bind.js';
import { silentLogger } from '../../src/log/logger.js';
import { attachPortStun } from '../../src/nat/port-stun.js';
import { decodeStun, encodeBindingSuccess, getAttribute } from '../../src/nat/stun-message.js';
import { PathManager, STALL_MS } from '../../src/agent/relay-client.js';
import { ManualTimers } from '../nat/manual-timers.js';

const A: Endpoint = { address: '203.0.113.1', port: 51820 };
const B: Endpoint = { address: '203.0.113.2', port: 51820 };
/** The session's own port on the bridge (the first of the session range 51900-51999): the client just uses fallback_endpoint. */
const RELAY: Endpoint = { address: '198.18.0.10', port: 51900 };
const KEY_B = Buffer.alloc(32, 7).toString('base64');

/** A socket with a foreign handler; sendRaw goes through `net`. */
class FakeSocket {
  handler: ((d: Uint8Array, from: Endpoint) => void) | undefined;
  readonly me: Endpoint;
  readonly net: Wire;
  constructor(me: Endpoint, net: Wire) {
    this.me = me;
    this.net = net;
  }
  setForeignHandler(h: ((d: Uint8Array, from: Endpoint) => void) | undefined): void {
    this.handler = h;
  }
  sendRaw(data: Uint8Array, to: Endpoint): 'sent' {
    this.net.send(this.me, to, data.slice());
    return 'sent';
  }
}

class Wire {
  directUp = true;
  readonly sockets = new Map<string, FakeSocket>();
  readonly toRelay: Uint8Array[] = [];
  send(from: Endpoint, to: Endpoint, data: Uint8Array): void {
    if (to.address === RELAY.address) return void this.toRelay.push(data);
    if (!this.directUp) return;
    queueMicrotask(() => this.sockets.get(`${to.address}:${to.port}`)?.handler?.(data, from));
  }
}

/** The device side PathManager sees: one peer, its endpoint and byte counters. */
function fakeDevice(publicKey?: Uint8Array) {
  const peer = { publicKey: new Uint8Array(Buffer.from(KEY_B, 'base64')), endpoint: null as Endpoint | null, rxBytes: 0n, txBytes: 0n, keepalive: 0 };
  return {
    state: peer,
    publicKey,
    // One peer, whatever key it is asked for (after a key rotation the reconciler re-added it).
    peer: (key: Uint8Array) =>
      key.length !== 32 ? undefined : { ...peer, presharedKey: null, lastHandshakeTimeSec: 0, lastHandshakeTimeNsec: 0, persistentKeepaliveInterval: peer.keepalive, allowedIps: [] },
    apply: async (tx: DeviceTransaction) => {
      for (const p of tx.peers ?? []) {
        if (p.publicKey.length !== 32 || p.updateOnly !== true) throw new Error('expected an update-only change of a peer');
        if (p.endpoint !== undefined) peer.endpoint = { address: p.endpoint.address, port: p.endpoint.port };
        if (p.persistentKeepaliveInterval !== undefined) peer.keepalive = p.persistentKeepaliveInterval;
      }
    },
  };
}

async function settle(timers: ManualTimers, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 50) {
    timers.advance(50);
    for (let i = 0; i < 5; i++) await Promise.resolve();
    await new Promise((r) => setImmediate(r));
  }
}

function setup(ourKey?: Uint8Array, bindingKey?: string) {
  const wire = new Wire();
  const timers = new ManualTimers();
  const sa = new FakeSocket(A, wire);
  const sb = new FakeSocket(B, wire);
  wire.sockets.set('203.0.113.1:51820', sa);
  wire.sockets.set('203.0.113.2:51820', sb);
  const portA = attachPortStun(sa, { timers }, () => timers.now());
  attachPortStun(sb, { timers }, () => timers.now());
  const device = fakeDevice(ourKey);
  const reports: Array<{ node_id: string; direct: boolean }> = [];
  const pm = new PathManager({ device, client: portA.client, nodeId: () => 'node-a', reportPaths: async (l) => void reports.push(...l), log: silentLogger, now: () => timers.now(), wallMs: () => 1000 });
  const state = (session: boolean): Pick<StateResponse, 'peers' | 'bridge'> => ({
    peers: [{ node_id: 'node-b', mesh_ip: '10.100.0.2', public_key: KEY_B, endpoint: '203.0.113.2:51820', ...(session ? { fallback_endpoint: '198.18.0.10:51900' } : {}) }],
    bridge: session ? { relay: { sessions: [{ session_id: 's-1', peer_a_id: 'node-a', peer_a_endpoint: '', peer_b_id: 'node-b', peer_b_endpoint: '', expires_at: new Date(Date.now() + 60_000).toISOString(), relay_port: 51900, ...(bindingKey === undefined ? {} : { binding_key: bindingKey }) }] } } : null,
  });
  return { wire, timers, sa, portA, device, reports, pm, state };
}

describe('PathManager', () => {
  it('keepalive (which starts a handshake) is on at once at both ends: the core resolves crossed initiations', async () => {
    for (const fill of [1, 9]) { // KEY_B is 32 x 7: our key smaller, then greater
      const side = setup(new Uint8Array(32).fill(fill));
      await side.pm.applyState(side.state(false));
      expect(side.device.state.keepalive).toBe(25);
    }
  });

  it('turns keepalive on again for a peer\'s new key after a mesh key rotation, not for an unchanged key', async () => {
    const { device, pm, state } = setup();
    await pm.applyState(state(false));
    expect(device.state.keepalive).toBe(25);
    // The reconciler replaced the interface's peer entry; the new entry has no keepalive.
    device.state.keepalive = 0;
    await pm.applyState(state(false));
    expect(device.state.keepalive).toBe(0);
    const rotated = state(false);
    await pm.applyState({ ...rotated, peers: rotated.peers.map((p) => ({ ...p, public_key: Buffer.alloc(32, 8).toString('base64') })) });
    expect(device.state.keepalive).toBe(25);
  });

  it('binds at once on an assigned session, goes relayed, and back to direct when a probe is answered', async () => {
    const { wire, timers, device, reports, pm, state } = setup();
    wire.directUp = false;
    await pm.applyState(state(true));
    expect(device.state.endpoint).toEqual(RELAY);
    expect(device.state.keepalive).toBe(25);
    expect(pm.pathOf(KEY_B)).toBe('relayed');
    // The binding left before anything else towards the relay, and names the session.
    const first = decodeStun(wire.toRelay[0]!);
    expect(first.ok && Buffer.from(getAttribute(first.message, ATTR_RELAY_SESSION)!).toString()).toBe('s-1');
    // Probes go unanswered while the direct path is down.
    for (let i = 0; i < 12; i++) {
      await settle(timers, 1000);
      await pm.tick();
    }
    expect(pm.pathOf(KEY_B)).toBe('relayed');
    expect(pm.counters.probes).toBeGreaterThan(0);
    expect(pm.counters.probesAnswered).toBe(0);
    wire.directUp = true;
    for (let i = 0; i < 8 && pm.pathOf(KEY_B) === 'relayed'; i++) {
      await pm.tick();
      await settle(timers, 1000);
    }
    expect(pm.pathOf(KEY_B)).toBe('direct');
    expect(device.state.endpoint).toEqual(B);
    expect(reports).toEqual([{ node_id: 'node-b', direct: true }]);
    // Revocation keeps direct.
    await pm.applyState(state(false));
    expect(pm.pathOf(KEY_B)).toBe('direct');
  });

  it('a stalled direct peer whose probe is unanswered reports the failure, and moves to the relay once assigned', async () => {
    const { wire, timers, device, reports, pm, state } = setup();
    await pm.applyState(state(false));
    await settle(timers, 2000); // the hole-punching probe on a new endpoint is answered
    expect(pm.counters.probesAnswered).toBe(1);
    expect(reports).toEqual([{ node_id: 'node-b', direct: true }]);
    wire.directUp = false;
    // We keep sending, nothing comes back.
    for (let i = 0; i < 10 && !reports.some((r) => !r.direct); i++) {
      device.state.txBytes += 100n;
      await pm.tick();
      await settle(timers, 1000);
    }
    expect(timers.now()).toBeGreaterThanOrEqual(STALL_MS);
    expect(reports.at(-1)).toEqual({ node_id: 'node-b', direct: false });
    expect(pm.pathOf(KEY_B)).toBe('direct'); // no session yet
    await pm.applyState(state(true));
    expect(pm.pathOf(KEY_B)).toBe('relayed');
    expect(device.state.endpoint).toEqual(RELAY);
  });

  it('the prober\'s choice is the direct endpoint, kept over the reported one; relayed, a probe answer goes direct; none answering falls back to the reported endpoint', async () => {
    const LAN: Endpoint = { address: '10.0.0.2', port: 51820 };
    const { wire, device, reports, pm, state } = setup();
    device.state.endpoint = B; // the reconciler applied the reported endpoint
    await pm.applyState(state(false));
    await pm.setProbedDirect(KEY_B, LAN);
    expect(device.state.endpoint).toEqual(LAN);
    // A later state (reconciler put the reported endpoint back) keeps the probed one.
    device.state.endpoint = B;
    await pm.applyState(state(false));
    expect(device.state.endpoint).toEqual(LAN);
    // Relayed (a session), then the prober hears the peer: direct again, to the probed endpoint.
    wire.directUp = false;
    await pm.applyState(state(true));
    expect(pm.pathOf(KEY_B)).toBe('relayed');
    await pm.setProbedDirect(KEY_B, LAN);
    expect(pm.pathOf(KEY_B)).toBe('direct');
    expect(device.state.endpoint).toEqual(LAN);
    expect(reports.at(-1)).toEqual({ node_id: 'node-b', direct: true });
    await pm.setProbedDirect(KEY_B, undefined);
    expect(device.state.endpoint).toEqual(B);
  });

  it('binds with a MAC under the session\'s binding_key, its counter rising even when the clock stands still', async () => {
    const key = new Uint8Array(32).fill(0x33);
    const { wire, timers, pm, state } = setup(undefined, Buffer.from(key).toString('base64'));
    wire.directUp = false;
    await pm.applyState(state(true));
    for (let i = 0; i < 25; i++) {
      await settle(timers, 1000);
      await pm.tick();
    }
    const bindings = wire.toRelay.map((d) => decodeStun(d)).flatMap((m) => (m.ok && m.message.cls === 'request' ? [readRelayBinding(m.message)] : []));
    const counters = new Set<bigint>();
    for (const b of bindings) {
      if (b === undefined || b === 'malformed') throw new Error('expected a relay binding');
      expect(b).toMatchObject({ sessionId: 's-1', peerId: 'node-a' });
      expect(relayBindingAuthentic(b, key)).toBe(true);
      expect(relayBindingAuthentic(b, new Uint8Array(32))).toBe(false);
      counters.add(b.auth!.counter);
    }
    // The first binding and the 20 s rebind (each maybe retransmitted with its own counter).
    expect(counters.size).toBeGreaterThanOrEqual(2);
    expect([...counters].sort((x, y) => (x < y ? -1 : 1))[0]).toBe(1000n);
  });

  it('the port demux answers probes and ignores responses with an unknown transaction ID', async () => {
    const { sa, portA } = setup();
    const forged = encodeBindingSuccess(new Uint8Array(12).fill(9), { address: '192.0.2.66', port: 1 });
    sa.handler!(forged, B);
    expect(portA.client.counters.drops['unknown-transaction']).toBe(1);
    expect(portA.client.counters.responses).toBe(0);
    portA.close();
    expect(sa.handler).toBeUndefined();
  });
});
