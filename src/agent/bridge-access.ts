// The bridge's access side (docs/bridge.md; plexd-api.md "Bridge access side"): user access on a
// WireGuard interface of our own (wg-access, UDP 51822) whose peers are the state's
// bridge.user_access.peers, and one interface per site-to-site tunnel (wg-s2s-<id>, UDP 51823+)
// with routes to the partner's subnets. Reconciled on every state pull (bridge_config_updated leads
// to one) without touching the mesh interface: `null`/absent user_access or site_to_site tears that
// service down, a `null` bridge block ("not populated") leaves everything as it is. Forwarding is
// the kernel's (ip_forward, iptables FORWARD accept rules for our interfaces, MASQUERADE of the
// access range out of the mesh interface when enable_nat); everything we set is undone on close.
// The access key and the one site-to-site key live in the data_dir (0600, atomic writes) so
// printed client and partner configs stay valid across restarts; the bytes are wiped on close.

import { lookup } from 'node:dns/promises';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { BridgeState, Policy as WirePolicy, SiteToSiteInfo, SiteToSiteTunnel, UserAccessInfo } from '../api/types.js';
import { checkAccessPeers, checkTunnels, networkOf, planPeers, splitHostPort, tunnelFingerprint, validInterfaceName } from '../bridge/access/plan.js';
import type { CryptoProvider } from '../core/crypto.js';
import { Device } from '../device/device.js';
import { defaultBind } from '../io/bind-default.js';
import { runCommand } from '../io/command.js';
import { openTun } from '../io/tun-linux.js';
import type { Logger } from '../log/logger.js';
import type { PacketFilter } from '../policy/filter.js';
import type { AgentConfig } from './config.js';
import { generatePrivateKey, NodeKeys } from './keys.js';
import { PolicyEnforcer } from './policy-enforcer.js';
import { writeFileAtomic } from '../io/atomic-file.js';

/** The data_dir file of the user-access private key (base64). */
export const ACCESS_KEY_FILE = 'access_private_key';
/** The data_dir file of the site-to-site private key, shared by every wg-s2s-* interface. */
export const SITE_TO_SITE_KEY_FILE = 'site_to_site_private_key';
/** Keepalive towards a partner gateway (s): keeps its NAT mapping and our endpoint fresh. */
const TUNNEL_KEEPALIVE_S = 25;

/** What the access side does to the host; the real one runs `ip`/`iptables` and opens TUNs,
 *  unit tests pass a recorder with packet-callback devices. */
export interface AccessHost {
  /** A WireGuard device on a TUN named `name`, UDP `listenPort`, `filter` installed, link up. */
  open(name: string, listenPort: number, filter: PacketFilter | undefined): Promise<Device>;
  /** Runs a command (`ip ...`, `iptables ...`); rejects with its stderr. */
  run(argv: readonly string[]): Promise<void>;
  /** Sets net.ipv4.ip_forward; resolves with the previous value. */
  setForwarding(on: boolean): Promise<boolean>;
  /** An IPv4/IPv6 literal for `host`. */
  resolve(host: string): Promise<string>;
}

/** The host as it is: TUN devices, `ip`, `iptables -w`, /proc/sys/net/ipv4/ip_forward, DNS. */
export function linuxAccessHost(opts: { readonly mtu: number; readonly logger: Logger; readonly crypto?: CryptoProvider; readonly bindKind?: string }): AccessHost {
  const forwardFile = '/proc/sys/net/ipv4/ip_forward';
  return {
    async open(name, listenPort, filter) {
      const tun = openTun({ name });
      let device: Device | undefined;
      try {
        device = await Device.create({ tun, bind: defaultBind(opts.bindKind), crypto: opts.crypto, listenPort, logger: opts.logger.child(`(${name}) `), ...(filter ? { filter } : {}) });
        await runCommand(['ip', 'link', 'set', 'dev', tun.name, 'mtu', String(opts.mtu)]);
        await runCommand(['ip', 'link', 'set', 'dev', tun.name, 'up']);
        return device;
      } catch (err) {
        if (device !== undefined) await device.close('setup failed');
        else tun.close();
        throw err;
      }
    },
    run: runCommand,
    async setForwarding(on) {
      const before = readFileSync(forwardFile, 'utf8').trim() === '1';
      if (before !== on) writeFileSync(forwardFile, on ? '1' : '0');
      return before;
    },
    async resolve(host) {
      return isIP(host) !== 0 ? host : (await lookup(host)).address;
    },
  };
}

/** Loads the base64 key in `file`, or generates one and writes it (0600, atomically). */
function loadOrCreateKey(file: string): NodeKeys {
  if (existsSync(file)) return new NodeKeys(readFileSync(file, 'utf8').trim());
  const key = generatePrivateKey();
  writeFileAtomic(file, key);
  return new NodeKeys(key);
}

/** A running service interface and the iptables rules that belong to it. */
interface Running {
  readonly name: string;
  readonly device: Device;
  readonly rules: string[][];
}

interface AccessRunning extends Running {
  readonly port: number;
  readonly address: string;
}

interface TunnelRunning extends Running {
  readonly tunnel: SiteToSiteTunnel;
  readonly fingerprint: string;
}

/** Options of {@link BridgeAccess.open}. */
export interface BridgeAccessOptions {
  readonly dataDir: string;
  readonly config: AgentConfig['bridge'];
  /** The mesh TUN's name (the masquerade's out interface) and the ports the tunnels must not use. */
  readonly meshInterface: string;
  readonly reservedPorts: readonly number[];
  /** policy.enabled (false: user traffic passes unfiltered, as mesh traffic then does). */
  readonly policyEnabled: boolean;
  readonly host: AccessHost;
  readonly log: Logger;
}

/** User access and site-to-site tunnels of a bridge agent. */
export class BridgeAccess {
  /** The wg-access interface's policy (the state's policy block, like the mesh interface's). */
  readonly policy: PolicyEnforcer;
  readonly counters = { reconciles: 0, peersRefused: 0, tunnelsRefused: 0, failures: 0 };
  readonly #o: BridgeAccessOptions;
  readonly #accessKeys: NodeKeys;
  readonly #tunnelKeys: NodeKeys;
  #access: AccessRunning | undefined;
  readonly #tunnels = new Map<string, TunnelRunning>();
  /** The MASQUERADE rule in force (its argv tail), if any. */
  #masquerade: string[] | undefined;
  /** access_interface rules in force. */
  #lanRules: string[][] = [];
  /** ip_forward before we set it; undefined while we have not touched it. */
  #forwardingBefore: boolean | undefined;
  #closed = false;

  private constructor(o: BridgeAccessOptions, accessKeys: NodeKeys, tunnelKeys: NodeKeys) {
    this.#o = o;
    this.#accessKeys = accessKeys;
    this.#tunnelKeys = tunnelKeys;
    this.policy = new PolicyEnforcer({ enabled: o.policyEnabled });
  }

  /** Loads (or creates) the access and site-to-site keys; no interface comes up before a state.
   *  Throws TypeError when a key file holds no valid key. */
  static open(o: BridgeAccessOptions): BridgeAccess {
    const access = loadOrCreateKey(join(o.dataDir, ACCESS_KEY_FILE));
    try {
      return new BridgeAccess(o, access, loadOrCreateKey(join(o.dataDir, SITE_TO_SITE_KEY_FILE)));
    } catch (err) {
      access.close();
      throw err;
    }
  }

  /** The access interface's public key (base64), printed into client configs by the control plane. */
  get accessPublicKey(): string {
    return this.#accessKeys.publicKey;
  }

  /** The public key of every site-to-site interface. */
  get tunnelPublicKey(): string {
    return this.#tunnelKeys.publicKey;
  }

  /** The heartbeat's user_access and site_to_site (with our public keys). */
  heartbeat(): { user_access: UserAccessInfo; site_to_site: SiteToSiteInfo } {
    const a = this.#access;
    return {
      user_access: {
        enabled: a !== undefined,
        interface_name: a?.name ?? this.#o.config.userAccessInterface,
        peer_count: (a === undefined ? 0 : [...a.device.peers()].length),
        listen_port: a?.port ?? this.#o.config.userAccessListenPort,
        public_key: this.#accessKeys.publicKey,
      },
      site_to_site: { enabled: this.#o.config.siteToSiteEnabled, tunnel_count: this.#tunnels.size, public_key: this.#tunnelKeys.publicKey },
    };
  }

  /** The node API view. */
  snapshot(): Record<string, unknown> {
    return {
      user_access: this.#access === undefined ? null : { interface: this.#access.name, listen_port: this.#access.port, address: this.#access.address, peers: [...this.#access.device.peers()].length, masquerade: this.#masquerade !== undefined },
      site_to_site: [...this.#tunnels.values()].map((t) => ({ tunnel_id: t.tunnel.tunnel_id, interface: t.name, listen_port: t.tunnel.listen_port, remote_subnets: t.tunnel.remote_subnets })),
      policy: this.policy.report(),
      counters: this.counters,
    };
  }

  /**
   * Makes the access side equal to `bridge` (null: not populated, nothing changes) and applies
   * `policy` to the access interface. Never throws: refusals and failures are counted and logged,
   * and the other services carry on.
   */
  async reconcile(bridge: BridgeState | null, policy: WirePolicy | null | undefined): Promise<void> {
    if (this.#closed) return;
    const r = this.policy.update(policy);
    if (r === 'rejected') this.#o.log.error(`bridge access: policy refused for user traffic: ${this.policy.lastError ?? ''}`);
    if (bridge === null) return;
    this.counters.reconciles++;
    await this.#step('user access', () => this.#reconcileAccess(bridge));
    await this.#step('site-to-site', () => this.#reconcileTunnels(bridge));
    await this.#step('access_interface', () => this.#reconcileLan(bridge));
    await this.#step('forwarding', () => this.#reconcileForwarding());
  }

  async #step(what: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.counters.failures++;
      this.#o.log.error(`bridge ${what}: ${(err as Error).message}`);
    }
  }

  // ---- user access ------------------------------------------------------------------------------

  async #reconcileAccess(bridge: BridgeState): Promise<void> {
    const ua = bridge.user_access;
    const cfg = this.#o.config;
    if (!cfg.userAccessEnabled || ua === null || ua === undefined || !ua.enabled) {
      if (this.#access !== undefined) this.#o.log.info(`bridge: user access off, ${this.#access.name} removed`);
      await this.#closeAccess();
      return;
    }
    const name = ua.interface_name !== '' ? ua.interface_name : cfg.userAccessInterface;
    const port = ua.listen_port > 0 ? ua.listen_port : cfg.userAccessListenPort;
    const address = ua.address ?? cfg.accessAddress;
    // '%d' would let the kernel pick another name than the one our `ip` commands then address.
    if (!validInterfaceName(name)) throw new Error(`interface_name ${JSON.stringify(name)} is not a Linux interface name (1-15 of A-Z a-z 0-9 _ . -)`);
    if (networkOf(address) === undefined) throw new Error(`access address ${JSON.stringify(address)} is not ADDRESS/LEN`);
    const cur = this.#access;
    if (cur !== undefined && (cur.name !== name || cur.port !== port || cur.address !== address)) await this.#closeAccess();
    if (this.#access === undefined) {
      const device = await this.#o.host.open(name, port, this.policy.filter);
      const running: AccessRunning = { name, port, address, device, rules: [] };
      try {
        await device.configure({ privateKey: this.#accessKeys.privateKey });
        await this.#o.host.run(['ip', 'address', 'replace', address, 'dev', name]);
        await this.#forwardRules(running);
      } catch (err) {
        // Undone so that the next reconcile sets it up again (a half-made interface would match).
        await this.#closeRunning(running);
        throw err;
      }
      this.#access = running;
      this.#o.log.info(`bridge: user access on ${name} (UDP ${port}, ${address})`);
    }
    const access = this.#access!;
    const checked = checkAccessPeers(ua.peers);
    for (const [id, why] of checked.refused) {
      this.counters.peersRefused++;
      this.#o.log.error(`bridge: user access peer ${id} refused: ${why}`);
    }
    const changes = planPeers(access.device.peers(), checked.ok);
    if (changes.length > 0) {
      await access.device.configure({ peers: changes });
      this.#o.log.info(`bridge: user access peers: ${checked.ok.length} (${changes.length} changed)`);
    }
    await this.#reconcileMasquerade(bridge.enable_nat ?? cfg.enableNat, networkOf(address)!);
  }

  async #reconcileMasquerade(on: boolean, range: string): Promise<void> {
    const want = on ? ['-t', 'nat', 'POSTROUTING', '-s', range, '-o', this.#o.meshInterface, '-j', 'MASQUERADE'] : undefined;
    if (JSON.stringify(want) === JSON.stringify(this.#masquerade)) return;
    await this.#dropMasquerade();
    if (want !== undefined) {
      await this.#addRule(want);
      this.#masquerade = want;
    }
  }

  async #dropMasquerade(): Promise<void> {
    const m = this.#masquerade;
    this.#masquerade = undefined;
    if (m !== undefined) await this.#delRule(m);
  }

  async #closeAccess(): Promise<void> {
    const a = this.#access;
    this.#access = undefined;
    await this.#dropMasquerade();
    if (a !== undefined) await this.#closeRunning(a);
  }

  // ---- site-to-site -----------------------------------------------------------------------------

  async #reconcileTunnels(bridge: BridgeState): Promise<void> {
    const s2s = bridge.site_to_site;
    const cfg = this.#o.config;
    const wanted = new Map<string, SiteToSiteTunnel>();
    if (cfg.siteToSiteEnabled && s2s !== null && s2s !== undefined && s2s.enabled) {
      const reserved = new Set([...this.#o.reservedPorts, this.#access?.port ?? cfg.userAccessListenPort]);
      const checked = checkTunnels(s2s.tunnels, reserved, cfg.maxSiteToSiteTunnels);
      for (const [id, why] of checked.refused) {
        this.counters.tunnelsRefused++;
        this.#o.log.error(`bridge: site-to-site tunnel ${id} refused: ${why}`);
      }
      for (const t of checked.ok) wanted.set(t.tunnel_id, t);
    }
    // Removed and changed tunnels go first: a changed one may keep its name or port.
    for (const [id, cur] of [...this.#tunnels]) {
      const w = wanted.get(id);
      if (w !== undefined && tunnelFingerprint(w) === cur.fingerprint) continue;
      this.#tunnels.delete(id);
      await this.#closeRunning(cur);
      this.#o.log.info(`bridge: site-to-site tunnel ${id} ${w === undefined ? 'removed' : 'changed; replacing it'}`);
    }
    for (const [id, t] of wanted) {
      if (this.#tunnels.has(id)) continue;
      try {
        await this.#openTunnel(t);
      } catch (err) {
        this.counters.failures++;
        this.#o.log.error(`bridge: site-to-site tunnel ${id} could not be set up: ${(err as Error).message}`);
      }
    }
  }

  async #openTunnel(t: SiteToSiteTunnel): Promise<void> {
    let endpoint: string | undefined;
    if (t.remote_endpoint !== '') {
      const ep = splitHostPort(t.remote_endpoint)!;
      const ip = await this.#o.host.resolve(ep.host);
      endpoint = ip.includes(':') ? `[${ip}]:${ep.port}` : `${ip}:${ep.port}`;
    }
    const device = await this.#o.host.open(t.interface_name, t.listen_port, undefined);
    const running: TunnelRunning = { name: t.interface_name, device, rules: [], tunnel: t, fingerprint: tunnelFingerprint(t) };
    try {
      await device.configure({
        privateKey: this.#tunnelKeys.privateKey,
        peers: planPeers([], [{ publicKey: t.remote_public_key, allowedIps: t.remote_subnets, ...(t.psk !== undefined ? { psk: t.psk } : {}), ...(endpoint !== undefined ? { endpoint } : {}), keepalive: TUNNEL_KEEPALIVE_S }]),
      });
      for (const subnet of t.remote_subnets) await this.#o.host.run(['ip', 'route', 'replace', subnet, 'dev', t.interface_name]);
      await this.#forwardRules(running);
    } catch (err) {
      await this.#closeRunning(running);
      throw err;
    }
    this.#tunnels.set(t.tunnel_id, running);
    this.#o.log.info(`bridge: site-to-site tunnel ${t.tunnel_id} on ${t.interface_name} (UDP ${t.listen_port}) to ${t.remote_subnets.join(', ')}${endpoint !== undefined ? ` via ${endpoint}` : ''}`);
  }

  // ---- access_interface / access_subnets ----------------------------------------------------------

  /** Traffic between the mesh and a LAN behind access_interface (access_subnets): forwarded, and
   *  masqueraded out of that interface when enable_nat. */
  async #reconcileLan(bridge: BridgeState): Promise<void> {
    const cfg = this.#o.config;
    const subnets = bridge.access_subnets ?? cfg.accessSubnets;
    const lan = cfg.accessInterface;
    const want: string[][] = [];
    if (lan !== '' && subnets.length > 0) {
      want.push(['-t', 'filter', 'FORWARD', '-i', lan, '-o', this.#o.meshInterface, '-j', 'ACCEPT'], ['-t', 'filter', 'FORWARD', '-i', this.#o.meshInterface, '-o', lan, '-j', 'ACCEPT']);
      if (bridge.enable_nat ?? cfg.enableNat) for (const s of subnets) want.push(['-t', 'nat', 'POSTROUTING', '-d', s, '-o', lan, '-j', 'MASQUERADE']);
    }
    if (JSON.stringify(want) === JSON.stringify(this.#lanRules)) return;
    for (const r of this.#lanRules.splice(0)) await this.#delRule(r);
    for (const r of want) {
      await this.#addRule(r);
      this.#lanRules.push(r);
    }
  }

  // ---- forwarding and rules ---------------------------------------------------------------------

  /** ip_forward on while any service runs; back to what it was when none does. */
  async #reconcileForwarding(): Promise<void> {
    const needed = this.#access !== undefined || this.#tunnels.size > 0 || this.#lanRules.length > 0;
    if (needed && this.#forwardingBefore === undefined) this.#forwardingBefore = await this.#o.host.setForwarding(true);
    else if (!needed && this.#forwardingBefore !== undefined) {
      const before = this.#forwardingBefore;
      this.#forwardingBefore = undefined;
      if (!before) await this.#o.host.setForwarding(false);
    }
  }

  /** FORWARD accept rules for traffic in and out of `r`'s interface (hosts with a DROP policy). */
  async #forwardRules(r: Running): Promise<void> {
    for (const dir of ['-i', '-o']) {
      const rule = ['-t', 'filter', 'FORWARD', dir, r.name, '-j', 'ACCEPT'];
      await this.#addRule(rule);
      r.rules.push(rule);
    }
  }

  /** `rule`: table flag, table, chain, match...; FORWARD rules go first, nat rules last. */
  #addRule(rule: readonly string[]): Promise<void> {
    const [t, table, chain, ...spec] = rule;
    return this.#o.host.run(['iptables', '-w', t!, table!, chain === 'FORWARD' ? '-I' : '-A', chain!, ...spec]);
  }

  async #delRule(rule: readonly string[]): Promise<void> {
    const [t, table, chain, ...spec] = rule;
    await this.#o.host.run(['iptables', '-w', t!, table!, '-D', chain!, ...spec]).catch((err: Error) => this.#o.log.error(`bridge: ${err.message}`));
  }

  async #closeRunning(r: Running): Promise<void> {
    for (const rule of r.rules.splice(0)) await this.#delRule(rule);
    // Closing the TUN removes its address and routes with it.
    await r.device.close('bridge access reconcile');
  }

  /** Removes every interface, route and rule the access side made, restores ip_forward, wipes the keys. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#step('close', async () => {
      await this.#closeAccess();
      for (const t of [...this.#tunnels.values()]) await this.#closeRunning(t);
      this.#tunnels.clear();
      for (const r of this.#lanRules.splice(0)) await this.#delRule(r);
      await this.#reconcileForwarding();
    });
    this.#accessKeys.close();
    this.#tunnelKeys.close();
  }
}
