// The additive endpoint-candidate and STUN-offer fields (issue 13): validated, deduplicated,
// bounded; absent fields leave the upstream bodies as they were.

import { describe, expect, it } from 'vitest';
import { MAX_CANDIDATES, parseEndpointRequest, parseRegisterResponse, parseStateResponse } from '../../src/api/index.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
const peer = (extra: object) => ({ node_id: 'n1', mesh_ip: '10.100.0.2', public_key: KEY, ...extra });

describe('endpoint candidates on the wire', () => {
  it('an endpoint report carries candidates, deduplicated in order; endpoint defaults to the first', () => {
    const r = parseEndpointRequest({ nat_type: 'unknown', candidates: ['192.168.1.5:51820', '[2001:db8::5]:51820', '192.168.1.5:51820'] });
    expect(r).toEqual({ ok: true, value: { endpoint: '192.168.1.5:51820', nat_type: 'unknown', reported_at: '', candidates: ['192.168.1.5:51820', '[2001:db8::5]:51820'] } });
    const kept = parseEndpointRequest({ endpoint: '203.0.113.9:4000', nat_type: 'unknown', candidates: ['192.168.1.5:51820'] });
    expect(kept.ok && kept.value.endpoint).toBe('203.0.113.9:4000');
  });

  it('a malformed, oversized or over-long candidate list is refused naming the field', () => {
    for (const candidates of [['nonsense'], ['1.2.3.4:0'], [7], 'x', Array.from({ length: MAX_CANDIDATES + 1 }, (_, i) => `10.0.0.${i}:1`)]) {
      const r = parseEndpointRequest({ endpoint: '1.2.3.4:1', nat_type: 'unknown', candidates });
      expect(r.ok, JSON.stringify(candidates)).toBe(false);
      if (!r.ok) expect(r.errors[0]!.field).toMatch(/^candidates/);
    }
    // Neither an endpoint nor a candidate: the upstream requirement stands.
    expect(parseEndpointRequest({ nat_type: 'unknown', candidates: [] }).ok).toBe(false);
  });

  it('peer entries of state and registration carry candidates and the STUN offer', () => {
    const state = parseStateResponse({ peers: [peer({ candidates: ['10.0.0.1:51820', '10.0.0.1:51820'] }), peer({ node_id: 'n2', candidates: [] })], stun_servers: ['10.77.0.1:18080'] });
    expect(state.ok).toBe(true);
    if (!state.ok) return;
    expect(state.value.peers[0]!.candidates).toEqual(['10.0.0.1:51820']);
    expect(state.value.peers[1]!.candidates).toBeUndefined();
    expect(state.value.stun_servers).toEqual(['10.77.0.1:18080']);
    expect(parseStateResponse({ peers: [peer({ candidates: ['10.0.0.1'] })] }).ok).toBe(false);
    const reg = parseRegisterResponse({ node_id: 'n', mesh_ip: '10.100.0.3', signing_public_key: KEY, signing_key_id: 'k', nsk: KEY, peer_snapshot: [peer({ candidates: ['10.0.0.1:1'] })], domain_mesh_cidr: '10.100.0.0/16', stun_servers: ['cp.example:3478'] });
    expect(reg.ok && reg.value.stun_servers).toEqual(['cp.example:3478']);
    expect(reg.ok && reg.value.peer_snapshot[0]!.candidates).toEqual(['10.0.0.1:1']);
    const none = parseStateResponse({ peers: [] });
    expect(none.ok && 'stun_servers' in none.value).toBe(false);
  });
});
