// Everything NAT an agent runs next to its mesh interface (docs/nat.md), behind a few hooks in
// agent.ts: STUN both ways on the WireGuard port (src/nat/port-stun.ts), endpoint discovery and
// reporting with the endpoint candidates (nat-discovery.ts, candidates.ts; STUN with
// nat.stun_servers, else with the control plane's offer), the per-peer direct/relayed choice
// (relay-client.ts) fed by the path prober's choice among each peer's candidates (path-prober.ts),
// and in `mode: bridge` the relay (bridge-mode.ts).

import type { CryptoProvider } from '../core/crypto.js';
import { encodeNodeCredential } from '../api/credential.js';
import { decodeBase64, endpointOf } from '../api/fields.js';
import type { NatSummary, PeerInfo, StateResponse } from '../api/types.js';
import type { ControlClient } from '../control/api-client.js';
import { defaultCrypto, type Device } from '../device/device.js';
import type { Endpoint } from '../io/bind.js';
import type { Clock } from '../io/clock.js';
import type { Logger } from '../log/logger.js';
import { attachPortStun, type PortStun } from '../nat/port-stun.js';
import type { AgentConfig } from './config.js';
import { BridgeMode } from './bridge-mode.js';
import { CANDIDATE_POLL_MS, chooseCandidates, localCandidates, osInterfaces, type InterfaceTable } from './candidates.js';
import { formatEndpoint, sameEndpoint } from '../core/endpoint.js';
import { EndpointDiscovery } from './nat-discovery.js';
import { PathProber, type DirectKind } from './path-prober.js';
import { PathManager } from './relay-client.js';

/** What the services need of the agent. */
export interface NatServicesContext {
  readonly config: AgentConfig;
  readonly device: Device;
  readonly client: ControlClient;
  /** The current node id and nsk (they change on re-registration). */
  readonly auth: () => { nodeId: string; nsk: string };
  /** The STUN servers the control plane offers (register/state `stun_servers`). */
  readonly offeredStun: () => readonly string[];
  /** The mesh range (addresses inside it are never candidates). */
  readonly meshCidr: () => string;
  /** The interface table (tests); default os.networkInterfaces(). */
  readonly interfaces?: () => InterfaceTable;
  /** How often the candidates are re-read (ms); default CANDIDATE_POLL_MS. */
  readonly candidatePollMs?: number;
  /** Our WireGuard private key (base64): the path probes' keys derive from it. */
  readonly privateKey: () => string;
  /** Where endpoint discovery reads time (default the system clock). */
  readonly clock?: Clock;
  /** The path probes' crypto: the device's provider (default node:crypto). */
  readonly crypto?: CryptoProvider;
  readonly log: Logger;
}

/** A peer's path as `peers` shows it. */
export interface PeerPathView {
  /** Relayed, or direct on a probed LAN/public path; undefined: direct, not (yet) probed. */
  readonly kind: 'relayed' | DirectKind | undefined;
  /** RTT of the probed path (ms), when the WireGuard endpoint is the probed one. */
  readonly rttMs: number | undefined;
}

/** The status line for STUN when none is configured or offered. */
export const NO_STUN = 'no STUN server: local candidates only';

/** The NAT side of a running agent. */
export class NatServices {
  readonly port: PortStun;
  readonly discovery: EndpointDiscovery;
  readonly paths: PathManager;
  readonly bridge: BridgeMode | undefined;
  readonly #natEnabled: boolean;
  readonly #ctx: NatServicesContext;
  #prober: PathProber | undefined;
  /** The private key the prober was built with (rebuilt when a key rotation changes it). */
  #proberKey: string | undefined;

  private constructor(ctx: NatServicesContext, port: PortStun, discovery: EndpointDiscovery, paths: PathManager, bridge: BridgeMode | undefined, natEnabled: boolean) {
    this.#ctx = ctx;
    this.#natEnabled = natEnabled;
    this.port = port;
    this.discovery = discovery;
    this.paths = paths;
    this.bridge = bridge;
  }

  /** Attaches to the device and, in bridge mode, binds the relay (rejects with BindError). */
  static async start(ctx: NatServicesContext): Promise<NatServices> {
    const { config, device, log } = ctx;
    const port = attachPortStun(device);
    try {
      const { wireguard: wg, nat } = config;
      // bind_address when a specific address: the one local candidate (the socket listens nowhere else).
      const bound = (): string | undefined =>
        wg.bindAddress === undefined || wg.bindAddress === '0.0.0.0' || wg.bindAddress === '::' ? undefined : formatEndpoint({ address: wg.bindAddress, port: device.listenPort });
      const interfaces = ctx.interfaces ?? osInterfaces;
      const discovery = new EndpointDiscovery({
        client: port.client,
        // advertise_endpoint needs no STUN; nat.enabled: false turns it off.
        servers: () => (!nat.enabled || wg.advertiseEndpoint !== undefined ? [] : nat.stunServers.length > 0 ? nat.stunServers : ctx.offeredStun()),
        refreshMs: nat.refreshIntervalS * 1000,
        pollMs: ctx.candidatePollMs ?? CANDIDATE_POLL_MS,
        localPort: () => device.listenPort,
        report: (req, signal) => ctx.client.reportEndpoint(req, signal),
        gather: (reflexive) =>
          chooseCandidates({
            advertise: wg.advertiseEndpoint,
            bound: bound(),
            ...(nat.enabled
              ? { reflexive, local: localCandidates(interfaces(), { port: device.listenPort, meshInterface: wg.interfaceName, meshCidr: ctx.meshCidr(), allow: nat.candidateInterfaces }) }
              : {}),
          }),
        log,
        ...(ctx.clock ? { clock: ctx.clock } : {}),
      });
      const paths = new PathManager({
        device,
        client: port.client,
        nodeId: () => ctx.auth().nodeId,
        reportPaths: async (list) => {
          const { nodeId, nsk } = ctx.auth();
          const bearer = encodeNodeCredential(nodeId, decodeBase64(nsk, 32) ?? new Uint8Array(32));
          await ctx.client.http.json('POST', `v1/nodes/${encodeURIComponent(nodeId)}/peer-paths`, { body: { paths: list }, bearer });
        },
        log,
      });
      const bridge = config.mode === 'bridge' ? await BridgeMode.start(config.bridge.relayListenPort, config.wireguard.bindAddress, log, { maxSessions: config.bridge.maxRelaySessions, ttlMs: config.bridge.sessionTtlS * 1000 }, config.bridge.ingress) : undefined;
      paths.start();
      return new NatServices(ctx, port, discovery, paths, bridge, nat.enabled);
    } catch (err) {
      port.close();
      throw err;
    }
  }

  /** The discovery and reporting loop, until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await this.discovery.run(signal);
  }

  /** The heartbeat's nat_summary. */
  get summary(): NatSummary {
    return this.discovery.summary;
  }

  /** After a state was applied: relay sessions (bridge) and peer paths. */
  async onState(state: Pick<StateResponse, 'peers' | 'bridge'>): Promise<void> {
    this.bridge?.reconcile(state.bridge);
    await this.paths.applyState(state);
    this.#probe(state.peers);
  }

  // Hands every peer's candidates (and its reported endpoint; not its relay) to the prober.
  // nat.enabled: false turns discovery off, path probing included: no probe is sent or answered.
  #probe(peers: readonly PeerInfo[]): void {
    if (!this.#natEnabled) return;
    const key = this.#ctx.privateKey();
    if (key !== this.#proberKey) {
      this.#prober?.close();
      const raw = decodeBase64(key, 32);
      this.#proberKey = key;
      this.#prober =
        raw === undefined
          ? undefined
          : new PathProber({ socket: this.#ctx.device, crypto: this.#ctx.crypto ?? defaultCrypto(), privateKey: raw, onChange: (pub, ep) => void this.paths.setProbedDirect(pub, ep), log: this.#ctx.log });
      raw?.fill(0);
    }
    const prober = this.#prober;
    if (prober === undefined) return;
    const me = this.#ctx.auth().nodeId;
    const keep = new Set<string>();
    for (const info of peers) {
      if (info.node_id === me) continue;
      keep.add(info.public_key);
      const relay = endpointOf(info.fallback_endpoint);
      const list: Endpoint[] = [];
      for (const text of [...(info.candidates ?? []), info.endpoint]) {
        const ep = endpointOf(text);
        if (ep !== undefined && (relay === undefined || !sameEndpoint(ep, relay))) list.push(ep);
      }
      prober.setPeer(info.public_key, list);
    }
    prober.retain(keep);
  }

  /** A peer's path for `peers` (base64 key; `endpoint`: the WireGuard endpoint it has now). */
  peerPath(publicKey: string, endpoint: Endpoint | null): PeerPathView {
    if (this.paths.pathOf(publicKey) === 'relayed') return { kind: 'relayed', rttMs: undefined };
    const probed = this.#prober?.pathOf(publicKey);
    if (probed?.endpoint === undefined || endpoint === null || !sameEndpoint(probed.endpoint, endpoint)) return { kind: undefined, rttMs: undefined };
    return { kind: probed.kind, rttMs: probed.rttMs };
  }

  /** The node API's NAT view. */
  status(): Record<string, unknown> {
    return {
      nat: this.discovery.last === undefined ? null : { nat_type: this.discovery.last.natType, behind_nat: this.discovery.last.behindNat ?? null, ...this.summary },
      endpoint: this.summary.endpoint ?? null,
      candidates: this.discovery.candidates,
      stun_servers: !this.#natEnabled ? 'off (nat.enabled: false)' : this.discovery.servers.length === 0 ? NO_STUN : this.discovery.servers,
      stun: this.port.client.counters,
      paths: this.paths.counters,
      probes: this.#prober === undefined ? null : { ...this.#prober.counters, drops: this.#prober.drops() },
      bridge: this.bridge?.snapshot() ?? null,
    };
  }

  /** Stops the monitor, the relay and the port's STUN. */
  close(): void {
    this.paths.close();
    this.#prober?.close();
    this.bridge?.close();
    this.port.close();
  }
}
