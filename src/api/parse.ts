// Lenient parsers for every plexd API v1 body (plexd-api.md): unknown fields are ignored, missing
// optional ones tolerated, and each problem is reported with the field's path. Input is the value
// of JSON.parse; nothing here throws on hostile input.

import { FieldReader, parseRfc3339, isUuid, type ParseResult } from './fields.js';
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
  type Execution,
  type ExecutionReport,
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

function readExecution(r: FieldReader): Execution {
  const args = r.raw('args');
  return {
    execution_id: r.string('execution_id', 128),
    action: r.string('action', 128),
    args: typeof args === 'object' && args !== null && !Array.isArray(args) ? (args as Record<string, unknown>) : {},
    status: r.oneOfOr('status', EXECUTION_STATUSES, 'pending'),
    created_at: r.optTimestamp('created_at') ?? '',
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
    executions: r.list('executions', readExecution, true),
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

/** Parses a `POST /v1/nodes/{id}/executions/{exec_id}` request. */
export function parseExecutionReport(body: unknown): ParseResult<ExecutionReport> {
  const r = new FieldReader(body);
  const status = r.oneOf('status', EXECUTION_STATUSES.filter((s) => s !== 'pending') as ExecutionReport['status'][]);
  const out: { -readonly [K in keyof ExecutionReport]: ExecutionReport[K] } = { status };
  const raw = r.raw('exit_code');
  if (raw !== undefined && raw !== null) out.exit_code = r.int('exit_code', -2147483648, 2147483647);
  const output = r.optString('output', 65536);
  if (output !== undefined) out.output = output;
  const reported_at = r.optTimestamp('reported_at');
  if (reported_at !== undefined) out.reported_at = reported_at;
  return r.result(out);
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
