// The policy engine: the firewall rules of each project with a revision id and a fingerprint (hex
// SHA-256 of the canonical rules JSON) agents can compare, their parsing and checking against the
// project's nodes. Which peers a node sees follows from the rules (visibility.ts).

import { createHash } from 'node:crypto';
import { parseRules, type FieldError, type FirewallRule, type Policy } from '../api/index.js';
import type { Db } from './database.js';
import { formatIpv4 } from './mesh-ip.js';
import { prepared } from './prepared.js';
import { parseSelector, sideOf, type PolicyRule, type Visibility } from './visibility.js';

/** Hex SHA-256 of the rules in canonical form (fixed key order, compact; the group fields only
 *  when a rule names one, so group-free rules keep the fingerprint they always had). */
export function rulesFingerprint(rules: readonly PolicyRule[]): string {
  const canonical = rules.map((r) => ({
    action: r.action,
    protocol: r.protocol,
    source_cidr: r.source_cidr,
    destination_cidr: r.destination_cidr,
    ports: r.ports === null ? null : { from: r.ports.from, to: r.ports.to },
    ...(r.source_group === undefined ? {} : { source_group: r.source_group }),
    ...(r.destination_group === undefined ? {} : { destination_group: r.destination_group }),
  }));
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

/**
 * Parses a policy file (a rule list, or `{rules: [...]}`): upstream's rule shape plus
 * `source_group` / `destination_group` label selectors (`key=value[,key=value]`), each in place
 * of the CIDR on its side. Returns the rules or every field problem.
 */
export function parsePolicyRules(body: unknown): { ok: true; value: PolicyRule[] } | { ok: false; errors: FieldError[] } {
  const base = parseRules(body);
  const raw = (Array.isArray(body) ? body : (body as { rules?: unknown } | null)?.rules) as unknown;
  const errors: FieldError[] = base.ok ? [] : [...base.errors];
  const out: PolicyRule[] = [];
  if (!Array.isArray(raw)) return base.ok ? base : { ok: false, errors };
  raw.forEach((entry, i) => {
    const e = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    const groups: { source_group?: string; destination_group?: string } = {};
    for (const side of ['source', 'destination'] as const) {
      const g = e[`${side}_group`];
      if (g === undefined) continue;
      const field = `rules[${i}].${side}_group`;
      if (typeof g !== 'string') {
        errors.push({ field, message: 'expected a label selector string key=value[,key=value...]' });
        continue;
      }
      if (e[`${side}_cidr`] !== undefined) errors.push({ field, message: `expected either ${side}_cidr or ${side}_group, got both` });
      try {
        parseSelector(g);
        groups[`${side}_group`] = g;
      } catch (err) {
        errors.push({ field, message: (err as Error).message });
      }
    }
    if (base.ok) out.push({ ...base.value[i]!, ...groups });
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: out };
}

/**
 * What is wrong with `rules` for the project `model` describes: errors (a group naming a label key
 * no node or pending token carries, an allow rule whose only pair is one node with itself) and
 * warnings (a group matching no node yet). `knownKeys`: label keys of nodes and unused tokens.
 */
export function checkPolicy(rules: readonly PolicyRule[], model: Visibility, knownKeys: ReadonlySet<string>): { errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  rules.forEach((r, i) => {
    for (const which of ['source', 'destination'] as const) {
      const group = which === 'source' ? r.source_group : r.destination_group;
      if (group === undefined) continue;
      const side = sideOf(r, which);
      if (side.kind !== 'group') continue;
      const unknown = side.selector.filter(([k]) => !knownKeys.has(k)).map(([k]) => k);
      if (unknown.length > 0) errors.push(`rules[${i}].${which}_group: unknown group ${JSON.stringify(group)}: no node or token carries label ${unknown.join(', ')}`);
      else if (model.membersOf(side).length === 0) warnings.push(`rules[${i}].${which}_group: ${JSON.stringify(group)} matches no node yet`);
    }
    if (r.action !== 'allow') return;
    const src = model.membersOf(sideOf(r, 'source'));
    const dst = model.membersOf(sideOf(r, 'destination'));
    if (src.length === 1 && dst.length === 1 && src[0] === dst[0]) {
      errors.push(`rules[${i}]: lets node ${src[0]} (${formatIpv4(model.node(src[0]!)!.ip)}) see only itself`);
    }
  });
  return { errors, warnings };
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
  return { revision_id: String(row.revision), fingerprint: row.fingerprint, rules: JSON.parse(row.rules) as PolicyRule[] };
}

/** Stores new rules for a project; the revision goes up by one. Returns the new policy and whether
 *  it differs from the previous one (same fingerprint: no new revision, no event). */
export function putPolicy(db: Db, projectId: string, rules: readonly PolicyRule[], now: number): { policy: Policy; changed: boolean } {
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
