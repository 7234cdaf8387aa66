// Kernel routes for peers' extra allowed IPs (docs/bridge.md "Mesh nodes"): a bridge's site
// subnets and, with enable_nat false, its access range arrive as a peer's `allowed_ips`; the
// device routes them by cryptokey, and the kernel must send them to the mesh interface first.
// Prefixes inside the mesh CIDR are covered by its route already; prefixes shorter than /8 (a
// default route in disguise) are refused. Routes follow the peer list and go on close.

import type { PeerInfo } from '../api/types.js';
import { formatPrefix, parsePrefix } from '../core/ip.js';
import type { Logger } from '../log/logger.js';

/** Shortest prefix a peer may have routed to the mesh interface. */
export const MIN_PEER_ROUTE_PREFIX = 8;

function inside(inner: { ip: Uint8Array; cidr: number }, outer: { ip: Uint8Array; cidr: number }): boolean {
  if (inner.ip.length !== outer.ip.length || inner.cidr < outer.cidr) return false;
  for (let bit = 0; bit < outer.cidr; bit++) {
    const m = 0x80 >> bit % 8;
    if ((inner.ip[bit >> 3]! & m) !== (outer.ip[bit >> 3]! & m)) return false;
  }
  return true;
}

/** The routes `peers` need on a mesh interface for `meshCidr`, and the prefixes refused, with why. */
export function peerRoutes(peers: readonly PeerInfo[], meshCidr: string): { routes: string[]; refused: string[] } {
  const mesh = parsePrefix(meshCidr);
  const routes = new Set<string>();
  const refused: string[] = [];
  for (const p of peers) {
    for (const text of p.allowed_ips ?? []) {
      const pre = parsePrefix(text);
      if (pre === undefined) continue;
      if (mesh !== undefined && inside(pre, mesh)) continue;
      if (pre.cidr < MIN_PEER_ROUTE_PREFIX) {
        refused.push(`${text} of node ${p.node_id} (shorter than /${MIN_PEER_ROUTE_PREFIX})`);
        continue;
      }
      routes.add(formatPrefix(pre.ip, pre.cidr));
    }
  }
  return { routes: [...routes].sort(), refused };
}

/** The routes installed on one interface; `run` executes `ip` argv. */
export class PeerRoutes {
  readonly #installed = new Set<string>();
  readonly #run: (argv: readonly string[]) => Promise<void>;
  readonly #ifname: string;
  readonly #log: Logger;
  readonly #warned = new Set<string>();

  constructor(ifname: string, run: (argv: readonly string[]) => Promise<void>, log: Logger) {
    this.#ifname = ifname;
    this.#run = run;
    this.#log = log;
  }

  /** The prefixes routed now. */
  get routes(): string[] {
    return [...this.#installed];
  }

  /** Makes the routes equal to what `peers` need; a failing command is logged, the rest carry on. */
  async sync(peers: readonly PeerInfo[], meshCidr: string): Promise<void> {
    const { routes, refused } = peerRoutes(peers, meshCidr);
    for (const r of refused) {
      if (this.#warned.has(r)) continue;
      this.#warned.add(r);
      this.#log.error(`route refused: ${r}`);
    }
    const want = new Set(routes);
    for (const r of [...this.#installed]) {
      if (want.has(r)) continue;
      this.#installed.delete(r);
      await this.#run(['ip', 'route', 'del', r, 'dev', this.#ifname]).catch((err: Error) => this.#log.verbose(err.message));
    }
    for (const r of want) {
      if (this.#installed.has(r)) continue;
      try {
        await this.#run(['ip', 'route', 'replace', r, 'dev', this.#ifname]);
        this.#installed.add(r);
        this.#log.info(`route ${r} via ${this.#ifname} (a peer's allowed IPs)`);
      } catch (err) {
        this.#log.error(`route ${r}: ${(err as Error).message}`);
      }
    }
  }

  /** Removes every route it added. */
  async close(): Promise<void> {
    await this.sync([], '');
  }
}
