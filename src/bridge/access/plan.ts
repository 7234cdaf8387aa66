// The bridge access side's pure planning (docs/bridge.md "User access", "Site-to-site"): which
// user-access peers and site-to-site tunnels of a state's bridge block are usable, and the
// smallest peer change that makes a device's peers equal to a wanted list. No I/O: the agent
// (src/agent/bridge-access.ts) runs the devices, routes and firewall rules these plans describe.

import type { SiteToSiteTunnel, UserAccessPeer } from '../../api/types.js';
import { decodeBase64, encodeBase64 } from '../../api/fields.js';
import { formatPrefix, maskHostBits, parsePrefix } from '../../core/ip.js';
import type { PeerConfig } from '../../device/config.js';
import type { PeerSnapshot } from '../../device/contract.js';

/** Upstream's limit of site-to-site tunnels per bridge (bridge.max_site_to_site_tunnels). */
export const MAX_SITE_TO_SITE_TUNNELS = 10;
/** Linux IFNAMSIZ - 1: the longest interface name. */
const MAX_IFNAME = 15;

/** A peer as a device should hold it: base64 keys, canonical prefixes. */
export interface WantedPeer {
  readonly publicKey: string;
  readonly allowedIps: readonly string[];
  readonly psk?: string;
  /** "ip:port", set when the peer is added (WireGuard roams from there). */
  readonly endpoint?: string;
  /** Seconds; set when the peer is added. */
  readonly keepalive?: number;
}

/** A list split into what can be applied and what is refused, with why. */
export interface Checked<T> {
  readonly ok: T[];
  readonly refused: Array<readonly [id: string, why: string]>;
}

function canonicalPrefix(text: string): string | undefined {
  const p = parsePrefix(text);
  return p === undefined ? undefined : formatPrefix(p.ip, p.cidr);
}

function canonicalPrefixes(list: readonly string[]): string[] | undefined {
  const out: string[] = [];
  for (const t of list) {
    const c = canonicalPrefix(t);
    if (c === undefined) return undefined;
    if (!out.includes(c)) out.push(c);
  }
  return out;
}

const isKey = (k: unknown): boolean => typeof k === 'string' && decodeBase64(k, 32) !== undefined;

/** A name Linux accepts for an interface: 1..15 characters, no '/', whitespace or ':'. */
export function validInterfaceName(name: unknown): name is string {
  return typeof name === 'string' && name.length > 0 && name.length <= MAX_IFNAME && /^[A-Za-z0-9_.-]+$/.test(name) && name !== '.' && name !== '..';
}

/** The user-access peers that can be applied; a bad key, prefix or PSK, or a key listed twice,
 *  is refused (the rest still apply). */
export function checkAccessPeers(peers: readonly UserAccessPeer[]): Checked<WantedPeer> {
  const ok: WantedPeer[] = [];
  const refused: Array<readonly [string, string]> = [];
  const seen = new Set<string>();
  for (const [i, p] of peers.entries()) {
    const id = p.label !== '' ? p.label : `peers[${i}]`;
    if (!isKey(p.public_key)) refused.push([id, 'public_key is not 32 bytes of base64']);
    else if (seen.has(p.public_key)) refused.push([id, `public key ${p.public_key} listed twice`]);
    else if (p.psk !== undefined && !isKey(p.psk)) refused.push([id, 'psk is not 32 bytes of base64']);
    else {
      const allowed = canonicalPrefixes(p.allowed_ips);
      if (allowed === undefined || allowed.length === 0) refused.push([id, `allowed_ips must be CIDR prefixes, got ${JSON.stringify(p.allowed_ips)}`]);
      else {
        seen.add(p.public_key);
        ok.push({ publicKey: p.public_key, allowedIps: allowed, ...(p.psk !== undefined ? { psk: p.psk } : {}) });
      }
    }
  }
  return { ok, refused };
}

/**
 * The site-to-site tunnels that can be applied: a bad key, subnet, endpoint, interface name or
 * port, a tunnel id, name or port used twice, a port in `reservedPorts` (the mesh, relay and
 * user-access ports), and every tunnel past the first `max` valid ones are refused.
 */
export function checkTunnels(tunnels: readonly SiteToSiteTunnel[], reservedPorts: ReadonlySet<number>, max = MAX_SITE_TO_SITE_TUNNELS): Checked<SiteToSiteTunnel> {
  const ok: SiteToSiteTunnel[] = [];
  const refused: Array<readonly [string, string]> = [];
  const ids = new Set<string>();
  const names = new Set<string>();
  const ports = new Set<number>();
  for (const [i, t] of tunnels.entries()) {
    const id = typeof t.tunnel_id === 'string' && t.tunnel_id !== '' ? t.tunnel_id : `tunnels[${i}]`;
    const why =
      ids.has(id) ? 'tunnel_id listed twice'
      : !isKey(t.remote_public_key) ? 'remote_public_key is not 32 bytes of base64'
      : t.psk !== undefined && !isKey(t.psk) ? 'psk is not 32 bytes of base64'
      : !validInterfaceName(t.interface_name) ? `interface_name ${JSON.stringify(t.interface_name)} is not a Linux interface name (1-15 characters)`
      : names.has(t.interface_name) ? `interface_name ${t.interface_name} used by another tunnel`
      : !Number.isInteger(t.listen_port) || t.listen_port < 1 || t.listen_port > 65535 ? `listen_port ${String(t.listen_port)} is not a port`
      : ports.has(t.listen_port) ? `listen_port ${t.listen_port} used by another tunnel`
      : reservedPorts.has(t.listen_port) ? `listen_port ${t.listen_port} is taken by the mesh, relay or user-access interface`
      : t.remote_endpoint !== '' && splitHostPort(t.remote_endpoint) === undefined ? `remote_endpoint ${JSON.stringify(t.remote_endpoint)} is not HOST:PORT`
      : (canonicalPrefixes(t.remote_subnets)?.length ?? 0) === 0 ? `remote_subnets must be CIDR prefixes, got ${JSON.stringify(t.remote_subnets)}`
      : ok.length >= max ? `more than ${max} site-to-site tunnels`
      : undefined;
    if (why !== undefined) {
      refused.push([id, why]);
      continue;
    }
    ids.add(id);
    names.add(t.interface_name);
    ports.add(t.listen_port);
    ok.push({ ...t, remote_subnets: canonicalPrefixes(t.remote_subnets)! });
  }
  return { ok, refused };
}

/** "host:port", "[v6]:port" or "ip:port" split; undefined when malformed (the host is a DNS name
 *  or an IP literal, resolved when the tunnel comes up). */
export function splitHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]{1,253})):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? m[2]!, port };
}

/** What makes a tunnel's interface what it is: a tunnel whose fingerprint changed is replaced. */
export function tunnelFingerprint(t: SiteToSiteTunnel): string {
  return JSON.stringify([t.interface_name, t.listen_port, t.remote_public_key, t.remote_endpoint, t.remote_subnets, t.psk ?? null]);
}

/**
 * The peer changes that make a device holding `current` hold exactly `wanted`: new peers added,
 * peers whose allowed IPs or PSK differ updated in place (their sessions survive), the rest
 * removed. Unchanged peers are not touched. Empty when nothing changes.
 */
export function planPeers(current: Iterable<PeerSnapshot>, wanted: readonly WantedPeer[]): PeerConfig[] {
  const have = new Map<string, { psk: string | null; allowed: Set<string> }>();
  for (const p of current) {
    const allowed = new Set<string>();
    for (const a of p.allowedIps) allowed.add(formatPrefix(a.ip, a.cidr));
    have.set(encodeBase64(p.publicKey), { psk: p.presharedKey === null ? null : encodeBase64(p.presharedKey), allowed });
  }
  const out: PeerConfig[] = [];
  const wantedKeys = new Set<string>();
  for (const w of wanted) {
    wantedKeys.add(w.publicKey);
    const cur = have.get(w.publicKey);
    if (cur === undefined) {
      out.push({
        publicKey: w.publicKey,
        ...(w.psk !== undefined ? { presharedKey: w.psk } : {}),
        ...(w.endpoint !== undefined ? { endpoint: w.endpoint } : {}),
        ...(w.keepalive !== undefined ? { persistentKeepalive: w.keepalive } : {}),
        replaceAllowedIps: true,
        allowedIps: w.allowedIps,
      });
      continue;
    }
    const sameAllowed = cur.allowed.size === w.allowedIps.length && w.allowedIps.every((a) => cur.allowed.has(a));
    const samePsk = cur.psk === (w.psk ?? null);
    if (sameAllowed && samePsk) continue;
    out.push({
      publicKey: w.publicKey,
      updateOnly: true,
      ...(samePsk ? {} : { presharedKey: w.psk ?? null }),
      ...(sameAllowed ? {} : { replaceAllowedIps: true, allowedIps: w.allowedIps }),
    });
  }
  for (const key of have.keys()) if (!wantedKeys.has(key)) out.push({ publicKey: key, remove: true });
  return out;
}

/** The network of an "address/len" (e.g. "10.101.0.1/16" -> "10.101.0.0/16"); undefined if malformed. */
export function networkOf(addressWithPrefix: string): string | undefined {
  const p = parsePrefix(addressWithPrefix);
  if (p === undefined) return undefined;
  return formatPrefix(maskHostBits(p.ip, p.cidr), p.cidr);
}
