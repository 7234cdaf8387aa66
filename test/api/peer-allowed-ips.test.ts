// A peer's extra allowed IPs (ours): a bridge's site subnets and, with NAT off, the access range.

import { describe, expect, it } from 'vitest';
import { parseStateResponse } from '../../src/api/index.js';

const KEY = Buffer.alloc(32, 7).toString('base64');

describe('peer allowed_ips on the wire', () => {
  it('carries the prefixes; absent or empty leaves the field out', () => {
    const r = parseStateResponse({ peers: [
      { node_id: 'b', mesh_ip: '10.100.255.254', public_key: KEY, allowed_ips: ['192.168.77.0/24', '10.101.0.0/16'] },
      { node_id: 'c', mesh_ip: '10.100.0.3', public_key: KEY, allowed_ips: [] },
      { node_id: 'd', mesh_ip: '10.100.0.4', public_key: KEY },
    ], policy: null, bridge: null, executions: [] });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.peers.map((p) => p.allowed_ips)).toEqual([['192.168.77.0/24', '10.101.0.0/16'], undefined, undefined]);
  });

  it('refuses a malformed prefix, naming it', () => {
    const r = parseStateResponse({ peers: [{ node_id: 'b', mesh_ip: '10.100.0.2', public_key: KEY, allowed_ips: ['192.168.77.0/33'] }], policy: null, bridge: null, executions: [] });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(JSON.stringify(r.errors)).toContain('allowed_ips[0]');
  });
});
