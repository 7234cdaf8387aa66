// The compatibility matrix against upstream plexd (github.com/plexsphere/plexd, docs/reference/core/
// cli.md, configuration.md, environment-variables.md, as of commit 0cd9bce): every upstream CLI
// command and flag, config key and environment name with upstream's default, and what we do with
// it. test/compat/matrix.test.ts checks each row against our code, and that docs/agent.md shows
// renderMatrix()'s table verbatim.

import type { AgentConfig } from '../../src/agent/config.js';

/**
 * supported: works with upstream's meaning (and default, unless the note says otherwise);
 * accepted-with-warning: parsed, never a crash, a warning names it, no effect (the note says why);
 * not-applicable: has no meaning for this implementation (why);
 * missing: not implemented yet (which issue owns it); a command is refused as unknown (exit 2).
 */
export type CompatStatus = 'supported' | 'accepted-with-warning' | 'not-applicable' | 'missing';

/** One upstream item. */
export interface CompatEntry {
  readonly kind: 'command' | 'flag' | 'config' | 'env';
  /** `up`, `--api`, `join --token-file`, `api.base_url`, `PLEXD_API`. */
  readonly name: string;
  /** Upstream's default, '—' for none. */
  readonly upstreamDefault: string;
  readonly status: CompatStatus;
  /** How ours maps it, or why it is not acted on. */
  readonly note: string;
  /** For supported env names and flags: the config key they set (its row's probe checks them). */
  readonly key?: string;
  /**
   * For supported config keys: a value to give, what `read` then returns, and what `read`
   * returns when it is not given (our default, upstream's meaning).
   */
  readonly probe?: { readonly value: string; readonly read: (c: AgentConfig) => unknown; readonly expect: unknown; readonly def?: unknown };
}

const ACTIONS = 'the actions/telemetry issue';
const PLATFORMS = 'the platforms issue';

const cmd = (name: string, status: CompatStatus, note: string): CompatEntry => ({ kind: 'command', name, upstreamDefault: '—', status, note });
const ignoredSection = (section: string, keys: ReadonlyArray<readonly [string, string]>, why: string): CompatEntry[] =>
  keys.map(([k, def]) => ({ kind: 'config', name: `${section}.${k}`, upstreamDefault: def, status: 'accepted-with-warning', note: why }));

/** The matrix, in upstream's documentation order. */
export const UPSTREAM_MATRIX: readonly CompatEntry[] = [
  // Commands (cli.md).
  cmd('up', 'supported', 'registers (or loads the identity), brings the interface up, heartbeats, follows events; exit 0 / 1'),
  cmd('join', 'supported', 'registers and exits; prints node id and mesh IP'),
  cmd('install', 'supported', 'the agent as the systemd service plexd.service with upstream\'s paths, modes and unit (docs/deploy.md); ours: --mode, --force, --no-token, --root, and an existing config.yaml is never rewritten'),
  cmd('uninstall', 'supported', 'stops, disables, removes unit and program; --purge also removes /etc/plexd and /var/lib/plexd'),
  cmd('deregister', 'supported', 'differs on purpose: ours also tells the control plane (POST /v1/nodes/{id}/deregister) before removing the identity; upstream is local-only'),
  cmd('status', 'supported', 'the running agent\'s status over the node API socket'),
  cmd('peers', 'supported', 'the running agent\'s peers'),
  cmd('policies', 'supported', 'the policy in force with per-rule counters'),
  cmd('state', 'supported', 'summary; get metadata|data|report KEY (ours also secret KEY); report KEY --data JSON (ours also --file F)'),
  cmd('logs', 'supported', 'journalctl -u plexd.service (-f follows); a clear message where journalctl is missing'),
  cmd('log-status', 'supported', 'log forwarding over the node API socket: sources, filter, counters, spool (docs/operations.md "Telemetry")'),
  cmd('audit', 'supported', 'audit forwarding over the node API socket: sources, counters, spool'),
  cmd('actions', 'supported', 'lists the running agent\'s built-ins and hooks; `actions run ACTION --param K=V` runs a built-in in the CLI process (upstream: through the node API)'),
  cmd('hooks', 'supported', 'list / verify (re-hashes each hook against the pinned SHA-256; exit 1 on a change) / reload'),

  // Flags (cli.md "Global Flags" and per command).
  { kind: 'flag', name: '--config', upstreamDefault: '/etc/plexd/config.yaml', status: 'supported', note: 'also PLEXD_CONFIG; the default file may be absent (a warning), a file named by --config or PLEXD_CONFIG must exist (ours: a typo must not run on the default data_dir)' },
  { kind: 'flag', name: '--log-level', upstreamDefault: 'info', status: 'supported', note: 'warn logs what error does (ours has no separate warn level)', key: 'log_level' },
  { kind: 'flag', name: '--api', upstreamDefault: '—', status: 'supported', note: 'api.base_url', key: 'api.base_url' },
  { kind: 'flag', name: '--mode', upstreamDefault: '—', status: 'supported', note: 'node | bridge', key: 'mode' },
  { kind: 'flag', name: '--project-id', upstreamDefault: '—', status: 'supported', note: 'registration.project_id (ours: "default" when unset)', key: 'registration.project_id' },
  { kind: 'flag', name: '--resource-handle', upstreamDefault: '—', status: 'supported', note: 'registration.resource_handle (ours: the host name when unset)', key: 'registration.resource_handle' },
  { kind: 'flag', name: '--requested-resource-id', upstreamDefault: '—', status: 'accepted-with-warning', note: 'our registration API has no requested_resource_id field' },
  { kind: 'flag', name: '--version', upstreamDefault: '—', status: 'supported', note: 'prints ours (plexd-userspace vX.Y.Z)' },
  { kind: 'flag', name: 'join --token-file', upstreamDefault: '—', status: 'supported', note: 'registration.token_file; accepted by every agent command', key: 'registration.token_file' },
  { kind: 'flag', name: 'deregister --purge', upstreamDefault: 'false', status: 'supported', note: 'also removes data_dir; the token file is left alone' },
  { kind: 'flag', name: 'install --api-url / --token / --token-file', upstreamDefault: '—', status: 'supported', note: 'one token source at most; without one install refuses unless a token file or identity is there already (or --no-token)' },
  { kind: 'flag', name: 'uninstall --purge', upstreamDefault: 'false', status: 'supported', note: 'differs on purpose: ours deregisters a registered node first (as our deregister does); --no-deregister skips that' },

  // Config keys (configuration.md).
  { kind: 'config', name: 'mode', upstreamDefault: 'node', status: 'supported', note: 'bridge runs the relay (see bridge.enabled)', probe: { value: 'bridge', read: (c) => c.mode, expect: 'bridge', def: 'node' } },
  { kind: 'config', name: 'log_level', upstreamDefault: 'info', status: 'supported', note: 'debug | info | warn | error; ours also verbose, silent', probe: { value: 'warn', read: (c) => c.logLevel, expect: 'error', def: 'info' } },
  { kind: 'config', name: 'data_dir', upstreamDefault: '/var/lib/plexd', status: 'supported', note: '', probe: { value: '/srv/plexd', read: (c) => c.dataDir, expect: '/srv/plexd', def: '/var/lib/plexd' } },
  { kind: 'config', name: 'api.base_url', upstreamDefault: '— (required)', status: 'supported', note: 'required in the merged configuration', probe: { value: 'https://cp.example/', read: (c) => c.api.baseUrl, expect: 'https://cp.example' } },
  { kind: 'config', name: 'api.tls_insecure_skip_verify', upstreamDefault: 'false', status: 'accepted-with-warning', note: 'ours verifies always; for a self-signed control plane pin it with api.tls_fingerprint' },
  { kind: 'config', name: 'api.connect_timeout', upstreamDefault: '10s', status: 'accepted-with-warning', note: 'our HTTP client has one deadline per request: api.request_timeout covers the connect' },
  { kind: 'config', name: 'api.request_timeout', upstreamDefault: '30s', status: 'supported', note: '', probe: { value: '12s', read: (c) => c.api.requestTimeoutS, expect: 12, def: 30 } },
  { kind: 'config', name: 'api.sse_idle_timeout', upstreamDefault: '90s', status: 'accepted-with-warning', note: 'ours: a fixed 90 s, upstream\'s default (docs/agent.md "Events")' },
  { kind: 'config', name: 'api.sse_reprobe_interval', upstreamDefault: '10m', status: 'accepted-with-warning', note: 'ours: pull-only re-probes after a fixed 10 min, upstream\'s default' },
  { kind: 'config', name: 'registration.project_id', upstreamDefault: '—', status: 'supported', note: 'ours registers into "default" when unset', probe: { value: 'p-1', read: (c) => c.registration.projectId, expect: 'p-1', def: undefined } },
  { kind: 'config', name: 'registration.resource_handle', upstreamDefault: '—', status: 'supported', note: 'ours: the host name when unset', probe: { value: 'web-1', read: (c) => c.registration.resourceHandle, expect: 'web-1' } },
  { kind: 'config', name: 'registration.requested_resource_id', upstreamDefault: '—', status: 'accepted-with-warning', note: 'our registration API has no such field' },
  { kind: 'config', name: 'registration.token_file', upstreamDefault: '/etc/plexd/bootstrap-token', status: 'supported', note: 'deleted after a successful registration', probe: { value: '/run/tok', read: (c) => c.registration.tokenFile, expect: '/run/tok', def: '/etc/plexd/bootstrap-token' } },
  { kind: 'config', name: 'registration.token_env', upstreamDefault: 'PLEXD_BOOTSTRAP_TOKEN', status: 'supported', note: '', probe: { value: 'MY_TOKEN', read: (c) => c.registration.tokenEnv, expect: 'MY_TOKEN', def: 'PLEXD_BOOTSTRAP_TOKEN' } },
  { kind: 'config', name: 'registration.token_value', upstreamDefault: '—', status: 'supported', note: 'our older spelling registration.token stays an alias', probe: { value: 'tok-1', read: (c) => c.registration.token, expect: 'tok-1', def: undefined } },
  { kind: 'config', name: 'registration.use_metadata', upstreamDefault: 'false', status: 'supported', note: 'cloud metadata (IMDSv2, v1 fallback, 169.254.169.254) as the last token source', probe: { value: 'true', read: (c) => c.registration.useMetadata, expect: true, def: false } },
  { kind: 'config', name: 'registration.metadata_token_path', upstreamDefault: '/plexd/bootstrap-token', status: 'supported', note: '', probe: { value: '/meta/tok', read: (c) => c.registration.metadataTokenPath, expect: '/meta/tok', def: '/plexd/bootstrap-token' } },
  { kind: 'config', name: 'registration.metadata_timeout', upstreamDefault: '2s', status: 'supported', note: 'covers the IMDSv2 PUT and the GET together', probe: { value: '5s', read: (c) => c.registration.metadataTimeoutS, expect: 5, def: 2 } },
  { kind: 'config', name: 'registration.max_retry_duration', upstreamDefault: '5m', status: 'supported', note: '', probe: { value: '2m', read: (c) => c.registration.maxRetryS, expect: 120, def: 300 } },
  { kind: 'config', name: 'heartbeat.interval', upstreamDefault: '30s', status: 'supported', note: '', probe: { value: '10s', read: (c) => c.heartbeat.intervalS, expect: 10, def: 30 } },
  { kind: 'config', name: 'reconcile.interval', upstreamDefault: '60s', status: 'supported', note: 'also while the event stream is connected; 0 turns it off', probe: { value: '2m', read: (c) => c.reconcile.intervalS, expect: 120, def: 60 } },
  { kind: 'config', name: 'node_api.socket_path', upstreamDefault: '/var/run/plexd/api.sock', status: 'supported', note: 'our older spelling node_api.socket stays an alias', probe: { value: '/run/p.sock', read: (c) => c.nodeApi.socket, expect: '/run/p.sock', def: '/var/run/plexd/api.sock' } },
  { kind: 'config', name: 'node_api.http_enabled', upstreamDefault: 'false', status: 'supported', note: 'the node API also on TCP, behind the bearer token', probe: { value: 'true', read: (c) => c.nodeApi.httpEnabled, expect: true, def: false } },
  { kind: 'config', name: 'node_api.http_listen', upstreamDefault: '127.0.0.1:9100', status: 'supported', note: '', probe: { value: '127.0.0.1:9200', read: (c) => c.nodeApi.httpListen, expect: '127.0.0.1:9200', def: '127.0.0.1:9100' } },
  { kind: 'config', name: 'node_api.http_token_file', upstreamDefault: '—', status: 'supported', note: 'first line, at least 16 characters; the agent refuses to start without it when http_enabled', probe: { value: '/etc/plexd/api-token', read: (c) => c.nodeApi.httpTokenFile, expect: '/etc/plexd/api-token', def: undefined } },
  { kind: 'config', name: 'node_api.debounce_period', upstreamDefault: '5s', status: 'supported', note: 'report sync debounce', probe: { value: '2s', read: (c) => c.nodeApi.debounceS, expect: 2, def: 5 } },
  { kind: 'config', name: 'node_api.shutdown_timeout', upstreamDefault: '5s', status: 'accepted-with-warning', note: 'ours closes the socket at once on shutdown' },
  { kind: 'config', name: 'health.enabled', upstreamDefault: 'true', status: 'supported', note: 'false: no listener', probe: { value: 'false', read: (c) => c.health.listen, expect: '', def: '127.0.0.1:9101' } },
  { kind: 'config', name: 'health.listen', upstreamDefault: '127.0.0.1:9101', status: 'supported', note: '/healthz, /readyz and /metrics (Prometheus; docs/operations.md)', probe: { value: '0.0.0.0:9200', read: (c) => c.health.listen, expect: '0.0.0.0:9200', def: '127.0.0.1:9101' } },
  { kind: 'config', name: 'actions.enabled', upstreamDefault: 'true', status: 'supported', note: 'false: every execution is refused with actions_disabled (ack -> started -> failed)', probe: { value: 'false', read: (c) => c.actions.enabled, expect: false, def: true } },
  { kind: 'config', name: 'actions.hooks_dir', upstreamDefault: '/etc/plexd/hooks', status: 'supported', note: 'executables run as hooks when their SHA-256 matches the pinned and approved digest', probe: { value: '/srv/hooks', read: (c) => c.actions.hooksDir, expect: '/srv/hooks', def: '/etc/plexd/hooks' } },
  { kind: 'config', name: 'actions.max_concurrent', upstreamDefault: '5', status: 'supported', note: 'more running executions defer (no callback; the next pull redelivers)', probe: { value: '2', read: (c) => c.actions.maxConcurrent, expect: 2, def: 5 } },
  { kind: 'config', name: 'actions.max_action_timeout', upstreamDefault: '10m', status: 'supported', note: 'a run past min(expires_at, this) fails with "action timed out"', probe: { value: '30s', read: (c) => c.actions.maxActionTimeoutS, expect: 30, def: 600 } },
  { kind: 'config', name: 'actions.max_output_bytes', upstreamDefault: '1048576', status: 'supported', note: 'output past it is cut; over 16 KiB is uploaded', probe: { value: '4096', read: (c) => c.actions.maxOutputBytes, expect: 4096, def: 1048576 } },
  ...ignoredSection('upgrade', [['release_base_url', 'https://github.com/plexsphere/plexd/releases/download'], ['signing_identity_regexp', '(release workflow)'], ['signing_issuer', 'https://token.actions.githubusercontent.com'], ['trusted_root_path', '—']], `no service.upgrade action (${ACTIONS})`),
  ...ignoredSection('integrity', [['enabled', 'true'], ['binary_path', '—'], ['hooks_dir', '—'], ['verify_interval', '5m'], ['watch_enabled', 'true']], `no hooks to verify (${ACTIONS}); the heartbeat reports the binary's SHA-256`),
  { kind: 'config', name: 'metrics.enabled', upstreamDefault: 'true', status: 'supported', note: '', probe: { value: 'false', read: (c) => c.telemetry.metrics.enabled, expect: false, def: true } },
  { kind: 'config', name: 'metrics.collect_interval', upstreamDefault: '15s', status: 'supported', note: '', probe: { value: '20s', read: (c) => c.telemetry.metrics.collectIntervalS, expect: 20, def: 15 } },
  { kind: 'config', name: 'metrics.report_interval', upstreamDefault: '60s', status: 'supported', note: '', probe: { value: '90s', read: (c) => c.telemetry.metrics.reportIntervalS, expect: 90, def: 60 } },
  { kind: 'config', name: 'metrics.batch_size', upstreamDefault: '100', status: 'supported', note: '', probe: { value: '7', read: (c) => c.telemetry.metrics.batchSize, expect: 7, def: 100 } },
  ...ignoredSection('metrics', [['local_endpoint.url', '—'], ['local_endpoint.secret_key', '—'], ['local_endpoint.tls_insecure_skip_verify', 'false']], 'no local endpoint: telemetry goes to the control plane only (docs/operations.md "Telemetry")'),
  { kind: 'config', name: 'log_fwd.enabled', upstreamDefault: 'true', status: 'supported', note: '', probe: { value: 'false', read: (c) => c.telemetry.logs.enabled, expect: false, def: true } },
  { kind: 'config', name: 'log_fwd.collect_interval', upstreamDefault: '10s', status: 'supported', note: '', probe: { value: '20s', read: (c) => c.telemetry.logs.collectIntervalS, expect: 20, def: 10 } },
  { kind: 'config', name: 'log_fwd.report_interval', upstreamDefault: '30s', status: 'supported', note: '', probe: { value: '90s', read: (c) => c.telemetry.logs.reportIntervalS, expect: 90, def: 30 } },
  { kind: 'config', name: 'log_fwd.batch_size', upstreamDefault: '200', status: 'supported', note: '', probe: { value: '7', read: (c) => c.telemetry.logs.batchSize, expect: 7, def: 200 } },
  { kind: 'config', name: 'log_fwd.file_patterns', upstreamDefault: '—', status: 'supported', note: 'ours: * and ? in the last path element only', probe: { value: '/var/log/app/*.log', read: (c) => c.telemetry.logs.filePatterns, expect: ['/var/log/app/*.log'], def: [] } },
  { kind: 'config', name: 'log_fwd.filter.min_severity', upstreamDefault: '—', status: 'supported', note: '', probe: { value: 'warning', read: (c) => c.telemetry.logs.minSeverity, expect: 'warning', def: undefined } },
  { kind: 'config', name: 'log_fwd.filter.include_units', upstreamDefault: '—', status: 'supported', note: '', probe: { value: 'sshd.service', read: (c) => c.telemetry.logs.includeUnits, expect: ['sshd.service'], def: [] } },
  { kind: 'config', name: 'log_fwd.filter.exclude_units', upstreamDefault: '—', status: 'supported', note: '', probe: { value: 'cron.service', read: (c) => c.telemetry.logs.excludeUnits, expect: ['cron.service'], def: [] } },
  ...ignoredSection('log_fwd', [['local_endpoint.url', '—'], ['local_endpoint.secret_key', '—'], ['local_endpoint.tls_insecure_skip_verify', 'false']], 'no local endpoint: telemetry goes to the control plane only (docs/operations.md "Telemetry")'),
  { kind: 'config', name: 'audit_fwd.enabled', upstreamDefault: 'true', status: 'supported', note: '', probe: { value: 'false', read: (c) => c.telemetry.audit.enabled, expect: false, def: true } },
  { kind: 'config', name: 'audit_fwd.collect_interval', upstreamDefault: '5s', status: 'supported', note: '', probe: { value: '10s', read: (c) => c.telemetry.audit.collectIntervalS, expect: 10, def: 5 } },
  { kind: 'config', name: 'audit_fwd.report_interval', upstreamDefault: '15s', status: 'supported', note: '', probe: { value: '90s', read: (c) => c.telemetry.audit.reportIntervalS, expect: 90, def: 15 } },
  { kind: 'config', name: 'audit_fwd.batch_size', upstreamDefault: '500', status: 'supported', note: '', probe: { value: '7', read: (c) => c.telemetry.audit.batchSize, expect: 7, def: 500 } },
  ...ignoredSection('audit_fwd', [['local_endpoint.url', '—'], ['local_endpoint.secret_key', '—'], ['local_endpoint.tls_insecure_skip_verify', 'false']], 'no local endpoint: telemetry goes to the control plane only (docs/operations.md "Telemetry")'),
  { kind: 'config', name: 'wireguard.interface_name', upstreamDefault: 'plexd0', status: 'supported', note: '', probe: { value: 'mesh0', read: (c) => c.wireguard.interfaceName, expect: 'mesh0', def: 'plexd0' } },
  { kind: 'config', name: 'wireguard.listen_port', upstreamDefault: '51820', status: 'supported', note: '', probe: { value: '51000', read: (c) => c.wireguard.listenPort, expect: 51000, def: 51820 } },
  { kind: 'config', name: 'wireguard.mtu', upstreamDefault: '0', status: 'supported', note: '0 (system default) is 1420 here', probe: { value: '1380', read: (c) => c.wireguard.mtu, expect: 1380, def: 1420 } },
  { kind: 'config', name: 'nat.enabled', upstreamDefault: 'true', status: 'supported', note: 'false: no STUN and no interface scan; only bind_address / advertise_endpoint are reported (path probing still runs)', probe: { value: 'false', read: (c) => c.nat.enabled, expect: false, def: true } },
  { kind: 'config', name: 'nat.stun_servers', upstreamDefault: '(built-in list)', status: 'supported', note: 'differs: ours has no built-in public list (empty = no STUN), so nothing leaves the host unasked', probe: { value: 'stun.example:3478', read: (c) => c.nat.stunServers, expect: ['stun.example:3478'], def: [] } },
  { kind: 'config', name: 'nat.refresh_interval', upstreamDefault: '60s', status: 'supported', note: 'min 10s', probe: { value: '2m', read: (c) => c.nat.refreshIntervalS, expect: 120, def: 60 } },
  { kind: 'config', name: 'nat.timeout', upstreamDefault: '5s', status: 'accepted-with-warning', note: 'our STUN client\'s timeouts are fixed (issue 13 owns STUN)' },
  { kind: 'config', name: 'nat.min_report_interval', upstreamDefault: '10s', status: 'accepted-with-warning', note: 'our endpoint reports follow changes, not stale_after (issue 13 owns it)' },
  ...ignoredSection('peer_exchange', [['enabled', 'true'], ['refresh_interval', '60s'], ['timeout', '5s']], 'peer endpoints come from the control plane\'s state and events (docs/nat.md)'),
  { kind: 'config', name: 'policy.enabled', upstreamDefault: 'true', status: 'supported', note: 'on: deny all mesh traffic until a policy allows it; false: allow all (the explicit opt-out)', probe: { value: 'false', read: (c) => c.policy.enabled, expect: false, def: true } },
  { kind: 'config', name: 'policy.chain_name', upstreamDefault: 'plexd-mesh', status: 'accepted-with-warning', note: 'no nftables: the policy is enforced by the userspace filter on the device' },
  ...ignoredSection('tunnel', [['enabled', 'true'], ['max_sessions', '10'], ['default_timeout', '30m'], ['ssh_listen_addr', '—'], ['host_key_dir', '—']], 'no secure access tunnelling (SSH) in plexd-userspace'),
  { kind: 'config', name: 'bridge.enabled', upstreamDefault: 'false', status: 'accepted-with-warning', note: 'ours: mode: bridge alone runs the relay' },
  { kind: 'config', name: 'bridge.relay_enabled', upstreamDefault: 'false', status: 'accepted-with-warning', note: 'ours: mode: bridge alone runs the relay' },
  { kind: 'config', name: 'bridge.relay_listen_port', upstreamDefault: '51821', status: 'supported', note: '', probe: { value: '52821', read: (c) => c.bridge.relayListenPort, expect: 52821, def: 51821 } },
  { kind: 'config', name: 'bridge.max_relay_sessions', upstreamDefault: '100', status: 'supported', note: '', probe: { value: '20', read: (c) => c.bridge.maxRelaySessions, expect: 20, def: 100 } },
  { kind: 'config', name: 'bridge.session_ttl', upstreamDefault: '5m', status: 'supported', note: 'caps each relay session (the earlier of this and its expires_at)', probe: { value: '90s', read: (c) => c.bridge.sessionTtlS, expect: 90, def: 300 } },
  // Public ingress and ACME (issue 16; docs/bridge.md "Public ingress").
  { kind: 'config', name: 'bridge.ingress_enabled', upstreamDefault: 'false', status: 'supported', note: 'bridge mode: bridge.ingress rules become TLS listeners (SNI routing)', probe: { value: 'true', read: (c) => c.bridge.ingress.enabled, expect: true, def: false } },
  { kind: 'config', name: 'bridge.max_ingress_rules', upstreamDefault: '20', status: 'supported', note: 'rules past it are refused (status)', probe: { value: '5', read: (c) => c.bridge.ingress.maxRules, expect: 5, def: 20 } },
  { kind: 'config', name: 'bridge.ingress_dial_timeout', upstreamDefault: '10s', status: 'supported', note: '', probe: { value: '3s', read: (c) => c.bridge.ingress.dialTimeoutS, expect: 3, def: 10 } },
  { kind: 'config', name: 'bridge.acme_enabled', upstreamDefault: 'false', status: 'supported', note: 'acme rules need it', probe: { value: 'true', read: (c) => c.bridge.ingress.acmeEnabled, expect: true, def: false } },
  { kind: 'config', name: 'bridge.acme_cache_dir', upstreamDefault: '—', status: 'supported', note: 'ours: <data_dir>/acme when unset', probe: { value: '/srv/acme', read: (c) => c.bridge.ingress.acmeCacheDir, expect: '/srv/acme', def: '/var/lib/plexd/acme' } },
  { kind: 'config', name: 'bridge.acme_allowed_hosts', upstreamDefault: '—', status: 'supported', note: 'exact names or *.suffix; empty: any acme rule hostname', probe: { value: 'a.example,*.b.example', read: (c) => c.bridge.ingress.acmeAllowedHosts, expect: ['a.example', '*.b.example'], def: [] } },
  { kind: 'config', name: 'bridge.acme_email', upstreamDefault: '—', status: 'supported', note: '', probe: { value: 'ops@example.com', read: (c) => c.bridge.ingress.acmeEmail, expect: 'ops@example.com', def: undefined } },
  { kind: 'config', name: 'bridge.acme_directory_url', upstreamDefault: '—', status: 'supported', note: 'ours: Let\'s Encrypt production when unset', probe: { value: 'https://acme.example/dir', read: (c) => c.bridge.ingress.acmeDirectoryUrl, expect: 'https://acme.example/dir', def: 'https://acme-v02.api.letsencrypt.org/directory' } },
  // Bridge access side (issue 15, docs/bridge.md): in mode bridge user access, site-to-site and NAT default on (ours).
  { kind: 'config', name: 'bridge.access_interface', upstreamDefault: 'eth1', status: 'supported', note: 'ours: default none; with access_subnets, forwarding (and masquerade with enable_nat) between the mesh and this LAN interface', probe: { value: 'eth1', read: (c) => c.bridge.accessInterface, expect: 'eth1', def: '' } },
  { kind: 'config', name: 'bridge.access_subnets', upstreamDefault: '—', status: 'supported', note: 'the state\'s bridge.access_subnets wins', probe: { value: '[192.168.50.0/24]', read: (c) => c.bridge.accessSubnets, expect: ['192.168.50.0/24'], def: [] } },
  { kind: 'config', name: 'bridge.enable_nat', upstreamDefault: 'false', status: 'supported', note: 'ours: default true (masquerade user traffic to the mesh IP); the state\'s bridge.enable_nat wins', probe: { value: 'false', read: (c) => c.bridge.enableNat, expect: false, def: true } },
  { kind: 'config', name: 'bridge.user_access_enabled', upstreamDefault: 'false', status: 'supported', note: 'ours: default true in mode bridge (the control plane decides whether there are users)', probe: { value: 'false', read: (c) => c.bridge.userAccessEnabled, expect: false, def: true } },
  { kind: 'config', name: 'bridge.user_access_interface_name', upstreamDefault: 'wg-access', status: 'supported', note: 'the state\'s interface_name wins', probe: { value: 'wg-users', read: (c) => c.bridge.userAccessInterface, expect: 'wg-users', def: 'wg-access' } },
  { kind: 'config', name: 'bridge.user_access_listen_port', upstreamDefault: '51822', status: 'supported', note: 'the state\'s listen_port wins', probe: { value: '52822', read: (c) => c.bridge.userAccessListenPort, expect: 52822, def: 51822 } },
  { kind: 'config', name: 'bridge.site_to_site_enabled', upstreamDefault: 'false', status: 'supported', note: 'ours: default true in mode bridge', probe: { value: 'false', read: (c) => c.bridge.siteToSiteEnabled, expect: false, def: true } },
  { kind: 'config', name: 'bridge.site_to_site_listen_port', upstreamDefault: '51823', status: 'supported', note: 'the first tunnel port; each tunnel\'s listen_port comes with the state', probe: { value: '52823', read: (c) => c.bridge.siteToSiteListenPort, expect: 52823, def: 51823 } },
  { kind: 'config', name: 'bridge.max_site_to_site_tunnels', upstreamDefault: '10', status: 'supported', note: 'at most 10; tunnels past it are refused and counted', probe: { value: '3', read: (c) => c.bridge.maxSiteToSiteTunnels, expect: 3, def: 10 } },
  ...ignoredSection('bridge', [
    ['max_access_peers', '50'], ['user_access_provider_type', '—'], ['auth_key_env', '—'],
    ['site_to_site_interface_prefix', 'wg-s2s-'], ['tunnel_providers', '—'],
  ], 'bridge access, ingress, user access, site-to-site and ACME are not in plexd-userspace (the bridge is a relay only)'),

  // Environment (environment-variables.md).
  { kind: 'env', name: 'PLEXD_CONFIG', upstreamDefault: '/etc/plexd/config.yaml', status: 'supported', note: 'like --config' },
  { kind: 'env', name: 'PLEXD_LOG_LEVEL', upstreamDefault: 'info', status: 'supported', note: 'log_level', key: 'log_level' },
  { kind: 'env', name: 'PLEXD_API', upstreamDefault: '—', status: 'supported', note: 'api.base_url (our PLEXD_API_BASE_URL is gone)', key: 'api.base_url' },
  { kind: 'env', name: 'PLEXD_MODE', upstreamDefault: '—', status: 'supported', note: 'mode', key: 'mode' },
  { kind: 'env', name: 'PLEXD_PROJECT_ID', upstreamDefault: '—', status: 'supported', note: 'registration.project_id', key: 'registration.project_id' },
  { kind: 'env', name: 'PLEXD_RESOURCE_HANDLE', upstreamDefault: '—', status: 'supported', note: 'registration.resource_handle', key: 'registration.resource_handle' },
  { kind: 'env', name: 'PLEXD_REQUESTED_RESOURCE_ID', upstreamDefault: '—', status: 'accepted-with-warning', note: 'our registration API has no such field' },
  { kind: 'env', name: 'PLEXD_BOOTSTRAP_TOKEN_FILE', upstreamDefault: '—', status: 'supported', note: 'registration.token_file', key: 'registration.token_file' },
  { kind: 'env', name: 'PLEXD_ACTIONS_ENABLED', upstreamDefault: '—', status: 'supported', note: 'actions.enabled', key: 'actions.enabled' },
  { kind: 'env', name: 'PLEXD_HOOKS_ENABLED', upstreamDefault: '—', status: 'accepted-with-warning', note: `no hooks yet (${ACTIONS})` },
  { kind: 'env', name: 'PLEXD_HOOKS_DIR', upstreamDefault: '—', status: 'supported', note: 'actions.hooks_dir', key: 'actions.hooks_dir' },
  { kind: 'env', name: 'PLEXD_ACTIONS_MAX_CONCURRENT', upstreamDefault: '—', status: 'supported', note: 'actions.max_concurrent', key: 'actions.max_concurrent' },
  { kind: 'env', name: 'PLEXD_NODE_API_SOCKET', upstreamDefault: '—', status: 'supported', note: 'node_api.socket_path', key: 'node_api.socket_path' },
  { kind: 'env', name: 'PLEXD_NODE_API_HTTP_ENABLED', upstreamDefault: '—', status: 'supported', note: 'node_api.http_enabled', key: 'node_api.http_enabled' },
  { kind: 'env', name: 'PLEXD_NODE_API_HTTP_LISTEN', upstreamDefault: '—', status: 'supported', note: 'node_api.http_listen', key: 'node_api.http_listen' },
  { kind: 'env', name: 'PLEXD_POLICY_ENABLED', upstreamDefault: '—', status: 'supported', note: 'policy.enabled; an unparseable value is an error here (upstream: ignored with a warning)', key: 'policy.enabled' },
  { kind: 'env', name: 'PLEXD_HEALTH_ENABLED', upstreamDefault: '—', status: 'supported', note: 'health.enabled', key: 'health.enabled' },
  { kind: 'env', name: 'PLEXD_HEALTH_LISTEN', upstreamDefault: '—', status: 'supported', note: 'health.listen', key: 'health.listen' },
  { kind: 'env', name: 'PLEXD_BOOTSTRAP_TOKEN', upstreamDefault: '—', status: 'supported', note: 'read under the name registration.token_env gives, after token_value and the token file' },
  { kind: 'env', name: 'PLEXD_SESSION_TOKEN', upstreamDefault: '—', status: 'not-applicable', note: 'set by upstream\'s SSH access proxy for `actions run`; there is no access proxy here' },
];

/** Rows per status, for the summary. */
export function matrixCounts(): Record<CompatStatus, number> {
  const out: Record<CompatStatus, number> = { supported: 0, 'accepted-with-warning': 0, 'not-applicable': 0, missing: 0 };
  for (const e of UPSTREAM_MATRIX) out[e.status]++;
  return out;
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');

/** The Markdown table docs/agent.md shows between its compat-matrix markers. */
export function renderMatrix(): string {
  const c = matrixCounts();
  const lines = [
    `${UPSTREAM_MATRIX.length} upstream items: ${c.supported} supported, ${c['accepted-with-warning']} accepted with a warning, ${c['not-applicable']} not applicable, ${c.missing} missing.`,
    '',
    '| Kind | Upstream name | Upstream default | Here | Note |',
    '|------|---------------|------------------|------|------|',
    ...UPSTREAM_MATRIX.map((e) => `| ${e.kind} | \`${cell(e.name)}\` | ${e.upstreamDefault === '—' ? '—' : '`' + cell(e.upstreamDefault) + '`'} | ${e.status} | ${cell(e.note)} |`),
  ];
  return lines.join('\n') + '\n';
}
