// Visibility benchmark (issue 23): 10,000 nodes in 100 groups (label grp=g0..g99, 100 nodes each)
// on one database, a policy of 100 group rules (g_i may reach g_i+1 on TCP 443, so each node sees
// the 200 nodes of its two neighbouring groups), and an event stream per node (in-memory sinks on
// the real EventBus). Measures one policy change (a rule g0 -> g50 added, then removed): the time
// to recompute visibility and append the events in the store's transaction, the time to deliver
// them to the streams (policy_updated goes only to the nodes whose compiled rules or peers change),
// the state pulls of the nodes that gained or lost peers, and how many nodes an event reached
// (each of them pulls); plus a relabel of one node, the cold model build, and peer-list sizes.
// Run with `npm run bench:visibility` (NODES, GROUPS to change the fleet). In-process, no network.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventBus } from '../dist/control-plane/event-bus.js';
import { ControlPlaneStore } from '../dist/control-plane/store.js';
import { Visibility } from '../dist/control-plane/visibility.js';

const NODES = Number(process.env.NODES ?? 10_000);
const GROUPS = Number(process.env.GROUPS ?? 100);
const dir = mkdtempSync(join(tmpdir(), 'cp-vis-bench-'));
const ms = (t0) => Math.round((performance.now() - t0) * 10) / 10;
const rule = (from, to) => ({ action: 'allow', protocol: 'tcp', source_cidr: '0.0.0.0/0', destination_cidr: '0.0.0.0/0', ports: { from: 443, to: 443 }, source_group: `grp=g${from}`, destination_group: `grp=g${to}` });

/** A ServerResponse stand-in counting what the bus writes (and which nodes got an event). */
function sink(counter, nodeId) {
  return {
    writeHead() {},
    write(text) {
      counter.bytes += text.length;
      if (text.startsWith('id: ')) {
        counter.events++;
        counter.reached.add(nodeId);
      }
      return true;
    },
    on() {},
    once() {},
    end() {},
    destroy() {},
    writableEnded: false,
    destroyed: false,
    writableLength: 0,
  };
}

try {
  const store = ControlPlaneStore.open(join(dir, 'cp.db'));
  // The fleet, inserted in bulk (registration is not what is measured here).
  let t0 = performance.now();
  const insert = store.db.prepare(`INSERT INTO nodes (node_id, project_id, resource_handle, mode, public_key, mesh_ip, mesh_ip_num, nsk_hash, status, registered_at, last_heartbeat_at, labels, endpoint)
    VALUES (?, 'default', ?, 'node', ?, ?, ?, ?, 'online', ?, ?, ?, ?)`);
  const base = (10 << 24) | (100 << 16);
  store.db.transaction(() => {
    for (let i = 0; i < NODES; i++) {
      const ip = base + 1 + i;
      const text = `10.100.${(ip >> 8) & 255}.${ip & 255}`;
      insert.run(randomUUID(), `n${i}`, randomBytes(32).toString('base64'), text, ip, randomBytes(32), Date.now(), Date.now(), JSON.stringify({ grp: `g${i % GROUPS}` }), `192.0.2.1:${10000 + (i % 50000)}`);
    }
    store.db.prepare("UPDATE projects SET membership_gen = 1 WHERE id = 'default'").run();
  })();
  const nodes = store.listNodes();
  console.log(`fleet: ${NODES} nodes in ${GROUPS} groups inserted in ${ms(t0)} ms`);

  const bus = new EventBus(store, { keepAliveMs: 3_600_000 });
  const counter = { events: 0, bytes: 0, reached: new Set() };
  for (const n of nodes) bus.open(n, sink(counter, n.node_id), undefined);

  const ring = Array.from({ length: GROUPS }, (_, i) => rule(i, (i + 1) % GROUPS));
  t0 = performance.now();
  store.setPolicy('default', ring);
  const initialSet = ms(t0);
  t0 = performance.now();
  bus.pump();
  console.log(`initial policy (${GROUPS} group rules): set ${initialSet} ms, delivered ${counter.events} events in ${ms(t0)} ms`);

  const sizes = nodes.map((n) => store.visibility('default').peersOf(n.node_id).size).sort((a, b) => a - b);
  const pick = (p) => sizes[Math.min(sizes.length - 1, Math.floor(p * sizes.length))];
  console.log(`peer-list sizes: min ${sizes[0]}, median ${pick(0.5)}, max ${sizes[sizes.length - 1]} (was ${NODES - 1} for every node before issue 23)`);

  t0 = performance.now();
  const rebuilt = new Visibility(store.visibility('default').nodes, ring);
  const coldBuild = ms(t0);
  void rebuilt;

  const change = async (label, rules) => {
    counter.events = 0;
    counter.bytes = 0;
    counter.reached.clear();
    const before = store.visibility('default');
    const t = performance.now();
    store.setPolicy('default', rules);
    const recompute = ms(t);
    const t2 = performance.now();
    bus.pump();
    const deliver = ms(t2);
    const after = store.visibility('default');
    const affected = nodes.filter((n) => before.peersOf(n.node_id).size !== after.peersOf(n.node_id).size);
    const t3 = performance.now();
    for (const n of affected) store.stateOf(n);
    const pulls = ms(t3);
    const onePull = affected.length === 0 ? 0 : Math.round((pulls / affected.length) * 100) / 100;
    // Every node an event reaches pulls its state (the agent reconciles on any event but key ones).
    const pulling = counter.reached.size;
    console.log(`${label}: recompute + events ${recompute} ms; delivered ${counter.events} events (${(counter.bytes / 1024).toFixed(0)} KiB) to ${pulling} of ${NODES} streams in ${deliver} ms; ${affected.length} nodes changed peers, their state pulls ${pulls} ms (${onePull} ms each); ${pulling} nodes pull: ~${Math.round(onePull * pulling)} ms of server time`);
    return { recomputeMs: recompute, deliverMs: deliver, events: counter.events, nodesReached: pulling, affectedNodes: affected.length, affectedPullsMs: pulls, msPerPull: onePull, pullServerMs: Math.round(onePull * pulling) };
  };
  const widen = await change('one rule added (g0 -> g50)', [...ring, rule(0, 50)]);
  const narrow = await change('the rule removed again', ring);

  // A sample of ordinary state pulls (what every node does after policy_updated).
  const sample = nodes.slice(0, 500);
  t0 = performance.now();
  for (const n of sample) store.stateOf(n);
  const pullMs = Math.round((ms(t0) / sample.length) * 100) / 100;
  console.log(`state pull of a node with ~${pick(0.5)} peers: ${pullMs} ms (were all ${NODES} nodes to pull, as after a project-wide policy_updated: ~${Math.round(pullMs * NODES)} ms of server time)`);

  counter.events = 0;
  t0 = performance.now();
  store.labelNode(nodes[0].node_id, { grp: 'g7' });
  const relabel = ms(t0);
  bus.pump();
  console.log(`relabel one node (g0 -> g7): ${relabel} ms, ${counter.events} events`);
  console.log(`cold model build: ${coldBuild} ms`);

  // The behaviour before issue 23 for comparison: every node sees every other.
  store.setPolicy('default', [{ action: 'allow', protocol: 'any', source_cidr: '10.100.0.0/16', destination_cidr: '10.100.0.0/16', ports: null }]);
  bus.pump();
  t0 = performance.now();
  for (const n of nodes.slice(0, 20)) store.stateOf(n);
  const openPullMs = Math.round((ms(t0) / 20) * 100) / 100;
  console.log(`for comparison, allow-all (every node sees all ${NODES - 1} others, as before issue 23): state pull ${openPullMs} ms`);

  const result = { nodes: NODES, groups: GROUPS, initialSetMs: initialSet, peerListSizes: { min: sizes[0], median: pick(0.5), max: sizes[sizes.length - 1] }, widen, narrow, msPerStatePull: pullMs, msPerStatePullAllowAll: openPullMs, relabelMs: relabel, coldBuildMs: coldBuild };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL(`./results/visibility-${new Date().toISOString().slice(0, 10)}.json`, import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  bus.close();
  store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
