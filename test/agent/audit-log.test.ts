// The Kubernetes audit-log reader (src/agent/audit-log.ts) on sample logs in a temp dir, polled by
// hand: JSON lines counted, a line split across writes joined, malformed and oversized lines
// counted and skipped, rotation by rename+create (the old file read to its end first) and by
// copytruncate, a missing file followed once it appears. In-cluster detection
// (src/agent/kubernetes.ts) needs KUBERNETES_SERVICE_HOST and the service account token file; an
// in-process agent in a pretend pod shows both in `status`.

import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { AuditLogReader } from '../../src/agent/audit-log.js';
import { detectKubernetes } from '../../src/agent/kubernetes.js';
import { ALLOW_ALL_MESH_RULES } from '../../src/control-plane/policy.js';
import { listTelemetry } from '../../src/control-plane/telemetry.js';
import { createLogger } from '../../src/log/logger.js';
import { until } from '../helpers/wait.js';
import { loopbackAgentConfig, startControlPlane, stopMesh } from './loopback-mesh.js';

const root = mkdtempSync(join(tmpdir(), 'plexd-audit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
/** One audit event line (kube-apiserver's JSON-lines shape). */
function event(verb = 'create'): string {
  n++;
  return JSON.stringify({ kind: 'Event', apiVersion: 'audit.k8s.io/v1', auditID: `id-${n}`, verb, user: { username: 'admin' }, objectRef: { resource: 'pods', namespace: 'default', name: `web-${n}` }, responseStatus: { code: 201 }, stageTimestamp: `2031-01-02T03:04:${String(n % 60).padStart(2, '0')}.000000Z` }) + '\n';
}

function fresh(name: string, maxLineBytes?: number): { path: string; reader: AuditLogReader; seen: string[] } {
  const dir = join(root, name);
  mkdirSync(dir);
  const path = join(dir, 'audit.log');
  const seen: string[] = [];
  const reader = new AuditLogReader({ path, ...(maxLineBytes ? { maxLineBytes } : {}), onEvent: (e) => void seen.push(String(e['auditID'])) });
  return { path, reader, seen };
}

describe('AuditLogReader', () => {
  it('counts JSON lines, joins a line split across writes, and skips malformed ones', async () => {
    const { path, reader, seen } = fresh('basic');
    writeFileSync(path, event() + event() + '{"kind": "Event", "verb"\n' + '[1,2]\n' + '\n' + event().slice(0, 30));
    await reader.poll();
    expect(reader.status()).toMatchObject({ state: 'following', events: 2, malformed_lines: 2, oversized_lines: 0 });
    appendFileSync(path, event().slice(30) + event());
    await reader.poll();
    expect(reader.status()).toMatchObject({ events: 4, malformed_lines: 2 });
    expect(seen).toHaveLength(4);
    expect(new Set(seen).size).toBe(4);
    expect(reader.status().last_event_at).toMatch(/^2031-01-02T03:04:/);
    await reader.close();
  });

  it('skips a line over the cap without buffering it, also when it spans reads', async () => {
    const { path, reader } = fresh('oversize', 1024);
    writeFileSync(path, event() + '{"x":"' + 'a'.repeat(700));
    await reader.poll();
    appendFileSync(path, 'b'.repeat(700) + '"}\n' + event());
    await reader.poll();
    expect(reader.status()).toMatchObject({ events: 2, oversized_lines: 1, malformed_lines: 0 });
    appendFileSync(path, '"' + 'c'.repeat(5000) + '"\n' + event());
    await reader.poll();
    expect(reader.status()).toMatchObject({ events: 3, oversized_lines: 2, malformed_lines: 0 });
    // Over the cap before its end is even written: the tail that comes later is dropped too.
    appendFileSync(path, '{"y":"' + 'd'.repeat(1100));
    await reader.poll();
    appendFileSync(path, 'e'.repeat(100) + '"}\n' + event());
    await reader.poll();
    expect(reader.status()).toMatchObject({ events: 4, oversized_lines: 3, malformed_lines: 0 });
    await reader.close();
  });

  it('follows rename+create: the rest of the old file first, then the new one from its start', async () => {
    const { path, reader, seen } = fresh('rename');
    writeFileSync(path, event() + event());
    await reader.poll();
    // Lines written just before the rotation land in the old file after our last read.
    appendFileSync(path, event());
    renameSync(path, path + '.1');
    await reader.poll(); // the new file is not there yet: keep reading the old one
    expect(reader.status()).toMatchObject({ state: 'following', events: 3, rotations: 0 });
    appendFileSync(path + '.1', event());
    writeFileSync(path, event() + event());
    await reader.poll();
    expect(reader.status()).toMatchObject({ events: 6, rotations: 1, truncations: 0 });
    appendFileSync(path, event());
    await reader.poll();
    expect(reader.status()).toMatchObject({ events: 7, rotations: 1 });
    expect(new Set(seen).size).toBe(7);
    await reader.close();
  });

  it('follows copytruncate: a file shorter than the offset is read again from 0', async () => {
    const { path, reader } = fresh('copytruncate');
    writeFileSync(path, event() + event() + event());
    await reader.poll();
    truncateSync(path, 0);
    appendFileSync(path, event());
    await reader.poll();
    expect(reader.status()).toMatchObject({ events: 4, truncations: 1, rotations: 0 });
    appendFileSync(path, event());
    await reader.poll();
    expect(reader.status()).toMatchObject({ events: 5, truncations: 1 });
    await reader.close();
  });

  it('waits for a missing file, and a directory in its place is a counted error, not a crash', async () => {
    const { path, reader } = fresh('missing');
    await reader.poll();
    expect(reader.status()).toMatchObject({ state: 'missing', events: 0 });
    writeFileSync(path, event());
    await reader.poll();
    expect(reader.status()).toMatchObject({ state: 'following', events: 1 });
    await reader.close();
    const odd = fresh('dir');
    mkdirSync(odd.path);
    await odd.reader.poll();
    expect(odd.reader.status()).toMatchObject({ state: 'error', read_errors: 1, last_error: expect.stringMatching(/EISDIR/) });
    await odd.reader.close();
  });

  it('start() polls on its interval until close()', async () => {
    const { path, reader } = fresh('timer');
    writeFileSync(path, event());
    reader.start(20);
    await until('first poll', 5000, () => reader.status().events === 1 || undefined, 10);
    appendFileSync(path, event());
    await until('second poll', 5000, () => reader.status().events === 2 || undefined, 10);
    await reader.close();
    appendFileSync(path, event());
    await new Promise((r) => setTimeout(r, 100));
    expect(reader.status().events).toBe(2);
  });
});

describe('in-cluster detection', () => {
  const sa = join(root, 'sa');
  mkdirSync(sa);
  writeFileSync(join(sa, 'namespace'), 'plexd-system\n');
  const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', HOSTNAME: 'plexd-x7k2p', MY_NODE_NAME: 'worker-1' };

  it('needs KUBERNETES_SERVICE_HOST and the token file', () => {
    expect(detectKubernetes(env, sa)).toBeUndefined();
    writeFileSync(join(sa, 'token'), 'eyJhbGciOi.not-read');
    expect(detectKubernetes(env, sa)).toEqual({ namespace: 'plexd-system', pod: 'plexd-x7k2p', node: 'worker-1' });
    expect(detectKubernetes({ HOSTNAME: 'x' }, sa)).toBeUndefined();
    expect(detectKubernetes({ KUBERNETES_SERVICE_HOST: '10.96.0.1', MY_NODE_NAME: 'Bad Name\n' }, sa)).toEqual({ namespace: 'plexd-system', pod: null, node: null });
  });

  it("an agent in a pod shows it in status, with the audit log's counts", async () => {
    const { dir, cp } = await startControlPlane('plexd-audit-agent-');
    let agent: Agent | undefined;
    try {
      const auditPath = join(root, 'agent-audit.log');
      writeFileSync(auditPath, event() + event() + 'not json\n');
      const config = loopbackAgentConfig(cp.url, dir, 1, 'worker-1', [['registration.token_value', cp.store.createToken().token], ['kubernetes.audit_log_path', auditPath]]);
      const lines: string[] = [];
      const fast = { collect: 50, report: 100 };
      agent = await Agent.start({ config, logger: createLogger('info', '', (l) => void lines.push(l)), env, health: false, nodeApi: false, serviceAccountDir: sa, auditPollMs: 20, telemetryIntervalsMs: { metrics: fast, logs: fast, audit: fast }, telemetryJournal: null });
      const k = await until('audit events counted', 5000, () => {
        const doc = agent!.status()['kubernetes'] as Record<string, unknown> | null;
        return (doc?.['audit_log'] as { events: number } | undefined)?.events === 2 ? doc : undefined;
      });
      expect(k).toMatchObject({ in_cluster: true, namespace: 'plexd-system', node: 'worker-1', audit_log: { path: auditPath, state: 'following', events: 2, malformed_lines: 1 } });
      expect(lines.join('')).toContain('running in Kubernetes (namespace plexd-system, node worker-1)');
      // The events go to the audit upload (issue 18), and so does a policy change, ours.
      const nodeId = agent.identity.node_id;
      cp.store.setPolicy('default', ALLOW_ALL_MESH_RULES);
      agent.requestReconcile();
      const audit = await until('audit entries at the control plane', 5000, () => {
        const rows = listTelemetry(cp.store.db, nodeId, 'audit').map((r) => r.record);
        return rows.filter((r) => r.source === 'k8s-audit').length === 2 && rows.some((r) => r.event_type === 'policy_applied') ? rows : undefined;
      });
      expect(audit.find((r) => r.source === 'k8s-audit')).toMatchObject({ hostname: expect.any(String), result: expect.stringMatching(/^(success|failure)$/) });
      expect(audit.find((r) => r.event_type === 'policy_applied')).toMatchObject({ source: 'plexd', action: 'policy_update', result: 'success', subject: { source: 'state pull' } });
    } finally {
      await stopMesh(agent ? [agent] : [], cp, dir);
    }
    const outside = await startControlPlane('plexd-audit-agent-');
    try {
      const config = loopbackAgentConfig(outside.cp.url, outside.dir, 1, 'h', [['registration.token_value', outside.cp.store.createToken().token]]);
      agent = await Agent.start({ config, logger: createLogger('silent'), env: {}, health: false, nodeApi: false, serviceAccountDir: sa });
      expect(agent.status()['kubernetes']).toBeNull();
    } finally {
      await stopMesh([agent], outside.cp, outside.dir);
    }
  });
});
