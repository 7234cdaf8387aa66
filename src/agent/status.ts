// The node API's documents (docs/agent.md "Configuration", node_api.socket_path): `status`
// (identity, readiness, delivery mode, last heartbeat and reconcile, policy, envelope and event
// counters, NAT, Kubernetes and its audit log) and `peers` (the control plane's view of each peer
// joined with the device's typed peer query). Built from the
// agent's state at the request; times are wall-clock milliseconds the agent read from its Clock.

import { encodeBase64 } from '../api/fields.js';
import type { PeerInfo } from '../api/types.js';
import type { DeliveryMode, EventStream } from '../control/event-stream.js';
import type { EnvelopeVerifier } from '../control/envelopes.js';
import { formatEndpoint } from '../core/endpoint.js';
import type { AuditLogReader } from './audit-log.js';
import type { AgentConfig } from './config.js';
import type { KubernetesEnvironment } from './kubernetes.js';
import type { MeshInterface } from './mesh-interface.js';
import type { NatServices } from './nat-services.js';
import type { PathProblems } from './path-problems.js';
import type { PolicyEnforcer } from './policy-enforcer.js';
import type { Identity } from './store.js';

/** What the documents are made of: the agent's state at the moment of the request. */
export interface StatusInputs {
  readonly identity: Identity;
  readonly config: AgentConfig;
  readonly iface: MeshInterface;
  /** Our public key (base64). */
  readonly publicKey: string;
  readonly events: EventStream;
  readonly verifier: EnvelopeVerifier;
  readonly policy: PolicyEnforcer;
  readonly nat: NatServices | undefined;
  readonly pathProblems: PathProblems;
  /** The peers of the state applied last (the control plane's view). */
  readonly peers: readonly PeerInfo[];
  readonly notReadyReason: string | undefined;
  /** Wall-clock ms of the last successful heartbeat / reconcile; undefined before the first. */
  readonly lastHeartbeatMs: number | undefined;
  readonly lastReconcileMs: number | undefined;
  readonly counters: Readonly<Record<string, number>>;
  /** Set in a Kubernetes pod: what it knows of itself and the audit log it follows. */
  readonly kubernetes?: { readonly env: KubernetesEnvironment; readonly audit: Pick<AuditLogReader, 'status'> } | undefined;
}

/** RFC 3339 text of a wall-clock time in ms, or null for none. */
function isoOrNull(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

/** The `status` document of the node API. */
export function statusDocument(s: StatusInputs): Record<string, unknown> {
  return {
    node_id: s.identity.node_id,
    mesh_ip: s.identity.mesh_ip,
    domain_mesh_cidr: s.identity.domain_mesh_cidr,
    mode: s.config.mode,
    interface: s.iface.name,
    listen_port: s.iface.device.listenPort,
    public_key: s.publicKey,
    control_plane: s.config.api.baseUrl,
    delivery_mode: s.events.mode satisfies DeliveryMode,
    event_stream_connected: s.events.connected,
    ready: s.notReadyReason === undefined,
    not_ready_reason: s.notReadyReason ?? null,
    path_problems: s.peers.flatMap((p) => {
      const problem = s.pathProblems.problemOf(p.node_id);
      return problem === undefined ? [] : [{ node_id: p.node_id, mesh_ip: p.mesh_ip, path_problem: problem }];
    }),
    last_heartbeat: isoOrNull(s.lastHeartbeatMs),
    last_reconcile: isoOrNull(s.lastReconcileMs),
    peers: s.peers.length,
    policy: { ...s.policy.report(), ...s.policy.counters },
    envelopes: { accepted: s.verifier.accepted, last_seq: s.verifier.highWater, dropped: s.verifier.drops },
    counters: { ...s.counters, ...s.events.counters },
    nat: s.nat?.status() ?? null,
    kubernetes: s.kubernetes === undefined ? null : { in_cluster: true, ...s.kubernetes.env, audit_log: s.kubernetes.audit.status() },
  };
}

/**
 * The `peers` document of the node API: the control plane's view joined with the device's. Reads
 * the device through its typed peer query (no private key copied, no text) and encodes only the
 * public key it prints.
 */
export function peersDocument(s: Pick<StatusInputs, 'iface' | 'nat' | 'peers' | 'pathProblems'>): Array<Record<string, unknown>> {
  const byKey = new Map(s.peers.map((p) => [p.public_key, p]));
  const out: Array<Record<string, unknown>> = [];
  for (const p of s.iface.device.peers()) {
    const key = encodeBase64(p.publicKey);
    const info = byKey.get(key);
    const path = s.nat?.peerPath(key, p.endpoint);
    out.push({
      node_id: info?.node_id ?? null,
      mesh_ip: info?.mesh_ip ?? null,
      public_key: key,
      endpoint: p.endpoint === null ? null : formatEndpoint(p.endpoint),
      last_handshake: p.lastHandshakeTimeSec === 0 ? null : new Date(p.lastHandshakeTimeSec * 1000).toISOString(),
      path: s.nat?.paths.pathOf(key) ?? 'direct',
      // direct-lan / direct-public (the probed path is the endpoint in use) / relayed / null.
      path_kind: path?.kind ?? null,
      rtt_ms: path?.rttMs === undefined ? null : Math.round(path.rttMs * 10) / 10,
      candidates: info?.candidates ?? [],
      path_problem: info === undefined ? null : (s.pathProblems.problemOf(info.node_id) ?? null),
      rx_bytes: Number(p.rxBytes),
      tx_bytes: Number(p.txBytes),
    });
  }
  return out;
}
