// The policy engine: which peers a node sees, and the firewall rules of each project with a
// revision id and a fingerprint (hex SHA-256 of the canonical rules JSON) agents can compare.

import { createHash } from 'node:crypto';
import type { FirewallRule, Policy } from '../api/index.js';
import type { Db } from './database.js';
import { prepared } from './prepared.js';

/** Hex SHA-256 of the rules in canonical form (fixed key order, compact). */
export function rulesFingerprint(rules: readonly FirewallRule[]): string {
  const canonical = rules.map((r) => ({
    action: r.action,
    protocol: r.protocol,
    source_cidr: r.source_cidr,
    destination_cidr: r.destination_cidr,
    ports: r.ports === null ? null : { from: r.ports.from, to: r.ports.to },
  }));
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

/**
 * One rule passing every IPv4 packet between mesh nodes: what a demo or test that wants an open
 * mesh sets, since agents deny all mesh traffic until a policy allows it (docs/policy.md).
 */
export const ALLOW_ALL_MESH_RULES: readonly FirewallRule[] = [{ action: 'allow', protocol: 'any', source_cidr: '0.0.0.0/0', destination_cidr: '0.0.0.0/0', ports: null }];

/** The project's policy, or null when none was ever set ("not populated"). */
export function getPolicy(db: Db, projectId: string): Policy | null {
  const row = prepared(db, 'SELECT revision, fingerprint, rules FROM policies WHERE project_id = ?').get(projectId) as
    | { revision: number; fingerprint: string; rules: string }
    | undefined;
  if (row === undefined) return null;
  return { revision_id: String(row.revision), fingerprint: row.fingerprint, rules: JSON.parse(row.rules) as FirewallRule[] };
}

/** Stores new rules for a project; the revision goes up by one. Returns the new policy and whether
 *  it differs from the previous one (same fingerprint: no new revision, no event). */
export function putPolicy(db: Db, projectId: string, rules: readonly FirewallRule[], now: number): { policy: Policy; changed: boolean } {
  const fingerprint = rulesFingerprint(rules);
  const old = getPolicy(db, projectId);
  if (old !== null && old.fingerprint === fingerprint) return { policy: old, changed: false };
  const revision = old === null ? 1 : Number(old.revision_id) + 1;
  prepared(
    db,
    `INSERT INTO policies (project_id, revision, fingerprint, rules, updated_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (project_id) DO UPDATE SET revision = excluded.revision, fingerprint = excluded.fingerprint,
       rules = excluded.rules, updated_at = excluded.updated_at`,
  ).run(projectId, revision, fingerprint, JSON.stringify(rules), now);
  return { policy: { revision_id: String(revision), fingerprint, rules }, changed: true };
}

/** Node statuses whose holder stays in its peers' lists; offline nodes are dropped (plexd-api.md:
 *  "10 missed -> offline (peers drop it)"). */
export const VISIBLE_STATUSES: readonly string[] = ['online', 'unreachable'];

/** Visibility rule: nodes of one project see each other while not offline. */
export function canSee(viewer: { project_id: string; node_id: string }, peer: { project_id: string; node_id: string; status: string }): boolean {
  return viewer.project_id === peer.project_id && viewer.node_id !== peer.node_id && VISIBLE_STATUSES.includes(peer.status);
}
