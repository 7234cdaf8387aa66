// The bridge access side as the control plane keeps it (issue 15; plexd-api.md "Bridge access
// side"; docs/control-plane.md "User access and site-to-site"): users reaching the mesh through a
// bridge's `wg-access` interface (UDP 51822) with any WireGuard client, and site-to-site tunnels
// to partner gateways on `wg-s2s-<id>` interfaces (UDP 51823 upward, at most 10 per bridge). The
// bridge keeps its own key pairs and reports the public keys in heartbeats; users get addresses
// of the access range (default 10.101.0.0/16, the bridge itself holds the first host), allocated
// like mesh IPs and never shared. Here: validation, the rows, the state's bridge block, the
// prefixes other nodes route to a bridge, the ranges a bridge stands for in policy, and the
// wg-quick configs printed for users and partners.

import { getRandomValues, randomBytes } from 'node:crypto';
import { decodeBase64, encodeBase64, parseEndpoint, type BridgeState, type HeartbeatRequest, type SiteToSiteTunnel, type UserAccessPeer } from '../api/index.js';
import { parseIp, parsePrefix } from '../core/ip.js';
import { nodeCrypto } from '../crypto/node.js';
import type { Db } from './database.js';
import { ControlPlaneError } from './errors.js';
import { formatIpv4, ipv4FromBytes, lowestFree, meshRange, type MeshRange } from './mesh-ip.js';
import { prepared } from './prepared.js';
import type { ControlPlaneStore, NodeRow } from './store.js';

/** Default access range (users' addresses); must not overlap the mesh. */
export const DEFAULT_ACCESS_CIDR = '10.101.0.0/16';
/** The bridge's user-access interface and its UDP port (upstream's). */
export const ACCESS_INTERFACE = 'wg-access';
export const USER_ACCESS_PORT = 51822;
/** Site-to-site listen ports: the lowest free of FIRST_SITE_PORT .. + MAX_SITES_PER_BRIDGE - 1. */
export const FIRST_SITE_PORT = 51823;
/** Upstream's limit of site-to-site tunnels per bridge. */
export const MAX_SITES_PER_BRIDGE = 10;
/** Most subnets one site (or a bridge's access_subnets) may list. */
export const MAX_SUBNETS = 32;
/** Longest user or site name. */
export const MAX_NAME_LENGTH = 64;
/** PersistentKeepalive of the printed configs (seconds): keeps NAT mappings towards the bridge. */
export const KEEPALIVE_S = 25;

const META_ACCESS_CIDR = 'access_cidr';
const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._@+-]{0,62}[A-Za-z0-9])?$/;
const HOSTNAME = /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** An IPv4 prefix as numbers: the text (canonical), first and last address. */
export interface Prefix4 {
  readonly cidr: string;
  readonly lo: number;
  readonly hi: number;
}

function refuse(message: string): never {
  throw new ControlPlaneError('validation_failed', message);
}

function show(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
}

/** Checks a user or site name: 1..64 of [A-Za-z0-9._@+-], starting and ending alphanumeric.
 *  Throws ControlPlaneError validation_failed. */
export function checkName(name: string): string {
  if (!NAME.test(name)) refuse(`expected a name of 1..${MAX_NAME_LENGTH} characters [A-Za-z0-9._@+-], starting and ending with a letter or digit, got ${show(name)}`);
  return name;
}

/** Checks a base64 X25519 public key (32 bytes, canonical base64, as `wg pubkey` prints).
 *  Throws ControlPlaneError validation_failed naming `what`. */
export function checkPublicKey(key: string, what: string): string {
  if (key.length > 64 || decodeBase64(key, 32) === undefined) refuse(`${what}: expected a WireGuard public key (32 bytes in base64, 44 characters), got ${show(key)}`);
  return key;
}

/**
 * Parses an IPv4 network prefix strictly: dotted quad, /1../32, no host bits set. Throws
 * ControlPlaneError validation_failed naming `what`.
 */
export function parseSubnet(text: string, what: string): Prefix4 {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(text);
  const ip = m === null ? undefined : parseIp(m[1]!);
  if (m === null || ip === undefined || ip.length !== 4) refuse(`${what}: expected an IPv4 network such as 192.168.77.0/24, got ${show(text)}`);
  const bits = Number(m[2]);
  if (bits < 1 || bits > 32 || String(bits) !== m[2]) refuse(`${what}: expected a prefix length of 1..32, got ${show(text)}`);
  const n = ipv4FromBytes(ip);
  const size = 2 ** (32 - bits);
  if (n % size !== 0) refuse(`${what}: ${text} has host bits set (the network is ${formatIpv4(n - (n % size))}/${bits})`);
  return { cidr: `${formatIpv4(n)}/${bits}`, lo: n, hi: n + size - 1 };
}

/** A comma-separated subnet list (at most MAX_SUBNETS, no two overlapping). */
export function parseSubnetList(text: string, what: string): Prefix4[] {
  if (text.length > MAX_SUBNETS * 19) refuse(`${what}: expected at most ${MAX_SUBNETS} subnets`);
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length > MAX_SUBNETS) refuse(`${what}: expected at most ${MAX_SUBNETS} subnets, got ${parts.length}`);
  const out = parts.map((p) => parseSubnet(p, what));
  for (let i = 0; i < out.length; i++) {
    for (let j = i + 1; j < out.length; j++) {
      if (overlaps(out[i]!, out[j]!)) refuse(`${what}: ${out[i]!.cidr} and ${out[j]!.cidr} overlap`);
    }
  }
  return out;
}

function overlaps(a: { lo: number; hi: number }, b: { lo: number; hi: number }): boolean {
  return a.lo <= b.hi && b.lo <= a.hi;
}

function prefixOf(range: MeshRange): Prefix4 {
  return { cidr: range.cidr, lo: range.first - 1, hi: range.last + 1 };
}

/** Checks "HOST:PORT" of a partner gateway (IPv4, [IPv6] or a DNS name; port 1..65535). */
export function checkEndpoint(text: string, what: string): string {
  if (text.length <= 261 && parseEndpoint(text) !== undefined) return text;
  const m = /^([^:[\]]+):(\d{1,5})$/.exec(text);
  if (m === null || !HOSTNAME.test(m[1]!) || Number(m[2]) < 1 || Number(m[2]) > 65535 || String(Number(m[2])) !== m[2]) {
    refuse(`${what}: expected HOST:PORT (an IP address or DNS name, port 1..65535), got ${show(text)}`);
  }
  return text;
}

/** Checks a host for a config's Endpoint (an IP address or DNS name); IPv6 comes back bracketed. */
export function checkHost(text: string, what: string): string {
  const ip = text.length <= 64 ? parseIp(text.replace(/^\[(.*)\]$/, '$1')) : undefined;
  if (ip !== undefined) return ip.length === 16 ? `[${text.replace(/^\[(.*)\]$/, '$1')}]` : text;
  if (!HOSTNAME.test(text)) refuse(`${what}: expected an IP address or DNS name, got ${show(text)}`);
  return text;
}

// ---- the access range ----

/** The database's access range (meta access_cidr; DEFAULT_ACCESS_CIDR until set). */
export function accessRange(db: Db): MeshRange {
  // Not pluck(): the cached statement is shared with psk.ts, and pluck() changes it for every user.
  const row = prepared(db, 'SELECT value FROM meta WHERE key = ?').get(META_ACCESS_CIDR) as { value: string } | undefined;
  return meshRange(row?.value ?? DEFAULT_ACCESS_CIDR);
}

/**
 * Sets the access range (serve --access-cidr). Throws ControlPlaneError validation_failed when it
 * is not an IPv4 /8../30, overlaps the mesh, or differs from the range users already hold
 * addresses in. Inside a transaction.
 */
export function setAccessRange(db: Db, mesh: MeshRange, cidr: string): void {
  let range: MeshRange;
  try {
    range = meshRange(cidr);
  } catch (err) {
    refuse(`--access-cidr: ${(err as Error).message}`);
  }
  if (range.cidr !== cidr) refuse(`--access-cidr: ${cidr} has host bits set (the network is ${range.cidr})`);
  if (overlaps(prefixOf(range), prefixOf(mesh))) refuse(`--access-cidr: ${range.cidr} overlaps the mesh ${mesh.cidr}`);
  const current = accessRange(db);
  if (current.cidr === range.cidr) return;
  const users = prepared(db, 'SELECT COUNT(*) FROM access_users').pluck().get() as number;
  if (users > 0) refuse(`--access-cidr: users hold addresses in ${current.cidr}; remove them before changing the access range`);
  prepared(db, 'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(META_ACCESS_CIDR, range.cidr);
}

/** The bridge's own access-side address: the range's first host with its prefix length. */
export function bridgeAccessAddress(range: MeshRange): string {
  return `${formatIpv4(range.first)}/${range.cidr.split('/')[1]}`;
}

// ---- rows ----

/** A user-access client as stored. */
export interface AccessUserRow {
  readonly project_id: string;
  readonly name: string;
  readonly bridge_id: string;
  readonly public_key: string;
  readonly address_num: number;
  readonly psk_salt: Buffer;
  readonly created_at: number;
}

/** A site-to-site tunnel as stored. */
export interface SiteRow {
  readonly project_id: string;
  readonly name: string;
  readonly bridge_id: string;
  readonly tunnel_id: string;
  readonly public_key: string;
  readonly endpoint: string;
  /** JSON array of canonical CIDRs. */
  readonly subnets: string;
  readonly listen_port: number;
  readonly psk_salt: Buffer;
  readonly created_at: number;
}

function jsonList(column: string | null): string[] {
  if (column === null) return [];
  try {
    const v = JSON.parse(column) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

/** The access columns of a node row (schema 8). */
export interface BridgeColumns {
  readonly access_public_key?: string | null;
  readonly s2s_public_key?: string | null;
  readonly enable_nat?: number;
  readonly access_subnets?: string | null;
}

/** Users of a project (oldest first), or of one bridge. */
export function listUsers(db: Db, projectId: string, bridgeId?: string): AccessUserRow[] {
  return bridgeId === undefined
    ? (prepared(db, 'SELECT * FROM access_users WHERE project_id = ? ORDER BY created_at, name').all(projectId) as AccessUserRow[])
    : (prepared(db, 'SELECT * FROM access_users WHERE project_id = ? AND bridge_id = ? ORDER BY address_num').all(projectId, bridgeId) as AccessUserRow[]);
}

/** Sites of a project (oldest first), or of one bridge. */
export function listSites(db: Db, projectId: string, bridgeId?: string): SiteRow[] {
  return bridgeId === undefined
    ? (prepared(db, 'SELECT * FROM sites WHERE project_id = ? ORDER BY created_at, name').all(projectId) as SiteRow[])
    : (prepared(db, 'SELECT * FROM sites WHERE project_id = ? AND bridge_id = ? ORDER BY listen_port').all(projectId, bridgeId) as SiteRow[]);
}

/** Subnets of a site row. */
export function siteSubnets(s: SiteRow): string[] {
  return jsonList(s.subnets);
}

/** The interface name of a tunnel: "wg-s2s-" + 6 hex digits (13 <= IFNAMSIZ - 1). */
export function tunnelInterface(tunnelId: string): string {
  return `wg-s2s-${tunnelId}`;
}

/** Records the access-side public keys a bridge reports in its heartbeat (the private keys stay on
 *  the bridge). Ordinary nodes' reports are ignored. Inside the heartbeat's transaction. */
export function recordBridgeKeys(db: Db, node: NodeRow & BridgeColumns, req: HeartbeatRequest): void {
  if (node.mode !== 'bridge') return;
  const access = req.user_access?.public_key;
  const s2s = req.site_to_site?.public_key;
  if (access !== undefined && access !== node.access_public_key) prepared(db, 'UPDATE nodes SET access_public_key = ? WHERE node_id = ?').run(access, node.node_id);
  if (s2s !== undefined && s2s !== node.s2s_public_key) prepared(db, 'UPDATE nodes SET s2s_public_key = ? WHERE node_id = ?').run(s2s, node.node_id);
}

/** Deletes a removed node's users and sites. */
export function dropBridgeRows(db: Db, nodeId: string): void {
  prepared(db, 'DELETE FROM access_users WHERE bridge_id = ?').run(nodeId);
  prepared(db, 'DELETE FROM sites WHERE bridge_id = ?').run(nodeId);
}

// ---- what the state pull says ----

/**
 * The access part of a bridge's state block: user_access (always, peers may be empty),
 * site_to_site, enable_nat and access_subnets. `psk`: the PSK of a row's salt (the store derives
 * it from its master). The relay part is added by the relay assigner.
 */
export function bridgeAccessBlock(db: Db, bridge: NodeRow & BridgeColumns, mesh: MeshRange, psk: (salt: Buffer) => Buffer): BridgeState {
  const range = accessRange(db);
  const peers: UserAccessPeer[] = listUsers(db, bridge.project_id, bridge.node_id).map((u) => ({
    public_key: u.public_key,
    allowed_ips: [`${formatIpv4(u.address_num)}/32`],
    psk: psk(u.psk_salt).toString('base64'),
    label: u.name,
  }));
  const tunnels: SiteToSiteTunnel[] = listSites(db, bridge.project_id, bridge.node_id).map((s) => ({
    tunnel_id: s.tunnel_id,
    remote_endpoint: s.endpoint,
    remote_public_key: s.public_key,
    local_subnets: [mesh.cidr],
    remote_subnets: siteSubnets(s),
    interface_name: tunnelInterface(s.tunnel_id),
    listen_port: s.listen_port,
    psk: psk(s.psk_salt).toString('base64'),
  }));
  return {
    relay: null,
    user_access: { enabled: true, interface_name: ACCESS_INTERFACE, listen_port: USER_ACCESS_PORT, address: bridgeAccessAddress(range), peers },
    site_to_site: { enabled: true, tunnels },
    enable_nat: bridge.enable_nat !== 0,
    access_subnets: jsonList(bridge.access_subnets ?? null),
  };
}

/**
 * The prefixes other nodes route to each bridge of `bridgeIds` besides its mesh IP: its sites'
 * subnets, its access subnets and, with enable_nat off, the access range. Bridges without any are
 * left out of the map.
 */
export function bridgePrefixes(db: Db, bridgeIds: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (bridgeIds.length === 0) return out;
  const ids = JSON.stringify(bridgeIds);
  const rows = prepared(db, 'SELECT node_id, enable_nat, access_subnets FROM nodes WHERE node_id IN (SELECT value FROM json_each(?))').all(ids) as Array<{ node_id: string; enable_nat: number; access_subnets: string | null }>;
  const sites = prepared(db, 'SELECT bridge_id, subnets FROM sites WHERE bridge_id IN (SELECT value FROM json_each(?)) ORDER BY listen_port').all(ids) as Array<{ bridge_id: string; subnets: string }>;
  let range: string | undefined;
  for (const r of rows) {
    const list = [...jsonList(r.access_subnets)];
    if (r.enable_nat === 0) list.push((range ??= accessRange(db).cidr));
    if (list.length > 0) out.set(r.node_id, list);
  }
  for (const s of sites) {
    const list = out.get(s.bridge_id) ?? [];
    list.push(...jsonList(s.subnets));
    out.set(s.bridge_id, list);
  }
  return out;
}

function rangeOf(cidr: string): [number, number] | undefined {
  const p = parsePrefix(cidr);
  if (p === undefined || p.ip.length !== 4) return undefined;
  const n = ipv4FromBytes(p.ip);
  return [n, n + 2 ** (32 - p.cidr) - 1];
}

/**
 * The address ranges each bridge of a project stands for in policy (visibility.ts VisNode.owned):
 * its users' addresses, its sites' subnets and its access subnets. One query per kind.
 */
export function ownedRanges(db: Db, projectId: string): Map<string, Array<[number, number]>> {
  const out = new Map<string, Array<[number, number]>>();
  const push = (id: string, r: [number, number] | undefined): void => {
    if (r === undefined) return;
    const list = out.get(id);
    if (list === undefined) out.set(id, [r]);
    else list.push(r);
  };
  for (const u of prepared(db, 'SELECT bridge_id, address_num FROM access_users WHERE project_id = ?').all(projectId) as Array<{ bridge_id: string; address_num: number }>) push(u.bridge_id, [u.address_num, u.address_num]);
  for (const s of prepared(db, 'SELECT bridge_id, subnets FROM sites WHERE project_id = ?').all(projectId) as Array<{ bridge_id: string; subnets: string }>) for (const c of jsonList(s.subnets)) push(s.bridge_id, rangeOf(c));
  for (const b of prepared(db, "SELECT node_id, access_subnets FROM nodes WHERE project_id = ? AND mode = 'bridge' AND access_subnets IS NOT NULL").all(projectId) as Array<{ node_id: string; access_subnets: string }>) for (const c of jsonList(b.access_subnets)) push(b.node_id, rangeOf(c));
  return out;
}

// ---- changes ----

/** The bridge `bridgeId` of `store`, checked: it exists, is a bridge. */
function bridgeNode(store: ControlPlaneStore, bridgeId: string): NodeRow & BridgeColumns {
  const node = store.node(bridgeId.toLowerCase()) as (NodeRow & BridgeColumns) | undefined;
  if (node === undefined) throw new ControlPlaneError('node_not_found', `no node ${show(bridgeId)}`);
  if (node.mode !== 'bridge') refuse(`node ${node.node_id} is not a bridge (mode ${node.mode}); users and sites attach to a node registered with mode: bridge`);
  return node;
}

/** Subnets taken in `projectId` besides `exceptSite`: every site's and every bridge's access subnets. */
function takenSubnets(db: Db, projectId: string, except: { site?: string; bridge?: string }): Array<Prefix4 & { by: string }> {
  const out: Array<Prefix4 & { by: string }> = [];
  for (const s of listSites(db, projectId)) {
    if (s.name === except.site) continue;
    for (const c of siteSubnets(s)) {
      const r = rangeOf(c);
      if (r !== undefined) out.push({ cidr: c, lo: r[0], hi: r[1], by: `site ${s.name}` });
    }
  }
  for (const b of prepared(db, "SELECT node_id, access_subnets FROM nodes WHERE project_id = ? AND mode = 'bridge' AND access_subnets IS NOT NULL").all(projectId) as Array<{ node_id: string; access_subnets: string }>) {
    if (b.node_id === except.bridge) continue;
    for (const c of jsonList(b.access_subnets)) {
      const r = rangeOf(c);
      if (r !== undefined) out.push({ cidr: c, lo: r[0], hi: r[1], by: `the access subnets of bridge ${b.node_id}` });
    }
  }
  return out;
}

/** Refuses subnets overlapping the mesh, the access range or `taken`. */
function checkFree(subnets: readonly Prefix4[], mesh: MeshRange, access: MeshRange, taken: ReadonlyArray<Prefix4 & { by: string }>, what: string): void {
  for (const s of subnets) {
    if (overlaps(s, prefixOf(mesh))) refuse(`${what}: ${s.cidr} overlaps the mesh ${mesh.cidr}`);
    if (overlaps(s, prefixOf(access))) refuse(`${what}: ${s.cidr} overlaps the access range ${access.cidr}`);
    const hit = taken.find((t) => overlaps(s, t));
    if (hit !== undefined) refuse(`${what}: ${s.cidr} overlaps ${hit.cidr} of ${hit.by}`);
  }
}

/** A fresh X25519 key pair (clamped as RFC 7748 5 and `wg genkey`), both base64. */
export function generateKeyPair(): { privateKey: string; publicKey: string } {
  const k = getRandomValues(new Uint8Array(32));
  k[0]! &= 248;
  k[31] = (k[31]! & 127) | 64;
  try {
    return { privateKey: encodeBase64(k), publicKey: encodeBase64(nodeCrypto.x25519PublicKey(k)) };
  } finally {
    k.fill(0);
  }
}

/** What `access add` asks for. */
export interface AddUserRequest {
  readonly name: string;
  readonly bridgeId: string;
  /** The user's own public key; absent: a key pair is generated and the private key printed. */
  readonly publicKey?: string;
  /** Overrides the bridge's reported endpoint host. */
  readonly endpointHost?: string;
}

/** What `access add` prints. */
export interface AddedUser {
  readonly name: string;
  /** "10.101.0.2" (no prefix). */
  readonly address: string;
  /** A complete wg-quick config (the private key, or a placeholder when the user brought a key). */
  readonly config: string;
}

/** The placeholder for a user's own private key in a printed config. */
export const PRIVATE_KEY_PLACEHOLDER = '<paste your private key>';

/** The bridge's reachable host: --endpoint-host, else the host part of its reported endpoint. */
function bridgeHost(bridge: NodeRow, override: string | undefined): string {
  if (override !== undefined) return checkHost(override, '--endpoint-host');
  const e = bridge.endpoint === null ? undefined : parseEndpoint(bridge.endpoint);
  if (e === undefined) refuse(`bridge ${bridge.node_id} has reported no endpoint yet; give --endpoint-host HOST (its address as users reach it)`);
  return e.host.includes(':') ? `[${e.host}]` : e.host;
}

/**
 * Adds a user-access client to a bridge (`control-plane access add`): a free address of the
 * access range, a PSK, and the client's wg-quick config. Throws ControlPlaneError node_not_found
 * (unknown bridge) or validation_failed (bad name or key, taken name or key, not a bridge, a
 * bridge that has not reported its access key, no endpoint, a full range); nothing is stored then.
 */
export function addUser(store: ControlPlaneStore, req: AddUserRequest): AddedUser {
  const name = checkName(req.name);
  if (req.publicKey !== undefined) checkPublicKey(req.publicKey, '--public-key');
  const bridge = bridgeNode(store, req.bridgeId);
  if (bridge.access_public_key === null || bridge.access_public_key === undefined) {
    refuse(`bridge ${bridge.node_id} has not reported its access public key yet (it does once its agent runs with user access on); try again after its next heartbeat`);
  }
  const host = bridgeHost(bridge, req.endpointHost);
  const keys = req.publicKey === undefined ? generateKeyPair() : { privateKey: undefined, publicKey: req.publicKey };
  return store.changeBridge(bridge.node_id, false, () => {
    const db = store.db;
    if (prepared(db, 'SELECT 1 FROM access_users WHERE project_id = ? AND name = ?').get(bridge.project_id, name) !== undefined) refuse(`a user named ${name} exists already`);
    if (prepared(db, 'SELECT 1 FROM access_users WHERE bridge_id = ? AND public_key = ?').get(bridge.node_id, keys.publicKey) !== undefined) refuse('--public-key: another user of this bridge has this key');
    if (keys.publicKey === bridge.access_public_key) refuse('--public-key: that is the bridge\'s own access key');
    const range = accessRange(db);
    const address = lowestFree(db, 'access_users', range.first + 1, range.last);
    if (address === undefined) refuse(`no free address in the access range ${range.cidr}`);
    const salt = randomBytes(16);
    prepared(db, 'INSERT INTO access_users (project_id, name, bridge_id, public_key, address_num, psk_salt, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(bridge.project_id, name, bridge.node_id, keys.publicKey, address, salt, store.now());
    const psk = store.accessPsk(salt).toString('base64');
    const routed = [store.range.cidr, ...(bridgePrefixes(db, [bridge.node_id]).get(bridge.node_id) ?? []).filter((c) => c !== range.cidr)];
    const config = [
      `# plexd user access: ${name} via bridge ${bridge.node_id}`,
      '[Interface]',
      `PrivateKey = ${keys.privateKey ?? PRIVATE_KEY_PLACEHOLDER}`,
      `Address = ${formatIpv4(address)}/32`,
      '',
      '[Peer]',
      `PublicKey = ${bridge.access_public_key}`,
      `PresharedKey = ${psk}`,
      `Endpoint = ${host}:${USER_ACCESS_PORT}`,
      `AllowedIPs = ${routed.join(', ')}`,
      `PersistentKeepalive = ${KEEPALIVE_S}`,
      '',
    ].join('\n');
    return { name, address: formatIpv4(address), config };
  });
}

/** Removes a user by name; the bridge drops the peer at its next reconcile. False when absent. */
export function removeUser(store: ControlPlaneStore, projectId: string, name: string): boolean {
  const row = prepared(store.db, 'SELECT bridge_id FROM access_users WHERE project_id = ? AND name = ?').get(projectId, name) as { bridge_id: string } | undefined;
  if (row === undefined) return false;
  return store.changeBridge(row.bridge_id, false, () => prepared(store.db, 'DELETE FROM access_users WHERE project_id = ? AND name = ?').run(projectId, name).changes > 0);
}

/** What `site add` asks for. */
export interface AddSiteRequest {
  readonly name: string;
  readonly bridgeId: string;
  /** The partner gateway's public key. */
  readonly publicKey: string;
  /** "HOST:PORT" of the partner gateway. */
  readonly endpoint: string;
  /** Comma-separated subnets behind the gateway. */
  readonly subnets: string;
  /** Overrides the bridge's reported endpoint host in the partner's config. */
  readonly endpointHost?: string;
}

/** What `site add` prints: the bridge side and the partner gateway's wg-quick config. */
export interface AddedSite {
  readonly name: string;
  readonly tunnel_id: string;
  readonly interface_name: string;
  readonly bridge_public_key: string;
  readonly listen_port: number;
  /** The mesh CIDR the partner routes to the tunnel. */
  readonly mesh_cidr: string;
  readonly subnets: readonly string[];
  /** wg-quick config for the partner gateway (private key placeholder). */
  readonly config: string;
}

/**
 * Adds a site-to-site tunnel to a bridge (`control-plane site add`): the lowest free listen port
 * of 51823..51832, a PSK, a tunnel id; the partner's config. Throws ControlPlaneError
 * node_not_found or validation_failed (bad name, key, endpoint or subnets; overlaps with the
 * mesh, the access range, another site or access subnets; an 11th site; no s2s key reported);
 * nothing is stored then.
 */
export function addSite(store: ControlPlaneStore, req: AddSiteRequest): AddedSite {
  const name = checkName(req.name);
  checkPublicKey(req.publicKey, '--public-key');
  const endpoint = checkEndpoint(req.endpoint, '--endpoint');
  const subnets = parseSubnetList(req.subnets, '--subnets');
  const bridge = bridgeNode(store, req.bridgeId);
  if (bridge.s2s_public_key === null || bridge.s2s_public_key === undefined) {
    refuse(`bridge ${bridge.node_id} has not reported its site-to-site public key yet (it does once its agent runs with site-to-site on); try again after its next heartbeat`);
  }
  const host = bridgeHost(bridge, req.endpointHost);
  const partnerPort = endpoint.slice(endpoint.lastIndexOf(':') + 1);
  return store.changeBridge(bridge.node_id, true, () => {
    const db = store.db;
    if (prepared(db, 'SELECT 1 FROM sites WHERE project_id = ? AND name = ?').get(bridge.project_id, name) !== undefined) refuse(`a site named ${name} exists already`);
    const mine = listSites(db, bridge.project_id, bridge.node_id);
    if (mine.length >= MAX_SITES_PER_BRIDGE) refuse(`bridge ${bridge.node_id} has ${mine.length} sites already, the most one bridge takes (${MAX_SITES_PER_BRIDGE}); remove one or use another bridge`);
    checkFree(subnets, store.range, accessRange(db), takenSubnets(db, bridge.project_id, {}), '--subnets');
    const used = new Set(mine.map((s) => s.listen_port));
    let port = FIRST_SITE_PORT;
    while (used.has(port)) port++;
    let tunnelId: string;
    do tunnelId = randomBytes(3).toString('hex');
    while (prepared(db, 'SELECT 1 FROM sites WHERE tunnel_id = ?').get(tunnelId) !== undefined);
    const salt = randomBytes(16);
    const cidrs = subnets.map((s) => s.cidr);
    prepared(db, 'INSERT INTO sites (project_id, name, bridge_id, tunnel_id, public_key, endpoint, subnets, listen_port, psk_salt, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
      bridge.project_id, name, bridge.node_id, tunnelId, req.publicKey, endpoint, JSON.stringify(cidrs), port, salt, store.now(),
    );
    const config = [
      `# plexd site-to-site: ${name} <-> bridge ${bridge.node_id} (tunnel ${tunnelId})`,
      `# addresses behind this gateway: ${cidrs.join(', ')}`,
      '[Interface]',
      `PrivateKey = ${PRIVATE_KEY_PLACEHOLDER}`,
      `ListenPort = ${partnerPort}`,
      '',
      '[Peer]',
      `PublicKey = ${bridge.s2s_public_key}`,
      `PresharedKey = ${store.accessPsk(salt).toString('base64')}`,
      `Endpoint = ${host}:${port}`,
      `AllowedIPs = ${store.range.cidr}`,
      `PersistentKeepalive = ${KEEPALIVE_S}`,
      '',
    ].join('\n');
    return { name, tunnel_id: tunnelId, interface_name: tunnelInterface(tunnelId), bridge_public_key: bridge.s2s_public_key!, listen_port: port, mesh_cidr: store.range.cidr, subnets: cidrs, config };
  });
}

/** Removes a site by name; the bridge tears its tunnel down and every node that sees the bridge
 *  drops the routes. False when absent. */
export function removeSite(store: ControlPlaneStore, projectId: string, name: string): boolean {
  const row = prepared(store.db, 'SELECT bridge_id FROM sites WHERE project_id = ? AND name = ?').get(projectId, name) as { bridge_id: string } | undefined;
  if (row === undefined) return false;
  return store.changeBridge(row.bridge_id, true, () => prepared(store.db, 'DELETE FROM sites WHERE project_id = ? AND name = ?').run(projectId, name).changes > 0);
}

/** What `bridge config` sets (absent: unchanged). */
export interface BridgeSettings {
  readonly enableNat?: boolean;
  /** Comma-separated subnets; "" clears them. */
  readonly accessSubnets?: string;
}

/**
 * Sets a bridge's enable_nat and access_subnets (`control-plane bridge config`). enable_nat false
 * is refused while another bridge of the project has it off (both would claim the access range at
 * every node). Throws ControlPlaneError node_not_found or validation_failed; nothing changes then.
 * Returns the settings now in force.
 */
export function configureBridge(store: ControlPlaneStore, bridgeId: string, settings: BridgeSettings): { node_id: string; enable_nat: boolean; access_subnets: string[] } {
  const bridge = bridgeNode(store, bridgeId);
  const subnets = settings.accessSubnets === undefined ? undefined : settings.accessSubnets === '' ? [] : parseSubnetList(settings.accessSubnets, '--access-subnets');
  const current = (n: NodeRow & BridgeColumns) => ({ node_id: n.node_id, enable_nat: n.enable_nat !== 0, access_subnets: jsonList(n.access_subnets ?? null) });
  if (settings.enableNat === undefined && subnets === undefined) return current(bridge);
  return store.changeBridge(bridge.node_id, true, () => {
    const db = store.db;
    if (settings.enableNat === false) {
      const other = prepared(db, "SELECT node_id FROM nodes WHERE project_id = ? AND mode = 'bridge' AND enable_nat = 0 AND node_id <> ? LIMIT 1").pluck().get(bridge.project_id, bridge.node_id) as string | undefined;
      if (other !== undefined) refuse(`--enable-nat false: bridge ${other} already has NAT off; only one bridge of a project can carry the access range unmasqueraded`);
      prepared(db, 'UPDATE nodes SET enable_nat = 0 WHERE node_id = ?').run(bridge.node_id);
    } else if (settings.enableNat === true) prepared(db, 'UPDATE nodes SET enable_nat = 1 WHERE node_id = ?').run(bridge.node_id);
    if (subnets !== undefined) {
      checkFree(subnets, store.range, accessRange(db), takenSubnets(db, bridge.project_id, { bridge: bridge.node_id }), '--access-subnets');
      prepared(db, 'UPDATE nodes SET access_subnets = ? WHERE node_id = ?').run(subnets.length === 0 ? null : JSON.stringify(subnets.map((s) => s.cidr)), bridge.node_id);
    }
    return current(store.node(bridge.node_id) as NodeRow & BridgeColumns);
  });
}
