// Root tier, issue 3: our daemon against Debian's wireguard-go and against itself, over real TUN
// devices and UDP between two namespaces joined by veth. A (always ours) and B (each
// implementation in turn) are re-peered before each scenario so every handshake starts fresh.
// Skipped with the printed reason when not root or a tool is missing.

import { existsSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepStale, type Netns } from '../helpers/netns.js';
import {
  WgLab,
  capture,
  ensureBuilt,
  genPsk,
  ping,
  pingUntil,
  sleep,
  tcpListening,
  waitFor,
  wgUnavailableReason,
  type ConnectOptions,
  type WgImpl,
  type WgInterface,
  WIREGUARD_GO_GSO,
} from '../helpers/wg-lab.js';

const skipReason = wgUnavailableReason('test/netns/interop.test.ts', ['wg', 'wireguard-go', 'ping', 'ncat', 'iperf3', 'tcpdump', 'sha256sum']);

// Outer (veth) and inner (tunnel) addresses; they exist only inside this file's namespaces.
const OUTER_A = '10.77.0.1';
const OUTER_B = '10.77.0.2';
const OUTER_B2 = '10.77.0.3';
const OUTER_A2 = '10.77.0.4';
const OUTER6_A = 'fd77::1';
const OUTER6_B = 'fd77::2';
const IN_A = '10.200.0.1';
const IN_B = '10.200.0.2';
const IN_B_ROGUE = '10.200.0.99';
const IN6_A = 'fd20::1';
const IN6_B = 'fd20::2';
const TRANSFER_BYTES = 100 * 1024 * 1024;

/** Numbers seen in this run, printed at the end for the issue note. */
const measured: string[] = [];

const PAIRS: ReadonlyArray<readonly [WgImpl, WgImpl]> = [
  ['ours', 'wireguard-go'],
  ['ours', 'ours'],
];

describe.skipIf(skipReason !== undefined).each(PAIRS)('A=%s <-> B=%s', (implA, implB) => {
  const wl = new WgLab();
  let nsA: Netns;
  let nsB: Netns;
  let vethA: string;
  let vethB: string;
  let a: WgInterface;
  let b: WgInterface;

  /** Removes both peers and connects A and B again with `opts` (fresh handshake state). */
  async function repeer(opts: ConnectOptions): Promise<void> {
    await a.set('peer', b.keys.publicKey, 'remove');
    await b.set('peer', a.keys.publicKey, 'remove');
    await wl.connect(a, b, { allowedOfA: [`${IN_A}/32`, `${IN6_A}/128`], allowedOfB: [`${IN_B}/32`, `${IN6_B}/128`], ...opts });
  }

  const endpoint = (addr: string, port: number) => (addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`);

  beforeAll(async () => {
    sweepStale();
    await ensureBuilt();
    nsA = await wl.namespace();
    nsB = await wl.namespace();
    ({ a: vethA, b: vethB } = await wl.lab.veth(nsA, nsB, { a: [`${OUTER_A}/24`, `${OUTER6_A}/64`], b: [`${OUTER_B}/24`, `${OUTER6_B}/64`] }));
    a = await wl.start(nsA, implA, { addresses: [`${IN_A}/24`, `${IN6_A}/64`] });
    b = await wl.start(nsB, implB, { addresses: [`${IN_B}/24`, `${IN6_B}/64`] });
  });

  afterAll(async () => {
    await wl.cleanup();
    if (measured.length > 0) console.log(measured.splice(0).join('\n'));
  });

  it('handshake initiated by A: B learns A from the initiation; ping over IPv4 and IPv6 inside', async () => {
    await repeer({ endpointOfB: endpoint(OUTER_B, await b.listenPort()), endpointOfA: null });
    expect((await a.peer(b)).latestHandshake).toBe(0);
    const r4 = await pingUntil(nsA, IN_B);
    expect(r4.ok, r4.output).toBe(true);
    const r6 = await pingUntil(nsA, IN6_B);
    expect(r6.ok, r6.output).toBe(true);
    expect((await b.peer(a)).endpoint).toBe(endpoint(OUTER_A, await a.listenPort()));
    const rtt = await ping(nsA, IN_B, { count: 20, intervalS: 0.01 });
    expect(rtt.received).toBe(20);
    measured.push(`ping RTT A=${implA} -> B=${implB}: avg ${rtt.avgMs} ms over 20`);
  });

  it('handshake initiated by B: A learns B from the initiation', async () => {
    await repeer({ endpointOfB: null, endpointOfA: endpoint(OUTER_A, await a.listenPort()) });
    expect((await a.peer(b)).endpoint).toBe('(none)');
    // A cannot send first: it knows no endpoint for B.
    expect((await ping(nsA, IN_B, { waitS: 1 })).ok).toBe(false);
    const r = await pingUntil(nsB, IN_A);
    expect(r.ok, r.output).toBe(true);
    expect((await a.peer(b)).endpoint).toBe(endpoint(OUTER_B, await b.listenPort()));
    expect((await pingUntil(nsA, IN6_B)).ok).toBe(true);
  });

  it('IPv6 as the outer transport', async () => {
    await repeer({ endpointOfB: endpoint(OUTER6_B, await b.listenPort()), endpointOfA: null });
    expect((await pingUntil(nsA, IN_B)).ok).toBe(true);
    expect((await pingUntil(nsA, IN6_B)).ok).toBe(true);
    expect((await b.peer(a)).endpoint).toBe(endpoint(OUTER6_A, await a.listenPort()));
  });

  it('pre-shared key: matching keys connect, mismatched keys never complete a handshake', async () => {
    const psk = genPsk();
    await repeer({ endpointOfB: endpoint(OUTER_B, await b.listenPort()), presharedKey: psk });
    expect((await pingUntil(nsA, IN_B)).ok).toBe(true);
    expect((await a.peer(b)).presharedKey).toBe(psk);
    expect((await b.peer(a)).presharedKey).toBe(psk);

    await repeer({ endpointOfB: endpoint(OUTER_B, await b.listenPort()), presharedKey: psk, presharedKeyOfB: genPsk() });
    const r = await ping(nsA, IN_B, { count: 2, waitS: 2 });
    expect(r.ok, r.output).toBe(false);
    expect((await a.peer(b)).latestHandshake).toBe(0);
    expect((await b.peer(a)).latestHandshake).toBe(0);
    // The PSK enters only at the response (whitepaper 5.4.3): B did answer, A refused the answer.
    expect((await b.peer(a)).txBytes).toBeGreaterThan(0);
  });

  it('full-size packets at the 1420 MTU (DF set) and inner fragments pass both ways', async () => {
    await repeer({ endpointOfB: endpoint(OUTER_B, await b.listenPort()) });
    expect((await pingUntil(nsA, IN_B)).ok).toBe(true);
    // 1420 - 20 (IPv4) - 8 (ICMP) and 1420 - 40 (IPv6) - 8 (ICMPv6): exactly the MTU, no fragments.
    for (const [ns, target, size] of [[nsA, IN_B, 1392], [nsB, IN_A, 1392], [nsA, IN6_B, 1372], [nsB, IN6_A, 1372]] as const) {
      const r = await ping(ns, target, { count: 2, intervalS: 0.05, args: ['-s', String(size), '-M', 'do'] });
      expect(r.received, r.output).toBe(2);
    }
    expect((await ping(nsA, IN_B, { count: 1, args: ['-s', '1393', '-M', 'do'] })).ok).toBe(false);
    const big = await ping(nsA, IN_B, { count: 2, intervalS: 0.05, args: ['-s', '4000'] });
    expect(big.received, big.output).toBe(2);
  });

  it('wg show dump reports handshake time, endpoint and matching transfer counters', async () => {
    await repeer({ endpointOfB: endpoint(OUTER_B, await b.listenPort()) });
    const before = Math.floor(Date.now() / 1000);
    expect((await pingUntil(nsA, IN_B)).ok).toBe(true);
    expect((await ping(nsB, IN6_A, { count: 3, intervalS: 0.05 })).received).toBe(3);
    const pa = await a.peer(b);
    const pb = await b.peer(a);
    for (const p of [pa, pb]) {
      expect(p.latestHandshake).toBeGreaterThanOrEqual(before - 1);
      expect(p.latestHandshake).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 1);
      expect(p.rxBytes).toBeGreaterThan(0);
      expect(p.txBytes).toBeGreaterThan(0);
    }
    expect(pa.endpoint).toBe(endpoint(OUTER_B, await b.listenPort()));
    expect(pb.endpoint).toBe(endpoint(OUTER_A, await a.listenPort()));
    expect(pa.allowedIps).toEqual([`${IN_B}/32`, `${IN6_B}/128`]);
    // Both count whole datagrams (handshake + transport) the same way: once quiet, what one side
    // sent is exactly what the other received.
    const settled = await waitFor(async () => {
      const [x, y] = [await a.peer(b), await b.peer(a)];
      return x.txBytes === y.rxBytes && x.rxBytes === y.txBytes ? [x, y] : undefined;
    }, 3000, 200);
    expect(settled, `A ${JSON.stringify(await a.peer(b))} B ${JSON.stringify(await b.peer(a))}`).toBeDefined();
  });

  it(`a ${TRANSFER_BYTES / 1048576} MB TCP transfer arrives with the same sha256`, async () => {
    await repeer({ endpointOfB: endpoint(OUTER_B, await b.listenPort()) });
    expect((await pingUntil(nsA, IN_B)).ok).toBe(true);
    const file = wl.file('');
    const made = await nsA.run(['sh', '-c', `head -c ${TRANSFER_BYTES} /dev/urandom > ${file} && sha256sum < ${file}`], { timeoutMs: 60_000 });
    expect(made.code, made.stderr).toBe(0);
    expect(statSync(file).size).toBe(TRANSFER_BYTES);
    const sent = made.stdout.split(' ')[0]!;
    const receiver = nsB.run(['sh', '-c', 'ncat -l -p 5001 --recv-only | sha256sum'], { timeoutMs: 120_000 });
    expect(await tcpListening(nsB, 5001)).toBe(true);
    const t0 = performance.now();
    const sender = await nsA.run(['sh', '-c', `ncat --send-only ${IN_B} 5001 < ${file}`], { timeoutMs: 120_000 });
    const received = await receiver;
    const seconds = (performance.now() - t0) / 1000;
    expect(sender.code, sender.stderr).toBe(0);
    expect(received.code, received.stderr).toBe(0);
    expect(received.stdout.split(' ')[0]).toBe(sent);
    measured.push(`100 MB TCP A=${implA} -> B=${implB}: ${seconds.toFixed(2)} s, ${((TRANSFER_BYTES * 8) / seconds / 1e6).toFixed(0)} Mbit/s`);
  });

  it('UDP through the tunnel (iperf3 -u) and a quick iperf3 TCP throughput B -> A', async () => {
    const server = wl.lab.spawn(nsA.argv(['iperf3', '-s', '-p', '5201']));
    expect(await tcpListening(nsA, 5201)).toBe(true);
    const udp = await nsB.run(['iperf3', '-c', IN_A, '-p', '5201', '-u', '-b', '20M', '-t', '2', '-l', '1200', '--json'], { timeoutMs: 30_000 });
    expect(udp.code, udp.stdout + udp.stderr).toBe(0);
    const u = JSON.parse(udp.stdout) as { end: { sum: { bytes: number; lost_percent: number; packets: number } } };
    expect(u.end.sum.packets).toBeGreaterThan(1000);
    expect(u.end.sum.lost_percent).toBeLessThan(5);
    const tcp = await nsB.run(['iperf3', '-c', IN_A, '-p', '5201', '-t', '2', '--json'], { timeoutMs: 30_000 });
    expect(tcp.code, tcp.stdout + tcp.stderr).toBe(0);
    const t = JSON.parse(tcp.stdout) as { end: { sum_received: { bits_per_second: number } } };
    expect(t.end.sum_received.bits_per_second).toBeGreaterThan(1e6);
    measured.push(`iperf3 TCP B=${implB} -> A=${implA}: ${(t.end.sum_received.bits_per_second / 1e6).toFixed(0)} Mbit/s; UDP 20M loss ${u.end.sum.lost_percent.toFixed(2)}%`);
    server.kill('SIGTERM');
  });

  it('roaming: B changes its listen port, A follows', async () => {
    await repeer({ endpointOfB: endpoint(OUTER_B, await b.listenPort()), endpointOfA: endpoint(OUTER_A, await a.listenPort()) });
    expect((await pingUntil(nsA, IN_B)).ok).toBe(true);
    const newPort = (await b.listenPort()) === 41_000 ? 41_001 : 41_000;
    await b.set('listen-port', String(newPort));
    expect(await b.listenPort()).toBe(newPort);
    expect((await pingUntil(nsB, IN_A)).ok).toBe(true);
    expect((await a.peer(b)).endpoint).toBe(endpoint(OUTER_B, newPort));
    expect((await pingUntil(nsA, IN6_B)).ok).toBe(true);
  });

  // wireguard-go v0.0.20220316 keeps sending from the source address it cached (sticky sockets)
  // and fails with ENETUNREACH once that address is gone, so against it we are the one who moves.
  it(`roaming: ${implB === 'wireguard-go' ? 'A moves to another address, B' : 'B moves to another address, A'} follows`, async () => {
    await repeer({ endpointOfB: endpoint(OUTER_B, await b.listenPort()), endpointOfA: endpoint(OUTER_A, await a.listenPort()) });
    expect((await pingUntil(nsA, IN_B)).ok).toBe(true);
    const [mover, follower, moverNs, moverVeth, oldAddr, newAddr, moverIn] =
      implB === 'wireguard-go' ? ([a, b, nsA, vethA, OUTER_A, OUTER_A2, IN_A] as const) : ([b, a, nsB, vethB, OUTER_B, OUTER_B2, IN_B] as const);
    const followerIn = mover === a ? IN_B : IN_A;
    // Deleting the primary address first: it would take a secondary of its subnet along.
    await moverNs.ip('addr', 'del', `${oldAddr}/24`, 'dev', moverVeth);
    await moverNs.ip('addr', 'add', `${newAddr}/24`, 'dev', moverVeth);
    try {
      expect((await pingUntil(moverNs, followerIn)).ok).toBe(true);
      expect((await follower.peer(mover)).endpoint).toBe(endpoint(newAddr, await mover.listenPort()));
      expect((await pingUntil(follower.ns, moverIn)).ok).toBe(true);
    } finally {
      await moverNs.run(['ip', 'addr', 'del', `${newAddr}/24`, 'dev', moverVeth]);
      await moverNs.run(['ip', 'addr', 'add', `${oldAddr}/24`, 'dev', moverVeth]);
    }
  });

  it('an inbound packet whose inner source is outside the allowed IPs is dropped', async () => {
    await repeer({ endpointOfB: endpoint(OUTER_B, await b.listenPort()) });
    expect((await pingUntil(nsA, IN_B)).ok).toBe(true);
    await b.ip('addr', 'add', `${IN_B_ROGUE}/32`, 'dev', b.name);
    // Watch A's TUN: the rogue packets must not appear there, the control ping must.
    const dump = await capture(nsA, a.name, ['icmp']);
    let seen: string;
    try {
      const rxBefore = (await a.peer(b)).rxBytes;
      const rogue = await ping(nsB, IN_A, { count: 3, intervalS: 0.2, waitS: 1, args: ['-I', IN_B_ROGUE] });
      expect(rogue.ok, rogue.output).toBe(false);
      // The datagrams arrived and authenticated (A counted them) but went no further.
      expect((await a.peer(b)).rxBytes).toBeGreaterThanOrEqual(rxBefore + 3 * (32 + 84));
      const control = await ping(nsB, IN_A, { count: 1 });
      expect(control.ok, control.output).toBe(true);
      await waitFor(() => dump.text().includes(`${IN_B} > ${IN_A}`), 3000);
    } finally {
      seen = dump.text();
      dump.stop();
      await b.ip('addr', 'del', `${IN_B_ROGUE}/32`, 'dev', b.name);
    }
    expect(seen).toContain(`${IN_B} > ${IN_A}`);
    expect(seen).not.toContain(IN_B_ROGUE);
  });
});

// A peer behind a masquerading router: B (in a private network) keeps its NAT mapping open with
// persistent keepalive, so A (which never knew B's endpoint) can reach it after the router's
// UDP conntrack timeout has passed several times. Without keepalive the mapping expires.
// Issue 19: current wireguard-go (TUN offloads, UDP GSO/GRO) against ours with TUN offloads: a
// 100 MB transfer each way (TSO super-packets cut by us and by it, GRO writes into both TUNs),
// IPv4 and IPv6 inside. Kept to these two transfers so the tier's time stays in check.
const gsoSkip = skipReason ?? (existsSync(WIREGUARD_GO_GSO) ? undefined : `no current wireguard-go at ${WIREGUARD_GO_GSO}`);
describe.skipIf(gsoSkip !== undefined)('A=ours <-> B=current wireguard-go (GSO)', () => {
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
    await wl.lab.veth(nsA, nsB, { a: [`${OUTER_A}/24`], b: [`${OUTER_B}/24`] });
    a = await wl.start(nsA, 'ours', { addresses: [`${IN_A}/24`, `${IN6_A}/64`] });
    b = await wl.start(nsB, 'wireguard-go-gso', { addresses: [`${IN_B}/24`, `${IN6_B}/64`] });
    await wl.connect(a, b, { allowedOfA: [`${IN_A}/32`, `${IN6_A}/128`], allowedOfB: [`${IN_B}/32`, `${IN6_B}/128`], endpointOfB: `${OUTER_B}:${await b.listenPort()}`, endpointOfA: `${OUTER_A}:${await a.listenPort()}` });
  });

  afterAll(async () => {
    await wl.cleanup();
    if (measured.length > 0) console.log(measured.splice(0).join('\n'));
  });

  async function transfer(from: Netns, to: Netns, toAddr: string, label: string): Promise<void> {
    const file = wl.file('');
    const made = await from.run(['sh', '-c', `head -c ${TRANSFER_BYTES} /dev/urandom > ${file} && sha256sum < ${file}`], { timeoutMs: 60_000 });
    expect(made.code, made.stderr).toBe(0);
    const receiver = to.run(['sh', '-c', 'ncat -l -p 5002 --recv-only | sha256sum'], { timeoutMs: 120_000 });
    expect(await tcpListening(to, 5002)).toBe(true);
    const t0 = performance.now();
    const sender = await from.run(['sh', '-c', `ncat --send-only ${toAddr} 5002 < ${file}`], { timeoutMs: 120_000 });
    const received = await receiver;
    const seconds = (performance.now() - t0) / 1000;
    expect(sender.code, sender.stderr).toBe(0);
    expect(received.code, received.stderr).toBe(0);
    expect(received.stdout.split(' ')[0]).toBe(made.stdout.split(' ')[0]);
    measured.push(`100 MB TCP ${label}: ${seconds.toFixed(2)} s, ${((TRANSFER_BYTES * 8) / seconds / 1e6).toFixed(0)} Mbit/s`);
  }

  it('100 MB ours -> current wireguard-go over IPv4 arrives with the same sha256', async () => {
    expect((await pingUntil(nsA, IN_B)).ok).toBe(true);
    await transfer(nsA, nsB, IN_B, 'ours -> wireguard-go-gso (IPv4)');
  });

  it('100 MB current wireguard-go -> ours over IPv6 arrives with the same sha256', async () => {
    expect((await pingUntil(nsB, IN6_A)).ok).toBe(true);
    await transfer(nsB, nsA, IN6_A, 'wireguard-go-gso -> ours (IPv6)');
  });
});

describe.skipIf(skipReason !== undefined).each(['wireguard-go', 'ours'] as const)('A=ours, B=%s behind iptables MASQUERADE', (implB) => {
  const wl = new WgLab();
  let nsA: Netns;
  let nsB: Netns;
  let a: WgInterface;
  let b: WgInterface;
  const CONNTRACK_TIMEOUT_S = 2;

  beforeAll(async () => {
    sweepStale();
    await ensureBuilt();
    nsA = await wl.namespace();
    const nsR = await wl.namespace();
    nsB = await wl.namespace();
    const ra = await wl.lab.veth(nsR, nsA, { a: '10.78.0.1/24', b: '10.78.0.2/24' });
    await wl.lab.veth(nsR, nsB, { a: '192.168.78.1/24', b: '192.168.78.2/24' });
    await nsB.ip('route', 'add', 'default', 'via', '192.168.78.1');
    await nsR.runOk(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    await nsR.runOk(['sysctl', '-q', '-w', `net.netfilter.nf_conntrack_udp_timeout=${CONNTRACK_TIMEOUT_S}`]);
    await nsR.runOk(['sysctl', '-q', '-w', `net.netfilter.nf_conntrack_udp_timeout_stream=${CONNTRACK_TIMEOUT_S}`]);
    await nsR.runOk(['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', ra.a, '-j', 'MASQUERADE']);
    a = await wl.start(nsA, 'ours', { addresses: [`${IN_A}/24`] });
    b = await wl.start(nsB, implB, { addresses: [`${IN_B}/24`] });
  });

  afterAll(() => wl.cleanup());

  it('is lost once the NAT mapping times out, and stays reachable with persistent keepalive', async () => {
    await wl.connect(a, b, { endpointOfA: `10.78.0.2:${await a.listenPort()}` });
    // Control: one datagram from B (no reply, so no passive keepalive comes back soon) makes the
    // handshake; A learns the router's mapped address, which then expires.
    const sent = await nsB.run(['sh', '-c', `echo hello | ncat -u --send-only ${IN_A} 9`]);
    expect(sent.code, sent.stderr).toBe(0);
    const learnt = await waitFor(async () => {
      const p = await a.peer(b);
      return p.endpoint.startsWith('10.78.0.1:') ? p : undefined;
    }, 5000, 100);
    expect(learnt, JSON.stringify(await a.peer(b))).toBeDefined();
    await sleep((CONNTRACK_TIMEOUT_S + 2) * 1000);
    const lost = await ping(nsA, IN_B, { count: 1, waitS: 1 });
    expect(lost.ok, lost.output).toBe(false);

    // Keepalive every second re-opens the mapping and keeps it open across several timeouts.
    await b.set('peer', a.keys.publicKey, 'persistent-keepalive', '1');
    await sleep((CONNTRACK_TIMEOUT_S * 2 + 1) * 1000);
    const r = await ping(nsA, IN_B, { count: 2, waitS: 2 });
    expect(r.ok, r.output).toBe(true);
    expect((await a.peer(b)).endpoint.startsWith('10.78.0.1:')).toBe(true);
  });
});
