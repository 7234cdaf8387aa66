// The built-in actions (upstream remote-actions-hooks.md "Built-in Actions"; docs/operations.md
// "Remote actions"): diagnostics.collect, diagnostics.ping_peer, diagnostics.traceroute_peer,
// service.restart, service.reload_config, service.upgrade (refused: no signed release channel),
// system.info, health.check, mesh.reconnect, config.dump (secrets redacted), logs.snapshot.
// External tools run with execFile (no shell); arguments are checked values, never raw text.

import { execFile } from 'node:child_process';
import { statfsSync, readFileSync, readdirSync } from 'node:fs';
import { isIP } from 'node:net';
import * as os from 'node:os';
import type { ActionInfo, ActionParam } from '../../api/types.js';
import type { Logger } from '../../log/logger.js';
import { VERSION } from '../../version.js';

/** What the built-ins read from the agent. */
export interface ActionHost {
  nodeId(): string;
  meshIp(): string;
  peerCount(): number;
  /** Peers with a handshake in the last 3 minutes. */
  connectedPeers(): number;
  lastHeartbeat(): string | undefined;
  lastReconcile(): string | undefined;
  /** Wall ms the agent started. */
  readonly startedAtMs: number;
  wallMs(): number;
  /** Pulls state and re-applies it (mesh.reconnect). */
  reconnect(): Promise<void>;
  /** The effective configuration (redacted here before it is printed). */
  config(): unknown;
  /** Recent log lines, oldest first. */
  logs(): readonly LogLine[];
}

/** One recorded log line: wall ms and text. */
export interface LogLine {
  readonly at: number;
  readonly line: string;
}

/** What a built-in returns. */
export interface BuiltinResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr?: string;
  readonly error?: string;
}

/** A built-in: params are the flattened parameters; `signal` aborts at the deadline. */
export type BuiltinFn = (params: Readonly<Record<string, string>>, signal: AbortSignal) => Promise<BuiltinResult>;

/** A registered built-in. */
export interface Builtin extends ActionInfo {
  readonly run: BuiltinFn;
}

const p = (name: string, type: string, required: boolean, def?: string, description?: string): ActionParam => ({ name, type, required, ...(def !== undefined ? { default: def } : {}), ...(description ? { description } : {}) });

const ok = (value: unknown): BuiltinResult => ({ exitCode: 0, stdout: JSON.stringify(value, null, 2) });
const fail = (error: string, value?: unknown): BuiltinResult => ({ exitCode: 1, stdout: value === undefined ? '' : JSON.stringify(value, null, 2), error });

/** Runs a tool with execFile (no shell), collecting output; exit 1 with a reason when absent. */
function tool(file: string, args: readonly string[], signal: AbortSignal): Promise<BuiltinResult> {
  return new Promise((resolve) => {
    execFile(file, [...args], { signal, maxBuffer: 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err === null) return resolve({ exitCode: 0, stdout, stderr });
      const e = err as NodeJS.ErrnoException & { code?: unknown };
      if (e.code === 'ENOENT') return resolve({ exitCode: 1, stdout: '', error: `${file} is not installed` });
      resolve({ exitCode: typeof e.code === 'number' ? e.code : 1, stdout, stderr, error: signal.aborted ? 'aborted' : `${file} failed: ${e.message.split('\n')[0]}` });
    });
  });
}

function boolParam(v: string | undefined, def: boolean): boolean {
  return v === undefined ? def : v === 'true' || v === '1';
}

/** An integer parameter in min..max, or undefined. */
function intParam(v: string | undefined, def: number, min: number, max: number): number | undefined {
  if (v === undefined) return def;
  if (!/^\d{1,6}$/.test(v)) return undefined;
  const n = Number(v);
  return n >= min && n <= max ? n : undefined;
}

/** Keys whose values config.dump never prints. */
const SECRET_KEY = /token|secret|password|private|nsk|psk|(^|_)key$|authorization/i;

/** `value` with every secret-looking field replaced by "[redacted]". */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = SECRET_KEY.test(k) && v !== undefined && v !== null && v !== '' && typeof v !== 'object' ? '[redacted]' : redact(v);
  return out;
}

/** Parses "90s", "5m", "1h" to ms. */
function durationMs(v: string): number | undefined {
  const m = /^(\d{1,6})(s|m|h)$/.exec(v);
  return m === null ? undefined : Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'];
}

function processes(): string[] {
  try {
    return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).slice(0, 500).map((pid) => {
      try {
        return `${pid} ${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()}`;
      } catch {
        return pid;
      }
    });
  } catch {
    return [];
  }
}

/** The built-ins, in upstream's order, bound to `host`. */
export function builtins(host: ActionHost): Builtin[] {
  return [
    {
      name: 'diagnostics.collect', description: 'Collect system diagnostics',
      parameters: [p('include_network', 'bool', false, 'true'), p('include_processes', 'bool', false, 'true')],
      run: async (params) => {
        let diskTotal = 0;
        try {
          const s = statfsSync('/');
          diskTotal = s.blocks * s.bsize;
        } catch { /* fallback 0 */ }
        let loadAvg = os.loadavg().map((x) => x.toFixed(2)).join(' ');
        try {
          loadAvg = readFileSync('/proc/loadavg', 'utf8').trim();
        } catch { /* the os module's */ }
        return ok({
          hostname: os.hostname(), os: process.platform, arch: process.arch, cpu_count: os.cpus().length,
          memory_total: os.totalmem(), disk_total: diskTotal, load_avg: loadAvg, kernel_version: os.release(),
          ...(boolParam(params.include_network, true) ? { network_interfaces: os.networkInterfaces() } : {}),
          ...(boolParam(params.include_processes, true) ? { processes: processes() } : {}),
        });
      },
    },
    {
      name: 'diagnostics.ping_peer', description: 'Ping a mesh peer',
      parameters: [p('peer_id', 'string', true, undefined, 'peer mesh IP address'), p('count', 'string', false, '1', 'pings, at most 10')],
      run: async (params, signal) => {
        const ip = params.peer_id ?? '';
        const count = intParam(params.count, 1, 1, 10);
        if (isIP(ip) === 0) return fail(`peer_id: expected a peer's mesh IP address, got ${JSON.stringify(ip.slice(0, 64))}`);
        if (count === undefined) return fail('count: expected 1..10');
        return tool('ping', ['-c', String(count), '-W', '3', ip], signal);
      },
    },
    {
      name: 'diagnostics.traceroute_peer', description: 'Traceroute to a mesh peer',
      parameters: [p('peer_id', 'string', true, undefined, 'peer mesh IP address'), p('max_hops', 'string', false, '15')],
      run: async (params, signal) => {
        const ip = params.peer_id ?? '';
        const hops = intParam(params.max_hops, 15, 1, 64);
        if (isIP(ip) === 0) return fail(`peer_id: expected a peer's mesh IP address, got ${JSON.stringify(ip.slice(0, 64))}`);
        if (hops === undefined) return fail('max_hops: expected 1..64');
        return tool('traceroute', ['-n', '-m', String(hops), '-w', '3', ip], signal);
      },
    },
    {
      name: 'service.restart', description: 'Restart the plexd service (systemctl restart plexd.service)', parameters: [],
      run: (_params, signal) => tool('systemctl', ['restart', 'plexd.service'], signal),
    },
    {
      name: 'service.reload_config', description: 'Reload the configuration (refused: plexd-userspace reads it only at start)', parameters: [],
      // Upstream sends itself SIGHUP; our agent has no SIGHUP handler, and SIGHUP's default
      // action would end the process. Refuse with the reason instead.
      run: async () => fail('plexd-userspace reads its configuration only at start (no SIGHUP reload); run service.restart instead', { status: 'refused' }),
    },
    {
      name: 'service.upgrade', description: 'Upgrade plexd (refused: no signed release channel)',
      parameters: [p('version', 'string', true), p('checksum', 'string', true)],
      run: async (params) => fail('service.upgrade is not supported by plexd-userspace: there is no signed release channel to verify a binary against; upgrade the package (npm or the .deb) instead', { status: 'refused', version: params.version ?? '' }),
    },
    {
      name: 'system.info', description: 'Report system and runtime info', parameters: [],
      run: async () => ok({ hostname: os.hostname(), os: process.platform, arch: process.arch, node_version: process.version, plexd_version: VERSION, mesh_ip: host.meshIp(), peer_count: host.peerCount(), node_id: host.nodeId() }),
    },
    {
      name: 'health.check', description: 'Check health', parameters: [p('include_peers', 'bool', false, 'true')],
      run: async () => {
        const connected = host.connectedPeers();
        const uptimeS = Math.max(0, Math.round((host.wallMs() - host.startedAtMs) / 1000));
        return ok({
          tunnel_count: host.peerCount(), connected_peers: connected, uptime: `${Math.floor(uptimeS / 3600)}h${Math.floor((uptimeS % 3600) / 60)}m${uptimeS % 60}s`,
          last_heartbeat: host.lastHeartbeat() ?? null, last_reconcile: host.lastReconcile() ?? null, status: host.peerCount() > 0 ? 'healthy' : 'degraded',
        });
      },
    },
    {
      name: 'mesh.reconnect', description: 'Reconnect the mesh (pull state and re-apply it)', parameters: [],
      run: async () => {
        try {
          await host.reconnect();
          return ok({ status: 'reconnected' });
        } catch (err) {
          return fail((err as Error).message, { status: 'failed', error: (err as Error).message });
        }
      },
    },
    {
      name: 'config.dump', description: 'Dump the effective configuration, secrets redacted', parameters: [],
      run: async () => ok(redact(host.config())),
    },
    {
      name: 'logs.snapshot', description: 'Snapshot recent logs', parameters: [p('lines', 'string', false, '100', 'at most 10000'), p('since', 'string', false, undefined, 'e.g. 5m, 1h')],
      run: async (params) => {
        const n = intParam(params.lines, 100, 1, 10_000);
        if (n === undefined) return fail('lines: expected 1..10000');
        const since = params.since === undefined ? undefined : durationMs(params.since);
        if (params.since !== undefined && since === undefined) return fail('since: expected a duration such as 5m or 1h');
        const from = since === undefined ? -Infinity : host.wallMs() - since;
        return { exitCode: 0, stdout: host.logs().filter((l) => l.at >= from).slice(-n).map((l) => l.line).join('') };
      },
    },
  ];
}

/** Keeps the last `max` log lines a logger writes. */
export class LogRing {
  readonly #lines: LogLine[] = [];
  readonly max: number;
  readonly wallMs: () => number;
  constructor(max = 10_000, wallMs: () => number = Date.now) {
    this.max = max;
    this.wallMs = wallMs;
  }
  push(line: string): void {
    this.#lines.push({ at: this.wallMs(), line: line.endsWith('\n') ? line : `${line}\n` });
    if (this.#lines.length > this.max) this.#lines.splice(0, this.#lines.length - this.max);
  }
  lines(): readonly LogLine[] {
    return this.#lines;
  }
}

/** A logger that writes through `base` and records each message it lets through in `ring`. */
export function recordingLogger(base: Logger, ring: LogRing, prefix = ''): Logger {
  const rank = ['silent', 'error', 'info', 'verbose'].indexOf(base.level);
  const rec = (tag: string, min: number, m: string) => {
    if (rank >= min) ring.push(`${tag}: ${prefix}${new Date(ring.wallMs()).toISOString()} ${m}`);
  };
  return {
    level: base.level,
    error: (m) => (base.error(m), rec('ERROR', 1, m)),
    info: (m) => (base.info(m), rec('INFO', 2, m)),
    verbose: (m) => (base.verbose(m), rec('DEBUG', 3, m)),
    child: (pre) => recordingLogger(base.child(pre), ring, pre),
  };
}
