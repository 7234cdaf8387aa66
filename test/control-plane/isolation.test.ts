// Audiences (issue 11 item 12): a Last-Event-ID replay gives a node only its own targeted events
// (rotate_keys, action_request, peer_psk_assigned of another node never), and two projects are
// isolated: a node never sees the other project's nodes, PSKs or events, live or replayed.

import { describe, expect, it } from 'vitest';
import { createExecution } from '../../src/control-plane/actions.js';
import { harnessEach, openStream, type Registered } from './harness.js';

const h = harnessEach({}, { open: true });

/** A project-wide event that changes no pair's visibility (so no peer event follows it): the end
 *  marker a reader waits for (the allow-all set at start is revision 1). */
const MARKER = [{ action: 'allow' as const, protocol: 'any' as const, source_cidr: '10.100.0.0/16', destination_cidr: '10.100.0.0/16', ports: null }];
const isMarker = (e: { envelope: { type: string; payload: Record<string, unknown> } }): boolean => e.envelope.type === 'policy_updated' && e.envelope.payload.revision_id === '2';

describe('targeted events in a replay', () => {
  it('a replay from Last-Event-ID 0 holds no event targeted at another node', async () => {
    const a = await h.register();
    const b = await h.register();
    const c = await h.register();
    // Targeted at b (and c): rotate_keys, action_request, peer_psk_assigned.
    h.cp.store.requestKeyRotation(b.node_id);
    createExecution(h.cp.store, { nodeId: b.node_id, action: 'ping', parameters: { to: '10.0.0.1' } });
    h.cp.store.rotatePairPsk(b.node_id, c.node_id);
    h.cp.store.setPolicy('default', MARKER); // project-wide: the end marker
    const replay = async (n: Registered) => {
      const s = await openStream(h.cp.url, n.node_id, { ...n.auth, 'last-event-id': '0' });
      try {
        await s.next(isMarker);
        return s.events.map((e) => e.envelope);
      } finally {
        s.close();
      }
    };
    const ofA = await replay(a);
    expect(ofA.map((e) => e.type)).toEqual(['policy_updated', 'peer_added', 'peer_added', 'policy_updated']);
    expect(ofA.every((e) => e.scope === 'project:default')).toBe(true);
    const ofB = (await replay(b)).map((e) => e.type);
    expect(ofB).toEqual(['policy_updated', 'peer_added', 'peer_added', 'rotate_keys', 'action_request', 'peer_psk_assigned', 'policy_updated']);
  });
});

describe('isolation between projects', () => {
  it('a node sees, receives and derives nothing of another project', async () => {
    h.cp.store.createProject('p2');
    h.cp.store.setPolicy('p2', MARKER);
    const p2Token = () => h.cp.store.createToken('p2').token;
    const a1 = await h.register();
    const sa = await openStream(h.cp.url, a1.node_id, a1.auth);
    try {
      const b1 = await h.register({ project_id: 'p2', bootstrap_token: p2Token() });
      const a2 = await h.register();
      const b2 = await h.register({ project_id: 'p2', bootstrap_token: p2Token() });
      const p2Ids = [b1.node_id, b2.node_id];
      // Registration snapshots and state: only the own project's nodes.
      expect(a2.peer_snapshot.map((p) => p.node_id)).toEqual([a1.node_id]);
      expect(b2.peer_snapshot.map((p) => p.node_id)).toEqual([b1.node_id]);
      const stateOf = async (n: Registered) => (await h.call('GET', `/v1/nodes/${n.node_id}/state`, undefined, n.auth)).body;
      const sa1 = await stateOf(a1);
      const sb1 = await stateOf(b1);
      expect(sa1.peers.map((p: { node_id: string }) => p.node_id)).toEqual([a2.node_id]);
      expect(sb1.peers.map((p: { node_id: string }) => p.node_id)).toEqual([b2.node_id]);
      const a1Text = JSON.stringify(sa1);
      for (const id of p2Ids) expect(a1Text).not.toContain(id);
      // No PSK of p2 is a PSK of default.
      const pskOf = (st: { peers: Array<{ psk: string }> }) => st.peers.map((p) => p.psk);
      for (const psk of pskOf(sb1)) expect(pskOf(sa1)).not.toContain(psk);
      // Events: p2's policy, rotations and registrations never reach a1, live or replayed.
      h.cp.store.setPolicy('p2', [...MARKER, ...MARKER]);
      h.cp.store.rotatePairPsk(b1.node_id, b2.node_id);
      h.cp.store.setPolicy('default', MARKER);
      await sa.next(isMarker);
      const live = sa.events.map((e) => e.envelope);
      expect(live.map((e) => e.type)).toEqual(['peer_added', 'policy_updated']);
      const replay = await openStream(h.cp.url, a1.node_id, { ...a1.auth, 'last-event-id': '0' });
      try {
        await replay.next(isMarker);
        const text = JSON.stringify(replay.events.map((e) => e.envelope));
        expect(replay.events.map((e) => e.envelope.type)).toEqual(['policy_updated', 'peer_added', 'policy_updated']);
        for (const id of p2Ids) expect(text).not.toContain(id);
        expect(text).not.toContain('project:p2');
      } finally {
        replay.close();
      }
    } finally {
      sa.close();
    }
  });
});
