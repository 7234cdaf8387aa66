// The agent's local HTTP routes (docs/agent.md "Configuration": health.listen, node_api.socket_path;
// "Readiness and path problems"): /healthz and /readyz on the health listener; /v1/status,
// /v1/peers and /v1/policies on the node API's Unix socket.

import type { DeliveryMode } from '../control/event-stream.js';
import type { Routes } from './local-http.js';
import type { PolicyEnforcer } from './policy-enforcer.js';

/** What the routes read from the agent. */
export interface RoutedAgent {
  readonly iface: { readonly device: { readonly closed: boolean } };
  readonly policy: PolicyEnforcer;
  readonly events: { readonly mode: DeliveryMode };
  readonly notReadyReason: string | undefined;
  status(): Record<string, unknown>;
  peers(): Array<Record<string, unknown>>;
}

/** /healthz (200 while the device is open, else 503) and /readyz (200 when ready, else 503 and why). */
export function healthRoutes(agent: RoutedAgent): Routes {
  return {
    '/healthz': () => {
      const closed = agent.iface.device.closed;
      return [closed ? 503 : 200, { status: closed ? 'down' : 'ok', details: { policy: agent.policy.snapshot() } }] as const;
    },
    '/readyz': () => {
      const reason = agent.notReadyReason;
      return [reason === undefined ? 200 : 503, { ready: reason === undefined, ...(reason === undefined ? {} : { reason }), delivery_mode: agent.events.mode }] as const;
    },
  };
}

/** The node API's documents: status, peers, and the policy in force. */
export function nodeApiRoutes(agent: RoutedAgent): Routes {
  return {
    '/v1/status': () => [200, agent.status()] as const,
    '/v1/peers': () => [200, agent.peers()] as const,
    '/v1/policies': () => [200, agent.policy.snapshot()] as const,
  };
}
