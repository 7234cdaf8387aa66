// The policy engine: the firewall rules of each project with a revision id and a fingerprint (hex
// SHA-256 of the canonical rules JSON) agents can compare, their parsing and checking against the
// project's nodes. Which peers a node sees follows from the rules (visibility.ts).

import { createHash } from 'node:crypto';
import { parseRules, type FieldError, type FirewallRule, type Policy } from '../api/index.js';
import type { Db } from './database.js';
import { formatIpv4 } from './mesh-ip.js';
import { prepared } from './prepared.js';
import { parseSelector, sideMatches, sideOf, type PolicyRule, type Visibility, type VisNode } from './visibility.js';

/** A rule in canonical form (fixed key order; the group fields only when it names one, so
 *  group-free rules keep the fingerprint they always had). */
function canonical(r: PolicyRule): object {
  return {
    action: r.action,
    protocol: r.protocol,
    source_cidr: r.source_cidr,
    destination_cidr: r.destination_cidr,
    ports: r.ports === null ? null : { from: r.ports.from, to: r.ports.to },
    ...(r.source_group === undefined ? {} : { source_group: r.source_group }),
    ...(r.destination_group === undefined ? {} : { destination_group: r.destination_group }),
  };
}

/** One rule as compact canonical JSON: equal strings, the same rule. */
export function ruleKey(r: PolicyRule): string {
  return JSON.stringify(canonical(r));
}

/** Hex SHA-256 of the rules in canonical form (compact JSON of the list). */
export function rulesFingerprint(rules: readonly PolicyRule[]): string {
  return createHash('sha256').update(JSON.stringify(rules.map(canonical))).digest('hex');
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
 * no node or pending token carries, an allow rule naming one address on both sides: a node with
 * itself) and
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
    // One address on both sides: the only pair is a node with itself, never a peer.
    const src = sideOf(r, 'source');
    const dst = sideOf(r, 'destination');
    if (r.action === 'allow' && src.kind === 'cidr' && dst.kind === 'cidr' && src.lo === src.hi && dst.lo === dst.hi && dst.lo === src.lo) {
      const holder = model.membersOf(src)[0];
      errors.push(`rules[${i}]: names ${formatIpv4(src.lo)} on both sides${holder === undefined ? '' : ` (node ${holder})`}: a node cannot be its own peer`);
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

/** One rule in a line of text, as `policy explain` names it. */
export function describeRule(r: PolicyRule, index: number): string {
  const src = r.source_group === undefined ? r.source_cidr : `group ${r.source_group}`;
  const dst = r.destination_group === undefined ? r.destination_cidr : `group ${r.destination_group}`;
  const ports = r.ports === null ? '' : r.ports.from === r.ports.to ? ` port ${r.ports.from}` : ` ports ${r.ports.from}-${r.ports.to}`;
  return `rules[${index}] ${r.action} ${r.protocol}${ports} ${src} -> ${dst}`;
}

/**
 * Why traffic from `src` to `dst` (nodes of `model`) is allowed or denied, and whether they see
 * each other (`policy explain`): the first rule matching (first match wins; without a protocol
 * any rule of the pair matches, without a port any port range), or the default deny.
 */
export function explainPolicy(rules: readonly PolicyRule[] | undefined, model: Visibility, src: VisNode, dst: VisNode, protocol?: string, port?: number): string[] {
  const lines: string[] = [];
  if (rules === undefined) return ['denied: no policy is set (deny by default); the nodes do not see each other'];
  const first = rules.findIndex((r) =>
    sideMatches(sideOf(r, 'source'), src) && sideMatches(sideOf(r, 'destination'), dst)
    && (protocol === undefined || r.protocol === 'any' || r.protocol === protocol)
    && (port === undefined || r.ports === null || (port >= r.ports.from && port <= r.ports.to)));
  const what = `${protocol ?? 'traffic'}${port === undefined ? '' : `/${port}`}`;
  if (first < 0) lines.push(`denied: no rule matches ${what} from ${src.id} to ${dst.id} (default deny)`);
  else lines.push(`${rules[first]!.action === 'allow' ? 'allowed' : 'denied'}: ${what} from ${src.id} to ${dst.id} matches ${describeRule(rules[first]!, first)} first`);
  const connecting = rules.findIndex((r) => {
    if (r.action !== 'allow') return false;
    const [s, d] = [sideOf(r, 'source'), sideOf(r, 'destination')];
    return (sideMatches(s, src) && sideMatches(d, dst)) || (sideMatches(s, dst) && sideMatches(d, src));
  });
  lines.push(connecting < 0 || src.id === dst.id
    ? 'visibility: they do not see each other (no allow rule between them in either direction)'
    : `visibility: they see each other through ${describeRule(rules[connecting]!, connecting)}`);
  return lines;
}
