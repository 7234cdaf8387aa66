// Remote actions and hooks as the control plane keeps them (issue 18; docs/operations.md "Remote
// actions" and "Hooks"; upstream docs/reference/actions/remote-actions-hooks.md): executions queued
// into a node's state (`executions` block) with an action_request event to cut the latency, the
// callback state machine ack -> started -> succeeded | failed | cancelled (a terminal only from
// started; started again only to declare an output over 16 KiB, answered with a one-time upload
// URL), cancellation, the capabilities manifest a node PUTs, and the hook digests an operator
// approved. A hook is dispatched only when the node's manifest reports the approved digest; the
// entry carries that digest (ours, additive) and the agent refuses a file that does not match it.

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { ACTION_KINDS, flattenParameters, formatRfc3339, INLINE_OUTPUT_MAX, type CapabilitiesRequest, type Execution, type ExecutionReport, type ExecutionReportResponse, type ExecutionStatus } from '../api/index.js';
import type { Db } from './database.js';
import { ControlPlaneError } from './errors.js';
import { prepared } from './prepared.js';
import type { ControlPlaneStore, NodeRow } from './store.js';

/** Default and longest deadline of an execution (ms): upstream's max_action_timeout is 10 min. */
export const DEFAULT_EXECUTION_TIMEOUT_MS = 10 * 60_000;
export const MAX_EXECUTION_TIMEOUT_MS = 24 * 60 * 60_000;
/** Largest output a node may upload (bytes); the agent caps at actions.max_output_bytes (1 MiB). */
export const MAX_UPLOAD_BYTES = 16 * 1024 * 1024;
/** Action names: dotted words (built-ins) or a hook's file name; never a path. */
export const ACTION_NAME = /^(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
/** Statuses still in a node's executions block. */
const OPEN: readonly ExecutionStatus[] = ['pending', 'ack', 'started'];

/** An executions row as stored. */
export interface ExecutionRow {
  execution_id: string;
  node_id: string;
  action: string;
  type: string;
  args: string;
  status: ExecutionStatus;
  checksum: string | null;
  created_at: number;
  updated_at: number;
  expires_at: number | null;
  exit_code: number | null;
  error: string | null;
  output_data: Buffer | null;
  declared_output_bytes: number | null;
  upload_token: string | null;
  output_object_key: string | null;
  output_sha256: string | null;
  cancel_requested: number;
  acked_at: number | null;
  started_at: number | null;
  finished_at: number | null;
}

/** What `actions run` asks for. */
export interface ExecutionRequest {
  readonly nodeId: string;
  readonly action: string;
  /** `builtin` (default) or `hook`. */
  readonly type?: string;
  readonly parameters?: Readonly<Record<string, unknown>>;
  /** Deadline from now (ms), default DEFAULT_EXECUTION_TIMEOUT_MS. */
  readonly timeoutMs?: number;
}

function refuse(message: string): never {
  throw new ControlPlaneError('validation_failed', message);
}

/** The node's stored capabilities manifest, or undefined before its first PUT. */
export function capabilitiesOf(db: Db, nodeId: string): CapabilitiesRequest | undefined {
  const text = prepared(db, 'SELECT capabilities FROM nodes WHERE node_id = ?').pluck().get(nodeId) as string | null | undefined;
  if (typeof text !== 'string' || text === '') return undefined;
  try {
    return JSON.parse(text) as CapabilitiesRequest;
  } catch {
    return undefined;
  }
}

/** The approved digest (64 hex) of hook `name` for `node` (its own approval first, then the
 *  project-wide one), or undefined. */
export function approvedHookDigest(db: Db, node: Pick<NodeRow, 'project_id' | 'node_id'>, name: string): string | undefined {
  return prepared(db, "SELECT sha256 FROM hook_approvals WHERE project_id = ? AND name = ? AND node_id IN (?, '') ORDER BY node_id DESC LIMIT 1")
    .pluck().get(node.project_id, name, node.node_id) as string | undefined;
}

/**
 * Approves hook `name` with SHA-256 `sha256` (64 hex, an optional "sha256:" prefix) for node
 * `nodeId`, or for every node of `projectId` when nodeId is undefined. Replaces an earlier
 * approval. Throws validation_failed / node_not_found.
 */
export function approveHook(store: ControlPlaneStore, target: { nodeId?: string; projectId?: string }, name: string, sha256: string): { project_id: string; node_id: string; name: string; sha256: string } {
  if (!ACTION_NAME.test(name)) refuse(`hook name ${JSON.stringify(name.slice(0, 64))}: expected a file name of [A-Za-z0-9_.-], no "..", no "/"`);
  const digest = sha256.toLowerCase().replace(/^sha256:/, '');
  if (!/^[0-9a-f]{64}$/.test(digest)) refuse('SHA256: expected 64 hex digits (optionally prefixed "sha256:")');
  return store.tx(() => {
    let projectId = target.projectId ?? 'default';
    let nodeId = '';
    if (target.nodeId !== undefined) {
      const node = store.node(target.nodeId);
      if (node === undefined) throw new ControlPlaneError('node_not_found', `node ${target.nodeId} does not exist`);
      projectId = node.project_id;
      nodeId = node.node_id;
    }
    prepared(store.db, 'INSERT INTO hook_approvals (project_id, node_id, name, sha256, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (project_id, node_id, name) DO UPDATE SET sha256 = excluded.sha256, created_at = excluded.created_at').run(projectId, nodeId, name, digest, store.now());
    return { project_id: projectId, node_id: nodeId, name, sha256: digest };
  });
}

/** Every approval, for `actions hooks`. */
export function listHookApprovals(db: Db): Array<{ project_id: string; node_id: string; name: string; sha256: string; created_at: number }> {
  return prepared(db, 'SELECT project_id, node_id, name, sha256, created_at FROM hook_approvals ORDER BY project_id, name, node_id').all() as Array<{ project_id: string; node_id: string; name: string; sha256: string; created_at: number }>;
}

/** `K=V` items (the CLI's `--param`, the dashboard's lines) -> parameters, or the reason they are
 *  refused (no "=", empty name, a repeated name). */
export function parseParamList(list: readonly string[]): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (const p of list) {
    const eq = p.indexOf('=');
    if (eq <= 0) return `expected K=V, got ${JSON.stringify(p.slice(0, 64))}`;
    const k = p.slice(0, eq);
    if (Object.hasOwn(out, k)) return `${k} given twice`;
    out[k] = p.slice(eq + 1);
  }
  return out;
}

/**
 * Queues an execution for a node and sends it an action_request. A hook must be approved for the
 * node with the digest its capabilities manifest reports. Returns the execution id. Throws
 * node_not_found or validation_failed with the reason.
 */
export function createExecution(store: ControlPlaneStore, req: ExecutionRequest): string {
  const type = req.type ?? 'builtin';
  if (!(ACTION_KINDS as readonly string[]).includes(type)) refuse(`type: expected builtin or hook, got ${JSON.stringify(type.slice(0, 32))}`);
  if (!ACTION_NAME.test(req.action)) refuse(`action ${JSON.stringify(req.action.slice(0, 64))}: expected [A-Za-z0-9_.-], at most 128, no ".."`);
  const params = flattenParameters(req.parameters ?? {});
  if (typeof params === 'string') refuse(params);
  const timeout = req.timeoutMs ?? DEFAULT_EXECUTION_TIMEOUT_MS;
  if (!(Number.isInteger(timeout) && timeout >= 1000 && timeout <= MAX_EXECUTION_TIMEOUT_MS)) refuse(`timeout: expected 1 s .. ${MAX_EXECUTION_TIMEOUT_MS / 3_600_000} h`);
  return store.tx(() => {
    const node = store.node(req.nodeId);
    if (node === undefined) throw new ControlPlaneError('node_not_found', `node ${req.nodeId} does not exist`);
    let checksum: string | null = null;
    if (type === 'hook') {
      const approved = approvedHookDigest(store.db, node, req.action);
      if (approved === undefined) refuse(`hook ${req.action} is not approved for node ${node.node_id}: actions approve-hook ${node.node_id} ${req.action} SHA256`);
      const reported = capabilitiesOf(store.db, node.node_id)?.hooks?.find((h) => h.name === req.action)?.checksum;
      if (reported === undefined) refuse(`node ${node.node_id} does not report a hook ${req.action} in its capabilities`);
      if (reported.toLowerCase() !== `sha256:${approved}`) refuse(`hook ${req.action} on node ${node.node_id} has digest ${reported}, not the approved sha256:${approved}; approve the new digest or restore the file`);
      checksum = `sha256:${approved}`;
    }
    const id = randomUUID();
    const now = store.now();
    prepared(store.db, "INSERT INTO executions (execution_id, node_id, action, type, args, status, checksum, created_at, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)")
      .run(id, node.node_id, req.action, type, JSON.stringify(req.parameters ?? {}), checksum, now, now, now + timeout);
    store.announceExecution(node, id);
    return id;
  });
}

/** The node's open executions as its state's `executions` block, ordered by requested_at then
 *  id. Expired ones are closed as failed ("expired") first: the control plane owns the timeout. */
export function executionsFor(db: Db, nodeId: string, now: number): Execution[] {
  prepared(db, "UPDATE executions SET status = 'failed', error = 'expired before the node finished it', finished_at = ?, updated_at = ? WHERE node_id = ? AND status IN ('pending', 'ack', 'started') AND expires_at IS NOT NULL AND expires_at <= ?").run(now, now, nodeId, now);
  const rows = prepared(db, "SELECT * FROM executions WHERE node_id = ? AND status IN ('pending', 'ack', 'started') ORDER BY created_at, execution_id").all(nodeId) as ExecutionRow[];
  return rows.map((r) => {
    const e: { -readonly [K in keyof Execution]: Execution[K] } = {
      execution_id: r.execution_id,
      action: r.action,
      type: r.type,
      parameters: JSON.parse(r.args) as Record<string, string>,
      status: r.status,
      requested_at: formatRfc3339(r.created_at),
      expires_at: r.expires_at === null ? '' : formatRfc3339(r.expires_at),
    };
    if (r.checksum !== null) e.checksum = r.checksum;
    if (r.cancel_requested !== 0) e.cancel_requested = true;
    return e;
  });
}

/** Legal next statuses (upstream "Execution Callback Contract"). */
function legal(from: ExecutionStatus, to: ExecutionStatus): boolean {
  if (from === 'pending') return to === 'ack';
  if (from === 'ack') return to === 'started';
  if (from === 'started') return to === 'succeeded' || to === 'failed' || to === 'cancelled' || to === 'started';
  return false;
}

/**
 * Applies a node's callback. `uploadBase`: the origin the node reached us by, for the upload URL.
 * Throws execution_not_found, execution_already_terminal, invalid_state_transition,
 * inline_output_too_large, validation_failed.
 */
export function reportExecution(store: ControlPlaneStore, node: NodeRow, executionId: string, report: ExecutionReport, uploadBase: string): ExecutionReportResponse {
  const inline = report.output?.inline === undefined ? undefined : Buffer.from(report.output.inline, 'base64');
  if (inline !== undefined && inline.length > INLINE_OUTPUT_MAX) throw new ControlPlaneError('inline_output_too_large', `inline output is ${inline.length} bytes; more than ${INLINE_OUTPUT_MAX} must be declared and uploaded`);
  if (report.declared_output_bytes !== undefined && report.declared_output_bytes > MAX_UPLOAD_BYTES) refuse(`declared_output_bytes: at most ${MAX_UPLOAD_BYTES}`);
  return store.tx(() => {
    const row = prepared(store.db, 'SELECT * FROM executions WHERE execution_id = ? AND node_id = ?').get(executionId, node.node_id) as ExecutionRow | undefined;
    if (row === undefined) throw new ControlPlaneError('execution_not_found', `no execution ${executionId} for this node`);
    if (!OPEN.includes(row.status)) throw new ControlPlaneError('execution_already_terminal', `execution ${executionId} is already ${row.status}`);
    if (!legal(row.status, report.status)) throw new ControlPlaneError('invalid_state_transition', `cannot go from ${row.status} to ${report.status}`);
    const now = store.now();
    if (report.status === 'started' && row.status === 'started') {
      // A repeated started declares an output over the inline limit: answer with a one-time URL.
      if (report.declared_output_bytes === undefined) throw new ControlPlaneError('invalid_state_transition', 'started again only declares declared_output_bytes');
      const token = randomBytes(24).toString('base64url');
      prepared(store.db, 'UPDATE executions SET declared_output_bytes = ?, upload_token = ?, updated_at = ? WHERE execution_id = ?').run(report.declared_output_bytes, token, now, executionId);
      return { execution_id: executionId, status: 'started', output_upload_url: `${uploadBase}/v1/executions/${executionId}/output?token=${token}` };
    }
    const at = report.status === 'ack' ? 'acked_at' : report.status === 'started' ? 'started_at' : 'finished_at';
    let objectKey = row.output_object_key;
    if (report.output?.object_key !== undefined) {
      if (report.output.object_key !== `exec-output/${executionId}` || row.output_data === null || report.output.sha256 !== row.output_sha256) {
        refuse('output.object_key/sha256: no upload of this execution with that key and digest');
      }
      objectKey = report.output.object_key;
    }
    prepared(store.db, `UPDATE executions SET status = ?, updated_at = ?, ${at} = ?, exit_code = ?, error = ?, output_data = ?, output_object_key = ?, upload_token = NULL WHERE execution_id = ?`).run(
      report.status, now, now, report.exit_code ?? row.exit_code, report.error ?? row.error, inline ?? row.output_data, objectKey, executionId,
    );
    return { execution_id: executionId, status: report.status };
  });
}

/** Stores an uploaded output (PUT to the one-time URL; no bearer token: the token is the
 *  credential). Throws not_found on an unknown execution or token, validation_failed on a size
 *  other than declared. Returns the object key. */
export function acceptUpload(store: ControlPlaneStore, executionId: string, token: string, body: Buffer): string {
  return store.tx(() => {
    const row = prepared(store.db, 'SELECT * FROM executions WHERE execution_id = ?').get(executionId) as ExecutionRow | undefined;
    // One answer for "no such execution" and "wrong token": the URL is the credential.
    if (row === undefined || row.upload_token === null || token.length !== row.upload_token.length || token !== row.upload_token) throw new ControlPlaneError('not_found', 'no upload expected at this URL');
    if (body.length !== row.declared_output_bytes) refuse(`expected ${row.declared_output_bytes ?? 0} bytes (declared_output_bytes), got ${body.length}`);
    const sha = createHash('sha256').update(body).digest('hex');
    const key = `exec-output/${executionId}`;
    prepared(store.db, 'UPDATE executions SET output_data = ?, output_sha256 = ?, upload_token = NULL, updated_at = ? WHERE execution_id = ?').run(body, sha, store.now(), executionId);
    return key;
  });
}

/**
 * Cancels an execution: one the node has not started yet is closed here (cancelled, it never
 * runs: pending -> cancelled is the control plane's own move, not a node callback); a started one
 * is flagged cancel_requested in the node's state and the node is nudged with action_request, so
 * it aborts the run and reports cancelled. Returns the status after the call. Throws
 * execution_not_found.
 */
export function cancelExecution(store: ControlPlaneStore, executionId: string): ExecutionStatus | 'cancel_requested' {
  return store.tx(() => {
    const row = prepared(store.db, 'SELECT * FROM executions WHERE execution_id = ?').get(executionId) as ExecutionRow | undefined;
    if (row === undefined) throw new ControlPlaneError('execution_not_found', `no execution ${executionId}`);
    if (!OPEN.includes(row.status)) return row.status;
    const now = store.now();
    if (row.status !== 'started') {
      prepared(store.db, "UPDATE executions SET status = 'cancelled', error = 'cancelled before it started', finished_at = ?, updated_at = ? WHERE execution_id = ?").run(now, now, executionId);
      return 'cancelled';
    }
    prepared(store.db, 'UPDATE executions SET cancel_requested = 1, updated_at = ? WHERE execution_id = ?').run(now, executionId);
    const node = store.node(row.node_id);
    if (node !== undefined) store.announceExecution(node, executionId);
    return 'cancel_requested';
  });
}

/** One execution as the CLI shows it (output decoded as UTF-8 text when asked). */
export interface ExecutionView {
  readonly execution_id: string;
  readonly node_id: string;
  readonly action: string;
  readonly type: string;
  readonly parameters: Readonly<Record<string, unknown>>;
  readonly status: ExecutionStatus;
  readonly cancel_requested: boolean;
  readonly exit_code: number | null;
  readonly error: string | null;
  readonly output_bytes: number;
  readonly output_object_key: string | null;
  readonly output_sha256: string | null;
  readonly requested_at: string;
  readonly expires_at: string | null;
  readonly acked_at: string | null;
  readonly started_at: string | null;
  readonly finished_at: string | null;
  readonly output?: string;
}

function view(r: ExecutionRow, withOutput: boolean): ExecutionView {
  const t = (ms: number | null) => (ms === null ? null : formatRfc3339(ms));
  return {
    execution_id: r.execution_id, node_id: r.node_id, action: r.action, type: r.type,
    parameters: JSON.parse(r.args) as Record<string, unknown>, status: r.status, cancel_requested: r.cancel_requested !== 0,
    exit_code: r.exit_code, error: r.error, output_bytes: r.output_data?.length ?? 0,
    output_object_key: r.output_object_key, output_sha256: r.output_sha256,
    requested_at: formatRfc3339(r.created_at), expires_at: t(r.expires_at), acked_at: t(r.acked_at), started_at: t(r.started_at), finished_at: t(r.finished_at),
    ...(withOutput ? { output: r.output_data?.toString('utf8') ?? '' } : {}),
  };
}

/** One execution, or undefined. */
export function getExecution(db: Db, executionId: string, withOutput = true): ExecutionView | undefined {
  const row = prepared(db, 'SELECT * FROM executions WHERE execution_id = ?').get(executionId) as ExecutionRow | undefined;
  return row === undefined ? undefined : view(row, withOutput);
}

/** Executions (of one node, or all), newest first, at most `limit`. */
export function listExecutions(db: Db, nodeId?: string, limit = 100): ExecutionView[] {
  const rows = (nodeId === undefined
    ? prepared(db, 'SELECT * FROM executions ORDER BY created_at DESC, execution_id LIMIT ?').all(limit)
    : prepared(db, 'SELECT * FROM executions WHERE node_id = ? ORDER BY created_at DESC, execution_id LIMIT ?').all(nodeId, limit)) as ExecutionRow[];
  return rows.map((r) => view(r, false));
}
