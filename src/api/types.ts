// plexd control-plane API v1 request and response bodies (docs: ../shared/docs/plexd-api.md).
// Plain data, snake_case as on the wire; parsers live in parse.ts, the server and the agent's
// client both use these.

/** NAT classification reported by an agent (plexd-api.md "Mesh, NAT, relay"). */
export const NAT_TYPES = ['full_cone', 'restricted', 'port_restricted', 'symmetric', 'unknown'] as const;
/** One of NAT_TYPES. */
export type NatType = (typeof NAT_TYPES)[number];

/** `POST /v1/register` request (unauthenticated). */
export interface RegisterRequest {
  readonly project_id: string;
  readonly resource_handle: string;
  /** At most 512 bytes of printable ASCII. */
  readonly bootstrap_token: string;
  /** UUID (v4 by convention), one per logical registration, reused across retries. */
  readonly nonce: string;
  /** Base64 X25519 public key (32 bytes). */
  readonly public_key: string;
  /** Extension of ours: "bridge" asks for a mesh IP at the top of the range. Absent -> "node". */
  readonly mode?: NodeMode;
}

/** Agent modes (plexd config `mode`). */
export const NODE_MODES = ['node', 'bridge'] as const;
/** One of NODE_MODES. */
export type NodeMode = (typeof NODE_MODES)[number];

/** One mesh peer as the control plane describes it. */
export interface PeerInfo {
  readonly node_id: string;
  /** The peer's mesh address (no prefix; it is a /32 or /128). */
  readonly mesh_ip: string;
  /** Base64 X25519 public key. */
  readonly public_key: string;
  /** Base64 32-byte per-pair pre-shared key; ours always sends it. */
  readonly psk?: string;
  /** Last reported "ip:port". */
  readonly endpoint?: string;
  /** A relay "ip:port" to use when the direct endpoint does not work. */
  readonly fallback_endpoint?: string;
  /**
   * Ours (additive, docs/nat.md "Endpoint candidates"): every "ip:port" the peer may be reached
   * at, in its order of preference (LAN first, then STUN reflexive, then relay); at most
   * MAX_CANDIDATES. `endpoint` keeps its upstream meaning next to it.
   */
  readonly candidates?: readonly string[];
  /**
   * Ours (additive, docs/control-plane.md "User access and site-to-site"): prefixes routed to this
   * peer besides its mesh_ip (a bridge's site subnets, access subnets and, with the bridge's
   * enable_nat false, the access range). Agents add them to the peer's allowed IPs and route them
   * to the mesh interface. Absent: none.
   */
  readonly allowed_ips?: readonly string[];
}

/** Most endpoint candidates one node reports (and one peer entry carries). */
export const MAX_CANDIDATES = 16;

/** `201` response of `POST /v1/register`. */
export interface RegisterResponse {
  /** UUID of the node; also its id in every `/v1/nodes/{id}` path. */
  readonly node_id: string;
  readonly mesh_ip: string;
  /** Base64 Ed25519 public key that signs events. */
  readonly signing_public_key: string;
  readonly signing_key_id: string;
  /** Base64 node secret key (32 bytes); with node_id it forms the bearer credential. */
  readonly nsk: string;
  readonly peer_snapshot: readonly PeerInfo[];
  /** e.g. "10.100.0.0/16". */
  readonly domain_mesh_cidr: string;
  /** Ours (additive): STUN servers ("HOST:PORT") the control plane offers; used when the agent
   *  has no nat.stun_servers of its own. */
  readonly stun_servers?: readonly string[];
}

/** `nat_summary` of a heartbeat: `{}` before NAT discovery. */
export interface NatSummary {
  readonly endpoint?: string;
  readonly nat_type?: NatType;
}

/** `POST /v1/nodes/{id}/heartbeat` request. */
export interface HeartbeatRequest {
  /** RFC 3339; more than 60 s off the server clock -> 400 clock_skew. */
  readonly client_now: string;
  /** SHA-256 hex of the agent binary (free text tolerated). */
  readonly binary_checksum: string;
  readonly binary_version: string;
  readonly nat_summary: NatSummary;
  /** A bridge's user-access interface (upstream's HeartbeatRequest.UserAccess); absent otherwise. */
  readonly user_access?: UserAccessInfo;
  /** A bridge's site-to-site tunnels; absent otherwise. */
  readonly site_to_site?: SiteToSiteInfo;
}

/** Heartbeat `user_access`. `public_key` is ours (additive): the access interface's key, which
 *  the control plane prints into client configs (the private key never leaves the bridge). */
export interface UserAccessInfo {
  readonly enabled: boolean;
  readonly interface_name: string;
  readonly peer_count: number;
  readonly listen_port: number;
  readonly public_key?: string;
}

/** Heartbeat `site_to_site`. `public_key` is ours: the key of every wg-s2s-* interface. */
export interface SiteToSiteInfo {
  readonly enabled: boolean;
  readonly tunnel_count: number;
  readonly public_key?: string;
}

/** `POST /v1/nodes/{id}/heartbeat` response. */
export interface HeartbeatResponse {
  readonly accepted_at: string;
  /** Pull state now. */
  readonly reconcile: boolean;
  /** Rotate the mesh key (POST /v1/keys/rotate). */
  readonly rotate_keys: boolean;
}

/** `PUT /v1/nodes/{id}/endpoint` request. */
export interface EndpointRequest {
  readonly endpoint: string;
  readonly nat_type: NatType;
  readonly reported_at: string;
  /** Ours (additive): the node's endpoint candidates, deduplicated, in its order of preference.
   *  With candidates, `endpoint` may be omitted: it is then the first candidate. */
  readonly candidates?: readonly string[];
}

/** `PUT /v1/nodes/{id}/endpoint` response. */
export interface EndpointResponse {
  readonly accepted_at: string;
  /** Seconds after accepted_at when the report goes stale; next report at
   *  min(60 s, stale_after - 30 s), never sooner than 10 s. */
  readonly stale_after: number;
}

/** Port range of a firewall rule, inclusive. */
export interface PortRange {
  readonly from: number;
  readonly to: number;
}

/** Firewall rule actions. */
export const RULE_ACTIONS = ['allow', 'deny'] as const;
/** Firewall rule protocols. */
export const RULE_PROTOCOLS = ['any', 'tcp', 'udp', 'icmp'] as const;

/** One firewall rule of a policy. */
export interface FirewallRule {
  readonly action: (typeof RULE_ACTIONS)[number];
  readonly protocol: (typeof RULE_PROTOCOLS)[number];
  readonly source_cidr: string;
  readonly destination_cidr: string;
  /** null: all ports (and for icmp/any). */
  readonly ports: PortRange | null;
}

/** The policy block of a state: rules plus a revision and a fingerprint (hex SHA-256 of the rules). */
export interface Policy {
  readonly revision_id: string;
  readonly fingerprint: string;
  readonly rules: readonly FirewallRule[];
}

/** One relay session a bridge forwards (plexd-api.md "Relay"). */
export interface RelaySession {
  readonly session_id: string;
  readonly peer_a_id: string;
  readonly peer_a_endpoint: string;
  readonly peer_b_id: string;
  readonly peer_b_endpoint: string;
  readonly expires_at: string;
  /**
   * Ours (additive): the bridge's UDP port for this session alone (docs/nat.md "One relay port per
   * session"). Absent: the session is served on the bridge's relay port (51821), upstream's model.
   */
  readonly relay_port?: number;
  /**
   * Ours (additive): base64 of 32 random bytes, the key of this session's authenticated relay
   * bindings (docs/nat.md "Authenticated bindings"). Sent only to the session's two peers and its
   * bridge. Absent: bindings are unauthenticated (upstream; hand-written relay session files).
   */
  readonly binding_key?: string;
}

/** One user-access client of a bridge (plexd-api.md "Bridge access side"): any WireGuard client. */
export interface UserAccessPeer {
  readonly public_key: string;
  /** The client's access address(es), e.g. ["10.101.0.2/32"]. */
  readonly allowed_ips: readonly string[];
  /** Base64 pre-shared key; absent: none. */
  readonly psk?: string;
  readonly label: string;
}

/** `bridge.user_access`: the bridge's `wg-access` interface and its clients. */
export interface UserAccessConfig {
  readonly enabled: boolean;
  /** Default "wg-access". */
  readonly interface_name: string;
  /** Default 51822. */
  readonly listen_port: number;
  /** Ours (additive): the bridge's own address on the access interface with the access range's
   *  prefix length, e.g. "10.101.0.1/16". Absent: the agent's bridge.access_address, if any. */
  readonly address?: string;
  readonly peers: readonly UserAccessPeer[];
}

/** One site-to-site tunnel of a bridge: its own WireGuard interface to a partner gateway. */
export interface SiteToSiteTunnel {
  readonly tunnel_id: string;
  /** "HOST:PORT" of the partner gateway; "" when the partner connects first. */
  readonly remote_endpoint: string;
  readonly remote_public_key: string;
  /** Subnets on our side the partner may reach (the mesh CIDR, at least). */
  readonly local_subnets: readonly string[];
  /** Subnets behind the partner gateway: the peer's allowed IPs and the bridge's routes. */
  readonly remote_subnets: readonly string[];
  /** Default "wg-s2s-<tunnel_id>" (at most 15 characters: Linux IFNAMSIZ). */
  readonly interface_name: string;
  /** From 51823 upward, one per tunnel. */
  readonly listen_port: number;
  /** Base64 pre-shared key; absent: none. */
  readonly psk?: string;
}

/** `bridge.site_to_site`: at most 10 tunnels (upstream's limit). */
export interface SiteToSiteConfig {
  readonly enabled: boolean;
  readonly tunnels: readonly SiteToSiteTunnel[];
}

/** How an ingress rule serves TLS. */
export const INGRESS_MODES = ['passthrough', 'terminate', 'acme'] as const;
/** One of INGRESS_MODES. */
export type IngressMode = (typeof INGRESS_MODES)[number];

/** One public ingress rule: connections for `hostname` (TLS SNI) on `listen_port` go to `target_addr`. */
export interface IngressRule {
  readonly rule_id: string;
  readonly hostname: string;
  readonly listen_port: number;
  /** "MESH_IP:PORT". */
  readonly target_addr: string;
  readonly mode: IngressMode;
  /** PEM certificate chain and key (mode terminate only). */
  readonly cert_pem?: string;
  readonly key_pem?: string;
}

/** `bridge.ingress`: public ingress rules (at most bridge.max_ingress_rules, 20). */
export interface IngressConfig {
  readonly enabled: boolean;
  readonly rules: readonly IngressRule[];
}

/** The bridge block of a state; null on ordinary nodes. Every child is "present-but-nullable":
 *  `null` or absent tears that service down (upstream's reconcile handlers). */
export interface BridgeState {
  readonly relay: { readonly sessions: readonly RelaySession[] } | null;
  readonly user_access?: UserAccessConfig | null;
  readonly site_to_site?: SiteToSiteConfig | null;
  readonly ingress?: IngressConfig | null;
  /** Masquerade user traffic to the bridge's mesh IP (default true); false: mesh nodes see the
   *  user's access address (the control plane routes the access range to the bridge). */
  readonly enable_nat?: boolean;
  /** Subnets behind the bridge's access side that mesh nodes reach through it. */
  readonly access_subnets?: readonly string[];
}

/** Execution states in order: pending -> ack -> started -> succeeded | failed | cancelled. */
export const EXECUTION_STATUSES = ['pending', 'ack', 'started', 'succeeded', 'failed', 'cancelled'] as const;
/** One of EXECUTION_STATUSES. */
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];

/** A remote action assigned to a node: one entry of the state's `executions` block (upstream's
 *  NodeStateExecution; docs/operations.md "Remote actions"). A delivery queue, not desired state:
 *  the entry reappears on every pull until the execution is terminal. */
export interface Execution {
  readonly execution_id: string;
  readonly action: string;
  /** `builtin` or `hook` (ACTION_KINDS); anything else is refused with unsupported_action_type. */
  readonly type: string;
  /** Flattened parameters: a JSON string unquoted, any other value as its JSON text. */
  readonly parameters: Readonly<Record<string, string>>;
  readonly status: ExecutionStatus;
  readonly requested_at: string;
  /** Absolute deadline (RFC 3339); '' when absent (the node refuses such an entry). */
  readonly expires_at: string;
  /** Ours (additive): for a hook, the SHA-256 the control plane approved ("sha256:<hex>"). */
  readonly checksum?: string;
  /** Ours (additive): the operator asked to cancel this (started) execution. */
  readonly cancel_requested?: boolean;
}

/** An executions entry the node could not read; refused (never run), the rest of the state applies. */
export interface ExecutionRefusal {
  readonly execution_id: string;
  readonly reason: string;
}

/** `GET /v1/nodes/{id}/state` response: authoritative; a null block means "not populated". */
export interface StateResponse {
  readonly node_id: string;
  readonly mesh_ip: string;
  readonly peers: readonly PeerInfo[];
  readonly policy: Policy | null;
  readonly bridge: BridgeState | null;
  readonly executions: readonly Execution[];
  /** Entries of the executions block that were malformed (present only when some were). */
  readonly executions_refused?: readonly ExecutionRefusal[];
  /** The node state block (metadata, data, reports); null: not populated, absent: an older server. */
  readonly state?: NodeStateBlock | null;
  /** Ours (additive): STUN servers the control plane offers (as in RegisterResponse). */
  readonly stun_servers?: readonly string[];
}

/** `POST /v1/keys/rotate` request (authenticated; the node comes from the credential). */
export interface KeyRotateRequest {
  readonly new_public_key: string;
}

/** `POST /v1/keys/rotate` response. */
export interface KeyRotateResponse {
  readonly rotation_id: string;
  readonly kid: string;
  readonly wrap_key_version: number;
}

/** `PUT /v1/nodes/{id}/capabilities` request; every field optional, unknown ones ignored. Upstream's
 *  CapabilitiesPayload (binary, builtin_actions, hooks) plus our older flat fields. */
export interface CapabilitiesRequest {
  readonly binary_version?: string;
  readonly os?: string;
  readonly arch?: string;
  /** Feature names, e.g. "relay", "stun", "psk". */
  readonly features: readonly string[];
  readonly binary?: { readonly version: string; readonly checksum?: string };
  readonly builtin_actions?: readonly ActionInfo[];
  readonly hooks?: readonly HookInfo[];
}

/** One parameter an action takes (upstream's ParameterDef). */
export interface ActionParam {
  readonly name: string;
  readonly type: string;
  readonly required: boolean;
  readonly default?: string;
  readonly description?: string;
}

/** A built-in action in the capabilities manifest. */
export interface ActionInfo {
  readonly name: string;
  readonly description: string;
  readonly parameters: readonly ActionParam[];
}

/** A hook in the capabilities manifest: `checksum` is "sha256:<hex>" of the file the node pinned. */
export interface HookInfo {
  readonly name: string;
  readonly description: string;
  readonly source: string;
  readonly checksum: string;
  readonly parameters: readonly ActionParam[];
  readonly timeout?: string;
}

/** `PUT /v1/nodes/{id}/capabilities` response. */
export interface CapabilitiesResponse {
  readonly accepted_at: string;
}

/** `POST /v1/nodes/{id}/deregister` request; the body may be empty. Response: 204 No Content. */
export interface DeregisterRequest {
  readonly reason?: string;
}

/** `POST /v1/nodes/{id}/executions/{exec_id}` request (upstream's ExecutionCallbackRequest): one
 *  lifecycle transition, ack -> started -> succeeded | failed | cancelled. */
export interface ExecutionReport {
  readonly status: Exclude<ExecutionStatus, 'pending'>;
  readonly exit_code?: number;
  readonly error?: string;
  /** On a repeated `started`: the size of an output over INLINE_OUTPUT_MAX, to be uploaded. */
  readonly declared_output_bytes?: number;
  readonly output?: ExecutionOutput;
}

/** An execution's output on a terminal report: inline base64 (at most INLINE_OUTPUT_MAX bytes
 *  decoded) or an uploaded object's key and lowercase-hex SHA-256. */
export interface ExecutionOutput {
  readonly inline?: string;
  readonly object_key?: string;
  readonly sha256?: string;
}

/** Most bytes of output carried inline (decoded): 16 KiB. */
export const INLINE_OUTPUT_MAX = 16 * 1024;

/** `POST /v1/nodes/{id}/executions/{exec_id}` response. */
export interface ExecutionReportResponse {
  readonly execution_id: string;
  readonly status: ExecutionStatus;
  /** One-time PUT URL, on the report that declared an over-inline output. */
  readonly output_upload_url?: string;
}

// ---- Heartbeat policy report with per-rule hits (ours, issue 21: the dashboard's counters) ----

/** Most `rule_hits` entries a heartbeat's policy report may carry (rules beyond are not reported). */
export const MAX_RULE_HITS = 1000;

/** Packets and bytes one compiled rule decided since its revision took force (policy/filter.ts). */
export interface RuleHits {
  readonly packets: number;
  readonly bytes: number;
}

/** Heartbeat `policy` (ours, docs/agent.md; servers that do not know it ignore it): the revision in
 *  force and, by compiled-rule index, what each rule decided. */
export interface HeartbeatPolicyReport {
  readonly revision_id: string | null;
  readonly fingerprint: string | null;
  readonly mode: string;
  /** Absent from agents before issue 21. */
  readonly rule_hits?: readonly RuleHits[];
}

// ---- Telemetry upload (issue 18; upstream observability/*: metrics-collection, log-forwarding,
// audit-forwarding). POST /v1/nodes/{id}/metrics takes a JSON array of MetricPoint; /logs and
// /audit take NDJSON of LogLine / AuditEntry. Every request carries X-Plexsphere-Sent-At and is
// gzip-compressed above 1 KiB; 202 answers with an IngestReceipt.

/** The header every telemetry POST carries: RFC 3339 UTC time of sending. */
export const SENT_AT_HEADER = 'x-plexsphere-sent-at';
/** Ours: the batch's id, so a batch re-sent after a lost 202 is stored once. */
export const BATCH_ID_HEADER = 'x-plexd-batch-id';
/** Bodies above this many bytes are sent gzip-compressed (upstream: 1 KiB). */
export const GZIP_THRESHOLD_BYTES = 1024;

/** The three telemetry kinds, named as their endpoint path segment. */
export const TELEMETRY_KINDS = ['metrics', 'logs', 'audit'] as const;
export type TelemetryKind = (typeof TELEMETRY_KINDS)[number];

/** Metric groups (upstream metrics-collection "Metric Groups"). */
export const METRIC_GROUPS = ['system', 'tunnel', 'latency', 'agent'] as const;

/** One metric point (upstream MetricPoint). `data` is the group's JSON object. */
export interface MetricPoint {
  readonly timestamp: string;
  readonly group: string;
  readonly peer_id?: string;
  readonly data: Readonly<Record<string, unknown>>;
}

/** Syslog severities, most severe first (upstream log-forwarding "Accepted severities"). */
export const LOG_SEVERITIES = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const;
export type LogSeverity = (typeof LOG_SEVERITIES)[number];

/** One log line on the wire (upstream LogLine; the internal `source` has no wire counterpart). */
export interface LogLine {
  readonly severity: LogSeverity;
  readonly unit?: string;
  readonly hostname?: string;
  readonly message: string;
  readonly timestamp: string;
}

/** One audit entry (upstream AuditEntry). `subject` is a JSON object, `object` usually a string. */
export interface AuditEntry {
  readonly timestamp: string;
  readonly source: string;
  readonly event_type: string;
  readonly subject: unknown;
  readonly object: unknown;
  readonly action: string;
  readonly result: string;
  readonly hostname: string;
  readonly raw: string;
}

/** `202 Accepted` body of a telemetry POST (upstream IngestReceipt). */
export interface IngestReceipt {
  readonly accepted_at: string;
  readonly records: number;
}

// ---- Node state and secrets (plexd-api.md "Node API"; docs/operations.md "Node state and secrets") ----

/** Grammar of a secret name (control plane and node API alike). */
export const SECRET_KEY_PATTERN = /^[a-z][a-z0-9_-]{0,62}$/;
/** Grammar of a state key: reports, metadata and data entries. */
export const STATE_KEY_PATTERN = /^[a-z][a-z0-9._-]{0,127}$/;
/** Largest report value, in UTF-8 bytes. */
export const MAX_REPORT_VALUE_BYTES = 4096;
/** Largest metadata or data value, in UTF-8 bytes, and largest secret value. */
export const MAX_STATE_VALUE_BYTES = 65536;
/** Response headers of `GET /v1/nodes/{id}/secrets/{key}` (lowercase, as node:http gives them). */
export const SECRET_VERSION_HEADER = 'x-plexsphere-secret-version';
export const SECRET_KID_HEADER = 'x-plexsphere-secret-kid';

/** One entry of a state bucket: an opaque string value. */
export interface StateEntry {
  readonly key: string;
  readonly value: string;
  readonly workload_tag?: string;
}

/** The state block of a state response: three buckets, each ordered by key. */
export interface NodeStateBlock {
  readonly metadata: readonly StateEntry[];
  readonly data: readonly StateEntry[];
  readonly reports: readonly StateEntry[];
}

/** `PUT /v1/nodes/{id}/state/reports/{key}` request. */
export interface NodeStateReportRequest {
  readonly value: string;
  readonly workload_tag?: string;
}

/** `PUT /v1/nodes/{id}/state/reports/{key}` response. */
export interface NodeStateReportResponse {
  readonly accepted_at: string;
  readonly key: string;
}
