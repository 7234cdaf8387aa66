// The bridge access side's reconcile (src/agent/bridge-access.ts, src/bridge/access/plan.ts) on
// memory devices and a recording host: user-access peers added, updated and removed; tunnels
// added, changed (replaced) and removed with their routes; null blocks tear down; hostile blocks
// (11 tunnels, bad keys, duplicate or reserved ports) are refused and counted while the rest
// applies; keys persist in the data_dir; everything is undone on close.

import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BridgeState, SiteToSiteTunnel, UserAccessPeer } from '../../src/api/types.js';
import { ACCESS_KEY_FILE, BridgeAccess, SITE_TO_SITE_KEY_FILE, type AccessHost } from '../../src/agent/bridge-access.js';
import { resolveConfig } from '../../src/agent/config.js';
import { generatePrivateKey, publicKeyOf } from '../../src/agent/keys.js';
import { peerRoutes, PeerRoutes } from '../../src/agent/peer-routes.js';
import { checkTunnels, planPeers } from '../../src/bridge/access/plan.js';
import { encodeBase64 } from '../../src/api/fields.js';
import type { Device } from '../../src/device/device.js';
import { MemoryNetwork } from '../../src/io/bind-memory.js';
import { createLogger, silentLogger } from '../../src/log/logger.js';
import { memoryDevice } from '../helpers/memory-device.js';

const key = () => publicKeyOf(generatePrivateKey());
const PSK = encodeBase64(new Uint8Array(32).fill(7));

/** A host that records commands and opens memory devices. */
class FakeHost implements AccessHost {
  readonly commands: string[] = [];
  readonly devices = new Map<string, Device>();
  readonly net = new MemoryNetwork();
  forwarding = false;
  /** Commands starting with one of these fail once (then are forgotten). */
  readonly failOnce: string[] = [];
  async open(name: string, listenPort: number): Promise<Device> {
    const d = await memoryDevice(listenPort, this.net);
    this.devices.set(name, d);
    this.commands.push(`open ${name} ${listenPort}`);
    return d;
  }
  async run(argv: readonly string[]): Promise<void> {
    const c = argv.join(' ');
    const i = this.failOnce.findIndex((f) => c.startsWith(f));
    if (i >= 0) {
      this.failOnce.splice(i, 1);
      throw new Error(`${c}: injected failure`);
    }
    this.commands.push(c);
  }
  async setForwarding(on: boolean): Promise<boolean> {
    const before = this.forwarding;
    this.forwarding = on;
    return before;
  }
  async resolve(host: string): Promise<string> {
    return host === 'gw.example' ? '192.0.2.9' : host;
  }
  /** iptables rules in force: -I/-A minus -D. */
  rules(): string[] {
    const live: string[] = [];
    for (const c of this.commands) {
      if (!c.startsWith('iptables')) continue;
      const norm = c.replace(/ -[IAD] /, ' X ');
      if (/ -[IA] /.test(c)) live.push(norm);
      else live.splice(live.indexOf(norm), 1);
    }
    return live;
  }
}

const peer = (allowed: string, pk = key(), extra: Partial<UserAccessPeer> = {}): UserAccessPeer => ({ public_key: pk, allowed_ips: [allowed], label: allowed, ...extra });
const tunnel = (id: string, port: number, extra: Partial<SiteToSiteTunnel> = {}): SiteToSiteTunnel => ({
  tunnel_id: id,
  remote_endpoint: '198.51.100.7:51820',
  remote_public_key: key(),
  local_subnets: ['10.99.0.0/16'],
  remote_subnets: ['192.168.77.0/24'],
  interface_name: `wg-s2s-${id}`,
  listen_port: port,
  ...extra,
});
const userAccess = (peers: UserAccessPeer[]): BridgeState => ({ relay: null, user_access: { enabled: true, interface_name: 'wg-access', listen_port: 51822, address: '10.101.0.1/16', peers } });

describe('BridgeAccess', () => {
  let dir: string;
  let host: FakeHost;
  let access: BridgeAccess;
  const open = (over: Record<string, string> = {}) =>
    BridgeAccess.open({
      dataDir: dir,
      config: resolveConfig({ fileText: `api: {base_url: "http://x"}\nmode: bridge\n${Object.entries(over).map(([k, v]) => `${k}: ${v}`).join('\n')}` }).bridge,
      meshInterface: 'plexd0',
      reservedPorts: [51820, 51821],
      policyEnabled: true,
      host,
      log: process.env['PLEXD_DBG'] ? createLogger('verbose', '', (l) => console.log(l)) : silentLogger,
    });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'plexd-access-'));
    host = new FakeHost();
    access = open();
  });
  afterEach(async () => {
    await access.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps its access and site-to-site keys in the data_dir (0600) across restarts', async () => {
    const a = access.accessPublicKey;
    const s = access.tunnelPublicKey;
    expect(a).not.toBe(s);
    expect(statSync(join(dir, ACCESS_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(publicKeyOf(readFileSync(join(dir, SITE_TO_SITE_KEY_FILE), 'utf8'))).toBe(s);
    await access.close();
    access = open();
    expect([access.accessPublicKey, access.tunnelPublicKey]).toEqual([a, s]);
    expect(access.heartbeat()).toEqual({
      user_access: { enabled: false, interface_name: 'wg-access', peer_count: 0, listen_port: 51822, public_key: a },
      site_to_site: { enabled: true, tunnel_count: 0, public_key: s },
    });
  });

  it('refuses a key file that holds no key', () => {
    writeFileSync(join(dir, ACCESS_KEY_FILE), 'garbage');
    expect(() => open()).toThrow(TypeError);
  });

  it('makes wg-access peers equal to the block: add, update in place, remove; masquerade and forwarding on', async () => {
    const k1 = key();
    const k2 = key();
    await access.reconcile(userAccess([peer('10.101.0.2/32', k1), peer('10.101.0.3/32', k2)]), null);
    const dev = host.devices.get('wg-access')!;
    expect([...dev.peers()].map((p) => encodeBase64(p.publicKey)).sort()).toEqual([k1, k2].sort());
    expect(host.commands).toContain('ip address replace 10.101.0.1/16 dev wg-access');
    expect(host.rules()).toEqual(expect.arrayContaining(['iptables -w -t nat X POSTROUTING -s 10.101.0.0/16 -o plexd0 -j MASQUERADE', 'iptables -w -t filter X FORWARD -i wg-access -j ACCEPT']));
    expect(host.forwarding).toBe(true);
    expect(access.heartbeat().user_access).toMatchObject({ enabled: true, peer_count: 2 });

    // k1 gets a PSK and a new address, k2 is removed: one reconcile, same device.
    await access.reconcile(userAccess([peer('10.101.0.9/32', k1, { psk: PSK })]), null);
    expect(host.devices.get('wg-access')).toBe(dev);
    const peers = [...dev.peers()];
    expect(peers.map((p) => encodeBase64(p.publicKey))).toEqual([k1]);
    expect(encodeBase64(peers[0]!.presharedKey!)).toBe(PSK);
    expect([...peers[0]!.allowedIps].map((a) => `${a.ip.join('.')}/${a.cidr}`)).toEqual(['10.101.0.9/32']);

    // enable_nat false: the masquerade goes, the interface stays.
    await access.reconcile({ ...userAccess([peer('10.101.0.9/32', k1, { psk: PSK })]), enable_nat: false }, null);
    expect(host.rules().filter((r) => r.includes('MASQUERADE'))).toEqual([]);
    expect(dev.closed).toBe(false);
  });

  it('a null bridge block changes nothing; a null user_access tears it down and undoes forwarding', async () => {
    await access.reconcile(userAccess([peer('10.101.0.2/32')]), null);
    const dev = host.devices.get('wg-access')!;
    await access.reconcile(null, null);
    expect(dev.closed).toBe(false);
    await access.reconcile({ relay: null, user_access: null }, null);
    expect(dev.closed).toBe(true);
    expect(host.rules()).toEqual([]);
    expect(host.forwarding).toBe(false);
    expect(access.heartbeat().user_access.enabled).toBe(false);
  });

  it('bridge.user_access_enabled false refuses the service', async () => {
    await access.close();
    access = open({ bridge: '{user_access_enabled: false}' });
    await access.reconcile(userAccess([peer('10.101.0.2/32')]), null);
    expect(host.devices.size).toBe(0);
  });

  it('refuses bad peers and counts them; the good ones apply', async () => {
    const k = key();
    await access.reconcile(userAccess([peer('10.101.0.2/32', k), peer('10.101.0.3/32', k), peer('10.101.0.4/32', 'AAAA'), peer('nope'), peer('10.101.0.5/32', key(), { psk: 'bad' })]), null);
    expect([...host.devices.get('wg-access')!.peers()]).toHaveLength(1);
    expect(access.counters.peersRefused).toBe(4);
  });

  it('tunnels: one device per tunnel with its routes; changed -> replaced, removed -> gone', async () => {
    const a = tunnel('a', 51823, { remote_endpoint: 'gw.example:51820' });
    const b = tunnel('b', 51824, { remote_subnets: ['192.168.78.0/24', '192.168.79.0/24'] });
    await access.reconcile({ relay: null, site_to_site: { enabled: true, tunnels: [a, b] } }, null);
    const devA = host.devices.get('wg-s2s-a')!;
    const pA = [...devA.peers()][0]!;
    expect(encodeBase64(pA.publicKey)).toBe(a.remote_public_key);
    expect(pA.endpoint).toMatchObject({ address: '192.0.2.9', port: 51820 });
    expect(host.commands).toEqual(expect.arrayContaining(['ip route replace 192.168.77.0/24 dev wg-s2s-a', 'ip route replace 192.168.78.0/24 dev wg-s2s-b', 'ip route replace 192.168.79.0/24 dev wg-s2s-b']));
    expect(access.heartbeat().site_to_site.tunnel_count).toBe(2);

    const a2 = { ...a, remote_subnets: ['192.168.80.0/24'] };
    await access.reconcile({ relay: null, site_to_site: { enabled: true, tunnels: [a2] } }, null);
    expect(devA.closed).toBe(true);
    expect(host.devices.get('wg-s2s-b')!.closed).toBe(true);
    expect(host.devices.get('wg-s2s-a')!.closed).toBe(false);
    expect(host.commands).toContain('ip route replace 192.168.80.0/24 dev wg-s2s-a');

    await access.reconcile({ relay: null, site_to_site: null }, null);
    expect(host.devices.get('wg-s2s-a')!.closed).toBe(true);
    expect(host.rules()).toEqual([]);
    expect(host.forwarding).toBe(false);
  });

  it('hostile tunnel lists: 11 tunnels, a bad key, duplicate and reserved ports are refused and counted', async () => {
    const tunnels = Array.from({ length: 11 }, (_, i) => tunnel(`t${i}`, 51823 + i));
    await access.reconcile(
      { relay: null, site_to_site: { enabled: true, tunnels: [...tunnels, tunnel('badkey', 52000, { remote_public_key: 'x' }), tunnel('dup', 51823), tunnel('mesh', 51820), tunnel('toolongname', 52001, { interface_name: 'wg-s2s-0123456789' })] } },
      null,
    );
    expect(access.heartbeat().site_to_site.tunnel_count).toBe(10);
    expect(access.counters.tunnelsRefused).toBe(5);
    expect(host.devices.has('wg-s2s-t10')).toBe(false);
  });

  it('close removes every interface, rule and forwarding setting and wipes the keys', async () => {
    host.forwarding = false;
    await access.reconcile({ ...userAccess([peer('10.101.0.2/32')]), site_to_site: { enabled: true, tunnels: [tunnel('a', 51823)] } }, null);
    await access.close();
    for (const d of host.devices.values()) expect(d.closed).toBe(true);
    expect(host.rules()).toEqual([]);
    expect(host.forwarding).toBe(false);
    expect(() => access.accessPublicKey).toThrow(/closed/);
  });

  it('a failed wg-access setup is undone and retried by the next reconcile, not left half done', async () => {
    host.failOnce.push('ip address replace');
    await access.reconcile(userAccess([peer('10.101.0.2/32')]), null);
    expect(access.counters.failures).toBe(1);
    expect(host.devices.get('wg-access')!.closed).toBe(true);
    expect(access.heartbeat().user_access.enabled).toBe(false);
    await access.reconcile(userAccess([peer('10.101.0.2/32')]), null);
    expect(host.commands).toContain('ip address replace 10.101.0.1/16 dev wg-access');
    expect(host.rules()).toEqual(expect.arrayContaining([expect.stringContaining('FORWARD -i wg-access -j ACCEPT')]));
    expect([...host.devices.get('wg-access')!.peers()]).toHaveLength(1);
  });

  it('refuses a user_access interface_name that is not a plain Linux interface name (no TUN is created)', async () => {
    for (const bad of ['wg%d', 'wg access', 'a/b', '..']) {
      await access.reconcile({ relay: null, user_access: { ...userAccess([]).user_access!, interface_name: bad } }, null);
    }
    expect(host.devices.size).toBe(0);
    expect(access.counters.failures).toBe(4);
  });

  it('the access interface carries the policy filter fed by the state', async () => {
    await access.reconcile(userAccess([]), { revision_id: 'r1', fingerprint: 'f', rules: [{ action: 'deny', protocol: 'any', source_cidr: '10.101.0.2/32', destination_cidr: '0.0.0.0/0', ports: null }] } as never);
    expect(access.policy.report()).toMatchObject({ revision_id: 'r1', mode: 'enforcing' });
  });
});

describe('planPeers', () => {
  it('touches nothing when the device already matches', async () => {
    const d = await memoryDevice();
    const k = key();
    await d.configure({ peers: planPeers([], [{ publicKey: k, allowedIps: ['10.101.0.2/32'] }]) });
    expect(planPeers(d.peers(), [{ publicKey: k, allowedIps: ['10.101.0.2/32'] }])).toEqual([]);
    await d.close();
  });
});

describe('checkTunnels', () => {
  it('refuses an endpoint that is not HOST:PORT and subnets that are not prefixes', () => {
    const r = checkTunnels([tunnel('a', 51823, { remote_endpoint: 'nope' }), tunnel('b', 51824, { remote_subnets: ['x'] }), tunnel('c', 51825, { remote_endpoint: '' })], new Set());
    expect(r.ok.map((t) => t.tunnel_id)).toEqual(['c']);
    expect(r.refused.map(([id]) => id)).toEqual(['a', 'b']);
  });
});

describe('peer routes on mesh nodes', () => {
  const p = (allowed: string[]) => ({ node_id: 'bridge', mesh_ip: '10.99.0.5', public_key: key(), allowed_ips: allowed });

  it('routes prefixes outside the mesh CIDR, refuses ones shorter than /8', () => {
    expect(peerRoutes([p(['10.99.0.0/24', '192.168.77.0/24', '10.101.0.0/16', '0.0.0.0/0'])], '10.99.0.0/16')).toEqual({ routes: ['10.101.0.0/16', '192.168.77.0/24'], refused: [expect.stringContaining('0.0.0.0/0')] });
  });

  it('adds and removes routes with the peer data', async () => {
    const cmds: string[] = [];
    const r = new PeerRoutes('plexd0', async (argv) => void cmds.push(argv.join(' ')), silentLogger);
    await r.sync([p(['192.168.77.0/24'])], '10.99.0.0/16');
    await r.sync([p(['192.168.78.0/24'])], '10.99.0.0/16');
    await r.close();
    expect(cmds).toEqual(['ip route replace 192.168.77.0/24 dev plexd0', 'ip route del 192.168.77.0/24 dev plexd0', 'ip route replace 192.168.78.0/24 dev plexd0', 'ip route del 192.168.78.0/24 dev plexd0']);
  });
});
