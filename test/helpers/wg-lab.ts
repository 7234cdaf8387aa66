// WireGuard interfaces in network namespaces for the root tier: starts our daemon (the built
// bin/plexd-userspace.js) or Debian's wireguard-go in a namespace, configures it with `wg`, reads
// `wg show IF dump`, and tears everything down through the NetnsLab it is built on.
//
// Network rule: everything here talks only to addresses inside namespaces the lab created.

import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsLab, netnsUnavailableReason, run, type Netns } from './netns.js';
import { sleep, waitFor } from './wait.js';

// Waiting lives in wait.ts; re-exported for the labs' callers.
export { sleep, waitFor };

/** Which implementation runs an interface. */
/** 'wireguard-go-gso': current wireguard-go with TUN offloads and UDP GSO/GRO (WIREGUARD_GO_GSO). */
export type WgImpl = 'ours' | 'wireguard-go' | 'wireguard-go-gso';

/** The current wireguard-go binary (issue 19's reference): WIREGUARD_GO_GSO or ../shared/tools. */
export const WIREGUARD_GO_GSO = process.env['WIREGUARD_GO_GSO'] ?? fileURLToPath(new URL('../../../shared/tools/wireguard-go-gso', import.meta.url));

/** The repository root and our daemon's entry point. */
export const REPO_DIR = fileURLToPath(new URL('../../', import.meta.url));
export const DAEMON = join(REPO_DIR, 'bin/plexd-userspace.js');
/** Where both implementations put their UAPI sockets (shared by every namespace). */
export const SOCKET_DIR = '/var/run/wireguard';

/** The UAPI socket path of an interface. */
export function socketPath(ifname: string): string {
  return `${SOCKET_DIR}/${ifname}.sock`;
}

/**
 * Pids of our daemons serving `ifname` (a daemonized child runs `node …/plexd-userspace[.js] --foreground IFNAME`),
 * found in /proc by their exact command line; interface names are unique per test run.
 */
export function daemonPids(ifname: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'latin1').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    // The script may be bin/plexd-userspace.js or a `plexd-userspace` link to it (wg-quick's PATH).
    const at = argv.findIndex((a) => /(^|\/)plexd-userspace(\.js)?$/.test(a));
    if (at >= 0 && argv[argv.length - 2] === ifname && argv.slice(at + 1, -2).every((a) => a.startsWith('-'))) pids.push(Number(entry));
  }
  return pids;
}

/** Whether process `pid` exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Sends `sig` to `pid` if it still exists. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function commandExists(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (existsSync(`${dir}/${cmd}`)) return true;
  }
  return false;
}

/**
 * Why the WireGuard root tests cannot run here (printed once with `what`), or undefined: the netns
 * tier's needs plus the given commands (e.g. wireguard-go, wg, iperf3).
 */
export function wgUnavailableReason(what: string, commands: readonly string[] = ['wg', 'wireguard-go']): string | undefined {
  let reason = netnsUnavailableReason();
  if (reason === undefined) {
    const missing = commands.filter((c) => !commandExists(c));
    if (missing.length > 0) reason = `not installed: ${missing.join(', ')}`;
  }
  if (reason !== undefined) console.warn(`[skip] ${what}: ${reason}`);
  return reason;
}

let built: Promise<void> | undefined;

/** The newest modification time (ms) of the files under `dir` whose names end in `ext`. */
function newestMtime(dir: string, ext: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith(ext)) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/**
 * Makes sure dist/ is built from the current src/ (the daemon under test is bin/plexd-userspace.js,
 * which imports dist/): runs `npm run build` once per test process when any src file is newer
 * than dist/cli/main.js (tsc rewrites every output). Rejects with tsc's output when it fails.
 */
export function ensureBuilt(): Promise<void> {
  built ??= (async () => {
    const stamp = join(REPO_DIR, 'dist/cli/main.js');
    if (existsSync(stamp) && newestMtime(join(REPO_DIR, 'src'), '.ts') < statSync(stamp).mtimeMs) return;
    // --prefix: the build is the repository's whatever the current directory is.
    const r = await run(['npm', '--prefix', REPO_DIR, 'run', 'build'], { timeoutMs: 180_000 });
    if (r.code !== 0) throw new Error(`npm run build failed:\n${r.stdout}\n${r.stderr}`);
  })();
  return built;
}

/** A Curve25519 key pair in wg's base64 form. */
export interface WgKeys {
  readonly privateKey: string;
  readonly publicKey: string;
}

function raw(key: KeyObject, kind: 'private' | 'public'): string {
  const jwk = key.export({ format: 'jwk' });
  const b64url = kind === 'private' ? jwk.d : jwk.x;
  if (b64url === undefined) throw new Error('x25519 JWK without key material');
  return Buffer.from(b64url, 'base64url').toString('base64');
}

/** A fresh X25519 key pair (what `wg genkey | wg pubkey` gives), without spawning wg. */
export function genKeys(): WgKeys {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey: raw(privateKey, 'private'), publicKey: raw(publicKey, 'public') };
}

/** A random 32-byte key in base64 (`wg genpsk`). */
export function genPsk(): string {
  return genKeys().privateKey;
}

/** One peer line of `wg show IF dump`. */
export interface DumpPeer {
  readonly publicKey: string;
  /** '(none)' when unset. */
  readonly presharedKey: string;
  /** '(none)' when unknown. */
  readonly endpoint: string;
  readonly allowedIps: readonly string[];
  /** Seconds since the epoch; 0 = never. */
  readonly latestHandshake: number;
  readonly rxBytes: number;
  readonly txBytes: number;
  /** 'off' or seconds. */
  readonly keepalive: string;
}

/** The parsed `wg show IF dump`. */
export interface Dump {
  readonly privateKey: string;
  readonly publicKey: string;
  readonly listenPort: number;
  readonly fwmark: string;
  readonly peers: readonly DumpPeer[];
}

/** Parses `wg show IF dump` (tab-separated: the interface line, then one line per peer). */
export function parseDump(text: string): Dump {
  const lines = text.split('\n').filter((l) => l !== '');
  const head = (lines[0] ?? '').split('\t');
  if (head.length !== 4) throw new Error(`unexpected wg dump header ${JSON.stringify(lines[0])}`);
  const peers = lines.slice(1).map((line): DumpPeer => {
    const f = line.split('\t');
    if (f.length !== 8) throw new Error(`unexpected wg dump peer line ${JSON.stringify(line)}`);
    return {
      publicKey: f[0]!,
      presharedKey: f[1]!,
      endpoint: f[2]!,
      allowedIps: f[3] === '(none)' ? [] : f[3]!.split(','),
      latestHandshake: Number(f[4]),
      rxBytes: Number(f[5]),
      txBytes: Number(f[6]),
      keepalive: f[7]!,
    };
  });
  return { privateKey: head[0]!, publicKey: head[1]!, listenPort: Number(head[2]), fwmark: head[3]!, peers };
}

/** A WireGuard interface run by one daemon process in one namespace. */
export class WgInterface {
  readonly impl: WgImpl;
  readonly ns: Netns;
  readonly name: string;
  readonly keys: WgKeys;
  readonly process: ChildProcess;
  /** Everything the daemon wrote to stdout and stderr so far (for failure messages). */
  output = '';
  readonly #lab: WgLab;
  readonly #exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  /** Use WgLab.start(). */
  constructor(lab: WgLab, impl: WgImpl, ns: Netns, name: string, keys: WgKeys, child: ChildProcess) {
    this.#lab = lab;
    this.impl = impl;
    this.ns = ns;
    this.name = name;
    this.keys = keys;
    this.process = child;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => this.#append(d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => this.#append(d));
    this.#exit = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
      else child.once('exit', (code, signal) => resolve({ code, signal }));
    });
  }

  #append(d: string): void {
    if (this.output.length < 1_000_000) this.output += d;
  }

  /** The UAPI socket path. */
  get socket(): string {
    return socketPath(this.name);
  }

  /** Resolves with the daemon's exit status, or undefined if it is still running after `timeoutMs`. */
  exited(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
    return Promise.race([this.#exit, sleep(timeoutMs).then(() => undefined)]);
  }

  /** `wg ARGS` inside the interface's namespace; rejects with wg's message unless it exits 0. */
  wg(...args: string[]): Promise<string> {
    return this.ns.runOk(['wg', ...args], { timeoutMs: 30_000 });
  }

  /** `wg set IF ARGS` (a `preshared-key` value is written to a file for wg). */
  async set(...args: string[]): Promise<void> {
    const argv = [...args];
    for (let i = 0; i < argv.length - 1; i++) {
      if (argv[i] === 'preshared-key' || argv[i] === 'private-key') argv[i + 1] = this.#lab.keyFile(argv[i + 1]!);
    }
    await this.wg('set', this.name, ...argv);
  }

  /** The parsed `wg show IF dump`. */
  async dump(): Promise<Dump> {
    return parseDump(await this.wg('show', this.name, 'dump'));
  }

  /** This interface's entry for `peer` in `wg show dump`; throws when absent. */
  async peer(peer: WgInterface | string): Promise<DumpPeer> {
    const key = typeof peer === 'string' ? peer : peer.keys.publicKey;
    const found = (await this.dump()).peers.find((p) => p.publicKey === key);
    if (found === undefined) throw new Error(`${this.name} has no peer ${key}`);
    return found;
  }

  /** The bound UDP port (from wg show). */
  async listenPort(): Promise<number> {
    return (await this.dump()).listenPort;
  }

  /** `ip ARGS` in the namespace. */
  ip(...args: string[]): Promise<string> {
    return this.ns.ip(...args);
  }
}

/** Options of WgLab.start(). */
export interface StartOptions {
  /** Tunnel addresses (CIDR) added to the interface; it is brought up either way. */
  readonly addresses?: readonly string[];
  /** Interface name; default a unique one. */
  readonly name?: string;
  /** Environment for the daemon (e.g. LOG_LEVEL). */
  readonly env?: Readonly<Record<string, string>>;
  /** Skip setting a private key and bringing the link up. */
  readonly bare?: boolean;
  /** For 'ours': the argv prefix that runs plexd-userspace (default node DAEMON; e.g. the standalone binary). */
  readonly command?: readonly string[];
}

/** Options of WgLab.connect(): how the two sides learn about each other. */
export interface ConnectOptions {
  /** Allowed IPs a has for b (default b's /32 and /128 tunnel addresses). */
  readonly allowedOfB?: readonly string[];
  readonly allowedOfA?: readonly string[];
  /** b's endpoint as a knows it, or null for none (a must wait for b's handshake). */
  readonly endpointOfB?: string | null;
  readonly endpointOfA?: string | null;
  readonly presharedKey?: string;
  /** Preshared key on b's side when it differs (a mismatch test). */
  readonly presharedKeyOfB?: string;
  readonly keepaliveOfA?: number;
  readonly keepaliveOfB?: number;
}

/**
 * Owns a NetnsLab plus the daemons it started and a temp dir for key files. `cleanup()` stops the
 * daemons (SIGTERM, then SIGKILL), deletes their interfaces and namespaces, and the temp dir.
 */
export class WgLab {
  readonly lab = new NetnsLab();
  readonly #interfaces: WgInterface[] = [];
  readonly #adopted: string[] = [];
  readonly #dir = mkdtempSync(join(tmpdir(), 'plexd-wglab-'));
  #files = 0;

  /** Writes `content` to a 0600 file in the lab's temp dir and returns its path. */
  file(content: string, name = `f${this.#files++}`): string {
    const path = join(this.#dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  }

  /** A key file for `wg set ... private-key|preshared-key FILE`. */
  keyFile(key: string): string {
    return this.file(`${key}\n`);
  }

  /** The lab's temp dir (removed by cleanup). */
  get dir(): string {
    return this.#dir;
  }

  /** A fresh namespace. */
  namespace(): Promise<Netns> {
    return this.lab.namespace();
  }

  /**
   * Starts `impl` in the foreground for interface `name` inside `ns`, waits for the UAPI socket,
   * then (unless `bare`) gives it a fresh private key, adds `addresses` and brings it up.
   */
  async start(ns: Netns, impl: WgImpl, opts: StartOptions = {}): Promise<WgInterface> {
    const name = opts.name ?? this.lab.uniqueName(impl === 'ours' ? 'p' : 'g');
    const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const cmd = impl === 'ours' ? [...(opts.command ?? [process.execPath, DAEMON]), '-f', name] : [impl === 'wireguard-go-gso' ? WIREGUARD_GO_GSO : 'wireguard-go', '-f', name];
    const child = this.lab.spawn(ns.argv(['env', ...env, ...cmd]));
    const wgIf = new WgInterface(this, impl, ns, name, genKeys(), child);
    this.#interfaces.push(wgIf);
    const up = await waitFor(async () => existsSync(wgIf.socket) || (await wgIf.exited(0)) !== undefined, 15_000);
    if (!existsSync(wgIf.socket)) {
      throw new Error(`${impl} ${name} did not come up (${up === undefined ? 'timeout' : 'exited'}): ${wgIf.output}`);
    }
    if (opts.bare === true) return wgIf;
    await wgIf.set('private-key', wgIf.keys.privateKey);
    for (const addr of opts.addresses ?? []) {
      await ns.ip('addr', 'add', addr, 'dev', name, ...(addr.includes(':') ? ['nodad'] : []));
    }
    await ns.ip('link', 'set', name, 'up');
    return wgIf;
  }

  /** Makes a and b peers of each other (see ConnectOptions for the defaults). */
  async connect(a: WgInterface, b: WgInterface, opts: ConnectOptions = {}): Promise<void> {
    const side = async (self: WgInterface, other: WgInterface, allowed: readonly string[] | undefined, endpoint: string | null | undefined, psk: string | undefined, keepalive: number | undefined) => {
      const args = ['peer', other.keys.publicKey, 'allowed-ips', (allowed ?? (await tunnelHosts(other))).join(',')];
      if (endpoint !== undefined && endpoint !== null) args.push('endpoint', endpoint);
      if (psk !== undefined) args.push('preshared-key', psk);
      if (keepalive !== undefined) args.push('persistent-keepalive', String(keepalive));
      await self.set(...args);
    };
    await side(a, b, opts.allowedOfB, opts.endpointOfB, opts.presharedKey, opts.keepaliveOfA);
    await side(b, a, opts.allowedOfA, opts.endpointOfA, opts.presharedKeyOfB ?? opts.presharedKey, opts.keepaliveOfB);
  }

  /**
   * Takes responsibility for a daemon this lab did not spawn itself (one that daemonized, or that
   * wg-quick started) serving `ifname`: cleanup() stops it and removes its socket.
   */
  adopt(ifname: string): void {
    this.#adopted.push(ifname);
  }

  /** Stops everything this lab started. Never throws; idempotent. */
  async cleanup(): Promise<void> {
    for (const name of this.#adopted.splice(0)) {
      const pids = daemonPids(name);
      for (const pid of pids) signal(pid, 'SIGTERM');
      await waitFor(() => pids.every((pid) => !alive(pid)), 3000);
      for (const pid of pids) signal(pid, 'SIGKILL');
      rmSync(socketPath(name), { force: true });
    }
    for (const i of this.#interfaces) {
      if (i.process.exitCode === null && i.process.signalCode === null) i.process.kill('SIGTERM');
    }
    for (const i of this.#interfaces) {
      if ((await i.exited(3000)) === undefined) i.process.kill('SIGKILL');
    }
    await this.lab.cleanup();
    for (const i of this.#interfaces.splice(0)) {
      // A daemon killed hard leaves its socket behind; it is ours (the name is unique).
      rmSync(i.socket, { force: true });
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** The host prefixes (/32, /128) of an interface's addresses, as `ip -o addr` lists them. */
export async function tunnelHosts(i: WgInterface): Promise<string[]> {
  const out = await i.ip('-o', 'addr', 'show', 'dev', i.name);
  const hosts: string[] = [];
  for (const m of out.matchAll(/\binet6? ([0-9a-f.:]+)\//g)) {
    const addr = m[1]!;
    if (addr.startsWith('fe80:')) continue;
    hosts.push(addr.includes(':') ? `${addr}/128` : `${addr}/32`);
  }
  return hosts;
}

/** Ping statistics parsed from iputils ping. */
export interface PingResult {
  readonly ok: boolean;
  readonly received: number;
  /** Average RTT in ms, NaN when nothing came back. */
  readonly avgMs: number;
  readonly output: string;
}

/**
 * `ping -c count` from `ns` to `target` (extra args such as ['-I', addr]); each reply waited for
 * at most `waitS` seconds. ok = at least one reply.
 */
export async function ping(ns: Netns, target: string, opts: { count?: number; intervalS?: number; waitS?: number; args?: readonly string[] } = {}): Promise<PingResult> {
  const count = opts.count ?? 1;
  const waitS = opts.waitS ?? 2;
  const argv = ['ping', '-n', '-c', String(count), '-i', String(opts.intervalS ?? 0.2), '-W', String(waitS), ...(opts.args ?? []), target];
  const r = await ns.run(argv, { timeoutMs: (count * (opts.intervalS ?? 0.2) + waitS) * 1000 + 5000 });
  const received = Number(/(\d+) received/.exec(r.stdout)?.[1] ?? 0);
  const avg = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  return { ok: received > 0, received, avgMs: avg === null ? Number.NaN : Number(avg[1]), output: r.stdout + r.stderr };
}

/**
 * Pings until one reply arrives (a handshake may be under way) or `tries` are used up; each try
 * waits up to 2 s. Returns the last result.
 */
export async function pingUntil(ns: Netns, target: string, tries = 4, args: readonly string[] = []): Promise<PingResult> {
  let last: PingResult | undefined;
  for (let i = 0; i < tries; i++) {
    last = await ping(ns, target, { args });
    if (last.ok) return last;
  }
  return last!;
}

/** A running tcpdump: what it printed so far, and how to stop it. */
export interface Capture {
  /** Everything tcpdump printed on stdout so far. */
  text(): string;
  stop(): void;
}

/**
 * Starts `tcpdump -i IFNAME -n -l ARGS` in `ns` and resolves once it is listening (at most 5 s;
 * rejects otherwise). Stop it with stop(), also on failure.
 */
export async function capture(ns: Netns, ifname: string, args: readonly string[]): Promise<Capture> {
  const child = spawn('ip', ['netns', 'exec', ns.name, 'tcpdump', '-i', ifname, '-n', '-l', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.on('error', () => {});
  const stop = () => void child.kill('SIGTERM');
  if (!(await waitFor(() => err.includes('listening on'), 5000))) {
    stop();
    throw new Error(`tcpdump on ${ifname} did not start: ${err}`);
  }
  return { text: () => out, stop };
}

/** Waits until something in `ns` listens on TCP `port` (at most 5 s); false if nothing does. */
export async function tcpListening(ns: Netns, port: number): Promise<boolean> {
  return (await waitFor(async () => (await ns.run(['ss', '-Htln', `sport = :${port}`])).stdout.includes(`:${port}`), 5000)) === true;
}
