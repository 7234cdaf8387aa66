// Reconcile with minimal churn: unchanged peers keep their session (same keypair in the engine),
// changed fields only, vanished peers removed one by one, never replace_peers.

import { describe, expect, it } from 'vitest';
import type { PeerInfo } from '../../src/api/types.js';
import { PEER_KEYPAIRS } from '../../src/core/peer.js';
import { Reconciler, refusePeerList } from '../../src/control/reconcile.js';
import type { DeviceSnapshot as UapiDeviceSnapshot } from '../../src/device/contract.js';
import { Device, deviceEngine } from '../../src/device/device.js';
import { MemoryNetwork } from '../../src/io/bind-memory.js';
import { ipPacket } from '../helpers/ip-packet.js';
import { generatePrivateKey, publicKeyOf } from '../../src/agent/agent.js';

function peerInfo(id: string, key: string, ip: string, extra: Partial<PeerInfo> = {}): PeerInfo {
  return { node_id: id, mesh_ip: ip, public_key: key, ...extra };
}

describe('Reconciler', () => {
  it('adds, changes only what changed, removes vanished peers, and keeps sessions of unchanged peers', async () => {
    const net = new MemoryNetwork();
    const keys = [generatePrivateKey(), generatePrivateKey(), generatePrivateKey()];
    const pubs = keys.map(publicKeyOf);
    const got: Uint8Array[] = [];
    const a = await Device.create({ onPacket: () => {}, bind: net.createBind(['10.0.0.1']) });
    const b = await Device.create({ onPacket: (p) => got.push(p.slice()), bind: net.createBind(['10.0.0.2']) });
    try {
      await a.configure({ privateKey: keys[0]!, listenPort: 1000 });
      await b.configure({ privateKey: keys[1]!, listenPort: 1000 });
      const psk = Buffer.alloc(32, 9).toString('base64');
      const r = new Reconciler();
      const desiredA = [peerInfo('b', pubs[1]!, '10.100.0.2', { psk, endpoint: '10.0.0.2:1000' }), peerInfo('c', pubs[2]!, '10.100.0.3')];
      const p1 = r.plan(a.snapshot(), desiredA, pubs[0]);
      expect(p1.added).toEqual(['b', 'c']);
      expect(p1.config?.replacePeers).toBeUndefined();
      await a.configure(p1.config!);
      r.commit(p1);
      await b.configure({ peers: [{ publicKey: pubs[0]!, presharedKey: psk, allowedIps: ['10.100.0.1/32'] }] });
      a.writePacket(ipPacket('10.100.0.1', '10.100.0.2', 'one'));
      await new Promise((res) => setTimeout(res, 50));
      expect(got.length).toBe(1);
      const peerB = deviceEngine(a).getPeer(Buffer.from(pubs[1]!, 'base64'))!;
      const keypair = peerB[PEER_KEYPAIRS].current;
      expect(keypair).toBeDefined();
      const hsBefore = [...a.snapshot().peers].find((p) => Buffer.from(p.publicKey).toString('base64') === pubs[1])!.lastHandshakeTimeSec;
      expect(hsBefore).toBeGreaterThan(0);

      // same state again: nothing to do
      expect(r.plan(a.snapshot(), desiredA, pubs[0]).config).toBeUndefined();
      // c vanishes, b unchanged: only c is removed; b keeps its peer object and session
      const p2 = r.plan(a.snapshot(), desiredA.slice(0, 1), pubs[0]);
      expect(p2.removed).toEqual([pubs[2]]);
      expect(p2.config?.peers).toEqual([{ publicKey: pubs[2], remove: true }]);
      await a.configure(p2.config!);
      expect(deviceEngine(a).getPeer(Buffer.from(pubs[1]!, 'base64'))).toBe(peerB);
      expect(peerB[PEER_KEYPAIRS].current).toBe(keypair);
      a.writePacket(ipPacket('10.100.0.1', '10.100.0.2', 'two'));
      await new Promise((res) => setTimeout(res, 50));
      expect(got.length).toBe(2);
      const hsAfter = [...a.snapshot().peers][0]!.lastHandshakeTimeSec;
      expect(hsAfter).toBe(hsBefore);

      // an allowed-IP change touches only that field
      const p3 = r.plan(a.snapshot(), [peerInfo('b', pubs[1]!, '10.100.0.9', { psk, endpoint: '10.0.0.2:1000' })], pubs[0]);
      expect(p3.config?.peers).toEqual([{ publicKey: pubs[1], updateOnly: true, replaceAllowedIps: true, allowedIps: ['10.100.0.9/32'] }]);
      // our own key and bad keys are skipped
      const p4 = r.plan(a.snapshot(), [peerInfo('me', pubs[0]!, '10.100.0.1'), peerInfo('x', 'bad', '10.100.0.5'), ...desiredA.slice(0, 1)], pubs[0]);
      expect(p4.config).toBeUndefined();
      expect(p4.skipped.length).toBe(2);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('refuses a peer list with one public key twice instead of keeping either (issue 11 item 2)', () => {
    const [k1, k2] = [generatePrivateKey(), generatePrivateKey()].map(publicKeyOf);
    const dup = [peerInfo('owner', k1!, '10.100.0.2'), peerInfo('other', k2!, '10.100.0.3'), peerInfo('claimer', k1!, '10.100.0.4')];
    expect(refusePeerList(dup)).toBe(`nodes owner and claimer list the same public key ${k1}`);
    expect(refusePeerList(dup.slice(0, 2))).toBeUndefined();
    const empty = { peers: [] } as unknown as UapiDeviceSnapshot;
    const plan = new Reconciler().plan(empty, dup);
    expect(plan.config).toBeUndefined();
    expect(plan.refused).toMatch(/owner and claimer/);
    expect(new Reconciler().plan(empty, dup.slice(0, 2)).config?.peers).toHaveLength(2);
  });
});

describe('Reconciler endpoint choice (issue 13)', () => {
  const key = (n: number) => Buffer.alloc(32, n).toString('base64');
  const empty: UapiDeviceSnapshot = { peers: [] } as unknown as UapiDeviceSnapshot;
  const endpointOf = (plan: ReturnType<Reconciler['plan']>) => plan.config?.peers?.[0]?.endpoint;
  it('uses endpoint when present, else the first candidate, else the relay', () => {
    const r = new Reconciler();
    expect(endpointOf(r.plan(empty, [peerInfo('a', key(1), '10.100.0.2', { endpoint: '192.0.2.1:1', candidates: ['10.0.0.2:51820'] })]))).toBe('192.0.2.1:1');
    expect(endpointOf(r.plan(empty, [peerInfo('a', key(1), '10.100.0.2', { candidates: ['10.0.0.2:51820', '10.0.0.3:51820'], fallback_endpoint: '198.51.100.1:51821' })]))).toBe('10.0.0.2:51820');
    expect(endpointOf(r.plan(empty, [peerInfo('a', key(1), '10.100.0.2', { fallback_endpoint: '198.51.100.1:51821' })]))).toBe('198.51.100.1:51821');
  });
});
