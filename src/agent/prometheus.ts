// The agent's Prometheus metrics (docs/operations.md "Prometheus metrics"): /metrics in the text
// exposition format 0.0.4 on the health listener, through prom-client. Everything is read at scrape
// time from counters the agent, the device and the policy filter keep anyway (collect() callbacks);
// the packet path does no extra work. Handshakes are counted from the device's handshake-complete
// diagnostics channel (a handshake is rare). Each agent has its own Registry; process and Node.js
// stats come from the one process-wide registry of log/prometheus.ts.

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { encodeBase64 } from '../api/fields.js';
import { DROP_REASONS, type DropReason } from '../core/actions.js';
import type { DeliveryMode, EventStreamCounters } from '../control/event-stream.js';
import type { PeerSnapshot } from '../device/contract.js';
import type { DeviceCounters } from '../device/device.js';
import { DIAGNOSTICS_CHANNELS, type PeerEventMessage } from '../device/diagnostics.js';
import { processMetricsRegistry } from '../log/prometheus.js';
import { POLICY_DROP_REASONS } from '../policy/drop-reasons.js';
import type { PolicySnapshot } from '../policy/filter.js';

/** Peers exported with their own `peer` label, the ones with the most traffic (rx + tx bytes); the
 *  rest are summed under peer="other", so a scrape carries at most this many + 1 peer values. */
export const PROMETHEUS_PEER_LIMIT = 50;
/** Buckets of the heartbeat latency histogram (seconds). */
export const HEARTBEAT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;
/** Handshake counts kept for peers no longer configured are pruned past this many entries. */
const HANDSHAKE_TABLE_MAX = 4096;

const DELIVERY_MODES: readonly DeliveryMode[] = ['streaming', 'pull_only', 'degraded_polling'];
/** Engine drops plus the device's own (TUN refused a packet, the bind refused a datagram). */
const DEVICE_DROP_REASONS = [...DROP_REASONS, 'tun-write', 'send'] as const;

type EventCounter = 'connects' | 'failures' | 'polls';

/** What the metrics read from the agent at scrape time. */
export interface AgentMetricsSource {
  readonly device: {
    peers(): Iterable<PeerSnapshot>;
    drops(): Record<DropReason, number>;
    readonly counters: DeviceCounters;
  };
  /** The control plane's node ids of the peers, by base64 public key (read once per scrape). */
  nodeIds(): ReadonlyMap<string, string>;
  /** How traffic to the peer flows. */
  pathOf(publicKey: string): 'direct' | 'relayed';
  policy(): PolicySnapshot & { readonly updates: { readonly applied: number; readonly rejected: number } };
  readonly events: { readonly mode: DeliveryMode; readonly connected: boolean; readonly counters: Pick<EventStreamCounters, EventCounter> };
  readonly counters: { readonly heartbeats: number; readonly heartbeatFailures: number; readonly reconciles: number; readonly reconcileFailures: number };
  readonly ready: boolean;
  /** Wall-clock ms now (for the handshake age). */
  wallMs(): number;
}

/** One peer's figures in a scrape. */
interface PeerFigures {
  readonly label: string;
  readonly rx: number;
  readonly tx: number;
  readonly handshakes: number;
  /** Wall-clock ms of the last handshake, 0 for never. */
  readonly lastHandshakeMs: number;
  readonly path: 'direct' | 'relayed';
}

/** What one scrape reads, once, before the registry renders. */
interface Scrape {
  readonly top: readonly PeerFigures[];
  readonly other: { rx: number; tx: number; handshakes: number } | undefined;
  readonly byPath: { direct: number; relayed: number };
  readonly policy: ReturnType<AgentMetricsSource['policy']>;
  readonly drops: Record<DropReason, number>;
  readonly nowMs: number;
}

/**
 * Picks the `limit` peers with the most traffic (ties: by label) and sums the rest; pure, so the
 * cardinality bound is testable without a device.
 */
export function capPeers(peers: readonly PeerFigures[], limit: number): { top: PeerFigures[]; other: Scrape['other'] } {
  const sorted = [...peers].sort((a, b) => b.rx + b.tx - (a.rx + a.tx) || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  const top = sorted.slice(0, limit);
  const rest = sorted.slice(limit);
  if (rest.length === 0) return { top, other: undefined };
  const other = { rx: 0, tx: 0, handshakes: 0 };
  for (const p of rest) {
    other.rx += p.rx;
    other.tx += p.tx;
    other.handshakes += p.handshakes;
  }
  return { top, other };
}

/** The agent's /metrics: a per-agent Registry whose collect() callbacks read `source`. */
export class AgentPrometheus {
  readonly registry = new Registry();
  readonly #source: AgentMetricsSource;
  readonly #peerLimit: number;
  /** Completed handshakes per peer (base64 key), from the diagnostics channel. */
  readonly #handshakes = new Map<string, number>();
  readonly #onHandshake: (message: unknown) => void;
  readonly #heartbeat: Histogram<'result'>;
  #scrape: Scrape | undefined;
  #inflight: Promise<string> | undefined;
  #closed = false;

  /** `device` is the Device whose handshakes are counted (messages of other devices are ignored). */
  constructor(source: AgentMetricsSource, device: object, options: { readonly peerLimit?: number } = {}) {
    this.#source = source;
    this.#peerLimit = options.peerLimit ?? PROMETHEUS_PEER_LIMIT;
    if (!Number.isInteger(this.#peerLimit) || this.#peerLimit < 0) throw new RangeError(`expected peerLimit to be an integer >= 0, got ${options.peerLimit}`);
    this.#onHandshake = (message) => {
      const m = message as PeerEventMessage;
      if (m.device !== device) return;
      const key = encodeBase64(m.publicKey);
      this.#handshakes.set(key, (this.#handshakes.get(key) ?? 0) + 1);
      if (this.#handshakes.size > HANDSHAKE_TABLE_MAX) this.#pruneHandshakes();
    };
    subscribe(DIAGNOSTICS_CHANNELS['handshake-complete'], this.#onHandshake);
    this.#heartbeat = new Histogram({
      name: 'plexd_agent_heartbeat_duration_seconds',
      help: 'Time from sending a heartbeat to the control plane until its answer, by result (ok, failed).',
      labelNames: ['result'],
      buckets: [...HEARTBEAT_BUCKETS],
      registers: [this.registry],
    });
    this.#heartbeat.zero({ result: 'ok' });
    this.#heartbeat.zero({ result: 'failed' });
    this.#define();
  }

  /** Records one heartbeat's latency (seconds). */
  observeHeartbeat(seconds: number, ok: boolean): void {
    this.#heartbeat.observe({ result: ok ? 'ok' : 'failed' }, seconds);
  }

  /**
   * The exposition text: this agent's metrics, then the process's. Concurrent scrapes share one
   * collection (a burst of scrapers costs one pass over the peers).
   */
  metrics(): Promise<string> {
    this.#inflight ??= this.#render().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  /** Stops counting handshakes. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    unsubscribe(DIAGNOSTICS_CHANNELS['handshake-complete'], this.#onHandshake);
  }

  async #render(): Promise<string> {
    this.#scrape = this.#read();
    try {
      const own = await this.registry.metrics();
      return own + (await processMetricsRegistry().metrics());
    } finally {
      this.#scrape = undefined;
    }
  }

  #pruneHandshakes(): void {
    const live = new Set<string>();
    for (const p of this.#source.device.peers()) live.add(encodeBase64(p.publicKey));
    for (const key of this.#handshakes.keys()) if (!live.has(key)) this.#handshakes.delete(key);
  }

  #read(): Scrape {
    const s = this.#source;
    const peers: PeerFigures[] = [];
    const byPath = { direct: 0, relayed: 0 };
    const live = new Set<string>();
    const nodeIds = s.nodeIds();
    for (const p of s.device.peers()) {
      const key = encodeBase64(p.publicKey);
      live.add(key);
      const path = s.pathOf(key);
      byPath[path]++;
      const ms = p.lastHandshakeTimeSec * 1000 + Math.floor(p.lastHandshakeTimeNsec / 1e6);
      peers.push({ label: nodeIds.get(key) ?? key, rx: Number(p.rxBytes), tx: Number(p.txBytes), handshakes: this.#handshakes.get(key) ?? 0, lastHandshakeMs: ms, path });
    }
    for (const key of this.#handshakes.keys()) if (!live.has(key)) this.#handshakes.delete(key);
    const { top, other } = capPeers(peers, this.#peerLimit);
    return { top, other, byPath, policy: s.policy(), drops: s.device.drops(), nowMs: s.wallMs() };
  }

  /** The scrape in progress (#render reads once for every metric); a fresh read otherwise. */
  #now(): Scrape {
    return this.#scrape ?? this.#read();
  }

  #define(): void {
    const registers = [this.registry];
    const self = this;
    const peerCounter = (name: string, help: string, pick: (p: { rx: number; tx: number; handshakes: number }) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['peer'],
        registers,
        collect() {
          this.reset();
          const sc = self.#now();
          for (const p of sc.top) this.inc({ peer: p.label }, pick(p));
          if (sc.other !== undefined) this.inc({ peer: 'other' }, pick(sc.other));
        },
      });
    };
    peerCounter('plexd_agent_peer_receive_bytes_total', `Bytes received from a peer, WireGuard overhead included. The ${this.#peerLimit} peers with the most traffic by node id, the rest summed as peer="other".`, (p) => p.rx);
    peerCounter('plexd_agent_peer_transmit_bytes_total', 'Bytes sent to a peer, WireGuard overhead included (peer labels as for receive).', (p) => p.tx);
    peerCounter('plexd_agent_peer_handshakes_total', 'Handshakes completed with a peer since the agent started (peer labels as for receive).', (p) => p.handshakes);
    new Gauge({
      name: 'plexd_agent_peer_last_handshake_age_seconds',
      help: 'Seconds since the last completed handshake with a peer; absent before the first (top peers only).',
      labelNames: ['peer'],
      registers,
      collect() {
        this.reset();
        const sc = self.#now();
        for (const p of sc.top) if (p.lastHandshakeMs > 0) this.set({ peer: p.label }, Math.max(0, (sc.nowMs - p.lastHandshakeMs) / 1000));
      },
    });
    new Gauge({
      name: 'plexd_agent_peer_path',
      help: 'The path traffic to a peer takes: 1 on the series of its path (direct or relayed; top peers only).',
      labelNames: ['peer', 'path'],
      registers,
      collect() {
        this.reset();
        for (const p of self.#now().top) this.set({ peer: p.label, path: p.path }, 1);
      },
    });
    new Gauge({
      name: 'plexd_agent_peers',
      help: 'Configured peers by path (direct or relayed).',
      labelNames: ['path'],
      registers,
      collect() {
        const { byPath } = self.#now();
        this.set({ path: 'direct' }, byPath.direct);
        this.set({ path: 'relayed' }, byPath.relayed);
      },
    });
    new Counter({
      name: 'plexd_agent_device_drops_total',
      help: 'Packets the WireGuard device dropped, by reason (the engine\'s drop reasons, plus tun-write: the TUN refused a decrypted packet, send: the socket refused a datagram).',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        const sc = self.#now();
        const dev = self.#source.device.counters;
        for (const r of DEVICE_DROP_REASONS) this.inc({ reason: r }, r === 'tun-write' ? dev.tunWriteDropped : r === 'send' ? dev.sendDropped : sc.drops[r]);
      },
    });
    new Counter({
      name: 'plexd_agent_policy_accepted_packets_total',
      help: 'Packets the policy filter let through, by direction (outbound, inbound; tracked: as part of a known flow).',
      labelNames: ['direction'],
      registers,
      collect() {
        this.reset();
        const a = self.#now().policy.accepted;
        this.inc({ direction: 'outbound' }, a.outbound);
        this.inc({ direction: 'inbound' }, a.inbound);
        this.inc({ direction: 'tracked' }, a.tracked);
      },
    });
    new Counter({
      name: 'plexd_agent_policy_dropped_packets_total',
      help: 'Packets the policy filter refused, by reason.',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        const d = self.#now().policy.drops;
        for (const r of POLICY_DROP_REASONS) this.inc({ reason: r }, d[r]);
      },
    });
    new Counter({
      name: 'plexd_agent_policy_updates_total',
      help: 'Policy revisions received from the control plane, by result (applied, rejected).',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset();
        const u = self.#now().policy.updates;
        this.inc({ result: 'applied' }, u.applied);
        this.inc({ result: 'rejected' }, u.rejected);
      },
    });
    new Gauge({
      name: 'plexd_agent_policy_conntrack_entries',
      help: 'Flows in the policy filter\'s connection table.',
      registers,
      collect() {
        this.set(self.#now().policy.conntrack.entries);
      },
    });
    new Gauge({
      name: 'plexd_agent_policy_enforcing',
      help: '1 while a policy revision is in force, 0 before the first (default allow or deny).',
      registers,
      collect() {
        this.set(self.#now().policy.mode === 'enforcing' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'plexd_agent_event_delivery_mode',
      help: 'How control-plane events arrive: 1 on the mode in use (streaming: SSE; pull_only, degraded_polling: state pulls).',
      labelNames: ['mode'],
      registers,
      collect() {
        const mode = self.#source.events.mode;
        for (const m of DELIVERY_MODES) this.set({ mode: m }, m === mode ? 1 : 0);
      },
    });
    new Gauge({
      name: 'plexd_agent_event_stream_connected',
      help: '1 while the SSE event stream is connected.',
      registers,
      collect() {
        this.set(self.#source.events.connected ? 1 : 0);
      },
    });
    const eventCounter = (name: string, help: string, key: EventCounter, minus = 0): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(Math.max(0, self.#source.events.counters[key] - minus));
        },
      });
    };
    eventCounter('plexd_agent_event_stream_connects_total', 'SSE event stream connections opened.', 'connects');
    eventCounter('plexd_agent_event_stream_reconnects_total', 'SSE event stream connections opened after the first.', 'connects', 1);
    eventCounter('plexd_agent_event_stream_failures_total', 'SSE event stream attempts that failed or broke.', 'failures');
    eventCounter('plexd_agent_state_polls_total', 'State pulls made because the event stream was not delivering.', 'polls');
    const resultCounter = (name: string, help: string, ok: 'heartbeats' | 'reconciles', failed: 'heartbeatFailures' | 'reconcileFailures'): void => {
      new Counter({
        name,
        help,
        labelNames: ['result'],
        registers,
        collect() {
          this.reset();
          this.inc({ result: 'ok' }, self.#source.counters[ok]);
          this.inc({ result: 'failed' }, self.#source.counters[failed]);
        },
      });
    };
    resultCounter('plexd_agent_heartbeats_total', 'Heartbeats sent, by result (ok, failed).', 'heartbeats', 'heartbeatFailures');
    resultCounter('plexd_agent_reconciles_total', 'State reconciles, by result (ok, failed).', 'reconciles', 'reconcileFailures');
    new Gauge({
      name: 'plexd_agent_ready',
      help: '1 while the agent is ready (/readyz answers 200).',
      registers,
      collect() {
        this.set(self.#source.ready ? 1 : 0);
      },
    });
  }
}
