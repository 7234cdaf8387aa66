// Endpoint discovery (src/agent/nat-discovery.ts): server parsing and name resolution, and the
// report loop through a fake NAT in front of two STUN responders: classification reported with
// PUT endpoint, not repeated while unchanged, repeated at once when the mapping changes, and the
// heartbeat's nat_summary; reported_at and the re-report period follow the injected clock.

import { describe, expect, it } from 'vitest';
import type { EndpointRequest } from '../../src/api/types.js';
import { EndpointDiscovery, parseStunServer, resolveStunServers } from '../../src/agent/nat-discovery.js';
import type { Endpoint } from '../../src/io/bind.js';
import { ManualClock } from '../../src/io/clock.js';
import { silentLogger } from '../../src/log/logger.js';
import { StunClient } from '../../src/nat/stun-client.js';
import { StunResponder } from '../../src/nat/stun-server.js';

describe('parseStunServer / resolveStunServers', () => {
  it('parses host, port and IPv6 forms and refuses junk', async () => {
    expect(parseStunServer('198.18.0.1')).toEqual({ host: '198.18.0.1', port: 3478 });
    expect(parseStunServer('stun.example:3479')).toEqual({ host: 'stun.example', port: 3479 });
    expect(parseStunServer('[2001:db8::1]:19302')).toEqual({ host: '2001:db8::1', port: 19302 });
    expect(parseStunServer('2001:db8::1')).toEqual({ host: '2001:db8::1', port: 3478 });
    for (const bad of ['', 'a:b', 'host:70000', 'host:0', '[::1']) expect(() => parseStunServer(bad), bad).toThrow(RangeError);
    const asked: string[] = [];
    const r = await resolveStunServers(['198.18.0.1:1', 'stun.lab'], async (h) => (asked.push(h), '198.18.0.9'));
    expect(r).toEqual([{ address: '198.18.0.1', port: 1 }, { address: '198.18.0.9', port: 3478 }]);
    expect(asked).toEqual(['stun.lab']);
  });
});

describe('EndpointDiscovery', () => {
  function lab(symmetric: () => boolean, clock?: ManualClock) {
    const responder = new StunResponder({ rateLimit: false });
    let nextPort = 40000;
    const mapped = new Map<string, number>();
    let publicIp = '203.0.113.7';
    const client: StunClient = new StunClient({
      rtoMs: 10,
      send: (data, to) => {
        const k = symmetric() ? `${to.address}:${to.port}` : 'any';
        if (!mapped.has(k)) mapped.set(k, symmetric() ? nextPort++ : 51820);
        const from: Endpoint = { address: publicIp, port: mapped.get(k)! };
        const a = responder.handle(data, from, 0);
        if (a.kind === 'reply') queueMicrotask(() => client.receive(a.data, to));
      },
    });
    const reports: EndpointRequest[] = [];
    const d = new EndpointDiscovery({
      client,
      servers: ['198.18.0.1', '198.18.0.2:3478'],
      refreshMs: 60_000,
      localPort: () => 51820,
      report: async (req) => (reports.push(req), { accepted_at: '', stale_after: 120 }),
      log: silentLogger,
      ...(clock ? { clock } : {}),
    });
    return { d, reports, setIp: (ip: string) => ((publicIp = ip), mapped.clear()) };
  }

  it('reports full_cone once, again only when the mapping changes; nat_summary follows', async () => {
    const { d, reports, setIp } = lab(() => false);
    const signal = new AbortController().signal;
    expect(d.summary).toEqual({});
    await d.round(signal);
    await d.round(signal);
    expect(reports.map((r) => [r.endpoint, r.nat_type])).toEqual([['203.0.113.7:51820', 'full_cone']]);
    expect(d.summary).toEqual({ endpoint: '203.0.113.7:51820', nat_type: 'full_cone' });
    setIp('203.0.113.8');
    await d.round(signal);
    expect(reports.map((r) => r.endpoint)).toEqual(['203.0.113.7:51820', '203.0.113.8:51820']);
  });

  it('reports symmetric when the two servers see different mappings', async () => {
    const { d, reports } = lab(() => true);
    await d.round(new AbortController().signal);
    expect(reports).toHaveLength(1);
    expect(reports[0]!.nat_type).toBe('symmetric');
  });

  it('takes reported_at from its clock and re-reports an unchanged endpoint once the period passed', async () => {
    const clock = new ManualClock(0, Date.UTC(2032, 5, 6));
    const { d, reports } = lab(() => false, clock);
    const signal = new AbortController().signal;
    await d.round(signal);
    expect(reports.map((r) => r.reported_at)).toEqual([new Date(Date.UTC(2032, 5, 6)).toISOString()]);
    // stale_after 120 s: an unchanged endpoint is re-reported every 60 s (min(60, 120 - 30) s).
    clock.advance(59_999);
    await d.report(signal);
    expect(reports).toHaveLength(1);
    clock.advance(1);
    await d.report(signal);
    expect(reports).toHaveLength(2);
    expect(reports[1]!.reported_at).toBe(new Date(Date.UTC(2032, 5, 6) + 60_000).toISOString());
  });
});
