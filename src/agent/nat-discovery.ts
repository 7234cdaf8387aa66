// Agent endpoint discovery (plexd-api.md "Lifecycle": NAT discovery (STUN)): classify the NAT from
// the WireGuard port with the two configured STUN servers (discoverNat), report `endpoint` and
// `nat_type` with PUT /v1/nodes/{id}/endpoint, and repeat every nat.refresh_interval. The report is
// sent again at once when the mapping or the type changed, and otherwise at plexd's re-report
// period min(60 s, stale_after - 30 s), never sooner than 10 s. The heartbeat's nat_summary is the
// last result.

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { EndpointRequest, EndpointResponse, NatSummary, NatType } from '../api/types.js';
import { formatRfc3339 } from '../api/fields.js';
import { sleep } from '../control/backoff.js';
import { formatEndpoint } from '../device/device.js';
import type { Endpoint } from '../io/bind.js';
import type { Logger } from '../log/logger.js';
import { discoverNat, type NatDiscovery as Discovery } from '../nat/nat-type.js';
import type { StunClient } from '../nat/stun-client.js';

/** The STUN port when a server is given without one (RFC 8489 section 9). */
export const DEFAULT_STUN_PORT = 3478;

/**
 * Splits "HOST", "HOST:PORT", "[V6]" or "[V6]:PORT" (a bare IPv6 literal is taken whole).
 * Throws RangeError when malformed.
 */
export function parseStunServer(text: string): { host: string; port: number } {
  const m = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(text) ?? (isIP(text) === 6 ? [text, text, undefined] : /^([^:[\]\s]+)(?::(\d{1,5}))?$/.exec(text));
  const port = m?.[2] === undefined ? DEFAULT_STUN_PORT : Number(m[2]);
  if (m === null || m[1] === undefined || port < 1 || port > 65535) throw new RangeError(`expected a STUN server HOST[:PORT], got ${JSON.stringify(text)}`);
  return { host: m[1], port };
}

/** Resolves configured servers: IP literals as they are, names with node:dns (first address). */
export async function resolveStunServers(list: readonly string[], resolve: (host: string) => Promise<string> = async (h) => (await lookup(h)).address): Promise<Endpoint[]> {
  const out: Endpoint[] = [];
  for (const text of list) {
    const { host, port } = parseStunServer(text);
    out.push({ address: isIP(host) !== 0 ? host : await resolve(host), port });
  }
  return out;
}

/** This host's interface addresses (for the no-NAT reading: a mapping equal to our own socket). */
function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

/** Options of {@link EndpointDiscovery}. */
export interface EndpointDiscoveryOptions {
  readonly client: StunClient;
  /** nat.stun_servers as configured. */
  readonly servers: readonly string[];
  /** nat.refresh_interval in ms. */
  readonly refreshMs: number;
  /** The WireGuard port (for the no-NAT reading). */
  readonly localPort: () => number;
  /** PUT /v1/nodes/{id}/endpoint. */
  readonly report: (req: EndpointRequest, signal: AbortSignal) => Promise<EndpointResponse>;
  /** Used when discovery found no mapping (wireguard.bind_address with the port, if set). */
  readonly fallbackEndpoint?: () => string | undefined;
  readonly log: Logger;
  /** Name resolution (tests). */
  readonly resolve?: (host: string) => Promise<string>;
}

/** The discovery loop and its last result. */
export class EndpointDiscovery {
  readonly #o: EndpointDiscoveryOptions;
  #summary: NatSummary = {};
  #reported: string | undefined;
  #reportedAt = -Infinity;
  #reportEveryMs = 60_000;
  /** Discovery rounds finished, and reports accepted. */
  readonly counters = { rounds: 0, reports: 0, reportFailures: 0 };
  /** The last classification (undefined before the first round). */
  last: Discovery | undefined;

  constructor(options: EndpointDiscoveryOptions) {
    if (!(options.refreshMs > 0)) throw new RangeError(`expected refreshMs > 0, got ${options.refreshMs}`);
    this.#o = options;
  }

  /** nat_summary for the heartbeat: {} before the first mapping. */
  get summary(): NatSummary {
    return this.#summary;
  }

  /** One round: discover, then report when changed or due. Never rejects (failures are logged). */
  async round(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    let endpoint: string | undefined;
    let natType: NatType = 'unknown';
    try {
      const servers = await resolveStunServers(o.servers, o.resolve);
      const d = await discoverNat(o.client, servers, { port: o.localPort(), addresses: localAddresses() });
      this.last = d;
      this.counters.rounds++;
      if (d.endpoint !== undefined) {
        endpoint = formatEndpoint(d.endpoint);
        natType = d.natType;
      }
      const times = d.results.map((r) => `${formatEndpoint(r.server)}: ${r.kind}${'elapsedMs' in r ? ` ${Math.round(r.elapsedMs)} ms` : ''}`).join(', ');
      o.log.verbose(`nat discovery: ${natType} ${endpoint ?? '(no mapping)'}${d.behindNat === false ? ' (no NAT)' : ''} [${times}]`);
    } catch (err) {
      o.log.error(`nat discovery failed: ${(err as Error).message}`);
    }
    endpoint ??= o.fallbackEndpoint?.();
    if (endpoint === undefined || signal.aborted) return;
    this.#summary = { endpoint, nat_type: natType };
    const key = `${endpoint} ${natType}`;
    if (key === this.#reported && performance.now() - this.#reportedAt < this.#reportEveryMs) return;
    try {
      const res = await o.report({ endpoint, nat_type: natType, reported_at: formatRfc3339(Date.now()) }, signal);
      if (key !== this.#reported) o.log.info(`endpoint ${endpoint} (${natType}) reported`);
      this.#reported = key;
      this.#reportedAt = performance.now();
      this.#reportEveryMs = Math.max(10_000, Math.min(60_000, (res.stale_after - 30) * 1000));
      this.counters.reports++;
    } catch (err) {
      this.counters.reportFailures++;
      if (!signal.aborted) o.log.verbose(`endpoint report failed: ${(err as Error).message}`);
    }
  }

  /** Rounds until `signal` aborts: at start, then every min(refresh, re-report period). */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.round(signal);
      const wait = this.counters.reports === 0 ? Math.min(this.#o.refreshMs, 10_000) : Math.min(this.#o.refreshMs, this.#reportEveryMs);
      await sleep(wait, signal).catch(() => undefined);
    }
  }
}
