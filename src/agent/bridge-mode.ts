// Bridge mode (plexd config `mode: bridge`): the agent runs the relay (src/bridge) on
// bridge.relay_listen_port (51821) next to its mesh interface and makes the relay's sessions equal
// to the state pull's bridge.relay.sessions on every reconcile (relay_session_assigned / revoked and
// bridge_config_updated all lead to a reconcile). A `null` bridge block means "not populated" and
// leaves the sessions alone. A session with `relay_port` gets its own UDP socket on that port (the
// relay opens it on add and closes it on revocation or expiry; docs/nat.md "One relay port per
// session"); the control plane picks the ports from its --relay-ports range (default 51900-51999, clear of
// the access side's 51822 and 51823-51832).
// With bridge.ingress_enabled the state's bridge.ingress block also goes to the public ingress
// (bridge-ingress.ts; docs/bridge.md "Public ingress").

import type { BridgeState } from '../api/types.js';
import { createRelay, type Relay } from '../bridge/relay.js';
import type { Logger } from '../log/logger.js';
import { BridgeIngress } from './bridge-ingress.js';
import type { IngressSettings } from './config.js';

/** The relay of a bridge agent. */
export class BridgeMode {
  readonly relay: Relay;
  /** Public ingress (bridge.ingress_enabled; src/agent/bridge-ingress.ts). */
  readonly ingress: BridgeIngress | undefined;
  readonly #log: Logger;

  private constructor(relay: Relay, log: Logger, ingress: BridgeIngress | undefined) {
    this.relay = relay;
    this.#log = log;
    this.ingress = ingress;
  }

  /**
   * Binds the relay on `address`:`port` (address default 0.0.0.0); `limits`: bridge.max_relay_sessions
   * and bridge.session_ttl. Rejects with BindError.
   */
  static async start(port: number, address: string | undefined, log: Logger, limits: { readonly maxSessions?: number; readonly ttlMs?: number } = {}, ingress?: IngressSettings): Promise<BridgeMode> {
    const relay = await createRelay({ listen: { address: address ?? '0.0.0.0', port }, ...limits });
    log.info(`bridge: relay listening on ${relay.address.address}:${relay.address.port}`);
    try {
      return new BridgeMode(relay, log, ingress?.enabled === true ? BridgeIngress.create(ingress, log.child('(ingress) ')) : undefined);
    } catch (err) {
      relay.close();
      throw err;
    }
  }

  /** Applies a state's bridge block; logs sessions refused (full, invalid, expired). */
  reconcile(block: BridgeState | null): void {
    if (block !== null) void this.ingress?.reconcile(block.ingress);
    if (block === null || block.relay === null) return;
    const failed = this.relay.reconcile(block.relay.sessions);
    for (const [id, why] of failed) this.#log.error(`bridge: relay session ${id} refused: ${why}`);
    this.#log.verbose(`bridge: ${this.relay.sessions().length} relay sessions`);
    void this.relay.settled().then((portFailures) => {
      for (const [id, why] of portFailures) this.#log.error(`bridge: relay session ${id}: its port could not be opened: ${why}`);
    });
  }

  /** The node API view: sessions and counters. */
  snapshot(): Record<string, unknown> {
    return {
      listen: `${this.relay.address.address}:${this.relay.address.port}`,
      sessions: this.relay.sessions().map((s) => ({ session_id: s.sessionId, peer_a_id: s.peerAId, peer_b_id: s.peerBId, relay_port: s.relayPort ?? null, authenticated: s.authenticated, packets: s.packets, bytes: s.bytes })),
      counters: this.relay.counters,
      ingress: this.ingress?.snapshot() ?? null,
    };
  }

  /** Closes the relay socket. */
  close(): void {
    this.ingress?.close();
    this.relay.close();
  }
}
