// The node API's `peers` document (src/agent/status.ts): the control plane's view joined with the
// device's typed peer query. It reads peers through Device#peers, never the whole snapshot (which
// copies the private key), and prints each device peer once.

import { afterEach, describe, expect, it } from 'vitest';
import type { MeshInterface } from '../../src/agent/mesh-interface.js';
import { PathProblems } from '../../src/agent/path-problems.js';
import { peersDocument } from '../../src/agent/status.js';
import type { PeerInfo } from '../../src/api/types.js';
import { Device } from '../../src/device/device.js';
import { MemoryNetwork } from '../../src/io/bind-memory.js';

const KEY_A = new Uint8Array(32).fill(1);
const KEY_B = new Uint8Array(32).fill(2);
const b64 = (k: Uint8Array) => Buffer.from(k).toString('base64');

const open: Device[] = [];
afterEach(async () => {
  for (const d of open.splice(0)) await d.close();
});

describe('peersDocument', () => {
  it('joins the device peers with the control plane view, without taking the device snapshot', async () => {
    const device = await Device.create({ onPacket: () => {}, bind: new MemoryNetwork().createBind(['10.0.0.1']) });
    open.push(device);
    await device.apply({
      privateKey: new Uint8Array(32).fill(9),
      peers: [
        { publicKey: KEY_A, endpoint: { address: '192.0.2.1', port: 51820 }, allowedIps: [] },
        { publicKey: KEY_B, allowedIps: [] },
      ],
    });
    // The document has no use for the private key: a snapshot() call fails the test.
    device.snapshot = () => {
      throw new Error('peersDocument took the whole device snapshot');
    };
    const peers: PeerInfo[] = [{ node_id: 'n-a', mesh_ip: '100.64.0.2', public_key: b64(KEY_A) }];
    const doc = peersDocument({ iface: { device } as unknown as MeshInterface, nat: undefined, peers, pathProblems: new PathProblems(0, () => {}) });
    expect(doc).toEqual([
      expect.objectContaining({ node_id: 'n-a', mesh_ip: '100.64.0.2', public_key: b64(KEY_A), endpoint: '192.0.2.1:51820', last_handshake: null, path: 'direct', rx_bytes: 0, tx_bytes: 0 }),
      expect.objectContaining({ node_id: null, mesh_ip: null, public_key: b64(KEY_B), endpoint: null, path_problem: null }),
    ]);
  });
});
