// `plexd-userspace conformance live`: starts a target WireGuard program and a reference peer, both
// by the wireguard-go command line (`PROGRAM IFNAME`, UAPI at /var/run/wireguard/IFNAME.sock), in
// two network namespaces of our own joined by a veth pair, configures them over UAPI and runs the
// scenarios below; an adversary child process (adversary.ts, our core over raw UDP) sits in the
// peer's namespace with a key the runner configured on the target.
//
// Network rule: traffic goes only to addresses inside the namespaces created here. Everything
// (namespaces, veth, TUNs, processes, sockets) is removed at the end, on failure and on Ctrl-C.

import type { ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { accessSync, constants, existsSync, rmSync } from 'node:fs';
import { delimiter } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { REKEY_TIMEOUT } from '../core/constants.js';
import { formatPrefix, parsePrefix } from '../core/ip.js';
import { nodeCrypto } from '../crypto/node.js';
import { isStandaloneBinary } from '../io/sea.js';
import { sleep } from '../io/wait.js';
import { uapiRequest } from '../uapi/server.js';
import type { AdversaryAnswer, AdversaryCommand, AdversaryConfig } from './adversary.js';
import { NetnsLab, netnsUnavailableReason, sweepStale, type Netns } from './netns-lab.js';
import type { Report, ScenarioResult } from './report.js';

/** Scenario names, in run order (see docs/conformance.md for what each checks). */
export const LIVE_SCENARIOS = [
  'handshake-peer-initiates',
  'handshake-target-initiates',
  'handshake-retransmit',
  'data-ipv4',
  'data-ipv6',
  'outer-ipv6',
  'psk',
  'roaming',
  'persistent-keepalive',
  'allowed-ips',
  'rekey',
  'replay',
  'malformed',
  'uapi-errors',
  'allowed-ips-large',
  'cookie-under-load',
] as const;

/** One live scenario name. */
export type LiveScenario = (typeof LIVE_SCENARIOS)[number];

/** Options of runLive. */
export interface LiveOptions {
  /** The program under test: 'plexd-userspace' (this package), a name on PATH, or a path. */
  readonly target: string;
  /** The reference peer program, same forms. */
  readonly peer: string;
  /** Whether to run a scenario (the others are reported as skipped). */
  selected(name: string): boolean;
  /** Receives one line per step, for a human watching. */
  progress(line: string): void;
  /**
   * Ends the run early: the scenario in flight is abandoned, everything created so far is removed
   * (processes, namespaces, interfaces, UAPI sockets) and runLive rejects with the abort reason.
   */
  readonly signal?: AbortSignal;
}

const SOCKET_DIR = '/var/run/wireguard';
const PORT = { target: 51820, peer: 51821, roamed: 51822 } as const;
const OUTER = { target4: '10.201.0.1', peer4: '10.201.0.2', target6: 'fdc9::1', peer6: 'fdc9::2' } as const;
const INNER = {
  target4: '10.202.0.1',
  peer4: '10.202.0.2',
  adversary4: '10.202.0.3',
  spoofed4: '10.202.0.99',
  target6: 'fdca::1',
  peer6: 'fdca::2',
  adversary6: 'fdca::3',
  spoofed6: 'fdca::99',
} as const;
const ZERO_KEY = '0'.repeat(64);
const LARGE_ALLOWED_IPS = 100_000;
const FLOOD_COUNT = 4_000;
/** How long handshake-retransmit waits for the retransmission and the handshake after it. */
const RETRANSMIT_WAIT_S = 8;
/**
 * REKEY_TIMEOUT plus jitter (under 334 ms, whitepaper 6.1) plus slack for a loaded machine
 * (timers fire late, never early); still far from the next retransmit at 10 s.
 */
const RETRANSMIT_MAX_MS = REKEY_TIMEOUT + 1000;
/** persistent-keepalive: how long each interval is watched, and the gaps accepted for 1 s. */
const KEEPALIVE_WATCH_MS = { on: 3_200, off: 2_000 } as const;
const KEEPALIVE_GAP_MS = { min: 900, max: 1_500 } as const;

/** The package root (src/conformance and dist/conformance are both two levels down). */
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

function onPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    try {
      accessSync(`${dir}/${cmd}`, constants.X_OK);
      return `${dir}/${cmd}`;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/**
 * The argv prefix that starts PROGRAM: `plexd-userspace` is this package's bin under the running
 * Node; a name with a slash is a path (must be executable); anything else is looked up on PATH.
 * Returns a reason string when it cannot be started.
 */
export function resolveProgram(program: string): string[] | string {
  if (program === 'plexd-userspace') {
    const bin = `${PACKAGE_ROOT}bin/plexd-userspace.js`;
    if (!existsSync(`${PACKAGE_ROOT}dist/cli/main.js`)) return `plexd-userspace is not built (${PACKAGE_ROOT}dist is missing; run npm run build)`;
    return [process.execPath, bin];
  }
  if (program.includes('/')) {
    try {
      accessSync(program, constants.X_OK);
      return [program];
    } catch {
      return `${program} is not an executable file`;
    }
  }
  return onPath(program) !== undefined ? [program] : `${program} is not on PATH`;
}

/** The built adversary entry point (dist/…/adversary-process.js, also when running from src). */
function adversaryScript(): string {
  return `${PACKAGE_ROOT}dist/conformance/adversary-process.js`;
}

/** Why `conformance live` cannot run here, or undefined: root, namespaces, tools, programs. */
export function liveUnavailableReason(target: string, peer: string): string | undefined {
  if (isStandaloneBinary()) return 'conformance live runs from the npm package, not the standalone binary (its adversary is a separate Node.js script); point --target at this binary from there';
  const lab = netnsUnavailableReason();
  if (lab !== undefined) return lab;
  for (const tool of ['ping', 'ncat']) if (onPath(tool) === undefined) return `\`${tool}\` is not installed`;
  for (const [role, program] of [['target', target], ['peer', peer]] as const) {
    const r = resolveProgram(program);
    if (typeof r === 'string') return `${role}: ${r}`;
  }
  if (!existsSync(adversaryScript())) return `the adversary is not built (${adversaryScript()} is missing; run npm run build)`;
  return undefined;
}

interface KeyPair {
  readonly priv: string;
  readonly pub: string;
}
function keyPair(): KeyPair {
  const priv = randomFillSync(new Uint8Array(32));
  return { priv: Buffer.from(priv).toString('hex'), pub: Buffer.from(nodeCrypto.x25519PublicKey(priv)).toString('hex') };
}

/** A started daemon: its namespace, interface, UAPI socket and process (with its output tail). */
interface Daemon {
  readonly role: 'target' | 'peer';
  readonly program: string;
  readonly ns: Netns;
  readonly ifname: string;
  readonly socket: string;
  readonly child: ChildProcess;
  output(): string;
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

async function startDaemon(lab: NetnsLab, role: Daemon['role'], program: string, ns: Netns, ifname: string, addresses: readonly string[]): Promise<Daemon> {
  const argv = resolveProgram(program);
  if (typeof argv === 'string') throw new Error(argv);
  const socket = `${SOCKET_DIR}/${ifname}.sock`;
  const child = ns.spawn([...argv, ifname], { env: { ...process.env, WG_PROCESS_FOREGROUND: '1', LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'error' } });
  let tail = '';
  const keep = (d: Buffer): void => void (tail = (tail + d.toString('utf8')).slice(-2000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const daemon: Daemon = { role, program, ns, ifname, socket, child, output: () => tail.trim() };
  const start = Date.now();
  for (;;) {
    if (!isRunning(child)) throw new Error(`${role} ${program} exited (${child.exitCode ?? child.signalCode}) before its UAPI socket appeared: ${daemon.output()}`);
    if (existsSync(socket)) {
      try {
        await uapiRequest(socket, 'get=1\n\n', { timeoutMs: 2_000 });
        break;
      } catch {
        // not accepting yet
      }
    }
    if (Date.now() - start > 15_000) throw new Error(`${role} ${program}: no UAPI socket at ${socket} after 15 s`);
    await sleep(50);
  }
  for (const a of addresses) await ns.ip('addr', 'add', a, 'dev', ifname, ...(a.includes(':') ? ['nodad'] : []));
  await ns.ip('link', 'set', ifname, 'mtu', '1420', 'up');
  return daemon;
}

/** get=1 parsed: device keys, and per peer (by public key) its keys; repeated keys collect. */
interface Config {
  readonly device: Map<string, string[]>;
  readonly peers: Map<string, Map<string, string[]>>;
}
function parseGet(text: string): Config {
  const device = new Map<string, string[]>();
  const peers = new Map<string, Map<string, string[]>>();
  let current = device;
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'public_key') {
      current = new Map();
      peers.set(value, current);
    }
    const values = current.get(key);
    if (values === undefined) current.set(key, [value]);
    else values.push(value);
  }
  return { device, peers };
}

async function uapiGet(d: Daemon, timeoutMs = 10_000): Promise<string> {
  const reply = await uapiRequest(d.socket, 'get=1\n\n', { timeoutMs });
  if (!reply.endsWith('errno=0\n\n')) throw new Error(`${d.role}: get=1 failed: ${reply.slice(-40).trim()}`);
  return reply;
}

async function uapiSetErrno(d: Daemon, body: string, timeoutMs = 10_000): Promise<number> {
  const reply = await uapiRequest(d.socket, `set=1\n${body}\n`, { timeoutMs });
  const m = /errno=(-?\d+)\n\n$/.exec(reply);
  if (m === null) throw new Error(`${d.role}: malformed UAPI reply ${JSON.stringify(reply.slice(0, 80))}`);
  return Number(m[1]);
}

async function uapiSet(d: Daemon, body: string, timeoutMs?: number): Promise<void> {
  const errno = await uapiSetErrno(d, body, timeoutMs);
  if (errno !== 0) throw new Error(`${d.role}: set=1 answered errno=${errno}`);
}

/**
 * Pings `address` from `ns`: `count` replies within `deadlineS` seconds, `size` payload bytes.
 * With `resend: false` only `count` requests are sent (ping -W instead of -w).
 */
async function ping(ns: Netns, address: string, opts: { count?: number; deadlineS?: number; size?: number; resend?: boolean } = {}): Promise<boolean> {
  const deadline = opts.deadlineS ?? 5;
  const wait = opts.resend === false ? '-W' : '-w';
  const argv = ['ping', '-n', '-q', '-c', String(opts.count ?? 1), '-i', '0.2', wait, String(deadline), '-s', String(opts.size ?? 56), address];
  return (await ns.run(argv, { timeoutMs: (deadline + 3) * 1000 })).code === 0;
}

/** Sends `bytes` over TCP with ncat from `from` to `to`'s `address`:5001; true when all arrive intact. */
async function tcpTransfer(lab: NetnsLab, from: Netns, to: Netns, address: string, bytes: number): Promise<string | undefined> {
  const data = Array.from({ length: Math.ceil(bytes / 64) }, (_, i) => `${i.toString(36).padStart(8, '0')}${'plexd-userspace conformance tcp payload.'.padEnd(55, '.')}\n`).join('').slice(0, bytes);
  const listener = lab.spawn(to.argv(['ncat', '-l', '--recv-only', address, '5001']));
  let received = '';
  listener.stdout?.setEncoding('utf8').on('data', (d: string) => (received += d));
  const closed = new Promise<void>((r) => listener.once('close', () => r()));
  for (let attempt = 0; attempt < 20; attempt++) {
    await sleep(100);
    const r = await from.run(['ncat', '--send-only', '-w', '5', address, '5001'], { input: data, timeoutMs: 20_000 });
    if (r.code === 0) break;
    if (!isRunning(listener)) break;
  }
  await Promise.race([closed, sleep(10_000)]);
  if (isRunning(listener)) listener.kill('SIGKILL');
  if (received.length !== data.length) return `TCP to ${address}: ${received.length} of ${data.length} bytes arrived`;
  if (received !== data) return `TCP to ${address}: the bytes arrived altered`;
  return undefined;
}

/** The adversary child process, driven one JSON line at a time. */
class AdversaryClient {
  readonly #child: ChildProcess;
  readonly #lines: AsyncIterator<string>;
  constructor(child: ChildProcess) {
    this.#child = child;
    this.#lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  }
  async #read(timeoutMs: number): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`adversary: no answer within ${timeoutMs} ms`)), timeoutMs)));
    try {
      const next = await Promise.race([this.#lines.next(), timeout]);
      if (next.done === true) throw new Error('adversary: the process ended');
      return JSON.parse(next.value) as unknown;
    } finally {
      clearTimeout(timer);
    }
  }
  async init(cfg: AdversaryConfig): Promise<number> {
    this.#child.stdin!.write(`${JSON.stringify(cfg)}\n`);
    const r = (await this.#read(10_000)) as { ready: boolean; port?: number; detail?: string };
    if (!r.ready || r.port === undefined) throw new Error(`adversary: ${r.detail ?? 'not ready'}`);
    return r.port;
  }
  async run(cmd: AdversaryCommand, timeoutMs = 30_000): Promise<AdversaryAnswer> {
    this.#child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    return (await this.#read(timeoutMs)) as AdversaryAnswer;
  }
}

/** Everything a scenario may use. */
interface Lab {
  readonly lab: NetnsLab;
  readonly target: Daemon;
  readonly peer: Daemon;
  readonly adversary: AdversaryClient;
  /** The adversary's UDP port on OUTER.peer4 (its endpoint on the target). */
  readonly adversaryPort: number;
  readonly keys: { readonly target: KeyPair; readonly peer: KeyPair; readonly adversary: KeyPair };
}

interface PairOptions {
  readonly targetPsk?: string;
  readonly peerPsk?: string;
  /** The target's outer address as the peer dials it (default IPv4). */
  readonly outer6?: boolean;
}

/** Full configuration of both sides with replace_peers: every session starts over. */
async function configurePair(l: Lab, o: PairOptions = {}): Promise<void> {
  const { keys } = l;
  await uapiSet(
    l.target,
    [
      `private_key=${keys.target.priv}`,
      `listen_port=${PORT.target}`,
      'replace_peers=true',
      `public_key=${keys.peer.pub}`,
      `preshared_key=${o.targetPsk ?? ZERO_KEY}`,
      `endpoint=${OUTER.peer4}:${PORT.peer}`,
      `allowed_ip=${INNER.peer4}/32`,
      `allowed_ip=${INNER.peer6}/128`,
      `public_key=${keys.adversary.pub}`,
      `endpoint=${OUTER.peer4}:${l.adversaryPort}`,
      `allowed_ip=${INNER.adversary4}/32`,
      `allowed_ip=${INNER.adversary6}/128`,
      '',
    ].join('\n'),
  );
  await uapiSet(
    l.peer,
    [
      `private_key=${keys.peer.priv}`,
      `listen_port=${PORT.peer}`,
      'replace_peers=true',
      `public_key=${keys.target.pub}`,
      `preshared_key=${o.peerPsk ?? ZERO_KEY}`,
      `endpoint=${o.outer6 === true ? `[${OUTER.target6}]` : OUTER.target4}:${PORT.target}`,
      `allowed_ip=${INNER.target4}/32`,
      `allowed_ip=${INNER.target6}/128`,
      '',
    ].join('\n'),
  );
}

async function peerState(d: Daemon, publicKey: string): Promise<Map<string, string[]> | undefined> {
  return parseGet(await uapiGet(d)).peers.get(publicKey);
}

async function handshakeSec(d: Daemon, publicKey: string): Promise<number> {
  return Number((await peerState(d, publicKey))?.get('last_handshake_time_sec')?.[0] ?? 0);
}

/** How many ICMP (or ICMPv6, for `v6`) echo requests the kernel of `ns` has received. */
async function echoRequestsReceived(ns: Netns, v6: boolean): Promise<number> {
  const text = await ns.runOk(['cat', v6 ? '/proc/net/snmp6' : '/proc/net/snmp']);
  let value: string | undefined;
  if (v6) value = /^Icmp6InEchos\s+(\d+)$/m.exec(text)?.[1];
  else {
    const [names, values] = text.split('\n').filter((line) => line.startsWith('Icmp: ')).map((line) => line.split(' '));
    value = values?.[names?.indexOf('InEchos') ?? -1];
  }
  if (value === undefined) throw new Error(`no echo request counter in ${ns.name}'s ${v6 ? '/proc/net/snmp6' : '/proc/net/snmp'}`);
  return Number(value);
}

/** A fresh configuration and a session between the adversary and the target; a failure, or undefined. */
async function adversarySession(l: Lab): Promise<Outcome | undefined> {
  await configurePair(l);
  const up = await l.adversary.run({ op: 'ping' });
  return up.ok ? undefined : fail(`no session with the adversary: ${up.detail}`);
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

/** A scenario's verdict. */
interface Outcome {
  readonly ok: boolean;
  readonly detail: string;
}
const pass = (detail: string): Outcome => ({ ok: true, detail });
const fail = (detail: string): Outcome => ({ ok: false, detail });

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const v = await f();
  return [v, performance.now() - start];
}

/** Fresh configuration, then `initiator` pings the other side: answered, both report a handshake. */
async function handshakeScenario(l: Lab, initiator: 'peer' | 'target'): Promise<Outcome> {
  await configurePair(l);
  const [from, to] = initiator === 'peer' ? [l.peer.ns, INNER.target4] : [l.target.ns, INNER.peer4];
  const [ok, ms] = await timed(() => ping(from, to));
  if (!ok) return fail(`no echo reply within 5 s of the ${initiator} initiating`);
  const [t, p] = [await handshakeSec(l.target, l.keys.peer.pub), await handshakeSec(l.peer, l.keys.target.pub)];
  if (t === 0 || p === 0) return fail(`echo answered but last_handshake_time_sec is target ${t}, peer ${p}`);
  return pass(`first reply after ${Math.round(ms)} ms; both report the handshake`);
}

const SCENARIOS: Record<LiveScenario, { readonly timeoutMs: number; run(l: Lab): Promise<Outcome> }> = {
  'handshake-peer-initiates': { timeoutMs: 30_000, run: (l) => handshakeScenario(l, 'peer') },
  'handshake-target-initiates': { timeoutMs: 30_000, run: (l) => handshakeScenario(l, 'target') },
  'handshake-retransmit': {
    timeoutMs: 30_000,
    async run(l) {
      await configurePair(l);
      await l.adversary.run({ op: 'watch', dropInitiations: 1, fresh: true });
      // One echo request only: later ones would start initiations of their own once REKEY_TIMEOUT
      // has passed (whitepaper 5.4.2), hiding whether the retransmit timer fired.
      const [replied, answer] = await Promise.all([
        ping(l.target.ns, INNER.adversary4, { deadlineS: RETRANSMIT_WAIT_S, resend: false }),
        l.adversary.run({ op: 'watched', waitMs: RETRANSMIT_WAIT_S * 1000, untilEchoAnswered: true }, (RETRANSMIT_WAIT_S + 5) * 1000),
      ]);
      const w = answer.watched;
      if (w === undefined) return fail(answer.detail);
      const [first, second] = w.initiations;
      if (first === undefined) return fail('the target sent the adversary no handshake initiation');
      if (second === undefined) return fail(`the first initiation was dropped and no retransmission came within ${RETRANSMIT_WAIT_S} s`);
      const gap = second - first;
      if (gap < REKEY_TIMEOUT || gap > RETRANSMIT_MAX_MS) return fail(`retransmitted after ${seconds(gap)}; expected REKEY_TIMEOUT + jitter, ${seconds(REKEY_TIMEOUT)} to ${seconds(RETRANSMIT_MAX_MS)}`);
      if (!replied || w.echoesAnswered === 0) return fail(`retransmitted after ${seconds(gap)}, but the target's echo request did not get through (${answer.detail})`);
      if ((await handshakeSec(l.target, l.keys.adversary.pub)) === 0) return fail('echo answered but the target reports no handshake with the adversary');
      return pass(`first initiation dropped; retransmitted after ${seconds(gap)}; handshake completed, the target's echo request answered`);
    },
  },
  'data-ipv4': {
    timeoutMs: 60_000,
    async run(l) {
      await configurePair(l);
      if (!(await ping(l.peer.ns, INNER.target4, { count: 3, size: 1392 }))) return fail('peer -> target: 3 full-size (1420-byte) IPv4 pings not all answered');
      if (!(await ping(l.target.ns, INNER.peer4, { count: 3, size: 1392 }))) return fail('target -> peer: 3 full-size IPv4 pings not all answered');
      const up = await tcpTransfer(l.lab, l.peer.ns, l.target.ns, INNER.target4, 1 << 20);
      if (up !== undefined) return fail(`peer -> target ${up}`);
      const down = await tcpTransfer(l.lab, l.target.ns, l.peer.ns, INNER.peer4, 1 << 20);
      if (down !== undefined) return fail(`target -> peer ${down}`);
      return pass('ping both ways at MTU 1420; 1 MiB TCP each way intact');
    },
  },
  'data-ipv6': {
    timeoutMs: 30_000,
    async run(l) {
      await configurePair(l);
      if (!(await ping(l.peer.ns, INNER.target6, { count: 3, size: 1372 }))) return fail('peer -> target: IPv6 pings not all answered');
      if (!(await ping(l.target.ns, INNER.peer6, { count: 3, size: 1372 }))) return fail('target -> peer: IPv6 pings not all answered');
      // The same through the adversary: IPv6 packets crafted by our core over raw UDP.
      const up = await l.adversary.run({ op: 'ping', source: INNER.adversary6, size: 1372 });
      if (!up.ok) return fail(`adversary -> target: full-size IPv6 echo not answered: ${up.detail}`);
      if (!(await ping(l.target.ns, INNER.adversary6, { count: 2, size: 1372 }))) return fail('target -> adversary: IPv6 pings not all answered');
      return pass('inner IPv6 ping both ways at MTU 1420, with the reference peer and with the adversary');
    },
  },
  'outer-ipv6': {
    timeoutMs: 30_000,
    async run(l) {
      await configurePair(l, { outer6: true });
      const want = `[${OUTER.peer6}]:${PORT.peer}`;
      if (!(await ping(l.peer.ns, INNER.target4))) {
        const learned = (await peerState(l.target, l.keys.peer.pub))?.get('endpoint')?.[0];
        // The target took the peer's initiation (it reports the endpoint it came from) yet the
        // peer never got a response: the target sent it elsewhere. Current wireguard-go does this
        // after any IPv4 send (docs/conformance.md, "Known target defects").
        if (learned === want) return fail(`no handshake over outer IPv6: the target learned ${want} from the peer's initiation, but no response reached the peer`);
        return fail(`no handshake over outer IPv6 (the target's endpoint for the peer is ${learned ?? 'none'})`);
      }
      const endpoint = (await peerState(l.target, l.keys.peer.pub))?.get('endpoint')?.[0];
      if (endpoint !== want) return fail(`the target's endpoint for the peer is ${endpoint}, expected ${want}`);
      if (!(await ping(l.target.ns, INNER.peer6, { count: 2 }))) return fail('target -> peer over outer IPv6 not answered');
      return pass(`handshake and data over UDP/IPv6; target learned ${want}`);
    },
  },
  psk: {
    timeoutMs: 30_000,
    async run(l) {
      const psk = keyPair().priv;
      await configurePair(l, { targetPsk: psk, peerPsk: psk });
      if (!(await ping(l.peer.ns, INNER.target4))) return fail('no handshake with matching pre-shared keys');
      await configurePair(l, { targetPsk: psk, peerPsk: keyPair().priv });
      if (await ping(l.peer.ns, INNER.target4, { deadlineS: 2 })) return fail('handshake succeeded with different pre-shared keys');
      const t = await handshakeSec(l.target, l.keys.peer.pub);
      if (t !== 0) return fail('the target reports a handshake with a wrong pre-shared key');
      return pass('matching PSK: data flows; mismatched PSK: no session');
    },
  },
  roaming: {
    timeoutMs: 30_000,
    async run(l) {
      await configurePair(l);
      if (!(await ping(l.peer.ns, INNER.target4))) return fail('no session before roaming');
      await uapiSet(l.peer, `listen_port=${PORT.roamed}\n`);
      if (!(await ping(l.peer.ns, INNER.target4))) return fail('peer -> target failed after the peer moved to a new port');
      const endpoint = (await peerState(l.target, l.keys.peer.pub))?.get('endpoint')?.[0];
      const want = `${OUTER.peer4}:${PORT.roamed}`;
      if (endpoint !== want) return fail(`the target did not roam: endpoint ${endpoint}, expected ${want}`);
      if (!(await ping(l.target.ns, INNER.peer4))) return fail('target -> peer failed after roaming');
      return pass(`the target followed the peer to port ${PORT.roamed}`);
    },
  },
  'persistent-keepalive': {
    timeoutMs: 30_000,
    async run(l) {
      const down = await adversarySession(l);
      if (down !== undefined) return down;
      const setKeepalive = (seconds: number): Promise<void> => uapiSet(l.target, `public_key=${l.keys.adversary.pub}\npersistent_keepalive_interval=${seconds}\n`);
      const keepalives = async (ms: number): Promise<readonly number[]> => {
        const r = await l.adversary.run({ op: 'watched', waitMs: ms });
        if (r.watched === undefined) throw new Error(r.detail);
        return r.watched.keepalives;
      };
      // Watching from before the change catches the keepalive sent when it is turned on; turned
      // off, one already due could still leave, so that watch starts after the change.
      await l.adversary.run({ op: 'watch' });
      await setKeepalive(1);
      const on = await keepalives(KEEPALIVE_WATCH_MS.on);
      const gaps = on.slice(1).map((t, i) => t - on[i]!);
      const list = gaps.map(seconds).join(', ');
      if (on.length < 3) return fail(`interval 1: ${on.length} keepalives in ${seconds(KEEPALIVE_WATCH_MS.on)}, expected at least 3 (gaps: ${list || 'none'})`);
      if (gaps.some((g) => g < KEEPALIVE_GAP_MS.min || g > KEEPALIVE_GAP_MS.max)) return fail(`interval 1: keepalives ${list} apart, expected about 1 s`);
      await setKeepalive(0);
      await l.adversary.run({ op: 'watch' });
      const off = await keepalives(KEEPALIVE_WATCH_MS.off);
      if (off.length > 0) return fail(`interval 0: ${off.length} keepalives in ${seconds(KEEPALIVE_WATCH_MS.off)}, expected none`);
      return pass(`interval 1: ${on.length} keepalives, ${list} apart; interval 0: none in ${seconds(KEEPALIVE_WATCH_MS.off)}`);
    },
  },
  'allowed-ips': {
    timeoutMs: 30_000,
    async run(l) {
      const down = await adversarySession(l);
      if (down !== undefined) return down;
      // Inbound: a packet whose inner source is outside the sender's allowed IPs must not reach the
      // target's kernel. No reply could come back anyway (the target routes the spoofed address to
      // no peer), so the target namespace's echo request counters are the witness.
      for (const [own, spoofed] of [[INNER.adversary4, INNER.spoofed4], [INNER.adversary6, INNER.spoofed6]] as const) {
        const v6 = own.includes(':');
        const before = await echoRequestsReceived(l.target.ns, v6);
        const spoof = await l.adversary.run({ op: 'ping', source: spoofed, timeoutMs: 1_000, keepSession: true });
        if (spoof.ok) return fail(`the target answered a packet from ${spoofed}, outside the adversary's allowed IPs`);
        const after = await echoRequestsReceived(l.target.ns, v6);
        if (after !== before) return fail(`${after - before} echo requests from ${spoofed}, outside the adversary's allowed IPs, reached the target's kernel`);
        const ok = await l.adversary.run({ op: 'ping', source: own, timeoutMs: 2_000, keepSession: true });
        if (!ok.ok) return fail(`from ${own} after the spoofed packets: ${ok.detail}`);
        if ((await echoRequestsReceived(l.target.ns, v6)) === after) return fail(`the echo request counter did not count ${own}'s answered request: the check is blind`);
      }
      // Outbound: the target routes the peer's inner address to the peer only.
      if (!(await ping(l.target.ns, INNER.peer4))) return fail('target -> peer failed');
      return pass(`inner sources ${INNER.spoofed4} and ${INNER.spoofed6} never reached the target's kernel; ${INNER.adversary4} and ${INNER.adversary6} answered; target routes ${INNER.peer4} to the peer`);
    },
  },
  rekey: { timeoutMs: 40_000, run: async (l) => (await configurePair(l), l.adversary.run({ op: 'rekey' })) },
  replay: { timeoutMs: 40_000, run: async (l) => (await configurePair(l), l.adversary.run({ op: 'replay' })) },
  malformed: {
    timeoutMs: 40_000,
    async run(l) {
      await configurePair(l);
      const r = await l.adversary.run({ op: 'malformed' });
      if (!r.ok) return r;
      if (!isRunning(l.target.child)) return fail('the target exited');
      await configurePair(l);
      if (!(await ping(l.peer.ns, INNER.target4))) return fail(`${r.detail}, but the reference peer can no longer reach the target`);
      return pass(`${r.detail}; reference peer still served`);
    },
  },
  'uapi-errors': {
    timeoutMs: 30_000,
    async run(l) {
      await configurePair(l);
      const CONFIG_KEYS = /^(private_key|listen_port|fwmark|public_key|preshared_key|endpoint|persistent_keepalive_interval|allowed_ip|protocol_version)=/;
      // Canonical: wireguard-go lists peers (a Go map) in random order.
      const config = async (): Promise<string> => {
        const blocks = (await uapiGet(l.target)).split(/\n(?=public_key=)/).map((b) => b.split('\n').filter((s) => CONFIG_KEYS.test(s)).sort().join('\n'));
        return [blocks[0], ...blocks.slice(1).sort()].join('\n');
      };
      const before = await config();
      const peer = `public_key=${l.keys.peer.pub}\n`;
      const bad: Array<[string, string]> = [
        ['private key not hex', 'private_key=zz\n'],
        ['private key too short', `private_key=${'ab'.repeat(31)}\n`],
        ['listen_port out of range', 'listen_port=65536\n'],
        ['unknown key', 'bogus_key=1\n'],
        ['line without =', 'listen_port\n'],
        ['peer key before any public_key', `preshared_key=${ZERO_KEY}\n`],
        ['allowed_ip /33', `${peer}allowed_ip=10.9.0.0/33\n`],
        ['endpoint without port', `${peer}endpoint=10.201.0.9\n`],
        ['keepalive out of range', `${peer}persistent_keepalive_interval=65536\n`],
        ['protocol_version 2', `${peer}protocol_version=2\n`],
      ];
      for (const [what, body] of bad) {
        const errno = await uapiSetErrno(l.target, body);
        if (errno >= 0) return fail(`${what}: errno=${errno}, expected a negative errno`);
        if ((await config()) !== before) return fail(`${what}: the configuration changed although the set failed`);
      }
      if ((await uapiSetErrno(l.target, `listen_port=${PORT.target}\n`)) !== 0) return fail('a valid set after the errors failed');
      if (!(await ping(l.peer.ns, INNER.target4))) return fail('the target stopped working after the rejected sets');
      return pass(`${bad.length} malformed sets answered with a negative errno; configuration unchanged`);
    },
  },
  'allowed-ips-large': {
    timeoutMs: 120_000,
    async run(l) {
      const extra = keyPair().pub;
      const want: string[] = [];
      for (let i = 0; i < LARGE_ALLOWED_IPS * 0.7; i++) want.push(`11.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`);
      for (let j = 0; want.length < LARGE_ALLOWED_IPS; j++) want.push(`fd00:1:${(j >> 16).toString(16)}:${(j & 0xffff).toString(16)}::/64`);
      const body = `public_key=${extra}\nreplace_allowed_ips=true\n${want.map((p) => `allowed_ip=${p}\n`).join('')}`;
      try {
        const [, setMs] = await timed(() => uapiSet(l.target, body, 60_000));
        const [text, getMs] = await timed(() => uapiGet(l.target, 60_000));
        const got = parseGet(text).peers.get(extra)?.get('allowed_ip') ?? [];
        const norm = (p: string): string => {
          const x = parsePrefix(p);
          return x === undefined ? `unparsable ${p}` : formatPrefix(x.ip, x.cidr);
        };
        const gotSet = new Set(got.map(norm));
        const missing = want.filter((p) => !gotSet.has(norm(p)));
        if (got.length !== want.length || missing.length > 0) {
          return fail(`listed ${got.length} prefixes for ${want.length} set; ${missing.length} missing (e.g. ${missing.slice(0, 2).join(', ')})`);
        }
        return pass(`${want.length} prefixes set in ${Math.round(setMs)} ms and listed back exactly in ${Math.round(getMs)} ms`);
      } finally {
        await uapiSetErrno(l.target, `public_key=${extra}\nremove=true\n`, 60_000).catch(() => undefined);
      }
    },
  },
  'cookie-under-load': {
    timeoutMs: 60_000,
    async run(l) {
      await configurePair(l);
      return l.adversary.run({ op: 'flood', count: FLOOD_COUNT }, 50_000);
    },
  },
};

// `p`, or a rejection after `ms` or when `signal` aborts (with its reason), whichever comes first.
function withTimeout<T>(p: Promise<T>, ms: number, what: string, signal?: AbortSignal): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
    onAbort = () => reject(signal!.reason as Error);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([p, stop]).finally(() => {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort!);
  });
}

/**
 * Runs the selected scenarios against `target` with `peer` as the reference peer. Resolves to the
 * report (a setup failure fails every selected scenario with the reason). Cleans up everything it
 * created before it settles; when `opts.signal` aborts it cleans up at once and rejects with the
 * abort reason. Installs no signal handlers: the CLI turns SIGINT/SIGTERM into the abort.
 */
export async function runLive(opts: LiveOptions): Promise<Report> {
  const signal = opts.signal;
  signal?.throwIfAborted();
  const subject = `target ${opts.target}, peer ${opts.peer}`;
  const chosen = LIVE_SCENARIOS.filter((n) => opts.selected(n));
  const skipped = (n: string): ScenarioResult => ({ name: n, result: 'skip', timeMs: 0, detail: 'not selected' });
  if (chosen.length === 0) return { suite: 'live', subject, results: LIVE_SCENARIOS.map(skipped) };

  sweepStale();
  const lab = new NetnsLab();
  const sockets: string[] = [];
  const cleanup = async (): Promise<void> => {
    await lab.cleanup();
    for (const s of sockets) rmSync(s, { force: true });
  };
  // On abort the lab goes at once, so the scenario in flight fails fast; the final cleanup
  // below runs after it and removes whatever a setup step still created meanwhile.
  let aborting: Promise<void> | undefined;
  const onAbort = (): void => {
    aborting = cleanup();
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  const results = new Map<string, ScenarioResult>();
  try {
    let l: Lab;
    const setupStart = performance.now();
    try {
      opts.progress(`setting up namespaces, ${opts.target} (target) and ${opts.peer} (peer)`);
      const nsT = await lab.namespace();
      const nsP = await lab.namespace();
      await lab.veth(nsT, nsP, { a: [`${OUTER.target4}/24`, `${OUTER.target6}/64`], b: [`${OUTER.peer4}/24`, `${OUTER.peer6}/64`] });
      const [ifT, ifP] = [lab.uniqueName('t'), lab.uniqueName('p')];
      sockets.push(`${SOCKET_DIR}/${ifT}.sock`, `${SOCKET_DIR}/${ifP}.sock`);
      const target = await startDaemon(lab, 'target', opts.target, nsT, ifT, [`${INNER.target4}/24`, `${INNER.target6}/64`]);
      const peer = await startDaemon(lab, 'peer', opts.peer, nsP, ifP, [`${INNER.peer4}/24`, `${INNER.peer6}/64`]);
      const keys = { target: keyPair(), peer: keyPair(), adversary: keyPair() };
      const child = nsP.spawn([process.execPath, adversaryScript()], { stdin: 'pipe' });
      child.stderr?.resume();
      const adversary = new AdversaryClient(child);
      const adversaryPort = await adversary.init({
        privateKey: keys.adversary.priv,
        targetPublicKey: keys.target.pub,
        target: { address: OUTER.target4, port: PORT.target },
        bindAddress: OUTER.peer4,
        innerSelf: INNER.adversary4,
        innerTarget: INNER.target4,
        innerSelf6: INNER.adversary6,
        innerTarget6: INNER.target6,
      });
      l = { lab, target, peer, adversary, adversaryPort, keys };
      opts.progress(`setup done in ${Math.round(performance.now() - setupStart)} ms`);
    } catch (err) {
      signal?.throwIfAborted();
      const detail = `setup failed: ${(err as Error).message}`;
      for (const n of chosen) results.set(n, { name: n, result: 'fail', timeMs: 0, detail });
      return { suite: 'live', subject, results: LIVE_SCENARIOS.map((n) => results.get(n) ?? skipped(n)) };
    }

    for (const name of chosen) {
      signal?.throwIfAborted();
      const start = performance.now();
      let outcome: Outcome;
      if (!isRunning(l.target.child)) {
        outcome = fail(`the target is not running (exited ${l.target.child.exitCode ?? l.target.child.signalCode}): ${l.target.output()}`);
      } else {
        opts.progress(`running ${name}`);
        try {
          outcome = await withTimeout(SCENARIOS[name].run(l), SCENARIOS[name].timeoutMs, name, signal);
        } catch (err) {
          signal?.throwIfAborted();
          outcome = fail((err as Error).message);
        }
        if (outcome.ok && !isRunning(l.target.child)) outcome = fail(`the target exited during the scenario: ${l.target.output()}`);
      }
      const r: ScenarioResult = { name, result: outcome.ok ? 'pass' : 'fail', timeMs: performance.now() - start, detail: outcome.detail };
      opts.progress(`${r.result.toUpperCase()} ${name} (${Math.round(r.timeMs)} ms): ${r.detail}`);
      results.set(name, r);
    }
    signal?.throwIfAborted();
    return { suite: 'live', subject, results: LIVE_SCENARIOS.map((n) => results.get(n) ?? skipped(n)) };
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await aborting;
    await cleanup();
  }
}
