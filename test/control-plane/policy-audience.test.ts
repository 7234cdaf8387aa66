// Who gets policy_updated (issue 23): on random labelled fleets and random edits of a policy
// (rules added, removed, moved, changed; groups and CIDRs, allow and deny), the nodes whose
// compiled rules (policyFor) or visible peers differ between two revisions, computed the slow way
// by comparing every node, are exactly the nodes told, unless the revision went to the project.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlPlaneError } from '../../src/control-plane/errors.js';
import { rulesFingerprint } from '../../src/control-plane/policy.js';
import { ControlPlaneStore } from '../../src/control-plane/store.js';
import type { PolicyRule } from '../../src/control-plane/visibility.js';
import { fuzzIterations, fuzzSeed, fuzzTimeout } from '../helpers/fuzz.js';
import { prng } from '../helpers/prng.js';

const NODES = 24;
const ROLES = ['web', 'db', 'cache', 'ops'];
const ZONES = ['a', 'b'];

let dir = '';
afterEach(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
  dir = '';
});

/** A store with NODES online nodes at 10.100.0.1.. labelled role=…, zone=… (some unlabelled). */
function fleet(rand: () => number): { store: ControlPlaneStore; ids: string[] } {
  dir = mkdtempSync(join(tmpdir(), 'cp-audience-'));
  const store = ControlPlaneStore.open(join(dir, 'cp.db'));
  const insert = store.db.prepare(`INSERT INTO nodes (node_id, project_id, resource_handle, mode, public_key, mesh_ip, mesh_ip_num, nsk_hash, status, registered_at, last_heartbeat_at, labels)
    VALUES (?, 'default', ?, 'node', ?, ?, ?, ?, 'online', 0, 0, ?)`);
  const ids: string[] = [];
  store.db.transaction(() => {
    for (let i = 0; i < NODES; i++) {
      const id = randomUUID();
      ids.push(id);
      const labels = rand() < 0.15 ? null : JSON.stringify({ role: ROLES[Math.floor(rand() * ROLES.length)], zone: ZONES[Math.floor(rand() * ZONES.length)] });
      insert.run(id, `n${i}`, randomBytes(32).toString('base64'), `10.100.0.${i + 1}`, ((10 << 24) | (100 << 16) | (i + 1)) >>> 0, randomBytes(32), labels);
    }
    store.db.prepare("UPDATE projects SET membership_gen = 1 WHERE id = 'default'").run();
  })();
  return { store, ids };
}

function randomRule(rand: () => number): PolicyRule {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const side = (): { cidr: string; group?: string } => {
    const x = rand();
    if (x < 0.55) return { cidr: '0.0.0.0/0', group: rand() < 0.7 ? `role=${pick(ROLES)}` : `role=${pick(ROLES)},zone=${pick(ZONES)}` };
    if (x < 0.85) return { cidr: `10.100.0.${1 + Math.floor(rand() * NODES)}/32` };
    return { cidr: pick(['10.100.0.0/28', '10.100.0.16/28', '10.100.0.0/16']) };
  };
  const s = side();
  const d = side();
  return {
    action: rand() < 0.75 ? 'allow' : 'deny',
    protocol: pick(['tcp', 'udp', 'any'] as const),
    source_cidr: s.cidr,
    destination_cidr: d.cidr,
    ports: rand() < 0.5 ? null : { from: 443, to: 443 + Math.floor(rand() * 3) },
    ...(s.group === undefined ? {} : { source_group: s.group }),
    ...(d.group === undefined ? {} : { destination_group: d.group }),
  } as PolicyRule;
}

/** One random edit: add, remove, move or replace a rule (mostly group rules, so targeting happens). */
function edit(rand: () => number, rules: readonly PolicyRule[]): PolicyRule[] {
  const out = [...rules];
  const at = () => Math.floor(rand() * (out.length + 1));
  const x = rand();
  if (x < 0.4 || out.length === 0) out.splice(at(), 0, randomRule(rand));
  else if (x < 0.7) out.splice(Math.floor(rand() * out.length), 1);
  else if (x < 0.8) out.splice(at(), 0, ...out.splice(Math.floor(rand() * out.length), 1));
  else out[Math.floor(rand() * out.length)] = randomRule(rand);
  return out;
}

describe('policy_updated audience', () => {
  const iterations = fuzzIterations(400);
  it(`goes to exactly the nodes whose compiled rules or peers change (${iterations} revisions)`, { timeout: fuzzTimeout(iterations, 20) }, () => {
    const seed = fuzzSeed(0x23a0d);
    const rand = prng(seed);
    const { store, ids } = fleet(rand);
    try {
      const look = () => new Map(ids.map((id) => [id, `${rulesFingerprint(store.policyFor(store.node(id)!)?.rules ?? [])}|${[...store.visibility('default').peersOf(id)].sort().join()}`]));
      let rules: PolicyRule[] = [randomRule(rand)];
      store.setPolicy('default', rules);
      let targeted = 0;
      let everyone = 0;
      for (let i = 0; i < iterations; i++) {
        const next = edit(rand, rules);
        const before = look();
        const seq = store.db.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck().get() as number;
        try {
          if (!store.setPolicy('default', next).changed) continue;
        } catch (err) {
          if (err instanceof ControlPlaneError) continue; // e.g. an allow rule naming one address twice
          throw err;
        }
        rules = next;
        const after = look();
        const want = ids.filter((id) => before.get(id) !== after.get(id)).sort();
        const told = store.db.prepare("SELECT target_node FROM events WHERE type = 'policy_updated' AND seq > ?").pluck().all(seq) as Array<string | null>;
        const where = `seed ${seed} revision ${i}: ${JSON.stringify(next)}`;
        if (told.includes(null)) {
          expect(told, where).toEqual([null]);
          everyone++;
        } else {
          expect([...told].sort(), where).toEqual(want);
          targeted++;
        }
      }
      // Both paths ran (the random edits are mostly group rules).
      expect(targeted).toBeGreaterThan(iterations / 10);
      expect(everyone).toBeGreaterThan(0);
    } finally {
      store.close();
    }
  });
});
