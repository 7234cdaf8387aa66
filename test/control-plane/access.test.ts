// The bridge access side in the control plane (issue 15): heartbeat keys, `access` and `site`
// commands, the state's bridge block, the prefixes other nodes route to a bridge, and the events
// that make everyone reconcile.

import { decodeQR } from 'qr/decode.js';
import { describe, expect, it } from 'vitest';
import { decodeBase64, encodeBase64 } from '../../src/api/index.js';
import { nodeCrypto } from '../../src/crypto/node.js';
import { harnessEach, randomKey, runCli as cli, type Harness, type Registered } from './harness.js';
import { parseWgQuick } from './wg-quick.js';

const h = harnessEach({ relay: false }, { open: true });

const now = () => new Date().toISOString();

async function heartbeat(h: Harness, n: Registered, extra: Record<string, unknown>, endpoint = '198.18.0.10:51820'): Promise<void> {
  const r = await h.call('POST', `/v1/nodes/${n.node_id}/heartbeat`, { client_now: now(), binary_checksum: 'ab', binary_version: '0.1.0', nat_summary: { endpoint, nat_type: 'full_cone' }, ...extra }, n.auth);
  expect(r.status).toBe(200);
}

/** A bridge that reported its access and s2s keys, and one ordinary node. */
async function setup(h: Harness) {
  const bridge = await h.register({ mode: 'bridge' });
  const node = await h.register();
  const accessKey = randomKey();
  const s2sKey = randomKey();
  await heartbeat(h, bridge, { user_access: { enabled: true, interface_name: 'wg-access', peer_count: 0, listen_port: 51822, public_key: accessKey }, site_to_site: { enabled: true, tunnel_count: 0, public_key: s2sKey } });
  return { bridge, node, accessKey, s2sKey };
}

async function state(h: Harness, n: Registered): Promise<any> {
  const r = await h.call('GET', `/v1/nodes/${n.node_id}/state`, undefined, n.auth);
  expect(r.status).toBe(200);
  return r.body;
}

/** Events logged after `seq`, as [type, target]. */
function eventsAfter(h: Harness, seq: number): Array<[string, string | null]> {
  return (h.cp.store.db.prepare('SELECT type, target_node FROM events WHERE seq > ? ORDER BY seq').all(seq) as Array<{ type: string; target_node: string | null }>).map((e) => [e.type, e.target_node]);
}

function lastSeq(h: Harness): number {
  return (h.cp.store.db.prepare('SELECT COALESCE(MAX(seq), 0) AS s FROM events').get() as { s: number }).s;
}

/** Every row of the access-side tables and columns: what "nothing stored" compares. */
function snapshot(h: Harness): string {
  const db = h.cp.store.db;
  return JSON.stringify([
    db.prepare('SELECT * FROM access_users ORDER BY name').all(),
    db.prepare('SELECT * FROM sites ORDER BY name').all(),
    db.prepare('SELECT node_id, enable_nat, access_subnets FROM nodes ORDER BY row').all(),
    lastSeq(h),
  ], (_k, v) => (Buffer.isBuffer(v) ? v.toString('hex') : v));
}

describe('user access', () => {
  it('access add prints a wg-quick config whose keys match what the bridge gets in its state', async () => {
    const { bridge, node, accessKey } = await setup(h);
    const before = lastSeq(h);
    const r = await cli('access', 'add', 'alice', '--db', h.dbFile, '--bridge', bridge.node_id);
    expect(r.code).toBe(0);
    const cfg = parseWgQuick(r.out);
    expect(cfg.interface.Address).toBe('10.101.0.2/32');
    expect(cfg.peers).toHaveLength(1);
    const peer = cfg.peers[0]!;
    expect(peer).toMatchObject({ PublicKey: accessKey, Endpoint: '198.18.0.10:51822', AllowedIPs: '10.100.0.0/16', PersistentKeepalive: '25' });
    const priv = decodeBase64(cfg.interface.PrivateKey!, 32)!;
    const pub = encodeBase64(nodeCrypto.x25519PublicKey(priv));
    // The bridge's block: its access address, the user's key, address and the same PSK.
    const s = await state(h, bridge);
    expect(s.bridge.user_access).toEqual({ enabled: true, interface_name: 'wg-access', listen_port: 51822, address: '10.101.0.1/16', peers: [{ public_key: pub, allowed_ips: ['10.101.0.2/32'], psk: peer.PresharedKey, label: 'alice' }] });
    expect(s.bridge.site_to_site).toEqual({ enabled: true, tunnels: [] });
    expect(s.bridge.enable_nat).toBe(true);
    expect(s.bridge.access_subnets).toEqual([]);
    // The bridge reconciles; nobody else needs to (NAT on: their view of the bridge is unchanged).
    expect(eventsAfter(h, before)).toEqual([['bridge_config_updated', bridge.node_id]]);
    // An ordinary node has no bridge block and sees the bridge without extra prefixes.
    const n = await state(h, node);
    expect(n.bridge).toBeNull();
    expect(n.peers.find((p: { node_id: string }) => p.node_id === bridge.node_id).allowed_ips).toBeUndefined();
  });

  it('allocates addresses lowest first and never twice while assigned; a removed address is reused only after removal', async () => {
    const { bridge } = await setup(h);
    const add = async (name: string) => JSON.parse((await cli('access', 'add', name, '--db', h.dbFile, '--bridge', bridge.node_id, '--json')).out) as { name: string; address: string; config: string };
    const a = await add('a');
    const b = await add('b');
    const c = await add('c');
    expect([a.address, b.address, c.address]).toEqual(['10.101.0.2', '10.101.0.3', '10.101.0.4']);
    expect(Object.keys(a).sort()).toEqual(['address', 'config', 'name']);
    expect(parseWgQuick(a.config).interface.Address).toBe('10.101.0.2/32');
    const seq = lastSeq(h);
    expect((await cli('access', 'remove', 'b', '--db', h.dbFile)).code).toBe(0);
    expect(eventsAfter(h, seq)).toEqual([['bridge_config_updated', bridge.node_id]]);
    expect((await add('d')).address).toBe('10.101.0.3');
    expect((await add('e')).address).toBe('10.101.0.5');
    const list = JSON.parse((await cli('access', 'list', '--db', h.dbFile, '--json')).out) as Array<{ name: string; address: string }>;
    expect(list.map((u) => [u.name, u.address])).toEqual([['a', '10.101.0.2'], ['c', '10.101.0.4'], ['d', '10.101.0.3'], ['e', '10.101.0.5']]);
    expect((await cli('access', 'list', '--db', h.dbFile)).out).toMatch(/^NAME\s+ADDRESS\s+BRIDGE/);
    expect((await cli('access', 'remove', 'b', '--db', h.dbFile)).code).toBe(1);
    // The bridge's peers follow.
    expect((await state(h, bridge)).bridge.user_access.peers.map((p: { label: string }) => p.label)).toEqual(['a', 'd', 'c', 'e']);
  });

  it('--public-key puts a placeholder for the private key; the bridge gets that key', async () => {
    const { bridge } = await setup(h);
    const key = randomKey();
    const r = await cli('access', 'add', 'bob', '--db', h.dbFile, '--bridge', bridge.node_id, '--public-key', key, '--endpoint-host', 'vpn.example.com');
    expect(r.code).toBe(0);
    const cfg = parseWgQuick(r.out);
    expect(cfg.interface.PrivateKey).toBe('<paste your private key>');
    expect(cfg.peers[0]!.Endpoint).toBe('vpn.example.com:51822');
    expect((await state(h, bridge)).bridge.user_access.peers[0].public_key).toBe(key);
    // The same key twice on one bridge is refused.
    expect((await cli('access', 'add', 'bob2', '--db', h.dbFile, '--bridge', bridge.node_id, '--public-key', key)).code).toBe(1);
  });

  it('--qr prints the config as a QR code of block characters', async () => {
    const { bridge } = await setup(h);
    const r = await cli('access', 'add', 'carol', '--db', h.dbFile, '--bridge', bridge.node_id, '--qr');
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThan(20);
    expect(r.out).toMatch(/^[█▀▄ \n]+$/);
    expect(r.out).not.toContain('PrivateKey');
    expect(new Set(lines.map((l) => [...l].length)).size).toBe(1); // square: every row as wide
    // It decodes to a config for this user: '█' is two light modules, ' ' two dark, '▀'/'▄' mixed.
    const modules = lines.flatMap((l) => [[...l].map((c) => c === ' ' || c === '▄'), [...l].map((c) => c === ' ' || c === '▀')]);
    const scale = 4;
    const margin = 8;
    const width = modules[0]!.length * scale + 2 * margin;
    const height = modules.length * scale + 2 * margin;
    const data = new Uint8Array(width * height * 4).fill(255);
    modules.forEach((row, y) => row.forEach((dark, x) => {
      if (!dark) return;
      for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) data.fill(0, ((margin + y * scale + dy) * width + margin + x * scale + dx) * 4, ((margin + y * scale + dy) * width + margin + x * scale + dx) * 4 + 3);
    }));
    const decoded = parseWgQuick(decodeQR({ width, height, data }));
    expect(decoded.interface.Address).toBe('10.101.0.2/32');
    expect((await state(h, bridge)).bridge.user_access.peers[0].public_key).toBe(encodeBase64(nodeCrypto.x25519PublicKey(decodeBase64(decoded.interface.PrivateKey!, 32)!)));
    expect((await cli('access', 'add', 'dave', '--db', h.dbFile, '--bridge', bridge.node_id, '--qr', '--json')).code).toBe(2);
  });

  it('refuses unknown bridges, ordinary nodes, bridges without a reported key or endpoint, and hostile input, storing nothing', async () => {
    const { bridge, node } = await setup(h);
    const silent = await h.register({ mode: 'bridge' });
    const before = snapshot(h);
    const add = (...args: string[]) => cli('access', 'add', ...args, '--db', h.dbFile);
    const cases: Array<[string[], number, RegExp]> = [
      [['alice', '--bridge', '00000000-0000-4000-8000-000000000000'], 1, /no node/],
      [['alice', '--bridge', node.node_id], 1, /not a bridge/],
      [['alice', '--bridge', silent.node_id], 1, /has not reported its access public key/],
      [['alice', '--bridge', bridge.node_id, '--public-key', 'not-base64!'], 1, /expected a WireGuard public key/],
      [['alice', '--bridge', bridge.node_id, '--public-key', Buffer.alloc(31).toString('base64')], 1, /expected a WireGuard public key/],
      [['alice', '--bridge', bridge.node_id, '--public-key', 'A'.repeat(10_000)], 1, /expected a WireGuard public key/],
      [['x'.repeat(65), '--bridge', bridge.node_id], 1, /expected a name/],
      [['evil\x1b[2J', '--bridge', bridge.node_id], 1, /expected a name/],
      [['-', '--bridge', bridge.node_id], 1, /expected a name/],
      [['alice', '--bridge', bridge.node_id, '--endpoint-host', 'bad host'], 1, /--endpoint-host/],
      [['alice'], 2, /missing --bridge/],
      [['--bridge', bridge.node_id], 2, /takes one NAME/],
    ];
    for (const [args, code, msg] of cases) {
      const r = await add(...args);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.err, args.join(' ')).toMatch(msg);
      expect(r.err).not.toContain('\x1b');
    }
    expect(snapshot(h)).toBe(before);
    // No endpoint reported and no override: a clear error.
    const noEndpoint = await h.register({ mode: 'bridge' });
    await h.call('POST', `/v1/nodes/${noEndpoint.node_id}/heartbeat`, { client_now: now(), binary_checksum: 'ab', binary_version: '0.1.0', nat_summary: {}, user_access: { enabled: true, interface_name: 'wg-access', peer_count: 0, listen_port: 51822, public_key: randomKey() } }, noEndpoint.auth);
    const before2 = snapshot(h);
    const r = await add('alice', '--bridge', noEndpoint.node_id);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/reported no endpoint yet; give --endpoint-host/);
    expect(snapshot(h)).toBe(before2);
    // A duplicate name is refused too.
    expect((await add('alice', '--bridge', bridge.node_id)).code).toBe(0);
    const before3 = snapshot(h);
    const dup = await add('alice', '--bridge', bridge.node_id);
    expect([dup.code, dup.err]).toEqual([1, expect.stringMatching(/exists already/)]);
    expect(snapshot(h)).toBe(before3);
  });

  it('an ordinary node reporting access keys is ignored; a bridge new key replaces the stored one', async () => {
    const { bridge, node } = await setup(h);
    await heartbeat(h, node, { user_access: { enabled: true, interface_name: 'wg-access', peer_count: 0, listen_port: 51822, public_key: randomKey() } });
    expect((h.cp.store.db.prepare('SELECT access_public_key FROM nodes WHERE node_id = ?').get(node.node_id) as { access_public_key: string | null }).access_public_key).toBeNull();
    const k = randomKey();
    await heartbeat(h, bridge, { user_access: { enabled: true, interface_name: 'wg-access', peer_count: 0, listen_port: 51822, public_key: k } });
    const r = await cli('access', 'add', 'x', '--db', h.dbFile, '--bridge', bridge.node_id);
    expect(parseWgQuick(r.out).peers[0]!.PublicKey).toBe(k);
  });
});

describe('site-to-site', () => {
  const siteArgs = (bridge: string, name: string, subnets: string, key = randomKey()) => ['site', 'add', name, '--db', '', '--bridge', bridge, '--public-key', key, '--endpoint', '203.0.113.7:51820', '--subnets', subnets];
  const site = (h: Harness, args: string[]) => cli(...args.map((a, i) => (i === 4 ? h.dbFile : a)));

  it('site add prints the bridge side and a partner config; the bridge gets the tunnel, every node that sees it the subnets', async () => {
    const { bridge, node, s2sKey } = await setup(h);
    const seq = lastSeq(h);
    const partnerKey = randomKey();
    const r = await site(h, [...siteArgs(bridge.node_id, 'hq', '192.168.77.0/24,172.16.5.0/24', partnerKey), '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out);
    expect(Object.keys(out).sort()).toEqual(['bridge_public_key', 'config', 'interface_name', 'listen_port', 'mesh_cidr', 'name', 'subnets', 'tunnel_id']);
    expect(out).toMatchObject({ name: 'hq', bridge_public_key: s2sKey, listen_port: 51823, mesh_cidr: '10.100.0.0/16', subnets: ['192.168.77.0/24', '172.16.5.0/24'] });
    expect(out.interface_name).toMatch(/^wg-s2s-[0-9a-f]{6}$/);
    expect(out.interface_name.length).toBeLessThanOrEqual(15);
    const cfg = parseWgQuick(out.config);
    expect(cfg.interface).toEqual({ PrivateKey: '<paste your private key>', ListenPort: '51820' });
    expect(cfg.peers[0]).toMatchObject({ PublicKey: s2sKey, Endpoint: '198.18.0.10:51823', AllowedIPs: '10.100.0.0/16' });
    const s = await state(h, bridge);
    expect(s.bridge.site_to_site.tunnels).toEqual([{ tunnel_id: out.tunnel_id, remote_endpoint: '203.0.113.7:51820', remote_public_key: partnerKey, local_subnets: ['10.100.0.0/16'], remote_subnets: ['192.168.77.0/24', '172.16.5.0/24'], interface_name: out.interface_name, listen_port: 51823, psk: cfg.peers[0]!.PresharedKey }]);
    // The other node routes the subnets to the bridge and was told to pull.
    const n = await state(h, node);
    expect(n.peers.find((p: { node_id: string }) => p.node_id === bridge.node_id).allowed_ips).toEqual(['192.168.77.0/24', '172.16.5.0/24']);
    expect(eventsAfter(h, seq)).toEqual([['bridge_config_updated', bridge.node_id], ['node_state_updated', node.node_id]]);
    // Users added now route the site subnets through the bridge too.
    const user = parseWgQuick((await cli('access', 'add', 'u', '--db', h.dbFile, '--bridge', bridge.node_id)).out);
    expect(user.peers[0]!.AllowedIPs).toBe('10.100.0.0/16, 192.168.77.0/24, 172.16.5.0/24');
    // Text output names the bridge side.
    const text = await site(h, siteArgs(bridge.node_id, 'branch', '192.168.78.0/24'));
    expect(text.out).toMatch(/bridge public key: +\S+/);
    expect(text.out).toMatch(/bridge listen port: 51824\/udp/);
    expect(text.out).toMatch(/route to the tunnel on the partner side: 10\.100\.0\.0\/16/);
    parseWgQuick(text.out.slice(text.out.indexOf('# wg-quick')));
    // Remove: the bridge and the node hear of it, the subnets leave the node's view.
    const seq2 = lastSeq(h);
    expect((await cli('site', 'remove', 'hq', '--db', h.dbFile)).code).toBe(0);
    expect(eventsAfter(h, seq2)).toEqual([['bridge_config_updated', bridge.node_id], ['node_state_updated', node.node_id]]);
    expect((await state(h, node)).peers.find((p: { node_id: string }) => p.node_id === bridge.node_id).allowed_ips).toEqual(['192.168.78.0/24']);
    expect((await cli('site', 'remove', 'hq', '--db', h.dbFile)).code).toBe(1);
    const list = JSON.parse((await cli('site', 'list', '--db', h.dbFile, '--json')).out);
    expect(list.map((x: { name: string; listen_port: number }) => [x.name, x.listen_port])).toEqual([['branch', 51824]]);
  });

  it('ports go lowest free from 51823; the 11th site of a bridge is refused', async () => {
    const { bridge } = await setup(h);
    for (let i = 0; i < 10; i++) expect((await site(h, siteArgs(bridge.node_id, `s${i}`, `192.168.${i}.0/24`))).code).toBe(0);
    const ports = (h.cp.store.db.prepare('SELECT listen_port FROM sites ORDER BY listen_port').pluck().all() as number[]);
    expect(ports).toEqual([51823, 51824, 51825, 51826, 51827, 51828, 51829, 51830, 51831, 51832]);
    const before = snapshot(h);
    const r = await site(h, siteArgs(bridge.node_id, 's10', '192.168.10.0/24'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/has 10 sites already, the most one bridge takes \(10\)/);
    expect(snapshot(h)).toBe(before);
    expect((await cli('site', 'remove', 's3', '--db', h.dbFile)).code).toBe(0);
    expect(JSON.parse((await site(h, [...siteArgs(bridge.node_id, 's10', '192.168.10.0/24'), '--json'])).out).listen_port).toBe(51826);
  });

  it('refuses overlapping and invalid subnets, bad keys and endpoints, storing nothing', async () => {
    const { bridge, node } = await setup(h);
    expect((await site(h, siteArgs(bridge.node_id, 'hq', '192.168.77.0/24'))).code).toBe(0);
    expect((await cli('bridge', 'config', bridge.node_id, '--db', h.dbFile, '--access-subnets', '172.20.0.0/16')).code).toBe(0);
    const silent = await h.register({ mode: 'bridge' });
    const before = snapshot(h);
    const cases: Array<[string[], number, RegExp]> = [
      [siteArgs(bridge.node_id, 'x', '10.100.5.0/24'), 1, /overlaps the mesh 10\.100\.0\.0\/16/],
      [siteArgs(bridge.node_id, 'x', '10.0.0.0/8'), 1, /overlaps the mesh/],
      [siteArgs(bridge.node_id, 'x', '10.101.200.0/24'), 1, /overlaps the access range 10\.101\.0\.0\/16/],
      [siteArgs(bridge.node_id, 'x', '192.168.77.128/25'), 1, /overlaps 192\.168\.77\.0\/24 of site hq/],
      [siteArgs(bridge.node_id, 'x', '172.20.1.0/24'), 1, /overlaps 172\.20\.0\.0\/16 of the access subnets/],
      [siteArgs(bridge.node_id, 'x', '192.168.1.0/24,192.168.0.0/16'), 1, /overlap/],
      [siteArgs(bridge.node_id, 'x', '192.168.1.1/24'), 1, /host bits set \(the network is 192\.168\.1\.0\/24\)/],
      [siteArgs(bridge.node_id, 'x', '0.0.0.0/0'), 1, /prefix length of 1\.\.32/],
      [siteArgs(bridge.node_id, 'x', '192.168.1.0/33'), 1, /prefix length/],
      [siteArgs(bridge.node_id, 'x', '192.168.1.0'), 1, /expected an IPv4 network/],
      [siteArgs(bridge.node_id, 'x', '300.1.1.0/24'), 1, /expected an IPv4 network/],
      [siteArgs(bridge.node_id, 'x', 'fd00::/64'), 1, /expected an IPv4 network/],
      [siteArgs(bridge.node_id, 'x', '192.168.1.0/24,'), 1, /expected an IPv4 network/],
      [siteArgs(bridge.node_id, 'x', Array.from({ length: 40 }, (_, i) => `192.168.${i}.0/24`).join(',')), 1, /at most 32 subnets/],
      [siteArgs(bridge.node_id, 'x', 'x'.repeat(100_000)), 1, /at most 32 subnets/],
      [siteArgs(bridge.node_id, 'x', '192.168.1.0/24', 'AAAA'), 1, /expected a WireGuard public key/],
      [siteArgs(bridge.node_id, 'hq', '192.168.1.0/24'), 1, /a site named hq exists already/],
      [siteArgs(node.node_id, 'x', '192.168.1.0/24'), 1, /not a bridge/],
      [siteArgs(silent.node_id, 'x', '192.168.1.0/24'), 1, /has not reported its site-to-site public key/],
      [siteArgs('nope', 'x', '192.168.1.0/24'), 1, /no node/],
    ];
    for (const [args, code, msg] of cases) {
      const r = await site(h, args);
      expect(r.code, args.join(' ').slice(0, 200)).toBe(code);
      expect(r.err, args.join(' ').slice(0, 200)).toMatch(msg);
      expect(r.err.length).toBeLessThan(2000);
    }
    for (const endpoint of ['203.0.113.7', '203.0.113.7:0', '203.0.113.7:70000', 'bad host:1', `${'a'.repeat(300)}:1`, '[fe80::1%eth0]:1']) {
      const args = siteArgs(bridge.node_id, 'x', '192.168.1.0/24');
      args[args.indexOf('--endpoint') + 1] = endpoint;
      const r = await site(h, args);
      expect([r.code, r.err], endpoint).toEqual([1, expect.stringMatching(/--endpoint: expected HOST:PORT/)]);
    }
    expect((await site(h, ['site', 'add', 'x', '--db', '', '--bridge', bridge.node_id])).code).toBe(2);
    expect(snapshot(h)).toBe(before);
    // A DNS name is a fine endpoint.
    const ok = siteArgs(bridge.node_id, 'x', '192.168.1.0/24');
    ok[ok.indexOf('--endpoint') + 1] = 'gw.partner.example:51820';
    expect((await site(h, ok)).code).toBe(0);
  });
});

describe('bridge config', () => {
  it('enable_nat false adds the access range to the bridge at every node; access subnets too; both reach the bridge block', async () => {
    const { bridge, node } = await setup(h);
    const seq = lastSeq(h);
    const r = await cli('bridge', 'config', bridge.node_id, '--db', h.dbFile, '--enable-nat', 'false', '--access-subnets', '172.20.0.0/16,172.21.0.0/16', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ node_id: bridge.node_id, enable_nat: false, access_subnets: ['172.20.0.0/16', '172.21.0.0/16'] });
    expect(eventsAfter(h, seq)).toEqual([['bridge_config_updated', bridge.node_id], ['node_state_updated', node.node_id]]);
    const b = await state(h, bridge);
    expect(b.bridge).toMatchObject({ enable_nat: false, access_subnets: ['172.20.0.0/16', '172.21.0.0/16'] });
    expect((await state(h, node)).peers.find((p: { node_id: string }) => p.node_id === bridge.node_id).allowed_ips).toEqual(['172.20.0.0/16', '172.21.0.0/16', '10.101.0.0/16']);
    // Printing without options changes nothing and tells nobody.
    const seq2 = lastSeq(h);
    expect((await cli('bridge', 'config', bridge.node_id, '--db', h.dbFile)).out).toMatch(/enable_nat false, access_subnets 172\.20\.0\.0\/16,172\.21\.0\.0\/16/);
    expect(lastSeq(h)).toBe(seq2);
    // A second bridge cannot turn NAT off too; bad values are usage errors.
    const other = await h.register({ mode: 'bridge' });
    const before = snapshot(h);
    const second = await cli('bridge', 'config', other.node_id, '--db', h.dbFile, '--enable-nat', 'false');
    expect([second.code, second.err]).toEqual([1, expect.stringMatching(/already has NAT off/)]);
    expect((await cli('bridge', 'config', other.node_id, '--db', h.dbFile, '--enable-nat', 'maybe')).code).toBe(2);
    expect((await cli('bridge', 'config', other.node_id, '--db', h.dbFile, '--access-subnets', '10.100.0.0/24')).code).toBe(1);
    expect((await cli('bridge', 'config', node.node_id, '--db', h.dbFile, '--enable-nat', 'true')).code).toBe(1);
    expect(snapshot(h)).toBe(before);
    // Cleared.
    expect((await cli('bridge', 'config', bridge.node_id, '--db', h.dbFile, '--enable-nat', 'true', '--access-subnets', '')).code).toBe(0);
    expect((await state(h, node)).peers.find((p: { node_id: string }) => p.node_id === bridge.node_id).allowed_ips).toBeUndefined();
  });

  it('removing a bridge node removes its users and sites', async () => {
    const { bridge } = await setup(h);
    await cli('access', 'add', 'a', '--db', h.dbFile, '--bridge', bridge.node_id);
    await site(h);
    expect((await cli('nodes', 'remove', bridge.node_id, '--db', h.dbFile)).code).toBe(0);
    expect(h.cp.store.db.prepare('SELECT COUNT(*) FROM access_users').pluck().get()).toBe(0);
    expect(h.cp.store.db.prepare('SELECT COUNT(*) FROM sites').pluck().get()).toBe(0);

    async function site(h: Harness): Promise<void> {
      expect((await cli('site', 'add', 's', '--db', h.dbFile, '--bridge', bridge.node_id, '--public-key', randomKey(), '--endpoint', '203.0.113.7:51820', '--subnets', '192.168.77.0/24')).code).toBe(0);
    }
  });
});

describe('policy for users and sites', () => {
  const hp = harnessEach({ relay: false });

  it('a rule naming the access range, a user or a site subnet makes its nodes see the bridge, and the bridge gets the compiled rules', async () => {
    const bridge = await hp.register({ mode: 'bridge' });
    const db = await hp.register({ bootstrap_token: hp.cp.store.createToken('default', 60_000, { role: 'db' }).token });
    const web = await hp.register({ bootstrap_token: hp.cp.store.createToken('default', 60_000, { role: 'web' }).token });
    await heartbeat(hp, bridge, { user_access: { enabled: true, interface_name: 'wg-access', peer_count: 0, listen_port: 51822, public_key: randomKey() }, site_to_site: { enabled: true, tunnel_count: 0, public_key: randomKey() } });
    hp.cp.store.setPolicy('default', [
      { action: 'allow', protocol: 'tcp', source_cidr: '10.101.0.2/32', destination_cidr: '', destination_group: 'role=db', ports: { from: 5432, to: 5432 } },
      { action: 'allow', protocol: 'any', source_cidr: '10.101.0.0/16', destination_cidr: web.mesh_ip + '/32', ports: null },
      { action: 'allow', protocol: 'any', source_cidr: '192.168.77.0/24', destination_cidr: '', destination_group: 'role=web', ports: null },
    ]);
    const peersOf = async (n: Registered) => (await state(hp, n)).peers.map((p: { node_id: string }) => p.node_id).sort();
    // No user, no site: the bridge stands for nothing yet, so nobody sees it.
    expect(await peersOf(bridge)).toEqual([]);
    const seq = lastSeq(hp);
    expect((await cli('access', 'add', 'alice', '--db', hp.dbFile, '--bridge', bridge.node_id)).code).toBe(0);
    // alice is 10.101.0.2: db (group rule) and web (range rule) now see the bridge, and were told.
    expect(await peersOf(bridge)).toEqual([db.node_id, web.node_id].sort());
    expect(await peersOf(db)).toEqual([bridge.node_id]);
    const told = eventsAfter(hp, seq);
    expect(told).toContainEqual(['peer_added', db.node_id]);
    expect(told).toContainEqual(['peer_added', web.node_id]);
    expect(told).toContainEqual(['bridge_config_updated', bridge.node_id]);
    // The bridge judges alice's packets: its compiled policy names her address and db's.
    const rules = (await state(hp, bridge)).policy.rules;
    expect(rules).toContainEqual({ action: 'allow', protocol: 'tcp', source_cidr: '10.101.0.2/32', destination_cidr: `${db.mesh_ip}/32`, ports: { from: 5432, to: 5432 } });
    expect(rules).toContainEqual({ action: 'allow', protocol: 'any', source_cidr: '10.101.0.0/16', destination_cidr: `${web.mesh_ip}/32`, ports: null });
    // db's own compiled rules are as before: it judges packets to its own address.
    expect((await state(hp, db)).policy.rules).toContainEqual({ action: 'allow', protocol: 'tcp', source_cidr: '10.101.0.2/32', destination_cidr: `${db.mesh_ip}/32`, ports: { from: 5432, to: 5432 } });
    // A site behind the bridge: the group rule naming its subnet reaches the bridge as well.
    expect((await cli('site', 'add', 'hq', '--db', hp.dbFile, '--bridge', bridge.node_id, '--public-key', randomKey(), '--endpoint', '203.0.113.7:51820', '--subnets', '192.168.77.0/24')).code).toBe(0);
    expect((await state(hp, bridge)).policy.rules).toContainEqual({ action: 'allow', protocol: 'any', source_cidr: '192.168.77.0/24', destination_cidr: `${web.mesh_ip}/32`, ports: null });
    expect((await state(hp, web)).peers.find((p: { node_id: string }) => p.node_id === bridge.node_id).allowed_ips).toEqual(['192.168.77.0/24']);
    // Removing alice: db loses the bridge (only her rule connected them), web keeps it.
    expect((await cli('access', 'remove', 'alice', '--db', hp.dbFile)).code).toBe(0);
    expect(await peersOf(db)).toEqual([]);
    expect(await peersOf(web)).toEqual([bridge.node_id]);
    // policy explain sees the bridge standing for the site.
    const explain = await cli('policy', 'explain', bridge.node_id, web.node_id, '--db', hp.dbFile);
    expect(explain.out).toMatch(/they see each other through rules\[2\]/);
  });
});
