// Relay assignment (plexd-api.md "Relay"; docs/nat.md "When the control plane assigns a relay"):
// which node pairs go through a bridge, on which bridge, and the events that tell them.
//
// Rule (simple on purpose):
//  1. NAT types: a pair is relayed at once when either end reports `symmetric` (plexd's two-server
//     test cannot tell full cone from port-restricted, and a symmetric mapping meets a
//     port-restricted filter only through a relay). Pairs with a bridge are never relayed.
//  2. Path reports: an agent that finds the direct path to a peer dead (its probes unanswered while
//     traffic goes unanswered) reports `direct: false` and the pair is relayed.
//  3. Revocation: an agent whose direct probes are answered again reports `direct: true`; the
//     session is revoked and the pair is marked direct, which rule 1 respects until the next
//     `direct: false` or a new endpoint/NAT type from either end.
// Sessions live in the database (relay_sessions; what agents reported of each pair in relay_pairs),
// so every replica on one database agrees on them; at most 5 minutes each, refreshed by the sweep
// of any replica while the pair stays relayed, revoked when nobody refreshed it in time. Each
// session's ends are left empty, so the relay learns them from the agents' relay bindings (a symmetric NAT's mapping towards the
// relay is not the one STUN saw). One bridge is picked per pair: the online bridge with the fewest
// sessions that has a free session port. Each session gets its own relay port on its bridge (the
// lowest free one of firstSessionPort .. firstSessionPort + maxSessionsPerBridge - 1, by default
// 51900-51999, clear of the access side's 51822 and 51823-51832; `relay_port` in the session) and both ends fall back to bridge:that port: one node relayed to several peers through
// one bridge from its one WireGuard socket stays unambiguous (docs/nat.md "One relay port per
// session"). Events: relay_session_assigned / relay_session_revoked to both ends (payload: the
// session and the relay endpoint) and bridge_config_updated to the bridge; all mean "reconcile".
// Each session has a random binding key (docs/nat.md "Authenticated bindings"): it travels only in
// the state pulls of the two ends and the bridge, never in an event payload.

import { randomBytes, randomUUID } from 'node:crypto';
import { encodeBase64, formatRfc3339, parseEndpoint, type RelaySession, type StateResponse } from '../api/index.js';
import { ControlPlaneError } from './errors.js';
import { appendEvent } from './event-log.js';
import { prepared } from './prepared.js';
import type { ControlPlaneStore, NodeRow } from './store.js';

/** plexd's relay port, where bridges listen unless told otherwise. */
export const DEFAULT_BRIDGE_RELAY_PORT = 51821;
/** Sessions per bridge (plexd's relay limit); also the size of its session port range. */
export const DEFAULT_MAX_SESSIONS_PER_BRIDGE = 100;
/** The first per-session relay port: 51900-51999 by default, clear of user access (51822) and
 *  site-to-site (51823-51832) on the same bridge. */
export const DEFAULT_FIRST_SESSION_PORT = 51900;
/** Ports a session port range must leave free: relay 51821, user access 51822, sites 51823-51832. */
export const RESERVED_BRIDGE_PORTS = { first: 51821, last: 51832 } as const;
/** Lifetime of a session (plexd: 5 min); refreshed when less than REFRESH_BEFORE_MS is left. */
export const RELAY_SESSION_TTL_MS = 5 * 60_000;
const REFRESH_BEFORE_MS = 2 * 60_000;

/** One assigned session. */
export interface AssignedSession {
  readonly sessionId: string;
  readonly projectId: string;
  readonly a: string;
  readonly b: string;
  readonly bridgeId: string;
  /** The bridge's UDP port for this session alone. */
  readonly relayPort: number;
  /** "ip:port" of the session on the bridge's relay (bridge address, relayPort). */
  readonly relayEndpoint: string;
  /** The session's binding key, base64 of 32 random bytes. */
  readonly bindingKey: string;
  readonly expiresAt: number;
  readonly reason: 'nat-type' | 'path-report';
}

/** Options of {@link RelayAssigner}. */
export interface RelayAssignerOptions {
  /** The bridges' relay port (bridge.relay_listen_port); default 51821. */
  readonly relayPort?: number;
  /** Sessions per bridge; session ports are firstSessionPort .. firstSessionPort + this - 1. Default 100. */
  readonly maxSessionsPerBridge?: number;
  /** The first per-session relay port (default 51900; serve --relay-ports). */
  readonly firstSessionPort?: number;
}

/** Parses `serve --relay-ports FIRST-LAST` into assigner options. Throws RangeError when it is
 *  malformed, empty, beyond 65535, or overlaps the relay and access ports (51821-51832). */
export function parseRelayPorts(text: string): { firstSessionPort: number; maxSessionsPerBridge: number } {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(text);
  const first = Number(m?.[1]);
  const last = Number(m?.[2]);
  if (m === null || first < 1 || last > 65535 || last < first) throw new RangeError(`expected a port range FIRST-LAST within 1-65535, got ${JSON.stringify(text)}`);
  if (first <= RESERVED_BRIDGE_PORTS.last && last >= RESERVED_BRIDGE_PORTS.first) {
    throw new RangeError(`expected a port range clear of ${RESERVED_BRIDGE_PORTS.first}-${RESERVED_BRIDGE_PORTS.last} (relay, user access, site-to-site), got ${text}`);
  }
  return { firstSessionPort: first, maxSessionsPerBridge: last - first + 1 };
}

interface NodeLite {
  readonly node_id: string;
  readonly project_id: string;
  readonly mode: string;
  readonly status: string;
  readonly endpoint: string | null;
  readonly nat_type: string | null;
}

function pairKey(x: string, y: string): string {
  return x < y ? `${x}|${y}` : `${y}|${x}`;
}

/** Most entries one path report may hold beyond the node's peer count (races with removals). */
export const PATH_REPORT_SLACK = 16;

/** What one node's state pull needs of the relay, read with one query (see RelayAssigner.viewOf). */
export interface RelayView {
  /** The state's bridge block (see RelayAssigner.bridgeBlockOf). */
  readonly block: { relay: { sessions: RelaySession[] } } | null;
  /** Relay "ip:port" by relayed peer. */
  readonly fallbacks: ReadonlyMap<string, string>;
  /** The bridges relaying the node's own sessions (see RelayAssigner.relayBridgesOf). */
  readonly bridges: string[];
}

interface SessionRow {
  readonly session_id: string;
  readonly project_id: string;
  readonly peer_a: string;
  readonly peer_b: string;
  readonly bridge_id: string;
  readonly relay_port: number;
  readonly relay_endpoint: string;
  /** Sealed with the database's secrets key (bindingKeyPurpose). */
  readonly binding_key: Uint8Array;
  readonly expires_at: number;
  readonly reason: AssignedSession['reason'];
}

const SESSION_COLUMNS = 'session_id, project_id, peer_a, peer_b, bridge_id, relay_port, relay_endpoint, binding_key, expires_at, reason';

/** What a session's binding key is sealed for (secrets.ts): it opens for no other row. */
function bindingKeyPurpose(sessionId: string): string {
  return `relay-binding-key:${sessionId}`;
}

/** What agents reported of a pair's direct path: works (with both ends' signature then) or fails. */
interface PairRow {
  readonly direct: boolean;
  readonly signature: string;
}

/** The sessions and pair reports one transaction works on, read up front and kept in step with
 *  its own writes; `ports` (taken session ports by bridge) is filled per bridge when first needed. */
interface WorkingSet {
  readonly sessions: Map<string, AssignedSession>;
  readonly pairs: Map<string, PairRow>;
  readonly ports: Map<string, Set<number>>;
}

/**
 * Relay sessions of the control plane, kept in the database (relay_sessions, relay_pairs) so every
 * replica on one database sees the same sessions. Each change runs in one store transaction with
 * the events that announce it: the writer lock serializes assignment across replicas, and the
 * UNIQUE constraints (one session per pair, one per port of a bridge) back it. Reads query the
 * database (one query per state pull, viewOf), so nothing is cached that another replica could
 * change. Not thread-safe; the server calls it from its loop.
 */
export class RelayAssigner {
  readonly #store: ControlPlaneStore;
  readonly #firstSessionPort: number;
  readonly #maxPerBridge: number;
  #appended = false;
  /** This process's work (other replicas count their own). */
  readonly counters = { assigned: 0, revoked: 0, refreshed: 0, noBridge: 0 };

  constructor(store: ControlPlaneStore, options: RelayAssignerOptions = {}) {
    this.#store = store;
    const relayPort = options.relayPort ?? DEFAULT_BRIDGE_RELAY_PORT;
    this.#firstSessionPort = options.firstSessionPort ?? DEFAULT_FIRST_SESSION_PORT;
    this.#maxPerBridge = options.maxSessionsPerBridge ?? DEFAULT_MAX_SESSIONS_PER_BRIDGE;
    const last = this.#firstSessionPort + this.#maxPerBridge - 1;
    if (!Number.isInteger(this.#maxPerBridge) || this.#maxPerBridge < 1 || !Number.isInteger(this.#firstSessionPort) || this.#firstSessionPort < 1 || last > 65535) {
      throw new RangeError(`expected session ports firstSessionPort .. + maxSessionsPerBridge - 1 within 1-65535, got ${this.#firstSessionPort} + ${this.#maxPerBridge}`);
    }
    if (relayPort >= this.#firstSessionPort && relayPort <= last) throw new RangeError(`expected the session ports ${this.#firstSessionPort}-${last} to leave the relay port ${relayPort} free`);
  }

  /** Live sessions (of every replica). */
  sessions(): AssignedSession[] {
    return (prepared(this.#store.db, `SELECT ${SESSION_COLUMNS} FROM relay_sessions ORDER BY session_id`).all() as SessionRow[]).map((r) => this.#toSession(r));
  }

  #toSession(r: SessionRow): AssignedSession {
    const bindingKey = encodeBase64(this.#store.revealSecret(bindingKeyPurpose(r.session_id), r.binding_key));
    return { sessionId: r.session_id, projectId: r.project_id, a: r.peer_a, b: r.peer_b, bridgeId: r.bridge_id, relayPort: r.relay_port, relayEndpoint: r.relay_endpoint, bindingKey, expiresAt: r.expires_at, reason: r.reason };
  }

  /** The sessions `nodeId` is an end or the bridge of: one query over three indexes. */
  #sessionsOf(nodeId: string): AssignedSession[] {
    const sql = `SELECT ${SESSION_COLUMNS} FROM relay_sessions WHERE peer_a = ? OR peer_b = ? OR bridge_id = ? ORDER BY relay_port, session_id`;
    return (prepared(this.#store.db, sql).all(nodeId, nodeId, nodeId) as SessionRow[]).map((r) => this.#toSession(r));
  }

  /** Everything a state pull of `node` needs of the relay, from one query. */
  viewOf(node: { readonly node_id: string; readonly mode: string }): RelayView {
    const id = node.node_id;
    const all = this.#sessionsOf(id);
    const ends = all.filter((s) => s.a === id || s.b === id);
    // A bridge gets the sessions it forwards; an ordinary node the sessions it is an end of (so
    // the agent knows the session ID it binds with).
    const mine = node.mode === 'bridge' ? all.filter((s) => s.bridgeId === id) : ends;
    return {
      block: mine.length === 0 && node.mode !== 'bridge' ? null : { relay: { sessions: mine.map(wireSession) } },
      fallbacks: new Map(ends.map((s) => [s.a === id ? s.b : s.a, s.relayEndpoint])),
      bridges: ends.map((s) => s.bridgeId),
    };
  }

  /** The state's bridge block for `node`: a bridge gets the sessions it forwards; an ordinary
   *  node the sessions it is an end of; null when there are none. */
  bridgeBlockOf(node: { readonly node_id: string; readonly mode: string }): { relay: { sessions: RelaySession[] } } | null {
    return this.viewOf(node).block;
  }

  /** The bridges relaying sessions `nodeId` is an end of: it sees them as peers (issue 23). */
  relayBridgesOf(nodeId: string): string[] {
    return this.viewOf({ node_id: nodeId, mode: 'node' }).bridges;
  }

  /** The relay "ip:port" `node` should fall back to for `peerId`, if relayed. */
  fallbackFor(nodeId: string, peerId: string): string | undefined {
    const [a, b] = nodeId < peerId ? [nodeId, peerId] : [peerId, nodeId];
    return prepared(this.#store.db, 'SELECT relay_endpoint FROM relay_sessions WHERE peer_a = ? AND peer_b = ?').pluck().get(a, b) as string | undefined;
  }

  /** How many peers `node` can have: the other nodes of its project (one indexed count). */
  peerCount(node: NodeRow): number {
    return (prepared(this.#store.db, 'SELECT COUNT(*) FROM nodes WHERE project_id = ?').pluck().get(node.project_id) as number) - 1;
  }

  /** An agent's path report for one peer: `direct` false relays the pair, true revokes its
   *  session. */
  reportPath(node: NodeRow, peerId: string, direct: boolean): void {
    this.reportPaths(node, [{ node_id: peerId, direct }]);
  }

  /** An agent's path reports, in one transaction: one indexed lookup per entry plus the node's
   *  own sessions and pair reports read once, and the pairs reported failing are assigned on
   *  their own (no pass over the fleet), so the work is O(entries x bridges). */
  reportPaths(node: NodeRow, entries: readonly { readonly node_id: string; readonly direct: boolean }[]): void {
    if (entries.length === 0) return;
    this.#tx(() => {
      const known = this.#workingSetOf(node.node_id);
      const failing = new Map<string, [NodeLite, NodeLite]>();
      for (const e of entries) {
        const peer = this.#store.node(e.node_id);
        // A pair the policy does not connect is never relayed (its ends do not know each other).
        if (peer === undefined || peer.project_id !== node.project_id || peer.node_id === node.node_id || !this.#store.sees(node.project_id, node.node_id, peer.node_id)) continue;
        const k = pairKey(node.node_id, peer.node_id);
        if (e.direct) {
          failing.delete(k);
          this.#setPair(known, k, { direct: true, signature: signature(node, peer) });
          const s = known.sessions.get(k);
          if (s !== undefined) this.#revoke(known, s, 'direct path works');
        } else {
          this.#setPair(known, k, { direct: false, signature: '' });
          if (node.mode !== 'bridge' && peer.mode !== 'bridge' && peer.status !== 'offline') failing.set(k, [node, peer]);
        }
      }
      if (failing.size > 0) this.#consider(known, failing, this.#projectBridges(node.project_id), this.#store.now());
    });
  }

  /** After `node` reported a new endpoint or NAT type: the NAT-type rule for its own pairs only
   *  (O(project)); a bridge's report can serve any waiting pair, so it runs the whole rule. */
  evaluateNode(node: NodeRow): number {
    if (node.mode === 'bridge') return this.evaluate();
    const me = this.#store.node(node.node_id);
    if (me === undefined) return 0;
    const peers = prepared(
      this.#store.db,
      "SELECT node_id, project_id, mode, status, endpoint, nat_type FROM nodes WHERE project_id = ? AND node_id <> ? AND mode <> 'bridge' AND status <> 'offline'",
    ).all(me.project_id, me.node_id) as NodeLite[];
    const candidates = new Map<string, [NodeLite, NodeLite]>();
    const model = this.#store.visibility(me.project_id);
    for (const y of peers) if ((me.nat_type === 'symmetric' || y.nat_type === 'symmetric') && model.canSee(me.node_id, y.node_id)) candidates.set(pairKey(me.node_id, y.node_id), [me, y]);
    if (candidates.size === 0) return 0;
    return this.#tx(() => this.#consider(this.#workingSetOf(me.node_id), candidates, this.#projectBridges(me.project_id), this.#store.now()));
  }

  /** Applies the rule to every pair: assigns, refreshes and revokes, in one transaction (any
   *  replica may run it; a session refreshed by one is not refreshed again by the next). Returns
   *  sessions assigned. */
  evaluate(): number {
    return this.#tx(() => {
      const store = this.#store;
      const nodes = prepared(store.db, 'SELECT node_id, project_id, mode, status, endpoint, nat_type FROM nodes ORDER BY row').all() as NodeLite[];
      const byId = new Map(nodes.map((n) => [n.node_id, n]));
      const now = store.now();
      const known = this.#workingSet(
        prepared(store.db, `SELECT ${SESSION_COLUMNS} FROM relay_sessions`).all() as SessionRow[],
        prepared(store.db, 'SELECT node_lo, node_hi, direct, signature FROM relay_pairs').all() as PairRowDb[],
      );
      // Drop sessions whose ends or bridge are gone or offline, and those nobody refreshed in time
      // (every replica was down longer than the TTL): the rule below assigns anew if still needed.
      for (const s of [...known.sessions.values()]) {
        const ok = [s.a, s.b, s.bridgeId].every((id) => byId.get(id)?.status === 'online' || byId.get(id)?.status === 'unreachable');
        if (!ok) this.#revoke(known, s, 'an end or the bridge left');
        else if (!store.sees(s.projectId, s.a, s.b)) this.#revoke(known, s, 'the policy no longer connects the pair');
        else if (s.expiresAt <= now) this.#revoke(known, s, 'expired');
      }
      // Candidates only: pairs with a symmetric end, and pairs reported failing (O(symmetric x n)).
      const ordinary = nodes.filter((n) => n.mode !== 'bridge' && n.status !== 'offline');
      const candidates = new Map<string, [NodeLite, NodeLite]>();
      for (const x of ordinary) {
        if (x.nat_type !== 'symmetric') continue;
        const model = store.visibility(x.project_id);
        for (const y of ordinary) if (y !== x && y.project_id === x.project_id && model.canSee(x.node_id, y.node_id)) candidates.set(pairKey(x.node_id, y.node_id), [x, y]);
      }
      for (const [k, pair] of known.pairs) {
        const [p, q] = k.split('|') as [string, string];
        const x = byId.get(p);
        const y = byId.get(q);
        if (x === undefined || y === undefined) this.#setPair(known, k, undefined);
        else if (!pair.direct && store.sees(x.project_id, x.node_id, y.node_id)) candidates.set(k, [x, y]);
      }
      const bridges = new Map<string, NodeLite[]>();
      for (const n of nodes) {
        if (!isUsableBridge(n)) continue;
        const list = bridges.get(n.project_id);
        if (list === undefined) bridges.set(n.project_id, [n]);
        else list.push(n);
      }
      const assigned = this.#consider(known, candidates, bridges, now);
      for (const s of known.sessions.values()) {
        if (s.expiresAt - now < REFRESH_BEFORE_MS) {
          prepared(store.db, 'UPDATE relay_sessions SET expires_at = ? WHERE session_id = ?').run(now + RELAY_SESSION_TTL_MS, s.sessionId);
          this.counters.refreshed++;
          this.#emit(s.projectId, 'bridge_config_updated', { session_id: s.sessionId }, s.bridgeId);
        }
      }
      return assigned;
    });
  }

  /** Runs `fn` in a store transaction; announces the events it appended once it committed. */
  #tx<T>(fn: () => T): T {
    const outer = this.#store.db.inTransaction;
    if (!outer) this.#appended = false;
    const out = this.#store.tx(fn);
    if (!outer && this.#appended) {
      this.#appended = false;
      // The store's tx only announces its own appends; tell the bus about ours.
      this.#store.onEvents?.();
    }
    return out;
  }

  /** The sessions and pair reports involving `nodeId` (two indexed queries). */
  #workingSetOf(nodeId: string): WorkingSet {
    const db = this.#store.db;
    return this.#workingSet(
      prepared(db, `SELECT ${SESSION_COLUMNS} FROM relay_sessions WHERE peer_a = ? OR peer_b = ?`).all(nodeId, nodeId) as SessionRow[],
      prepared(db, 'SELECT node_lo, node_hi, direct, signature FROM relay_pairs WHERE node_lo = ? OR node_hi = ?').all(nodeId, nodeId) as PairRowDb[],
    );
  }

  #workingSet(sessions: readonly SessionRow[], pairs: readonly PairRowDb[]): WorkingSet {
    return {
      sessions: new Map(sessions.map((r) => [`${r.peer_a}|${r.peer_b}`, this.#toSession(r)])),
      pairs: new Map(pairs.map((r) => [`${r.node_lo}|${r.node_hi}`, { direct: r.direct === 1, signature: r.signature }])),
      ports: new Map(),
    };
  }

  /** Records (or with undefined forgets) what was reported of pair `k`. */
  #setPair(known: WorkingSet, k: string, pair: PairRow | undefined): void {
    const [lo, hi] = k.split('|') as [string, string];
    if (pair === undefined) {
      known.pairs.delete(k);
      prepared(this.#store.db, 'DELETE FROM relay_pairs WHERE node_lo = ? AND node_hi = ?').run(lo, hi);
      return;
    }
    const was = known.pairs.get(k);
    if (was !== undefined && was.direct === pair.direct && was.signature === pair.signature) return;
    known.pairs.set(k, pair);
    prepared(
      this.#store.db,
      'INSERT INTO relay_pairs (node_lo, node_hi, direct, signature) VALUES (?, ?, ?, ?) ON CONFLICT (node_lo, node_hi) DO UPDATE SET direct = excluded.direct, signature = excluded.signature',
    ).run(lo, hi, pair.direct ? 1 : 0, pair.signature);
  }

  /** Assigns a session to each candidate pair that needs one and has none. */
  #consider(known: WorkingSet, candidates: ReadonlyMap<string, readonly [NodeLite, NodeLite]>, bridges: ReadonlyMap<string, readonly NodeLite[]>, now: number): number {
    let assigned = 0;
    for (const [k, [x, y]] of candidates) {
      if (known.sessions.has(k)) continue;
      let pair = known.pairs.get(k);
      // A new endpoint or NAT type on either end re-opens rule 1 for a pair reported direct.
      if (pair?.direct === true && pair.signature !== signature(x, y)) {
        this.#setPair(known, k, undefined);
        pair = undefined;
      }
      if (pair?.direct !== true && this.#assign(known, x, y, bridges.get(x.project_id) ?? [], pair === undefined ? 'nat-type' : 'path-report', now)) assigned++;
    }
    return assigned;
  }

  /** The usable bridges of one project, by an indexed query. */
  #projectBridges(projectId: string): Map<string, NodeLite[]> {
    const rows = prepared(
      this.#store.db,
      "SELECT node_id, project_id, mode, status, endpoint, nat_type FROM nodes WHERE project_id = ? AND mode = 'bridge' AND status = 'online' ORDER BY row",
    ).all(projectId) as NodeLite[];
    return new Map([[projectId, rows.filter(isUsableBridge)]]);
  }

  /** The session ports taken on `bridgeId` (read once per transaction, then kept in step). */
  #portsOf(known: WorkingSet, bridgeId: string): Set<number> {
    let ports = known.ports.get(bridgeId);
    if (ports === undefined) {
      ports = new Set(prepared(this.#store.db, 'SELECT relay_port FROM relay_sessions WHERE bridge_id = ?').pluck().all(bridgeId) as number[]);
      known.ports.set(bridgeId, ports);
    }
    return ports;
  }

  #assign(known: WorkingSet, x: NodeLite, y: NodeLite, projectBridges: readonly NodeLite[], reason: AssignedSession['reason'], now: number): boolean {
    // The least loaded bridge with a free slot (O(bridges)).
    let bridge: NodeLite | undefined;
    let least = this.#maxPerBridge;
    for (const b of projectBridges) {
      const load = this.#portsOf(known, b.node_id).size;
      if (load < least) [bridge, least] = [b, load];
    }
    if (bridge === undefined) {
      this.counters.noBridge++;
      return false;
    }
    const host = parseEndpoint(bridge.endpoint!)!.host;
    const taken = this.#portsOf(known, bridge.node_id);
    let relayPort = this.#firstSessionPort;
    while (taken.has(relayPort)) relayPort++; // below firstSessionPort + maxPerBridge: the bridge has a free slot
    const relayEndpoint = host.includes(':') ? `[${host}]:${relayPort}` : `${host}:${relayPort}`;
    const [a, b] = x.node_id < y.node_id ? [x.node_id, y.node_id] : [y.node_id, x.node_id];
    const key = randomBytes(32);
    const s: AssignedSession = { sessionId: randomUUID(), projectId: x.project_id, a, b, bridgeId: bridge.node_id, relayPort, relayEndpoint, bindingKey: encodeBase64(key), expiresAt: now + RELAY_SESSION_TTL_MS, reason };
    const sealed = this.#store.sealSecret(bindingKeyPurpose(s.sessionId), key);
    key.fill(0);
    prepared(this.#store.db, `INSERT INTO relay_sessions (${SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
      s.sessionId, s.projectId, s.a, s.b, s.bridgeId, s.relayPort, s.relayEndpoint, sealed, s.expiresAt, s.reason,
    );
    known.sessions.set(`${a}|${b}`, s);
    taken.add(relayPort);
    this.counters.assigned++;
    const { binding_key: _secret, ...announced } = wireSession(s);
    const payload = { ...announced, relay_endpoint: relayEndpoint };
    // The bridge first, so its relay knows the session before the ends bind.
    this.#emit(s.projectId, 'bridge_config_updated', { session_id: s.sessionId }, s.bridgeId);
    this.#emit(s.projectId, 'relay_session_assigned', payload, s.a);
    this.#emit(s.projectId, 'relay_session_assigned', payload, s.b);
    return true;
  }

  #revoke(known: WorkingSet, s: AssignedSession, why: string): void {
    prepared(this.#store.db, 'DELETE FROM relay_sessions WHERE session_id = ?').run(s.sessionId);
    known.sessions.delete(`${s.a}|${s.b}`);
    known.ports.get(s.bridgeId)?.delete(s.relayPort);
    this.counters.revoked++;
    const payload = { session_id: s.sessionId, reason: why };
    this.#emit(s.projectId, 'relay_session_revoked', payload, s.a);
    this.#emit(s.projectId, 'relay_session_revoked', payload, s.b);
    this.#emit(s.projectId, 'bridge_config_updated', { session_id: s.sessionId }, s.bridgeId);
  }

  /** Appends one event (inside the caller's transaction; #tx announces it after the commit). */
  #emit(projectId: string, type: 'relay_session_assigned' | 'relay_session_revoked' | 'bridge_config_updated', payload: Record<string, unknown>, target: string): void {
    const store = this.#store;
    appendEvent(store.db, store.signer, store.now(), { projectId, type, payload, targetNode: target });
    this.#appended = true;
  }
}

interface PairRowDb {
  readonly node_lo: string;
  readonly node_hi: string;
  readonly direct: number;
  readonly signature: string;
}

/** A bridge that can take sessions: online with a parseable endpoint. */
function isUsableBridge(n: NodeLite): boolean {
  return n.mode === 'bridge' && n.status === 'online' && n.endpoint !== null && parseEndpoint(n.endpoint) !== undefined;
}

/** What identifies a pair's situation: a new endpoint or NAT type on either end re-opens rule 1. */
function signature(x: NodeLite, y: NodeLite): string {
  const [p, q] = x.node_id < y.node_id ? [x, y] : [y, x];
  return `${p.endpoint}/${p.nat_type}|${q.endpoint}/${q.nat_type}`;
}

function wireSession(s: AssignedSession): RelaySession {
  return { session_id: s.sessionId, peer_a_id: s.a, peer_a_endpoint: '', peer_b_id: s.b, peer_b_endpoint: '', expires_at: formatRfc3339(s.expiresAt), relay_port: s.relayPort, binding_key: s.bindingKey };
}

/**
 * Applies the body of `POST /v1/nodes/{id}/peer-paths` (ours): `{paths: [{node_id, direct}]}`.
 * Throws ControlPlaneError validation_failed for a malformed body (at most 1,000 entries) and
 * payload_too_large for more entries than the node has peers (plus PATH_REPORT_SLACK).
 */
export function applyPathReport(assigner: RelayAssigner, node: NodeRow, body: unknown): void {
  const paths = (body as { paths?: unknown } | null)?.paths;
  if (!Array.isArray(paths) || paths.length > 1000) throw new ControlPlaneError('validation_failed', 'paths: expected a list of at most 1000 {node_id, direct}');
  for (const [i, p] of paths.entries()) {
    const e = p as { node_id?: unknown; direct?: unknown } | null;
    if (typeof e?.node_id !== 'string' || e.node_id.length > 128 || typeof e.direct !== 'boolean') throw new ControlPlaneError('validation_failed', `paths[${i}]: expected {node_id: string, direct: boolean}`);
  }
  const peers = assigner.peerCount(node);
  if (paths.length > peers + PATH_REPORT_SLACK) throw new ControlPlaneError('payload_too_large', `paths: ${paths.length} entries, but this node has ${peers} peers`);
  assigner.reportPaths(node, (paths as { node_id: string; direct: boolean }[]).map((p) => ({ node_id: p.node_id.toLowerCase(), direct: p.direct })));
}

/** `state` with the relay view of `node` added: the bridge block's relay (see bridgeBlockOf; a
 *  bridge's access part from the store is kept) and each relayed peer's fallback_endpoint. Takes
 *  the assigner (one query) or a view already read for this pull. */
export function withRelays(state: StateResponse, node: NodeRow, relay: RelayAssigner | RelayView | undefined): StateResponse {
  if (relay === undefined) return state;
  const view = relay instanceof RelayAssigner ? relay.viewOf(node) : relay;
  const peers = state.peers.map((p) => {
    const fallback = view.fallbacks.get(p.node_id);
    return fallback === undefined ? p : { ...p, fallback_endpoint: fallback };
  });
  const bridge = state.bridge === null ? view.block : view.block === null ? state.bridge : { ...state.bridge, relay: view.block.relay };
  return { ...state, peers, bridge };
}
