// Node state and secrets on the control plane (docs/operations.md "Node state and secrets";
// plexd-api.md "Node API"): secrets per node or per project, every version kept, sealed at rest
// under the database's secrets key (secrets.ts) and served to a node re-sealed under its own node
// secret key (NSK, from its bearer credential: the NSK itself is never stored); a node's metadata
// and data (set by the operator, served in the state pull's `state` block) and its reports (PUT
// and DELETE by the node, listed by the operator).

import { createHash } from 'node:crypto';
import { sealSecretEnvelope } from '../api/secret-envelope.js';
import { formatRfc3339 } from '../api/fields.js';
import { MAX_REPORT_VALUE_BYTES, MAX_STATE_VALUE_BYTES, SECRET_KEY_PATTERN, STATE_KEY_PATTERN, type NodeStateBlock, type NodeStateReportRequest, type NodeStateReportResponse, type StateEntry } from '../api/types.js';
import type { Db } from './database.js';
import { ControlPlaneError } from './errors.js';
import { prepared } from './prepared.js';
import type { ControlPlaneStore, NodeRow } from './store.js';

/** Owner of a project-wide secret. */
const PROJECT_OWNER = 'project:';

/** A secret's owner: one node, or every node of a project. */
export type SecretScope = { readonly node: string } | { readonly project: string };

/** One secret as listed: never its value. */
export interface SecretInfo {
  /** Node id, or "project:ID". */
  readonly owner: string;
  readonly name: string;
  /** The current (highest) version. */
  readonly version: number;
  readonly updated_at: string;
}

/** The buckets an operator sets; reports come from the node. */
export type OperatorBucket = 'metadata' | 'data';

function secretPurpose(owner: string, name: string, version: number): string {
  return `node secret ${owner} ${name} v${version}`;
}

/** Throws validation_failed unless `name` is a secret name. */
export function checkSecretName(name: string): string {
  if (!SECRET_KEY_PATTERN.test(name)) throw new ControlPlaneError('validation_failed', `secret name: expected ${SECRET_KEY_PATTERN.source}, got ${JSON.stringify(name.slice(0, 80))}`);
  return name;
}

function ownerOf(store: ControlPlaneStore, scope: SecretScope): { owner: string; projectId: string } {
  if ('node' in scope) {
    const node = store.node(scope.node.toLowerCase());
    if (node === undefined) throw new ControlPlaneError('node_not_found', `no node ${scope.node}`);
    return { owner: node.node_id, projectId: node.project_id };
  }
  if (prepared(store.db, 'SELECT 1 FROM projects WHERE id = ?').get(scope.project) === undefined) throw new ControlPlaneError('project_not_found', `no project ${scope.project}`);
  return { owner: PROJECT_OWNER + scope.project, projectId: scope.project };
}

/** Stores `value` as the next version of secret `name` of `scope`; its node (or every node of the
 *  project) gets node_state_updated. Throws ControlPlaneError for a bad name, an empty or
 *  oversized value, or an unknown node or project. */
export function setSecret(store: ControlPlaneStore, scope: SecretScope, name: string, value: Uint8Array): SecretInfo {
  checkSecretName(name);
  if (value.length === 0 || value.length > MAX_STATE_VALUE_BYTES) throw new ControlPlaneError('validation_failed', `secret value: expected 1..${MAX_STATE_VALUE_BYTES} bytes, got ${value.length}`);
  return store.tx(() => {
    const { owner, projectId } = ownerOf(store, scope);
    const now = store.now();
    const version = ((prepared(store.db, 'SELECT MAX(version) FROM node_secrets WHERE owner = ? AND name = ?').pluck().get(owner, name) as number | null) ?? 0) + 1;
    prepared(store.db, 'INSERT INTO node_secrets (project_id, owner, name, version, value, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(projectId, owner, name, version, store.sealSecret(secretPurpose(owner, name, version), value), now);
    return { owner, name, version, updated_at: formatRfc3339(now) };
  });
}

/** Removes every version of secret `name` of `scope`; returns how many. Throws secret_not_found
 *  when there is none. */
export function removeSecret(store: ControlPlaneStore, scope: SecretScope, name: string): number {
  checkSecretName(name);
  return store.tx(() => {
    const { owner } = ownerOf(store, scope);
    const n = prepared(store.db, 'DELETE FROM node_secrets WHERE owner = ? AND name = ?').run(owner, name).changes;
    if (n === 0) throw new ControlPlaneError('secret_not_found', `no secret ${name} for ${owner}`);
    return n;
  });
}

/** Every secret of a project (its own and its nodes'), current versions, by owner and name. */
export function listSecrets(db: Db, projectId: string): SecretInfo[] {
  const rows = prepared(db, 'SELECT owner, name, MAX(version) AS version, MAX(created_at) AS at FROM node_secrets WHERE project_id = ? GROUP BY owner, name ORDER BY owner, name').all(projectId) as Array<{ owner: string; name: string; version: number; at: number }>;
  return rows.map((r) => ({ owner: r.owner, name: r.name, version: r.version, updated_at: formatRfc3339(r.at) }));
}

/** A secret as a node fetches it: the envelope under `nsk`, its version and key id. */
export interface SecretEnvelopeOut {
  readonly envelope: Buffer;
  readonly version: number;
  readonly kid: string;
}

/** Secret `name` for `node` (its own secret, else its project's), at `version` (default the
 *  current one), sealed under `nsk`. Throws secret_not_found. */
export function secretForNode(store: ControlPlaneStore, node: NodeRow, nsk: Uint8Array, name: string, version?: number): SecretEnvelopeOut {
  checkSecretName(name);
  for (const owner of [node.node_id, PROJECT_OWNER + node.project_id]) {
    const row = (
      version === undefined
        ? prepared(store.db, 'SELECT version, value FROM node_secrets WHERE owner = ? AND name = ? ORDER BY version DESC LIMIT 1').get(owner, name)
        : prepared(store.db, 'SELECT version, value FROM node_secrets WHERE owner = ? AND name = ? AND version = ?').get(owner, name, version)
    ) as { version: number; value: Buffer } | undefined;
    if (row === undefined) {
      // A node secret of this name hides the project's, whatever versions either has.
      if (prepared(store.db, 'SELECT 1 FROM node_secrets WHERE owner = ? AND name = ?').get(owner, name) !== undefined) break;
      continue;
    }
    const plain = store.revealSecret(secretPurpose(owner, name, row.version), row.value);
    try {
      return { envelope: sealSecretEnvelope(nsk, plain), version: row.version, kid: nskKid(nsk) };
    } finally {
      plain.fill(0);
    }
  }
  throw new ControlPlaneError('secret_not_found', version === undefined ? `no secret ${name} for this node` : `no version ${version} of secret ${name} for this node`);
}

/** The key id of an envelope: names which NSK sealed it (a hash prefix, not the key). */
export function nskKid(nsk: Uint8Array): string {
  return `nsk-${createHash('sha256').update('plexd-userspace kid\0').update(nsk).digest('hex').slice(0, 16)}`;
}

/** Throws `code` unless `key` is a state key. */
function checkStateKey(key: string, code: 'validation_failed' | 'invalid_report'): string {
  if (!STATE_KEY_PATTERN.test(key)) throw new ControlPlaneError(code, `key: expected ${STATE_KEY_PATTERN.source}, got ${JSON.stringify(key.slice(0, 80))}`);
  return key;
}

/** Sets (or with `value` undefined removes) a metadata or data entry of a node, which gets
 *  node_state_updated. Throws node_not_found, validation_failed. */
export function setStateEntry(store: ControlPlaneStore, nodeId: string, bucket: OperatorBucket, key: string, value: string | undefined): void {
  checkStateKey(key, 'validation_failed');
  if (value !== undefined && Buffer.byteLength(value) > MAX_STATE_VALUE_BYTES) throw new ControlPlaneError('validation_failed', `value: more than ${MAX_STATE_VALUE_BYTES} bytes`);
  store.tx(() => {
    const node = store.node(nodeId.toLowerCase());
    if (node === undefined) throw new ControlPlaneError('node_not_found', `no node ${nodeId}`);
    if (value === undefined) {
      if (prepared(store.db, 'DELETE FROM node_state WHERE node_id = ? AND bucket = ? AND key = ?').run(node.node_id, bucket, key).changes === 0) throw new ControlPlaneError('not_found', `no ${bucket} entry ${key}`);
    } else {
      prepared(store.db, 'INSERT INTO node_state (node_id, bucket, key, value, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (node_id, bucket, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at').run(node.node_id, bucket, key, value, store.now());
    }
    store.notifyNodeState(node.node_id);
  });
}

/** Records a node's report (PUT /v1/nodes/{id}/state/reports/{key}). Throws invalid_report. */
export function putReport(store: ControlPlaneStore, node: NodeRow, key: string, req: NodeStateReportRequest): NodeStateReportResponse {
  checkStateKey(key, 'invalid_report');
  if (Buffer.byteLength(req.value) > MAX_REPORT_VALUE_BYTES) throw new ControlPlaneError('invalid_report', `value: more than ${MAX_REPORT_VALUE_BYTES} bytes`);
  const now = store.now();
  prepared(store.db, "INSERT INTO node_state (node_id, bucket, key, value, workload_tag, updated_at) VALUES (?, 'reports', ?, ?, ?, ?) ON CONFLICT (node_id, bucket, key) DO UPDATE SET value = excluded.value, workload_tag = excluded.workload_tag, updated_at = excluded.updated_at").run(node.node_id, key, req.value, req.workload_tag ?? null, now);
  return { accepted_at: formatRfc3339(now), key };
}

/** Removes a node's report. Throws invalid_report, report_not_found. */
export function deleteReport(store: ControlPlaneStore, node: NodeRow, key: string): void {
  checkStateKey(key, 'invalid_report');
  if (prepared(store.db, "DELETE FROM node_state WHERE node_id = ? AND bucket = 'reports' AND key = ?").run(node.node_id, key).changes === 0) throw new ControlPlaneError('report_not_found', `no report ${key}`);
}

/** A state entry with its last change, as `control-plane state` shows it. */
export interface StateEntryOut extends StateEntry {
  readonly updated_at: string;
}

/** A node's three buckets, each by key, with when each entry last changed. */
export function nodeStateOf(db: Db, nodeId: string): Record<'metadata' | 'data' | 'reports', StateEntryOut[]> {
  const out: Record<'metadata' | 'data' | 'reports', StateEntryOut[]> = { metadata: [], data: [], reports: [] };
  const rows = prepared(db, 'SELECT bucket, key, value, workload_tag, updated_at FROM node_state WHERE node_id = ? ORDER BY bucket, key').all(nodeId) as Array<{ bucket: keyof typeof out; key: string; value: string; workload_tag: string | null; updated_at: number }>;
  for (const r of rows) {
    out[r.bucket]?.push({ key: r.key, value: r.value, ...(r.workload_tag === null ? {} : { workload_tag: r.workload_tag }), updated_at: formatRfc3339(r.updated_at) });
  }
  return out;
}

/** The `state` block of a node's state response. */
export function stateBlockOf(db: Db, nodeId: string): NodeStateBlock {
  const s = nodeStateOf(db, nodeId);
  const strip = (e: StateEntryOut): StateEntry => ({ key: e.key, value: e.value, ...(e.workload_tag === undefined ? {} : { workload_tag: e.workload_tag }) });
  return { metadata: s.metadata.map(strip), data: s.data.map(strip), reports: s.reports.map(strip) };
}
