// Root tier: our daemon with the native batched UDP bind (PLEXD_BIND=native) against
// wireguard-go, both ways, over IPv4 and IPv6 outer transport: handshake and ping inside, and a
// 10 MB TCP transfer each way checked by sha256. The whole interop suite also runs with the env
// set (`PLEXD_BIND=native npx vitest run --project netns test/netns/interop.test.ts`); this file
// keeps the native path covered whatever the default is.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepStale, type Netns } from '../helpers/netns.js';
import { WgLab, ensureBuilt, pingUntil, tcpListening, wgUnavailableReason, type WgInterface } from '../helpers/wg-lab.js';

const skipReason = wgUnavailableReason('test/netns/bind-native.test.ts', ['wg', 'wireguard-go', 'ping', 'ncat', 'sha256sum']);

// Outer (veth) and inner (tunnel) addresses; they exist only inside this file's namespaces.
const OUTER_A = '10.78.0.1';
const OUTER_B = '10.78.0.2';
const OUTER6_B = 'fd78::2';
const IN_A = '10.203.0.1';
const IN_B = '10.203.0.2';
const IN6_B = 'fd23::2';
const TRANSFER_BYTES = 10 * 1024 * 1024;

describe.skipIf(skipReason !== undefined)('ours (PLEXD_BIND=native) <-> wireguard-go', () => {
  const wl = new WgLab();
  let nsA: Netns;
  let nsB: Netns;
  let a: WgInterface;
  let b: WgInterface;

  beforeAll(async () => {
    sweepStale();
    await ensureBuilt();
    nsA = await wl.namespace();
    nsB = await wl.namespace();
    await wl.lab.veth(nsA, nsB, { a: [`${OUTER_A}/24`, 'fd78::1/64'], b: [`${OUTER_B}/24`, `${OUTER6_B}/64`] });
    a = await wl.start(nsA, 'ours', { addresses: [`${IN_A}/24`, 'fd23::1/64'], env: { PLEXD_BIND: 'native' } });
    b = await wl.start(nsB, 'wireguard-go', { addresses: [`${IN_B}/24`, `${IN6_B}/64`] });
  });

  afterAll(async () => {
    await wl.cleanup();
  });

  async function transfer(from: Netns, to: Netns, toAddress: string): Promise<void> {
    const file = wl.file('');
    const made = await from.run(['sh', '-c', `head -c ${TRANSFER_BYTES} /dev/urandom > ${file} && sha256sum < ${file}`], { timeoutMs: 60_000 });
    expect(made.code, made.stderr).toBe(0);
    const receiver = to.run(['sh', '-c', 'ncat -l -p 5002 --recv-only | sha256sum'], { timeoutMs: 60_000 });
    expect(await tcpListening(to, 5002)).toBe(true);
    const sender = await from.run(['sh', '-c', `ncat --send-only ${toAddress} 5002 < ${file}`], { timeoutMs: 60_000 });
    const received = await receiver;
    expect(sender.code, sender.stderr).toBe(0);
    expect(received.stdout.split(' ')[0]).toBe(made.stdout.split(' ')[0]);
  }

  it('handshake, ping and 10 MB each way over IPv4, then over IPv6 outer transport', async () => {
    for (const outer of [`${OUTER_B}:`, `[${OUTER6_B}]:`]) {
      await a.set('peer', b.keys.publicKey, 'remove');
      await b.set('peer', a.keys.publicKey, 'remove');
      await wl.connect(a, b, { allowedOfA: [`${IN_A}/32`, 'fd23::1/128'], allowedOfB: [`${IN_B}/32`, `${IN6_B}/128`], endpointOfB: `${outer}${await b.listenPort()}`, endpointOfA: null });
      const r4 = await pingUntil(nsA, IN_B);
      expect(r4.ok, r4.output).toBe(true);
      expect((await pingUntil(nsA, IN6_B)).ok).toBe(true);
      await transfer(nsA, nsB, IN_B);
      await transfer(nsB, nsA, IN_A);
      const peer = await a.peer(b);
      expect(peer.rxBytes).toBeGreaterThan(TRANSFER_BYTES);
      expect(peer.txBytes).toBeGreaterThan(TRANSFER_BYTES);
    }
  });
});
