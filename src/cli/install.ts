// `plexd-userspace install | uninstall`: the agent as a systemd service on bare metal, as upstream
// plexd's `plexd install` (docs/reference/deployment/bare-metal-packaging.md: the same paths,
// modes and unit directives; ours differs where docs/deploy.md says why). Install checks
// everything before it changes anything, records each change, and on any failure puts back
// what was there (src/cli/install-files.ts). `--root DIR` writes under DIR and never runs systemctl.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { resolveConfig } from '../agent/config.js';
import { Store, type Identity } from '../agent/store.js';
import { checkToken } from '../control/register.js';
import { PlexdError, type PlexdErrorOptions } from '../errors.js';
import { EXIT } from './constants.js';
import { FileChanges, lstatOrUndefined as lstatOrNothing } from './install-files.js';
import { UsageError } from './usage-error.js';

/** Where install puts things on the target system (upstream's Linux paths; ours is named plexd-userspace). */
export const INSTALL_PATHS = {
  binary: '/usr/local/bin/plexd-userspace',
  configDir: '/etc/plexd',
  configFile: '/etc/plexd/config.yaml',
  tokenFile: '/etc/plexd/bootstrap-token',
  environmentFile: '/etc/plexd/environment',
  dataDir: '/var/lib/plexd',
  unitDir: '/etc/systemd/system',
  unitFile: '/etc/systemd/system/plexd.service',
} as const;

/** The systemd service name. */
export const SERVICE = 'plexd.service';

/** Why install or uninstall failed (exit 1). Install has rolled back when it throws. */
export class InstallError extends PlexdError<InstallErrorCode> {
  static readonly codes = ['ERR_INSTALL_EXISTS', 'ERR_INSTALL_IO', 'ERR_INSTALL_TOKEN', 'ERR_INSTALL_PROGRAM', 'ERR_INSTALL_NOT_ROOT', 'ERR_INSTALL_SYSTEMCTL', 'ERR_INSTALL_DEREGISTER'] as const;
  constructor(code: InstallErrorCode, message: string, options?: PlexdErrorOptions) {
    super(code, message, options);
  }
}
/** The codes of {@link InstallError}. */
export type InstallErrorCode = (typeof InstallError.codes)[number];

/**
 * The program the unit runs: this executable itself when it is a single executable application,
 * else a launcher script that runs the npm package's bin with the Node.js running us now.
 */
export type Program = { readonly kind: 'binary'; readonly path: string } | { readonly kind: 'launcher'; readonly node: string; readonly script: string };

/** systemctl as install and uninstall use it; `booted` is true when systemd is PID 1. */
export interface Systemd {
  readonly booted: boolean;
  /** Runs `systemctl ARGS`; resolves to its exit code and what it printed. */
  run(args: readonly string[]): { readonly code: number; readonly output: string };
}

/** The live system's systemctl (booted: /run/systemd/system exists, as sd_booted(3) checks). */
export function liveSystemd(): Systemd {
  return {
    booted: existsSync('/run/systemd/system'),
    run(args) {
      const r = spawnSync('systemctl', args, { encoding: 'utf8' });
      return { code: r.status ?? 1, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim() };
    },
  };
}

/** The program of the running process (see {@link Program}). */
export function currentProgram(): Program {
  const sea = process.getBuiltinModule('node:sea') as { isSea?: () => boolean } | undefined;
  if (sea?.isSea?.() === true) return { kind: 'binary', path: process.execPath };
  // src/cli/install.ts and dist/cli/install.js both sit two levels below the package root.
  return { kind: 'launcher', node: process.execPath, script: fileURLToPath(new URL('../../bin/plexd-userspace.js', import.meta.url)) };
}

/**
 * The unit file (upstream's directives, docs/deploy.md). Ours adds NoNewPrivileges, /etc/plexd
 * in ReadWritePaths (the agent deletes the bootstrap token after registering), and
 * RuntimeDirectory/CacheDirectory so /run/plexd (the node API socket) and /var/cache/plexd exist
 * on every start.
 */
export function unitFile(binary: string = INSTALL_PATHS.binary): string {
  return `# plexd-userspace node agent, written by \`plexd-userspace install\` (docs/deploy.md).
[Unit]
Description=plexd-userspace node agent (plexd mesh)
After=network-online.target
Wants=network-online.target
StartLimitBurst=5
StartLimitIntervalSec=60

[Service]
Type=simple
ExecStart=${binary} up --config ${INSTALL_PATHS.configFile}
Restart=always
RestartSec=5s
LimitNOFILE=65536
EnvironmentFile=-${INSTALL_PATHS.environmentFile}
AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW
NoNewPrivileges=yes
ProtectSystem=full
ProtectHome=yes
RuntimeDirectory=plexd
CacheDirectory=plexd
CacheDirectoryMode=0700
ReadWritePaths=${INSTALL_PATHS.dataDir} ${INSTALL_PATHS.configDir}

[Install]
WantedBy=multi-user.target
`;
}

/** The config.yaml install writes when there is none (upstream's keys; docs/agent.md lists all). */
export function defaultConfig(apiUrl: string, mode: 'node' | 'bridge'): string {
  return `# plexd-userspace agent configuration, written by \`plexd-userspace install\`.
# Every key: docs/agent.md. Flags > PLEXD_* environment (${INSTALL_PATHS.environmentFile}) > this file > defaults.
api:
  base_url: ${JSON.stringify(apiUrl)}
mode: ${mode}
data_dir: ${INSTALL_PATHS.dataDir}
log_level: info
registration:
  token_file: ${INSTALL_PATHS.tokenFile}
`;
}

/** The launcher script for an npm install: the node and script paths as the target sees them. */
export function launcherScript(node: string, script: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return `#!/bin/sh
# plexd-userspace launcher, written by \`plexd-userspace install\`: the npm package run by the
# Node.js that installed it.
exec ${q(node)} ${q(script)} "$@"
`;
}

/** What `install` is asked to do. */
export interface InstallOptions {
  /** '/' for the live system; else an image or test root (never systemctl). */
  readonly root: string;
  readonly apiUrl?: string | undefined;
  readonly mode?: 'node' | 'bridge' | undefined;
  readonly token?: { readonly value: string } | { readonly file: string } | undefined;
  /** Install without a token (it comes another way, or the node is already registered). */
  readonly noToken?: boolean;
  /** Replace an existing unit file and program (never config.yaml). */
  readonly force?: boolean;
  readonly program: Program;
  /** undefined: do not call systemctl (--root). */
  readonly systemd: Systemd | undefined;
  /** One line of progress, for people. */
  readonly out: (line: string) => void;
}

const under = (root: string, path: string) => (root === '/' ? path : join(root, path));

function lstatOrUndefined(path: string) {
  try {
    return lstatOrNothing(path);
  } catch (err) {
    throw new InstallError('ERR_INSTALL_IO', `cannot look at ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** The config.yaml values install cares about, or an InstallError naming the file. */
function readConfigFacts(file: string): { apiUrl: string | undefined; mode: string } {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InstallError('ERR_INSTALL_EXISTS', `${file} exists but cannot be read as YAML (${(err as Error).message.split('\n')[0]}); fix or remove it`, { cause: err });
  }
  const o = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>) : {};
  const api = typeof o['api'] === 'object' && o['api'] !== null ? (o['api'] as Record<string, unknown>) : {};
  const url = api['base_url'];
  return { apiUrl: typeof url === 'string' ? url.replace(/\/+$/, '') : undefined, mode: typeof o['mode'] === 'string' ? o['mode'] : 'node' };
}

/** Reads and checks the token file given with --token-file (at most 4 KiB, one token). */
function readTokenFile(file: string): string {
  let buf: Buffer;
  try {
    if (statSync(file).size > 4096) throw new InstallError('ERR_INSTALL_TOKEN', `--token-file ${file} is larger than 4 KiB; expected one token`);
    buf = readFileSync(file);
  } catch (err) {
    if (err instanceof InstallError) throw err;
    throw new InstallError('ERR_INSTALL_TOKEN', `cannot read --token-file ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return checkToken(buf.toString('latin1').trim(), `--token-file ${file}`);
  } catch (err) {
    throw new InstallError('ERR_INSTALL_TOKEN', (err as Error).message, { cause: err });
  }
}

/** ProtectHome=yes hides these from the service: a launcher pointing there could not start. */
const HIDDEN_FROM_SERVICE = ['/home/', '/root/', '/run/user/'];

/** What to do about the program at INSTALL_PATHS.binary. */
type ProgramStep = { kind: 'keep'; why: string } | { kind: 'copy'; from: string } | { kind: 'write'; text: string; script: string };

function planProgram(opts: InstallOptions, target: string): ProgramStep {
  const p = opts.program;
  const existing = lstatOrUndefined(target);
  let step: ProgramStep;
  if (p.kind === 'binary') {
    if (existing !== undefined && realOrSelf(target) === realOrSelf(p.path)) return { kind: 'keep', why: 'the running binary is already there' };
    step = { kind: 'copy', from: p.path };
  } else {
    // Paths under --root are written as the target will see them.
    const inTarget = (path: string) => (opts.root !== '/' && path.startsWith(opts.root + sep) ? path.slice(opts.root.length) : path);
    const node = inTarget(p.node);
    const script = inTarget(p.script);
    const hidden = [node, script].find((path) => HIDDEN_FROM_SERVICE.some((h) => path.startsWith(h)));
    if (hidden !== undefined) {
      throw new InstallError('ERR_INSTALL_PROGRAM', `${hidden} lies under ${HIDDEN_FROM_SERVICE.join(', ')}, which the unit's ProtectHome=yes hides from the service; install the npm package outside them (deploy/install.sh puts it in /opt/plexd) or use the standalone binary`);
    }
    if (!existsSync(p.script)) throw new InstallError('ERR_INSTALL_PROGRAM', `the package's bin ${p.script} does not exist`);
    const text = launcherScript(node, script);
    if (existing?.isFile() === true && readFileSync(target, 'utf8') === text) return { kind: 'keep', why: 'the same launcher is already there' };
    // npm's own link to this very package (npm install -g with prefix /usr/local): keep it.
    if (existing?.isSymbolicLink() === true && realOrSelf(target) === realOrSelf(p.script)) return { kind: 'keep', why: "npm's link to this package is already there" };
    step = { kind: 'write', text, script };
  }
  if (existing !== undefined && opts.force !== true) throw new InstallError('ERR_INSTALL_EXISTS', `${target} exists; use --force to replace it`);
  return step;
}

/**
 * Installs the agent as a systemd service under `opts.root`. Checks every input and conflict
 * before changing anything; on a failure while changing, undoes every change and throws.
 * Throws UsageError (a bad command line, exit 2) or InstallError (exit 1). Never logs the token.
 */
export function install(opts: InstallOptions): void {
  const root = opts.root;
  const at = (p: string) => under(root, p);
  if (root !== '/') {
    const st = lstatOrUndefined(root);
    if (st === undefined || !st.isDirectory()) throw new InstallError('ERR_INSTALL_IO', `--root ${root}: not a directory`);
  }
  // Bad input first, nothing changed yet.
  if (opts.mode !== undefined && opts.mode !== 'node' && opts.mode !== 'bridge') throw new UsageError(`--mode: expected node or bridge, got ${JSON.stringify(opts.mode)}`);
  if (opts.apiUrl !== undefined) {
    try {
      resolveConfig({ flags: new Map([['api.base_url', opts.apiUrl]]) });
    } catch (err) {
      throw new UsageError(`--api-url: ${(err as Error).message.replace(/^config api\.base_url: /, '')}`);
    }
  }
  let token: string | undefined;
  if (opts.token !== undefined && 'value' in opts.token) {
    try {
      token = checkToken(opts.token.value.trim(), '--token');
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  } else if (opts.token !== undefined) {
    token = readTokenFile(opts.token.file);
  }
  const configFile = at(INSTALL_PATHS.configFile);
  const configExists = lstatOrUndefined(configFile) !== undefined;
  if (configExists) {
    const facts = readConfigFacts(configFile);
    const want = opts.apiUrl?.replace(/\/+$/, '');
    if (want !== undefined && facts.apiUrl !== want) {
      throw new InstallError('ERR_INSTALL_EXISTS', `${configFile} exists with api.base_url ${facts.apiUrl === undefined ? 'unset' : JSON.stringify(facts.apiUrl)}, not ${JSON.stringify(want)}; install never rewrites it: edit or remove it, or leave out --api-url`);
    }
    if (opts.mode !== undefined && facts.mode !== opts.mode) {
      throw new InstallError('ERR_INSTALL_EXISTS', `${configFile} exists with mode ${JSON.stringify(facts.mode)}, not ${JSON.stringify(opts.mode)}; install never rewrites it: edit or remove it, or leave out --mode`);
    }
  } else if (opts.apiUrl === undefined) {
    throw new UsageError(`--api-url URL is required: there is no ${INSTALL_PATHS.configFile} yet`);
  }
  const registered = existsSync(join(at(INSTALL_PATHS.dataDir), 'identity.json'));
  const tokenOnDisk = existsSync(at(INSTALL_PATHS.tokenFile));
  if (token === undefined && opts.noToken !== true && !registered && !tokenOnDisk) {
    throw new UsageError(`no bootstrap token: give --token-file FILE (or --token TOKEN); --no-token if it comes another way (PLEXD_BOOTSTRAP_TOKEN in ${INSTALL_PATHS.environmentFile}, cloud metadata)`);
  }
  const unitPath = at(INSTALL_PATHS.unitFile);
  if (lstatOrUndefined(unitPath) !== undefined && opts.force !== true) {
    throw new InstallError('ERR_INSTALL_EXISTS', `${unitPath} exists (already installed?); use --force to replace the unit and the program (config.yaml is never replaced), or uninstall first`);
  }
  const binPath = at(INSTALL_PATHS.binary);
  const program = planProgram(opts, binPath);

  const changes = new FileChanges();
  const systemd = opts.systemd?.booted === true ? opts.systemd : undefined;
  const systemctl = (...args: string[]) => {
    const r = systemd!.run(args);
    if (r.code !== 0) throw new InstallError('ERR_INSTALL_SYSTEMCTL', `systemctl ${args.join(' ')} failed (exit ${r.code})${r.output === '' ? '' : `: ${r.output}`}`);
  };
  try {
    changes.mkdir(at(INSTALL_PATHS.configDir), 0o755);
    changes.mkdir(at(INSTALL_PATHS.dataDir), 0o700, true);
    changes.mkdir(at('/usr/local/bin'), 0o755);
    if (program.kind === 'copy') changes.copyFile(program.from, binPath, 0o755);
    else if (program.kind === 'write') changes.writeFile(binPath, program.text, 0o755);
    if (!configExists) changes.writeFile(configFile, defaultConfig(opts.apiUrl!, opts.mode ?? 'node'), 0o644);
    if (token !== undefined) changes.writeFile(at(INSTALL_PATHS.tokenFile), token + '\n', 0o600);
    changes.mkdir(at(INSTALL_PATHS.unitDir), 0o755);
    // Recorded before the unit is written so a rollback reloads after removing it.
    if (systemd !== undefined) changes.record('systemctl daemon-reload', () => systemctl('daemon-reload'));
    changes.writeFile(unitPath, unitFile(), 0o644);
    if (systemd !== undefined) {
      systemctl('daemon-reload');
      changes.record(`systemctl enable --now ${SERVICE}`, () => systemd.run(['disable', '--now', SERVICE]));
      systemctl('enable', '--now', SERVICE);
    }
  } catch (err) {
    const failed = changes.rollback();
    const why = (err as Error).message;
    const tail = failed.length === 0 ? 'nothing was changed' : `rolled back, except: ${failed.join('; ')}`;
    throw new InstallError(err instanceof InstallError ? err.code : 'ERR_INSTALL_IO', `install failed: ${why}; ${tail}`, { cause: err });
  }
  opts.out(`program   ${INSTALL_PATHS.binary}${program.kind === 'keep' ? ` (kept: ${program.why})` : program.kind === 'copy' ? ' (this binary)' : ` (launcher for ${program.script})`}`);
  opts.out(`config    ${INSTALL_PATHS.configFile}${configExists ? ' (kept as it was)' : ''}`);
  opts.out(`token     ${INSTALL_PATHS.tokenFile}${token !== undefined ? ' (written, 0600)' : tokenOnDisk ? ' (kept as it was)' : registered ? ' (none: already registered)' : ' (none: --no-token)'}`);
  opts.out(`data_dir  ${INSTALL_PATHS.dataDir}`);
  opts.out(`unit      ${INSTALL_PATHS.unitFile}`);
  if (systemd !== undefined) opts.out(`${SERVICE} enabled and started; follow it with: journalctl -u plexd -f`);
  else opts.out(`${opts.systemd === undefined ? `written under ${root}; on the target run` : 'systemd is not running here; when it is, run'}: systemctl daemon-reload && systemctl enable --now plexd`);
}

/** What `uninstall` is asked to do. */
export interface UninstallOptions {
  readonly root: string;
  /** Also remove /etc/plexd and /var/lib/plexd (after deregistering a registered node). */
  readonly purge?: boolean;
  /** With purge: skip telling the control plane (it is gone for good). */
  readonly noDeregister?: boolean;
  readonly systemd: Systemd | undefined;
  readonly out: (line: string) => void;
  /** Deregisters the node whose identity is in `dataDir` (`plexd-userspace deregister`); resolves to the exit code. */
  readonly deregister: (args: readonly string[]) => Promise<number>;
}

/**
 * Reverses install: stops and disables the service (systemd running, no --root), removes the unit
 * and the program; with purge also deregisters a registered node first (a failure there stops
 * everything, with the service as it was) and removes /etc/plexd and /var/lib/plexd. Nothing
 * installed: says so. Throws InstallError.
 */
export async function uninstall(opts: UninstallOptions): Promise<void> {
  const root = opts.root;
  const at = (p: string) => under(root, p);
  if (root !== '/') {
    const st = lstatOrUndefined(root);
    if (st === undefined || !st.isDirectory()) throw new InstallError('ERR_INSTALL_IO', `--root ${root}: not a directory`);
  }
  const systemd = opts.systemd?.booted === true ? opts.systemd : undefined;
  const unitPath = at(INSTALL_PATHS.unitFile);
  const binPath = at(INSTALL_PATHS.binary);
  const dataDir = at(INSTALL_PATHS.dataDir);
  const configDir = at(INSTALL_PATHS.configDir);
  const wantsLink = at(`${INSTALL_PATHS.unitDir}/multi-user.target.wants/${SERVICE}`);
  const unit = lstatOrUndefined(unitPath);
  const bin = lstatOrUndefined(binPath);
  const purgeDirs = opts.purge === true ? [configDir, dataDir].filter((d) => lstatOrUndefined(d) !== undefined) : [];
  if (unit === undefined && bin === undefined && purgeDirs.length === 0) {
    opts.out('nothing to uninstall');
    return;
  }
  // The identity is read before anything is stopped: a corrupt data_dir changes nothing.
  let identity: Identity | undefined;
  if (opts.purge === true && opts.noDeregister !== true) {
    try {
      identity = existsSync(join(dataDir, 'identity.json')) ? new Store(dataDir).loadIdentity() : undefined;
    } catch (err) {
      throw new InstallError('ERR_INSTALL_DEREGISTER', `${(err as Error).message}; nothing removed (--no-deregister purges without telling the control plane)`, { cause: err });
    }
  }
  let wasActive = false;
  if (systemd !== undefined && unit !== undefined) {
    wasActive = systemd.run(['is-active', '--quiet', SERVICE]).code === 0;
    systemd.run(['stop', SERVICE]); // a service that is not running is fine (as upstream)
  }
  if (identity !== undefined) {
    // The agent's own deregister path (`plexd-userspace deregister`), on this data_dir.
    const config = at(INSTALL_PATHS.configFile);
    const args = [...(existsSync(config) ? ['--config', config] : []), ...(identity.api_base_url === '' ? [] : ['--api', identity.api_base_url]), '--data-dir', dataDir];
    if ((await opts.deregister(args)) !== EXIT.ok) {
      if (wasActive) systemd!.run(['start', SERVICE]);
      throw new InstallError('ERR_INSTALL_DEREGISTER', `could not deregister node ${identity.node_id} from ${identity.api_base_url}; nothing removed${wasActive ? ', the service restarted' : ''} (--no-deregister purges without telling the control plane)`);
    }
  }
  const removed: string[] = [];
  const remove = (path: string, recursive = false) => {
    try {
      if (recursive) rmSync(path, { recursive: true, force: true });
      else unlinkSync(path);
      removed.push(path);
    } catch (err) {
      throw new InstallError('ERR_INSTALL_IO', `cannot remove ${path}: ${(err as Error).message}${removed.length ? `; already removed: ${removed.join(', ')}` : ''}`, { cause: err });
    }
  };
  if (unit !== undefined) {
    if (systemd !== undefined) systemd.run(['disable', SERVICE]);
    // What `disable` removes, for a root enabled with `systemctl --root DIR enable` (docs/deploy.md "Images").
    if (lstatOrUndefined(wantsLink)?.isSymbolicLink() === true) remove(wantsLink);
    remove(unitPath);
    if (systemd !== undefined) systemd.run(['daemon-reload']);
  }
  if (bin?.isSymbolicLink() === true) opts.out(`left ${binPath}: a symlink (npm's link; npm uninstall -g plexd-userspace removes it)`);
  else if (bin !== undefined) remove(binPath);
  for (const d of purgeDirs) remove(d, true);
  for (const r of removed) opts.out(`removed   ${r}`);
  if (opts.purge !== true) opts.out(`kept ${INSTALL_PATHS.configDir} and ${INSTALL_PATHS.dataDir} (--purge removes them)`);
}

const USAGE = `Usage: plexd-userspace install [--api-url URL] [--token TOKEN | --token-file FILE | --no-token]
                               [--mode node|bridge] [--force] [--root DIR]
       plexd-userspace uninstall [--purge [--no-deregister]] [--root DIR]
install: the agent as the systemd service plexd.service (as root): ${INSTALL_PATHS.binary},
${INSTALL_PATHS.configFile} (written only when absent; --api-url is required then), the token in
${INSTALL_PATHS.tokenFile} (0600), ${INSTALL_PATHS.dataDir} (0700), ${INSTALL_PATHS.unitFile};
then systemctl daemon-reload && systemctl enable --now plexd when systemd runs. --force replaces an
existing unit and program. --token shows in the process list: prefer --token-file.
uninstall: stop, disable, remove the unit and program; --purge also deregisters the node and removes
${INSTALL_PATHS.configDir} and ${INSTALL_PATHS.dataDir}. --root DIR: under DIR, no systemctl (images, tests).
`;

/** Splits `args` into flags with values and booleans; throws UsageError. */
function parseArgs(args: readonly string[], valued: readonly string[], booleans: readonly string[]): Map<string, string | true> {
  const out = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if (out.has(name)) throw new UsageError(`${name} given twice`);
    if (booleans.includes(name) && eq < 0) out.set(name, true);
    else if (valued.includes(name)) {
      const v = eq > 0 ? arg.slice(eq + 1) : args[++i];
      if (v === undefined || v === '') throw new UsageError(`${name}: expected a value`);
      out.set(name, v);
    } else throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
  }
  return out;
}

function rootOf(flags: Map<string, string | true>): string {
  const r = flags.get('--root');
  // The real path: a launcher's package under the root is recognised by its real path.
  return typeof r === 'string' ? realOrSelf(resolve(r)) : '/';
}

async function runCommand(args: readonly string[], body: () => Promise<void> | void): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  try {
    await body();
    return EXIT.ok;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`plexd-userspace: ${err.message}\n\n${USAGE}`);
      return EXIT.usage;
    }
    if (err instanceof InstallError) {
      process.stderr.write(`plexd-userspace: ${err.message}\n`);
      return EXIT.setupFailed;
    }
    throw err;
  }
}

/** The live system (no --root) needs root; --root DIR (even --root /) writes files only. */
function needRoot(flags: Map<string, string | true>): void {
  if (!flags.has('--root') && process.geteuid?.() !== 0) throw new InstallError('ERR_INSTALL_NOT_ROOT', 'must run as root (or with --root DIR to write under DIR)');
}

/** `install`: see USAGE. */
export async function runInstall(args: readonly string[]): Promise<number> {
  return runCommand(args, () => {
    const f = parseArgs(args, ['--api-url', '--token', '--token-file', '--mode', '--root'], ['--force', '--no-token']);
    const given = ['--token', '--token-file', '--no-token'].filter((n) => f.has(n));
    if (given.length > 1) throw new UsageError(`${given.join(' and ')}: give one`);
    const tokenFile = f.get('--token-file') as string | undefined;
    const root = rootOf(f);
    needRoot(f);
    install({
      root,
      apiUrl: f.get('--api-url') as string | undefined,
      mode: f.get('--mode') as 'node' | 'bridge' | undefined,
      token: f.has('--token') ? { value: f.get('--token') as string } : tokenFile !== undefined ? { file: tokenFile } : undefined,
      noToken: f.has('--no-token'),
      force: f.has('--force'),
      program: currentProgram(),
      systemd: f.has('--root') ? undefined : liveSystemd(),
      out: (line) => process.stdout.write(line + '\n'),
    });
  });
}

/** `uninstall`: see USAGE. */
export async function runUninstall(args: readonly string[]): Promise<number> {
  return runCommand(args, async () => {
    const f = parseArgs(args, ['--root'], ['--purge', '--no-deregister']);
    if (f.has('--no-deregister') && !f.has('--purge')) throw new UsageError('--no-deregister goes with --purge');
    const root = rootOf(f);
    needRoot(f);
    await uninstall({
      root,
      purge: f.has('--purge'),
      noDeregister: f.has('--no-deregister'),
      systemd: f.has('--root') ? undefined : liveSystemd(),
      out: (line) => process.stdout.write(line + '\n'),
      deregister: async (a) => (await import('./agent.js')).runDeregister(a),
    });
  });
}
