// Per-request work that grew with the fleet (issue 11 item 4): a path report is bounded by the
// node's peer count, evaluated with one lookup per entry and no pass over the fleet, and rate
// limited per node (429 problem+json with Retry-After, on the server's injected clock); an
// endpoint report evaluates only the reporting node's own pairs.

import { describe, expect, it, vi } from 'vitest';
import { formatRfc3339 } from '../../src/api/index.js';
import { ManualClock } from '../../src/io/clock.js';
import { PATH_REPORT_SLACK } from '../../src/control-plane/relay-assigner.js';
import { harnessEach, type Registered } from './harness.js';

describe('control plane per-request cost', () => {
  const clock = new ManualClock(0, Date.now());
  const h = harnessEach({ sweepMs: 60_000, clock }, { open: true });

  const endpoint = (n: Registered, ep: string, nat: string) =>
    h.call('PUT', `/v1/nodes/${n.node_id}/endpoint`, { endpoint: ep, nat_type: nat, reported_at: formatRfc3339(clock.wallMs()) }, n.auth);
  const paths = (n: Registered, list: readonly { node_id: string; direct: boolean }[]) => h.call('POST', `/v1/nodes/${n.node_id}/peer-paths`, { paths: list }, n.auth);
  const fleet = async (n: number) => {
    const out: Registered[] = [];
    for (let i = 0; i < n; i++) out.push(await h.register());
    return out;
  };

  it('finds a node\'s registrations by index, not by scanning them all (authenticated requests and removal)', () => {
    const db = h.cp.store.db;
    // PostgreSQL: with sequential scans priced out, a plan without the index has none to use.
    const plan = (sql: string) =>
      db.dialect === 'postgres'
        ? (db.exec('SET enable_seqscan = off'), (db.prepare(`EXPLAIN ${sql}`).pluck().all('n') as string[]).join('; '))
        : (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('n') as { detail: string }[]).map((r) => r.detail).join('; ');
    const usesIndex = db.dialect === 'postgres' ? /Index Scan (using|on) registrations_node/ : /USING INDEX registrations_node/;
    expect(plan('UPDATE registrations SET nsk = NULL WHERE node_id = ? AND nsk IS NOT NULL')).toMatch(usesIndex);
    expect(plan('DELETE FROM registrations WHERE node_id = ?')).toMatch(usesIndex);
    if (db.dialect === 'postgres') db.exec('RESET enable_seqscan');
  });

  it('refuses a path report with more entries than the node has peers (413 problem+json)', async () => {
    const [a, b, c] = await fleet(3);
    const tooMany = Array.from({ length: 2 + PATH_REPORT_SLACK + 1 }, (_, i) => ({ node_id: i % 2 === 0 ? b!.node_id : c!.node_id, direct: false }));
    const r = await paths(a!, tooMany);
    expect(r.status).toBe(413);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(r.body.code).toBe('payload_too_large');
    expect((await paths(a!, tooMany.slice(0, 2 + PATH_REPORT_SLACK))).status).toBe(200);
  });

  it('evaluates a path report with one lookup per entry and no pass over the fleet', async () => {
    const bridge = await h.register({ mode: 'bridge' });
    await endpoint(bridge, '198.18.0.10:51820', 'full_cone');
    const [a, ...peers] = await fleet(25);
    const relay = h.cp.relay!;
    const scans = vi.spyOn(relay, 'evaluate');
    const lookups = vi.spyOn(h.cp.store, 'node');
    const r = await paths(a!, peers.map((p) => ({ node_id: p.node_id, direct: false })));
    expect(r.status).toBe(200);
    expect(relay.sessions()).toHaveLength(24);
    expect(scans).not.toHaveBeenCalled();
    // authenticate's own lookup plus one per entry.
    expect(lookups).toHaveBeenCalledTimes(1 + 24);
  });

  it('evaluates an endpoint report of an ordinary node without a pass over the fleet', async () => {
    const bridge = await h.register({ mode: 'bridge' });
    await endpoint(bridge, '198.18.0.10:51820', 'full_cone');
    const [a, b] = await fleet(2);
    await endpoint(b!, '203.0.113.2:51820', 'full_cone');
    const scans = vi.spyOn(h.cp.relay!, 'evaluate');
    expect((await endpoint(a!, '203.0.113.1:51820', 'symmetric')).status).toBe(200);
    expect(scans).not.toHaveBeenCalled();
    expect(h.cp.relay!.sessions()).toEqual([expect.objectContaining({ reason: 'nat-type' })]);
  });

  it('rate limits path reports per node: 429 with Retry-After, other nodes unaffected, tokens refill with time', async () => {
    await h.start({ sweepMs: 60_000, clock, rateLimits: { 'peer-paths': { burst: 10, perSecond: 1 } } });
    const [a, b, c] = await fleet(3);
    const one = [{ node_id: b!.node_id, direct: true }, { node_id: c!.node_id, direct: true }]; // costs 3
    expect((await paths(a!, one)).status).toBe(200);
    expect((await paths(a!, one)).status).toBe(200);
    expect((await paths(a!, one)).status).toBe(200);
    const refused = await paths(a!, one);
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('rate_limited');
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(refused.headers.get('retry-after'))).toBe(2);
    expect((await paths(b!, [{ node_id: a!.node_id, direct: true }])).status).toBe(200);
    clock.advance(1000);
    expect((await paths(a!, one)).status).toBe(429);
    clock.advance(1000);
    expect((await paths(a!, one)).status).toBe(200);
  });

  it('rate limits endpoint reports and state pulls per node', async () => {
    await h.start({ sweepMs: 60_000, clock, rateLimits: { endpoint: { burst: 2, perSecond: 0.1 }, state: { burst: 3, perSecond: 0.1 } } });
    const [a] = await fleet(1);
    expect((await endpoint(a!, '203.0.113.1:51820', 'full_cone')).status).toBe(200);
    expect((await endpoint(a!, '203.0.113.1:51820', 'full_cone')).status).toBe(200);
    const r = await endpoint(a!, '203.0.113.1:51820', 'full_cone');
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('10');
    const state = () => h.call('GET', `/v1/nodes/${a!.node_id}/state`, undefined, a!.auth);
    for (let i = 0; i < 3; i++) expect((await state()).status).toBe(200);
    expect((await state()).status).toBe(429);
  });
});
