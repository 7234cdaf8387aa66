// Telemetry upload end to end (issue 18): a real agent and our control plane. The control plane
// goes away while the agent keeps producing log lines (from a file it follows) and metrics; when
// it comes back on the same database and port, every line written meanwhile arrives, once and in
// order, and the metrics collected during the outage arrive too.

import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { createControlPlane, type ControlPlane } from '../../src/control-plane/server.js';
import { listTelemetry } from '../../src/control-plane/telemetry.js';
import { silentLogger } from '../../src/log/logger.js';
import { until } from '../helpers/wait.js';
import { loopbackAgentConfig, startControlPlane, stopMesh } from './loopback-mesh.js';

describe('telemetry across a control-plane outage', () => {
  let dir: string | undefined;
  let cp: ControlPlane | undefined;
  const agents: Agent[] = [];
  afterAll(() => stopMesh(agents, cp, dir));

  it('delivers every entry produced while the control plane was down, none twice', async () => {
    ({ dir, cp } = await startControlPlane('plexd-telemetry-outage-', { pollMs: 50 }));
    const port = new URL(cp.url).port;
    const logFile = join(dir, 'app.log');
    writeFileSync(logFile, '');
    const config = loopbackAgentConfig(cp.url, dir, 0, 'tel-0', [
      ['registration.token', cp.store.createToken().token],
      ['log_fwd.file_patterns', logFile],
      ['api.request_timeout', '2s'],
    ]);
    const fast = { collect: 100, report: 300 };
    const a = await Agent.start({ config, logger: silentLogger, env: {}, health: false, nodeApi: false, telemetryIntervalsMs: { metrics: fast, logs: fast, audit: fast }, telemetryJournal: null });
    agents.push(a);
    const nodeId = a.identity.node_id;
    const fileLines = () => listTelemetry(cp!.store.db, nodeId, 'logs', { limit: 100_000 }).filter((r) => r.record.unit === logFile).map((r) => r.record.message as string);
    const write = (from: number, to: number) => appendFileSync(logFile, Array.from({ length: to - from }, (_, i) => `line ${from + i}\n`).join(''));

    write(0, 50);
    await until('first lines at the control plane', 10_000, () => fileLines().length >= 50);

    await cp.close();
    const downAt = Date.now();
    for (let k = 0; k < 6; k++) {
      write(50 + k * 25, 75 + k * 25);
      await new Promise((r) => setTimeout(r, 250));
    }
    const upAt = Date.now();
    const st = a.telemetryStatus()!;
    expect(st.logs).toMatchObject({ enabled: true });
    const logs = st.logs as { spooled_records: number; buffered: number };
    expect(logs.spooled_records + logs.buffered).toBeGreaterThanOrEqual(150);
    expect((st.metrics as { send_failures: number }).send_failures).toBeGreaterThan(0);

    cp = await createControlPlane({ db: join(dir, 'cp.db'), listen: `127.0.0.1:${port}`, insecureHttp: true, pollMs: 50 });
    await until('all lines at the control plane', 15_000, () => fileLines().length >= 200);
    await new Promise((r) => setTimeout(r, 700)); // a few more reports: nothing may come twice
    expect(fileLines()).toEqual(Array.from({ length: 200 }, (_, i) => `line ${i}`));
    const metrics = listTelemetry(cp.store.db, nodeId, 'metrics', { limit: 100_000 }).map((r) => Date.parse(r.record.timestamp as string));
    expect(metrics.filter((t) => t > downAt + 100 && t < upAt - 100).length).toBeGreaterThanOrEqual(5);
    const final = a.telemetryStatus()!;
    expect(final.logs).toMatchObject({ dropped_spool_full: 0, dropped_refused: 0 });
  }, 60_000);
});
