// The bounded, durable event log behind the SSE bus: each event is signed once (Ed25519, the
// control plane's key) and stored with its audience (a project, one node, or a project minus its
// subject). Its seq is the envelope id and the SSE id, so Last-Event-ID replays from here, and
// the CLI can append events from another process that the server then delivers.

import { formatRfc3339, signEnvelope, type EventType } from '../api/index.js';
import type { Db } from './database.js';
import { prepared } from './prepared.js';

/** Events older than this are pruned: 10 minutes. */
export const EVENT_RETENTION_MS = 10 * 60_000;
/** At most this many events are kept in total. */
export const EVENT_LOG_MAX = 10_000;

/** The active signing key. */
export interface Signer {
  readonly keyId: string;
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** An event to append. */
export interface NewEvent {
  readonly projectId: string;
  readonly type: EventType;
  readonly payload: Readonly<Record<string, unknown>>;
  /** Only this node receives it. */
  readonly targetNode?: string;
  /** Everyone in the project but this node (the node the event is about). */
  readonly excludeNode?: string;
  /** Only the nodes that see this node (the event carries its keys or addresses; issue 23). */
  readonly peersOf?: string;
}

/** A stored event as the bus reads it. */
export interface LoggedEvent {
  readonly seq: number;
  readonly project_id: string;
  readonly target_node: string | null;
  readonly exclude_node: string | null;
  /** Only nodes that see this node receive it (NewEvent.peersOf). */
  readonly peers_of: string | null;
  readonly type: string;
  readonly envelope: string;
}

/** Whether node `viewer` sees node `subject` (the audience test of `peers_of` events). */
export type SeesFn = (projectId: string, viewer: string, subject: string) => boolean;

/** Signs and appends an event; returns its seq. Call inside the transaction of the change it
 *  announces, so the event exists exactly when the change does. */
export function appendEvent(db: Db, signer: Signer, now: number, e: NewEvent, reserved?: number): number {
  // Inside a write transaction the next AUTOINCREMENT value is known: sign with it up front. On
  // PostgreSQL the identity sequence hands it out (a rolled-back append leaves a gap, which
  // readers never notice: they ask for seq > last seen); `reserved` is one the caller took from
  // it already (nextval('events_seq')).
  const seq =
    reserved !== undefined
      ? reserved
      : db.dialect === 'postgres'
      ? (prepared(db, "SELECT nextval('events_seq') AS seq").get() as { seq: number }).seq
      : ((prepared(db, "SELECT seq FROM sqlite_sequence WHERE name = 'events'").get() as { seq: number } | undefined)?.seq ?? 0) + 1;
  const envelope = signEnvelope(
    {
      id: String(seq),
      type: e.type,
      scope: e.targetNode !== undefined ? `node:${e.targetNode}` : `project:${e.projectId}`,
      key_id: signer.keyId,
      issued_at: formatRfc3339(now),
      payload: e.payload,
    },
    signer.secretKey,
  );
  prepared(
    db,
    'INSERT INTO events (seq, project_id, target_node, exclude_node, peers_of, type, envelope, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  ).run(seq, e.projectId, e.targetNode ?? null, e.excludeNode ?? e.peersOf ?? null, e.peersOf ?? null, e.type, JSON.stringify(envelope), now);
  return seq;
}

/** True when `node` of `project` is in the audience of `e`; `sees` decides `peers_of` events. */
export function isAudience(e: LoggedEvent, project: string, node: string, sees: SeesFn): boolean {
  return e.project_id === project && (e.target_node === null || e.target_node === node) && e.exclude_node !== node && (e.peers_of === null || sees(project, node, e.peers_of));
}

/** Events after `afterSeq` for `node` of `project`, oldest first, at most `limit` (`peers_of`
 *  events included whoever sees the subject: filter with isAudience). */
export function eventsFor(db: Db, project: string, node: string, afterSeq: number, limit: number): LoggedEvent[] {
  return prepared(
    db,
    `SELECT seq, project_id, target_node, exclude_node, peers_of, type, envelope FROM events
     WHERE project_id = ? AND seq > ? AND (target_node IS NULL OR target_node = ?)
       AND (exclude_node IS NULL OR exclude_node <> ?)
     ORDER BY seq LIMIT ?`,
  ).all(project, afterSeq, node, node, limit) as LoggedEvent[];
}

/** All events after `afterSeq`, oldest first, at most `limit` (the bus's delivery pump). */
export function eventsAfter(db: Db, afterSeq: number, limit: number): LoggedEvent[] {
  return prepared(
    db,
    'SELECT seq, project_id, target_node, exclude_node, peers_of, type, envelope FROM events WHERE seq > ? ORDER BY seq LIMIT ?',
  ).all(afterSeq, limit) as LoggedEvent[];
}

/** The highest seq ever assigned (0 when none). */
export function lastSeq(db: Db): number {
  const row = prepared(db, db.dialect === 'postgres' ? 'SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS seq FROM events_seq' : "SELECT seq FROM sqlite_sequence WHERE name = 'events'").get() as { seq: number } | undefined;
  return row?.seq ?? 0;
}

/** The highest seq committed and still stored, or undefined when the log is empty. */
export function maxSeq(db: Db): number | undefined {
  const row = prepared(db, 'SELECT MAX(seq) AS s FROM events').get() as { s: number | null };
  return row.s ?? undefined;
}

/** The lowest seq still stored, or undefined when the log is empty. */
export function firstSeq(db: Db): number | undefined {
  const row = prepared(db, 'SELECT MIN(seq) AS s FROM events').get() as { s: number | null };
  return row.s ?? undefined;
}

/** Drops events older than the retention time or beyond the newest EVENT_LOG_MAX. */
export function pruneEvents(db: Db, now: number): number {
  const a = prepared(db, 'DELETE FROM events WHERE created_at < ?').run(now - EVENT_RETENTION_MS).changes;
  const b = prepared(db, 'DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?').run(EVENT_LOG_MAX).changes;
  return a + b;
}
