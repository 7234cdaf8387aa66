// The sans-IO userspace IP stack: IPv4/IPv6 demultiplexing to ICMP/ICMPv6 echo (RFC 792, RFC
// 4443), UDP (RFC 768) and the TCP engine (tcp.ts). Packets come in through `input`, go out
// through the `send` callback, time is the `now` argument; no sockets, no timers, no clock.

import { formatIp } from '../core/ip.js';
import { checksum, transportChecksum } from './checksum.js';
import {
  IP_DROP_REASONS,
  IPV4_HEADER,
  IPV6_HEADER,
  PROTO_ICMP,
  PROTO_ICMPV6,
  PROTO_TCP,
  PROTO_UDP,
  buildIpPacket,
  parseIpPacket,
} from './ip-packet.js';
import { TcpEngine, type SockAddr, type TcpLimits } from './tcp.js';

/** Drop reasons of the stack (IP layer, UDP, ICMP); TCP counts its own (TcpEngine.counters). */
export const NET_DROP_REASONS = [
  ...IP_DROP_REASONS,
  'udp-short', // under 8 bytes or a length field beyond the payload
  'udp-checksum', // wrong UDP checksum (a zero checksum is accepted over IPv4 only)
  'udp-no-socket', // no UDP socket on the destination port
  'udp-queue-full', // the socket's handler refused it (bounded receive queue)
  'icmp-short',
  'icmp-checksum',
  'icmp-type', // ICMP types other than echo request/reply
] as const;

/** One value of {@link NET_DROP_REASONS}. */
export type NetDropReason = (typeof NET_DROP_REASONS)[number];

/** Statistics of the stack besides drops. */
export const NET_STATS = ['packetsIn', 'packetsOut', 'echoRequests', 'echoReplies', 'udpIn', 'udpOut'] as const;

/** One value of {@link NET_STATS}. */
export type NetStat = (typeof NET_STATS)[number];

/** The default MTU of a WireGuard interface (wg-quick's 1420). */
export const DEFAULT_MTU = 1420;

/** Construction options of a {@link NetStack}. */
export interface NetStackOptions {
  /** Our addresses (4 or 16 bytes each): packets to others are dropped; sources are picked from here. */
  readonly addresses: readonly Uint8Array[];
  /** Largest IP packet we send (default 1420); sets the TCP MSS and the UDP payload limit. */
  readonly mtu?: number;
  /** Transmits one IP packet (the receiver owns it). Called synchronously. */
  readonly send: (packet: Uint8Array) => void;
  /** `n` cryptographically random bytes. */
  readonly random: (n: number) => Uint8Array;
  readonly tcpLimits?: Partial<TcpLimits>;
}

/** A bound UDP port; `onMessage` returns false to refuse a datagram (counted udp-queue-full). */
export interface UdpEndpoint {
  readonly port: number;
  /** Sends `data` to `remote` from our address of its family; RangeError if too large or no such address. */
  send(data: Uint8Array, remote: SockAddr): void;
  close(): void;
}

/** Handler of datagrams to a {@link UdpEndpoint}: `data` is a copy the callee owns. */
export type UdpHandler = (data: Uint8Array, from: SockAddr, to: SockAddr) => boolean | void;

/** Handler of ICMP/ICMPv6 echo replies. */
export type EchoReplyHandler = (from: Uint8Array, ident: number, seq: number, data: Uint8Array) => void;

const ICMP_ECHO_REQUEST = 8;
const ICMP_ECHO_REPLY = 0;
const ICMPV6_ECHO_REQUEST = 128;
const ICMPV6_ECHO_REPLY = 129;
const UDP_HEADER = 8;
const EPHEMERAL_LOW = 49152;
const EPHEMERAL_HIGH = 65535;

function sameIp(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A userspace IP stack over one packet link (a WireGuard Device in packet-callback mode): every
 * inbound packet to `input`, every outbound one through `send`. Hostile packets are dropped and
 * counted (counters), never thrown. Holds no timer: call tick(now) at nextDeadline().
 */
export class NetStack {
  readonly tcp: TcpEngine;
  readonly mtu: number;
  #addresses: Uint8Array[];
  readonly #send: (packet: Uint8Array) => void;
  readonly #counters: Record<NetDropReason | NetStat, number>;
  readonly #udp = new Map<number, UdpHandler>();
  #nextEphemeral = EPHEMERAL_LOW;
  #ipId = 0;
  #echoHandler: EchoReplyHandler | undefined;

  constructor(opts: NetStackOptions) {
    const mtu = opts.mtu ?? DEFAULT_MTU;
    if (!Number.isInteger(mtu) || mtu < 1280 || mtu > 65535) throw new RangeError(`expected an mtu in 1280..65535, got ${mtu}`);
    if (opts.addresses.length === 0) throw new RangeError('expected at least one address, got none');
    for (const a of opts.addresses) {
      if (!(a instanceof Uint8Array) || (a.length !== 4 && a.length !== 16)) throw new TypeError('expected addresses of 4 or 16 bytes');
    }
    this.mtu = mtu;
    this.#addresses = opts.addresses.map((a) => a.slice());
    this.#send = opts.send;
    this.#counters = Object.fromEntries([...NET_DROP_REASONS, ...NET_STATS].map((k) => [k, 0])) as Record<NetDropReason | NetStat, number>;
    this.tcp = new TcpEngine({
      send: (seg) => this.#emit(seg.src, seg.dst, PROTO_TCP, seg.bytes),
      random: opts.random,
      ...(opts.tcpLimits !== undefined ? { limits: opts.tcpLimits } : {}),
    });
  }

  /** Drop and statistic counters (a live read-only view). */
  get counters(): Readonly<Record<NetDropReason | NetStat, number>> {
    return this.#counters;
  }

  /** Our addresses (copies). */
  get addresses(): Uint8Array[] {
    return this.#addresses.map((a) => a.slice());
  }

  /** Replaces our addresses (a re-registration may move the mesh IP); connections on old ones stay until they end. */
  setAddresses(addresses: readonly Uint8Array[]): void {
    if (addresses.length === 0) throw new RangeError('expected at least one address, got none');
    for (const a of addresses) {
      if (!(a instanceof Uint8Array) || (a.length !== 4 && a.length !== 16)) throw new TypeError('expected addresses of 4 or 16 bytes');
    }
    this.#addresses = addresses.map((a) => a.slice());
  }

  /** Our address of `family` (4 or 16 bytes long), or undefined. */
  localAddress(family: 4 | 16): Uint8Array | undefined {
    return this.#addresses.find((a) => a.length === family);
  }

  /** The TCP MSS to advertise toward an address of this length: MTU minus IP and TCP headers. */
  mss(family: 4 | 16): number {
    return this.mtu - (family === 4 ? IPV4_HEADER : IPV6_HEADER) - 20;
  }

  /** One inbound IP packet (a view; not kept). Never throws on its content. */
  input(packet: Uint8Array, now: number): void {
    this.#counters.packetsIn++;
    const ip = parseIpPacket(packet);
    if (typeof ip === 'string') {
      this.#counters[ip]++;
      return;
    }
    if (!this.#addresses.some((a) => sameIp(a, ip.dst))) {
      this.#counters['ip-not-for-us']++;
      return;
    }
    switch (ip.proto) {
      case PROTO_TCP:
        this.tcp.input(ip.src, ip.dst, ip.payload, now);
        return;
      case PROTO_UDP:
        this.#udpInput(ip.src, ip.dst, ip.payload, ip.version);
        return;
      case PROTO_ICMP:
        if (ip.version === 4) return this.#icmpInput(ip.src, ip.dst, ip.payload, false);
        break;
      case PROTO_ICMPV6:
        if (ip.version === 6) return this.#icmpInput(ip.src, ip.dst, ip.payload, true);
        break;
    }
    this.#counters['ip-protocol']++;
  }

  /** The earliest time (ms) tick() has work, or undefined. */
  nextDeadline(): number | undefined {
    return this.tcp.nextDeadline();
  }

  /** Runs the timers due at `now`. */
  tick(now: number): void {
    this.tcp.tick(now);
  }

  /** Sets the handler of echo replies (for ping). */
  onEchoReply(handler: EchoReplyHandler | undefined): void {
    this.#echoHandler = handler;
  }

  /** Sends an ICMP (IPv4) or ICMPv6 echo request to `dst`. RangeError without a local address of its family. */
  ping(dst: Uint8Array, ident: number, seq: number, data: Uint8Array = new Uint8Array(0)): void {
    const src = this.#source(dst);
    const v6 = dst.length === 16;
    const msg = new Uint8Array(8 + data.length);
    msg[0] = v6 ? ICMPV6_ECHO_REQUEST : ICMP_ECHO_REQUEST;
    msg[4] = (ident >> 8) & 0xff;
    msg[5] = ident & 0xff;
    msg[6] = (seq >> 8) & 0xff;
    msg[7] = seq & 0xff;
    msg.set(data, 8);
    this.#sendIcmp(src, dst, msg, v6);
  }

  /**
   * Binds UDP `port` (0 = a free ephemeral one) on every local address. RangeError when taken.
   * `handler` runs synchronously inside input().
   */
  udpBind(port: number, handler: UdpHandler): UdpEndpoint {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`expected a port in 0..65535, got ${port}`);
    if (port === 0) port = this.#freeUdpPort();
    if (this.#udp.has(port)) throw new RangeError(`UDP port ${port} is in use`);
    this.#udp.set(port, handler);
    let open = true;
    return {
      port,
      send: (data, remote) => {
        if (!open) throw new TypeError('send on a closed UDP socket');
        this.udpSend(port, remote, data);
      },
      close: () => {
        if (open && this.#udp.get(port) === handler) this.#udp.delete(port);
        open = false;
      },
    };
  }

  /** Sends one UDP datagram from local `port`. RangeError if it would not fit the MTU. */
  udpSend(port: number, remote: SockAddr, data: Uint8Array): void {
    const src = this.#source(remote.ip);
    const max = this.mtu - (src.length === 4 ? IPV4_HEADER : IPV6_HEADER) - UDP_HEADER;
    if (data.length > max) throw new RangeError(`expected a UDP payload of at most ${max} bytes (MTU ${this.mtu}), got ${data.length}`);
    if (!Number.isInteger(remote.port) || remote.port < 1 || remote.port > 65535) throw new RangeError(`expected a port in 1..65535, got ${remote.port}`);
    const len = UDP_HEADER + data.length;
    const d = new Uint8Array(len);
    d[0] = port >> 8;
    d[1] = port & 0xff;
    d[2] = remote.port >> 8;
    d[3] = remote.port & 0xff;
    d[4] = len >> 8;
    d[5] = len & 0xff;
    d.set(data, UDP_HEADER);
    let c = transportChecksum(src, remote.ip, PROTO_UDP, d);
    if (c === 0) c = 0xffff; // RFC 768: a computed zero is sent as all ones
    d[6] = c >> 8;
    d[7] = c & 0xff;
    this.#counters.udpOut++;
    this.#emit(src, remote.ip, PROTO_UDP, d);
  }

  #source(dst: Uint8Array): Uint8Array {
    if (!(dst instanceof Uint8Array) || (dst.length !== 4 && dst.length !== 16)) throw new TypeError('expected a 4- or 16-byte destination address');
    const src = this.localAddress(dst.length);
    if (src === undefined) throw new RangeError(`no local IPv${dst.length === 4 ? 4 : 6} address to reach ${formatIp(dst)}`);
    return src;
  }

  #freeUdpPort(): number {
    for (let i = 0; i <= EPHEMERAL_HIGH - EPHEMERAL_LOW; i++) {
      const p = this.#nextEphemeral;
      this.#nextEphemeral = p >= EPHEMERAL_HIGH ? EPHEMERAL_LOW : p + 1;
      if (!this.#udp.has(p)) return p;
    }
    throw new RangeError('no free ephemeral UDP port');
  }

  #emit(src: Uint8Array, dst: Uint8Array, proto: number, payload: Uint8Array): void {
    this.#ipId = (this.#ipId + 1) & 0xffff;
    this.#counters.packetsOut++;
    this.#send(buildIpPacket(src, dst, proto, payload, this.#ipId));
  }

  #udpInput(src: Uint8Array, dst: Uint8Array, d: Uint8Array, version: 4 | 6): void {
    if (d.length < UDP_HEADER) return void this.#counters['udp-short']++;
    const len = (d[4]! << 8) | d[5]!;
    if (len < UDP_HEADER || len > d.length) return void this.#counters['udp-short']++;
    const dgram = d.subarray(0, len);
    const stored = (d[6]! << 8) | d[7]!;
    // A zero checksum means "none" over IPv4 only (RFC 768; RFC 8200 8.1 makes it mandatory for IPv6).
    if ((stored !== 0 || version === 6) && transportChecksum(src, dst, PROTO_UDP, dgram) !== 0) {
      return void this.#counters['udp-checksum']++;
    }
    const dstPort = (d[2]! << 8) | d[3]!;
    const handler = this.#udp.get(dstPort);
    if (handler === undefined) return void this.#counters['udp-no-socket']++;
    this.#counters.udpIn++;
    const from = { ip: src.slice(), port: (d[0]! << 8) | d[1]! };
    const to = { ip: dst.slice(), port: dstPort };
    if (handler(dgram.slice(UDP_HEADER), from, to) === false) this.#counters['udp-queue-full']++;
  }

  #icmpInput(src: Uint8Array, dst: Uint8Array, m: Uint8Array, v6: boolean): void {
    if (m.length < 8) return void this.#counters['icmp-short']++;
    const ok = v6 ? transportChecksum(src, dst, PROTO_ICMPV6, m) === 0 : checksum(0, m) === 0;
    if (!ok) return void this.#counters['icmp-checksum']++;
    const type = m[0]!;
    if (type === (v6 ? ICMPV6_ECHO_REQUEST : ICMP_ECHO_REQUEST)) {
      this.#counters.echoRequests++;
      const reply = m.slice();
      reply[0] = v6 ? ICMPV6_ECHO_REPLY : ICMP_ECHO_REPLY;
      reply[2] = 0;
      reply[3] = 0;
      this.#sendIcmp(dst.slice(), src.slice(), reply, v6);
      return;
    }
    if (type === (v6 ? ICMPV6_ECHO_REPLY : ICMP_ECHO_REPLY)) {
      this.#counters.echoReplies++;
      this.#echoHandler?.(src.slice(), (m[4]! << 8) | m[5]!, (m[6]! << 8) | m[7]!, m.slice(8));
      return;
    }
    this.#counters['icmp-type']++;
  }

  #sendIcmp(src: Uint8Array, dst: Uint8Array, msg: Uint8Array, v6: boolean): void {
    msg[2] = 0;
    msg[3] = 0;
    const c = v6 ? transportChecksum(src, dst, PROTO_ICMPV6, msg) : checksum(0, msg);
    msg[2] = c >> 8;
    msg[3] = c & 0xff;
    this.#emit(src, dst, v6 ? PROTO_ICMPV6 : PROTO_ICMP, msg);
  }
}
