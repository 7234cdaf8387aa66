// One path changes a node's endpoint: a heartbeat's nat_summary and PUT /endpoint both go through
// it, so every change (and only a change) reaches the peers as peer_endpoint_changed, whichever
// route reported it first.

import { describe, expect, it } from 'vitest';
import { harnessEach, openStream } from './harness.js';

const h = harnessEach({}, { open: true });

const now = () => new Date().toISOString();

describe('endpoint changes', () => {
  it('a heartbeat nat_summary endpoint is announced, and a later identical PUT is not', async () => {
    const a = await h.register();
    const b = await h.register();
    const s = await openStream(h.cp.url, b.node_id, b.auth);
    try {
      const changed = () => s.events.filter((e) => e.envelope.type === 'peer_endpoint_changed').map((e) => e.envelope.payload);
      const beat = (nat: Record<string, string>) => h.call('POST', `/v1/nodes/${a.node_id}/heartbeat`, { client_now: now(), binary_checksum: 'ab', binary_version: '0.1.0', nat_summary: nat }, a.auth);
      const put = (endpoint: string) => h.call('PUT', `/v1/nodes/${a.node_id}/endpoint`, { endpoint, nat_type: 'full_cone', reported_at: now() }, a.auth);

      expect((await beat({ endpoint: '192.0.2.1:51820', nat_type: 'full_cone' })).status).toBe(200);
      await s.next((e) => e.envelope.type === 'peer_endpoint_changed');
      expect(changed()).toEqual([{ node_id: a.node_id, endpoint: '192.0.2.1:51820' }]);
      expect(h.cp.store.node(a.node_id)).toMatchObject({ endpoint: '192.0.2.1:51820', nat_type: 'full_cone' });

      // Same endpoint again, by either route: nothing to announce. nat_type alone is stored.
      expect((await put('192.0.2.1:51820')).status).toBe(200);
      expect((await beat({ endpoint: '192.0.2.1:51820' })).status).toBe(200);
      expect((await beat({ nat_type: 'symmetric' })).status).toBe(200);
      expect(h.cp.store.node(a.node_id)).toMatchObject({ endpoint: '192.0.2.1:51820', nat_type: 'symmetric' });
      expect((await beat({})).status).toBe(200);

      // A real change by PUT, then one by heartbeat: each announced once, in order.
      expect((await put('192.0.2.2:51820')).status).toBe(200);
      expect((await beat({ endpoint: '192.0.2.3:4500', nat_type: 'port_restricted' })).status).toBe(200);
      await s.next((e) => e.envelope.type === 'peer_endpoint_changed' && e.envelope.payload['endpoint'] === '192.0.2.3:4500');
      expect(changed()).toEqual([
        { node_id: a.node_id, endpoint: '192.0.2.1:51820' },
        { node_id: a.node_id, endpoint: '192.0.2.2:51820' },
        { node_id: a.node_id, endpoint: '192.0.2.3:4500' },
      ]);
      const st = await h.call('GET', `/v1/nodes/${b.node_id}/state`, undefined, b.auth);
      expect(st.body.peers[0].endpoint).toBe('192.0.2.3:4500');
    } finally {
      s.close();
    }
  });
});
