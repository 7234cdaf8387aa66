// STUN on the WireGuard socket, end to end in memory: two Devices behind simulated NATs discover
// their mappings through the device hook (setForeignHandler + sendRaw) while WireGuard keeps
// working on the same port, then reach each other through the relay: symmetric NATs on both
// sides, ends learned by relay bindings sent from the WireGuard port.

import { describe, expect, it } from 'vitest';
import { createRelay } from '../../src/bridge/relay.js';
import { relayBindingAttributes } from '../../src/bridge/relay-binding.js';
import { nobleCrypto } from '../../src/core/crypto-noble.js';
import { Device } from '../../src/device/device.js';
import { MemoryNetwork } from '../../src/io/bind-memory.js';
import { ManualClock } from '../../src/io/clock.js';
import { stunOverDevice } from '../../src/nat/device-stun.js';
import { discoverNat } from '../../src/nat/nat-type.js';
import { createStunServer } from '../../src/nat/stun-server.js';
import { ipPacket } from '../helpers/ip-packet.js';
import { seededRandom } from '../helpers/rng.js';
import { waitFor } from '../helpers/wait.js';
import { MemoryNat, natFilter, type NatMapping } from './memory-nat.js';

const b64 = (k: Uint8Array) => Buffer.from(k).toString('base64');

async function node(net: MemoryNetwork, address: string, seed: number) {
  const key = new Uint8Array(32);
  seededRandom(seed)(key);
  const received: string[] = [];
  const device = await Device.create({
    bind: net.createBind([address]),
    onPacket: (p) => received.push(Buffer.from(p.subarray(20)).toString()),
    crypto: nobleCrypto,
    fillRandom: seededRandom(seed + 1),
  });
  await device.configure({ privateKey: b64(key) });
  return { device, received, publicKey: b64(nobleCrypto.x25519PublicKey(key)), address };
}

async function lab(modeA: NatMapping, modeB: NatMapping) {
  const net = new MemoryNetwork();
  const natA = new MemoryNat(['10.0.1.2'], '198.51.100.1', modeA);
  const natB = new MemoryNat(['10.0.2.2'], '198.51.100.2', modeB);
  net.setFilter(natFilter(natA, natB));
  const stun = await Promise.all(['192.0.2.1', '192.0.2.2'].map((address) => createStunServer({ listen: { address, port: 3478 }, bind: net.createBind([address]) })));
  const a = await node(net, '10.0.1.2', 1);
  const b = await node(net, '10.0.2.2', 2);
  return { net, natA, natB, stun, a, b, close: async () => { for (const s of stun) s.close(); await a.device.close(); await b.device.close(); } };
}

describe('STUN through the device hook', () => {
  it('classifies from the WireGuard port; STUN never reaches the engine, WireGuard still does', async () => {
    const l = await lab('endpoint-independent', 'symmetric');
    const servers = l.stun.map((s) => s.address);
    const ca = stunOverDevice(l.a.device, { rtoMs: 5 });
    const cb = stunOverDevice(l.b.device, { rtoMs: 5 });
    const ra = await discoverNat(ca, servers, { port: l.a.device.listenPort, addresses: [l.a.address] });
    const rb = await discoverNat(cb, servers, { port: l.b.device.listenPort, addresses: [l.b.address] });
    expect(ra).toMatchObject({ natType: 'full_cone', behindNat: true, endpoint: { address: '198.51.100.1', port: l.a.device.listenPort } });
    expect(rb).toMatchObject({ natType: 'symmetric', behindNat: true });
    const engineDrops = Object.values(l.a.device.drops()).reduce((x, y) => x + y, 0);
    expect(engineDrops).toBe(0);
    await l.close();
  });

  it('two endpoint-independent NATs: STUN-discovered endpoints, both sides send at once, direct path', async () => {
    const l = await lab('endpoint-independent', 'endpoint-independent');
    const servers = l.stun.map((s) => s.address);
    const found = [];
    for (const n of [l.a, l.b]) found.push(await discoverNat(stunOverDevice(n.device, { rtoMs: 5 }), servers));
    const [ea, eb] = found.map((f) => `${f.endpoint!.address}:${f.endpoint!.port}`);
    await l.a.device.configure({ peers: [{ publicKey: l.b.publicKey, endpoint: eb!, allowedIps: ['10.99.0.2/32'] }] });
    await l.b.device.configure({ peers: [{ publicKey: l.a.publicKey, endpoint: ea!, allowedIps: ['10.99.0.1/32'] }] });
    const started = performance.now();
    // Simultaneous open: a's first initiation dies at b's NAT (no mapping towards a yet), b's
    // passes a's NAT because a already sent towards b's mapping.
    l.a.device.writePacket(ipPacket('10.99.0.1', '10.99.0.2', 'direct a'));
    l.b.device.writePacket(ipPacket('10.99.0.2', '10.99.0.1', 'direct b'));
    expect(await waitFor(() => l.a.received.includes('direct b') || l.b.received.includes('direct a'), 2000, 5)).toBe(true);
    console.log(`[nat] memory lab, full_cone x full_cone direct: first packet after ${(performance.now() - started).toFixed(1)} ms`);
    expect(l.natA.refused + l.natB.refused).toBeGreaterThan(0); // the NATs really filter
    await l.close();
  });

  it('two symmetric NATs: WireGuard through the relay with ends learned from bindings sent from the WireGuard port', async () => {
    const l = await lab('symmetric', 'symmetric');
    const clock = new ManualClock(0, Date.now());
    const relay = await createRelay({ listen: { address: '192.0.2.10', port: 51821 }, bind: l.net.createBind(['192.0.2.10']), clock });
    const sessionId = '6f7c2a1e-0000-4000-8000-000000000001';
    relay.addSession({ session_id: sessionId, peer_a_id: 'node-a', peer_a_endpoint: '', peer_b_id: 'node-b', peer_b_endpoint: '', expires_at: new Date(Date.now() + 300_000).toISOString() });
    const viaRelay = `${relay.address.address}:${relay.address.port}`;
    for (const [me, other, id] of [[l.a, l.b, 'node-a'], [l.b, l.a, 'node-b']] as const) {
      const client = stunOverDevice(me.device, { rtoMs: 5 });
      const r = await client.request(relay.address, { attributes: relayBindingAttributes(sessionId, id) });
      expect(r.kind).toBe('mapped');
      await me.device.configure({ peers: [{ publicKey: other.publicKey, endpoint: viaRelay, allowedIps: [me === l.a ? '10.99.0.2/32' : '10.99.0.1/32'] }] });
    }
    expect(relay.counters.bindings).toBe(2);
    const started = performance.now();
    l.a.device.writePacket(ipPacket('10.99.0.1', '10.99.0.2', 'relayed hello'));
    expect(await waitFor(() => l.b.received.includes('relayed hello'), 2000, 5)).toBe(true);
    l.b.device.writePacket(ipPacket('10.99.0.2', '10.99.0.1', 'relayed reply'));
    expect(await waitFor(() => l.a.received.includes('relayed reply'), 2000, 5)).toBe(true);
    console.log(`[nat] memory lab, symmetric x symmetric via relay: first packet after ${(performance.now() - started).toFixed(1)} ms`);
    expect(relay.counters.forwardedPackets).toBeGreaterThanOrEqual(4); // initiation, response, two data
    expect(relay.counters.drops['unknown-source']).toBe(0);
    relay.close();
    await l.close();
  });
});
