// The agent's path choice per peer (docs/nat.md "Agent: direct or relayed"): direct to the peer's
// reported endpoint, or through the bridge relay the control plane assigned.
//  - A session assigned (state: bridge.relay.sessions naming us, the relay in the peer's
//    fallback_endpoint): send the relay binding from the WireGuard port at once (a datagram the
//    relay forwards into our NAT before we sent to the relay would make the NAT pick another port),
//    point the peer's WireGuard endpoint at the relay, and rebind every 20 s. A session with a
//    binding_key gets authenticated bindings (docs/nat.md "Authenticated bindings"), the counter
//    taken from the wall clock and kept rising, so a restarted agent still goes past its last.
//  - Direct probes: a STUN Binding request from the WireGuard port to the peer's direct endpoint,
//    answered by the peer's port responder (src/nat/port-stun.ts). Sent when a peer's endpoint is
//    new (both sides do it: simultaneous open), every 5 s while relayed, and when a direct peer's
//    traffic stalls (we sent, nothing came back for 3 s). Answered while relayed: back to direct and
//    report `direct: true` (the control plane revokes the session). Unanswered while direct: to
//    the relay when a session exists, and report `direct: false` (the control plane assigns one).
// Persistent keepalive 25 s on every peer keeps NAT mappings (and the relay's) alive.
// The direct endpoint is the path prober's choice (path-prober.ts, setProbedDirect) when it has
// one, else the peer's reported endpoint: the prober picks among candidates, this class keeps
// deciding direct versus relayed.

import { decodeBase64, endpointOf } from '../api/fields.js';
import type { PeerInfo, RelaySession, StateResponse } from '../api/types.js';
import { formatEndpoint, sameEndpoint, type Endpoint } from '../core/endpoint.js';
import type { DeviceTransaction, PeerSnapshot } from '../device/contract.js';
import type { Logger } from '../log/logger.js';
import { relayBindingAttributes, RELAY_BINDING_KEY_BYTES } from '../bridge/relay-binding.js';
import type { StunClient } from '../nat/stun-client.js';

/** Tick period of the path monitor. */
export const PATH_TICK_MS = 1000;
/** A direct peer we sent to without hearing back for this long is probed. */
export const STALL_MS = 3000;
/** Probe period while relayed; rebind period. */
export const PROBE_EVERY_MS = 5000;
export const REBIND_EVERY_MS = 20_000;
/** Persistent keepalive set on every peer (s). */
export const KEEPALIVE_S = 25;
/** Probe timers: transmissions at 0, 250, 750 ms, answer awaited until 1.75 s. */
const PROBE_TIMERS = { rtoMs: 250, rc: 3, rm: 4 } as const;

/** What the path manager needs of the device. */
export interface PathDevice {
  /** Our static public key, for the keepalive tie-break; undefined = never defer. */
  readonly publicKey?: Uint8Array | undefined;
  /** The peer with this 32-byte public key (Device.peer), or undefined. */
  peer(publicKey: Uint8Array): PeerSnapshot | undefined;
  /** Device.apply. */
  apply(tx: DeviceTransaction): Promise<void>;
}

/** Options of {@link PathManager}. */
export interface PathManagerOptions {
  readonly device: PathDevice;
  readonly client: StunClient;
  readonly nodeId: () => string;
  /** POST /v1/nodes/{id}/peer-paths; failures are logged and retried on the next change. */
  readonly reportPaths: (paths: readonly { node_id: string; direct: boolean }[]) => Promise<void>;
  readonly log: Logger;
  /** Monotonic ms (tests). */
  readonly now?: () => number;
  /** Wall-clock ms, the floor of the binding counter (tests). */
  readonly wallMs?: () => number;
}

interface PeerPath {
  readonly nodeId: string;
  publicKey: string;
  /** `publicKey` decoded; undefined when it is not a key (the device is then never touched). */
  key: Uint8Array | undefined;
  /** The direct endpoint in use: `probed ?? reportedDirect`. */
  direct: Endpoint | undefined;
  /** The control plane's `endpoint` for the peer. */
  reportedDirect: Endpoint | undefined;
  /** The path prober's choice among the peer's candidates (undefined: none answers, or no prober). */
  probed: Endpoint | undefined;
  relay: { sessionId: string; endpoint: Endpoint; key: Uint8Array | undefined } | undefined;
  mode: 'direct' | 'relayed';
  rx: bigint;
  tx: bigint;
  rxAt: number;
  txAt: number;
  probing: boolean;
  lastProbeAt: number;
  lastBindAt: number;
  /** What we last told the control plane (undefined: nothing). */
  reported: boolean | undefined;
  /** Persistent keepalive is on (set once, at the first state naming the peer). */
  keepaliveSet: boolean;
}

/** Path state of every peer, and the timer that moves peers between direct and relayed. */
export class PathManager {
  readonly #o: PathManagerOptions;
  readonly #now: () => number;
  readonly #wallMs: () => number;
  /** Counter of the last authenticated binding sent. */
  #bindCounter = 0n;
  readonly #peers = new Map<string, PeerPath>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  readonly counters = { bindings: 0, bindingFailures: 0, probes: 0, probesAnswered: 0, toRelay: 0, toDirect: 0, reports: 0 };

  constructor(options: PathManagerOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => performance.now());
    this.#wallMs = options.wallMs ?? Date.now;
  }

  /** Starts the monitor timer. */
  start(): void {
    this.#timer ??= setInterval(() => void this.tick(), PATH_TICK_MS);
    this.#timer.unref?.();
  }

  /** `direct` or `relayed` for a peer's public key (base64); undefined when unknown. */
  pathOf(publicKey: string): 'direct' | 'relayed' | undefined {
    for (const p of this.#peers.values()) if (p.publicKey === publicKey) return p.mode;
    return undefined;
  }

  /** Per-peer view for the node API. */
  snapshot(): Array<Record<string, unknown>> {
    return [...this.#peers.values()].map((p) => ({ node_id: p.nodeId, path: p.mode, direct: p.direct === undefined ? null : formatEndpoint(p.direct), relay: p.relay === undefined ? null : formatEndpoint(p.relay.endpoint), session_id: p.relay?.sessionId ?? null }));
  }

  /** Applies a state (after the reconcile applied its peers): new sessions bind and switch at once. */
  async applyState(state: Pick<StateResponse, 'peers' | 'bridge'>): Promise<void> {
    const me = this.#o.nodeId();
    const sessions = new Map<string, RelaySession>();
    for (const s of state.bridge?.relay?.sessions ?? []) {
      if (s.peer_a_id === me) sessions.set(s.peer_b_id, s);
      else if (s.peer_b_id === me) sessions.set(s.peer_a_id, s);
    }
    const seen = new Set<string>();
    const now = this.#now();
    for (const info of state.peers) {
      if (info.node_id === me) continue;
      seen.add(info.node_id);
      await this.#applyPeer(info, sessions.get(info.node_id), now);
    }
    for (const id of [...this.#peers.keys()]) if (!seen.has(id)) this.#peers.delete(id);
  }

  async #applyPeer(info: PeerInfo, session: RelaySession | undefined, now: number): Promise<void> {
    const sessionId = session?.session_id;
    let p = this.#peers.get(info.node_id);
    if (p === undefined) {
      p = { nodeId: info.node_id, publicKey: info.public_key, key: decodeBase64(info.public_key, 32), direct: undefined, reportedDirect: undefined, probed: undefined, relay: undefined, mode: 'direct', rx: 0n, tx: 0n, rxAt: now, txAt: now, probing: false, lastProbeAt: -Infinity, lastBindAt: -Infinity, reported: undefined, keepaliveSet: false };
      this.#peers.set(info.node_id, p);
    }
    if (p.publicKey !== info.public_key) {
      // A mesh key rotation: the interface has a new peer entry, without keepalive so far. Turning
      // it on starts a handshake from this side too, so the pair completes whichever end learns
      // of the new key last (its initiation to an end that did not know the key yet was dropped).
      p.publicKey = info.public_key;
      p.key = decodeBase64(info.public_key, 32);
      p.keepaliveSet = false;
      p.probed = undefined;
    }
    p.reportedDirect = endpointOf(info.endpoint);
    const direct = p.probed ?? p.reportedDirect;
    const relayEp = endpointOf(info.fallback_endpoint);
    const newDirect = direct !== undefined && (p.direct === undefined || !sameEndpoint(direct, p.direct));
    p.direct = direct;
    await this.#maybeKeepalive(p);
    if (sessionId !== undefined && relayEp !== undefined) {
      const fresh = p.relay === undefined || p.relay.sessionId !== sessionId || !sameEndpoint(p.relay.endpoint, relayEp);
      const key = session?.binding_key === undefined ? undefined : decodeBase64(session.binding_key, RELAY_BINDING_KEY_BYTES);
      p.relay = { sessionId, endpoint: relayEp, key };
      if (fresh) {
        this.#o.log.info(`peer ${p.nodeId}: relay session ${sessionId} via ${formatEndpoint(relayEp)}`);
        p.reported = false; // the control plane relayed us: it already knows
        void this.#bind(p, now);
        await this.#toRelay(p, 'session assigned');
        return;
      }
    } else if (p.relay !== undefined) {
      this.#o.log.info(`peer ${p.nodeId}: relay session ${p.relay.sessionId} revoked`);
      p.relay = undefined;
      if (p.mode === 'relayed') await this.#toDirect(p, 'session revoked');
    }
    // The reconciler may have put the control plane's endpoint back; keep the chosen path.
    if (p.mode === 'relayed' && p.relay !== undefined) await this.#setEndpoint(p, p.relay.endpoint);
    else if (p.mode === 'direct' && p.probed !== undefined) await this.#setEndpoint(p, p.probed);
    else if (newDirect && p.mode === 'direct') void this.#probe(p, now); // hole punching
  }

  /**
   * The path prober's choice for a peer (base64 public key): its best answering candidate, or
   * undefined when none answers (the reported endpoint is the direct one again). While direct,
   * the WireGuard endpoint follows at once; while relayed, an answer is proof that the direct
   * path works, so the peer goes direct (as when a STUN probe is answered).
   */
  async setProbedDirect(publicKey: string, endpoint: Endpoint | undefined): Promise<void> {
    let p: PeerPath | undefined;
    for (const x of this.#peers.values()) if (x.publicKey === publicKey) p = x;
    if (p === undefined || this.#closed) return;
    p.probed = endpoint;
    p.direct = endpoint ?? p.reportedDirect;
    if (p.mode === 'relayed' && endpoint !== undefined) {
      await this.#toDirect(p, 'path probe answered');
      await this.#report(p, true);
    } else if (p.mode === 'direct' && p.direct !== undefined) {
      await this.#setEndpoint(p, p.direct);
    }
  }

  async #maybeKeepalive(p: PeerPath): Promise<void> {
    if (p.keepaliveSet) return;
    p.keepaliveSet = true;
    await this.#update(p, { persistentKeepaliveInterval: KEEPALIVE_S });
  }

  /** One monitor step (the timer calls it every second; tests call it directly). */
  async tick(): Promise<void> {
    if (this.#closed) return;
    const now = this.#now();
    for (const p of this.#peers.values()) {
      const d = p.key === undefined ? undefined : this.#o.device.peer(p.key);
      if (d === undefined) continue;
      await this.#maybeKeepalive(p);
      const rx = BigInt(d.rxBytes);
      const tx = BigInt(d.txBytes);
      if (rx !== p.rx) (p.rx = rx), (p.rxAt = now);
      if (tx !== p.tx) (p.tx = tx), (p.txAt = now);
      if (p.mode === 'relayed') {
        if (p.relay !== undefined && now - p.lastBindAt >= REBIND_EVERY_MS) void this.#bind(p, now);
        if (p.direct !== undefined && now - p.lastProbeAt >= PROBE_EVERY_MS) void this.#probe(p, now);
      } else {
        const stalled = p.txAt > p.rxAt && now - p.rxAt >= STALL_MS;
        if (stalled && p.direct !== undefined && now - p.lastProbeAt >= PROBE_EVERY_MS) void this.#probe(p, now);
      }
    }
  }

  async #probe(p: PeerPath, now: number): Promise<void> {
    if (p.probing || p.direct === undefined || this.#closed) return;
    p.probing = true;
    p.lastProbeAt = now;
    this.counters.probes++;
    const target = p.direct;
    try {
      const r = await this.#o.client.request(target, PROBE_TIMERS);
      if (this.#closed || p.direct === undefined || !sameEndpoint(target, p.direct)) return;
      if (r.kind === 'mapped') {
        this.counters.probesAnswered++;
        if (p.mode === 'relayed') await this.#toDirect(p, 'direct probe answered');
        await this.#report(p, true);
      } else if (r.kind === 'timeout') {
        // Unanswered: a relayed peer stays; a direct one with traffic stalled leaves.
        if (p.mode === 'direct' && p.txAt > p.rxAt && this.#now() - p.rxAt >= STALL_MS) {
          if (p.relay !== undefined) await this.#toRelay(p, 'direct probe unanswered');
          await this.#report(p, false);
        }
      }
    } finally {
      p.probing = false;
    }
  }

  async #bind(p: PeerPath, now: number): Promise<void> {
    if (p.relay === undefined) return;
    p.lastBindAt = now;
    const relay = p.relay;
    const auth = relay.key === undefined ? undefined : { key: relay.key, counter: this.#nextCounter() };
    const r = await this.#o.client.request(relay.endpoint, { attributes: relayBindingAttributes(relay.sessionId, this.#o.nodeId(), auth) });
    if (r.kind === 'mapped') this.counters.bindings++;
    else if (r.kind !== 'closed') {
      this.counters.bindingFailures++;
      this.#o.log.verbose(`peer ${p.nodeId}: relay binding to ${formatEndpoint(relay.endpoint)}: ${r.kind}`);
    }
  }

  /** Above every counter sent before, here and (the wall clock moving on) in earlier runs. */
  #nextCounter(): bigint {
    const wall = BigInt(Math.max(0, Math.floor(this.#wallMs())));
    this.#bindCounter = wall > this.#bindCounter ? wall : this.#bindCounter + 1n;
    return this.#bindCounter;
  }

  async #toRelay(p: PeerPath, why: string): Promise<void> {
    if (p.relay === undefined) return;
    if (p.mode !== 'relayed') {
      this.counters.toRelay++;
      this.#o.log.info(`peer ${p.nodeId}: relayed via ${formatEndpoint(p.relay.endpoint)} (${why})`);
    }
    p.mode = 'relayed';
    p.lastProbeAt = this.#now(); // first direct probe one period later
    await this.#setEndpoint(p, p.relay.endpoint);
  }

  async #toDirect(p: PeerPath, why: string): Promise<void> {
    p.mode = 'direct';
    p.rxAt = p.txAt = this.#now();
    this.counters.toDirect++;
    this.#o.log.info(`peer ${p.nodeId}: direct${p.direct === undefined ? '' : ` to ${formatEndpoint(p.direct)}`} (${why})`);
    if (p.direct !== undefined) await this.#setEndpoint(p, p.direct);
  }

  async #report(p: PeerPath, direct: boolean): Promise<void> {
    if (p.reported === direct) return;
    p.reported = direct;
    try {
      await this.#o.reportPaths([{ node_id: p.nodeId, direct }]);
      this.counters.reports++;
    } catch (err) {
      p.reported = undefined;
      this.#o.log.verbose(`path report failed: ${(err as Error).message}`);
    }
  }

  async #setEndpoint(p: PeerPath, to: Endpoint): Promise<void> {
    const cur = p.key === undefined ? undefined : this.#o.device.peer(p.key);
    if (cur === undefined || (cur.endpoint !== null && sameEndpoint(cur.endpoint, to))) return;
    await this.#update(p, { endpoint: { address: to.address, port: to.port } });
  }

  // An update-only change of the peer (never creates it; the reconciler does).
  async #update(p: PeerPath, fields: { endpoint?: Endpoint; persistentKeepaliveInterval?: number }): Promise<void> {
    if (p.key === undefined) return;
    try {
      await this.#o.device.apply({ peers: [{ publicKey: p.key, updateOnly: true, ...fields }] });
    } catch (err) {
      this.#o.log.error(`peer ${p.nodeId}: configure failed: ${(err as Error).message}`);
    }
  }

  /** Stops the timer. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }
}
