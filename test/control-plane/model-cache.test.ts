// The store's cached visibility model (store.ts #touchMembership): a registration appends its node
// to the model this process had current instead of re-reading the project. The appended model
// must be the one a fresh read builds, whatever the labels and rules.
import { expect, it } from 'vitest';
import { ControlPlaneStore } from '../../src/control-plane/store.js';
import { harnessEach, randomKey } from './harness.js';

const h = harnessEach();

it('a model grown by registrations equals one read afresh (nodes, order, labels, who sees whom)', () => {
  const s = h.cp.store;
  const roles = ['web', 'db', 'web', 'cache', 'db', 'web'];
  const tokens = roles.map((role) => s.createToken('default', 60_000, { role }).token);
  s.setPolicy('default', [
    { action: 'allow', protocol: 'any', source_group: 'role=web', destination_group: 'role=db', ports: null },
    { action: 'allow', protocol: 'tcp', source_cidr: '10.100.0.0/30', destination_cidr: '10.100.0.0/16', ports: { from: 22, to: 22 } },
  ] as never);
  s.visibility('default'); // current before the first registration, so every one appends
  const ids: string[] = [];
  for (const [i, role] of roles.entries()) {
    ids.push(s.register({ project_id: 'default', resource_handle: `h${i}-${role}`, bootstrap_token: tokens[i]!, nonce: `n${i}`, public_key: randomKey() }).node_id);
  }
  const grown = s.visibility('default');
  const fresh = ControlPlaneStore.open(h.dbFile);
  try {
    const read = fresh.visibility('default');
    expect(grown.nodes).toEqual(read.nodes);
    for (const a of ids) for (const b of ids) expect(grown.canSee(a, b), `${a} -> ${b}`).toBe(read.canSee(a, b));
    expect(ids.some((a) => ids.some((b) => a !== b && read.canSee(a, b)))).toBe(true);
  } finally {
    fresh.close();
  }
});
