// Per-rule counters reported by agents (heartbeat `policy.rule_hits`, ours): each node's last
// report, kept per node (migration 13) and read by the dashboard's policy page. Indexes are of
// the rules the node enforces (groups compiled, ingress rules added: store.policyFor), so they
// map onto the project's rules only when the node's fingerprint is the project policy's.

import type { HeartbeatPolicyReport } from '../../api/index.js';
import type { Db } from '../database.js';
import { prepared } from '../prepared.js';

/** One node's last report. `hits[i]`: [packets, bytes] of compiled rule i. */
export interface NodeRuleHits {
  readonly node_id: string;
  readonly revision_id: string | null;
  readonly fingerprint: string | null;
  readonly hits: ReadonlyArray<readonly [number, number]>;
  readonly reported_at: number;
}

/** Stores a heartbeat's report for `nodeId` (replacing its previous one); no-op without rule_hits. */
export function recordRuleHits(db: Db, nodeId: string, report: HeartbeatPolicyReport, now: number): void {
  if (report.rule_hits === undefined) return;
  const hits = JSON.stringify(report.rule_hits.map((h) => [h.packets, h.bytes]));
  prepared(db, 'INSERT INTO policy_hits (node_id, revision_id, fingerprint, hits, reported_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (node_id) DO UPDATE SET revision_id = excluded.revision_id, fingerprint = excluded.fingerprint, hits = excluded.hits, reported_at = excluded.reported_at').run(nodeId, report.revision_id, report.fingerprint, hits, now);
}

/** Every node's last report. */
export function ruleHits(db: Db): NodeRuleHits[] {
  return (prepared(db, 'SELECT node_id, revision_id, fingerprint, hits, reported_at FROM policy_hits ORDER BY node_id').all() as Array<Omit<NodeRuleHits, 'hits'> & { hits: string }>).map((r) => ({
    ...r,
    hits: JSON.parse(r.hits) as Array<[number, number]>,
  }));
}
