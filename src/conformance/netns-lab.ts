// Network-namespace lab: namespaces, veth pairs, commands and long-running processes inside a
// namespace, all torn down by cleanup() and, as a last resort, by a synchronous sweep when the
// process exits. Used by the conformance runner (`plexd-userspace conformance live`), the root
// test tier (through test/helpers/netns.ts) and anything else that needs a private network.
//
// Network rule: users send traffic only to loopback and to addresses inside namespaces they
// created. Everything here is named `plxt<pid base36>-…`, so a sweep can find leftovers of dead runs.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';

/** Result of a finished command. */
export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options for run(): a time limit (default 20 s; the process group is killed then) and stdin. */
export interface RunOptions {
  readonly timeoutMs?: number;
  readonly input?: string;
}

/** Options for spawn(): stdin as a pipe (default ignored) and the environment (default ours). */
export interface SpawnOptions {
  readonly stdin?: 'pipe' | 'ignore';
  readonly env?: NodeJS.ProcessEnv;
}

const PREFIX = `plxt${process.pid.toString(36)}-`;
let counter = 0;
let cachedReason: string | undefined | null = null;

function which(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    try {
      accessSync(`${dir}/${cmd}`, constants.X_OK);
      return true;
    } catch {
      // keep looking
    }
  }
  return false;
}

/**
 * Why the root tier cannot run here, or undefined when it can: needs Linux, uid 0, /dev/net/tun,
 * `ip`, and a working `ip netns add`. Probes once per process.
 */
export function netnsUnavailableReason(): string | undefined {
  if (cachedReason !== null) return cachedReason;
  cachedReason = probe();
  return cachedReason;
}

function probe(): string | undefined {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return 'not root (the netns tier needs uid 0 / CAP_NET_ADMIN, CAP_SYS_ADMIN)';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing (load the tun module)';
  if (!which('ip')) return '`ip` (iproute2) is not installed';
  const name = `${PREFIX}probe`;
  const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (add.status !== 0) return `\`ip netns add\` fails here: ${(add.stderr || add.error?.message || '').trim()}`;
  spawnSync('ip', ['netns', 'del', name]);
  return undefined;
}

/** Runs a command (argv, no shell) to completion with a time limit. Never rejects on exit status. */
export function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return runTracked(argv, options, undefined);
}

/** run(), with the child in `children` while it runs (so a lab's cleanup() can kill it). */
function runTracked(argv: readonly string[], options: RunOptions, children: Set<ChildProcess> | undefined): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new TypeError('expected a non-empty argv, got []');
  const timeoutMs = options.timeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    children?.add(child);
    child.on('exit', () => children?.delete(child));
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
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
    child.stdin.end(options.input ?? '');
  });
}

/** Like run() but rejects with the command, status and stderr unless it exits 0. */
export async function runOk(argv: readonly string[], options: RunOptions = {}): Promise<string> {
  return stdoutIfOk(argv, await run(argv, options));
}

function stdoutIfOk(argv: readonly string[], r: RunResult): string {
  if (r.code !== 0) {
    throw new Error(`command failed (${r.signal ?? `exit ${r.code}`}): ${argv.join(' ')}\n${r.stderr.trim()}`);
  }
  return r.stdout;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** A network namespace created by a {@link NetnsLab}. */
export class Netns {
  /** The namespace name (`ip netns` / `ip -n`). */
  readonly name: string;
  readonly #lab: NetnsLab;

  /** Use NetnsLab.namespace(). */
  constructor(lab: NetnsLab, name: string) {
    this.#lab = lab;
    this.name = name;
  }

  /** argv prefixed so it runs inside this namespace. */
  argv(argv: readonly string[]): string[] {
    return ['ip', 'netns', 'exec', this.name, ...argv];
  }

  /** Runs argv inside the namespace (see run()); the lab's cleanup() kills it if still running. */
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    return this.#lab.run(this.argv(argv), options);
  }

  /** Runs argv inside the namespace; rejects unless it exits 0. Returns stdout. */
  async runOk(argv: readonly string[], options?: RunOptions): Promise<string> {
    return stdoutIfOk(argv, await this.run(argv, options));
  }

  /** `ip ARGS` inside the namespace (uses `ip -n`, no exec); rejects unless it exits 0. */
  ip(...args: string[]): Promise<string> {
    return runOk(['ip', '-n', this.name, ...args]);
  }

  /** Starts a long-running process inside the namespace; the lab kills it on cleanup. */
  spawn(argv: readonly string[], options?: SpawnOptions): ChildProcess {
    return this.#lab.spawn(this.argv(argv), options);
  }
}

/** Endpoint addresses of a veth pair, e.g. { a: '10.9.0.1/24', b: '10.9.0.2/24' }. */
export interface VethAddresses {
  readonly a?: readonly string[] | string;
  readonly b?: readonly string[] | string;
}

/**
 * Owns namespaces and processes for one test file or one conformance run. `cleanup()` kills every process it started
 * and deletes every namespace (taking veths and TUNs inside with them). Idempotent.
 */
export class NetnsLab {
  readonly #namespaces = new Set<string>();
  readonly #links = new Set<string>();
  readonly #children = new Set<ChildProcess>();

  constructor() {
    liveLabs.add(this);
    installExitSweep();
  }

  /** A unique interface or namespace name (<= 15 bytes) with this process's prefix. */
  uniqueName(tag = ''): string {
    const name = `${PREFIX}${tag}${(counter++).toString(36)}`;
    if (Buffer.byteLength(name) > 15) throw new RangeError(`expected a tag of at most ${15 - PREFIX.length - 2} bytes, got ${JSON.stringify(tag)}`);
    return name;
  }

  /** Creates a namespace with loopback up. */
  async namespace(): Promise<Netns> {
    const name = this.uniqueName('n');
    await runOk(['ip', 'netns', 'add', name]);
    this.#namespaces.add(name);
    await runOk(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
    return new Netns(this, name);
  }

  /**
   * Joins two namespaces with a veth pair, adds the addresses and brings both ends up.
   * Returns the interface names.
   */
  async veth(a: Netns, b: Netns, addresses: VethAddresses = {}): Promise<{ a: string; b: string }> {
    const ifA = this.uniqueName('a');
    const ifB = this.uniqueName('b');
    await runOk(['ip', 'link', 'add', ifA, 'netns', a.name, 'type', 'veth', 'peer', 'name', ifB, 'netns', b.name]);
    for (const [ns, ifname, addrs] of [[a, ifA, addresses.a], [b, ifB, addresses.b]] as const) {
      for (const addr of typeof addrs === 'string' ? [addrs] : addrs ?? []) {
        await ns.ip('addr', 'add', addr, 'dev', ifname, ...(addr.includes(':') ? ['nodad'] : []));
      }
      await ns.ip('link', 'set', ifname, 'up');
    }
    return { a: ifA, b: ifB };
  }

  /** Remembers a link created in the root namespace so cleanup() deletes it. */
  trackLink(ifname: string): void {
    this.#links.add(ifname);
  }

  /**
   * Starts a long-running process (own process group); cleanup() kills the group. stdout and
   * stderr are pipes: read them, or the process blocks once a pipe buffer fills.
   */
  spawn(argv: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new TypeError('expected a non-empty argv, got []');
    const child = spawn(cmd, args, {
      stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
      detached: true,
      ...(options.env !== undefined ? { env: options.env } : {}),
    });
    child.on('error', () => {});
    this.#children.add(child);
    child.on('exit', () => this.#children.delete(child));
    return child;
  }

  /**
   * run() whose command cleanup() kills if it is still running (so Ctrl-C during a scenario
   * leaves no `ip netns exec … ping` behind).
   */
  run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return runTracked(argv, options, this.#children);
  }

  /** Kills processes, deletes links and namespaces. Never throws; safe to call repeatedly. */
  async cleanup(): Promise<void> {
    const exits = [...this.#children].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => {
            killGroup(child, 'SIGKILL');
            resolve();
          }, 2000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          killGroup(child, 'SIGTERM');
        }),
    );
    await Promise.all(exits);
    this.#children.clear();
    for (const link of this.#links) await run(['ip', 'link', 'del', link]).catch(() => undefined);
    this.#links.clear();
    for (const ns of this.#namespaces) await run(['ip', 'netns', 'del', ns]).catch(() => undefined);
    this.#namespaces.clear();
  }

  /** Synchronous last-resort cleanup (process exit). */
  cleanupSync(): void {
    for (const child of this.#children) killGroup(child, 'SIGKILL');
    this.#children.clear();
    for (const link of this.#links) spawnSync('ip', ['link', 'del', link]);
    this.#links.clear();
    for (const ns of this.#namespaces) spawnSync('ip', ['netns', 'del', ns]);
    this.#namespaces.clear();
  }
}

const liveLabs = new Set<NetnsLab>();
let exitSweepInstalled = false;

function installExitSweep(): void {
  if (exitSweepInstalled) return;
  exitSweepInstalled = true;
  process.once('exit', () => {
    for (const lab of liveLabs) lab.cleanupSync();
  });
}

/**
 * Deletes namespaces and links named plxt<pid base36>-… whose creating process is dead (a crashed
 * earlier run). Call before creating a lab; returns the names it removed.
 */
export function sweepStale(): string[] {
  const removed: string[] = [];
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return (err as { code?: string }).code === 'EPERM';
    }
  };
  const stale = (name: string): boolean => {
    const m = /^plxt([0-9a-z]+)-/.exec(name);
    const pid = m === null ? Number.NaN : parseInt(m[1]!, 36);
    return Number.isInteger(pid) && pid !== process.pid && !alive(pid);
  };
  const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of ns.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    if (stale(name)) {
      spawnSync('ip', ['netns', 'del', name]);
      removed.push(name);
    }
  }
  const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of links.split('\n')) {
    const name = (line.split(': ')[1] ?? '').split('@')[0] ?? '';
    if (stale(name)) {
      spawnSync('ip', ['link', 'del', name]);
      removed.push(name);
    }
  }
  return removed;
}
