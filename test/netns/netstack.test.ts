// Root tier, issue 22: our userspace TCP/IP stack (plexd-userspace/net) in an unprivileged
// process (setpriv to uid/gid 65534: no TUN, no root) in namespace A, against the Linux kernel's
// stack behind our TUN-backed daemon in namespace B, over a real WireGuard tunnel on a veth.
// Kernel TCP server and client both ways with sha256, UDP and ICMP echo, http.get and fetch,
// concurrent connections, and 1%/5% loss and reordering injected by a UDP relay in A between the
// two WireGuard ends (netstack-relay.mjs: this kernel has no sch_netem for `tc netem`).
//
// Network rule: all traffic stays on the veth between the two namespaces created here.

import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Netns } from '../helpers/netns.js';
import { requireRoot } from '../helpers/netns.js';
import { REPO_DIR, WgLab, ensureBuilt, genKeys, type WgInterface, type WgKeys } from '../helpers/wg-lab.js';

const skipReason = requireRoot('test/netns/netstack.test.ts');
const PEER = join(REPO_DIR, 'test/netns/netstack-peer.mjs');
const KERNEL = join(REPO_DIR, 'test/netns/netstack-kernel.mjs');
const RELAY = join(REPO_DIR, 'test/netns/netstack-relay.mjs');
const NOBODY = 65534;
/** Bytes of the big transfer (each way); the issue asks for 100 MB. */
const BIG = Number(process.env.NETSTACK_BIG_BYTES ?? 100 * 1024 * 1024);

interface Line {
  step: string;
  [k: string]: unknown;
}

describe.skipIf(skipReason !== undefined)('userspace netstack against the kernel over a real tunnel', () => {
  const lab = new WgLab();
  let nsA: Netns;
  let nsB: Netns;
  let wgB: WgInterface;
  let keysA: WgKeys;

  beforeAll(async () => {
    await ensureBuilt();
    nsA = await lab.namespace();
    nsB = await lab.namespace();
    await lab.lab.veth(nsA, nsB, { a: '10.9.77.1/24', b: '10.9.77.2/24' });
    wgB = await lab.start(nsB, 'ours', { addresses: ['10.201.0.2/24'] });
    keysA = genKeys();
    await wgB.set('peer', keysA.publicKey, 'allowed-ips', '10.201.0.1/32');
    const server = nsB.spawn([process.execPath, KERNEL, 'serve']);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('kernel servers did not start')), 15_000);
      createInterface({ input: server.stdout! }).on('line', (l) => l === 'ready' && (clearTimeout(t), resolve()));
    });
  }, 240_000);

  afterAll(async () => {
    await lab.cleanup();
  }, 60_000);

  /** Runs the unprivileged peer with `steps`; `onLine` may act on a line (e.g. run the kernel client). */
  async function runPeer(steps: object[], timeoutMs: number, onLine?: (l: Line, stdin: NodeJS.WritableStream) => Promise<void> | void, endpoint?: string): Promise<Line[]> {
    const config = {
      dist: join(REPO_DIR, 'dist'),
      privateKey: keysA.privateKey,
      peer: { publicKey: wgB.keys.publicKey, endpoint: endpoint ?? `10.9.77.2:${await wgB.listenPort()}` },
      address: '10.201.0.1',
      peerAddress: '10.201.0.2',
      steps,
    };
    const child = nsA.spawn(['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, PEER, JSON.stringify(config)], { stdin: 'pipe' });
    const lines: Line[] = [];
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const done = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`peer timed out; lines ${JSON.stringify(lines)}; stderr ${stderr}`));
      }, timeoutMs);
      createInterface({ input: child.stdout! }).on('line', (text) => {
        const l = JSON.parse(text) as Line;
        lines.push(l);
        void Promise.resolve(onLine?.(l, child.stdin!)).catch(reject);
      });
      child.on('exit', (code) => {
        clearTimeout(t);
        if (code === 0) resolve();
        else reject(new Error(`peer exited ${code}: ${stderr}`));
      });
    });
    await done;
    return lines;
  }

  const step = (lines: Line[], name: string): Line => {
    const l = lines.find((x) => x.step === name);
    if (l === undefined) throw new Error(`no ${name} line in ${JSON.stringify(lines)}`);
    expect(l.error).toBeUndefined();
    return l;
  };

  it('answers ping, UDP, http.get and fetch, and moves 100 MB each way against a kernel echo server, as uid 65534', async () => {
    const lines = await runPeer([{ kind: 'ping' }, { kind: 'udp' }, { kind: 'http' }, { kind: 'tcp', bytes: BIG }], 600_000);
    expect(step(lines, 'joined').uid).toBe(NOBODY);
    expect(step(lines, 'ping').rtt).toBeGreaterThan(0);
    expect(step(lines, 'udp').reply).toBe('over udp');
    expect(step(lines, 'http')).toMatchObject({ get: 'kernel says GET /via-http-get ', fetch: 'kernel says POST /via-fetch hello', status: 200 });
    const tcp = step(lines, 'tcp');
    expect(tcp.received).toBe(tcp.sent);
    console.log(`[netstack] ${BIG} bytes echoed through the kernel in ${Math.round(tcp.ms as number)} ms`);
  }, 700_000);

  it('serves a kernel TCP client (our listener, kernel connect) with sha256-checked echo', async () => {
    let kernel: { sent: string; received: string } | undefined;
    await runPeer([{ kind: 'serve', port: 9000 }], 120_000, async (l, stdin) => {
      if (l.step !== 'serve') return;
      const out = await nsB.runOk([process.execPath, KERNEL, 'client', '10.201.0.1', '9000', String(8 << 20)], { timeoutMs: 100_000 });
      kernel = JSON.parse(out) as { sent: string; received: string };
      stdin.write('done\n');
    });
    expect(kernel?.received).toBe(kernel?.sent);
  }, 150_000);

  it('zero window (our reader paused), a RST from the kernel, and a simultaneous close', async () => {
    const lines = await runPeer([{ kind: 'zero-window' }, { kind: 'reset' }, { kind: 'simultaneous-close' }], 120_000);
    const zw = step(lines, 'zero-window');
    // Paused: only the receive window (1 MiB) plus the stream's buffer came in, then all 8 MiB intact.
    expect(zw.whilePaused).toBeLessThan(2 * 1024 * 1024);
    expect(zw).toMatchObject({ total: 8 * 1024 * 1024, bad: 0 });
    expect(step(lines, 'reset').code).toBe('ECONNRESET');
    const sc = lines.find((l) => l.step === 'simultaneous-close')!;
    expect(sc.error).toBeNull();
  }, 150_000);

  it('keeps 1,000 concurrent connections correct', async () => {
    const lines = await runPeer([{ kind: 'many', count: 1000, bytes: 2000 }], 300_000);
    expect(step(lines, 'many').ok).toBe(1000);
  }, 320_000);

  // [loss, reorder probability, hold ms]
  for (const [loss, reorder, hold] of [[0.01, 0, 0], [0.05, 0, 0], [0, 0.25, 5]] as const) {
    it(`completes an 8 MB echo without corruption at ${loss * 100}% loss, ${reorder * 100}% reordered`, async () => {
      const relay = nsA.spawn([process.execPath, RELAY, '17000', '10.9.77.2', String(await wgB.listenPort()), String(loss), String(reorder), String(hold)]);
      try {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error('relay did not start')), 10_000);
          createInterface({ input: relay.stdout! }).on('line', (l) => l === 'ready' && (clearTimeout(t), resolve()));
        });
        const lines = await runPeer([{ kind: 'tcp', bytes: 8 << 20 }], 300_000, undefined, '127.0.0.1:17000');
        const tcp = step(lines, 'tcp');
        expect(tcp.received).toBe(tcp.sent);
        const done = step(lines, 'done') as unknown as { tcp: Record<string, number> };
        if (loss > 0) expect(done.tcp.retransmits).toBeGreaterThan(0);
        console.log(`[netstack] loss ${loss} reorder ${reorder}: ${Math.round(tcp.ms as number)} ms, tcp counters ${JSON.stringify(done.tcp)}`);
      } finally {
        relay.kill('SIGKILL');
      }
    }, 320_000);
  }
});
