// Bulk transfer both ways between two TCP engines over a seeded lossy, reordering, duplicating
// link (test/helpers/tcp-sim.ts): what arrives hashes equal to what was sent, and both sides
// close cleanly.

import { describe, expect, it } from 'vitest';
import type { TcpLimits } from '../../src/net/tcp.js';
import { type LinkOptions, sha256, transfer } from '../helpers/tcp-sim.js';

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

describe('TCP bulk transfer under loss, reordering and duplication', () => {
  const cases: [string, Partial<LinkOptions>, Partial<TcpLimits>][] = [
    ['1% loss', { delay: 10, loss: 0.01 }, {}],
    ['5% loss', { delay: 10, loss: 0.05 }, {}],
    ['reordering (jitter 3x delay) and 2% duplicates', { delay: 5, jitter: 15, duplicate: 0.02 }, {}],
    ['5% loss, reordering and duplicates, NewReno, no SACK/timestamps', { delay: 10, jitter: 10, loss: 0.05, duplicate: 0.02 }, { congestion: 'newreno', sack: false, timestamps: false }],
    ['1% loss, small buffers (8 KiB), no window scaling', { delay: 3, loss: 0.01 }, { sendBuffer: 8192, receiveBuffer: 8192, windowScaling: false }],
  ];
  for (const [name, link, limits] of cases) {
    it(`moves 1 MB each way intact: ${name}`, () => {
      const { client, server, dataA, dataB, sim } = transfer(11, 1_000_000, link, limits);
      expect(client.digest()).toBe(sha256(dataB));
      expect(server.digest()).toBe(sha256(dataA));
      expect([client.ended, server.ended, client.closeError, server.closeError]).toEqual([true, true, undefined, undefined]);
      if (link.loss) expect(sim.a.counters.retransmits + sim.b.counters.retransmits).toBeGreaterThan(0);
    });
  }
});
