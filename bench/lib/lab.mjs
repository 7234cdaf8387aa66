// Namespace lab for benchmarks: a thin layer over the built lab of the conformance runner and the
// root test tier (dist/conformance/netns-lab.js), in the shape the benches use — namespaces by
// name, a veth pair, processes stopped one at a time, a temp dir — plus /proc readers and the
// option and result helpers every bench shares. Everything is removed by cleanup(), also on
// failure, SIGINT/SIGTERM/SIGHUP and, synchronously, at process exit.
//
// Network rule: benches send traffic only to loopback and to addresses inside the namespaces made
// here. Names carry the lab's `plxt<pid base36>-` prefix, so concurrent runs never clash and
// sweepStale() finds what a crashed bench left behind.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetnsLab, netnsUnavailableReason, run as labRun, runOk as labRunOk } from '../../dist/conformance/netns-lab.js';

const labs = new Set();
let handlersInstalled = false;

// The dist lab kills processes and deletes namespaces at exit; the temp dirs are ours to remove.
function installHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.once('exit', () => {
    for (const lab of labs) lab.removeTmp();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: cleaning up\n`);
      process.exit(130);
    });
  }
}

/** Why benches cannot run here (not root, no netns, missing tools), or undefined. */
export function labUnavailableReason(tools = ['ip', 'wg', 'wireguard-go', 'iperf3', 'ping']) {
  const reason = netnsUnavailableReason();
  if (reason !== undefined) return reason;
  for (const t of tools) {
    if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) return `\`${t}\` is not installed`;
  }
  return undefined;
}

/** Runs argv to completion (no shell) within timeoutMs (default 30 s); resolves { code, signal, stdout, stderr }. */
export const run = (argv, { timeoutMs = 30_000, input } = {}) => labRun(argv, { timeoutMs, input });

/** run() that rejects unless the command exits 0; resolves stdout. */
export const runOk = (argv, { timeoutMs = 30_000, input } = {}) => labRunOk(argv, { timeoutMs, input });

function signalGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

/** Namespaces, processes and temp files of one bench run; cleanup() removes them all. */
export class Lab {
  #lab = new NetnsLab();
  #namespaces = new Map();
  #tmp = undefined;

  constructor() {
    labs.add(this);
    installHandlers();
  }

  /** A unique name of at most 15 bytes (interfaces, namespaces). */
  name(tag = '') {
    return this.#lab.uniqueName(tag);
  }

  /** A private temp directory, removed by cleanup(). */
  get tmp() {
    this.#tmp ??= mkdtempSync(join(tmpdir(), 'plexd-bench-'));
    return this.#tmp;
  }

  /** Creates a namespace with lo up; returns its name. */
  async namespace() {
    const ns = await this.#lab.namespace();
    this.#namespaces.set(ns.name, ns);
    return ns.name;
  }

  /** A veth pair between namespaces a and b with the given CIDR addresses, both ends up. */
  veth(a, addrA, b, addrB) {
    return this.#lab.veth(this.#namespaces.get(a), this.#namespaces.get(b), { a: addrA, b: addrB });
  }

  /**
   * Starts argv inside namespace ns (undefined: here) in its own process group. `ip netns exec`
   * execs the command, so child.pid is the command's own pid (what /proc stats need). stdout is
   * drained unless stdio[1] is 'pipe'; child.stderrText() is the first 64 KiB of stderr.
   */
  spawn(ns, argv, { env, stdio = ['ignore', 'ignore', 'pipe'] } = {}) {
    const full = ns === undefined ? argv : ['ip', 'netns', 'exec', ns, ...argv];
    const child = this.#lab.spawn(full, { stdin: stdio[0] === 'pipe' ? 'pipe' : 'ignore', env: env ?? process.env });
    if (stdio[1] !== 'pipe') child.stdout.resume();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d) => {
      if (stderr.length < 64 * 1024) stderr += d;
    });
    child.stderrText = () => stderr;
    return child;
  }

  /** Stops one process started here (SIGTERM, SIGKILL after 3 s); resolves when it is gone. */
  async stop(child) {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), 3000);
    signalGroup(child, 'SIGTERM');
    await exited.finally(() => clearTimeout(timer));
  }

  /** Kills every process, deletes every namespace and the temp dir. Never throws. */
  async cleanup() {
    await this.#lab.cleanup();
    this.#namespaces.clear();
    this.removeTmp();
    labs.delete(this);
  }

  /** Removes the temp dir (cleanup() and process exit do). */
  removeTmp() {
    if (this.#tmp !== undefined) rmSync(this.#tmp, { recursive: true, force: true });
    this.#tmp = undefined;
  }
}

/** Resident set (VmRSS) and its peak (VmHWM) of a process, in KiB; undefined once it is gone. */
export function memoryKiB(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const get = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
    return { rss: get('VmRSS'), hwm: get('VmHWM') };
  } catch {
    return undefined;
  }
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** User + system CPU seconds a process has used (all its threads), from /proc/PID/stat. */
export function cpuSeconds(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields after "(comm)": state is field 3, utime 14, stime 15 (1-based) -> indices 11, 12
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** Median of finite numbers (NaN when none). */
export function median(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Resolves after ms milliseconds. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A bench option: `--name=value` from argv, else the environment variable, else the default.
 * Every bench also takes `--quick` (see hasFlag).
 */
export function argOption(argv, name, env, dflt) {
  const f = argv.find((a) => a.startsWith(`--${name}=`));
  return f !== undefined ? f.slice(name.length + 3) : process.env[env] ?? dflt;
}

/** True when argv has `--name` (or `--name=...`). */
export const hasFlag = (argv, name) => argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`));

/**
 * Stamps `result.seconds` (since `started`, ms), writes it to bench/results/NAME-<date>.json
 * (`result.date` is its ISO start) and says where.
 */
export function saveResult(name, result, started) {
  result.seconds = (Date.now() - started) / 1000;
  const dir = new URL('../results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`./${name}-${result.date.replace(/[:.]/g, '-')}.json`, dir);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  console.log(`\n${result.seconds.toFixed(0)} s; saved ${file.pathname}`);
}
