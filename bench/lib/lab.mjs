// Namespace lab for benchmarks (plain JS; the test tier's test/helpers/netns.ts is TypeScript and
// not built into dist/): namespaces, a veth pair, long-running processes, temp files — all removed
// by cleanup(), also on failure, SIGINT/SIGTERM and, synchronously, at process exit.
//
// Network rule: benches send traffic only to loopback and to addresses inside the namespaces made
// here. Every name is `pb<pid base36>…` so concurrent runs (and the test tier's `plxt…`) never clash.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PREFIX = `pb${process.pid.toString(36)}`;
let counter = 0;
const labs = new Set();
let handlersInstalled = false;

function installHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.once('exit', () => {
    for (const lab of labs) lab.cleanupSync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: cleaning up\n`);
      for (const lab of labs) lab.cleanupSync();
      process.exit(130);
    });
  }
}

/** Why benches cannot run here (not root, no netns, missing tools), or undefined. */
export function labUnavailableReason(tools = ['ip', 'wg', 'wireguard-go', 'iperf3', 'ping']) {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return 'not root (namespaces and TUN need uid 0)';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing';
  for (const t of tools) {
    if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) return `\`${t}\` is not installed`;
  }
  return undefined;
}

/** Runs argv to completion (no shell) within timeoutMs; resolves { code, stdout, stderr }. */
export function run(argv, { timeoutMs = 30_000, input } = {}) {
  const [cmd, ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

/** run() that rejects unless the command exits 0; resolves stdout. */
export async function runOk(argv, options) {
  const r = await run(argv, options);
  if (r.code !== 0) throw new Error(`command failed (${r.signal ?? `exit ${r.code}`}): ${argv.join(' ')}\n${r.stderr.trim()}`);
  return r.stdout;
}

function killGroup(child, signal) {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // gone
    }
  }
}

/** Namespaces, processes and temp files of one bench run; cleanup() removes them all. */
export class Lab {
  #namespaces = new Set();
  #children = new Set();
  #tmp = undefined;

  constructor() {
    labs.add(this);
    installHandlers();
  }

  /** A unique name of at most 15 bytes (interfaces, namespaces). */
  name(tag = '') {
    const n = `${PREFIX}${tag}${(counter++).toString(36)}`;
    if (n.length > 15) throw new RangeError(`expected a name of at most 15 bytes, got ${n}`);
    return n;
  }

  /** A private temp directory, removed by cleanup(). */
  get tmp() {
    this.#tmp ??= mkdtempSync(join(tmpdir(), `${PREFIX}-`));
    return this.#tmp;
  }

  /** Creates a namespace with lo up; returns its name. */
  async namespace() {
    const ns = this.name('n');
    await runOk(['ip', 'netns', 'add', ns]);
    this.#namespaces.add(ns);
    await runOk(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** A veth pair between namespaces a and b with the given CIDR addresses, both ends up. */
  async veth(a, addrA, b, addrB) {
    const ifA = this.name('v');
    const ifB = this.name('v');
    await runOk(['ip', 'link', 'add', ifA, 'netns', a, 'type', 'veth', 'peer', 'name', ifB, 'netns', b]);
    await runOk(['ip', '-n', a, 'addr', 'add', addrA, 'dev', ifA]);
    await runOk(['ip', '-n', b, 'addr', 'add', addrB, 'dev', ifB]);
    await runOk(['ip', '-n', a, 'link', 'set', ifA, 'up']);
    await runOk(['ip', '-n', b, 'link', 'set', ifB, 'up']);
    return { a: ifA, b: ifB };
  }

  /**
   * Starts argv inside namespace ns in its own process group. `ip netns exec` execs the command,
   * so child.pid is the command's own pid (what /proc stats need).
   */
  spawn(ns, argv, { env, stdio = ['ignore', 'ignore', 'pipe'] } = {}) {
    const full = ns === undefined ? argv : ['ip', 'netns', 'exec', ns, ...argv];
    const child = spawn(full[0], full.slice(1), { stdio, detached: true, env: env ?? process.env });
    child.on('error', () => {});
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d) => {
      if (stderr.length < 64 * 1024) stderr += d;
    });
    child.stderrText = () => stderr;
    this.#children.add(child);
    child.on('exit', () => this.#children.delete(child));
    return child;
  }

  /** Stops one process started here (SIGTERM, SIGKILL after 3 s); resolves when it is gone. */
  stop(child) {
    return new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const timer = setTimeout(() => {
        killGroup(child, 'SIGKILL');
        resolve();
      }, 3000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      killGroup(child, 'SIGTERM');
    });
  }

  /** Kills every process, deletes every namespace and the temp dir. Never throws. */
  async cleanup() {
    await Promise.all([...this.#children].map((c) => this.stop(c)));
    for (const ns of this.#namespaces) await run(['ip', 'netns', 'del', ns]).catch(() => {});
    this.#namespaces.clear();
    this.#removeTmp();
    labs.delete(this);
  }

  cleanupSync() {
    for (const c of this.#children) killGroup(c, 'SIGKILL');
    this.#children.clear();
    for (const ns of this.#namespaces) spawnSync('ip', ['netns', 'del', ns]);
    this.#namespaces.clear();
    this.#removeTmp();
  }

  #removeTmp() {
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
