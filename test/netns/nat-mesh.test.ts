// NAT lab with the whole mesh (issue 6): on a "public" namespace the control plane (`control-plane
// serve`, its built-in STUN on 198.18.0.1:3478) and a `mode: bridge` agent (relay on
// 198.18.0.3:51821, which also answers STUN: the nodes' second server; each relay session gets
// its own port from 51900 up); two nodes, each a real
// `plexd-userspace up` (TUN) behind its own NAT namespace, discovering their endpoints from the
// WireGuard port. Scenarios, each printing its time-to-first-packet (agents started -> first ping
// reply through the mesh, or cut -> first reply, restore -> direct):
//  (a) both NATs endpoint-independent, port-preserving (MASQUERADE): direct, no relay session;
//  (c) then the direct path cut mid-ping (iptables DROP in natA): via the relay within 15 s;
//      restored: back to direct within 60 s (probes every 5 s, so ~5-10 s here);
//  (b) fresh nodes, natB symmetric (MASQUERADE --random-fully), natA port-restricted (MASQUERADE):
//      the control plane relays the pair at once and traffic flows through the bridge; then a
//      third node behind natA: b is relayed to two peers through the one bridge from its one
//      socket, on two session ports, and both pairs work.
// Bad input is covered by unit tests: wrong STUN transaction IDs (test/nat/stun-client.test.ts,
// test/agent/relay-client.test.ts), strangers and the session limit at the relay
// (test/bridge/relay.test.ts). Network rule: only addresses inside these namespaces.

import { type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryUnix } from '../../src/agent/local-http.js';
import type { Netns } from '../helpers/netns.js';
import { NetnsLab, requireRoot, sweepStale } from '../helpers/netns.js';
import { DAEMON, ensureBuilt, waitFor } from '../helpers/wg-lab.js';

const reason = requireRoot('NAT mesh lab') ?? (process.platform !== 'linux' ? 'linux only' : undefined);

const CP = '198.18.0.1';
const BRIDGE = '198.18.0.3';
const CP_URL = `http://${CP}:18080`;
const WAN_A = '198.18.1.2';
const WAN_B = '198.18.2.2';

interface Agent {
  proc: ChildProcess;
  log: string[];
  socket: string;
  name: string;
}

describe.skipIf(reason !== undefined)('NAT mesh lab: control plane, STUN, bridge relay, nodes behind NATs', () => {
  const lab = new NetnsLab();
  let dir = '';
  let pub: Netns;
  let natA: Netns;
  let natB: Netns;
  let nodeA: Netns;
  let nodeB: Netns;
  let nodeC: Netns;
  let bridge: Agent;
  const agents: Agent[] = [];
  const times: string[] = [];
  let n = 0;

  const db = () => join(dir, 'cp.db');
  const cli = (...args: string[]) => pub.runOk([process.execPath, DAEMON, 'control-plane', ...args, '--db', db()]);

  async function up(ns: Netns, yaml: string[]): Promise<Agent> {
    const i = ++n;
    const token = JSON.parse(await cli('token', 'create', '--json')).bootstrap_token as string;
    const socket = join(dir, `a${i}.sock`);
    const name = lab.uniqueName('n');
    const file = join(dir, `a${i}.yaml`);
    writeFileSync(
      file,
      [
        `log_level: ${process.env['PLEXD_TEST_LOG'] ?? 'info'}`,
        `data_dir: ${join(dir, `a${i}`)}`,
        `api: {base_url: "${CP_URL}"}`,
        `registration: {resource_handle: node${i}, token: "${token}"}`,
        `node_api: {socket: ${socket}}`,
        `health: {listen: "127.0.0.1:0"}`,
        ...yaml.map((l) => l.replace('IFNAME', name)),
      ].join('\n'),
    );
    const proc = ns.spawn([process.execPath, DAEMON, 'up', '--config', file]);
    const log: string[] = [];
    proc.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
    proc.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
    const a = { proc, log, socket, name };
    agents.push(a);
    const ok = await waitFor(() => status(a).then((s) => s['ready'] === true).catch(() => false), 20_000, 100);
    if (ok === undefined) throw new Error(`agent ${i} did not become ready:\n${log.join('')}`);
    return a;
  }

  const node = (ns: Netns, port: number) =>
    up(ns, [`wireguard: {interface_name: IFNAME, listen_port: ${port}}`, `nat: {stun_servers: ["${CP}:3478", "${BRIDGE}:51821"], refresh_interval: 60s}`]);
  const status = (a: Agent) => queryUnix(a.socket, '/v1/status') as Promise<Record<string, any>>;
  const peers = (a: Agent) => queryUnix(a.socket, '/v1/peers') as Promise<Array<Record<string, any>>>;
  const peerOf = async (a: Agent, meshIp: string) => (await peers(a)).find((p) => p['mesh_ip'] === meshIp);
  const ping = (ns: Netns, ip: string) => ns.run(['ping', '-c', '1', '-W', '1', ip], { timeoutMs: 3000 }).then((r) => r.code === 0 || undefined);
  const relayed = async () =>
    (await status(bridge))['nat']['bridge'] as { sessions: Array<{ relay_port: number | null; authenticated: boolean }>; counters: { forwardedPackets: number; authenticatedBindings: number; drops: Record<string, number> } };
  /** The relay endpoints of the bridge's live sessions (one port per session, not 51821). */
  const sessionEndpoints = async () => (await relayed()).sessions.map((x) => `${BRIDGE}:${x.relay_port}`);

  async function stop(a: Agent): Promise<void> {
    if (a.proc.exitCode !== null) return;
    a.proc.kill('SIGTERM');
    await waitFor(() => a.proc.exitCode !== null || a.proc.signalCode !== null, 5000);
  }

  async function dump(): Promise<void> {
    for (const a of agents) console.error(`--- ${a.name}\n${a.log.join('').slice(-6000)}\n${JSON.stringify(await peers(a).catch(() => null))}`);
  }

  beforeAll(async () => {
    sweepStale();
    await ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'plexd-natmesh-'));
    pub = await lab.namespace();
    natA = await lab.namespace();
    natB = await lab.namespace();
    nodeA = await lab.namespace();
    nodeB = await lab.namespace();
    nodeC = await lab.namespace();
    for (const a of [CP, BRIDGE]) await pub.ip('addr', 'add', `${a}/32`, 'dev', 'lo');
    const wanA = await lab.veth(pub, natA, { a: '198.18.1.1/24', b: `${WAN_A}/24` });
    const wanB = await lab.veth(pub, natB, { a: '198.18.2.1/24', b: `${WAN_B}/24` });
    await lab.veth(natA, nodeA, { a: '10.10.1.1/24', b: '10.10.1.2/24' });
    await lab.veth(natB, nodeB, { a: '10.10.2.1/24', b: '10.10.2.2/24' });
    // A second inside network on natA, for (b)'s third node.
    await lab.veth(natA, nodeC, { a: '10.10.3.1/24', b: '10.10.3.2/24' });
    await pub.runOk(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    await natA.ip('route', 'add', 'default', 'via', '198.18.1.1');
    await natB.ip('route', 'add', 'default', 'via', '198.18.2.1');
    await nodeA.ip('route', 'add', 'default', 'via', '10.10.1.1');
    await nodeB.ip('route', 'add', 'default', 'via', '10.10.2.1');
    await nodeC.ip('route', 'add', 'default', 'via', '10.10.3.1');
    for (const [nat, wan] of [[natA, wanA.b], [natB, wanB.b]] as const) {
      await nat.runOk(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
      await nat.runOk(['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', wan, '-j', 'MASQUERADE']);
      // A home router's firewall: unsolicited datagrams to the NAT box itself are dropped. Without
      // it, the first crossing packet of a simultaneous open leaves a confirmed inbound conntrack
      // entry on <wan>:port, and the NAT then maps the other side's own packets to another port
      // (docs/nat.md "Linux NAT and crossing packets"). A dropped packet's entry is never confirmed.
      await nat.runOk(['iptables', '-A', 'INPUT', '-i', wan, '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP']);
    }
    // Remember natB's WAN name for scenario (b).
    (natB as unknown as { wan: string }).wan = wanB.b;
    const cp = pub.spawn([process.execPath, DAEMON, 'control-plane', 'serve', '--listen', `${CP}:18080`, '--db', db(), '--insecure-http', '--stun', `${CP}:3478`]);
    let out = '';
    cp.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    cp.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    if ((await waitFor(() => out.includes('stun listening on'), 15_000)) === undefined) throw new Error(`control plane did not start: ${out}`);
    // Agents deny mesh traffic without a policy (as upstream plexd): open the mesh first.
    writeFileSync(join(dir, 'allow-all.json'), JSON.stringify([{ action: 'allow', protocol: 'any', source_cidr: '0.0.0.0/0', destination_cidr: '0.0.0.0/0', ports: null }]));
    await cli('policy', 'set', '--file', join(dir, 'allow-all.json'));
    bridge = await up(pub, ['mode: bridge', `wireguard: {interface_name: IFNAME, listen_port: 51820, bind_address: ${BRIDGE}}`, 'bridge: {relay_listen_port: 51821}']);
  }, 60_000);

  afterAll(async () => {
    for (const a of agents) await stop(a).catch(() => undefined);
    if (times.length > 0) console.log(`[nat-mesh] time-to-first-packet:\n  ${times.join('\n  ')}`);
    await lab.cleanup();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  let a1: Agent;
  let b1: Agent;
  let meshA = '';
  let meshB = '';

  it('(a) both behind port-preserving MASQUERADE: discovered full_cone, direct path, no relay session', async () => {
    const started = performance.now();
    [a1, b1] = await Promise.all([node(nodeA, 51820), node(nodeB, 51820)]);
    meshA = (await status(a1))['mesh_ip'];
    meshB = (await status(b1))['mesh_ip'];
    try {
      const ok = await waitFor(() => ping(nodeA, meshB), 20_000, 100);
      expect(ok, 'ping a -> b').toBe(true);
      times.push(`(a) MASQUERADE x MASQUERADE, direct: first ping reply ${(performance.now() - started).toFixed(0)} ms after both agents were started`);
      const sa = await status(a1);
      expect(sa['nat']['nat']).toMatchObject({ nat_type: 'full_cone', endpoint: `${WAN_A}:51820` });
      expect((await status(b1))['nat']['nat']).toMatchObject({ nat_type: 'full_cone', endpoint: `${WAN_B}:51820` });
      const p = await peerOf(a1, meshB);
      expect(p).toMatchObject({ path: 'direct', endpoint: `${WAN_B}:51820` });
      expect((await relayed()).sessions).toEqual([]);
    } catch (err) {
      await dump();
      throw err;
    }
  }, 60_000);

  it('(c) direct path cut mid-ping: via the relay within 15 s; restored: back to direct within 60 s', async () => {
    const rules = [['-s', WAN_B], ['-d', WAN_B]];
    const pinger = nodeA.spawn(['ping', '-i', '0.2', '-w', '80', meshB]);
    try {
      await new Promise((r) => setTimeout(r, 1000));
      for (const r of rules) await natA.runOk(['iptables', '-I', 'FORWARD', ...r, '-j', 'DROP']);
      const cut = performance.now();
      // Replies resume (the pinger keeps the traffic going, which is what shows the stall).
      const back = await waitFor(async () => (await peerOf(a1, meshB))?.['path'] === 'relayed' && (await ping(nodeA, meshB)), 20_000, 200);
      const relayMs = performance.now() - cut;
      expect(back, 'traffic via the relay').toBe(true);
      expect(await sessionEndpoints()).toEqual([`${BRIDGE}:51900`]);
      expect((await peerOf(a1, meshB))?.['endpoint']).toBe(`${BRIDGE}:51900`);
      expect((await relayed()).counters.forwardedPackets).toBeGreaterThan(0);
      expect(relayMs).toBeLessThan(15_000);
      times.push(`(c) direct path cut -> first ping reply via the relay after ${relayMs.toFixed(0)} ms`);
      for (const r of rules) await natA.runOk(['iptables', '-D', 'FORWARD', ...r, '-j', 'DROP']);
      const restored = performance.now();
      const direct = await waitFor(async () => (await peerOf(a1, meshB))?.['path'] === 'direct' && (await peerOf(b1, meshA))?.['path'] === 'direct' && (await ping(nodeA, meshB)), 60_000, 250);
      const directMs = performance.now() - restored;
      expect(direct, 'back to direct').toBe(true);
      expect((await peerOf(a1, meshB))?.['endpoint']).toBe(`${WAN_B}:51820`);
      expect((await waitFor(async () => (await relayed()).sessions.length === 0, 5000)) ?? false, 'session revoked').toBe(true);
      times.push(`(c) path restored -> direct again (both ends) after ${directMs.toFixed(0)} ms`);
    } catch (err) {
      await dump();
      throw err;
    } finally {
      pinger.kill('SIGTERM');
      for (const r of rules) await natA.run(['iptables', '-D', 'FORWARD', ...r, '-j', 'DROP']);
    }
  }, 120_000);

  it('(b) symmetric (--random-fully) x port-restricted (MASQUERADE): relayed through the bridge', async () => {
    // Fresh nodes on fresh ports (no conntrack history); the old ones leave the mesh.
    const oldIds = [(await status(a1))['node_id'], (await status(b1))['node_id']] as string[];
    await stop(a1);
    await stop(b1);
    for (const id of oldIds) await cli('nodes', 'remove', id);
    const wan = (natB as unknown as { wan: string }).wan;
    await natB.runOk(['iptables', '-t', 'nat', '-F', 'POSTROUTING']);
    await natB.runOk(['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', wan, '-j', 'MASQUERADE', '--random-fully']);
    const started = performance.now();
    const [a2, b2] = await Promise.all([node(nodeA, 51830), node(nodeB, 51830)]);
    const ma = (await status(a2))['mesh_ip'];
    const mb = (await status(b2))['mesh_ip'];
    try {
      const ok = await waitFor(() => ping(nodeA, mb), 30_000, 100);
      expect(ok, 'ping a -> b').toBe(true);
      times.push(`(b) symmetric x port-restricted, relayed: first ping reply ${(performance.now() - started).toFixed(0)} ms after both agents were started`);
      expect((await status(b2))['nat']['nat']).toMatchObject({ nat_type: 'symmetric' });
      const [ep] = await sessionEndpoints();
      expect(ep).toMatch(/:518(2[2-9]|[3-9]\d)$/);
      expect(await peerOf(a2, mb)).toMatchObject({ path: 'relayed', endpoint: ep });
      expect(await peerOf(b2, ma)).toMatchObject({ path: 'relayed', endpoint: ep });
      const r = await relayed();
      expect(r.sessions).toHaveLength(1);
      expect(r.counters.forwardedPackets).toBeGreaterThan(0);
      // Both ends bound with the session's binding key (docs/nat.md "Authenticated bindings").
      expect(r.sessions[0]!.authenticated).toBe(true);
      expect(r.counters.authenticatedBindings).toBeGreaterThanOrEqual(2);
      expect(r.counters.drops['binding-auth-failed']).toBe(0);
      expect(await ping(nodeB, ma)).toBe(true);
      // Direct probes keep failing through the symmetric NAT: still relayed after a probe round.
      await new Promise((res) => setTimeout(res, 6000));
      expect((await peerOf(a2, mb))?.['path']).toBe('relayed');

      // A third node (behind natA too): the symmetric node b is now relayed to two peers through
      // the one bridge from its one WireGuard socket. Each session has its own relay port, so
      // both pairs work (with one shared port, the newest binding took both and one pair broke).
      const c2 = await node(nodeC, 51830);
      const mc = (await status(c2))['mesh_ip'];
      expect(await waitFor(() => ping(nodeC, mb), 30_000, 100), 'ping c -> b').toBe(true);
      expect(await waitFor(() => ping(nodeB, mc), 10_000, 100), 'ping b -> c').toBe(true);
      const eps = await sessionEndpoints();
      expect(new Set(eps).size).toBe(eps.length);
      const viaA = (await peerOf(b2, ma))?.['endpoint'];
      const viaC = (await peerOf(b2, mc))?.['endpoint'];
      expect(viaA).not.toBe(viaC);
      expect(eps).toEqual(expect.arrayContaining([viaA, viaC]));
      // Both of b's pairs still carry traffic both ways.
      for (const [from, to] of [[nodeA, mb], [nodeB, ma], [nodeC, mb], [nodeB, mc]] as const) {
        expect(await waitFor(() => ping(from, to), 5000, 100), `ping ${to}`).toBe(true);
      }
    } catch (err) {
      await dump();
      throw err;
    }
  }, 150_000);
});
