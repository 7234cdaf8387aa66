// Endpoint candidates (docs/nat.md "Endpoint candidates"): every "ip:port" a peer may
// reach our WireGuard port at, in our order of preference: local interface addresses (LAN first),
// then the STUN reflexive address, then a relay. Pure functions over a table shaped like
// os.networkInterfaces(), plus that one OS call; the agent polls it (CANDIDATE_POLL_MS) and
// reports the list with PUT /v1/nodes/{id}/endpoint.

import { networkInterfaces } from 'node:os';
import { MAX_CANDIDATES } from '../api/types.js';
import { parseIp, parsePrefix } from '../core/ip.js';

/** How often the agent reads its interfaces for changed candidates (ms). */
export const CANDIDATE_POLL_MS = 10_000;

/** One address of an interface, as os.networkInterfaces() gives it (family 4/6 on some Node builds). */
export interface InterfaceAddress {
  readonly address: string;
  readonly family: 'IPv4' | 'IPv6' | 4 | 6;
  readonly internal: boolean;
}

/** Interface name -> its addresses (the shape of os.networkInterfaces()). */
export type InterfaceTable = Readonly<Record<string, readonly InterfaceAddress[] | undefined>>;

/** What decides which interface addresses are candidates. */
export interface LocalCandidateOptions {
  /** The WireGuard listen port (the port of every local candidate). */
  readonly port: number;
  /** wireguard.interface_name: our own mesh interface, never a candidate. */
  readonly meshInterface: string;
  /** The mesh range; an address inside it belongs to a mesh/tunnel interface. */
  readonly meshCidr: string | undefined;
  /** nat.candidate_interfaces: when non-empty, only these interfaces ("eth0", or a prefix glob
   *  "eth*"), whatever their names suggest. Empty: every interface but tunnels and bridges. */
  readonly allow: readonly string[];
}

/** WireGuard/TUN devices and container/VM bridges: not reachable from other hosts as a rule. */
const TUNNEL_NAMES = /^(wg|tun|tap|plexd|utun|tailscale|zt)/;
const BRIDGE_NAMES = /^(docker|br-|veth|cni|flannel|cali|virbr|vxlan|podman|lxcbr|lxdbr)/;

function matchesName(name: string, pattern: string): boolean {
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}

function inPrefix(ip: Uint8Array, prefix: { ip: Uint8Array; cidr: number }): boolean {
  if (ip.length !== prefix.ip.length) return false;
  for (let bit = 0; bit < prefix.cidr; bit++) {
    const mask = 0x80 >> bit % 8;
    if ((ip[bit >> 3]! & mask) !== (prefix.ip[bit >> 3]! & mask)) return false;
  }
  return true;
}

const LINK_LOCAL_V4 = parsePrefix('169.254.0.0/16')!;
const LINK_LOCAL_V6 = parsePrefix('fe80::/10')!;
const LOOPBACK_V4 = parsePrefix('127.0.0.0/8')!;

/** Why an interface (by name alone) gives no candidates, or undefined when it may. */
export function interfaceSkipReason(name: string, opts: Pick<LocalCandidateOptions, 'meshInterface' | 'allow'>): string | undefined {
  if (name === opts.meshInterface) return 'the mesh interface';
  if (opts.allow.length > 0) return opts.allow.some((p) => matchesName(name, p)) ? undefined : 'not in nat.candidate_interfaces';
  if (TUNNEL_NAMES.test(name)) return 'a WireGuard/TUN device';
  if (BRIDGE_NAMES.test(name)) return 'a container/VM bridge (list it in nat.candidate_interfaces to use it)';
  return undefined;
}

/** Why an address gives no candidate, or undefined when it does. */
export function addressSkipReason(a: InterfaceAddress, meshCidr: string | undefined): string | undefined {
  const ip = parseIp(a.address.split('%')[0]!);
  if (ip === undefined) return 'not an IP address';
  if (a.internal || inPrefix(ip, LOOPBACK_V4) || (ip.length === 16 && ip.every((b, i) => b === (i === 15 ? 1 : 0)))) return 'loopback';
  if (inPrefix(ip, LINK_LOCAL_V4) || inPrefix(ip, LINK_LOCAL_V6)) return 'link-local';
  if (ip.every((b) => b === 0)) return 'unspecified';
  const mesh = meshCidr === undefined ? undefined : parsePrefix(meshCidr);
  if (mesh !== undefined && inPrefix(ip, mesh)) return 'inside the mesh range';
  return undefined;
}

/** "ip:port", IPv6 in brackets. */
function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * The local candidates of `table`: IPv4 before IPv6, each family in interface order; an interface
 * with any address inside the mesh range is a tunnel and gives none. Pure.
 */
export function localCandidates(table: InterfaceTable, opts: LocalCandidateOptions): string[] {
  const mesh = opts.meshCidr === undefined ? undefined : parsePrefix(opts.meshCidr);
  const v4: string[] = [];
  const v6: string[] = [];
  for (const [name, addrs] of Object.entries(table)) {
    if (addrs === undefined || interfaceSkipReason(name, opts) !== undefined) continue;
    if (mesh !== undefined && addrs.some((a) => addressSkipReason(a, opts.meshCidr) === 'inside the mesh range')) continue;
    for (const a of addrs) {
      if (addressSkipReason(a, opts.meshCidr) !== undefined) continue;
      const address = a.address.split('%')[0]!;
      (a.family === 'IPv6' || a.family === 6 ? v6 : v4).push(hostPort(address, opts.port));
    }
  }
  return [...v4, ...v6];
}

/** Inputs of {@link chooseCandidates}; each one optional. */
export interface CandidateSources {
  /** wireguard.advertise_endpoint: wins outright. */
  readonly advertise?: string | undefined;
  /** wireguard.bind_address with the port, when a specific address: replaces the local scan. */
  readonly bound?: string | undefined;
  /** Interface addresses (localCandidates). */
  readonly local?: readonly string[];
  /** The STUN reflexive address. */
  readonly reflexive?: string | undefined;
  /** A relay endpoint that reaches us. */
  readonly relay?: string | undefined;
}

/**
 * The reported endpoint and candidate list (docs/nat.md): with advertise_endpoint, it alone; else
 * the bound address or the local ones, then the reflexive one, then the relay; deduplicated, at
 * most MAX_CANDIDATES (local ones give way first). The endpoint keeps its upstream meaning: the reflexive address, else the
 * bound one, else the first candidate. Pure.
 */
export function chooseCandidates(s: CandidateSources): { endpoint: string | undefined; candidates: string[] } {
  if (s.advertise !== undefined) return { endpoint: s.advertise, candidates: [s.advertise] };
  // Many local addresses must not crowd out the reflexive and relay ones.
  const tail = [s.reflexive, s.relay].filter((c): c is string => c !== undefined);
  const head = [...new Set(s.bound !== undefined ? [s.bound] : (s.local ?? []))].filter((c) => !tail.includes(c)).slice(0, MAX_CANDIDATES - tail.length);
  const candidates = [...new Set([...head, ...tail])];
  return { endpoint: s.reflexive ?? s.bound ?? candidates[0], candidates };
}

/** The host's interfaces (the OS side of localCandidates). */
export function osInterfaces(): InterfaceTable {
  return networkInterfaces() as InterfaceTable;
}
