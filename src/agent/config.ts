// The agent's configuration: plexd's YAML keys (plexd-api.md "Config"), plus a few of ours
// (api.tls_fingerprint, wireguard.packet_callback). One table lists every key with its type and
// default; the environment variable (PLEXD_<KEY>, dots as underscores) and the flag (--key with
// dots and underscores as dashes) are derived from the key, so the three sources cannot drift.
// Precedence: flags > PLEXD_* environment > file > defaults. Unknown file keys are warned about;
// an invalid value is refused with its key named.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { parseEndpoint } from '../api/fields.js';

/** A validated agent configuration. */
export interface AgentConfig {
  readonly mode: 'node' | 'bridge';
  readonly logLevel: 'error' | 'info' | 'verbose' | 'silent';
  readonly dataDir: string;
  readonly api: { readonly baseUrl: string; readonly tlsFingerprint: string | undefined };
  readonly registration: {
    readonly projectId: string | undefined;
    readonly resourceHandle: string;
    readonly tokenFile: string;
    readonly token: string | undefined;
  };
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
  readonly health: { readonly listen: string };
  readonly nodeApi: { readonly socket: string };
  readonly bridge: { readonly relayListenPort: number };
}

/** A refused configuration value; `key` is the dotted config key. */
export class ConfigError extends Error {
  readonly code = 'ERR_AGENT_CONFIG';
  readonly key: string;
  constructor(key: string, message: string, options?: ErrorOptions) {
    super(`config ${key}: ${message}`, options);
    this.name = 'ConfigError';
    this.key = key;
  }
}

type Kind = 'string' | 'port' | 'int' | 'bool' | 'list' | 'duration' | 'hostport';
interface KeySpec {
  readonly kind: Kind;
  readonly def: unknown;
  readonly oneOf?: readonly string[];
  readonly min?: number;
  readonly max?: number;
  readonly check?: (v: string) => string | undefined;
}

const DEFAULT_TOKEN_FILE = '/etc/plexd/bootstrap-token';

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

function checkFingerprint(v: string): string | undefined {
  return normalizeFingerprint(v) === undefined ? `expected a SHA-256 fingerprint (64 hex digits, colons allowed), got ${JSON.stringify(v)}` : undefined;
}

/** Every key: dotted name -> type, default and checks. */
export const CONFIG_KEYS: Readonly<Record<string, KeySpec>> = {
  mode: { kind: 'string', def: 'node', oneOf: ['node', 'bridge'] },
  log_level: { kind: 'string', def: 'info', oneOf: ['error', 'info', 'verbose', 'debug', 'silent'] },
  data_dir: { kind: 'string', def: '/var/lib/plexd' },
  'api.base_url': { kind: 'string', def: undefined, check: checkUrl },
  'api.tls_fingerprint': { kind: 'string', def: undefined, check: checkFingerprint },
  'registration.project_id': { kind: 'string', def: undefined },
  'registration.resource_handle': { kind: 'string', def: undefined },
  'registration.token_file': { kind: 'string', def: DEFAULT_TOKEN_FILE },
  'registration.token': { kind: 'string', def: undefined },
  'wireguard.interface_name': { kind: 'string', def: 'plexd0', check: checkIfname },
  'wireguard.listen_port': { kind: 'port', def: 51820 },
  'wireguard.mtu': { kind: 'int', def: 1420, min: 576, max: 65535 },
  'wireguard.packet_callback': { kind: 'bool', def: false },
  'wireguard.bind_address': { kind: 'string', def: undefined },
  'wireguard.advertise_endpoint': { kind: 'string', def: undefined, check: checkEndpoint },
  'nat.enabled': { kind: 'bool', def: true },
  'nat.stun_servers': { kind: 'list', def: [] },
  'nat.refresh_interval': { kind: 'duration', def: 60 },
  'nat.candidate_interfaces': { kind: 'list', def: [] },
  'reconcile.interval': { kind: 'duration', def: 60 },
  'health.listen': { kind: 'hostport', def: '127.0.0.1:9101' },
  'node_api.socket': { kind: 'string', def: '/var/run/plexd/api.sock' },
  'bridge.relay_listen_port': { kind: 'port', def: 51821 },
};

/** PLEXD_API_BASE_URL for 'api.base_url'. */
export function envName(key: string): string {
  return 'PLEXD_' + key.toUpperCase().replace(/\./g, '_');
}

/** --api-base-url for 'api.base_url'. */
export function flagName(key: string): string {
  return '--' + key.replace(/[._]/g, '-');
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
      return n;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1' || raw === 'yes') return true;
      if (raw === 'false' || raw === '0' || raw === 'no') return false;
      return fail('true or false');
    }
    case 'list': {
      if (typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
      if (!Array.isArray(raw) || raw.length > 64 || !raw.every((s) => typeof s === 'string')) fail('a list of strings');
      return raw as string[];
    }
    case 'duration': {
      const d = parseDuration(raw);
      if (d === undefined || d > 86_400) fail('a duration like 60s, 5m (at most 24h)');
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
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && !Object.hasOwn(CONFIG_KEYS, key)) {
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
  /** Called with each warning (unknown keys). */
  readonly warn?: (message: string) => void;
}

/**
 * Merges the sources into an AgentConfig. Throws ConfigError naming the key for an invalid value,
 * a missing api.base_url, or a file that is not a YAML mapping.
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
      for (const [key, raw] of flat) {
        const spec = Object.hasOwn(CONFIG_KEYS, key) ? CONFIG_KEYS[key] : undefined;
        if (spec === undefined) {
          src.warn?.(`config: unknown key ${JSON.stringify(key)} ignored`);
          continue;
        }
        if (raw === null || raw === undefined) continue;
        values.set(key, coerce(key, spec, raw, false));
      }
    }
  }
  for (const [key, spec] of Object.entries(CONFIG_KEYS)) {
    const v = src.env?.[envName(key)];
    if (v !== undefined && v !== '') values.set(key, coerce(key, spec, v, true));
  }
  for (const [key, v] of src.flags ?? []) {
    const spec = Object.hasOwn(CONFIG_KEYS, key) ? CONFIG_KEYS[key] : undefined;
    if (spec === undefined) throw new ConfigError(key, 'unknown key');
    values.set(key, coerce(key, spec, v, true));
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
  return {
    mode: s('mode') as 'node' | 'bridge',
    logLevel: (level === 'debug' ? 'verbose' : level) as AgentConfig['logLevel'],
    dataDir: s('data_dir')!,
    api: { baseUrl: baseUrl.replace(/\/+$/, ''), tlsFingerprint: s('api.tls_fingerprint') },
    registration: {
      projectId: s('registration.project_id'),
      resourceHandle: s('registration.resource_handle') ?? hostname(),
      tokenFile: s('registration.token_file')!,
      token: s('registration.token'),
    },
    wireguard: {
      interfaceName: s('wireguard.interface_name')!,
      listenPort: values.get('wireguard.listen_port') as number,
      mtu: values.get('wireguard.mtu') as number,
      packetCallback: values.get('wireguard.packet_callback') as boolean,
      bindAddress: s('wireguard.bind_address'),
      advertiseEndpoint: s('wireguard.advertise_endpoint'),
    },
    nat: {
      enabled: values.get('nat.enabled') as boolean,
      stunServers: values.get('nat.stun_servers') as string[],
      refreshIntervalS: values.get('nat.refresh_interval') as number,
      candidateInterfaces: values.get('nat.candidate_interfaces') as string[],
    },
    reconcile: { intervalS: values.get('reconcile.interval') as number },
    health: { listen: s('health.listen')! },
    nodeApi: { socket: s('node_api.socket')! },
    bridge: { relayListenPort: values.get('bridge.relay_listen_port') as number },
  };
}

/**
 * Splits command-line arguments into config flags (--key value / --key=value, names from
 * flagName), `--config FILE`, and the rest. Throws ConfigError for an unknown flag or a
 * missing value.
 */
export function parseConfigFlags(args: readonly string[], extraBooleans: readonly string[] = []): {
  configFile: string | undefined;
  flags: Map<string, string>;
  booleans: Set<string>;
  positional: string[];
} {
  const byFlag = new Map(Object.keys(CONFIG_KEYS).map((k) => [flagName(k), k]));
  const flags = new Map<string, string>();
  const booleans = new Set<string>();
  const positional: string[] = [];
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
    const key = name === '--config' ? 'config' : byFlag.get(name);
    if (key === undefined) throw new ConfigError(name, 'unknown flag');
    const value = eq < 0 ? args[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new ConfigError(name, 'expected a value');
    if (key === 'config') configFile = value;
    else flags.set(key, value);
  }
  return { configFile, flags, booleans, positional };
}

/** Reads `file` (if given) and resolves the configuration from it, the environment and flags. */
export function loadConfig(file: string | undefined, flags: ReadonlyMap<string, string>, env = process.env, warn?: (m: string) => void): AgentConfig {
  let fileText: string | undefined;
  if (file !== undefined) {
    try {
      fileText = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError('--config', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
    if (fileText.length > 1 << 20) throw new ConfigError('--config', `${file} is larger than 1 MiB`);
  }
  return resolveConfig({ fileText, ...(file !== undefined ? { fileName: file } : {}), env, flags, ...(warn ? { warn } : {}) });
}
