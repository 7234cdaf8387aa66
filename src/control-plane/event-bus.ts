// The event bus (SSE, WHATWG HTML "server-sent events"): one stream per connected node, fed from
// the durable event log. The pump reads events past the last delivered seq and writes each to
// its audience; Last-Event-ID replays from the log; one shared timer sends keep-alive comments.
// A stream that cannot keep up (buffer over a bound, or a write not drained for MAX_STREAM_STALL_MS)
// is dropped: the agent reconnects and replays.

import type { ServerResponse } from 'node:http';
import { encodeBase64, formatRfc3339, signEnvelope } from '../api/index.js';
import { eventsAfter, eventsFor, firstSeq, isAudience, lastSeq, maxSeq, type LoggedEvent } from './event-log.js';
import { add, remove } from './multimap.js';
import type { ControlPlaneStore, NodeRow } from './store.js';
import type { Visibility } from './visibility.js';

/** Keep-alive comment interval: 15 s (agents time out after 90 s idle). */
export const KEEPALIVE_MS = 15_000;
/** Streams one node may hold at once; a newer one ends the oldest (an agent holds one, plus a
 *  reconnect overlapping its dying predecessor). */
export const MAX_STREAMS_PER_NODE = 4;
/** Bytes a stream may have queued before it is dropped. */
export const MAX_STREAM_BUFFER = 1024 * 1024;
/** A stream whose writes have not drained for this long is dropped (its client stopped reading). */
export const MAX_STREAM_STALL_MS = 60_000;
/** A scheduled pump that failed (database unreachable) is tried again after this long. */
const PUMP_RETRY_MS = 250;
/** Events read from the log per pump step. */
const PUMP_BATCH = 2000;

interface Stream {
  readonly nodeId: string;
  readonly projectId: string;
  readonly res: ServerResponse;
  lastSent: number;
  /** Monotonic ms since which a write waits for 'drain'; undefined while the socket keeps up. */
  stalledSince: number | undefined;
}

/** Options of EventBus. */
export interface EventBusOptions {
  readonly keepAliveMs?: number;
  readonly maxStreamBuffer?: number;
  /** Default MAX_STREAMS_PER_NODE. */
  readonly maxStreamsPerNode?: number;
  /** Default MAX_STREAM_STALL_MS; checked at each keep-alive. */
  readonly maxStreamStallMs?: number;
}

/** SSE delivery of the event log to connected nodes. */
export class EventBus {
  readonly #store: ControlPlaneStore;
  readonly #byProject = new Map<string, Set<Stream>>();
  readonly #byNode = new Map<string, Set<Stream>>();
  readonly #maxBuffer: number;
  readonly #maxPerNode: number;
  readonly #maxStall: number;
  readonly #keepAlive: NodeJS.Timeout;
  #delivered: number;
  #pumpQueued = false;
  #closed = false;
  #announced = 0;
  /** Streams dropped for a full buffer or a stall. */
  readonly dropped = { buffer: 0, stalled: 0 };

  constructor(store: ControlPlaneStore, options: EventBusOptions = {}) {
    this.#store = store;
    this.#maxBuffer = options.maxStreamBuffer ?? MAX_STREAM_BUFFER;
    this.#maxPerNode = options.maxStreamsPerNode ?? MAX_STREAMS_PER_NODE;
    this.#maxStall = options.maxStreamStallMs ?? MAX_STREAM_STALL_MS;
    this.#delivered = lastSeq(store.db);
    this.#keepAlive = setInterval(() => this.#keepAliveAll(), options.keepAliveMs ?? KEEPALIVE_MS);
    this.#keepAlive.unref();
  }

  /** Number of open streams. */
  get size(): number {
    let n = 0;
    for (const s of this.#byNode.values()) n += s.size;
    return n;
  }

  /** True when `nodeId` holds at least one stream. */
  hasStream(nodeId: string): boolean {
    return (this.#byNode.get(nodeId)?.size ?? 0) > 0;
  }

  /** Starts an SSE stream for an authenticated node, replaying events after `lastEventId`. */
  open(node: NodeRow, res: ServerResponse, lastEventId: number | undefined): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.socket?.setTimeout(0);
    res.socket?.setNoDelay(true);
    const stream: Stream = { nodeId: node.node_id, projectId: node.project_id, res, lastSent: this.#delivered, stalledSince: undefined };
    res.write('retry: 1000\n\n');
    this.#announceRotations(stream);
    if (lastEventId !== undefined && lastEventId < this.#delivered) {
      const first = firstSeq(this.#store.db);
      if (first === undefined || lastEventId + 1 < first) this.#sendGap(stream);
      const model = this.#store.visibility(node.project_id);
      const sees = (_project: string, viewer: string, subject: string): boolean => model.canSee(viewer, subject);
      for (let after = lastEventId; ; ) {
        const batch = eventsFor(this.#store.db, node.project_id, node.node_id, after, PUMP_BATCH).filter((e) => e.seq <= this.#delivered);
        for (const e of batch) if (isAudience(e, node.project_id, node.node_id, sees)) this.#write(stream, e);
        if (batch.length < PUMP_BATCH) break;
        after = batch[batch.length - 1]!.seq;
      }
      stream.lastSent = this.#delivered;
    }
    add(this.#byNode, node.node_id, stream);
    add(this.#byProject, node.project_id, stream);
    res.on('close', () => this.#forget(stream));
    // Keep the newest: sets iterate in insertion order, so the first is the oldest.
    const mine = this.#byNode.get(node.node_id)!;
    for (const old of [...mine].slice(0, Math.max(0, mine.size - this.#maxPerNode))) {
      this.#forget(old);
      old.res.end();
    }
  }

  /** Delivers everything appended since the last pump, soon (coalesced into one pass). */
  schedulePump(): void {
    if (this.#pumpQueued) return;
    this.#pumpQueued = true;
    setImmediate(() => {
      this.#pumpQueued = false;
      // A change committed just before close() leaves a pump queued behind a closed database.
      if (this.#closed) return;
      try {
        this.pump();
      } catch {
        // The database went away (PostgreSQL: connection lost, 503 for requests meanwhile): this
        // callback has no caller to report to, and throwing here would end the process. Try
        // again shortly; what was committed stays in the log until a pump gets through.
        setTimeout(() => this.schedulePump(), PUMP_RETRY_MS).unref();
      }
    });
  }

  /** Delivers everything appended since the last pump, now. */
  pump(): void {
    if (this.#byNode.size === 0) {
      // No stream to deliver to (a replica while the fleet registers through the other one):
      // move past what is committed without reading the envelopes. Events commit in seq order
      // (one writer at a time), so everything up to the highest one is in.
      this.#delivered = Math.max(this.#delivered, maxSeq(this.#store.db) ?? 0);
      return;
    }
    // One visibility model per project and pump, not two SQL reads per stream and event: the
    // events of this pump were all committed before it, so the current model answers for each.
    const models = new Map<string, Visibility>();
    const sees = (projectId: string, viewer: string, subject: string): boolean => {
      let model = models.get(projectId);
      if (model === undefined) models.set(projectId, (model = this.#store.visibility(projectId)));
      return model.canSee(viewer, subject);
    };
    for (;;) {
      const batch = eventsAfter(this.#store.db, this.#delivered, PUMP_BATCH);
      for (const e of batch) {
        this.#delivered = e.seq;
        const audience = e.target_node !== null ? this.#byNode.get(e.target_node) : this.#byProject.get(e.project_id);
        if (audience === undefined) continue;
        for (const s of audience) if (e.seq > s.lastSent && isAudience(e, s.projectId, s.nodeId, sees)) this.#write(s, e);
      }
      if (batch.length < PUMP_BATCH) return;
    }
  }

  /** Ends every stream of `nodeId` (the node was removed). */
  closeNode(nodeId: string): void {
    for (const s of [...(this.#byNode.get(nodeId) ?? [])]) s.res.end();
  }

  /** Ends the streams of nodes not in `existing`. */
  closeMissing(existing: ReadonlySet<string>): void {
    for (const id of [...this.#byNode.keys()]) if (!existing.has(id)) this.closeNode(id);
  }

  /** Stops the keep-alive timer and ends every stream. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#keepAlive);
    for (const id of [...this.#byNode.keys()]) this.closeNode(id);
  }

  #write(s: Stream, e: LoggedEvent): void {
    s.lastSent = e.seq;
    this.#send(s, `id: ${e.seq}\nevent: ${e.type}\ndata: ${e.envelope}\n\n`);
  }

  /** The log no longer holds everything after the client's Last-Event-ID: tell it to pull state.
   *  No `id:` line, so the client's Last-Event-ID stays where it was. */
  #sendGap(s: Stream): void {
    const { signer } = this.#store;
    const env = signEnvelope(
      { id: `gap-${this.#delivered}`, type: 'node_state_updated', scope: `node:${s.nodeId}`, key_id: signer.keyId, issued_at: formatRfc3339(this.#store.now()), payload: {} },
      signer.secretKey,
    );
    this.#send(s, `event: node_state_updated\ndata: ${JSON.stringify(env)}\n\n`);
  }

  /** Rotations still in their transition, signed afresh by each retired key (no `id:` line): the
   *  logged announcement is stale after 5 minutes, and an agent that reconnects later must still
   *  learn the new key while its old one verifies. Agents already on the new key accept it as a
   *  repeat. */
  #announceRotations(s: Stream): void {
    const now = this.#store.now();
    for (const r of this.#store.signingKeysInTransition()) {
      const env = signEnvelope(
        {
          id: `rotation-${r.successorId}-${now}-${++this.#announced}`,
          type: 'signing_key_rotated',
          scope: `node:${s.nodeId}`,
          key_id: r.signer.keyId,
          issued_at: formatRfc3339(now),
          payload: { key_id: r.successorId, public_key: encodeBase64(r.successorPublicKey), previous_key_id: r.signer.keyId, transition_expires: formatRfc3339(r.transitionExpires) },
        },
        r.signer.secretKey,
      );
      this.#send(s, `event: signing_key_rotated\ndata: ${JSON.stringify(env)}\n\n`);
    }
  }

  #send(s: Stream, text: string): void {
    if (s.res.writableEnded || s.res.destroyed) return;
    if (!s.res.write(text) && s.stalledSince === undefined) {
      s.stalledSince = this.#store.clock.now();
      s.res.once('drain', () => (s.stalledSince = undefined));
    }
    if (s.res.writableLength > this.#maxBuffer) {
      this.dropped.buffer++;
      s.res.destroy();
    }
  }

  #keepAliveAll(): void {
    const now = this.#store.clock.now();
    for (const set of this.#byNode.values()) {
      for (const s of set) {
        if (s.stalledSince !== undefined && now - s.stalledSince >= this.#maxStall) {
          this.dropped.stalled++;
          s.res.destroy();
        } else this.#send(s, ': keep-alive\n\n');
      }
    }
  }

  #forget(s: Stream): void {
    remove(this.#byNode, s.nodeId, s);
    remove(this.#byProject, s.projectId, s);
  }
}
