// Path probing on real sockets (issue 13): two namespaces joined by two veth links (two "LANs"),
// a WireGuard Device with a PathProber in each (test/netns/path-probe-node.mjs, built dist/),
// each given both of the other's addresses as candidates. Link 1 starts dead (iptables DROP of
// UDP on it at B): both pick link 2 and tunnel packets flow. Then link 1 comes back and link 2
// dies: both move to link 1 within a keepalive period plus the pong timeout, tunnel packets
// flow again. Prints the time to the first choice and the time to switch. Network rule: only
// addresses inside these namespaces.

import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEEPALIVE_MS, PONG_TIMEOUT_MS } from '../../src/agent/path-prober.js';
import type { Netns } from '../helpers/netns.js';
import { REPO_DIR, WgLab, ensureBuilt, genKeys, waitFor, wgUnavailableReason } from '../helpers/wg-lab.js';

const reason = wgUnavailableReason('path probing lab', ['iptables']);
const NODE_SCRIPT = join(REPO_DIR, 'test/netns/path-probe-node.mjs');
const PORT = 51820;

interface Line {
  readonly event: string;
  readonly at: number;
  readonly endpoint?: string | null;
  readonly rttMs?: number;
  readonly count?: number;
}

class Node {
  readonly lines: Line[] = [];
  readonly child: ChildProcess;
  constructor(child: ChildProcess) {
    this.child = child;
    let buf = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const l = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          this.lines.push(JSON.parse(l) as Line);
        } catch {
          // not ours
        }
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => process.stderr.write(`[path-probe-node] ${d}`));
  }
  get chosen(): string | null | undefined {
    return this.lines.filter((l) => l.event === 'chosen').at(-1)?.endpoint;
  }
  get rx(): number {
    return this.lines.filter((l) => l.event === 'rx').at(-1)?.count ?? 0;
  }
}

describe.skipIf(reason !== undefined)('path probing over two links', () => {
  const wl = new WgLab();
  let nsA: Netns;
  let nsB: Netns;
  let a: Node;
  let b: Node;
  const figures: string[] = [];
  const A1 = '10.201.1.1';
  const B1 = '10.201.1.2';
  const A2 = '10.201.2.1';
  const B2 = '10.201.2.2';
  const drop = (ns: Netns, op: '-A' | '-D', from: string) => ns.runOk(['iptables', op, 'INPUT', '-p', 'udp', '-s', from, '-j', 'DROP']);

  beforeAll(async () => {
    await ensureBuilt();
    nsA = await wl.namespace();
    nsB = await wl.namespace();
    await wl.lab.veth(nsA, nsB, { a: `${A1}/24`, b: `${B1}/24` });
    await wl.lab.veth(nsA, nsB, { a: `${A2}/24`, b: `${B2}/24` });
  }, 120_000);

  afterAll(async () => {
    for (const n of [a, b]) n?.child.kill('SIGTERM');
    await waitFor(() => [a, b].every((n) => n === undefined || n.child.exitCode !== null), 3000);
    for (const n of [a, b]) {
      const exit = n?.lines.find((l) => l.event === 'exit');
      if (exit !== undefined) console.log(`[path-probe] node exit: ${JSON.stringify(exit)}`);
    }
    if (figures.length > 0) console.log(`[path-probe] ${figures.join('\n[path-probe] ')}`);
    await wl.cleanup();
  });

  it('picks the working link, then moves when it dies; tunnel packets flow on both', async () => {
    await drop(nsB, '-A', A1); // link 1 dead both ways: B never receives over it, so never answers
    const ka = genKeys();
    const kb = genKeys();
    const start = (ns: Netns, me: typeof ka, peer: typeof ka, candidates: string[], meshIp: string, peerMeshIp: string) =>
      new Node(ns.spawn([process.execPath, NODE_SCRIPT, JSON.stringify({ privateKey: me.privateKey, peerPublicKey: peer.publicKey, candidates: candidates.map((address) => ({ address, port: PORT })), meshIp, peerMeshIp, timeoutMs: 90_000 })], { stdin: 'pipe' }));
    const t0 = performance.now();
    a = start(nsA, ka, kb, [B1, B2], '10.100.0.1', '10.100.0.2');
    b = start(nsB, kb, ka, [A1, A2], '10.100.0.2', '10.100.0.1');
    const first = await waitFor(() => a.chosen !== undefined && b.chosen !== undefined, 20_000);
    expect(first).toBe(true);
    expect(a.chosen).toBe(`${B2}:${PORT}`);
    expect(b.chosen).toBe(`${A2}:${PORT}`);
    figures.push(`first choice: A ${a.lines.find((l) => l.event === 'chosen')!.at} ms, B ${b.lines.find((l) => l.event === 'chosen')!.at} ms after start (process start included: ${Math.round(performance.now() - t0)} ms wall)`);
    const rxA = a.rx;
    expect(await waitFor(() => a.rx > rxA + 3 && b.rx > 3, 10_000)).toBe(true);

    // Link 1 back, link 2 dead.
    await drop(nsB, '-D', A1);
    await drop(nsB, '-A', A2);
    const diedAt = performance.now();
    const moved = await waitFor(() => a.chosen === `${B1}:${PORT}` && b.chosen === `${A1}:${PORT}`, 30_000, 20);
    const switchMs = Math.round(performance.now() - diedAt);
    expect(moved).toBe(true);
    figures.push(`switch after link 2 died: both on link 1 after ${switchMs} ms (bound: keepalive ${KEEPALIVE_MS} + pong timeout ${PONG_TIMEOUT_MS} ms, plus a round)`);
    const rxA2 = a.rx;
    const rxB2 = b.rx;
    expect(await waitFor(() => a.rx > rxA2 + 3 && b.rx > rxB2 + 3, 15_000)).toBe(true);
    await drop(nsB, '-D', A2);
  }, 120_000);
});
