// The agent's configuration: upstream plexd's YAML keys, environment names and global flags
// (docs/agent.md "Compatibility with upstream plexd", test/compat/upstream-matrix.ts), plus a few
// of ours (api.tls_fingerprint, wireguard.packet_callback, wireguard.bind_address). One table
// lists every key with its type and default. A key upstream gives an environment name or a flag
// uses upstream's (PLEXD_API, --api); a key of ours derives both from its name (PLEXD_<KEY>,
// --key-with-dashes). Precedence: flags > PLEXD_* environment > file > defaults. Upstream keys we
// do not implement are accepted with one warning naming them all; any other unknown key, and an
// invalid value, is refused with its key named.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { parseEndpoint } from '../api/fields.js';
import { PlexdError, type PlexdErrorOptions } from '../errors.js';

/** A validated agent configuration. */
export interface AgentConfig {
  readonly mode: 'node' | 'bridge';
  readonly logLevel: 'error' | 'info' | 'verbose' | 'silent';
  readonly dataDir: string;
  readonly api: { readonly baseUrl: string; readonly tlsFingerprint: string | undefined; readonly requestTimeoutS: number };
  readonly registration: {
    readonly projectId: string | undefined;
    readonly resourceHandle: string;
    readonly tokenFile: string;
    /** registration.token_value (alias registration.token). */
    readonly token: string | undefined;
    /** The environment variable holding the bootstrap token (registration.token_env). */
    readonly tokenEnv: string;
    /** Give up retrying registration after this long (registration.max_retry_duration). */
    readonly maxRetryS: number;
    /** Cloud metadata (IMDS) as the last token source: registration.use_metadata, metadata_token_path, metadata_timeout. */
    readonly useMetadata: boolean;
    readonly metadataTokenPath: string;
    readonly metadataTimeoutS: number;
  };
  readonly heartbeat: { readonly intervalS: number };
  /** policy.enabled: false turns enforcement off (allow all); on, no policy means deny all. */
  readonly policy: { readonly enabled: boolean };
  readonly wireguard: {
    readonly interfaceName: string;
    readonly listenPort: number;
    readonly mtu: number;
    /** Ours: no TUN; a packet-callback Device with a userspace ICMP echo responder (no root). */
    readonly packetCallback: boolean;
    /** Ours: the address the UDP socket binds and the endpoint reported (packet-callback mode). */
    readonly bindAddress: string | undefined;
    /** Ours: "ip:port" reported as the endpoint and only candidate (NAT port forwards and the like). */
    readonly advertiseEndpoint: string | undefined;
    /** Ours: no TUN, no root; a userspace TCP/IP stack (plexd-userspace/net) answers on the mesh IP. */
    readonly netstack: boolean;
  };
  /** Ours, with wireguard.netstack: local entry points into the mesh. */
  readonly netstack: {
    /** "HOST:PORT" of a local SOCKS5 proxy into the mesh, or undefined. */
    readonly socks5: string | undefined;
    /** "LOCAL_HOST:PORT=MESH_HOST:PORT" TCP forwards. */
    readonly forwards: readonly string[];
  };
  readonly nat: {
    /** false: no STUN discovery and no interface scan; only bind_address/advertise_endpoint are reported. */
    readonly enabled: boolean;
    readonly stunServers: readonly string[];
    readonly refreshIntervalS: number;
    /** Ours: when non-empty, only these interfaces (names, "eth*" globs) give endpoint candidates. */
    readonly candidateInterfaces: readonly string[];
  };
  /** Periodic state pull, also while the event stream is connected (seconds; 0: off). */
  readonly reconcile: { readonly intervalS: number };
  /** listen is '' when health.enabled is false (no listener). */
  readonly health: { readonly listen: string };
  /** node_api.socket_path (alias node_api.socket); with node_api.http_enabled also on
   *  node_api.http_listen behind the bearer token of node_api.http_token_file; the report
   *  debounce (node_api.debounce_period, seconds). */
  readonly nodeApi: { readonly socket: string; readonly httpEnabled: boolean; readonly httpListen: string; readonly httpTokenFile: string | undefined; readonly debounceS: number };
  /** Relay limits (bridge mode): bridge.max_relay_sessions, bridge.session_ttl. */
  readonly bridge: { readonly relayListenPort: number; readonly maxRelaySessions: number; readonly sessionTtlS: number; readonly ingress: IngressSettings } & BridgeAccessConfig;
  /** Ours: the Kubernetes audit log the agent follows in a cluster (kubernetes.audit_log_path). */
  readonly kubernetes: { readonly auditLogPath: string };
  /** Telemetry upload: metrics.*, log_fwd.*, audit_fwd.* (docs/operations.md "Telemetry"). */
  /** Remote actions and hooks (docs/operations.md "Remote actions"): actions.enabled, hooks_dir,
   *  max_concurrent, max_action_timeout (seconds), max_output_bytes. */
  readonly actions: { readonly enabled: boolean; readonly hooksDir: string; readonly maxConcurrent: number; readonly maxActionTimeoutS: number; readonly maxOutputBytes: number };
  readonly telemetry: TelemetrySettings;
}

/** One telemetry kind's schedule: intervals in seconds, entries per batch, spool bound in bytes. */
export interface TelemetryKindSettings {
  readonly enabled: boolean;
  readonly collectIntervalS: number;
  readonly reportIntervalS: number;
  readonly batchSize: number;
  readonly spoolMaxBytes: number;
}

/** The three kinds, and log forwarding's sources and filter. */
export interface TelemetrySettings {
  readonly metrics: TelemetryKindSettings;
  readonly logs: TelemetryKindSettings & {
    readonly filePatterns: readonly string[];
    readonly minSeverity: string | undefined;
    readonly includeUnits: readonly string[];
    readonly excludeUnits: readonly string[];
  };
  readonly audit: TelemetryKindSettings;
}

/** The bridge access side's keys (docs/bridge.md "Configuration"); the state's bridge block wins
 *  where it has a value (interface names, ports, enable_nat, access_subnets). */
export interface BridgeAccessConfig {
  /** bridge.user_access_enabled / bridge.site_to_site_enabled: false refuses the service. */
  readonly userAccessEnabled: boolean;
  readonly siteToSiteEnabled: boolean;
  /** bridge.user_access_interface_name, bridge.user_access_listen_port (51822). */
  readonly userAccessInterface: string;
  readonly userAccessListenPort: number;
  /** bridge.site_to_site_listen_port: the first tunnel port (51823). */
  readonly siteToSiteListenPort: number;
  readonly maxSiteToSiteTunnels: number;
  /** bridge.access_address (ours): the bridge's address on wg-access when the state names none. */
  readonly accessAddress: string;
  /** bridge.access_interface: the LAN interface behind which access_subnets live (none: ''). */
  readonly accessInterface: string;
  readonly accessSubnets: readonly string[];
  readonly enableNat: boolean;
}

/** Public ingress and ACME (bridge mode; docs/bridge.md "Public ingress"): upstream's bridge.* keys. */
export interface IngressSettings {
  /** bridge.ingress_enabled: off, bridge.ingress rules are ignored and nothing listens. */
  readonly enabled: boolean;
  readonly maxRules: number;
  readonly dialTimeoutS: number;
  readonly acmeEnabled: boolean;
  /** bridge.acme_cache_dir; default <data_dir>/acme. */
  readonly acmeCacheDir: string;
  readonly acmeAllowedHosts: readonly string[];
  readonly acmeEmail: string | undefined;
  readonly acmeDirectoryUrl: string;
  /** Ours (bridge.acme_ca_file): PEM roots trusted for the ACME server's HTTPS (a private CA). */
  readonly acmeCaFile: string | undefined;
}

/** A refused configuration value; `key` is the dotted config key. */
export class ConfigError extends PlexdError<'ERR_AGENT_CONFIG'> {
  static readonly codes = ['ERR_AGENT_CONFIG'] as const;
  readonly key: string;
  constructor(key: string, message: string, options?: PlexdErrorOptions) {
    super('ERR_AGENT_CONFIG', `config ${key}: ${message}`, options);
    this.key = key;
  }
}

type Kind = 'string' | 'port' | 'int' | 'bool' | 'list' | 'duration' | 'hostport';
interface KeySpec {
  readonly kind: Kind;
  readonly def: unknown;
  readonly oneOf?: readonly string[];
  /** Bounds: integers, or seconds for durations. */
  readonly min?: number;
  readonly max?: number;
  readonly check?: (v: string) => string | undefined;
  /** Upstream's environment name. Default: derived (PLEXD_<KEY>), where upstream has none. */
  readonly env?: string;
  /** Upstream's flag (or an older one of ours). Default: derived (--key-with-dashes). */
  readonly flag?: string;
  /** Other spellings accepted in the file (ours from before upstream's name was adopted). */
  readonly aliases?: readonly string[];
}

const DEFAULT_TOKEN_FILE = '/etc/plexd/bootstrap-token';
/** The MTU for wireguard.mtu 0 (upstream: "system default"): the WireGuard default. */
const DEFAULT_MTU = 1420;
/** The config file read when neither --config nor PLEXD_CONFIG names one (upstream's, Linux). */
export const DEFAULT_CONFIG_FILE = '/etc/plexd/config.yaml';

function checkUrl(v: string): string | undefined {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return `expected an http(s) URL, got ${JSON.stringify(v)}`;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return `expected an http(s) URL, got ${JSON.stringify(v)}`;
  return undefined;
}

function checkIfname(v: string): string | undefined {
  return /^[A-Za-z0-9_.-]{1,15}$/.test(v) && v !== '.' && v !== '..' ? undefined : `expected an interface name of 1-15 [A-Za-z0-9_.-], got ${JSON.stringify(v)}`;
}

function checkEndpoint(v: string): string | undefined {
  return parseEndpoint(v) === undefined ? `expected "ip:port" or "[ipv6]:port" with an IP address, got ${JSON.stringify(v)}` : undefined;
}

function checkMetadataPath(v: string): string | undefined {
  return /^\/[A-Za-z0-9._~\/-]{0,255}$/.test(v) ? undefined : `expected a metadata path like /plexd/bootstrap-token, got ${JSON.stringify(v)}`;
}

function checkEnvName(v: string): string | undefined {
  return /^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(v) ? undefined : `expected an environment variable name, got ${JSON.stringify(v)}`;
}

function checkMtu(v: string): string | undefined {
  const n = Number(v);
  return n === 0 || n >= 576 ? undefined : `expected 0 (default 1420) or an MTU of at least 576, got ${v}`;
}

function checkFingerprint(v: string): string | undefined {
  return normalizeFingerprint(v) === undefined ? `expected a SHA-256 fingerprint (64 hex digits, colons allowed), got ${JSON.stringify(v)}` : undefined;
}

/** Every key: dotted name -> type, default and checks. */
export const CONFIG_KEYS: Readonly<Record<string, KeySpec>> = {
  mode: { kind: 'string', def: 'node', oneOf: ['node', 'bridge'], env: 'PLEXD_MODE', flag: '--mode' },
  log_level: { kind: 'string', def: 'info', oneOf: ['error', 'warn', 'info', 'verbose', 'debug', 'silent'], env: 'PLEXD_LOG_LEVEL', flag: '--log-level' },
  data_dir: { kind: 'string', def: '/var/lib/plexd' },
  'api.base_url': { kind: 'string', def: undefined, check: checkUrl, env: 'PLEXD_API', flag: '--api' },
  'api.tls_fingerprint': { kind: 'string', def: undefined, check: checkFingerprint },
  'api.request_timeout': { kind: 'duration', def: 30, min: 1 },
  'registration.project_id': { kind: 'string', def: undefined, env: 'PLEXD_PROJECT_ID', flag: '--project-id' },
  'registration.resource_handle': { kind: 'string', def: undefined, env: 'PLEXD_RESOURCE_HANDLE', flag: '--resource-handle' },
  'registration.token_file': { kind: 'string', def: DEFAULT_TOKEN_FILE, env: 'PLEXD_BOOTSTRAP_TOKEN_FILE', flag: '--token-file' },
  'registration.token_value': { kind: 'string', def: undefined, aliases: ['registration.token'] },
  'registration.token_env': { kind: 'string', def: 'PLEXD_BOOTSTRAP_TOKEN', check: checkEnvName },
  'registration.max_retry_duration': { kind: 'duration', def: 300, min: 1 },
  'registration.use_metadata': { kind: 'bool', def: false },
  'registration.metadata_token_path': { kind: 'string', def: '/plexd/bootstrap-token', check: checkMetadataPath },
  'registration.metadata_timeout': { kind: 'duration', def: 2, min: 0.1 },
  'heartbeat.interval': { kind: 'duration', def: 30, min: 1 },
  'policy.enabled': { kind: 'bool', def: true, env: 'PLEXD_POLICY_ENABLED' },
  'wireguard.interface_name': { kind: 'string', def: 'plexd0', check: checkIfname },
  'wireguard.listen_port': { kind: 'port', def: 51820 },
  'wireguard.mtu': { kind: 'int', def: 0, min: 0, max: 65535, check: checkMtu },
  'wireguard.packet_callback': { kind: 'bool', def: false },
  'wireguard.netstack': { kind: 'bool', def: false, flag: '--netstack' },
  'netstack.socks5': { kind: 'hostport', def: undefined, flag: '--socks5' },
  'netstack.forward': { kind: 'list', def: [], flag: '--forward', aliases: ['netstack.forwards'] },
  'wireguard.bind_address': { kind: 'string', def: undefined },
  'wireguard.advertise_endpoint': { kind: 'string', def: undefined, check: checkEndpoint },
  'nat.enabled': { kind: 'bool', def: true },
  'nat.stun_servers': { kind: 'list', def: [] },
  'nat.refresh_interval': { kind: 'duration', def: 60, min: 10 },
  'nat.candidate_interfaces': { kind: 'list', def: [] },
  'reconcile.interval': { kind: 'duration', def: 60 },
  'health.enabled': { kind: 'bool', def: true, env: 'PLEXD_HEALTH_ENABLED' },
  'health.listen': { kind: 'hostport', def: '127.0.0.1:9101', env: 'PLEXD_HEALTH_LISTEN' },
  'node_api.socket_path': { kind: 'string', def: '/var/run/plexd/api.sock', env: 'PLEXD_NODE_API_SOCKET', flag: '--node-api-socket', aliases: ['node_api.socket'] },
  'node_api.http_enabled': { kind: 'bool', def: false, env: 'PLEXD_NODE_API_HTTP_ENABLED' },
  'node_api.http_listen': { kind: 'hostport', def: '127.0.0.1:9100', env: 'PLEXD_NODE_API_HTTP_LISTEN' },
  'node_api.http_token_file': { kind: 'string', def: undefined },
  'node_api.debounce_period': { kind: 'duration', def: 5, min: 0.01 },
  'bridge.relay_listen_port': { kind: 'port', def: 51821 },
  'bridge.max_relay_sessions': { kind: 'int', def: 100, min: 1, max: 100_000 },
  'bridge.session_ttl': { kind: 'duration', def: 300, min: 1 },
  'bridge.ingress_enabled': { kind: 'bool', def: false },
  'bridge.max_ingress_rules': { kind: 'int', def: 20, min: 1, max: 1000 },
  'bridge.ingress_dial_timeout': { kind: 'duration', def: 10, min: 0.1 },
  'bridge.acme_enabled': { kind: 'bool', def: false },
  'bridge.acme_cache_dir': { kind: 'string', def: undefined },
  'bridge.acme_allowed_hosts': { kind: 'list', def: [] },
  'bridge.acme_email': { kind: 'string', def: undefined },
  'bridge.acme_directory_url': { kind: 'string', def: 'https://acme-v02.api.letsencrypt.org/directory', check: checkUrl },
  'bridge.acme_ca_file': { kind: 'string', def: undefined },
  'bridge.user_access_enabled': { kind: 'bool', def: true },
  'bridge.user_access_interface_name': { kind: 'string', def: 'wg-access', check: checkIfname },
  'bridge.user_access_listen_port': { kind: 'port', def: 51822 },
  'bridge.site_to_site_enabled': { kind: 'bool', def: true },
  'bridge.site_to_site_listen_port': { kind: 'port', def: 51823 },
  'bridge.max_site_to_site_tunnels': { kind: 'int', def: 10, min: 0, max: 10 },
  'bridge.access_address': { kind: 'string', def: '10.101.0.1/16' },
  'bridge.access_interface': { kind: 'string', def: '' },
  'bridge.access_subnets': { kind: 'list', def: [] },
  'bridge.enable_nat': { kind: 'bool', def: true },
  'kubernetes.audit_log_path': { kind: 'string', def: '/var/log/kubernetes/audit/audit.log' },
  // Telemetry upload (docs/operations.md "Telemetry"): upstream's keys and defaults; spool_max_bytes is ours.
  'metrics.enabled': { kind: 'bool', def: true },
  'metrics.collect_interval': { kind: 'duration', def: 15, min: 5 },
  'metrics.report_interval': { kind: 'duration', def: 60, min: 10 },
  'metrics.batch_size': { kind: 'int', def: 100, min: 1, max: 10_000 },
  'metrics.spool_max_bytes': { kind: 'int', def: 8 << 20, min: 64 << 10, max: 1 << 30 },
  'log_fwd.enabled': { kind: 'bool', def: true },
  'log_fwd.collect_interval': { kind: 'duration', def: 10, min: 5 },
  'log_fwd.report_interval': { kind: 'duration', def: 30, min: 5 },
  'log_fwd.batch_size': { kind: 'int', def: 200, min: 1, max: 10_000 },
  'log_fwd.file_patterns': { kind: 'list', def: [] },
  'log_fwd.filter.min_severity': { kind: 'string', def: undefined, oneOf: ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] },
  'log_fwd.filter.include_units': { kind: 'list', def: [] },
  'log_fwd.filter.exclude_units': { kind: 'list', def: [] },
  'log_fwd.spool_max_bytes': { kind: 'int', def: 32 << 20, min: 64 << 10, max: 1 << 30 },
  'audit_fwd.enabled': { kind: 'bool', def: true },
  'audit_fwd.collect_interval': { kind: 'duration', def: 5, min: 1 },
  'audit_fwd.report_interval': { kind: 'duration', def: 15, min: 1 },
  'audit_fwd.batch_size': { kind: 'int', def: 500, min: 1, max: 10_000 },
  'audit_fwd.spool_max_bytes': { kind: 'int', def: 32 << 20, min: 64 << 10, max: 1 << 30 },
  // Remote actions (upstream's actions section; its validation minimums).
  'actions.enabled': { kind: 'bool', def: true, env: 'PLEXD_ACTIONS_ENABLED' },
  'actions.hooks_dir': { kind: 'string', def: '/etc/plexd/hooks', env: 'PLEXD_HOOKS_DIR' },
  'actions.max_concurrent': { kind: 'int', def: 5, min: 1, max: 1000, env: 'PLEXD_ACTIONS_MAX_CONCURRENT' },
  'actions.max_action_timeout': { kind: 'duration', def: 600, min: 10 },
  'actions.max_output_bytes': { kind: 'int', def: 1024 * 1024, min: 1024, max: 64 * 1024 * 1024 },
};

/**
 * Upstream keys we accept without acting on them: each found in the file is named in one warning.
 * A key under one of the `SECTIONS` (any depth) counts as well. Why each is not acted on:
 * docs/agent.md "Compatibility with upstream plexd".
 */
export const IGNORED_UPSTREAM_KEYS: { readonly keys: ReadonlySet<string>; readonly sections: readonly string[] } = {
  keys: new Set([
    'api.tls_insecure_skip_verify', 'api.connect_timeout', 'api.sse_idle_timeout', 'api.sse_reprobe_interval',
    'registration.requested_resource_id',
    'node_api.shutdown_timeout',
    'nat.timeout', 'nat.min_report_interval',
    'policy.chain_name',
    'bridge.enabled', 'bridge.relay_enabled',
    'bridge.max_access_peers', 'bridge.user_access_provider_type', 'bridge.auth_key_env',
    'bridge.site_to_site_interface_prefix', 'bridge.tunnel_providers',
  ]),
  sections: ['actions', 'upgrade', 'integrity', 'metrics.local_endpoint', 'log_fwd.local_endpoint', 'audit_fwd.local_endpoint', 'peer_exchange', 'tunnel'],
};

/** Upstream environment names we do not act on: a warning names each one set. */
export const IGNORED_UPSTREAM_ENV: readonly string[] = [
  'PLEXD_REQUESTED_RESOURCE_ID', 'PLEXD_HOOKS_ENABLED',
];

/** Upstream flags we accept (with a value) without acting on them: a warning names each one given. */
export const IGNORED_UPSTREAM_FLAGS: readonly string[] = ['--requested-resource-id'];

function isIgnoredUpstream(key: string): boolean {
  return IGNORED_UPSTREAM_KEYS.keys.has(key) || IGNORED_UPSTREAM_KEYS.sections.some((s) => key === s || key.startsWith(s + '.'));
}

/** The environment variable of `key`: upstream's (PLEXD_API for 'api.base_url'), else derived (PLEXD_DATA_DIR). */
export function envName(key: string): string {
  const spec = Object.hasOwn(CONFIG_KEYS, key) ? CONFIG_KEYS[key] : undefined;
  return spec?.env ?? 'PLEXD_' + key.toUpperCase().replace(/\./g, '_');
}

/** The flag of `key`: upstream's (--api for 'api.base_url'), else derived (--data-dir). */
export function flagName(key: string): string {
  const spec = Object.hasOwn(CONFIG_KEYS, key) ? CONFIG_KEYS[key] : undefined;
  return spec?.flag ?? '--' + key.replace(/[._]/g, '-');
}

/** The canonical key of a file key or alias ('node_api.socket' -> 'node_api.socket_path'), or undefined. */
export function canonicalKey(key: string): string | undefined {
  if (Object.hasOwn(CONFIG_KEYS, key)) return key;
  for (const [k, spec] of Object.entries(CONFIG_KEYS)) if (spec.aliases?.includes(key)) return k;
  return undefined;
}

/** Normalizes a SHA-256 fingerprint ("AB:CD:..", "sha256:abcd..", hex) to 64 lowercase hex digits. */
export function normalizeFingerprint(v: string): string | undefined {
  const hex = v.trim().replace(/^sha256[:/]/i, '').replace(/:/g, '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
}

/** Parses "30s", "5m", "1h", "250ms" or a bare number of seconds into seconds. */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (m === null) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return unit === 'ms' ? n / 1000 : unit === 's' ? n : unit === 'm' ? n * 60 : n * 3600;
}

function coerce(key: string, spec: KeySpec, raw: unknown, fromText: boolean): unknown {
  const fail = (what: string): never => {
    throw new ConfigError(key, `expected ${what}, got ${JSON.stringify(raw)}`);
  };
  switch (spec.kind) {
    case 'string': {
      if (typeof raw !== 'string' && !(typeof raw === 'number' && !fromText)) fail('a string');
      const s = String(raw);
      if (s.length > 4096 || s.includes('\0')) fail('a string of at most 4096 characters');
      if (spec.oneOf !== undefined && !spec.oneOf.includes(s)) fail(`one of ${spec.oneOf.join(', ')}`);
      const problem = spec.check?.(s);
      if (problem !== undefined) throw new ConfigError(key, problem);
      return s;
    }
    case 'port':
    case 'int': {
      const n = typeof raw === 'string' && /^[0-9]+$/.test(raw) ? Number(raw) : raw;
      const min = spec.min ?? 0;
      const max = spec.max ?? 65535;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) fail(`an integer in ${min}..${max}`);
      const problem = spec.check?.(String(n));
      if (problem !== undefined) throw new ConfigError(key, problem);
      return n;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      // Go's strconv.ParseBool spellings (upstream's environment parser), plus yes/no.
      if (typeof raw === 'string' && ['1', 't', 'T', 'true', 'TRUE', 'True', 'yes'].includes(raw)) return true;
      if (typeof raw === 'string' && ['0', 'f', 'F', 'false', 'FALSE', 'False', 'no'].includes(raw)) return false;
      return fail('true or false');
    }
    case 'list': {
      if (typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
      if (!Array.isArray(raw) || raw.length > 64 || !raw.every((s) => typeof s === 'string')) fail('a list of strings');
      return raw as string[];
    }
    case 'duration': {
      const d = parseDuration(raw);
      const min = spec.min ?? 0;
      if (d === undefined || d > 86_400 || d < min) fail(`a duration like 60s, 5m (${min}s to 24h)`);
      return d;
    }
    case 'hostport': {
      if (typeof raw !== 'string') return fail('HOST:PORT');
      const m = /^(.+):([0-9]{1,5})$/.exec(raw);
      if (m === null || Number(m[2]) > 65535) fail('HOST:PORT');
      return raw;
    }
  }
}

/** Flattens a parsed YAML document into dotted keys; nested maps recurse, anything else is a leaf. */
function flatten(obj: Record<string, unknown>, prefix: string, out: Map<string, unknown>): void {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix + k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && canonicalKey(key) === undefined) {
      flatten(v as Record<string, unknown>, key + '.', out);
    } else {
      out.set(key, v);
    }
  }
}

/** Where the configuration comes from. */
export interface ConfigSources {
  /** YAML text of the config file (already read), or undefined without one. */
  readonly fileText?: string;
  /** Name of the file for messages. */
  readonly fileName?: string;
  /** The environment (PLEXD_* variables are read). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Values from flags: dotted key -> string. */
  readonly flags?: ReadonlyMap<string, string>;
  /** Called with each warning (upstream keys, environment names and flags we do not act on). */
  readonly warn?: (message: string) => void;
}

/**
 * Merges the sources into an AgentConfig. Throws ConfigError naming the key for an invalid value,
 * an unknown key (neither ours nor upstream's), a missing api.base_url, or a file that is not a
 * YAML mapping. Upstream keys and environment names we do not act on get one warning each kind.
 */
export function resolveConfig(src: ConfigSources): AgentConfig {
  const values = new Map<string, unknown>();
  for (const [key, spec] of Object.entries(CONFIG_KEYS)) values.set(key, spec.def);
  if (src.fileText !== undefined) {
    let doc: unknown;
    try {
      doc = parseYaml(src.fileText, { maxAliasCount: 100, uniqueKeys: true });
    } catch (err) {
      throw new ConfigError('(file)', `${src.fileName ?? 'config'} is not valid YAML: ${(err as Error).message.split('\n')[0]!.replace(/:\s*$/, '')}`, { cause: err });
    }
    if (doc !== null && doc !== undefined) {
      if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError('(file)', `${src.fileName ?? 'config'}: expected a YAML mapping at the top`);
      const flat = new Map<string, unknown>();
      flatten(doc as Record<string, unknown>, '', flat);
      const ignored: string[] = [];
      const seen = new Map<string, string>();
      for (const [fileKey, raw] of flat) {
        const key = canonicalKey(fileKey);
        if (key === undefined) {
          if (isIgnoredUpstream(fileKey)) {
            ignored.push(fileKey);
            continue;
          }
          throw new ConfigError(fileKey, 'unknown key (neither plexd-userspace nor upstream plexd has it; see docs/agent.md)');
        }
        const other = seen.get(key);
        if (other !== undefined) throw new ConfigError(fileKey, `given twice (also as ${other})`);
        seen.set(key, fileKey);
        if (raw === null || raw === undefined) continue;
        values.set(key, coerce(fileKey, CONFIG_KEYS[key]!, raw, false));
      }
      if (ignored.length !== 0) src.warn?.(`config: upstream plexd keys not supported by plexd-userspace, ignored: ${ignored.join(', ')}`);
    }
  }
  for (const [key, spec] of Object.entries(CONFIG_KEYS)) {
    const name = envName(key);
    const v = src.env?.[name];
    if (v !== undefined && v !== '') values.set(key, coerce(`${key} (${name})`, spec, v, true));
  }
  const ignoredEnv = IGNORED_UPSTREAM_ENV.filter((n) => src.env?.[n] !== undefined && src.env[n] !== '');
  if (ignoredEnv.length !== 0) src.warn?.(`environment: upstream plexd variables not supported by plexd-userspace, ignored: ${ignoredEnv.join(', ')}`);
  for (const [given, v] of src.flags ?? []) {
    const key = canonicalKey(given);
    if (key === undefined) throw new ConfigError(given, 'unknown key');
    values.set(key, coerce(given, CONFIG_KEYS[key]!, v, true));
  }
  const s = (k: string) => values.get(k) as string | undefined;
  const baseUrl = s('api.base_url');
  if (baseUrl === undefined) throw new ConfigError('api.base_url', `required (file, ${envName('api.base_url')} or ${flagName('api.base_url')})`);
  // A pin on a plain-HTTP URL would be silently unused, and the token, nsk and PSKs would travel in
  // the clear while the operator believes the server is pinned.
  if (s('api.tls_fingerprint') !== undefined && !/^https:/i.test(baseUrl)) {
    throw new ConfigError('api.tls_fingerprint', 'is set but api.base_url is not https:// (the pin would not be used); use an https URL or drop the fingerprint');
  }
  const level = s('log_level')!;
  const mtu = values.get('wireguard.mtu') as number;
  return {
    mode: s('mode') as 'node' | 'bridge',
    // Ours has no warn level: warnings are logged as errors, so `warn` shows the same lines.
    logLevel: (level === 'debug' ? 'verbose' : level === 'warn' ? 'error' : level) as AgentConfig['logLevel'],
    dataDir: s('data_dir')!,
    api: { baseUrl: baseUrl.replace(/\/+$/, ''), tlsFingerprint: s('api.tls_fingerprint'), requestTimeoutS: values.get('api.request_timeout') as number },
    registration: {
      projectId: s('registration.project_id'),
      resourceHandle: s('registration.resource_handle') ?? hostname(),
      tokenFile: s('registration.token_file')!,
      token: s('registration.token_value'),
      tokenEnv: s('registration.token_env')!,
      maxRetryS: values.get('registration.max_retry_duration') as number,
      useMetadata: values.get('registration.use_metadata') as boolean,
      metadataTokenPath: s('registration.metadata_token_path')!,
      metadataTimeoutS: values.get('registration.metadata_timeout') as number,
    },
    heartbeat: { intervalS: values.get('heartbeat.interval') as number },
    policy: { enabled: values.get('policy.enabled') as boolean },
    wireguard: {
      interfaceName: s('wireguard.interface_name')!,
      listenPort: values.get('wireguard.listen_port') as number,
      mtu: mtu === 0 ? DEFAULT_MTU : mtu,
      packetCallback: values.get('wireguard.packet_callback') as boolean,
      bindAddress: s('wireguard.bind_address'),
      advertiseEndpoint: s('wireguard.advertise_endpoint'),
      netstack: values.get('wireguard.netstack') as boolean,
    },
    netstack: { socks5: s('netstack.socks5'), forwards: values.get('netstack.forward') as string[] },
    nat: {
      enabled: values.get('nat.enabled') as boolean,
      stunServers: values.get('nat.stun_servers') as string[],
      refreshIntervalS: values.get('nat.refresh_interval') as number,
      candidateInterfaces: values.get('nat.candidate_interfaces') as string[],
    },
    reconcile: { intervalS: values.get('reconcile.interval') as number },
    health: { listen: values.get('health.enabled') === true ? s('health.listen')! : '' },
    nodeApi: {
      socket: s('node_api.socket_path')!,
      httpEnabled: values.get('node_api.http_enabled') as boolean,
      httpListen: s('node_api.http_listen')!,
      httpTokenFile: s('node_api.http_token_file'),
      debounceS: values.get('node_api.debounce_period') as number,
    },
    actions: {
      enabled: values.get('actions.enabled') as boolean,
      hooksDir: s('actions.hooks_dir')!,
      maxConcurrent: values.get('actions.max_concurrent') as number,
      maxActionTimeoutS: values.get('actions.max_action_timeout') as number,
      maxOutputBytes: values.get('actions.max_output_bytes') as number,
    },
    bridge: {
      relayListenPort: values.get('bridge.relay_listen_port') as number,
      maxRelaySessions: values.get('bridge.max_relay_sessions') as number,
      sessionTtlS: values.get('bridge.session_ttl') as number,
      userAccessEnabled: values.get('bridge.user_access_enabled') as boolean,
      siteToSiteEnabled: values.get('bridge.site_to_site_enabled') as boolean,
      userAccessInterface: s('bridge.user_access_interface_name')!,
      userAccessListenPort: values.get('bridge.user_access_listen_port') as number,
      siteToSiteListenPort: values.get('bridge.site_to_site_listen_port') as number,
      maxSiteToSiteTunnels: values.get('bridge.max_site_to_site_tunnels') as number,
      accessAddress: s('bridge.access_address')!,
      accessInterface: s('bridge.access_interface')!,
      accessSubnets: values.get('bridge.access_subnets') as string[],
      enableNat: values.get('bridge.enable_nat') as boolean,
      ingress: {
        enabled: values.get('bridge.ingress_enabled') as boolean,
        maxRules: values.get('bridge.max_ingress_rules') as number,
        dialTimeoutS: values.get('bridge.ingress_dial_timeout') as number,
        acmeEnabled: values.get('bridge.acme_enabled') as boolean,
        acmeCacheDir: s('bridge.acme_cache_dir') ?? `${s('data_dir')!.replace(/\/+$/, '')}/acme`,
        acmeAllowedHosts: values.get('bridge.acme_allowed_hosts') as string[],
        acmeEmail: s('bridge.acme_email'),
        acmeDirectoryUrl: s('bridge.acme_directory_url')!,
        acmeCaFile: s('bridge.acme_ca_file'),
      },
    },
    kubernetes: { auditLogPath: s('kubernetes.audit_log_path')! },
    telemetry: {
      metrics: kindSettings(values, 'metrics'),
      logs: {
        ...kindSettings(values, 'log_fwd'),
        filePatterns: values.get('log_fwd.file_patterns') as string[],
        minSeverity: s('log_fwd.filter.min_severity'),
        includeUnits: values.get('log_fwd.filter.include_units') as string[],
        excludeUnits: values.get('log_fwd.filter.exclude_units') as string[],
      },
      audit: kindSettings(values, 'audit_fwd'),
    },
  };
}

/** One telemetry section's settings; report_interval must not be shorter than collect_interval
 *  (upstream's rule). Throws ConfigError. */
function kindSettings(values: ReadonlyMap<string, unknown>, section: string): TelemetryKindSettings {
  const collect = values.get(`${section}.collect_interval`) as number;
  const report = values.get(`${section}.report_interval`) as number;
  const enabled = values.get(`${section}.enabled`) as boolean;
  if (enabled && report < collect) throw new ConfigError(`${section}.report_interval`, `must be >= ${section}.collect_interval (${collect}s), got ${report}s`);
  return { enabled, collectIntervalS: collect, reportIntervalS: report, batchSize: values.get(`${section}.batch_size`) as number, spoolMaxBytes: values.get(`${section}.spool_max_bytes`) as number };
}

/** The parsed command line of an agent command. */
export interface ParsedFlags {
  /** --config FILE, else undefined (the caller falls back to PLEXD_CONFIG, then DEFAULT_CONFIG_FILE). */
  configFile: string | undefined;
  flags: Map<string, string>;
  booleans: Set<string>;
  positional: string[];
  /** Upstream flags given that we do not act on (IGNORED_UPSTREAM_FLAGS). */
  ignored: string[];
}

/**
 * Splits command-line arguments into config flags (--key value / --key=value, names from
 * flagName), `--config FILE`, and the rest. Throws ConfigError for an unknown flag or a
 * missing value.
 */
export function parseConfigFlags(args: readonly string[], extraBooleans: readonly string[] = []): ParsedFlags {
  const byFlag = new Map(Object.keys(CONFIG_KEYS).map((k) => [flagName(k), k]));
  const flags = new Map<string, string>();
  const booleans = new Set<string>();
  const positional: string[] = [];
  const ignored: string[] = [];
  let configFile: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg : arg.slice(0, eq);
    if (extraBooleans.includes(name)) {
      booleans.add(name);
      continue;
    }
    const key = name === '--config' ? 'config' : IGNORED_UPSTREAM_FLAGS.includes(name) ? 'ignored' : byFlag.get(name);
    if (key === undefined) throw new ConfigError(name, 'unknown flag');
    const spec = CONFIG_KEYS[key];
    // A bare boolean flag (`--netstack`) means true; a repeated list flag (`--forward`) appends.
    const bare = eq < 0 && spec?.kind === 'bool' && (args[i + 1] === undefined || args[i + 1]!.startsWith('--'));
    const value = bare ? 'true' : eq < 0 ? args[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new ConfigError(name, 'expected a value');
    if (key === 'config') configFile = value;
    else if (key === 'ignored') ignored.push(name);
    else if (spec?.kind === 'list' && flags.has(key)) flags.set(key, `${flags.get(key)!},${value}`);
    else flags.set(key, value);
  }
  return { configFile, flags, booleans, positional, ignored };
}

/**
 * Reads `file` (if given) and resolves the configuration from it, the environment and flags.
 * `optional`: a missing file is not an error but a warning (upstream's default path).
 */
export function loadConfig(file: string | undefined, flags: ReadonlyMap<string, string>, env = process.env, warn?: (m: string) => void, optional = false): AgentConfig {
  let fileText: string | undefined;
  if (file !== undefined) {
    try {
      fileText = readFileSync(file, 'utf8');
    } catch (err) {
      if (optional && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        warn?.(`config: no file at ${file}; running on flags, environment and defaults`);
        return resolveConfig({ env, flags, ...(warn ? { warn } : {}) });
      }
      throw new ConfigError('--config', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
    if (fileText.length > 1 << 20) throw new ConfigError('--config', `${file} is larger than 1 MiB`);
    if (fileText.trim() === '') throw new ConfigError('--config', `${file} is empty (a truncated write?); remove it to run without a file`);
  }
  return resolveConfig({ fileText, ...(file !== undefined ? { fileName: file } : {}), env, flags, ...(warn ? { warn } : {}) });
}
