// The plexd node agent (plexd-api.md "Lifecycle"): register (or reuse the stored identity) ->
// bring the interface up on cached state -> heartbeat every 30 s and follow signed events ->
// reconcile peers -> on SIGTERM stop and remove the interface. Deregistration happens only on an
// explicit `deregister`. NAT (docs/nat.md "Agent: endpoint discovery", src/agent/nat-services.ts):
// the endpoint and its candidates (docs/nat.md "Endpoint candidates": interface addresses, the STUN
// reflexive address with nat.stun_servers or the control plane's offered STUN server,
// bind_address/advertise_endpoint when set) are reported and re-reported on change, peers go direct
// or through a bridge relay, and `mode: bridge` runs the relay. A peer left without an endpoint is
// warned about once (docs/agent.md "Readiness and path problems"). Policy (docs/policy.md "In the
// agent"): the interface's PolicyFilter gets each state's policy block
// (src/agent/policy-enforcer.ts); the revision in force rides along in the heartbeat and is shown on
// the node API and /healthz. Registration is registration.ts, the key pair keys.ts, the node API's
// documents status.ts and its routes routes.ts; every time the agent reads comes from its Clock.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server as NodeServer } from 'node:net';
import type { EventEnvelope } from '../api/events.js';
import { encodeBase64, formatRfc3339 } from '../api/fields.js';
import { parseStateResponse } from '../api/parse.js';
import type { HeartbeatPolicyReport, HeartbeatRequest, PeerInfo, Policy as WirePolicy, StateResponse } from '../api/types.js';
import { VERSION } from '../version.js';
import { ControlClient } from '../control/api-client.js';
import { Backoff, sleep } from '../control/backoff.js';
import { EnvelopeVerifier, SigningKeyring } from '../control/envelopes.js';
import { EventStream, type EventStreamTimings } from '../control/event-stream.js';
import { ApiError } from '../control/http-client.js';
import { Reconciler, refusePeerList } from '../control/reconcile.js';
import { systemClock, type Clock } from '../io/clock.js';
import { runCommand } from '../io/command.js';
import type { Logger } from '../log/logger.js';
import { ConfigError, type AgentConfig } from './config.js';
import { parseForward, parseHostPort, startForward, startSocks5 } from '../net/proxy.js';
import { generatePrivateKey, NodeKeys, publicKeyOf } from './keys.js';
import { startTcpServer, startUnixServer, type LocalServer } from './local-http.js';
import { AgentPrometheus } from './prometheus.js';
import { PROMETHEUS_CONTENT_TYPE } from '../log/prometheus.js';
import type { InterfaceTable } from './candidates.js';
import { MeshInterface, type MeshInterfaceOptions } from './mesh-interface.js';
import { NatServices } from './nat-services.js';
import { PATH_GRACE_MS, PathProblems } from './path-problems.js';
import { attemptRotation, type RotationStep } from './key-rotation.js';
import { BridgeAccess, linuxAccessHost, type AccessHost } from './bridge-access.js';
import { PeerRoutes } from './peer-routes.js';
import { PolicyEnforcer, type PolicyReport } from './policy-enforcer.js';
import { controlHttpClient, ensureRegistered, registerNode } from './registration.js';
import { healthRoutes, nodeApiRoutes } from './routes.js';
import { NodeState, SYNC_TIMING } from './node-state.js';
import { peersDocument, statusDocument, type StatusInputs } from './status.js';
import { openStore, StoreError, type Identity, type Store } from './store.js';
import { AuditLogReader } from './audit-log.js';
import { TelemetryService, telemetryRoutes, type TelemetryServiceOptions } from './telemetry/service.js';
import { tapLogger } from './telemetry/sources.js';
import { detectKubernetes, type KubernetesEnvironment } from './kubernetes.js';
import { actionRoutes, ActionsService } from './actions/service.js';
import { LogRing, recordingLogger } from './actions/builtins.js';

export { ensureRegistered, generatePrivateKey, publicKeyOf };

/** Heartbeat period (plexd-api.md): 30 s, the first one immediately. */
export const HEARTBEAT_INTERVAL_MS = 30_000;
/** A repeated rotate_keys signal within this window is skipped. */
export const ROTATE_KEYS_MIN_INTERVAL_MS = 5 * 60_000;
/** After a failed re-registration the next one waits for a 401 at least this long after it
 *  (ms), doubling per failure in a row up to RE_REGISTER_MAX_BACKOFF_MS: without a token every
 *  heartbeat is a 401, and each attempt would cost a request and an error line. */
export const RE_REGISTER_MIN_BACKOFF_MS = 1000;
/** The longest wait between re-registration attempts (ms). */
export const RE_REGISTER_MAX_BACKOFF_MS = 5 * 60_000;

/** Options of {@link Agent.start}. */
export interface AgentOptions {
  readonly config: AgentConfig;
  readonly logger: Logger;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The device's crypto provider and UDP bind kind (the CLI's PLEXD_CRYPTO / PLEXD_BIND). */
  readonly device?: Pick<MeshInterfaceOptions, 'crypto' | 'bindKind'>;
  /** Test hooks: shorter periods. */
  readonly heartbeatIntervalMs?: number;
  readonly eventStreamTimings?: Partial<EventStreamTimings>;
  readonly uapiSocketDir?: string;
  /** Start the health server (default true). */
  readonly health?: boolean;
  /** Start the node API socket (default true). */
  readonly nodeApi?: boolean;
  /** Test hooks (docs/nat.md "Endpoint candidates"): the interface table candidates are read from, how often (ms), and the
   *  grace period before a peer without an endpoint is a path problem (ms). */
  readonly interfaces?: () => InterfaceTable;
  readonly candidatePollMs?: number;
  readonly pathGraceMs?: number;
  /** Test hook: awaited after each key rotation step (crash tests make it never resolve). */
  readonly rotationHook?: (step: RotationStep) => void | Promise<void>;
  /** Where the agent reads time (default the system clock; tests pass a ManualClock). Timers still
   *  run on the event loop. */
  readonly clock?: Clock;
  /** Test hook: the bridge access side's host (default the real one; bridge mode with a TUN only). */
  readonly accessHost?: AccessHost;
  /** Test hooks (docs/deploy.md "Kubernetes"): the service account directory in-cluster detection
   *  looks at, and the audit log's poll period (ms, default 1000). */
  readonly serviceAccountDir?: string;
  readonly auditPollMs?: number;
  /** Test hooks of the telemetry upload (docs/operations.md "Telemetry"): intervals in ms, and the
   *  journalctl runner (null: no journald source). */
  readonly telemetryIntervalsMs?: TelemetryServiceOptions['intervalsMs'];
  readonly telemetryJournal?: TelemetryServiceOptions['journal'];
}

/**
 * SHA-256 (hex) of the running script, the heartbeat's binary_checksum; '' when unreadable. Once
 * per process: for the standalone binary (argv[1] is the executable) it hashes ~90 MB.
 */
function binaryChecksum(): string {
  if (processChecksum !== undefined) return processChecksum;
  try {
    processChecksum = createHash('sha256').update(readFileSync(process.argv[1] ?? '')).digest('hex');
  } catch {
    processChecksum = '';
  }
  return processChecksum;
}
let processChecksum: string | undefined;

/** Feeds a state's policy block to `policy` and logs the outcome; returns it. */
function logPolicyUpdate(log: Logger, policy: PolicyEnforcer, block: WirePolicy | null, why: string, telemetry?: TelemetryService): ReturnType<PolicyEnforcer['update']> {
  const r = policy.update(block);
  // A policy change is a security event (audit upload): what came, from where, and the outcome.
  if (r === 'applied' || r === 'cleared' || r === 'rejected') {
    telemetry?.security(`policy_${r}`, { subject: { source: why }, object: block === null ? 'policy' : `policy/${block.revision_id}`, action: 'policy_update', result: r === 'rejected' ? 'failure' : 'success', raw: r === 'rejected' ? (policy.lastError ?? '') : '' });
  }
  if (r === 'applied') log.info(`policy (${why}): revision ${block!.revision_id} in force, ${block!.rules.length} rules, fingerprint ${block!.fingerprint.slice(0, 16)}`);
  else if (r === 'cleared') log.info(`policy (${why}): none set; deny all mesh traffic`);
  else if (r === 'rejected') log.error(`policy (${why}) refused, previous revision stays in force: ${policy.lastError ?? ''}`);
  return r;
}

/** A running agent. */
export class Agent {
  readonly config: AgentConfig;
  readonly store: Store;
  readonly iface: MeshInterface;
  /** The interface's policy filter and the revision in force (docs/policy.md). */
  readonly policy: PolicyEnforcer;
  readonly client: ControlClient;
  readonly verifier: EnvelopeVerifier;
  readonly events: EventStream;
  readonly counters = { heartbeats: 0, heartbeatFailures: 0, reconciles: 0, reconcileFailures: 0, statesRefused: 0, keyRotations: 0, reRegistrations: 0, reRegistrationFailures: 0 };
  #identity: Identity;
  /** The private key of #identity as owned bytes, and its public key (derived once per key). */
  readonly #keys: NodeKeys;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #reconciler = new Reconciler();
  readonly #stop = new AbortController();
  readonly #servers: LocalServer[] = [];
  /** The node API's state, secrets and reports (node-state.ts). */
  readonly nodeState: NodeState;
  /** wireguard.netstack: the SOCKS5 proxy and port forwards into the mesh (net/proxy.ts). */
  readonly #netstackServers: NodeServer[] = [];
  readonly #heartbeatMs: number;
  /** The project we registered in: the scope `project:<id>` of project-wide events. */
  readonly #projectId: string;
  #peers: readonly PeerInfo[] = [];
  #stateApplied = false;
  #reconcileRunning: Promise<void> | undefined;
  #reconcileAgain = false;
  #lastRotation = -Infinity;
  #rotating = false;
  #rotationRetryMs = 0;
  readonly #rotationHook: AgentOptions['rotationHook'];
  /** Wall-clock ms of the last successful heartbeat / reconcile. */
  #lastHeartbeatMs: number | undefined;
  #lastReconcileMs: number | undefined;
  /** The heartbeat's binary_checksum, hashed at the first heartbeat. */
  #binaryChecksum: string | undefined;
  #loops: Promise<void>[] = [];
  #stopped = false;
  #reRegistering = false;
  /** Failed re-registrations in a row, and the monotonic ms before which a 401 starts none. */
  readonly #reRegisterBackoff = new Backoff({ initialMs: RE_REGISTER_MIN_BACKOFF_MS, maxMs: RE_REGISTER_MAX_BACKOFF_MS, jitter: 0 });
  #reRegisterNotBefore = -Infinity;
  /** STUN, endpoint discovery, relay paths, bridge relay (src/agent/nat-services.ts). */
  #nat: NatServices | undefined;
  /** STUN servers the control plane offers (registration response, then each state). */
  #offeredStun: readonly string[] = [];
  /** Peers without a usable endpoint (docs/agent.md "Readiness and path problems"). */
  readonly #pathProblems: PathProblems;
  readonly #pathGraceMs: number;
  /** Bridge mode: user access and site-to-site tunnels (bridge-access.ts). */
  #access: BridgeAccess | undefined;
  /** Kernel routes for peers' extra allowed IPs (TUN mode; peer-routes.ts). */
  #peerRoutes: PeerRoutes | undefined;
  /** Remote actions and hooks (./actions/service.ts). */
  #actions: ActionsService | undefined;
  /** Recent log lines (logs.snapshot). */
  readonly #logRing: LogRing;
  /** Set in a Kubernetes pod (./kubernetes.ts), with the audit log it follows. */
  #kubernetes: { readonly env: KubernetesEnvironment; readonly audit: AuditLogReader } | undefined;
  /** /metrics on the health listener (prometheus.ts; docs/operations.md "Prometheus metrics"). */
  readonly prometheus: AgentPrometheus;
  /** Telemetry upload (./telemetry/service.ts); undefined until started. */
  #telemetry: TelemetryService | undefined;

  private constructor(opts: AgentOptions, store: Store, identity: Identity, keys: NodeKeys, iface: MeshInterface, policy: PolicyEnforcer) {
    this.config = opts.config;
    this.store = store;
    this.#identity = identity;
    this.#keys = keys;
    this.#clock = opts.clock ?? systemClock;
    this.#logRing = new LogRing(10_000, () => this.#clock.wallMs());
    this.iface = iface;
    this.policy = policy;
    this.#log = recordingLogger(opts.logger, this.#logRing);
    this.#env = opts.env ?? process.env;
    this.#heartbeatMs = opts.heartbeatIntervalMs ?? opts.config.heartbeat.intervalS * 1000;
    this.#rotationHook = opts.rotationHook;
    this.#projectId = opts.config.registration.projectId ?? 'default';
    this.#pathGraceMs = opts.pathGraceMs ?? PATH_GRACE_MS;
    this.#pathProblems = new PathProblems(this.#pathGraceMs, (m) => this.#log.error(m));
    this.client = new ControlClient(controlHttpClient(opts.config), { nodeId: identity.node_id, nsk: identity.nsk });
    const clock = this.#clock;
    this.nodeState = new NodeState({
      client: this.client,
      nsk: () => Buffer.from(this.#identity.nsk, 'base64'),
      clock,
      timing: { ...SYNC_TIMING, debounceMs: opts.config.nodeApi.debounceS * 1000 },
      log: (line) => this.#log.info(line),
    });
    const agent = this;
    this.verifier = new EnvelopeVerifier(new SigningKeyring(identity.signing_key_id, identity.signing_public_key), { nodeId: identity.node_id, projectId: this.#projectId }, { wallMs: () => clock.wallMs() });
    this.verifier.onKeyRotated = (keyId, pub) => {
      this.#log.info(`signing key rotated to ${keyId}`);
      this.store.saveSigningKey(this.#identity, keyId, pub);
      this.#identity = { ...this.#identity, signing_key_id: keyId, signing_public_key: pub };
    };
    this.events = new EventStream({
      open: (id, signal) => this.client.openEvents(id, signal),
      onEvent: (ev) => this.#onEvent(ev.data),
      onConnected: () => this.requestReconcile(),
      poll: () => this.reconcileNow(),
      onUnauthorized: () => void this.#unauthorized(),
      log: (m) => this.#log.verbose(m),
      ...(opts.eventStreamTimings ? { timings: opts.eventStreamTimings } : {}),
    });
    this.prometheus = new AgentPrometheus(
      {
        device: iface.device,
        nodeIds: () => new Map(this.#peers.map((p) => [p.public_key, p.node_id])),
        pathOf: (key) => this.#nat?.paths.pathOf(key) ?? 'direct',
        policy: () => this.policy.snapshot(),
        events: this.events,
        counters: this.counters,
        get ready() {
          return agent.ready;
        },
        wallMs: () => clock.wallMs(),
      },
      iface.device,
    );
  }

  /**
   * Registers if needed, brings the interface up (on cached state first), and starts heartbeats,
   * events, the health server and the node API. Rejects with RegistrationError, StoreError, or
   * the interface/bind error; nothing is left running then.
   */
  static async start(opts: AgentOptions): Promise<Agent> {
    // Our own log lines are a log source of the telemetry upload once it runs.
    let ownLog: TelemetryService | undefined;
    const log = tapLogger(opts.logger, (severity, message) => ownLog?.ownLog(severity, message));
    opts = { ...opts, logger: log };
    const { config } = opts;
    const store = openStore(config.dataDir);
    const reg = await ensureRegistered(config, store, log, opts.env ?? process.env, undefined, opts.clock ?? systemClock);
    if (!reg.fresh) log.info(`using the stored identity: node ${reg.identity.node_id}, mesh IP ${reg.identity.mesh_ip}`);
    const cached = store.loadState();
    const parsedCache = cached === undefined ? undefined : parseStateResponse(cached);
    // The filter exists (deny all, or the cached revision) before the device carries a packet or
    // a peer is configured, so an offline restart enforces the last policy from the first packet on.
    const policy = new PolicyEnforcer({ enabled: config.policy.enabled });
    if (!config.policy.enabled) log.info('policy.enabled is false: policy enforcement off, all mesh traffic allowed');
    if (parsedCache?.ok === true) logPolicyUpdate(log, policy, parsedCache.value.policy, 'cached state');
    let keys: NodeKeys;
    try {
      keys = new NodeKeys(reg.identity.private_key);
    } catch (err) {
      throw new StoreError(`${config.dataDir}: private_key is not 32 bytes of base64; remove the data_dir to register again`, { cause: err });
    }
    let iface: MeshInterface;
    try {
      iface = await MeshInterface.open({
        filter: policy.filter,
        packetCallback: config.wireguard.packetCallback,
        netstack: config.wireguard.netstack,
        interfaceName: config.wireguard.interfaceName,
        listenPort: config.wireguard.listenPort,
        mtu: config.wireguard.mtu,
        bindAddress: config.wireguard.bindAddress,
        meshIp: reg.identity.mesh_ip,
        meshCidr: reg.identity.domain_mesh_cidr,
        logger: log.child(`(${config.wireguard.interfaceName}) `),
        ...(opts.uapiSocketDir ? { uapiSocketDir: opts.uapiSocketDir } : {}),
        ...opts.device,
      });
    } catch (err) {
      keys.close();
      throw err;
    }
    const agent = new Agent(opts, store, reg.identity, keys, iface, policy);
    try {
      await iface.device.configure({ privateKey: keys.privateKey });
      if (!iface.userspace) agent.#peerRoutes = new PeerRoutes(iface.name, runCommand, log.child('(routes) '));
      if (config.mode === 'bridge') {
        if (iface.userspace && opts.accessHost === undefined) log.info('bridge: user access and site-to-site need a TUN interface; off in packet-callback mode');
        else {
          agent.#access = BridgeAccess.open({
            dataDir: config.dataDir,
            config: config.bridge,
            meshInterface: iface.name,
            reservedPorts: [config.wireguard.listenPort, config.bridge.relayListenPort],
            policyEnabled: config.policy.enabled,
            host: opts.accessHost ?? linuxAccessHost({ mtu: config.wireguard.mtu, logger: log, ...opts.device }),
            log: log.child('(access) '),
          });
          log.info(`bridge: access public key ${agent.#access.accessPublicKey}, site-to-site public key ${agent.#access.tunnelPublicKey}`);
          if (parsedCache?.ok === true) await agent.#access.reconcile(parsedCache.value.bridge, parsedCache.value.policy);
        }
      }
      agent.#offeredStun = reg.fresh ? reg.stunServers : parsedCache?.ok === true ? (parsedCache.value.stun_servers ?? []) : [];
      agent.#nat = await NatServices.start({
        config,
        device: iface.device,
        client: agent.client,
        auth: () => ({ nodeId: agent.#identity.node_id, nsk: agent.#identity.nsk }),
        offeredStun: () => agent.#offeredStun,
        meshCidr: () => agent.#identity.domain_mesh_cidr,
        privateKey: () => agent.#identity.private_key,
        clock: agent.#clock,
        ...(opts.device?.crypto ? { crypto: opts.device.crypto } : {}),
        ...(opts.interfaces ? { interfaces: opts.interfaces } : {}),
        ...(opts.candidatePollMs !== undefined ? { candidatePollMs: opts.candidatePollMs } : {}),
        log: log.child('(nat) '),
      });
      if (parsedCache?.ok === true) {
        await agent.#apply(parsedCache.value.peers, 'cached state');
      } else if (reg.peers.length > 0) {
        await agent.#apply(reg.peers, 'registration snapshot');
      }
      if (opts.health !== false && config.health.listen !== '' ) agent.#servers.push(await startTcpServer(config.health.listen, healthRoutes(agent), {}, { '/metrics': async () => [200, PROMETHEUS_CONTENT_TYPE, await agent.prometheus.metrics()] }));
      if (parsedCache?.ok === true) agent.nodeState.applyState(parsedCache.value.state);
      const apiRoutes = { ...nodeApiRoutes(agent), ...agent.nodeState.routes(), ...telemetryRoutes(() => agent.telemetryStatus()), ...actionRoutes(() => agent.#actions) };
      if (opts.nodeApi !== false && config.nodeApi.socket !== '') agent.#servers.push(await startUnixServer(config.nodeApi.socket, apiRoutes));
      if (opts.nodeApi !== false && config.nodeApi.httpEnabled) {
        agent.#servers.push(await startTcpServer(config.nodeApi.httpListen, apiRoutes, {}, {}, { bearerToken: readNodeApiToken(config.nodeApi.httpTokenFile) }));
        log.info(`node API: also on http://${config.nodeApi.httpListen} (bearer token from ${config.nodeApi.httpTokenFile})`);
      }
      agent.#telemetry = ownLog = agent.#startTelemetry(opts);
      await agent.#startNetstackEntries(config, log);
      agent.#followKubernetes(opts);
      agent.#startActions();
    } catch (err) {
      await agent.stop();
      throw err;
    }
    agent.#loops.push(agent.#heartbeatLoop(), agent.#nat!.run(agent.#stop.signal), agent.#reconcileLoop(), agent.#pathCheckLoop());
    agent.events.start();
    // A rotation staged before a crash or stop: resubmit it now (key-rotation.ts).
    if (store.loadPendingKey() !== undefined) void agent.rotateKeys();
    return agent;
  }

  /** The telemetry upload (docs/operations.md "Telemetry"): metrics, logs, audit. */
  #startTelemetry(opts: AgentOptions): TelemetryService {
    const t = new TelemetryService({
      settings: this.config.telemetry,
      dataDir: this.config.dataDir,
      client: this.client,
      log: this.#log.child('(telemetry) '),
      now: () => this.#clock.now(),
      tunnels: () => this.#tunnelStats(),
      ...(opts.telemetryIntervalsMs === undefined ? {} : { intervalsMs: opts.telemetryIntervalsMs }),
      ...(opts.telemetryJournal === undefined ? {} : { journal: opts.telemetryJournal }),
    });
    t.start();
    return t;
  }

  /** The device's per-peer counters, by node id, for the `tunnel` metric group. */
  #tunnelStats(): Array<{ peerId: string; lastHandshakeMs: number | null; rxBytes: number; txBytes: number; staleAfterMs: number }> {
    const byKey = new Map(this.#peers.map((p) => [p.public_key, p.node_id]));
    const out = [];
    for (const p of this.iface.device.peers()) {
      const key = encodeBase64(p.publicKey);
      const hs = p.lastHandshakeTimeSec === 0 ? null : p.lastHandshakeTimeSec * 1000 + Math.floor(p.lastHandshakeTimeNsec / 1e6);
      // REJECT_AFTER_TIME (180 s, whitepaper 6.1): past it the session is gone.
      out.push({ peerId: byKey.get(key) ?? key, lastHandshakeMs: hs, rxBytes: Number(p.rxBytes), txBytes: Number(p.txBytes), staleAfterMs: 180_000 });
    }
    return out;
  }

  /** The telemetry upload's counters (`log-status`, `audit`); undefined before it started. */
  telemetryStatus(): ReturnType<TelemetryService['status']> | undefined {
    return this.#telemetry?.status();
  }


  /** Remote actions (docs/operations.md "Remote actions"): the runner, hooks and the manifest. */
  #startActions(): void {
    const startedAtMs = this.#clock.wallMs();
    const rfc = (ms: number | undefined) => (ms === undefined ? undefined : formatRfc3339(ms));
    this.#actions = new ActionsService({
      config: this.config,
      client: this.client,
      log: this.#log.child('(actions) '),
      host: {
        nodeId: () => this.#identity.node_id,
        meshIp: () => this.#identity.mesh_ip,
        peerCount: () => [...this.iface.device.peers()].length,
        connectedPeers: () => [...this.iface.device.peers()].filter((p) => p.lastHandshakeTimeSec > 0 && this.#clock.wallMs() - p.lastHandshakeTimeSec * 1000 < 180_000).length,
        lastHeartbeat: () => rfc(this.#lastHeartbeatMs),
        lastReconcile: () => rfc(this.#lastReconcileMs),
        startedAtMs,
        wallMs: () => this.#clock.wallMs(),
        reconnect: () => this.reconcileNow(),
        config: () => this.config,
        logs: () => this.#logRing.lines(),
      },
    });
    this.#actions.start();
  }

  /** The remote actions service (undefined before start). */
  get actions(): ActionsService | undefined {
    return this.#actions;
  }

  /** In a Kubernetes pod: says so, and follows the audit log, whose events go to the audit upload. */
  #followKubernetes(opts: AgentOptions): void {
    const env = detectKubernetes(opts.env ?? process.env, opts.serviceAccountDir);
    if (env === undefined) return;
    const telemetry = this.#telemetry;
    const audit = new AuditLogReader({ path: this.config.kubernetes.auditLogPath, ...(telemetry === undefined ? {} : { onEvent: (e) => telemetry.k8sAudit(e) }) });
    this.#kubernetes = { env, audit };
    this.#log.info(`running in Kubernetes (namespace ${env.namespace ?? '?'}, node ${env.node ?? '?'}); following the audit log ${audit.path}`);
    audit.start(opts.auditPollMs ?? 1000);
  }

  /** The node's identity (no secrets beyond what the data_dir holds). */
  get identity(): Identity {
    return this.#identity;
  }

  /** The health server's port (0 when not running). */
  get healthPort(): number {
    return this.#servers[0]?.port ?? 0;
  }

  /** Ready: registered, interface up, a state applied (from the server or the cache), and not every
   *  peer without a usable endpoint past the grace period (docs/agent.md "Readiness"). */
  get ready(): boolean {
    return this.notReadyReason === undefined;
  }

  /** Why the agent is not ready, or undefined when it is. */
  get notReadyReason(): string | undefined {
    if (this.#stopped || this.iface.device.closed) return 'stopped';
    if (!this.#stateApplied) return 'no state applied yet';
    return this.#pathProblems.notReadyReason;
  }

  // ---- reconcile ------------------------------------------------------------------------------

  /** Counts and logs a peer list that cannot be applied (refusePeerList); true when refused. The
   *  last good state stays in force: nothing of the refused one is applied or cached. */
  #refused(peers: readonly PeerInfo[], why: string): boolean {
    const reason = refusePeerList(peers);
    if (reason === undefined) return false;
    this.counters.statesRefused++;
    this.#log.error(`reconcile (${why}): state refused, ${reason}; keeping the last applied state`);
    return true;
  }

  async #apply(peers: readonly PeerInfo[], why: string): Promise<void> {
    if (this.#refused(peers, why)) return;
    const own = this.#keys.publicKey;
    const plan = this.#reconciler.plan({ peers: this.iface.device.peers() }, peers.filter((p) => p.node_id !== this.#identity.node_id), own);
    if (plan.config !== undefined) {
      await this.iface.device.configure(plan.config);
      this.#reconciler.commit(plan);
      this.#log.info(`reconcile (${why}): +${plan.added.length} -${plan.removed.length} ~${plan.changed.length} peers`);
    }
    for (const s of plan.skipped) this.#log.verbose(`reconcile: skipped peer ${s}`);
    this.#peers = peers;
    this.#stateApplied = true;
    await this.#peerRoutes?.sync(peers.filter((p) => p.node_id !== this.#identity.node_id), this.#identity.domain_mesh_cidr);
  }

  /** Pulls state and applies it now (serialized with other reconciles). Rejects on failure. */
  async reconcileNow(): Promise<void> {
    this.requestReconcile();
    await this.#reconcileRunning;
  }

  /** Asks for a reconcile; concurrent requests coalesce into at most one more run. */
  requestReconcile(): void {
    if (this.#stopped) return;
    if (this.#reconcileRunning !== undefined) {
      this.#reconcileAgain = true;
      return;
    }
    this.#reconcileRunning = (async () => {
      do {
        this.#reconcileAgain = false;
        try {
          const state: StateResponse = await this.client.state(this.#stop.signal);
          if (this.#stopped) return;
          if (this.#refused(state.peers, 'state pull')) continue;
          // Policy before peers: a peer the new state adds never sees the old revision.
          const policyChanged = logPolicyUpdate(this.#log, this.policy, state.policy, 'state pull', this.#telemetry) === 'applied';
          this.#offeredStun = state.stun_servers ?? [];
          await this.#apply(state.peers, 'state pull');
          await this.#nat?.onState(state);
          this.nodeState.applyState(state.state);
          const accessBefore = JSON.stringify(this.#access?.heartbeat());
          await this.#access?.reconcile(state.bridge, state.policy);
          this.store.saveState(state);
          this.#actions?.onState(state);
          // A new policy revision or access side change is reported at once, not at the next beat.
          if (policyChanged || JSON.stringify(this.#access?.heartbeat()) !== accessBefore) void this.#heartbeat(this.#stop.signal);
          this.counters.reconciles++;
          this.#lastReconcileMs = this.#clock.wallMs();
        } catch (err) {
          this.counters.reconcileFailures++;
          if (!this.#stopped) this.#log.error(`reconcile failed: ${(err as Error).message}`);
          if (err instanceof ApiError && err.status === 401) void this.#unauthorized();
        }
      } while (this.#reconcileAgain && !this.#stopped);
    })().finally(() => {
      this.#reconcileRunning = undefined;
    });
  }

  // ---- events -----------------------------------------------------------------------------------

  #onEvent(data: string): void {
    const env: EventEnvelope | undefined = this.verifier.accept(data);
    if (env === undefined) {
      this.#log.verbose(`event rejected (drops: ${JSON.stringify(this.verifier.drops)})`);
      this.#telemetry?.security('envelope_rejected', { subject: { node_id: this.#identity.node_id }, object: 'event', action: 'verify_envelope', result: 'failure', raw: JSON.stringify(this.verifier.drops) });
      return;
    }
    switch (env.type) {
      case 'signing_key_rotated':
        return; // applied by the verifier
      case 'rotate_keys':
        void this.rotateKeys();
        return;
      // action_request is opaque (upstream): it only triggers the pull that carries the entry.
      default:
        this.requestReconcile();
    }
  }

  /**
   * Mesh key rotation, crash-safe (src/agent/key-rotation.ts): stage the new key on disk, POST
   * /v1/keys/rotate, commit it as private_key, then swap the device's key. Peers learn the new key
   * through the control plane and handshake again. A staged key left by a crash or a transient
   * failure is resubmitted (at start, then with backoff 5 s -> 2 min); without one, a signal within
   * 5 minutes of the last rotation is skipped.
   */
  async rotateKeys(): Promise<boolean> {
    const now = this.#clock.now();
    const recovering = this.store.loadPendingKey() !== undefined;
    if (!recovering && now - this.#lastRotation < ROTATE_KEYS_MIN_INTERVAL_MS) {
      this.#log.verbose('rotate_keys within 5 min of the last rotation; skipped');
      return false;
    }
    if (this.#rotating) return false;
    this.#rotating = true;
    this.#lastRotation = now;
    try {
      const r = await attemptRotation({
        store: this.store,
        submit: (pub) => this.client.rotateKeys(pub, this.#stop.signal),
        generate: generatePrivateKey,
        publicKeyOf,
        ...(this.#rotationHook ? { hook: this.#rotationHook } : {}),
      });
      if (r.outcome !== 'committed') {
        if (r.outcome === 'discarded') this.#log.error(`key rotation refused, staged key discarded: ${r.reason}`);
        else if (!this.#stopped) {
          this.#rotationRetryMs = Math.min((this.#rotationRetryMs || 2500) * 2, 120_000);
          this.#log.error(`key rotation failed, staged key kept; resubmitting in ${this.#rotationRetryMs / 1000} s: ${r.reason}`);
          void sleep(this.#rotationRetryMs, this.#stop.signal).then(() => this.rotateKeys(), () => undefined);
        }
        return false;
      }
      this.#rotationRetryMs = 0;
      this.#identity = { ...this.#identity, private_key: r.privateKey };
      this.#keys.replace(r.privateKey);
      await this.iface.device.configure({ privateKey: this.#keys.privateKey });
      this.counters.keyRotations++;
      this.#log.info(recovering ? 'mesh key rotated (a staged rotation recovered)' : 'mesh key rotated');
      this.requestReconcile();
      return true;
    } catch (err) {
      if (!this.#stopped) this.#log.error(`key rotation failed: ${(err as Error).message}`);
      return false;
    } finally {
      this.#rotating = false;
    }
  }

  async #unauthorized(): Promise<void> {
    if (this.#reRegistering || this.#stopped || this.#clock.now() < this.#reRegisterNotBefore) return;
    this.#reRegistering = true;
    try {
      // Once per run of failures; each failed attempt says why and when the next may start.
      this.#telemetry?.security('auth_failure', { subject: { node_id: this.#identity.node_id }, object: 'control-plane', action: 'authenticate', result: 'failure', raw: 'HTTP 401' });
      if (this.#reRegisterBackoff.attempt === 0) this.#log.error('the control plane rejected our credential (401); registering again');
      else this.#log.verbose(`registering again (attempt ${this.#reRegisterBackoff.attempt + 1})`);
      const previous = this.#identity;
      const { identity, response: res } = await registerNode(
        { config: this.config, store: this.store, client: this.client, log: this.#log, env: this.#env, clock: this.#clock, signal: this.#stop.signal },
        previous.private_key,
        this.#keys.publicKey,
        previous,
      );
      this.#identity = identity;
      this.client.setAuth({ nodeId: res.node_id, nsk: res.nsk });
      // Events for the new node id; from another control plane, under its key and its sequence.
      this.verifier.rebind({ nodeId: res.node_id, projectId: this.#projectId }, res.signing_key_id, res.signing_public_key);
      this.counters.reRegistrations++;
      this.#reRegisterBackoff.reset();
      this.#reRegisterNotBefore = -Infinity;
      if (res.mesh_ip !== this.iface.meshIp || res.domain_mesh_cidr !== previous.domain_mesh_cidr) {
        // The control plane may hand out another address: the interface (and in packet-callback
        // mode the echo responder) moves to it, so the node stays reachable without a restart.
        await this.iface.setMeshIp(res.mesh_ip, res.domain_mesh_cidr);
        this.#log.info(`mesh IP moved from ${previous.mesh_ip} to ${res.mesh_ip}`);
      }
      // To our peers we are a new node (new id, new pair PSKs): they dropped our sessions, and
      // ours would carry on unanswered until WireGuard's 15 s no-reply rekey. Drop them too; the
      // reconcile re-adds every peer, and the next packet starts a handshake.
      await this.iface.device.configure({ replacePeers: true });
      this.requestReconcile();
    } catch (err) {
      this.counters.reRegistrationFailures++;
      const waitMs = this.#reRegisterBackoff.next();
      this.#reRegisterNotBefore = this.#clock.now() + waitMs;
      this.#log.error(`re-registration failed: ${(err as Error).message}; staying up on cached state; next attempt at the first 401 after ${waitMs / 1000} s`);
    } finally {
      this.#reRegistering = false;
    }
  }

  // ---- periodic work ------------------------------------------------------------------------------

  async #heartbeatLoop(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      await this.#heartbeat(signal);
      await sleep(this.#heartbeatMs, signal).catch(() => undefined);
    }
  }

  /** One heartbeat; also sent out of turn right after a new policy revision took force. */
  async #heartbeat(signal: AbortSignal): Promise<void> {
    let sentAt: number | undefined;
    try {
      // nat_summary stays {} (plexd: "before discovery"): the configured endpoint travels only by
      // PUT /endpoint, whose change is what tells the peers. `policy` is ours (docs/agent.md): the
      // revision in force; servers that do not know the field ignore it.
      const body: HeartbeatRequest & { readonly policy: PolicyReport & Pick<HeartbeatPolicyReport, 'rule_hits'> } = {
        client_now: formatRfc3339(this.#clock.wallMs()),
        binary_checksum: (this.#binaryChecksum ??= binaryChecksum()),
        binary_version: VERSION,
        nat_summary: this.#nat?.summary ?? {},
        policy: { ...this.policy.report(), rule_hits: this.policy.ruleHits() },
        ...this.#access?.heartbeat(),
      };
      sentAt = this.#clock.now();
      const res = await this.client.heartbeat(body, signal);
      this.prometheus.observeHeartbeat((this.#clock.now() - sentAt) / 1000, true);
      this.counters.heartbeats++;
      this.#lastHeartbeatMs = this.#clock.wallMs();
      if (res.reconcile) this.requestReconcile();
      if (res.rotate_keys) void this.rotateKeys();
    } catch (err) {
      if (signal.aborted) return;
      if (sentAt !== undefined) this.prometheus.observeHeartbeat((this.#clock.now() - sentAt) / 1000, false);
      this.counters.heartbeatFailures++;
      this.#log.verbose(`heartbeat failed: ${(err as Error).message}`);
      if (err instanceof ApiError && err.status === 401) void this.#unauthorized();
    }
  }

  /** Pulls state every reconcile.interval, also while the event stream is connected (a missed or
   *  refused event heals within one period). */
  async #reconcileLoop(): Promise<void> {
    const signal = this.#stop.signal;
    const every = this.config.reconcile.intervalS * 1000;
    if (every <= 0) return;
    while (!signal.aborted) {
      await sleep(every, signal).catch(() => undefined);
      if (!signal.aborted) this.requestReconcile();
    }
  }

  /** Looks for peers without a usable endpoint (path-problems.ts) a few times per grace period. */
  async #pathCheckLoop(): Promise<void> {
    const signal = this.#stop.signal;
    const every = Math.max(50, Math.min(5000, this.#pathGraceMs / 3));
    while (!signal.aborted) {
      await sleep(every, signal).catch(() => undefined);
      if (!signal.aborted) this.checkPaths();
    }
  }

  /** Re-evaluates path problems now (also run periodically). */
  checkPaths(): void {
    if (!this.#stateApplied) return;
    const withEndpoint = new Set<string>();
    for (const p of this.iface.device.peers()) if (p.endpoint !== null) withEndpoint.add(encodeBase64(p.publicKey));
    const own = this.#keys.publicKey;
    const peers = this.#peers.filter((p) => p.node_id !== this.#identity.node_id && p.public_key !== own);
    this.#pathProblems.check(peers.map((info) => ({ info, deviceHasEndpoint: withEndpoint.has(info.public_key) })), this.#clock.now());
  }

  // ---- local servers ------------------------------------------------------------------------------

  #statusInputs(): StatusInputs {
    return {
      identity: this.#identity,
      config: this.config,
      iface: this.iface,
      publicKey: this.#keys.publicKey,
      events: this.events,
      verifier: this.verifier,
      policy: this.policy,
      nat: this.#nat,
      pathProblems: this.#pathProblems,
      peers: this.#peers,
      notReadyReason: this.notReadyReason,
      lastHeartbeatMs: this.#lastHeartbeatMs,
      lastReconcileMs: this.#lastReconcileMs,
      counters: this.counters,
      kubernetes: this.#kubernetes,
    };
  }

  /** The `status` document of the node API (status.ts). */
  status(): Record<string, unknown> {
    const doc = statusDocument(this.#statusInputs());
    return this.#access === undefined ? doc : { ...doc, bridge_access: this.#access.snapshot() };
  }

  /** The `peers` document of the node API: control-plane view joined with the device's. */
  peers(): Array<Record<string, unknown>> {
    return peersDocument({ iface: this.iface, nat: this.#nat, peers: this.#peers, pathProblems: this.#pathProblems });
  }

  /** wireguard.netstack: starts netstack.socks5 and netstack.forward (local listeners into the mesh). */
  async #startNetstackEntries(config: AgentConfig, log: Logger): Promise<void> {
    const net = this.iface.net;
    if (net === undefined) {
      if (config.netstack.socks5 !== undefined || config.netstack.forwards.length > 0) log.info('netstack: --socks5 and --forward need --netstack (wireguard.netstack); not started');
      return;
    }
    if (config.netstack.socks5 !== undefined) {
      this.#netstackServers.push(await startSocks5(net, parseHostPort(config.netstack.socks5), log.child('(socks5) ')));
      log.info(`netstack: SOCKS5 proxy into the mesh on ${config.netstack.socks5}`);
    }
    for (const text of config.netstack.forwards) {
      this.#netstackServers.push(await startForward(net, parseForward(text), log.child('(forward) ')));
      log.info(`netstack: forwarding ${text}`);
    }
  }

  /** Stops everything and removes the interface. Does not deregister. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stop.abort(new Error('agent stopped'));
    await this.events.stop();
    await this.#actions?.stop();
    await Promise.allSettled(this.#loops);
    await this.#reconcileRunning?.catch(() => undefined);
    for (const s of this.#servers.splice(0)) await s.close();
    this.nodeState.close();
    this.prometheus.close();
    for (const s of this.#netstackServers.splice(0)) s.close();
    await this.#kubernetes?.audit.close();
    await this.#telemetry?.stop();
    this.#nat?.close();
    await this.#access?.close();
    await this.#peerRoutes?.close();
    await this.iface.close('agent stopped');
    this.#keys.close();
  }
}

/** The node API's HTTP bearer token (node_api.http_token_file): the file's first line. Throws
 *  ConfigError when the file is unset, unreadable or empty: the listener never runs open. */
function readNodeApiToken(file: string | undefined): string {
  if (file === undefined) throw new ConfigError('node_api.http_token_file', 'node_api.http_enabled needs node_api.http_token_file');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('node_api.http_token_file', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const token = text.split('\n')[0]!.trim();
  if (token.length < 16) throw new ConfigError('node_api.http_token_file', `${file}: expected a token of at least 16 characters on its first line`);
  return token;
}
