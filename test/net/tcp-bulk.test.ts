// 20 MB each way between two TCP engines, clean, lossy (1%, 5%) and reordering, hashed end to
// end; prints the throughput of the simulation run (both engines, the link, hashing; one thread).

import { describe, expect, it } from 'vitest';
import { sha256, transfer } from '../helpers/tcp-sim.js';

const SIZE = 20_000_000;

describe('TCP 20 MB both ways', () => {
  const cases = [
    ['clean', { delay: 10 }],
    ['1% loss + reordering', { delay: 10, jitter: 10, loss: 0.01 }],
    ['5% loss + reordering + 1% duplicates', { delay: 10, jitter: 10, loss: 0.05, duplicate: 0.01 }],
  ] as const;
  for (const [name, link] of cases) {
    it(`${name}: both streams arrive intact`, () => {
      const { client, server, dataA, dataB, sim, ms } = transfer(77, SIZE, link);
      expect([client.closeError, server.closeError, client.received, server.received]).toEqual([undefined, undefined, SIZE, SIZE]);
      expect(client.digest()).toBe(sha256(dataB));
      expect(server.digest()).toBe(sha256(dataA));
      const c = sim.a.counters;
      console.log(`tcp bulk ${name}: ${((2 * SIZE) / 1e6 / (ms / 1000)).toFixed(1)} MB/s of engine work, both engines + link + SHA-256 (${ms.toFixed(0)} ms wall, ${(sim.now / 1000).toFixed(1)} s simulated, a: ${c.retransmits} retransmits, ${c.fastRetransmits} fast, ${c.timeouts} RTOs)`);
    });
  }
});
