// `plexd-userspace [-f|--foreground] IFNAME`: wireguard-go's command-line contract (main.go).
// Creates TUN IFNAME, serves /var/run/wireguard/IFNAME.sock, daemonizes unless told not to, and
// exits when signalled or when the interface is deleted.
// Our extension: PLEXD_POLICY_FILE=path.json enforces a plexd policy (docs/policy.md) on the
// device through a PolicyFilter, re-read on SIGHUP; without it nothing changes.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { Device } from '../device/device.js';
import { defaultBind } from '../io/bind-default.js';
import { openTun, type LinuxTun } from '../io/tun-linux.js';
import { createLogger, logLevelFromEnv, type Logger } from '../log/logger.js';
import { PolicyFilter } from '../policy/filter.js';
import { parsePolicy, type Policy } from '../policy/rules.js';
import { startUapiServer, type UapiServer } from '../uapi/server.js';
import { isStandaloneBinary } from '../io/sea.js';
import { EXIT, VERSION } from './constants.js';
import { deviceChoicesFromEnv } from './device-env.js';
import { untilShutdown } from './signals.js';

/** Environment variable wireguard-go reads to stay in the foreground. */
const ENV_FOREGROUND = 'WG_PROCESS_FOREGROUND';
/** Ours: the fd on which a daemonized child reports readiness (or the error) to its parent. */
const ENV_READY_FD = 'PLEXD_READY_FD';
/** The MTU wireguard-go gives a new TUN (device.DefaultMTU): 1500 minus the 80 bytes of
 * IPv6 + UDP + WireGuard overhead, so tunnelled packets fit an Ethernet path unfragmented. */
export const DEFAULT_MTU = 1420;
/** Ours: a JSON policy file the daemon enforces (reloaded on SIGHUP). */
export const ENV_POLICY_FILE = 'PLEXD_POLICY_FILE';
/** How long the parent waits for the child to come up. */
const READY_TIMEOUT_MS = 30_000;

/** Options the daemon takes from the environment (socket dir is for tests). */
export interface DaemonEnv {
  readonly [key: string]: string | undefined;
}

/**
 * Runs the wireguard-go compatible daemon. Resolves to the process exit code. In the foreground
 * it resolves only when the device stops.
 */
export async function runWgDaemon(interfaceName: string, foreground: boolean, env: DaemonEnv = process.env): Promise<number> {
  if (!foreground && env[ENV_FOREGROUND] !== '1') return daemonize(interfaceName, env);
  const level = logLevelFromEnv(env['LOG_LEVEL']);
  const log = createLogger(level, `(${interfaceName}) `);
  const ready = openReadyChannel(env);
  let tun: LinuxTun | undefined;
  let device: Device | undefined;
  let uapi: UapiServer | undefined;
  const policyFile = env[ENV_POLICY_FILE] || undefined;
  let filter: PolicyFilter | undefined;
  try {
    if (policyFile !== undefined) {
      filter = new PolicyFilter({ defaultAction: 'allow', hashSeed: randomBytes(4).readUInt32LE(0) });
      filter.apply(loadPolicyFile(policyFile));
    }
    const choices = deviceChoicesFromEnv(env);
    tun = openTun({ name: interfaceName, offload: choices.tunOffload });
    interfaceName = tun.name;
    tun.setMtu(DEFAULT_MTU);
    log.verbose(`Starting plexd-userspace version ${VERSION}`);
    device = await Device.create({ tun, crypto: choices.crypto, bind: defaultBind(choices.bindKind), logger: log, ...(filter ? { filter } : {}) });
    uapi = await startUapiServer({
      interfaceName,
      handler: device,
      logger: log,
      ...(env['PLEXD_UAPI_DIR'] ? { socketDir: env['PLEXD_UAPI_DIR'] } : {}),
    });
  } catch (err) {
    const message = (err as Error).message;
    log.error(`Failed to start: ${message}`);
    await device?.close();
    // Without a device nobody owns the TUN yet; its poll handle would keep the process alive.
    if (tun !== undefined && !tun.closed) tun.close();
    ready?.fail(message);
    if (ready === undefined && level === 'silent') process.stderr.write(`plexd-userspace: ${message}\n`);
    return EXIT.setupFailed;
  }
  log.verbose('Device started');
  log.verbose('UAPI listener started');
  if (filter !== undefined) log.verbose(`Policy revision ${filter.policy!.revisionId} from ${policyFile!}: ${filter.policy!.rules.length} rules`);
  ready?.ok(interfaceName);
  const reload = filter === undefined ? undefined : () => reloadPolicy(filter, policyFile!, log);
  return waitForEnd(device, uapi, log, reload);
}

/**
 * Reads a policy file: the API's policy block `{revision_id, fingerprint, rules}`, or `{rules}` /
 * a bare rule array (revision "file", fingerprint the SHA-256 of the file). Throws PolicyError
 * for bad rules, SyntaxError for bad JSON, the fs error for an unreadable file.
 */
export function loadPolicyFile(path: string): Policy {
  const text = readFileSync(path, 'utf8');
  const raw = JSON.parse(text) as unknown;
  const block = Array.isArray(raw) ? { rules: raw } : raw;
  if (typeof block === 'object' && block !== null && !('revision_id' in block)) {
    return parsePolicy({ revision_id: 'file', fingerprint: createHash('sha256').update(text).digest('hex'), ...block });
  }
  return parsePolicy(block);
}

/** SIGHUP: applies the file again; a bad file is logged and the policy in force stays. */
function reloadPolicy(filter: PolicyFilter, path: string, log: Logger): void {
  try {
    const policy = loadPolicyFile(path);
    filter.apply(policy);
    log.verbose(`Policy revision ${policy.revisionId} from ${path}: ${policy.rules.length} rules`);
  } catch (err) {
    log.error(`Policy reload from ${path} failed, previous policy stays in force: ${(err as Error).message}`);
  }
}

async function waitForEnd(device: Device, uapi: UapiServer, log: Logger, onHangup?: () => void): Promise<number> {
  if (onHangup !== undefined) process.on('SIGHUP', onHangup);
  await untilShutdown((onEnd) => device.onClose(onEnd), async (why) => {
    if (onHangup !== undefined) process.off('SIGHUP', onHangup);
    log.verbose(`Shutting down (${why})`);
    await uapi.close();
    await device.close(why);
  });
  return EXIT.ok;
}

interface ReadyChannel {
  ok(name: string): void;
  fail(message: string): void;
}

function openReadyChannel(env: DaemonEnv): ReadyChannel | undefined {
  const fd = Number(env[ENV_READY_FD]);
  if (!Number.isInteger(fd) || fd < 3) return undefined;
  let stream: WriteStream | undefined = createWriteStream('', { fd, autoClose: true });
  stream.on('error', () => {});
  const send = (msg: object) => {
    stream?.end(JSON.stringify(msg) + '\n');
    stream = undefined;
  };
  return { ok: (name) => send({ ok: true, name }), fail: (message) => send({ ok: false, message }) };
}

/**
 * Starts a detached copy of ourselves in the foreground and waits until it reports that the
 * interface and UAPI socket exist; exit 0 then, 1 with the child's reason otherwise. As in
 * wireguard-go, the child's output goes to /dev/null unless LOG_LEVEL is set (and not silent).
 */
function daemonize(interfaceName: string, env: DaemonEnv): Promise<number> {
  const level = env['LOG_LEVEL'];
  const keepOutput = level !== undefined && level !== '' && logLevelFromEnv(level) !== 'silent';
  const script = process.argv[1];
  if (script === undefined) {
    process.stderr.write('plexd-userspace: cannot determine the script to daemonize\n');
    return Promise.resolve(EXIT.setupFailed);
  }
  // The standalone binary is its own interpreter: no script argument (and no Node options).
  const args = isStandaloneBinary() ? [] : [...process.execArgv, script];
  const child = spawn(process.execPath, [...args, '--foreground', interfaceName], {
    detached: true,
    stdio: ['ignore', keepOutput ? 'inherit' : 'ignore', keepOutput ? 'inherit' : 'ignore', 'pipe'],
    env: { ...env, [ENV_FOREGROUND]: '1', [ENV_READY_FD]: '3' },
  });
  return new Promise((resolve) => {
    let text = '';
    let settled = false;
    const settle = (code: number, message?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (message !== undefined) process.stderr.write(`plexd-userspace: ${message}\n`);
      const pipe = child.stdio[3];
      if (pipe && 'destroy' in pipe) (pipe as NodeJS.ReadableStream & { destroy(): void }).destroy();
      child.unref();
      resolve(code);
    };
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      settle(EXIT.setupFailed, `the daemon did not come up within ${READY_TIMEOUT_MS / 1000} s`);
    }, READY_TIMEOUT_MS);
    const pipe = child.stdio[3] as NodeJS.ReadableStream | null;
    pipe?.setEncoding('utf8');
    pipe?.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > 64 * 1024) settle(EXIT.setupFailed, 'the daemon reported garbage');
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      try {
        const msg = JSON.parse(text.slice(0, nl)) as { ok?: boolean; message?: string };
        if (msg.ok === true) settle(EXIT.ok);
        else settle(EXIT.setupFailed, msg.message ?? 'the daemon failed to start');
      } catch {
        settle(EXIT.setupFailed, 'the daemon reported garbage');
      }
    });
    pipe?.on('error', () => {});
    child.on('error', (err) => settle(EXIT.setupFailed, `failed to daemonize: ${err.message}`));
    child.on('exit', (code, signal) => {
      settle(EXIT.setupFailed, `the daemon exited before it was ready (${signal ?? `code ${code}`})`);
    });
  });
}
