// The agent's WireGuard interface, in one of two shapes:
// - TUN: a real plexd-userspace Device on a TUN named wireguard.interface_name, a UAPI socket so
//   `wg show` works, the mesh IP /32 on the interface and a route for domain_mesh_cidr through it
//   (`ip` commands). Needs root / CAP_NET_ADMIN.
// - packet callback (no root): a Device without TUN; inbound packets go to a userspace ICMP echo
//   responder for the mesh IP; `ping()` sends echo requests into the tunnel.
// - netstack (no root): a Device without TUN carrying a full userspace TCP/IP stack
//   (plexd-userspace/net's MeshNet) on the mesh IP: echo, UDP, TCP; the agent's SOCKS5 proxy and
//   port forwards connect through it.

import type { CryptoProvider } from '../core/crypto.js';
import { Device } from '../device/device.js';
import { defaultBind } from '../io/bind-default.js';
import { parseIp } from '../core/ip.js';
import { runCommand } from '../io/command.js';
import { openTun } from '../io/tun-linux.js';
import type { Logger } from '../log/logger.js';
import type { PacketFilter } from '../policy/filter.js';
import { startUapiServer, type UapiServer } from '../uapi/server.js';
import { MeshNet } from '../net/mesh.js';
import { icmpResponder, Pinger } from './icmp.js';

/** What the agent needs to bring an interface up. */
export interface MeshInterfaceOptions {
  readonly packetCallback: boolean;
  /** No TUN, a userspace TCP/IP stack on the mesh IP (implies packet callback). */
  readonly netstack?: boolean;
  readonly interfaceName: string;
  readonly listenPort: number;
  readonly mtu: number;
  /** Local address for the UDP socket (undefined: all addresses). */
  readonly bindAddress: string | undefined;
  readonly meshIp: string;
  readonly meshCidr: string;
  readonly logger: Logger;
  /** Policy filter installed before the device carries any packet. */
  readonly filter?: PacketFilter;
  /** For tests: the UAPI socket directory. */
  readonly uapiSocketDir?: string;
  /** The device's crypto provider (default node:crypto). */
  readonly crypto?: CryptoProvider;
  /** The UDP bind kind for defaultBind ('native' | 'dgram'; default: the platform's). */
  readonly bindKind?: string;
}

/** Runs `ip ARGS`; rejects with the command and its stderr. */
const ip = (...args: string[]): Promise<void> => runCommand(['ip', ...args]);

/** A running mesh interface. */
export class MeshInterface {
  readonly device: Device;
  readonly name: string;
  readonly #uapi: UapiServer | undefined;
  readonly #pinger: Pinger | undefined;
  readonly #meshIp: { value: string };
  #meshCidr: string;
  /** Echo counters in packet-callback mode. */
  readonly icmp: { requestsAnswered: number; repliesSeen: number; ignored: number } | undefined;
  /** The userspace TCP/IP stack in netstack mode. */
  readonly net: MeshNet | undefined;

  private constructor(device: Device, name: string, meshIp: { value: string }, meshCidr: string, uapi?: UapiServer, pinger?: Pinger, icmp?: MeshInterface['icmp'], net?: MeshNet) {
    this.net = net;
    this.device = device;
    this.name = name;
    this.#meshIp = meshIp;
    this.#meshCidr = meshCidr;
    this.#uapi = uapi;
    this.#pinger = pinger;
    this.icmp = icmp;
  }

  /** Brings the interface up. Rejects (and leaves nothing behind) when any step fails. */
  static async open(o: MeshInterfaceOptions): Promise<MeshInterface> {
    const bind = defaultBind(o.bindKind, o.bindAddress === undefined ? {} : { ipv4Address: o.bindAddress.includes(':') ? null : o.bindAddress, ipv6Address: o.bindAddress.includes(':') ? o.bindAddress : null });
    const meshIp = { value: o.meshIp };
    if (o.netstack === true) {
      const net = new MeshNet({ addresses: [o.meshIp], mtu: o.mtu });
      const device = await Device.create({ onPacket: net.receive, bind, crypto: o.crypto, listenPort: o.listenPort, logger: o.logger, ...(o.filter ? { filter: o.filter } : {}) });
      net.attach(device);
      return new MeshInterface(device, `${o.interfaceName} (netstack)`, meshIp, o.meshCidr, undefined, undefined, undefined, net);
    }
    if (o.packetCallback) {
      const pinger = new Pinger();
      let device: Device | undefined;
      const responder = icmpResponder(() => meshIp.value, (p) => device?.writePacket(p), (e) => pinger.deliver(e));
      device = await Device.create({ onPacket: responder.handle, bind, crypto: o.crypto, listenPort: o.listenPort, logger: o.logger, ...(o.filter ? { filter: o.filter } : {}) });
      return new MeshInterface(device, `${o.interfaceName} (userspace)`, meshIp, o.meshCidr, undefined, pinger, responder.counters);
    }
    const tun = openTun({ name: o.interfaceName });
    let device: Device | undefined;
    let uapi: UapiServer | undefined;
    try {
      device = await Device.create({ tun, bind, crypto: o.crypto, listenPort: o.listenPort, logger: o.logger, ...(o.filter ? { filter: o.filter } : {}) });
      uapi = await startUapiServer({ interfaceName: tun.name, handler: device, logger: o.logger, ...(o.uapiSocketDir ? { socketDir: o.uapiSocketDir } : {}) });
      await ip('link', 'set', 'dev', tun.name, 'mtu', String(o.mtu));
      await ip('address', 'replace', `${o.meshIp}/32`, 'dev', tun.name);
      await ip('link', 'set', 'dev', tun.name, 'up');
      if (o.meshCidr !== '') await ip('route', 'replace', o.meshCidr, 'dev', tun.name);
    } catch (err) {
      await uapi?.close();
      if (device !== undefined) await device.close('setup failed');
      else tun.close();
      throw err;
    }
    return new MeshInterface(device, tun.name, meshIp, o.meshCidr, uapi);
  }

  /** The mesh IP the interface answers on. */
  get meshIp(): string {
    return this.#meshIp.value;
  }

  /**
   * Moves the interface to another mesh IP (a re-registration may hand out a new one): the new
   * /32 is added before the old one goes, and the mesh route follows `meshCidr`; in
   * packet-callback mode the echo responder and ping() use the new address from now on.
   * Rejects with the failing `ip` command; the old address then stays.
   */
  async setMeshIp(meshIp: string, meshCidr: string): Promise<void> {
    const old = this.#meshIp.value;
    const oldCidr = this.#meshCidr;
    if (this.net !== undefined) {
      if (meshIp !== old) this.net.stack.setAddresses([parseIp(meshIp)!]);
    } else if (this.#pinger === undefined) {
      if (meshIp !== old) {
        await ip('address', 'replace', `${meshIp}/32`, 'dev', this.name);
        await ip('address', 'del', `${old}/32`, 'dev', this.name).catch(() => undefined); // already gone is fine
      }
      if (meshCidr !== oldCidr) {
        if (oldCidr !== '') await ip('route', 'del', oldCidr, 'dev', this.name).catch(() => undefined);
        if (meshCidr !== '') await ip('route', 'replace', meshCidr, 'dev', this.name);
      }
    }
    this.#meshIp.value = meshIp;
    this.#meshCidr = meshCidr;
  }

  /** True in packet-callback mode (ping() available). */
  get userspace(): boolean {
    return this.#pinger !== undefined || this.net !== undefined;
  }

  /** Packet-callback mode: pings `dst` from our mesh IP through the tunnel; RTT ms or undefined. */
  ping(dst: string, timeoutMs = 5000): Promise<number | undefined> {
    if (this.net !== undefined) return this.net.ping(dst, timeoutMs).catch(() => undefined);
    if (this.#pinger === undefined) throw new TypeError('ping() needs packet-callback mode');
    return this.#pinger.ping(this.#meshIp.value, dst, (p) => this.device.writePacket(p), timeoutMs);
  }

  /** Removes the interface: UAPI socket, device, TUN (the kernel removes its address and route). */
  async close(reason = 'stopped'): Promise<void> {
    await this.#uapi?.close();
    await this.net?.close();
    await this.device.close(reason);
  }
}
