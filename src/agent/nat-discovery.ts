// Agent endpoint discovery and reporting (plexd-api.md "Lifecycle": NAT discovery (STUN); issue
// 13's candidates): classify the NAT from the WireGuard port with the STUN servers (configured, or
// the ones the control plane offers) (discoverNat), gather the endpoint candidates (candidates.ts),
// and report `endpoint`, `nat_type` and `candidates` with PUT /v1/nodes/{id}/endpoint. STUN runs
// every nat.refresh_interval; the candidates are read every poll period (10 s). The report is sent
// again at once when the endpoint, the type or the candidate set changed, and otherwise at plexd's
// re-report period min(60 s, stale_after - 30 s), never sooner than 10 s. The heartbeat's
// nat_summary is the last result.

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { EndpointRequest, EndpointResponse, NatSummary, NatType } from '../api/types.js';
import { formatRfc3339 } from '../api/fields.js';
import { sleep } from '../control/backoff.js';
import { formatEndpoint } from '../core/endpoint.js';
import type { Endpoint } from '../io/bind.js';
import { systemClock, type Clock } from '../io/clock.js';
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
  /** The STUN servers to use now (nat.stun_servers, else the control plane's offer); none: no STUN. */
  readonly servers: readonly string[] | (() => readonly string[]);
  /** nat.refresh_interval in ms. */
  readonly refreshMs: number;
  /** The WireGuard port (for the no-NAT reading). */
  readonly localPort: () => number;
  /** PUT /v1/nodes/{id}/endpoint. */
  readonly report: (req: EndpointRequest, signal: AbortSignal) => Promise<EndpointResponse>;
  /** Used when discovery found no mapping (wireguard.bind_address with the port, if set). */
  readonly fallbackEndpoint?: () => string | undefined;
  /** The endpoint and candidates to report, given the reflexive address (candidates.ts
   *  chooseCandidates); absent: the reflexive address, else fallbackEndpoint, and no candidates. */
  readonly gather?: (reflexive: string | undefined) => { endpoint: string | undefined; candidates: readonly string[] };
  /** How often run() re-reads the candidates between STUN rounds (ms); default: refreshMs. */
  readonly pollMs?: number;
  readonly log: Logger;
  /** Name resolution (tests). */
  readonly resolve?: (host: string) => Promise<string>;
  /** Where refresh and re-report times are read (default the system clock). */
  readonly clock?: Clock;
}

/** The discovery loop and its last result. */
export class EndpointDiscovery {
  readonly #o: EndpointDiscoveryOptions;
  readonly #clock: Clock;
  #summary: NatSummary = {};
  #reported: string | undefined;
  #reportedAt = -Infinity;
  #reportEveryMs = 60_000;
  #reflexive: string | undefined;
  #natType: NatType = 'unknown';
  #stunAt = -Infinity;
  #stunServers = '';
  #candidates: readonly string[] = [];
  /** Discovery rounds finished, and reports accepted. */
  readonly counters = { rounds: 0, reports: 0, reportFailures: 0 };
  /** The last classification (undefined before the first round). */
  last: Discovery | undefined;

  constructor(options: EndpointDiscoveryOptions) {
    this.#clock = options.clock ?? systemClock;
    if (!(options.refreshMs > 0)) throw new RangeError(`expected refreshMs > 0, got ${options.refreshMs}`);
    this.#o = options;
  }

  /** nat_summary for the heartbeat: {} before the first mapping. */
  get summary(): NatSummary {
    return this.#summary;
  }

  /** The candidates last gathered (reported or not). */
  get candidates(): readonly string[] {
    return this.#candidates;
  }

  /** The STUN servers in use now. */
  get servers(): readonly string[] {
    const s = this.#o.servers;
    return typeof s === 'function' ? s() : s;
  }

  /** One round: discover (when there are STUN servers), then report when changed or due. Never
   *  rejects (failures are logged). */
  async round(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const list = this.servers;
    this.#stunAt = this.#clock.now();
    this.#stunServers = list.join(',');
    this.#reflexive = undefined;
    this.#natType = 'unknown';
    if (list.length > 0) {
      try {
        const servers = await resolveStunServers(list, o.resolve);
        const d = await discoverNat(o.client, servers, { port: o.localPort(), addresses: localAddresses() });
        this.last = d;
        this.counters.rounds++;
        if (d.endpoint !== undefined) {
          this.#reflexive = formatEndpoint(d.endpoint);
          this.#natType = d.natType;
        }
        const times = d.results.map((r) => `${formatEndpoint(r.server)}: ${r.kind}${'elapsedMs' in r ? ` ${Math.round(r.elapsedMs)} ms` : ''}`).join(', ');
        o.log.verbose(`nat discovery: ${this.#natType} ${this.#reflexive ?? '(no mapping)'}${d.behindNat === false ? ' (no NAT)' : ''} [${times}]`);
      } catch (err) {
        o.log.error(`nat discovery failed: ${(err as Error).message}`);
      }
    }
    await this.report(signal);
  }

  /** Gathers the candidates (with the last STUN result) and reports them when they changed or
   *  the re-report is due. Never rejects. */
  async report(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const natType = this.#natType;
    let endpoint: string | undefined;
    let candidates: readonly string[] = [];
    if (o.gather !== undefined) ({ endpoint, candidates } = o.gather(this.#reflexive));
    else endpoint = this.#reflexive ?? o.fallbackEndpoint?.();
    this.#candidates = candidates;
    if (endpoint === undefined || signal.aborted) return;
    this.#summary = { endpoint, nat_type: natType };
    const key = `${endpoint} ${natType} ${candidates.join(' ')}`;
    if (key === this.#reported && this.#clock.now() - this.#reportedAt < this.#reportEveryMs) return;
    try {
      const req: EndpointRequest = { endpoint, nat_type: natType, reported_at: formatRfc3339(this.#clock.wallMs()), ...(o.gather !== undefined ? { candidates } : {}) };
      const res = await o.report(req, signal);
      if (key !== this.#reported) o.log.info(`endpoint ${endpoint} (${natType}) reported${o.gather !== undefined ? `, candidates ${candidates.join(' ') || '(none)'}` : ''}`);
      this.#reported = key;
      this.#reportedAt = this.#clock.now();
      this.#reportEveryMs = Math.max(10_000, Math.min(60_000, (res.stale_after - 30) * 1000));
      this.counters.reports++;
    } catch (err) {
      this.counters.reportFailures++;
      if (!signal.aborted) o.log.verbose(`endpoint report failed: ${(err as Error).message}`);
    }
  }

  /** Until `signal` aborts: a round at start, again every refresh period (or at once when the STUN
   *  servers changed), and the candidates re-read every poll period in between. */
  async run(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const pollMs = o.pollMs ?? o.refreshMs;
    while (!signal.aborted) {
      const stunDue = this.#clock.now() - this.#stunAt >= o.refreshMs || this.servers.join(',') !== this.#stunServers;
      if (stunDue) await this.round(signal);
      else await this.report(signal);
      const wait = this.counters.reports === 0 ? Math.min(pollMs, 10_000) : Math.min(pollMs, this.#reportEveryMs);
      await sleep(wait, signal).catch(() => undefined);
    }
  }
}
