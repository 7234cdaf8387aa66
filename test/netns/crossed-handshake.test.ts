// Root tier: crossed first handshakes (both ends initiate before either initiation arrives), the
// case two agents hit when the control plane tells them of each other at once. A forwarder in a
// middle namespace (crossing-relay.mjs) holds both first initiations and releases them together,
// so they cross every time, whatever the timing. With one handshake state per peer each side
// answers the other's initiation and drops the response to its own, and both retry 5 s later; we
// keep our own initiation aside while answering, so one round trip completes. Counted, not timed:
// the forwarder reports every initiation, and exactly one per side may pass.

import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepStale, type Netns } from '../helpers/netns.js';
import { WgLab, ensureBuilt, ping, waitFor, wgUnavailableReason, type WgImpl, type WgInterface } from '../helpers/wg-lab.js';

const skipReason = wgUnavailableReason('test/netns/crossed-handshake.test.ts', ['wg', 'wireguard-go', 'ping']);

// Addresses exist only inside this file's namespaces.
const A_OUT = '10.78.1.1';
const M_FOR_A = '10.78.1.2';
const B_OUT = '10.78.2.1';
const M_FOR_B = '10.78.2.2';
const RELAY_PORT = 7000;
const IN_A = '10.201.0.1';
const IN_B = '10.201.0.2';
const RELAY = fileURLToPath(new URL('./crossing-relay.mjs', import.meta.url));

const CASES: ReadonlyArray<readonly [WgImpl, 'a' | 'b']> = [
  ['wireguard-go', 'a'],
  ['wireguard-go', 'b'],
  ['ours', 'a'],
  ['ours', 'b'],
];

describe.skipIf(skipReason !== undefined)('crossed first handshakes (A = ours)', () => {
  const wl = new WgLab();
  let nsA: Netns;
  let nsM: Netns;
  let nsB: Netns;
  let a: WgInterface;
  const b = new Map<WgImpl, WgInterface>();

  beforeAll(async () => {
    sweepStale();
    await ensureBuilt();
    nsA = await wl.namespace();
    nsM = await wl.namespace();
    nsB = await wl.namespace();
    await wl.lab.veth(nsA, nsM, { a: `${A_OUT}/24`, b: `${M_FOR_A}/24` });
    await wl.lab.veth(nsB, nsM, { a: `${B_OUT}/24`, b: `${M_FOR_B}/24` });
    a = await wl.start(nsA, 'ours', { addresses: [`${IN_A}/24`] });
  });

  afterAll(async () => {
    await wl.cleanup();
  });

  it.each(CASES)('B = %s, %s\'s initiation released first: one initiation each, both first pings answered', async (implB, first) => {
    // One B of each kind in nsB, started on first use; only one is peered with A at a time.
    for (const other of b.values()) await a.set('peer', other.keys.publicKey, 'remove');
    let peerB = b.get(implB);
    if (peerB === undefined) {
      for (const [, other] of b) await other.ip('link', 'del', other.name).catch(() => undefined);
      peerB = await wl.start(nsB, implB, { addresses: [`${IN_B}/24`] });
      b.set(implB, peerB);
    }
    await peerB.set('peer', a.keys.publicKey, 'remove');
    const portA = await a.listenPort();
    const portB = await peerB.listenPort();
    const relay = nsM.spawn(['node', RELAY, M_FOR_A, String(RELAY_PORT), `${B_OUT}:${portB}`, M_FOR_B, String(RELAY_PORT), `${A_OUT}:${portA}`, first], { stdin: 'pipe' });
    const lines: string[] = [];
    createInterface({ input: relay.stdout! }).on('line', (l) => lines.push(l));
    try {
      expect(await waitFor(() => lines.includes('ready'), 10_000)).toBe(true);
      await a.set('peer', peerB.keys.publicKey, 'allowed-ips', `${IN_B}/32`, 'endpoint', `${M_FOR_A}:${RELAY_PORT}`);
      await peerB.set('peer', a.keys.publicKey, 'allowed-ips', `${IN_A}/32`, 'endpoint', `${M_FOR_B}:${RELAY_PORT}`);
      // Both first pings go out together; the forwarder makes their initiations cross. -W 12 is a
      // hang guard longer than two retries, so a retransmission shows in the count, not as a timeout.
      const [fromA, fromB] = await Promise.all([ping(nsA, IN_B, { waitS: 12 }), ping(nsB, IN_A, { waitS: 12 })]);
      expect(lines).toContain('released');
      expect({ fromA: fromA.ok, fromB: fromB.ok }).toEqual({ fromA: true, fromB: true });
      const inits = { a: lines.filter((l) => l === 'init a').length, b: lines.filter((l) => l === 'init b').length };
      console.log(`[crossed] B=${implB} first=${first}: initiations a=${inits.a} b=${inits.b}, rtt a->b ${fromA.avgMs} ms, b->a ${fromB.avgMs} ms`);
      expect(inits).toEqual({ a: 1, b: 1 });
    } finally {
      relay.kill('SIGTERM');
    }
  });
});
