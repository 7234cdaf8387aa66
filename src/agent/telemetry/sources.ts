// Telemetry sources of the agent (upstream observability/*; docs/operations.md "Telemetry"): our
// own log lines and security events (bounded rings fed as they happen), journald (journalctl
// --output=json with a cursor), log files matching patterns (offsets, rotation, 16 KiB lines),
// the severity/unit filter, system/agent/tunnel metrics, and the Kubernetes audit mapping.
// Records come out in the wire shapes of src/api/types.ts (LogLine, MetricPoint, AuditEntry).

import { execFile } from 'node:child_process';
import { accessSync, constants, openSync, readdirSync, readFileSync, readSync, closeSync, statSync, statfsSync } from 'node:fs';
import { hostname as osHostname, loadavg, totalmem, freemem } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { LOG_SEVERITIES, type AuditEntry, type LogLine, type LogSeverity, type MetricPoint } from '../../api/index.js';
import type { Logger } from '../../log/logger.js';

/** Longest log line forwarded (upstream: 16 KiB, then "[truncated]"). */
export const MAX_LOG_LINE = 16 * 1024;
/** Entries a ring keeps between collections; older ones are dropped and counted. */
export const RING_CAPACITY = 10_000;

/** The host name records carry. */
export const HOSTNAME = osHostname();

/** A bounded FIFO of records filled as things happen and drained by a collection. */
export class Ring<T> {
  readonly capacity: number;
  #items: T[] = [];
  /** Records dropped because the ring was full (the oldest go). */
  dropped = 0;

  constructor(capacity = RING_CAPACITY) {
    this.capacity = capacity;
  }

  push(item: T): void {
    this.#items.push(item);
    if (this.#items.length > this.capacity) {
      this.#items.shift();
      this.dropped++;
    }
  }

  /** Everything held, oldest first; the ring is empty afterwards. */
  drain(): T[] {
    const out = this.#items;
    this.#items = [];
    return out;
  }
}

/** A logger that also hands every line it emits to `onLine` (our own log as a log source). Lines
 *  below the logger's level are not emitted and not handed on. */
export function tapLogger(inner: Logger, onLine: (severity: LogSeverity, message: string) => void): Logger {
  const rank = ['silent', 'error', 'info', 'verbose'].indexOf(inner.level);
  const wrap = (l: Logger): Logger => ({
    level: l.level,
    error: (m) => {
      l.error(m);
      if (rank >= 1) onLine('err', m);
    },
    info: (m) => {
      l.info(m);
      if (rank >= 2) onLine('info', m);
    },
    verbose: (m) => {
      l.verbose(m);
      if (rank >= 3) onLine('debug', m);
    },
    child: (p) => wrap(l.child(p)),
  });
  return wrap(inner);
}

/** The severity filter and unit lists of log_fwd.filter (upstream "Filter Evaluation Order"). */
export interface LogFilter {
  readonly minSeverity: string | undefined;
  readonly includeUnits: readonly string[];
  readonly excludeUnits: readonly string[];
}

function rankOf(severity: string): number {
  const i = (LOG_SEVERITIES as readonly string[]).indexOf(severity);
  return i < 0 ? 6 : i; // unknown counts as info
}

/** True when `line` passes: severity at least minSeverity, unit in include (when given), not in exclude. */
export function passes(filter: LogFilter, line: Pick<LogLine, 'severity' | 'unit'>): boolean {
  if (filter.minSeverity !== undefined && rankOf(line.severity) > rankOf(filter.minSeverity)) return false;
  if (filter.includeUnits.length > 0 && !filter.includeUnits.includes(line.unit ?? '')) return false;
  if (filter.excludeUnits.includes(line.unit ?? '')) return false;
  return true;
}

/** Syslog priority 0..7 to its severity; anything else is info (upstream). */
export function severityOfPriority(p: number): LogSeverity {
  return Number.isInteger(p) && p >= 0 && p <= 7 ? LOG_SEVERITIES[p]! : 'info';
}

function truncate(text: string): string {
  return text.length > MAX_LOG_LINE ? `${text.slice(0, MAX_LOG_LINE)}[truncated]` : text;
}

/** True when journalctl is on PATH (probed once at start, as upstream does). */
export function journalctlAvailable(path = process.env.PATH ?? ''): boolean {
  for (const dir of path.split(':')) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, 'journalctl'), constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

/** Reads the journal with `journalctl --output=json`: the last 60 s first, then after the cursor.
 *  Malformed lines are skipped (counted). */
export class JournaldSource {
  #cursor: string | undefined;
  readonly #run: (args: readonly string[]) => Promise<string>;
  malformed = 0;

  /** `run` runs journalctl with the arguments and resolves with its stdout (tests pass a fake). */
  constructor(run?: (args: readonly string[]) => Promise<string>) {
    this.#run = run ?? ((args) => new Promise((resolve, reject) => {
      execFile('journalctl', [...args], { maxBuffer: 32 << 20, timeout: 10_000 }, (err, stdout) => (err === null ? resolve(stdout) : reject(err)));
    }));
  }

  async collect(): Promise<LogLine[]> {
    const args = ['--output=json', '--no-pager', '-n', '1000', this.#cursor === undefined ? '--since=-60s' : `--after-cursor=${this.#cursor}`];
    const out = await this.#run(args);
    const lines: LogLine[] = [];
    for (const text of out.split('\n')) {
      if (text.trim() === '') continue;
      let e: Record<string, unknown>;
      try {
        e = JSON.parse(text) as Record<string, unknown>;
      } catch {
        this.malformed++;
        continue;
      }
      if (typeof e.__CURSOR === 'string') this.#cursor = e.__CURSOR;
      // MESSAGE is an array of bytes when it is not valid UTF-8.
      const message = typeof e.MESSAGE === 'string' ? e.MESSAGE : Array.isArray(e.MESSAGE) ? Buffer.from(e.MESSAGE as number[]).toString('utf8') : '';
      if (message === '') continue;
      const us = Number(e.__REALTIME_TIMESTAMP);
      const unit = typeof e._SYSTEMD_UNIT === 'string' ? e._SYSTEMD_UNIT : undefined;
      lines.push({
        severity: severityOfPriority(Number(e.PRIORITY)),
        message: truncate(message),
        timestamp: new Date(Number.isFinite(us) && us > 0 ? us / 1000 : Date.now()).toISOString(),
        hostname: HOSTNAME,
        ...(unit === undefined ? {} : { unit }),
      });
    }
    return lines;
  }
}

/** Files a pattern names: `*` and `?` in the last path element only (e.g. /var/log/app/*.log). */
export function expandPattern(pattern: string): string[] {
  const dir = dirname(pattern);
  const base = basename(pattern);
  if (!/[*?]/.test(base)) return [pattern];
  const re = new RegExp(`^${base.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
  try {
    return readdirSync(dir).filter((n) => re.test(n)).sort().map((n) => join(dir, n));
  } catch {
    return [];
  }
}

/** Follows the files matching log_fwd.file_patterns: new lines since the last read, from the
 *  start after a rotation (new inode) or truncation (smaller than our offset). Every line is
 *  severity info, unit = its path (upstream). At most 4 MiB per file per collection. */
export class FileSource {
  readonly patterns: readonly string[];
  readonly #files = new Map<string, { ino: number; offset: number }>();
  readErrors = 0;

  constructor(patterns: readonly string[]) {
    this.patterns = patterns;
  }

  collect(): LogLine[] {
    const out: LogLine[] = [];
    for (const pattern of this.patterns) {
      for (const file of expandPattern(pattern)) {
        try {
          this.#read(file, out);
        } catch {
          this.readErrors++;
        }
      }
    }
    return out;
  }

  #read(file: string, out: LogLine[]): void {
    const st = statSync(file);
    if (!st.isFile()) return;
    let state = this.#files.get(file);
    if (state === undefined || state.ino !== st.ino || st.size < state.offset) {
      state = { ino: st.ino, offset: 0 };
      this.#files.set(file, state);
    }
    if (st.size === state.offset) return;
    const len = Math.min(st.size - state.offset, 4 << 20);
    const buf = Buffer.alloc(len);
    const fd = openSync(file, 'r');
    let n: number;
    try {
      n = readSync(fd, buf, 0, len, state.offset);
    } finally {
      closeSync(fd);
    }
    // Only whole lines: a line still being written waits for its newline (unless it is already
    // over the cap, which then goes out truncated).
    let end = buf.subarray(0, n).lastIndexOf(0x0a);
    if (end < 0) {
      if (n < MAX_LOG_LINE) return;
      end = n - 1;
    }
    state.offset += end + 1;
    const now = new Date().toISOString();
    for (const line of buf.subarray(0, end + 1).toString('utf8').split('\n')) {
      const text = line.replace(/\r$/, '');
      if (text.trim() === '') continue;
      out.push({ severity: 'info', unit: file, hostname: HOSTNAME, message: truncate(text), timestamp: now });
    }
  }
}

/** The `system` metric group from /proc and statfs (upstream SystemStats); fields it cannot read are 0. */
export function systemMetrics(now: Date, dataDir = '/'): MetricPoint {
  let rx = 0;
  let tx = 0;
  try {
    for (const line of readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2)) {
      const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
      if (m === null || m[1] === 'lo') continue;
      const f = m[2]!.trim().split(/\s+/).map(Number);
      rx += f[0] ?? 0;
      tx += f[8] ?? 0;
    }
  } catch {
    // not Linux
  }
  let diskUsed = 0;
  let diskTotal = 0;
  try {
    const fs = statfsSync(dataDir);
    diskTotal = fs.blocks * fs.bsize;
    diskUsed = (fs.blocks - fs.bfree) * fs.bsize;
  } catch {
    // no such path
  }
  const [l1, l5, l15] = loadavg();
  return {
    timestamp: now.toISOString(),
    group: 'system',
    data: {
      cpu_usage_percent: cpuPercent(),
      memory_used_bytes: totalmem() - freemem(),
      memory_total_bytes: totalmem(),
      disk_used_bytes: diskUsed,
      disk_total_bytes: diskTotal,
      network_rx_bytes: rx,
      network_tx_bytes: tx,
      load_avg_1: l1,
      load_avg_5: l5,
      load_avg_15: l15,
    },
  };
}

let lastCpu: { busy: number; total: number } | undefined;
/** CPU busy % since the previous call (from /proc/stat; upstream samples twice 100 ms apart). */
function cpuPercent(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.reduce((a, b) => a + b, 0);
    const prev = lastCpu;
    lastCpu = { busy: total - idle, total };
    if (prev === undefined || total === prev.total) return 0;
    return Math.round((1000 * (total - idle - prev.busy)) / (total - prev.total)) / 10;
  } catch {
    return 0;
  }
}

/** The `agent` metric group (upstream AgentStats; Node's event-loop process instead of Go's runtime). */
export function agentMetrics(now: Date, startedMs: number, reconnects: number): MetricPoint {
  const mem = process.memoryUsage();
  return {
    timestamp: now.toISOString(),
    group: 'agent',
    data: { heap_alloc_bytes: mem.heapUsed, heap_sys_bytes: mem.heapTotal, rss_bytes: mem.rss, uptime_seconds: (now.getTime() - startedMs) / 1000, reconnect_count: reconnects },
  };
}

/** One peer's `tunnel` metric point (upstream TunnelStats; packet loss unmeasured: -1). */
export function tunnelMetric(now: Date, peer: { peerId: string; lastHandshakeMs: number | null; rxBytes: number; txBytes: number; staleAfterMs: number }): MetricPoint {
  const hs = peer.lastHandshakeMs;
  return {
    timestamp: now.toISOString(),
    group: 'tunnel',
    peer_id: peer.peerId,
    data: {
      peer_id: peer.peerId,
      last_handshake_time: hs === null ? null : new Date(hs).toISOString(),
      rx_bytes: peer.rxBytes,
      tx_bytes: peer.txBytes,
      handshake_succeeded: hs !== null,
      handshake_stale: hs === null || now.getTime() - hs > peer.staleAfterMs,
      packet_loss_percent: -1,
    },
  };
}

/** A Kubernetes audit event (audit.k8s.io/v1 Event) as an AuditEntry (upstream K8sAuditSource). */
export function k8sAuditEntry(event: Record<string, unknown>, hostname = HOSTNAME): AuditEntry {
  const user = (event.user ?? {}) as { username?: unknown; groups?: unknown };
  const ref = (event.objectRef ?? {}) as { namespace?: unknown; resource?: unknown; name?: unknown };
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const object = [str(ref.namespace), str(ref.resource), str(ref.name)].filter((p) => p !== '').join('/');
  const code = Number((event.responseStatus as { code?: unknown } | undefined)?.code);
  const verb = str(event.verb);
  const ts = str(event.stageTimestamp) || str(event.requestReceivedTimestamp);
  let raw = JSON.stringify(event);
  if (raw.length > MAX_LOG_LINE * 4) raw = raw.slice(0, MAX_LOG_LINE * 4);
  return {
    timestamp: ts !== '' && Number.isFinite(Date.parse(ts)) ? new Date(Date.parse(ts)).toISOString() : new Date().toISOString(),
    source: 'k8s-audit',
    event_type: verb,
    subject: { username: str(user.username), ...(Array.isArray(user.groups) ? { groups: user.groups.filter((g) => typeof g === 'string') } : {}) },
    object,
    action: verb,
    result: code >= 200 && code <= 299 ? 'success' : 'failure',
    hostname,
    raw,
  };
}

/** The security events the agent itself records as audit entries (source "plexd"). */
export type SecurityEventType = 'auth_failure' | 'envelope_rejected' | 'policy_applied' | 'policy_cleared' | 'policy_rejected';

/** An AuditEntry for one of our own security events. */
export function securityAuditEntry(now: Date, eventType: SecurityEventType, e: { subject: unknown; object: string; action: string; result: 'success' | 'failure'; raw: string }): AuditEntry {
  return { timestamp: now.toISOString(), source: 'plexd', event_type: eventType, subject: e.subject, object: e.object, action: e.action, result: e.result, hostname: HOSTNAME, raw: e.raw };
}
