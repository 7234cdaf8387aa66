// The `plexd-userspace` command: the wireguard-go compatible daemon (an interface name), or a
// subcommand (agent, control plane, relay, STUN server, conformance runner, demo). Thin:
// dispatch, parsing and exit codes only.

import { nativeAddonStatus } from '../io/native.js';
import { EXIT, VERSION } from './constants.js';
import { deviceChoicesFromEnv } from './device-env.js';
import { runWgDaemon } from './wg-daemon.js';

/**
 * Subcommands: name -> loader of a function taking the remaining arguments and resolving to the
 * exit code. Each lives in its own file under src/cli and is loaded only when used, so the
 * wireguard-go daemon path stays light. Add one line per subcommand.
 */
const SUBCOMMANDS: Record<string, () => Promise<(args: readonly string[]) => Promise<number>>> = {
  conformance: async () => (await import('./conformance.js')).runConformance,
  'control-plane': async () => (await import('./control-plane.js')).runControlPlane,
  'stun-server': async () => (await import('./stun-server.js')).runStunServer,
  relay: async () => (await import('./relay.js')).runRelay,
  up: async () => (await import('./agent.js')).runUp,
  join: async () => (await import('./agent.js')).runJoin,
  status: async () => (await import('./agent.js')).runStatus,
  peers: async () => (await import('./agent.js')).runPeers,
  policies: async () => (await import('./agent.js')).runPolicies,
  deregister: async () => (await import('./agent.js')).runDeregister,
  logs: async () => (await import('./telemetry.js')).runLogs,
  'log-status': async () => (await import('./telemetry.js')).runLogStatus,
  audit: async () => (await import('./telemetry.js')).runAudit,
  state: async () => (await import('./agent.js')).runState,
  install: async () => (await import('./install.js')).runInstall,
  uninstall: async () => (await import('./install.js')).runUninstall,
  demo: async () => (await import('./demo.js')).runDemo,
  actions: async () => (await import('./agent-actions.js')).runActions,
  hooks: async () => (await import('./agent-actions.js')).runHooks,
};

/**
 * Upstream plexd commands not implemented here (docs/agent.md "Compatibility with upstream
 * plexd"): refused by name rather than taken for an interface name to create.
 */
export const UPSTREAM_ONLY_COMMANDS: readonly string[] = [];

const USAGE = `Usage: plexd-userspace [-f/--foreground] INTERFACE-NAME
       plexd-userspace --version | --help
       plexd-userspace COMMAND [--help | ARGS ...]

Userspace WireGuard in TypeScript, a drop-in for wireguard-go:
  plexd-userspace wg0          create TUN wg0, serve /var/run/wireguard/wg0.sock, daemonize
  plexd-userspace -f wg0       the same in the foreground (or WG_PROCESS_FOREGROUND=1)

Commands (each takes --help):
  demo            a control plane and three agents forming a mesh on loopback (no root)
  up              run the plexd node agent (--config FILE)
  join            register the node with the control plane, then exit
  status          the running agent's status
  peers           the running agent's peers
  policies        the running agent's policy in force and its counters
  actions         the agent's built-in actions and hooks; actions run ACTION runs a built-in
  hooks           hooks list|verify|reload (actions.hooks_dir)
  deregister      tell the control plane this node leaves ([--purge] deletes data_dir)
  logs            the agent's journal (journalctl -u plexd.service; -f follows)
  log-status      the running agent's log forwarding: sources, filter, counters, spool
  audit           the running agent's audit forwarding: sources, counters, spool
  state           the running agent's node state: state [get metadata|data|report|secret KEY],
                  state report KEY --data JSON|--file F
  install         install the agent as the systemd service plexd.service (docs/deploy.md)
  uninstall       stop and remove the service ([--purge] deregisters, deletes config and data)
  control-plane   serve the self-hosted control plane; tokens, nodes, policy, signing keys
  conformance     protocol conformance: known-answer vectors, or live against a program
  stun-server     a standalone STUN Binding server
  relay           a standalone bridge relay

Environment:
  LOG_LEVEL=verbose|error|silent   log verbosity (default error)
  PLEXD_CRYPTO=node|noble          crypto provider (default node:crypto)
  PLEXD_BIND=native|dgram          UDP transport (default native batched sockets on Linux)
  WG_QUICK_USERSPACE_IMPLEMENTATION=plexd-userspace wg-quick up wg0   use it under wg-quick
`;

/**
 * What --version prints: the version line (as wireguard-go's), then what this install runs on: the
 * Node.js version, which native addon loads (a prebuilt, a source build, or none and why) and the
 * crypto provider PLEXD_CRYPTO picks.
 */
export function versionText(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const addon = nativeAddonStatus();
  let crypto: string;
  try {
    crypto = deviceChoicesFromEnv(env).crypto.name;
  } catch (err) {
    crypto = `none (${(err as Error).message})`;
  }
  return [
    `plexd-userspace v${VERSION}`,
    '',
    `Userspace WireGuard daemon for ${process.platform}-${process.arch}.`,
    `Node.js: ${process.version}`,
    `Addon: ${addon.origin === 'none' ? `none (TUN devices unavailable: ${addon.reason})` : `${addon.origin} (${addon.path})`}`,
    `Crypto provider: ${crypto}`,
    '',
  ].join('\n');
}

/**
 * Optional dependencies a command may need, and why they can be missing: better-sqlite3 (the
 * control plane's database, also in `demo`) compiles or downloads its binary when installed, and
 * the install leaves it out where neither works (no compiler, no network).
 */
const OPTIONAL_DEPENDENCIES: Readonly<Record<string, string>> = {
  'better-sqlite3': 'the control plane\'s SQLite database',
};

// Loads subcommand `name`; undefined (after one line on stderr) when an optional dependency it
// needs is not installed, so that is one clear message rather than a module-resolution stack.
async function loadSubcommand(name: string, load: () => Promise<(args: readonly string[]) => Promise<number>>) {
  try {
    return await load();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const missing = Object.keys(OPTIONAL_DEPENDENCIES).find((dep) => (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && (err as Error).message.includes(`'${dep}'`));
    if (missing === undefined) throw err;
    process.stderr.write(
      `plexd-userspace ${name}: needs the optional dependency ${missing} (${OPTIONAL_DEPENDENCIES[missing]}), which is not installed: ` +
        `its install needs a download of its prebuilt binary or a C++ compiler (g++, make, python3). ` +
        `Install it next to plexd-userspace with \`npm install ${missing}\`; the agent, the wireguard-go compatible daemon and the library do not need it.\n`,
    );
    return undefined;
  }
}

/** Runs the command line `argv` (without node and script); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  switch (first) {
    case '--version':
    case 'version':
      process.stdout.write(versionText());
      return EXIT.ok;
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return EXIT.ok;
    case undefined:
      process.stderr.write(USAGE);
      return EXIT.usage;
    case '-f':
    case '--foreground':
      if (rest.length !== 1 || rest[0]!.startsWith('-')) {
        process.stderr.write(USAGE);
        return EXIT.usage;
      }
      return runWgDaemon(rest[0]!, true);
    default: {
      const load = Object.hasOwn(SUBCOMMANDS, first) ? SUBCOMMANDS[first] : undefined;
      if (load !== undefined) {
        const command = await loadSubcommand(first, load);
        return command === undefined ? EXIT.setupFailed : command(rest);
      }
      if (UPSTREAM_ONLY_COMMANDS.includes(first)) {
        process.stderr.write(`plexd-userspace: ${first}: an upstream plexd command that plexd-userspace does not implement (docs/agent.md)\n`);
        return EXIT.usage;
      }
      if (first.startsWith('-') || rest.length !== 0) {
        process.stderr.write(`plexd-userspace: unknown arguments: ${argv.join(' ')}\n\n${USAGE}`);
        return EXIT.usage;
      }
      return runWgDaemon(first, false);
    }
  }
}
