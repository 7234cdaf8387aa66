// NAT classification from two STUN servers, by plexd's rule (plexd-api.md "Mesh, NAT, relay"):
// the same mapping from both -> full_cone; different mappings -> symmetric; only one answered ->
// unknown. "Mapped port == local port -> no NAT": we report that separately as behindNat=false, and
// only when the mapped address is also one of ours (when known), because a port-preserving NAT
// keeps the port too. restricted / port_restricted need RFC 5780 tests (CHANGE-REQUEST, a second
// server address) that plexd does not run, so this never returns them.

import type { NatType } from '../api/types.js';
import { sameEndpoint, type Endpoint } from '../core/endpoint.js';
import type { StunClient, StunResult } from './stun-client.js';

/** What discovery learned. */
export interface NatClassification {
  readonly natType: NatType;
  /** Our public endpoint (the agreed mapping, or the only one seen); undefined when none answered. */
  readonly endpoint: Endpoint | undefined;
  /**
   * False when the mapping is our own socket (port equal, and the address one of `localAddresses`
   * when those are given); true when translated; undefined when nothing answered.
   */
  readonly behindNat: boolean | undefined;
}

/** The local side of the probed socket, for the no-NAT test. */
export interface LocalSocket {
  readonly port: number;
  /** Our interface addresses; omit to judge by the port alone (plexd's rule). */
  readonly addresses?: readonly string[];
}

/** Classifies from the mappings two (or more) servers reported; undefined = no answer. Pure. */
export function classifyNat(mappings: readonly (Endpoint | undefined)[], local?: LocalSocket): NatClassification {
  const seen = mappings.filter((m): m is Endpoint => m !== undefined);
  const first = seen[0];
  if (first === undefined) return { natType: 'unknown', endpoint: undefined, behindNat: undefined };
  const behindNat =
    local === undefined
      ? true
      : !(first.port === local.port && (local.addresses === undefined || local.addresses.some((a) => sameEndpoint({ address: a, port: 0 }, { address: first.address, port: 0 }))));
  if (seen.length < 2) return { natType: 'unknown', endpoint: first, behindNat };
  const same = seen.every((m) => sameEndpoint(m, first));
  return same ? { natType: 'full_cone', endpoint: first, behindNat } : { natType: 'symmetric', endpoint: first, behindNat };
}

/** A classification plus each server's raw result (for logs and time-to-answer figures). */
export interface NatDiscovery extends NatClassification {
  readonly results: readonly StunResult[];
}

/**
 * Asks every server in `servers` (plexd uses two) in parallel through `client` and classifies the
 * answers. Resolves when all transactions end (answer or timeout; ~39.5 s worst case with the
 * RFC's default timers).
 */
export async function discoverNat(client: StunClient, servers: readonly Endpoint[], local?: LocalSocket): Promise<NatDiscovery> {
  const results = await Promise.all(servers.map((s) => client.request(s)));
  const mappings = results.map((r) => (r.kind === 'mapped' ? r.mapped : undefined));
  return { ...classifyNat(mappings, local), results };
}
