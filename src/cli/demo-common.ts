// What both demos share (src/cli/demo.ts in one process, src/cli/demo-tun.ts with TUN interfaces in
// network namespaces): the result table's rows and its printing, the options, a polling wait, and
// the cleanup-on-signal wrapper. demo.ts loads demo-tun.ts on demand; neither imports the other
// for these.

import { formatTable } from './table.js';
import { onShutdownSignal } from './signals.js';

/** One row of the demo's result table. */
export interface DemoRow {
  readonly node: string;
  readonly meshIp: string;
  readonly peer: string;
  readonly path: string;
  readonly lastHandshake: string;
  /** RTT in ms, undefined when the ping failed. */
  readonly rttMs: number | undefined;
}

/** A node of the demo as the table names it. */
export interface DemoNode {
  readonly handle: string;
  readonly nodeId: string;
  readonly meshIp: string;
}

/** Options of runDemoMesh (demo.ts) and runDemoTun (demo-tun.ts). */
export interface DemoOptions {
  readonly nodes?: number;
  /** Progress lines (default: stdout). */
  readonly print?: (line: string) => void;
  /** Limit for the mesh to converge and for each ping, ms (default 15 s / 5 s; TUN mode 30 s / 10 s). */
  readonly convergeTimeoutMs?: number;
  readonly pingTimeoutMs?: number;
}

/** Default progress printer: one line to stdout. */
export function printLine(line: string): void {
  process.stdout.write(line + '\n');
}

/** The one polling loop (io/wait.ts), re-exported for the two demos. */
export { until } from '../io/wait.js';

/**
 * The table row for `self` -> `peer` from `self`'s node API `peers` document (Agent.peers(),
 * GET /v1/peers): path and last handshake as the agent reports them, RTT as measured.
 */
export function demoRow(self: DemoNode, peer: DemoNode, peersDoc: readonly Record<string, unknown>[], rttMs: number | undefined, nowMs = Date.now()): DemoRow {
  const doc = peersDoc.find((p) => p['node_id'] === peer.nodeId);
  const hs = typeof doc?.['last_handshake'] === 'string' ? Date.parse(doc['last_handshake']) : Number.NaN;
  return {
    node: self.handle,
    meshIp: self.meshIp,
    peer: `${peer.handle} (${peer.meshIp})`,
    path: typeof doc?.['path'] === 'string' ? doc['path'] : '-',
    lastHandshake: Number.isNaN(hs) ? 'never' : `${Math.max(0, Math.round((nowMs - hs) / 1000))} s ago`,
    rttMs,
  };
}

/** The result table and the verdict line, as printed. */
export function formatDemoTable(rows: readonly DemoRow[]): string {
  const table = formatTable(
    ['NODE', 'MESH IP', 'PEER', 'PATH', 'LAST HANDSHAKE', 'RTT'],
    rows.map((r) => [r.node, r.meshIp, r.peer, r.path, r.lastHandshake, r.rttMs === undefined ? 'FAILED' : `${r.rttMs.toFixed(2)} ms`]),
  );
  const failed = rows.filter((r) => r.rttMs === undefined).length;
  return `${table}\n${failed === 0 ? `all ${rows.length} pairs answered` : `${failed} of ${rows.length} pairs did not answer`}\n`;
}

/**
 * Runs `body` with SIGINT/SIGTERM handlers that abort its signal, run `cleanup` and exit 130/143,
 * then runs `cleanup` itself (success or failure). `cleanup` runs at most once and must not throw.
 */
export async function withCleanup<T>(cleanup: () => Promise<void>, body: (signal: AbortSignal) => Promise<T>): Promise<T> {
  let done: Promise<void> | undefined;
  const once = () => (done ??= cleanup());
  const abort = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    abort.abort(new Error(`interrupted by ${sig}`));
    process.stderr.write(`\nplexd-userspace demo: ${sig}, cleaning up\n`);
    void once().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  const removeSignals = onShutdownSignal(onSignal);
  try {
    return await body(abort.signal);
  } finally {
    await once();
    removeSignals();
  }
}
