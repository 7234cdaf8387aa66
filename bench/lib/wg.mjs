// WireGuard daemons for benches: plexd-userspace (either crypto provider) or Debian's wireguard-go,
// started in the foreground inside a lab namespace, configured with `wg setconf`, and a two-
// namespace tunnel (veth underlay 10.201.0.0/24, tunnel 10.202.0.0/24, MTU 1420) between two of them.

import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, runOk, sleep } from './lab.mjs';

const BIN = fileURLToPath(new URL('../../bin/plexd-userspace.js', import.meta.url));
const GC_PROBE = fileURLToPath(new URL('./gc-probe.mjs', import.meta.url));
export const UNDERLAY = { a: '10.201.0.1', b: '10.201.0.2' };
export const TUNNEL = { a: '10.202.0.1', b: '10.202.0.2' };
export const PORTS = { a: 51820, b: 51821 };
export const TUNNEL_MTU = 1420;

/** The implementations a bench can start: label -> how. */
export const KINDS = {
  plexd: { label: 'plexd-userspace', crypto: 'node' },
  'plexd-noble': { label: 'plexd-userspace (noble)', crypto: 'noble' },
  // The UDP bind forced either way (PLEXD_BIND), for A/B of the native batched bind.
  'plexd-native': { label: 'plexd-userspace (native bind)', crypto: 'node', bind: 'native' },
  'plexd-dgram': { label: 'plexd-userspace (dgram bind)', crypto: 'node', bind: 'dgram' },
  'plexd-nogso': { label: 'plexd-userspace (no UDP GSO)', crypto: 'node', bind: 'native-nogso' },
  // plexd without TUN offloads (PLEXD_TUN_OFFLOAD=0), for A/B of issue 19.
  'plexd-plain': { label: 'plexd-userspace (no TUN offload)', crypto: 'node', tunOffload: '0' },
  wggo: { label: 'wireguard-go' },
  // Current wireguard-go with TUN offloads and UDP GSO/GRO (same CLI): WIREGUARD_GO_GSO=PATH,
  // default ../shared/tools/wireguard-go-gso next to the checkout.
  'wggo-gso': { label: 'wireguard-go (GSO)', binary: process.env.WIREGUARD_GO_GSO ?? fileURLToPath(new URL('../../../shared/tools/wireguard-go-gso', import.meta.url)) },
  // A/B of an optimization: another checkout's build (PLEXD_BENCH_BASE=/path with dist/ built).
  'plexd-base': { label: 'plexd-userspace (base build)', crypto: 'node', root: process.env.PLEXD_BENCH_BASE },
};

/** A fresh X25519 key pair as base64 (wg's format), plus the raw public key. */
export function wgKeyPair() {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const d = Buffer.from(privateKey.export({ format: 'jwk' }).d, 'base64url');
  const x = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
  return { private: d.toString('base64'), public: x.toString('base64'), publicRaw: x };
}

/**
 * Starts a daemon of `kind` in namespace ns on a new interface and waits for its UAPI socket.
 * PLEXD_BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") goes to node for plexd kinds;
 * `gc: true` preloads gc-probe.mjs into them (see gcSnapshot). Returns { child, pid, ifname, kind, ns }.
 */
export async function startDaemon(lab, ns, kind, { gc = false } = {}) {
  const spec = KINDS[kind];
  if (spec === undefined) throw new RangeError(`expected a kind in ${Object.keys(KINDS).join(', ')}, got ${kind}`);
  const ifname = lab.name('w');
  let argv;
  const env = { ...process.env, WG_PROCESS_FOREGROUND: '1' };
  delete env.LOG_LEVEL;
  let gcFile;
  if (kind === 'wggo') {
    argv = ['wireguard-go', '-f', ifname];
  } else if (kind === 'wggo-gso') {
    if (!existsSync(spec.binary)) throw new Error(`no current wireguard-go at ${spec.binary} (set WIREGUARD_GO_GSO=PATH)`);
    argv = [spec.binary, '-f', ifname];
  } else {
    const nodeArgs = (process.env.PLEXD_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
    if (gc) {
      gcFile = join(lab.tmp, `${ifname}.gc`);
      nodeArgs.push(`--import=${GC_PROBE}`);
      env.PLEXD_BENCH_GC_FILE = gcFile;
    }
    if (spec.root === undefined && kind === 'plexd-base') throw new TypeError('expected PLEXD_BENCH_BASE to name a built checkout');
    const bin = spec.root === undefined ? BIN : join(spec.root, 'bin/plexd-userspace.js');
    argv = [process.execPath, ...nodeArgs, bin, '-f', ifname];
    env.PLEXD_CRYPTO = spec.crypto;
    if (spec.bind !== undefined) env.PLEXD_BIND = spec.bind;
    if (spec.tunOffload !== undefined) env.PLEXD_TUN_OFFLOAD = spec.tunOffload;
  }
  const child = lab.spawn(ns, argv, { env });
  const sock = `/var/run/wireguard/${ifname}.sock`;
  const deadline = Date.now() + 15_000;
  while (!existsSync(sock)) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${spec.label} exited before its UAPI socket appeared: ${child.stderrText().trim()}`);
    }
    if (Date.now() > deadline) throw new Error(`${spec.label}: no UAPI socket ${sock} after 15 s`);
    await sleep(20);
  }
  return { child, pid: child.pid, ifname, kind, ns, gcFile };
}

/** GC counts and heap of a daemon started with `gc: true` (undefined otherwise), via SIGUSR2. */
export async function gcSnapshot(daemon) {
  if (daemon.gcFile === undefined) return undefined;
  process.kill(daemon.pid, 'SIGUSR2');
  for (let i = 0; i < 50; i++) {
    await sleep(20);
    const lines = existsSync(daemon.gcFile) ? readFileSync(daemon.gcFile, 'utf8').trim().split('\n') : [];
    if (lines.length > (daemon.gcSnapshots ?? 0)) {
      daemon.gcSnapshots = lines.length;
      return JSON.parse(lines[lines.length - 1]);
    }
  }
  return undefined;
}

/** Writes a wg config file and applies it with `wg setconf` inside the daemon's namespace. */
export async function setconf(lab, daemon, text, timeoutMs = 600_000) {
  const file = join(lab.tmp, `${daemon.ifname}.conf`);
  writeFileSync(file, text, { mode: 0o600 });
  await runOk(['ip', 'netns', 'exec', daemon.ns, 'wg', 'setconf', daemon.ifname, file], { timeoutMs });
}

/** Address, MTU 1420 and link up on a daemon's interface. */
export async function ifup(daemon, cidr) {
  await runOk(['ip', '-n', daemon.ns, 'addr', 'add', cidr, 'dev', daemon.ifname]);
  await runOk(['ip', '-n', daemon.ns, 'link', 'set', daemon.ifname, 'mtu', String(TUNNEL_MTU), 'up']);
}

/** Two namespaces joined by a veth pair: { nsA, nsB, vethA, vethB }. Create once per bench run. */
export async function underlay(lab) {
  const nsA = await lab.namespace();
  const nsB = await lab.namespace();
  const veth = await lab.veth(nsA, `${UNDERLAY.a}/24`, nsB, `${UNDERLAY.b}/24`);
  return { nsA, nsB, vethA: veth.a, vethB: veth.b };
}

/**
 * Starts kindA in nsA and kindB in nsB, configures them as each other's only peer, brings the
 * interfaces up and waits until a ping crosses the tunnel. Returns { a, b, keys, stop() }.
 */
export async function tunnel(lab, { nsA, nsB }, kindA, kindB, { gc = false } = {}) {
  const [ka, kb] = [wgKeyPair(), wgKeyPair()];
  const a = await startDaemon(lab, nsA, kindA, { gc });
  const b = await startDaemon(lab, nsB, kindB, { gc });
  const stop = async () => {
    await lab.stop(b.child);
    await lab.stop(a.child);
  };
  try {
    await setconf(lab, a, `[Interface]\nPrivateKey = ${ka.private}\nListenPort = ${PORTS.a}\n\n[Peer]\nPublicKey = ${kb.public}\nEndpoint = ${UNDERLAY.b}:${PORTS.b}\nAllowedIPs = ${TUNNEL.b}/32\n`);
    await setconf(lab, b, `[Interface]\nPrivateKey = ${kb.private}\nListenPort = ${PORTS.b}\n\n[Peer]\nPublicKey = ${ka.public}\nEndpoint = ${UNDERLAY.a}:${PORTS.a}\nAllowedIPs = ${TUNNEL.a}/32\n`);
    await ifup(a, `${TUNNEL.a}/24`);
    await ifup(b, `${TUNNEL.b}/24`);
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = await run(['ip', 'netns', 'exec', nsA, 'ping', '-c', '1', '-W', '1', TUNNEL.b], { timeoutMs: 5000 });
      if (r.code === 0) break;
      if (Date.now() > deadline) throw new Error(`no ping across ${KINDS[kindA].label} -> ${KINDS[kindB].label} after 15 s`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { a, b, keys: { a: ka, b: kb }, stop };
}

/** iperf3 client in nsA to the server on TUNNEL.b; returns the parsed JSON (throws on error). */
export async function iperf(nsA, args, seconds) {
  let r;
  // After a saturating UDP step the server can still be finishing the last test (its control
  // message was lost in the flood): wait and retry a bounded number of times.
  for (let attempt = 0; attempt < 3; attempt++) {
    r = await run(['ip', 'netns', 'exec', nsA, 'iperf3', '-c', TUNNEL.b, '-J', '-t', String(seconds), ...args], {
      timeoutMs: (seconds + 20) * 1000,
    });
    if (!/server is busy/.test(r.stdout)) break;
    await sleep(2000);
  }
  let json;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    throw new Error(`iperf3 ${args.join(' ')}: no JSON (exit ${r.code}): ${r.stderr.trim()}`);
  }
  if (json.error) throw new Error(`iperf3 ${args.join(' ')}: ${json.error}`);
  return json;
}

/** Starts an iperf3 server (all addresses) in nsB; one serves every tunnel of a run. */
export async function iperfServer(lab, nsB) {
  const child = lab.spawn(nsB, ['iperf3', '-s']);
  await sleep(200);
  return child;
}
