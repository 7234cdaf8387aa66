// Everything NAT an agent runs next to its mesh interface (issue 6), behind a few hooks in
// agent.ts: STUN both ways on the WireGuard port (src/nat/port-stun.ts), endpoint discovery and
// reporting (nat-discovery.ts) when nat.stun_servers is set, the per-peer direct/relayed choice
// (relay-client.ts), and in `mode: bridge` the relay (bridge-mode.ts).

import { encodeNodeCredential } from '../api/credential.js';
import { decodeBase64 } from '../api/fields.js';
import type { NatSummary, StateResponse } from '../api/types.js';
import type { ControlClient } from '../control/api-client.js';
import type { Device } from '../device/device.js';
import type { Logger } from '../log/logger.js';
import { attachPortStun, type PortStun } from '../nat/port-stun.js';
import type { AgentConfig } from './config.js';
import { BridgeMode } from './bridge-mode.js';
import { EndpointDiscovery } from './nat-discovery.js';
import { PathManager } from './relay-client.js';

/** What the services need of the agent. */
export interface NatServicesContext {
  readonly config: AgentConfig;
  readonly device: Device;
  readonly client: ControlClient;
  /** The current node id and nsk (they change on re-registration). */
  readonly auth: () => { nodeId: string; nsk: string };
  /** The endpoint to report when discovery finds none (bind_address), if any. */
  readonly fallbackEndpoint: () => string | undefined;
  readonly log: Logger;
}

/** The NAT side of a running agent. */
export class NatServices {
  readonly port: PortStun;
  readonly discovery: EndpointDiscovery | undefined;
  readonly paths: PathManager;
  readonly bridge: BridgeMode | undefined;

  private constructor(port: PortStun, discovery: EndpointDiscovery | undefined, paths: PathManager, bridge: BridgeMode | undefined) {
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
      const discovery =
        config.nat.stunServers.length === 0
          ? undefined
          : new EndpointDiscovery({
              client: port.client,
              servers: config.nat.stunServers,
              refreshMs: config.nat.refreshIntervalS * 1000,
              localPort: () => device.listenPort,
              report: (req, signal) => ctx.client.reportEndpoint(req, signal),
              fallbackEndpoint: ctx.fallbackEndpoint,
              log,
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
      const bridge = config.mode === 'bridge' ? await BridgeMode.start(config.bridge.relayListenPort, config.wireguard.bindAddress, log, { maxSessions: config.bridge.maxRelaySessions, ttlMs: config.bridge.sessionTtlS * 1000 }) : undefined;
      paths.start();
      return new NatServices(port, discovery, paths, bridge);
    } catch (err) {
      port.close();
      throw err;
    }
  }

  /** The discovery loop (resolves at once without STUN servers). */
  async run(signal: AbortSignal): Promise<void> {
    await this.discovery?.run(signal);
  }

  /** True when discovery reports the endpoint (the agent's bind_address loop stands down). */
  get discovers(): boolean {
    return this.discovery !== undefined;
  }

  /** The heartbeat's nat_summary. */
  get summary(): NatSummary {
    return this.discovery?.summary ?? {};
  }

  /** After a state was applied: relay sessions (bridge) and peer paths. */
  async onState(state: Pick<StateResponse, 'peers' | 'bridge'>): Promise<void> {
    this.bridge?.reconcile(state.bridge);
    await this.paths.applyState(state);
  }

  /** The node API's NAT view. */
  status(): Record<string, unknown> {
    return {
      nat: this.discovery?.last === undefined ? null : { nat_type: this.discovery.last.natType, behind_nat: this.discovery.last.behindNat ?? null, ...this.summary },
      stun: this.port.client.counters,
      paths: this.paths.counters,
      bridge: this.bridge?.snapshot() ?? null,
    };
  }

  /** Stops the monitor, the relay and the port's STUN. */
  close(): void {
    this.paths.close();
    this.bridge?.close();
    this.port.close();
  }
}
