// Bulk transfer both ways between two TCP engines over a seeded lossy, reordering, duplicating
// link (test/helpers/tcp-sim.ts): what arrives hashes equal to what was sent, and both sides
// close cleanly.

import { describe, expect, it } from 'vitest';
import type { TcpConnection, TcpLimits } from '../../src/net/tcp.js';
import { Endpoint, IP_A, IP_B, type LinkOptions, TcpSim, randomData, sha256 } from '../helpers/tcp-sim.js';

const MSS = 1360;

export function transfer(seed: number, size: number, link: Partial<LinkOptions>, limits: Partial<TcpLimits> = {}) {
  const sim = new TcpSim(seed, link, limits);
  const dataA = randomData(seed * 7 + 1, size);
  const dataB = randomData(seed * 7 + 2, size);
  let server: Endpoint | undefined;
  sim.b.listen(80, { mss: MSS, backlog: 16 }, (c: TcpConnection) => {
    server = new Endpoint(c, dataB, sim);
  });
  const conn = sim.a.connect({ ip: IP_A, port: 0 }, { ip: IP_B, port: 80 }, { mss: MSS }, sim.now);
  const client = new Endpoint(conn, dataA, sim);
  sim.run(() => client.closed && server !== undefined && server.closed, 36_000_000);
  return { sim, client, server: server!, dataA, dataB, conn };
}

describe('TCP bulk transfer over a simulated link', () => {
  it('moves 2 MB each way on a clean link, both close, then TIME-WAIT ends', () => {
    const { sim, client, server, dataA, dataB } = transfer(1, 2_000_000, { delay: 5 });
    expect(client.received).toBe(dataB.length);
    expect(server.received).toBe(dataA.length);
    expect(client.digest()).toBe(sha256(dataB));
    expect(server.digest()).toBe(sha256(dataA));
    expect([client.closeError, server.closeError]).toEqual([undefined, undefined]);
    sim.run(() => sim.a.connectionCount + sim.b.connectionCount === 0);
    expect(sim.a.connectionCount + sim.b.connectionCount).toBe(0);
    expect(sim.a.counters.retransmits + sim.b.counters.retransmits).toBe(0);
  });
});
