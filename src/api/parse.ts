// Lenient parsers for every plexd API v1 body (plexd-api.md): unknown fields are ignored, missing
// optional ones tolerated, and each problem is reported with the field's path. Input is the value
// of JSON.parse; nothing here throws on hostile input.

import { FieldReader, isObject, parseRfc3339, isUuid, type ParseResult } from './fields.js';
import {
  MAX_REPORT_VALUE_BYTES,
  MAX_STATE_VALUE_BYTES,
  STATE_KEY_PATTERN,
  type NodeStateBlock,
  type NodeStateReportRequest,
  type NodeStateReportResponse,
  type StateEntry,
  EXECUTION_STATUSES,
  INGRESS_MODES,
  MAX_CANDIDATES,
  NAT_TYPES,
  NODE_MODES,
  RULE_ACTIONS,
  RULE_PROTOCOLS,
  type BridgeState,
  type CapabilitiesRequest,
  type CapabilitiesResponse,
  type DeregisterRequest,
  type EndpointRequest,
  type EndpointResponse,
  type ActionParam,
  type Execution,
  type ExecutionRefusal,
  type ExecutionReport,
  type ExecutionReportResponse,
  type HookInfo,
  type ActionInfo,
  INLINE_OUTPUT_MAX,
  type FirewallRule,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type IngressRule,
  type KeyRotateRequest,
  type KeyRotateResponse,
  type NatSummary,
  type PeerInfo,
  type Policy,
  type RegisterRequest,
  type RegisterResponse,
  type RelaySession,
  type SiteToSiteInfo,
  type SiteToSiteTunnel,
  type StateResponse,
  type UserAccessConfig,
  type UserAccessInfo,
  type UserAccessPeer,
} from './types.js';
import { parsePrefix } from '../core/ip.js';
import { isPrintable } from '../log/printable.js';

/** Longest bootstrap token (plexd-api.md: at most 512 bytes of printable ASCII). */
export const MAX_BOOTSTRAP_TOKEN = 512;

const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

/** Longest resource_handle: a DNS name's 253 characters (plexd uses the hostname by default). */
export const MAX_RESOURCE_HANDLE = 253;

/** Parses a `POST /v1/register` request body. */
export function parseRegisterRequest(body: unknown): ParseResult<RegisterRequest> {
  const r = new FieldReader(body);
  const project_id = r.string('project_id', 128);
  const resource_handle = r.string('resource_handle', MAX_RESOURCE_HANDLE);
  // Printed by `nodes list` and logged: no control, format or separator characters (nor NUL).
  if (!isPrintable(resource_handle)) r.fail('resource_handle', 'must not contain control or other unprintable characters');
  const bootstrap_token = r.string('bootstrap_token', MAX_BOOTSTRAP_TOKEN);
  if (bootstrap_token !== '' && !PRINTABLE_ASCII.test(bootstrap_token)) {
    r.fail('bootstrap_token', 'must be printable ASCII');
  }
  const nonce = r.string('nonce', 36);
  if (nonce !== '' && !isUuid(nonce)) r.fail('nonce', 'expected a UUID');
  const public_key = r.base64Key('public_key', 32);
  const value: RegisterRequest = { project_id, resource_handle, bootstrap_token, nonce: nonce.toLowerCase(), public_key };
  const mode = r.raw('mode');
  if (mode === undefined || mode === null) return r.result(value);
  return r.result({ ...value, mode: r.oneOf('mode', NODE_MODES) });
}

function readPeer(r: FieldReader): PeerInfo {
  const peer: { -readonly [K in keyof PeerInfo]: PeerInfo[K] } = {
    node_id: r.string('node_id', 128),
    mesh_ip: r.ip('mesh_ip'),
    public_key: r.base64Key('public_key', 32),
  };
  const psk = r.optBase64Key('psk', 32);
  if (psk !== undefined) peer.psk = psk;
  const endpoint = r.optEndpoint('endpoint');
  if (endpoint !== undefined) peer.endpoint = endpoint;
  const fallback = r.optEndpoint('fallback_endpoint');
  if (fallback !== undefined) peer.fallback_endpoint = fallback;
  const candidates = r.optEndpointList('candidates', MAX_CANDIDATES);
  if (candidates !== undefined && candidates.length > 0) peer.candidates = candidates;
  const allowed = readPrefixList(r, 'allowed_ips');
  if (allowed.length > 0) peer.allowed_ips = allowed;
  return peer;
}

/** Most STUN servers a control plane may offer. */
const MAX_OFFERED_STUN = 8;

/** The optional `stun_servers` offer of a register or state response ("HOST:PORT" strings; the
 *  agent resolves and checks each when it uses them). */
function readStunOffer(r: FieldReader): { stun_servers?: string[] } {
  const list = r.stringList('stun_servers', MAX_OFFERED_STUN, 261);
  return list.length === 0 ? {} : { stun_servers: list };
}

/** Parses a `201` body of `POST /v1/register`. */
export function parseRegisterResponse(body: unknown): ParseResult<RegisterResponse> {
  const r = new FieldReader(body);
  const value: RegisterResponse = {
    node_id: r.string('node_id', 128),
    mesh_ip: r.ip('mesh_ip'),
    signing_public_key: r.base64Key('signing_public_key', 32),
    signing_key_id: r.string('signing_key_id', 128),
    nsk: r.base64Key('nsk', 32),
    peer_snapshot: r.list('peer_snapshot', readPeer, true),
    domain_mesh_cidr: r.string('domain_mesh_cidr', 64),
    ...readStunOffer(r),
  };
  if (value.domain_mesh_cidr !== '' && parsePrefix(value.domain_mesh_cidr) === undefined) {
    r.fail('domain_mesh_cidr', 'expected a CIDR prefix');
  }
  return r.result(value);
}

function readNatSummary(r: FieldReader): NatSummary {
  const out: { endpoint?: string; nat_type?: NatSummary['nat_type'] } = {};
  const endpoint = r.optEndpoint('endpoint');
  if (endpoint !== undefined) out.endpoint = endpoint;
  if (r.raw('nat_type') !== undefined && r.raw('nat_type') !== null) out.nat_type = r.oneOfOr('nat_type', NAT_TYPES, 'unknown');
  return out;
}

/** Parses a `POST /v1/nodes/{id}/heartbeat` request; a missing nat_summary is `{}`. */
export function parseHeartbeatRequest(body: unknown): ParseResult<HeartbeatRequest> {
  const r = new FieldReader(body);
  return r.result({
    client_now: r.timestamp('client_now'),
    binary_checksum: r.optString('binary_checksum', 128) ?? '',
    binary_version: r.optString('binary_version', 128) ?? '',
    nat_summary: r.object('nat_summary', readNatSummary, true) ?? {},
    ...optional('user_access', r.object('user_access', readUserAccessInfo, true)),
    ...optional('site_to_site', r.object('site_to_site', readSiteToSiteInfo, true)),
  });
}

function optional<K extends string, V>(key: K, value: V | null): { [P in K]?: V } {
  return (value === null ? {} : { [key]: value }) as { [P in K]?: V };
}

function readUserAccessInfo(r: FieldReader): UserAccessInfo {
  const key = r.optBase64Key('public_key', 32);
  return {
    enabled: r.bool('enabled', false),
    interface_name: r.optString('interface_name', 15) ?? '',
    peer_count: r.int('peer_count', 0, 1_000_000, 0),
    listen_port: r.int('listen_port', 0, 65535, 0),
    ...(key === undefined ? {} : { public_key: key }),
  };
}

function readSiteToSiteInfo(r: FieldReader): SiteToSiteInfo {
  const key = r.optBase64Key('public_key', 32);
  return {
    enabled: r.bool('enabled', false),
    tunnel_count: r.int('tunnel_count', 0, 1_000_000, 0),
    ...(key === undefined ? {} : { public_key: key }),
  };
}

/** Parses a heartbeat response. */
export function parseHeartbeatResponse(body: unknown): ParseResult<HeartbeatResponse> {
  const r = new FieldReader(body);
  return r.result({
    accepted_at: r.timestamp('accepted_at'),
    reconcile: r.bool('reconcile', false),
    rotate_keys: r.bool('rotate_keys', false),
  });
}

/** Parses a `PUT /v1/nodes/{id}/endpoint` request; an unknown nat_type reads as "unknown". With
 *  a non-empty `candidates` list (ours), a missing `endpoint` is the first candidate. */
export function parseEndpointRequest(body: unknown): ParseResult<EndpointRequest> {
  const r = new FieldReader(body);
  const candidates = r.optEndpointList('candidates', MAX_CANDIDATES);
  const first = candidates?.[0];
  const endpoint = first !== undefined ? r.optEndpoint('endpoint') ?? first : r.endpoint('endpoint');
  return r.result({
    endpoint,
    nat_type: r.oneOfOr('nat_type', NAT_TYPES, 'unknown'),
    reported_at: r.optTimestamp('reported_at') ?? '',
    ...(candidates === undefined ? {} : { candidates }),
  });
}

/** Parses an endpoint response; `stale_after` may be seconds or an RFC 3339 time (converted to
 *  seconds after accepted_at). */
export function parseEndpointResponse(body: unknown): ParseResult<EndpointResponse> {
  const r = new FieldReader(body);
  const accepted_at = r.timestamp('accepted_at');
  const raw = r.raw('stale_after');
  let stale_after = 0;
  if (typeof raw === 'number' && Number.isFinite(raw) && raw >= 0) {
    stale_after = raw;
  } else if (typeof raw === 'string' && parseRfc3339(raw) !== undefined && parseRfc3339(accepted_at) !== undefined) {
    stale_after = Math.max(0, (parseRfc3339(raw)! - parseRfc3339(accepted_at)!) / 1000);
  } else {
    r.fail('stale_after', 'expected seconds or an RFC 3339 timestamp');
  }
  return r.result({ accepted_at, stale_after });
}

function readRule(r: FieldReader): FirewallRule {
  const action = r.oneOf('action', RULE_ACTIONS);
  const protocol = r.oneOfOr('protocol', RULE_PROTOCOLS, 'any');
  const source_cidr = r.optString('source_cidr', 64) ?? '0.0.0.0/0';
  const destination_cidr = r.optString('destination_cidr', 64) ?? '0.0.0.0/0';
  if (parsePrefix(source_cidr) === undefined) r.fail('source_cidr', 'expected a CIDR prefix');
  if (parsePrefix(destination_cidr) === undefined) r.fail('destination_cidr', 'expected a CIDR prefix');
  const ports = r.object('ports', (p) => ({ from: p.int('from', 0, 65535), to: p.int('to', 0, 65535) }), true);
  if (ports !== null && ports.from > ports.to) r.fail('ports', 'from must not exceed to');
  return { action, protocol, source_cidr, destination_cidr, ports };
}

/** Reads a list of firewall rules at the body root (a policy file) or at `rules`. */
export function parseRules(body: unknown): ParseResult<FirewallRule[]> {
  const wrapped = Array.isArray(body) ? { rules: body } : body;
  const r = new FieldReader(wrapped);
  return r.result(r.list('rules', readRule));
}

function readPolicy(r: FieldReader): Policy {
  return {
    revision_id: r.string('revision_id', 128),
    fingerprint: r.string('fingerprint', 128),
    rules: r.list('rules', readRule, true),
  };
}

function readSession(r: FieldReader): RelaySession {
  // relay_port is ours and optional; anything but a port number is ignored (lenient).
  const port = r.raw('relay_port');
  const relayPort = typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535 ? { relay_port: port } : {};
  // binding_key is ours and optional; present, it must be a key (a session silently stripped of
  // its authentication would be worse than a refused state).
  const key = r.optBase64Key('binding_key', 32);
  return {
    session_id: r.string('session_id', 128),
    peer_a_id: r.string('peer_a_id', 128),
    // Empty or absent: the relay learns that end from a relay binding (docs/nat.md).
    peer_a_endpoint: r.optEndpoint('peer_a_endpoint') ?? '',
    peer_b_id: r.string('peer_b_id', 128),
    peer_b_endpoint: r.optEndpoint('peer_b_endpoint') ?? '',
    expires_at: r.timestamp('expires_at'),
    ...relayPort,
    ...(key === undefined ? {} : { binding_key: key }),
  };
}

/** At most this many prefixes in one allowed_ips/subnets list of the bridge block. */
const MAX_BRIDGE_PREFIXES = 256;

/** A list of CIDR prefixes (absent/null -> []); a malformed element is an error naming its index. */
function readPrefixList(r: FieldReader, key: string): string[] {
  const list = r.stringList(key, MAX_BRIDGE_PREFIXES, 64);
  list.forEach((p, i) => {
    if (parsePrefix(p) === undefined) r.fail(`${key}[${i}]`, `expected a CIDR prefix, got ${JSON.stringify(p)}`);
  });
  return list;
}

function readUserAccessPeer(r: FieldReader): UserAccessPeer {
  const psk = r.optBase64Key('psk', 32);
  return {
    public_key: r.base64Key('public_key', 32),
    allowed_ips: readPrefixList(r, 'allowed_ips'),
    ...(psk === undefined ? {} : { psk }),
    label: r.optString('label', 128) ?? '',
  };
}

function readUserAccess(r: FieldReader): UserAccessConfig {
  const address = r.optString('address', 64);
  if (address !== undefined && parsePrefix(address) === undefined) r.fail('address', 'expected an address with a prefix length');
  return {
    enabled: r.bool('enabled', true),
    interface_name: r.optString('interface_name', 15) ?? 'wg-access',
    listen_port: r.int('listen_port', 1, 65535, 51822),
    ...(address === undefined ? {} : { address }),
    peers: r.list('peers', readUserAccessPeer, true),
  };
}

function readTunnel(r: FieldReader): SiteToSiteTunnel {
  const psk = r.optBase64Key('psk', 32);
  const tunnel_id = r.string('tunnel_id', 64);
  return {
    tunnel_id,
    remote_endpoint: r.optString('remote_endpoint', 261) ?? '',
    remote_public_key: r.base64Key('remote_public_key', 32),
    local_subnets: readPrefixList(r, 'local_subnets'),
    remote_subnets: readPrefixList(r, 'remote_subnets'),
    interface_name: r.optString('interface_name', 15) ?? `wg-s2s-${tunnel_id}`.slice(0, 15),
    listen_port: r.int('listen_port', 1, 65535),
    ...(psk === undefined ? {} : { psk }),
  };
}

function readIngressRule(r: FieldReader): IngressRule {
  const cert = r.optString('cert_pem', 64 * 1024);
  const key = r.optString('key_pem', 64 * 1024);
  return {
    rule_id: r.string('rule_id', 128),
    hostname: r.string('hostname', 253),
    listen_port: r.int('listen_port', 1, 65535, 443),
    target_addr: r.endpoint('target_addr'),
    mode: r.oneOf('mode', INGRESS_MODES),
    ...(cert === undefined ? {} : { cert_pem: cert }),
    ...(key === undefined ? {} : { key_pem: key }),
  };
}

function readBridge(r: FieldReader): BridgeState {
  const nat = r.raw('enable_nat');
  return {
    relay: r.object('relay', (x) => ({ sessions: x.list('sessions', readSession, true) }), true),
    user_access: r.object('user_access', readUserAccess, true),
    site_to_site: r.object('site_to_site', (x) => ({ enabled: x.bool('enabled', true), tunnels: x.list('tunnels', readTunnel, true) }), true),
    ingress: r.object('ingress', (x) => ({ enabled: x.bool('enabled', true), rules: x.list('rules', readIngressRule, true) }), true),
    ...(typeof nat === 'boolean' ? { enable_nat: nat } : {}),
    access_subnets: readPrefixList(r, 'access_subnets'),
  };
}

/** Parses a `GET /v1/nodes/{id}/state` response. */
export function parseStateResponse(body: unknown): ParseResult<StateResponse> {
  const r = new FieldReader(body);
  return r.result({
    node_id: r.optString('node_id', 128) ?? '',
    mesh_ip: r.optString('mesh_ip', 64) ?? '',
    peers: r.list('peers', readPeer, true),
    policy: r.object('policy', readPolicy, true),
    bridge: r.object('bridge', readBridge, true),
    ...readExecutions(r.raw('executions')),
    ...readStateBlock(r),
    ...readStunOffer(r),
  });
}

/** Parses a `POST /v1/keys/rotate` request. */
export function parseKeyRotateRequest(body: unknown): ParseResult<KeyRotateRequest> {
  const r = new FieldReader(body);
  return r.result({ new_public_key: r.base64Key('new_public_key', 32) });
}

/** Parses a `POST /v1/keys/rotate` response. */
export function parseKeyRotateResponse(body: unknown): ParseResult<KeyRotateResponse> {
  const r = new FieldReader(body);
  return r.result({
    rotation_id: r.string('rotation_id', 128),
    kid: r.string('kid', 128),
    wrap_key_version: r.int('wrap_key_version', 0, Number.MAX_SAFE_INTEGER, 0),
  });
}

/** Parses a `PUT /v1/nodes/{id}/capabilities` request; everything optional. */
export function parseCapabilitiesRequest(body: unknown): ParseResult<CapabilitiesRequest> {
  const r = new FieldReader(body);
  const out: { -readonly [K in keyof CapabilitiesRequest]: CapabilitiesRequest[K] } = {
    features: r.stringList('features', 256, 64),
  };
  const binary_version = r.optString('binary_version', 128);
  if (binary_version !== undefined) out.binary_version = binary_version;
  const os = r.optString('os', 64);
  if (os !== undefined) out.os = os;
  const arch = r.optString('arch', 64);
  if (arch !== undefined) out.arch = arch;
  const binary = r.object('binary', (x) => {
    const checksum = x.optString('checksum', 128);
    return { version: x.string('version', 128), ...(checksum === undefined ? {} : { checksum }) };
  }, true);
  if (binary !== null) out.binary = binary;
  if (r.raw('builtin_actions') !== undefined) out.builtin_actions = r.list('builtin_actions', readActionInfo, true).slice(0, MAX_MANIFEST_ENTRIES);
  if (r.raw('hooks') !== undefined) out.hooks = r.list('hooks', readHookInfo, true).slice(0, MAX_MANIFEST_ENTRIES);
  if ((out.builtin_actions?.length ?? 0) > MAX_MANIFEST_ENTRIES - 1 || (out.hooks?.length ?? 0) > MAX_MANIFEST_ENTRIES - 1) r.fail('hooks', `at most ${MAX_MANIFEST_ENTRIES - 1} actions and hooks each`);
  return r.result(out);
}

/** Parses a capabilities response. */
export function parseCapabilitiesResponse(body: unknown): ParseResult<CapabilitiesResponse> {
  const r = new FieldReader(body);
  return r.result({ accepted_at: r.timestamp('accepted_at') });
}

/** Parses a `POST /v1/nodes/{id}/deregister` request; `undefined` (empty body) is `{}`. */
export function parseDeregisterRequest(body: unknown): ParseResult<DeregisterRequest> {
  const r = new FieldReader(body === undefined ? {} : body);
  const reason = r.optString('reason', 256);
  return r.result(reason === undefined ? {} : { reason });
}

/** Parses a `POST /v1/nodes/{id}/executions/{exec_id}` request (upstream's ExecutionCallbackRequest;
 *  inline output over INLINE_OUTPUT_MAX decoded bytes is the caller's 413). */
export function parseExecutionReport(body: unknown): ParseResult<ExecutionReport> {
  const r = new FieldReader(body);
  const status = r.oneOf('status', EXECUTION_STATUSES.filter((s) => s !== 'pending') as ExecutionReport['status'][]);
  const out: { -readonly [K in keyof ExecutionReport]: ExecutionReport[K] } = { status };
  const raw = r.raw('exit_code');
  if (raw !== undefined && raw !== null) out.exit_code = r.int('exit_code', -2147483648, 2147483647);
  const error = r.optString('error', 4096);
  if (error !== undefined) out.error = error;
  const declared = r.raw('declared_output_bytes');
  if (declared !== undefined && declared !== null && declared !== 0) out.declared_output_bytes = r.int('declared_output_bytes', 1, Number.MAX_SAFE_INTEGER);
  const output = r.object('output', (x) => {
    const o: { inline?: string; object_key?: string; sha256?: string } = {};
    // base64 of INLINE_OUTPUT_MAX bytes plus slack; the decoded size is checked by the caller.
    const inline = x.optString('inline', Math.ceil(INLINE_OUTPUT_MAX / 3) * 4 + 4);
    if (inline !== undefined) {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(inline)) x.fail('inline', 'expected base64');
      o.inline = inline;
    }
    const key = x.optString('object_key', 512);
    if (key !== undefined) o.object_key = key;
    const sha = x.optString('sha256', 64);
    if (sha !== undefined) {
      if (!/^[0-9a-f]{64}$/.test(sha)) x.fail('sha256', 'expected 64 lowercase hex digits');
      o.sha256 = sha;
    }
    return o;
  }, true);
  if (output !== null) out.output = output;
  return r.result(out);
}

// ---- remote actions (docs/operations.md "Remote actions") ----------------------------------------

/** The action kinds an executions entry may name (upstream's ActionKind). */
export const ACTION_KINDS = ['builtin', 'hook'] as const;
/** Most parameters one execution may carry, and the longest flattened value (bytes of UTF-16). */
export const MAX_EXECUTION_PARAMS = 64;
export const MAX_EXECUTION_PARAM_LENGTH = 4096;
/** Most entries of one executions block the node reads; the rest wait for a later pull. */
export const MAX_EXECUTIONS_PER_STATE = 256;
/** Most built-in actions or hooks one capabilities manifest lists (plus one, to detect excess). */
export const MAX_MANIFEST_ENTRIES = 257;
/** Parameter names: letters, digits, `_`, `-` and `.`, at most 128. */
export const PARAM_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** Flattens an execution's `parameters` (upstream "Parameter Passing"): a JSON string is unquoted,
 *  any other value becomes its JSON text; null/absent is {}. Refusal reason on a malformed object. */
export function flattenParameters(v: unknown): Record<string, string> | string {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) return 'parameters is not an object';
  const out: Record<string, string> = {};
  const keys = Object.keys(v);
  if (keys.length > MAX_EXECUTION_PARAMS) return `more than ${MAX_EXECUTION_PARAMS} parameters`;
  for (const k of keys) {
    if (!PARAM_NAME.test(k)) return `parameter name ${JSON.stringify(k.slice(0, 32))} is not [A-Za-z0-9_.-]{1,128}`;
    const raw = v[k];
    const text = typeof raw === 'string' ? raw : JSON.stringify(raw);
    if (text.length > MAX_EXECUTION_PARAM_LENGTH) return `parameter ${k} is longer than ${MAX_EXECUTION_PARAM_LENGTH} characters`;
    out[k] = text;
  }
  return out;
}

/** Parses one entry of the state's `executions` block; a refusal names the first problem. */
export function parseExecutionEntry(raw: unknown): ParseResult<Execution> {
  const r = new FieldReader(raw);
  const params = flattenParameters(r.raw('parameters'));
  if (typeof params === 'string') r.fail('parameters', params);
  const out: { -readonly [K in keyof Execution]: Execution[K] } = {
    execution_id: r.string('execution_id', 128),
    action: r.string('action', 128),
    type: r.optString('type', 32) ?? 'builtin',
    parameters: typeof params === 'string' ? {} : params,
    status: r.oneOf('status', ['pending', 'ack', 'started'] as const),
    requested_at: r.optTimestamp('requested_at') ?? '',
    expires_at: r.optTimestamp('expires_at') ?? '',
  };
  const checksum = r.optString('checksum', 80);
  if (checksum !== undefined) {
    if (!/^sha256:[0-9a-f]{64}$/.test(checksum)) r.fail('checksum', 'expected "sha256:" and 64 lowercase hex digits');
    out.checksum = checksum;
  }
  if (r.raw('cancel_requested') === true) out.cancel_requested = true;
  return r.result(out);
}

/** The executions block, lenient per entry: a malformed entry is refused with its reason and the
 *  rest (and the rest of the state) still applies. */
function readExecutions(v: unknown): { executions: Execution[]; executions_refused?: ExecutionRefusal[] } {
  const executions: Execution[] = [];
  const refused: ExecutionRefusal[] = [];
  if (v !== undefined && v !== null && !Array.isArray(v)) refused.push({ execution_id: '', reason: 'executions is not a list' });
  const list = Array.isArray(v) ? v : [];
  for (const [i, raw] of list.entries()) {
    if (i >= MAX_EXECUTIONS_PER_STATE) break;
    const p = parseExecutionEntry(raw);
    if (p.ok) executions.push(p.value);
    else {
      const id = isObject(raw) && typeof raw.execution_id === 'string' ? raw.execution_id.slice(0, 128) : '';
      refused.push({ execution_id: id, reason: p.errors.map((e) => `${e.field} ${e.message}`).join('; ').slice(0, 512) });
    }
  }
  return refused.length > 0 ? { executions, executions_refused: refused } : { executions };
}

/** An optional descriptive string: '' and absent are both ''. */
function optText(r: FieldReader, key: string, max: number): string {
  return r.raw(key) === '' ? '' : (r.optString(key, max) ?? '');
}

function readParam(r: FieldReader): ActionParam {
  const out: { -readonly [K in keyof ActionParam]: ActionParam[K] } = { name: r.string('name', 128), type: r.optString('type', 32) ?? 'string', required: r.bool('required', false) };
  const d = r.optString('default', 1024);
  if (d !== undefined) out.default = d;
  const desc = optText(r, 'description', 1024);
  if (desc !== '') out.description = desc;
  return out;
}

function readActionInfo(r: FieldReader): ActionInfo {
  return { name: r.string('name', 128), description: optText(r, 'description', 1024), parameters: r.list('parameters', readParam, true).slice(0, MAX_EXECUTION_PARAMS) };
}

function readHookInfo(r: FieldReader): HookInfo {
  const out: { -readonly [K in keyof HookInfo]: HookInfo[K] } = {
    name: r.string('name', 128),
    description: optText(r, 'description', 1024),
    source: r.optString('source', 32) ?? 'script',
    checksum: r.string('checksum', 80),
    parameters: r.list('parameters', readParam, true).slice(0, MAX_EXECUTION_PARAMS),
  };
  const t = r.optString('timeout', 32);
  if (t !== undefined) out.timeout = t;
  return out;
}

/** Parses a `POST /v1/nodes/{id}/executions/{exec_id}` response. */
export function parseExecutionReportResponse(body: unknown): ParseResult<ExecutionReportResponse> {
  const r = new FieldReader(body);
  const out: { -readonly [K in keyof ExecutionReportResponse]: ExecutionReportResponse[K] } = {
    execution_id: r.optString('execution_id', 128) ?? '',
    status: r.oneOf('status', EXECUTION_STATUSES),
  };
  const url = r.optString('output_upload_url', 2048);
  if (url !== undefined) out.output_upload_url = url;
  return r.result(out);
}

// ---- Heartbeat policy report with per-rule hits (ours, issue 21) ----

import { MAX_RULE_HITS, type HeartbeatPolicyReport, type RuleHits } from './types.js';

/** The `policy` member of a heartbeat body: undefined when absent or null (upstream agents),
 *  else the report or every problem with it (counters are non-negative safe integers, at most
 *  MAX_RULE_HITS entries). */
export function parseHeartbeatPolicyReport(body: unknown): ParseResult<HeartbeatPolicyReport | undefined> {
  const r = new FieldReader(body);
  const report = r.object('policy', (p): HeartbeatPolicyReport => {
    const hits = p.raw('rule_hits');
    if (Array.isArray(hits) && hits.length > MAX_RULE_HITS) p.fail('rule_hits', `more than ${MAX_RULE_HITS} elements`);
    const list = Array.isArray(hits) && hits.length > MAX_RULE_HITS ? [] : p.list('rule_hits', (h): RuleHits => ({ packets: h.int('packets', 0, Number.MAX_SAFE_INTEGER), bytes: h.int('bytes', 0, Number.MAX_SAFE_INTEGER) }), true);
    return {
      revision_id: p.optString('revision_id', 64) ?? null,
      fingerprint: p.optString('fingerprint', 128) ?? null,
      mode: p.optString('mode', 32) ?? 'unknown',
      ...(hits === undefined || hits === null ? {} : { rule_hits: list }),
    };
  }, true);
  return r.result(report ?? undefined);
}

// ---- Telemetry upload (issue 18): one record of each kind; the control plane parses every line
// or array element with these and refuses the batch naming the bad ones.

import { LOG_SEVERITIES, type AuditEntry, type LogLine, type MetricPoint } from './types.js';

/** Longest log message and audit raw text accepted (upstream truncates file lines at 16 KiB). */
export const MAX_TELEMETRY_TEXT = 64 * 1024;

/** Parses one metric point (`data` must be a JSON object). */
export function parseMetricPoint(body: unknown): ParseResult<MetricPoint> {
  const r = new FieldReader(body);
  const timestamp = r.timestamp('timestamp');
  const group = r.string('group', 64);
  const peer_id = r.optString('peer_id', 128);
  const data = r.raw('data');
  if (typeof data !== 'object' || data === null || Array.isArray(data)) r.fail('data', 'expected a JSON object');
  const out: MetricPoint = { timestamp, group, ...(peer_id === undefined ? {} : { peer_id }), data: (data ?? {}) as Record<string, unknown> };
  return r.result(out);
}

/** Parses one log line: a severity of LOG_SEVERITIES, a non-empty message, a timestamp. */
export function parseLogLine(body: unknown): ParseResult<LogLine> {
  const r = new FieldReader(body);
  const severity = r.oneOf('severity', LOG_SEVERITIES);
  const message = r.string('message', MAX_TELEMETRY_TEXT);
  const timestamp = r.timestamp('timestamp');
  const unit = r.optString('unit', 512);
  const hostname = r.optString('hostname', 255);
  return r.result({ severity, message, timestamp, ...(unit === undefined ? {} : { unit }), ...(hostname === undefined ? {} : { hostname }) });
}

/** Parses one audit entry; `subject` and `object` are kept as given (any JSON). */
export function parseAuditEntry(body: unknown): ParseResult<AuditEntry> {
  const r = new FieldReader(body);
  const timestamp = r.timestamp('timestamp');
  const source = r.string('source', 64);
  const event_type = r.string('event_type', 128);
  const action = r.string('action', 128);
  const result = r.string('result', 64);
  // Upstream sends "" for an unknown hostname or raw record: empty is fine here.
  const text = (key: string, max: number): string => {
    const v = r.raw(key);
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string' || v.length > max) r.fail(key, `expected a string of at most ${max} characters`);
    return typeof v === 'string' ? v : '';
  };
  const hostname = text('hostname', 255);
  const raw = text('raw', MAX_TELEMETRY_TEXT);
  return r.result({ timestamp, source, event_type, subject: r.raw('subject') ?? null, object: r.raw('object') ?? null, action, result, hostname, raw });
}

// ---- Node state and secrets ----

function readStateEntry(r: FieldReader): StateEntry {
  const key = r.string('key', 128);
  if (key !== '' && !STATE_KEY_PATTERN.test(key)) r.fail('key', `expected ${STATE_KEY_PATTERN.source}`);
  const value = r.raw('value');
  if (typeof value !== 'string' || Buffer.byteLength(value) > MAX_STATE_VALUE_BYTES) r.fail('value', `expected a string of at most ${MAX_STATE_VALUE_BYTES} bytes`);
  const tag = r.optString('workload_tag', 128);
  return { key, value: typeof value === 'string' ? value : '', ...(tag === undefined || tag === '' ? {} : { workload_tag: tag }) };
}

function readNodeStateBlock(r: FieldReader): NodeStateBlock {
  return { metadata: r.list('metadata', readStateEntry, true), data: r.list('data', readStateEntry, true), reports: r.list('reports', readStateEntry, true) };
}

/** The `state` block of a state response: absent stays absent (an older server), null is null. */
function readStateBlock(r: FieldReader): { state?: NodeStateBlock | null } {
  return r.raw('state') === undefined ? {} : { state: r.object('state', readNodeStateBlock, true) };
}

/** Parses a `PUT /v1/nodes/{id}/state/reports/{key}` request. */
export function parseNodeStateReportRequest(body: unknown): ParseResult<NodeStateReportRequest> {
  const r = new FieldReader(body);
  const value = r.raw('value');
  if (typeof value !== 'string') r.fail('value', 'expected a string');
  else if (Buffer.byteLength(value) > MAX_REPORT_VALUE_BYTES) r.fail('value', `more than ${MAX_REPORT_VALUE_BYTES} bytes`);
  const tag = r.optString('workload_tag', 128);
  return r.result({ value: typeof value === 'string' ? value : '', ...(tag === undefined || tag === '' ? {} : { workload_tag: tag }) });
}

/** Parses a `PUT /v1/nodes/{id}/state/reports/{key}` response. */
export function parseNodeStateReportResponse(body: unknown): ParseResult<NodeStateReportResponse> {
  const r = new FieldReader(body);
  return r.result({ accepted_at: r.timestamp('accepted_at'), key: r.string('key', 128) });
}
