// The Device hook: two devices over the memory twins, a PolicyFilter on B. A packet the policy
// denies never reaches B's TUN and is counted; an allowed flow and its reply pass both ways.

import { afterEach, describe, expect, it } from 'vitest';
import { nobleCrypto } from '../../src/core/crypto-noble.js';
import { Device } from '../../src/device/device.js';
import { MemoryNetwork } from '../../src/io/bind-memory.js';
import { ManualClock } from '../../src/io/clock.js';
import { MemoryTun } from '../../src/io/tun-memory.js';
import { PolicyFilter } from '../../src/policy/filter.js';
import { parsePolicy } from '../../src/policy/rules.js';
import { ACK, SYN, tcp } from './packets.js';

const A = '10.100.0.1';
const B = '10.100.0.2';

function key(fill: number): Uint8Array {
  const k = new Uint8Array(32).fill(fill);
  k[0]! &= 248;
  k[31] = (k[31]! & 127) | 64;
  return k;
}

const devices: Device[] = [];
afterEach(async () => {
  for (const d of devices.splice(0)) await d.close();
});

async function twoDevices(): Promise<{ net: MemoryNetwork; tunA: MemoryTun; tunB: MemoryTun; a: Device; b: Device; run: () => void }> {
  const net = new MemoryNetwork({ delivery: 'manual' });
  const clock = new ManualClock(1_000);
  const tunA = new MemoryTun({ delivery: 'manual' });
  const tunB = new MemoryTun({ delivery: 'manual' });
  const opts = { clock, crypto: nobleCrypto, fillRandom: (b: Uint8Array) => void b.fill(7) };
  const a = await Device.create({ ...opts, tun: tunA, bind: net.createBind(['192.0.2.1']), listenPort: 51820 });
  const b = await Device.create({ ...opts, tun: tunB, bind: net.createBind(['192.0.2.2']), listenPort: 51820 });
  devices.push(a, b);
  await a.configure({ privateKey: key(1) });
  await b.configure({ privateKey: key(2) });
  await a.configure({ peers: [{ publicKey: b.publicKey!, endpoint: '192.0.2.2:51820', allowedIps: [`${B}/32`] }] });
  await b.configure({ peers: [{ publicKey: a.publicKey!, endpoint: '192.0.2.1:51820', allowedIps: [`${A}/32`] }] });
  const run = (): void => {
    for (let i = 0; i < 20 && (tunA.flush() + tunB.flush() + net.deliver()) > 0; i++);
  };
  return { net, tunA, tunB, a, b, run };
}

describe('Device with a PolicyFilter', () => {
  it('drops and counts what the policy denies on the inbound side; the allowed flow and replies pass', async () => {
    const { tunA, tunB, b, run } = await twoDevices();
    const filter = new PolicyFilter();
    filter.apply(parsePolicy({ revision_id: 'r1', fingerprint: 'f', rules: [{ action: 'allow', protocol: 'tcp', source_cidr: `${A}/32`, destination_cidr: `${B}/32`, ports: { from: 22, to: 22 } }] }));
    b.setFilter(filter);

    tunA.inject(tcp(A, B, 40000, 80, SYN)); // denied at B
    tunA.inject(tcp(A, B, 40000, 22, SYN)); // allowed
    run();
    const atB = tunB.takeWritten();
    expect(atB.map((p) => (p[22]! << 8) | p[23]!)).toEqual([22]);
    expect(b.counters.filteredInbound).toBe(1);
    expect(filter.snapshot().drops['default-deny']).toBe(1);

    tunB.inject(tcp(B, A, 22, 40000, SYN | ACK)); // reply: tracked, passes B's outbound check
    tunB.inject(tcp(B, A, 41000, 22, SYN)); // B opening to A: refused before encryption
    run();
    expect(tunA.takeWritten().map((p) => (p[20]! << 8) | p[21]!)).toEqual([22]);
    expect(b.counters.filteredOutbound).toBe(1);

    // Removing the filter lets everything through again.
    b.setFilter(undefined);
    tunA.inject(tcp(A, B, 40001, 80, ACK));
    run();
    expect(tunB.takeWritten()).toHaveLength(1);
    expect(() => b.setFilter({} as PolicyFilter)).toThrow(TypeError);
  });

  it('filters outbound packets of packet-callback mode (writePacket) too', async () => {
    const { a, tunB, run } = await twoDevices();
    const filter = new PolicyFilter({ defaultAction: 'deny' });
    a.setFilter(filter);
    a.writePacket(tcp(A, B, 1, 22, SYN));
    run();
    expect(tunB.takeWritten()).toHaveLength(0);
    expect(a.counters.filteredOutbound).toBe(1);
    expect(filter.snapshot().drops['no-policy']).toBe(1);
  });
});
