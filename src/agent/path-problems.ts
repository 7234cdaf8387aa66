// No silent failure (docs/agent.md "Readiness and path problems"): a peer the device has no endpoint for (the control plane gave none,
// no candidate, no relay, and no authenticated packet from it taught us one) is a path problem once
// it lasts PATH_GRACE_MS. The agent logs ONE warning per episode naming the peer and what was
// tried, `status` shows it per peer, and /readyz is 503 while every peer has one.

import type { PeerInfo } from '../api/types.js';

/** How long a peer may lack an endpoint before it is a path problem (ms). */
export const PATH_GRACE_MS = 30_000;

/** A peer as the check sees it: the control plane's entry and whether the device has an endpoint. */
export interface PeerPathInput {
  readonly info: PeerInfo;
  readonly deviceHasEndpoint: boolean;
}

/** What was tried for a peer without an endpoint, in words. */
export function describeTried(info: PeerInfo): string {
  const cands = info.candidates ?? [];
  return [
    `control-plane endpoint: ${info.endpoint ?? 'none'}`,
    `candidates: ${cands.length === 0 ? 'none' : cands.join(' ')}`,
    `relay: ${info.fallback_endpoint ?? 'none'}`,
    'no handshake from it reached us',
  ].join('; ');
}

/** Tracks path problems per peer over time; time is an argument (ms, any monotonic origin). */
export class PathProblems {
  readonly #graceMs: number;
  readonly #warn: (message: string) => void;
  /** node_id -> when it was first seen without an endpoint. */
  readonly #since = new Map<string, number>();
  /** node_id -> the problem text, for peers past the grace period. */
  readonly #problems = new Map<string, string>();
  #peers = 0;
  /** Warnings logged. */
  warnings = 0;

  /** `graceMs` >= 0; `warn` gets the one line per episode. */
  constructor(graceMs: number, warn: (message: string) => void) {
    if (!(graceMs >= 0)) throw new RangeError(`expected graceMs >= 0, got ${graceMs}`);
    this.#graceMs = graceMs;
    this.#warn = warn;
  }

  /** Re-evaluates every peer at `now`; warns once for each peer whose problem starts now. */
  check(peers: readonly PeerPathInput[], now: number): void {
    this.#peers = peers.length;
    const seen = new Set<string>();
    for (const { info, deviceHasEndpoint } of peers) {
      const id = info.node_id;
      seen.add(id);
      if (deviceHasEndpoint) {
        this.#since.delete(id);
        this.#problems.delete(id);
        continue;
      }
      const since = this.#since.get(id) ?? now;
      this.#since.set(id, since);
      if (now - since < this.#graceMs || this.#problems.has(id)) continue;
      const waited = Math.round((now - since) / 1000);
      const text = `no usable endpoint after ${waited} s (${describeTried(info)})`;
      this.#problems.set(id, text);
      this.warnings++;
      this.#warn(
        `peer ${id} (mesh IP ${info.mesh_ip}, key ${info.public_key.slice(0, 8)}…) has ${text}; ` +
          'its agent reports no endpoint: is it an older build without bind_address, or running with nat.enabled: false and no wireguard.advertise_endpoint?',
      );
    }
    for (const id of [...this.#since.keys()]) if (!seen.has(id)) this.#since.delete(id);
    for (const id of [...this.#problems.keys()]) if (!seen.has(id)) this.#problems.delete(id);
  }

  /** The peer's path problem, if it has one. */
  problemOf(nodeId: string): string | undefined {
    return this.#problems.get(nodeId);
  }

  /** Why the node is not ready on account of its peers (every one has a path problem), if so. */
  get notReadyReason(): string | undefined {
    if (this.#peers === 0 || this.#problems.size < this.#peers) return undefined;
    return `no peer has a usable endpoint (${this.#problems.size} of ${this.#peers}); see the path_problem of each in \`peers\``;
  }
}
