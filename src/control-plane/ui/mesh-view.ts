// What the dashboard shows of the mesh: nodes and the path between each pair the policy connects.
// The control plane does not see handshakes, so a path is derived from what it knows: "down" when
// either end is not online (heartbeat liveness), "relayed" when a relay session joins the pair
// (relay-assigner.ts), else "direct" (both ends heartbeat and no agent reported the direct path
// dead; approximate: it is what agents should be using, not a measured handshake).

import type { ControlPlaneStore, NodeRow } from '../store.js';
import type { RelayAssigner } from '../relay-assigner.js';

/** Most nodes whose pairs are computed (the graph is O(nodes^2)); beyond, edges are left out. */
export const MAX_GRAPH_NODES = 300;

/** A pair's path. */
export type PathKind = 'direct' | 'relayed' | 'down';

/** One node as the dashboard shows it. */
export interface ViewNode {
  readonly id: string;
  readonly project: string;
  readonly name: string;
  readonly mode: string;
  readonly meshIp: string;
  readonly status: string;
  readonly endpoint: string | null;
  readonly candidates: readonly string[];
  readonly natType: string | null;
  readonly version: string | null;
  /** Wall ms of the last heartbeat. */
  readonly lastHeartbeat: number;
}

/** One pair the policy connects. `via`: the relaying bridge's node id. */
export interface ViewEdge {
  readonly a: string;
  readonly b: string;
  readonly path: PathKind;
  readonly via?: string;
}

/** The mesh at one moment. `truncated`: more than MAX_GRAPH_NODES nodes, edges left out. */
export interface MeshView {
  readonly nodes: readonly ViewNode[];
  readonly edges: readonly ViewEdge[];
  readonly truncated: boolean;
}

function candidatesOf(text: string | null): string[] {
  if (text === null) return [];
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v.filter((c): c is string => typeof c === 'string') : [];
  } catch {
    return [];
  }
}

function viewNode(n: NodeRow): ViewNode {
  return {
    id: n.node_id,
    project: n.project_id,
    name: n.resource_handle,
    mode: n.mode,
    meshIp: n.mesh_ip,
    status: n.status,
    endpoint: n.endpoint,
    candidates: candidatesOf(n.candidates),
    natType: n.nat_type,
    version: n.binary_version,
    lastHeartbeat: n.last_heartbeat_at,
  };
}

/** The current mesh: every node, and a path for each pair of a project that sees each other. */
export function meshView(store: ControlPlaneStore, relay: RelayAssigner | undefined): MeshView {
  const rows = store.listNodes();
  const nodes = rows.map(viewNode);
  if (rows.length > MAX_GRAPH_NODES) return { nodes, edges: [], truncated: true };
  const relayed = new Map<string, string>();
  for (const s of relay?.sessions() ?? []) relayed.set(s.a < s.b ? `${s.a}|${s.b}` : `${s.b}|${s.a}`, s.bridgeId);
  const edges: ViewEdge[] = [];
  const byProject = new Map<string, NodeRow[]>();
  for (const n of rows) byProject.set(n.project_id, [...(byProject.get(n.project_id) ?? []), n]);
  for (const [project, members] of byProject) {
    const model = store.visibility(project);
    for (let i = 0; i < members.length; i++) {
      for (let j = i + 1; j < members.length; j++) {
        const [x, y] = members[i]!.node_id < members[j]!.node_id ? [members[i]!, members[j]!] : [members[j]!, members[i]!];
        if (!model.canSee(x.node_id, y.node_id) && !model.canSee(y.node_id, x.node_id)) continue;
        const via = relayed.get(`${x.node_id}|${y.node_id}`);
        const path: PathKind = x.status !== 'online' || y.status !== 'online' ? 'down' : via !== undefined ? 'relayed' : 'direct';
        edges.push({ a: x.node_id, b: y.node_id, path, ...(via === undefined || path === 'down' ? {} : { via }) });
      }
    }
  }
  return { nodes, edges, truncated: false };
}
