// Endpoint candidates on the control plane (issue 13): stored per node (schema 6), returned in
// every peer entry (state, registration snapshot, peer events), announced when they change, and
// `endpoint` falls back to the first candidate. The STUN offer follows docs/nat.md's rule.

import { describe, expect, it } from 'vitest';
import { stunOffer } from '../../src/control-plane/routes.js';
import { harnessEach, openStream } from './harness.js';

const h = harnessEach({}, { open: true });
const now = () => new Date().toISOString();

describe('endpoint candidates', () => {
  it('a report stores candidates; peers get them in state, snapshots and one event per change', async () => {
    const a = await h.register();
    const b = await h.register();
    const s = await openStream(h.cp.url, b.node_id, b.auth);
    try {
      const put = (body: Record<string, unknown>) => h.call('PUT', `/v1/nodes/${a.node_id}/endpoint`, { nat_type: 'unknown', reported_at: now(), ...body }, a.auth);
      expect((await put({ candidates: ['192.168.7.2:51820', '[fd00::2]:51820'] })).status).toBe(200);
      await s.next((e) => e.envelope.type === 'peer_endpoint_changed');
      const st = await h.call('GET', `/v1/nodes/${b.node_id}/state`, undefined, b.auth);
      expect(st.body.peers[0]).toMatchObject({ node_id: a.node_id, endpoint: '192.168.7.2:51820', candidates: ['192.168.7.2:51820', '[fd00::2]:51820'] });
      const c = await h.register();
      expect(c.peer_snapshot.find((p) => p.node_id === a.node_id)?.candidates).toEqual(['192.168.7.2:51820', '[fd00::2]:51820']);

      // The same set again: nothing to announce. A changed order or a new address: announced.
      expect((await put({ candidates: ['192.168.7.2:51820', '[fd00::2]:51820'] })).status).toBe(200);
      expect((await put({ endpoint: '192.168.7.2:51820', candidates: ['192.168.7.2:51820'] })).status).toBe(200);
      await s.next((e) => e.envelope.type === 'peer_endpoint_changed' && (e.envelope.payload['candidates'] as string[]).length === 1);
      // An upstream-style report (no field) keeps the stored candidates.
      expect((await put({ endpoint: '192.168.7.2:51820' })).status).toBe(200);
      expect(JSON.parse(h.cp.store.node(a.node_id)!.candidates!)).toEqual(['192.168.7.2:51820']);
      const changes = s.events.filter((e) => e.envelope.type === 'peer_endpoint_changed').map((e) => e.envelope.payload);
      expect(changes).toEqual([
        { node_id: a.node_id, endpoint: '192.168.7.2:51820', candidates: ['192.168.7.2:51820', '[fd00::2]:51820'] },
        { node_id: a.node_id, endpoint: '192.168.7.2:51820', candidates: ['192.168.7.2:51820'] },
      ]);
    } finally {
      s.close();
    }
  });

  it('a node that never reported candidates has none in peer entries', async () => {
    const a = await h.register();
    const b = await h.register();
    const st = await h.call('GET', `/v1/nodes/${b.node_id}/state`, undefined, b.auth);
    expect(st.body.peers.find((p: { node_id: string }) => p.node_id === a.node_id)).not.toHaveProperty('candidates');
    expect(st.body).not.toHaveProperty('stun_servers');
  });
});

describe('STUN offer', () => {
  const req = (host: string | undefined) => ({ headers: host === undefined ? {} : { host } }) as never;
  it('a specific STUN address is offered as it is; a wildcard one under the host the agent used', () => {
    expect(stunOffer({ req: req('cp.example:443'), stun: { address: '10.77.0.1', port: 18080 } })).toEqual({ stun_servers: ['10.77.0.1:18080'] });
    expect(stunOffer({ req: req('x'), stun: { address: 'fd00::1', port: 3478 } })).toEqual({ stun_servers: ['[fd00::1]:3478'] });
    expect(stunOffer({ req: req('cp.example:8443'), stun: { address: '0.0.0.0', port: 3478 } })).toEqual({ stun_servers: ['cp.example:3478'] });
    expect(stunOffer({ req: req('[2001:db8::1]:8443'), stun: { address: '::', port: 3478 } })).toEqual({ stun_servers: ['[2001:db8::1]:3478'] });
    expect(stunOffer({ req: req(undefined), stun: { address: '0.0.0.0', port: 3478 } })).toEqual({});
    expect(stunOffer({ req: req('bad host/x'), stun: { address: '0.0.0.0', port: 3478 } })).toEqual({});
    expect(stunOffer({ req: req('cp.example') })).toEqual({});
  });
});

describe('STUN offer end to end', () => {
  const hs = harnessEach({ stun: '127.0.0.1:0' });
  it('registration and state carry the built-in STUN server', async () => {
    const a = await hs.register();
    const port = hs.cp.stunAddress!.port;
    expect(a.stun_servers).toEqual([`127.0.0.1:${port}`]);
    const st = await hs.call('GET', `/v1/nodes/${a.node_id}/state`, undefined, a.auth);
    expect(st.body.stun_servers).toEqual([`127.0.0.1:${port}`]);
  });
});
