// The agent's Prometheus metrics (src/agent/prometheus.ts) over a fake agent: the exposition parses
// with an independent strict parser (test/helpers/prom-text.ts), names follow the conventions, every
// series the issue lists is there with the source's values, label values are escaped, peers are
// capped (300 peers -> at most limit + 1 peer values, the rest summed as "other"), handshakes come
// from the diagnostics channel of this device only, and a burst of scrapes costs one collection.

import { channel } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { AgentPrometheus, capPeers, PROMETHEUS_PEER_LIMIT, type AgentMetricsSource } from '../../src/agent/prometheus.js';
import { PolicyEnforcer } from '../../src/agent/policy-enforcer.js';
import { DROP_REASONS, type DropReason } from '../../src/core/actions.js';
import type { PeerSnapshot } from '../../src/device/contract.js';
import { DIAGNOSTICS_CHANNELS } from '../../src/device/diagnostics.js';
import { parsePromText, sampleValue, type PromFamily } from '../helpers/prom-text.js';

const NOW_MS = 1_800_000_000_000;

function key(i: number): Uint8Array {
  const k = new Uint8Array(32);
  k[0] = i & 0xff;
  k[1] = i >> 8;
  k[31] = 7;
  return k;
}
const b64 = (k: Uint8Array): string => Buffer.from(k).toString('base64');

function peer(i: number, rx: number, tx: number, handshakeMs = 0): PeerSnapshot {
  return {
    publicKey: key(i),
    presharedKey: null,
    endpoint: null,
    lastHandshakeTimeSec: Math.floor(handshakeMs / 1000),
    lastHandshakeTimeNsec: (handshakeMs % 1000) * 1e6,
    txBytes: BigInt(tx),
    rxBytes: BigInt(rx),
    persistentKeepaliveInterval: 0,
    allowedIps: [],
  };
}

function fakeAgent(peers: PeerSnapshot[], nodeIds = new Map<string, string>()) {
  const drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  drops.replay = 3;
  drops['no-endpoint'] = 5;
  const enforcer = new PolicyEnforcer({ enabled: true });
  let peerReads = 0;
  const device = {
    peers: () => {
      peerReads++;
      return peers;
    },
    drops: () => ({ ...drops }),
    counters: { tunWriteDropped: 2, sendDropped: 1, filteredOutbound: 0, filteredInbound: 0 },
  };
  const source: AgentMetricsSource = {
    device,
    nodeIds: () => nodeIds,
    pathOf: (k) => (k === b64(key(2)) ? 'relayed' : 'direct'),
    policy: () => enforcer.snapshot(),
    events: { mode: 'degraded_polling', connected: false, counters: { connects: 4, failures: 3, polls: 9 } },
    counters: { heartbeats: 10, heartbeatFailures: 2, reconciles: 6, reconcileFailures: 1 },
    ready: true,
    wallMs: () => NOW_MS,
  };
  return { source, device, reads: () => peerReads };
}

/** Every sample's value of `name`, by its `peer` label. */
function byPeer(f: Map<string, PromFamily>, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const fam of f.values()) for (const s of fam.samples) if (s.name === name) out.set(s.labels['peer']!, s.value);
  return out;
}

describe('prometheus text parser (test helper)', () => {
  it('accepts a well-formed exposition and rejects each kind of malformed one', () => {
    const good = '# HELP a_total A \\\\ help\\n.\n# TYPE a_total counter\na_total{x="q\\"\\\\\\n"} 1\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n';
    const f = parsePromText(good);
    expect(f.get('a_total')!.help).toBe('A \\ help\n.');
    expect(f.get('a_total')!.samples[0]!.labels['x']).toBe('q"\\\n');
    for (const bad of [
      'a{x="unterminated} 1\n',
      'a{x="bad \\t escape"} 1\n',
      'a{x=unquoted} 1\n',
      '1a 1\n',
      'a 1 2 3\n',
      'a one\n',
      'a 1\na 2\n',
      '# TYPE a counter\n# TYPE a counter\na 1\n',
      'a 1\n# TYPE a counter\n',
      'a 1\nb 1\na{x="y"} 1\n',
      '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n',
      '# TYPE h histogram\nh_bucket{le="2"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 3\nh_count 1\n',
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 3\n',
      'a 1',
    ]) {
      expect(() => parsePromText(bad), bad).toThrow();
    }
  });
});

describe('agent Prometheus metrics', () => {
  it('exposes the series the issue lists, with the source values, under Prometheus naming', async () => {
    const nodeIds = new Map([[b64(key(1)), 'node-one'], [b64(key(2)), 'evil"\\\nnode']]);
    const { source } = fakeAgent([peer(1, 1000, 2000, NOW_MS - 42_500), peer(2, 30, 40), peer(3, 5, 6)], nodeIds);
    const dev = {};
    const p = new AgentPrometheus(source, dev);
    try {
      p.observeHeartbeat(0.02, true);
      p.observeHeartbeat(3, true);
      p.observeHeartbeat(0.5, false);
      const text = await p.metrics();
      const f = parsePromText(text);
      for (const fam of f.values()) {
        expect(fam.help, fam.name).toBeTruthy();
        if (fam.type === 'counter') expect(fam.name, fam.name).toMatch(/_total$/);
        if (fam.name.startsWith('plexd_')) expect(fam.name).toMatch(/^plexd_agent_[a-z_]+$/);
      }
      expect(f.get('plexd_agent_peer_receive_bytes_total')?.type).toBe('counter');
      expect(byPeer(f, 'plexd_agent_peer_receive_bytes_total')).toEqual(new Map([['node-one', 1000], ['evil"\\\nnode', 30], [b64(key(3)), 5]]));
      expect(byPeer(f, 'plexd_agent_peer_transmit_bytes_total').get('node-one')).toBe(2000);
      // Escaped on the wire, intact after parsing.
      expect(text).toContain('peer="evil\\"\\\\\\nnode"');
      expect(byPeer(f, 'plexd_agent_peer_last_handshake_age_seconds')).toEqual(new Map([['node-one', 42.5]]));
      expect(sampleValue(f, 'plexd_agent_peer_path', { peer: 'evil"\\\nnode', path: 'relayed' })).toBe(1);
      expect(sampleValue(f, 'plexd_agent_peers', { path: 'direct' })).toBe(2);
      expect(sampleValue(f, 'plexd_agent_peers', { path: 'relayed' })).toBe(1);
      expect(sampleValue(f, 'plexd_agent_device_drops_total', { reason: 'replay' })).toBe(3);
      expect(sampleValue(f, 'plexd_agent_device_drops_total', { reason: 'no-endpoint' })).toBe(5);
      expect(sampleValue(f, 'plexd_agent_device_drops_total', { reason: 'tun-write' })).toBe(2);
      expect(sampleValue(f, 'plexd_agent_device_drops_total', { reason: 'send' })).toBe(1);
      expect(f.get('plexd_agent_device_drops_total')!.samples).toHaveLength(DROP_REASONS.length + 2);
      expect(sampleValue(f, 'plexd_agent_policy_dropped_packets_total', { reason: 'no-policy' })).toBe(0);
      expect(sampleValue(f, 'plexd_agent_policy_accepted_packets_total', { direction: 'outbound' })).toBe(0);
      expect(sampleValue(f, 'plexd_agent_policy_enforcing')).toBe(0);
      expect(sampleValue(f, 'plexd_agent_event_delivery_mode', { mode: 'degraded_polling' })).toBe(1);
      expect(sampleValue(f, 'plexd_agent_event_delivery_mode', { mode: 'streaming' })).toBe(0);
      expect(sampleValue(f, 'plexd_agent_event_stream_reconnects_total')).toBe(3);
      expect(sampleValue(f, 'plexd_agent_event_stream_connects_total')).toBe(4);
      expect(sampleValue(f, 'plexd_agent_heartbeats_total', { result: 'failed' })).toBe(2);
      expect(sampleValue(f, 'plexd_agent_ready')).toBe(1);
      expect(f.get('plexd_agent_heartbeat_duration_seconds')?.type).toBe('histogram');
      expect(sampleValue(f, 'plexd_agent_heartbeat_duration_seconds_count', { result: 'ok' })).toBe(2);
      expect(sampleValue(f, 'plexd_agent_heartbeat_duration_seconds_bucket', { result: 'ok', le: '0.025' })).toBe(1);
      expect(sampleValue(f, 'plexd_agent_heartbeat_duration_seconds_bucket', { result: 'ok', le: '5' })).toBe(2);
      // prom-client's default metrics, from the process-wide registry.
      expect(f.get('process_cpu_seconds_total')?.type).toBe('counter');
      expect(f.has('nodejs_heap_size_used_bytes')).toBe(true);
    } finally {
      p.close();
    }
  });

  it('300 peers: at most limit + 1 peer values; the busiest have their own, the rest sum as "other"', async () => {
    const peers = Array.from({ length: 300 }, (_, i) => peer(i, (i + 1) * 10, i));
    const { source } = fakeAgent(peers);
    const p = new AgentPrometheus(source, {});
    try {
      const f = parsePromText(await p.metrics());
      for (const name of ['plexd_agent_peer_receive_bytes_total', 'plexd_agent_peer_transmit_bytes_total', 'plexd_agent_peer_handshakes_total']) {
        const values = byPeer(f, name);
        expect(values.size, name).toBe(PROMETHEUS_PEER_LIMIT + 1);
      }
      const rx = byPeer(f, 'plexd_agent_peer_receive_bytes_total');
      expect(rx.get(b64(key(299)))).toBe(3000);
      expect(rx.has(b64(key(0)))).toBe(false);
      const expectOther = peers.slice(0, 300 - PROMETHEUS_PEER_LIMIT).reduce((n, x) => n + Number(x.rxBytes), 0);
      expect(rx.get('other')).toBe(expectOther);
      expect([...rx.values()].reduce((a, b) => a + b, 0)).toBe(peers.reduce((n, x) => n + Number(x.rxBytes), 0));
      expect(byPeer(f, 'plexd_agent_peer_path').size).toBe(PROMETHEUS_PEER_LIMIT);
      expect(sampleValue(f, 'plexd_agent_peers', { path: 'direct' })).toBe(299);
    } finally {
      p.close();
    }
    const small = new AgentPrometheus(source, {}, { peerLimit: 3 });
    try {
      expect(byPeer(parsePromText(await small.metrics()), 'plexd_agent_peer_receive_bytes_total').size).toBe(4);
    } finally {
      small.close();
    }
    expect(() => new AgentPrometheus(source, {}, { peerLimit: -1 })).toThrow(RangeError);
  });

  it('capPeers is deterministic on ties and adds nothing when under the limit', () => {
    const p = (label: string, rx: number) => ({ label, rx, tx: 0, handshakes: 1, lastHandshakeMs: 0, path: 'direct' as const });
    expect(capPeers([p('b', 1), p('a', 1)], 5)).toEqual({ top: [p('a', 1), p('b', 1)], other: undefined });
    expect(capPeers([p('b', 1), p('a', 1), p('c', 9)], 1)).toEqual({ top: [p('c', 9)], other: { rx: 2, tx: 0, handshakes: 2 } });
  });

  it('counts handshakes from the diagnostics channel for its own device only, and stops at close', async () => {
    const { source } = fakeAgent([peer(1, 1, 1), peer(2, 1, 1)]);
    const mine = {};
    const p = new AgentPrometheus(source, mine);
    const ch = channel(DIAGNOSTICS_CHANNELS['handshake-complete']);
    ch.publish({ device: mine, publicKey: key(1) });
    ch.publish({ device: mine, publicKey: key(1) });
    ch.publish({ device: mine, publicKey: key(2) });
    ch.publish({ device: {}, publicKey: key(2) });
    const f = parsePromText(await p.metrics());
    expect(byPeer(f, 'plexd_agent_peer_handshakes_total')).toEqual(new Map([[b64(key(1)), 2], [b64(key(2)), 1]]));
    p.close();
    ch.publish({ device: mine, publicKey: key(1) });
    expect(byPeer(parsePromText(await p.metrics()), 'plexd_agent_peer_handshakes_total').get(b64(key(1)))).toBe(2);
  });

  it('a burst of 100 concurrent scrapes reads the peers once and answers every one', async () => {
    const { source, reads } = fakeAgent([peer(1, 1, 1)]);
    const p = new AgentPrometheus(source, {});
    try {
      const texts = await Promise.all(Array.from({ length: 100 }, () => p.metrics()));
      expect(new Set(texts).size).toBe(1);
      expect(reads()).toBe(1);
      await p.metrics();
      expect(reads()).toBe(2);
    } finally {
      p.close();
    }
  });
});
