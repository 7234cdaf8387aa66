// The device loop: owns the sans-IO Engine and carries out its actions on a TUN (or packet
// callbacks), a UDP Bind and one timer. Configured through its typed contract (contract.ts:
// `apply` a DeviceTransaction, read a `snapshot`), with wireguard-go's device/uapi.go semantics;
// `configure` takes the same change written as wg(8) writes it. src/uapi/ serves it as text.

import { randomFillSync } from 'node:crypto';
import type { ActionSink, DropReason, Endpoint, EngineEvent } from '../core/actions.js';
import { copyBytes } from '../core/bytes.js';
import { formatEndpoint } from '../core/endpoint.js';
import { REKEY_ATTEMPT_TIME, ZERO_KEY_MATERIAL_TIME } from '../core/constants.js';
import type { CryptoProvider } from '../core/crypto.js';
import { nobleCrypto } from '../core/crypto-noble.js';
import { Engine } from '../core/engine.js';
import { INITIATION_SIZE, MessageType } from '../core/messages.js';
import { PEER_HANDSHAKE, type Peer } from '../core/peer.js';
import { nodeCrypto } from '../crypto/node.js';
import type { Bind, SendResult } from '../io/bind.js';
import { defaultBind } from '../io/bind-default.js';
import type { Clock } from '../io/clock.js';
import { systemClock } from '../io/clock.js';
import { BindError } from '../io/errors.js';
import type { Tun, TunCloseReason } from '../io/tun.js';
import type { Logger } from '../log/logger.js';
import { looksLikeStun, PROBE_FIRST_BYTE } from '../io/datagram-kinds.js';
import { silentLogger } from '../log/logger.js';
import type { PacketFilter } from '../policy/filter.js';
import { configToTransaction, type DeviceConfig } from './config.js';
import { wipeTransaction, type AllowedIp, type DeviceSnapshot, type DeviceTransaction, type PeerChange, type PeerSnapshot } from './contract.js';
import { DeviceError } from './errors.js';
import { checkTransaction, normalizePrivateKey } from './validate.js';
import { dropChannel, publishDrop, publishEvent } from './diagnostics.js';
import { HandshakeQueue } from './handshake-queue.js';

/**
 * Handshake messages handled per event-loop turn. The rest wait in the HandshakeQueue for the
 * next turn, after that turn's transport data: a flood costs the tunnel at most this much work
 * per receive batch (up to 64 datagrams), as wireguard-go's separate handshake workers bound it.
 */
const HANDSHAKES_PER_TURN = 16;

/** How often the TUN's MTU is read for transport padding (Device #readMtu), in ms. */
const MTU_READ_INTERVAL_MS = 1000;

/**
 * The crypto provider named `name`: 'node' (node:crypto, the fastest) or 'noble' (pure JS); undefined
 * or '' is 'node'. The CLI passes PLEXD_CRYPTO here; library code reads no environment. Throws
 * RangeError for any other name.
 */
export function defaultCrypto(name?: string): CryptoProvider {
  if (name === undefined || name === '' || name === 'node') return nodeCrypto;
  if (name === 'noble') return nobleCrypto;
  throw new RangeError(`expected a crypto provider 'node' or 'noble' (PLEXD_CRYPTO), got ${JSON.stringify(name)}`);
}

/** Construction options of a Device. Give `tun`, or `onPacket` for packet-callback mode. */
export interface DeviceOptions {
  /** The TUN to read outbound packets from and write inbound ones to. */
  readonly tun?: Tun;
  /** Without a TUN: called with every decrypted inbound IP packet (a view; copy to keep it). */
  readonly onPacket?: (packet: Uint8Array, peerPublicKey: Uint8Array) => void;
  /** UDP transport; default defaultBind(): the native bind on all addresses on Linux, else node:dgram. */
  readonly bind?: Bind;
  /** Default: node:crypto (see defaultCrypto). */
  readonly crypto?: CryptoProvider;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Fills a buffer with secure random bytes; default node:crypto randomFillSync. */
  readonly fillRandom?: (buf: Uint8Array) => void;
  /** Packet filter (e.g. a PolicyFilter) asked before encrypting and before delivering; see setFilter. */
  readonly filter?: PacketFilter;
}

/** Counters of the device itself (the engine counts protocol drops; see Device.drops). */
export interface DeviceCounters {
  /** Decrypted packets the TUN refused (queue full, gone). */
  tunWriteDropped: number;
  /** Datagrams the bind refused to send. */
  sendDropped: number;
  /** Outbound packets the filter refused (not encrypted). */
  filteredOutbound: number;
  /** Decrypted inbound packets the filter refused (not delivered). */
  filteredInbound: number;
}

// Set by Device's static block: reads the private engine for deviceEngine().
let engineOf: (device: Device) => Engine;

function shortKey(key: Uint8Array): string {
  return Buffer.from(key).toString('base64').slice(0, 4) + '…' + Buffer.from(key).toString('base64').slice(-5, -1);
}

/**
 * A running WireGuard interface. Create with `Device.create`, configure with `configure` or
 * `apply`, read with `snapshot`/`peer`/`peers`, stop with `close`. Not thread-safe: one event
 * loop drives it.
 */
export class Device {
  static {
    engineOf = (device) => device.#engine;
  }

  readonly #engine: Engine;
  readonly counters: DeviceCounters = { tunWriteDropped: 0, sendDropped: 0, filteredOutbound: 0, filteredInbound: 0 };
  readonly #tun: Tun | undefined;
  readonly #onPacket: ((packet: Uint8Array, peerPublicKey: Uint8Array) => void) | undefined;
  readonly #bind: Bind;
  readonly #clock: Clock;
  readonly #log: Logger;
  #privateKey: Uint8Array | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #closed = false;
  // When the TUN's MTU is next read for transport padding (#readMtu).
  #mtuReadAt = -Infinity;
  #filter: PacketFilter | undefined;
  #foreign: ((data: Uint8Array, from: Endpoint) => void) | undefined;
  #probe: ((data: Uint8Array, from: Endpoint) => void) | undefined;
  readonly #closeHandlers: Array<(reason: string) => void> = [];
  readonly #handshakes = new HandshakeQueue();
  #handshakeBudget = HANDSHAKES_PER_TURN;
  #handshakeTurn: NodeJS.Immediate | undefined;
  #handshakeNow = 0;
  // The engine's actions carried out (STYLE.md 2). A private object made once, so no caller can
  // inject a packet "from a peer" through it, and no engine call allocates one.
  readonly #sink: ActionSink<Peer> = {
    network: (_peer, endpoint, data) => {
      const result = this.#bind.send(data, endpoint);
      if (result === 'dropped') this.counters.sendDropped++;
      // 'sent' and 'dropped' leave no reference behind: the engine reuses the buffer.
      return result !== 'queued';
    },
    tun: (peer, data) => {
      if (this.#filter !== undefined && !this.#filter.inbound(data, peer.publicKey, this.#clock.now())) {
        this.counters.filteredInbound++;
        return;
      }
      const tun = this.#tun;
      if (tun !== undefined) {
        // Queued (and coalesced) writes where the TUN has them: the packets of one receive batch
        // leave together when this task ends.
        if (!(tun.enqueue !== undefined ? tun.enqueue(data) : tun.write(data))) this.counters.tunWriteDropped++;
      } else if (this.#onPacket !== undefined) {
        this.#onPacket(data, peer.publicKey);
      }
    },
    // Counted by the engine; published only when someone listens.
    drop: (reason, peer) => {
      if (dropChannel.hasSubscribers) publishDrop(this, reason, peer);
    },
    event: (e) => this.#event(e),
  };
  readonly #consumeHandshake = (data: Uint8Array, from: Endpoint): void => {
    this.#engine.decapsulate(data, from, this.#handshakeNow, this.#sink);
  };
  // The next loop turn: a fresh budget, then what waits.
  readonly #onHandshakeTurn = (): void => {
    this.#handshakeTurn = undefined;
    this.#handshakeBudget = HANDSHAKES_PER_TURN;
    this.#runHandshakes();
    this.#schedule();
  };
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#engine.tick(this.#clock.now(), this.#sink);
    this.#schedule();
  };

  private constructor(opts: DeviceOptions) {
    this.#clock = opts.clock ?? systemClock;
    this.#log = opts.logger ?? silentLogger;
    const clock = this.#clock;
    this.#engine = new Engine({
      crypto: opts.crypto ?? defaultCrypto(),
      fillRandom: opts.fillRandom ?? ((buf) => void randomFillSync(buf)),
      wallClockMs: () => clock.wallMs(),
    });
    this.#tun = opts.tun;
    this.#onPacket = opts.onPacket;
    this.#filter = opts.filter;
    this.#bind = opts.bind ?? defaultBind();
    if (this.#bind.onReceiveBatch !== undefined) {
      // One schedule per batch; the datagrams are views into the bind's batch buffer.
      this.#bind.onReceiveBatch(
        (data, from) => this.#receive(data, from, true),
        () => {
          this.#runHandshakes();
          this.#schedule();
        },
      );
    } else {
      this.#bind.onReceive((data, from) => {
        this.#receive(data, from, false);
        this.#runHandshakes();
        this.#schedule();
      });
    }
    if (this.#tun !== undefined) {
      this.#tun.onPackets((buf, offsets, count) => {
        const now = this.#clock.now();
        if (now >= this.#mtuReadAt) this.#readMtu(now);
        for (let i = 0; i < count; i++) this.#outbound(buf.subarray(offsets[i]!, offsets[i + 1]!), now);
        this.#schedule();
      });
      this.#tun.onClose((reason: TunCloseReason) => {
        if (reason.kind === 'deleted') {
          this.#log.info(`Interface ${this.#tun?.name ?? ''} is gone: ${reason.error.message}`);
          void this.close('interface deleted');
        }
      });
    }
  }

  /**
   * Creates a device and binds its UDP port (`listenPort`, default 0 = any free port), like
   * wireguard-go bringing its interface up. Rejects with BindError when the port is taken.
   */
  static async create(opts: DeviceOptions & { listenPort?: number } = {}): Promise<Device> {
    if (opts.tun === undefined && opts.onPacket !== undefined && typeof opts.onPacket !== 'function') {
      throw new TypeError(`expected onPacket to be a function, got ${typeof opts.onPacket}`);
    }
    const device = new Device(opts);
    await device.#bind.open(opts.listenPort ?? 0);
    return device;
  }

  /** The bound UDP port (0 when closed). */
  get listenPort(): number {
    return this.#bind.port;
  }

  /** Our static public key, undefined until a private key is set. */
  get publicKey(): Uint8Array | undefined {
    return this.#engine.publicKey;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Protocol drops per reason, from the engine. */
  drops(): Record<DropReason, number> {
    return this.#engine.dropCounts();
  }

  /** Registers a handler for the end of the device (close() or the interface being deleted). */
  onClose(handler: (reason: string) => void): void {
    this.#closeHandlers.push(handler);
  }

  /**
   * Applies a configuration with the same keys and semantics as a UAPI `set=1` (see
   * DeviceConfig). Rejects with DeviceError (ERR_DEVICE_INVALID for a bad value, with the UAPI
   * parser's message; see apply for the others) or TypeError, changing nothing then.
   */
  async configure(config: DeviceConfig): Promise<void> {
    const tx = configToTransaction(config);
    try {
      await this.apply(tx);
    } finally {
      wipeTransaction(tx);
    }
  }

  /** Packet-callback mode (or alongside a TUN): sends an outbound IP packet into the tunnel. */
  writePacket(packet: Uint8Array): void {
    if (!(packet instanceof Uint8Array)) throw new TypeError(`expected packet to be a Uint8Array, got ${typeof packet}`);
    if (this.#closed) return;
    this.#outbound(packet, this.#clock.now());
    this.#schedule();
  }

  // The TUN's MTU into the engine, which stops transport padding there (a full-size packet's
  // datagram then fits the underlay: 1420 + 32 + 48 = 1500 over IPv6, where UDP GSO refuses a
  // larger segment). Read at most once a second: on Linux it is an ioctl.
  #readMtu(now: number): void {
    this.#mtuReadAt = now + MTU_READ_INTERVAL_MS;
    try {
      this.#engine.setMtu(this.#tun!.mtu);
    } catch {
      // A closed TUN (its close is handled elsewhere): padding keeps the last MTU.
    }
  }

  // One outbound IP packet (TUN or writePacket): the filter first, then the engine.
  #outbound(packet: Uint8Array, now: number): void {
    if (this.#filter !== undefined && !this.#filter.outbound(packet, now)) this.counters.filteredOutbound++;
    else this.#engine.encapsulate(packet, now, this.#sink);
  }

  /**
   * Routes STUN on the WireGuard socket (RFC 8489 section 7 demultiplexing, see looksLikeStun in
   * io/datagram-kinds.ts: top two bits zero, the magic cookie, a matching length) to `handler`
   * instead of the engine. WireGuard messages never match. undefined removes the handler. The
   * handler gets the bind's buffer.
   */
  setForeignHandler(handler: ((data: Uint8Array, from: Endpoint) => void) | undefined): void {
    if (handler !== undefined && typeof handler !== 'function') throw new TypeError(`expected a function, got ${typeof handler}`);
    this.#foreign = handler;
  }

  /**
   * Routes path probes (src/nat/path-probe.ts: first byte 0xF0, which no WireGuard message and no
   * STUN message has) to `handler` instead of the engine. Independent of the STUN handler.
   * undefined removes it (probes then reach the engine, which drops them as an unknown type).
   * The handler gets the bind's buffer (a copy when the bind batches).
   */
  setProbeHandler(handler: ((data: Uint8Array, from: Endpoint) => void) | undefined): void {
    if (handler !== undefined && typeof handler !== 'function') throw new TypeError(`expected a function, got ${typeof handler}`);
    this.#probe = handler;
  }

  /** Sends a non-WireGuard datagram (STUN, relay binding, path probe) from the WireGuard port. */
  sendRaw(data: Uint8Array, to: Endpoint): SendResult {
    if (this.#closed) return 'dropped';
    return this.#bind.send(data, to);
  }

  /**
   * Installs (or with undefined removes) the packet filter: `outbound` is asked for every packet
   * from the TUN or writePacket before encryption, `inbound` for every decrypted packet before it
   * reaches the TUN or onPacket. Refusals are counted in counters.filteredOutbound/Inbound.
   */
  setFilter(filter: PacketFilter | undefined): void {
    if (filter !== undefined && (typeof filter.outbound !== 'function' || typeof filter.inbound !== 'function')) {
      throw new TypeError('expected a filter with outbound and inbound methods');
    }
    this.#filter = filter;
  }

  // Transport data and cookie replies go to the engine at once; initiations and responses wait
  // in the handshake queue (copied) for #runHandshakes. `view`: data is only valid during this
  // call (a batch bind), so a foreign handler gets a copy.
  #receive(data: Uint8Array, from: Endpoint, view: boolean): void {
    if (this.#closed) return;
    const foreign = this.#foreign;
    if (foreign !== undefined && looksLikeStun(data)) {
      foreign(view ? copyBytes(data) : data, from);
      return;
    }
    const type = data[0];
    if (type === PROBE_FIRST_BYTE && this.#probe !== undefined) {
      this.#probe(view ? copyBytes(data) : data, from);
      return;
    }
    if ((type === MessageType.initiation || type === MessageType.response) && data.length <= INITIATION_SIZE) {
      if (!this.#handshakes.push(data, from)) this.#engine.countDrop('handshake-queue-full', this.#sink);
      return;
    }
    this.#engine.decapsulate(data, from, this.#clock.now(), this.#sink);
  }

  // Hands waiting handshake messages to the engine within this turn's budget; a backlog of 1/8
  // of the queue or more puts the engine under load (wireguard-go device.IsUnderLoad).
  #runHandshakes(): void {
    const queue = this.#handshakes;
    if (queue.size === 0 || this.#closed) return;
    const now = this.#clock.now();
    if (queue.size >= queue.capacity / 8) this.#engine.markUnderLoad(now);
    this.#handshakeNow = now;
    while (this.#handshakeBudget > 0 && queue.shift(this.#consumeHandshake)) this.#handshakeBudget--;
    // Spent budget comes back next turn; so does whatever still waits.
    this.#handshakeTurn ??= setImmediate(this.#onHandshakeTurn);
  }

  // ---- engine events: diagnostics channels and the verbose log ---------------------------------

  #event(e: EngineEvent<Peer>): void {
    publishEvent(this, e);
    const log = this.#log;
    if (log.level !== 'verbose') return;
    switch (e.kind) {
      case 'handshake-initiation-sent':
        log.verbose(`peer(${shortKey(e.peer.publicKey)}) - Sending handshake initiation${e.retry ? ' (retry)' : ''}`);
        break;
      case 'handshake-initiation-resent':
        log.verbose(`peer(${shortKey(e.peer.publicKey)}) - Resending the unanswered handshake initiation to the new endpoint`);
        break;
      case 'handshake-response-sent':
        log.verbose(`peer(${shortKey(e.peer.publicKey)}) - Sending handshake response`);
        break;
      case 'handshake-complete':
        log.verbose(`peer(${shortKey(e.peer.publicKey)}) - Handshake complete`);
        break;
      case 'handshake-gave-up':
        log.verbose(`peer(${shortKey(e.peer.publicKey)}) - Handshake did not complete after ${REKEY_ATTEMPT_TIME / 1000} seconds, giving up`);
        break;
      case 'keypair-created':
        log.verbose(`peer(${shortKey(e.peer.publicKey)}) - Keypair created (${e.isInitiator ? 'initiator' : 'responder'})`);
        break;
      case 'keys-zeroed':
        log.verbose(`peer(${shortKey(e.peer.publicKey)}) - Removing all keys, since we haven't received a new one in ${ZERO_KEY_MATERIAL_TIME / 1000} seconds`);
        break;
      case 'endpoint-changed':
        log.verbose(`peer(${shortKey(e.peer.publicKey)}) - Endpoint changed to ${formatEndpoint(e.endpoint)}`);
        break;
      case 'cookie-sent':
        log.verbose(`Sending cookie reply to ${formatEndpoint(e.to)} (under load)`);
        break;
    }
  }

  // ---- the configuration contract (contract.ts) ----------------------------------------------

  /**
   * The configuration and counters as of now. Keys are copies: writing to them, or keeping them,
   * cannot change or see later changes of the keys in use (the engine wipes its own on removal).
   */
  snapshot(): DeviceSnapshot {
    const privateKey = this.#privateKey === undefined ? null : copyBytes(this.#privateKey);
    return { privateKey, listenPort: this.#bind.port, fwmark: this.#bind.fwmark, peers: this.peers() };
  }

  /** Every peer as of now, in creation order (iterated lazily; keys are copies). */
  *peers(): Generator<PeerSnapshot> {
    for (const peer of this.#engine.peers()) yield this.#peerSnapshot(peer);
  }

  /** The peer with this 32-byte public key as of now (keys are copies), or undefined. */
  peer(publicKey: Uint8Array): PeerSnapshot | undefined {
    const peer = this.#engine.getPeer(publicKey);
    return peer === undefined ? undefined : this.#peerSnapshot(peer);
  }

  #peerSnapshot(peer: Peer): PeerSnapshot {
    const wall = peer.lastHandshakeWallMs;
    const sec = Math.floor(wall / 1000);
    return {
      publicKey: copyBytes(peer.publicKey),
      presharedKey: peer.hasPresharedKey ? copyBytes(peer[PEER_HANDSHAKE].presharedKey) : null,
      endpoint: peer.endpoint ?? null,
      lastHandshakeTimeSec: wall === 0 ? 0 : sec,
      lastHandshakeTimeNsec: wall === 0 ? 0 : Math.round((wall - sec * 1000) * 1e6),
      txBytes: peer.txBytes,
      rxBytes: peer.rxBytes,
      persistentKeepaliveInterval: peer.persistentKeepalive,
      allowedIps: this.#engine.allowedIps.entriesOf(peer) as Iterable<AllowedIp>,
    };
  }

  /**
   * Applies a transaction as one step, in the order DeviceTransaction describes; keys are copied.
   * Throws TypeError/RangeError for a malformed transaction and rejects with DeviceError
   * ERR_DEVICE_CLOSED or ERR_DEVICE_PORT_IN_USE (cause: the BindError); nothing changed then.
   */
  async apply(tx: DeviceTransaction): Promise<void> {
    if (this.#closed) throw new DeviceError('ERR_DEVICE_CLOSED', 'device is closed');
    const changes = checkTransaction(tx);
    // The rebind is the one step that can fail (port in use), so it goes first: a failed set
    // changes nothing. Everything after it runs without yielding.
    if (tx.listenPort !== undefined && tx.listenPort !== this.#bind.port) {
      try {
        await this.#bind.rebind(tx.listenPort);
      } catch (err) {
        if (err instanceof BindError) throw new DeviceError('ERR_DEVICE_PORT_IN_USE', err.message, { cause: err });
        throw err;
      }
      this.#log.verbose(`UDP bind has been updated (port ${this.#bind.port})`);
      if (this.#closed) throw new DeviceError('ERR_DEVICE_CLOSED', 'device is closed');
    }
    const now = this.#clock.now();
    const engine = this.#engine;
    if (tx.privateKey !== undefined) {
      const key = tx.privateKey === null ? null : normalizePrivateKey(copyBytes(tx.privateKey));
      engine.setPrivateKey(key ?? undefined, now);
      this.#privateKey?.fill(0);
      this.#privateKey = key ?? undefined;
    }
    if (tx.fwmark !== undefined && tx.fwmark !== this.#bind.fwmark) {
      this.#bind.setFwmark(tx.fwmark);
    }
    if (tx.replacePeers === true) {
      for (const peer of [...engine.peers()]) engine.removePeer(peer);
    }
    const ownPublic = engine.publicKey;
    for (const change of changes) {
      if (ownPublic !== undefined && Buffer.compare(ownPublic, change.publicKey) === 0) continue;
      this.#applyPeer(change);
    }
    this.#schedule();
  }

  #applyPeer(change: PeerChange): void {
    const engine = this.#engine;
    let peer = engine.getPeer(change.publicKey);
    if (change.remove === true) {
      if (peer !== undefined) {
        engine.removePeer(peer);
        this.#log.verbose(`peer(${shortKey(change.publicKey)}) - Removing`);
      }
      return;
    }
    if (peer === undefined) {
      if (change.updateOnly === true) return;
      peer = engine.addPeer(change.publicKey);
      this.#log.verbose(`peer(${shortKey(change.publicKey)}) - Created`);
    }
    const psk = change.presharedKey;
    if (psk !== undefined) engine.setPresharedKey(peer, psk ?? undefined); // all-zero means none there too
    if (change.endpoint !== undefined) engine.setEndpoint(peer, change.endpoint); // the engine keeps its own copy
    if (change.replaceAllowedIps === true) engine.allowedIps.removeValue(peer);
    for (const a of change.allowedIps ?? []) {
      if (a.remove === true) engine.allowedIps.remove(a.ip, a.cidr, peer);
      else engine.allowedIps.insert(a.ip, a.cidr, peer);
    }
    if (change.persistentKeepaliveInterval !== undefined) engine.setPersistentKeepalive(peer, change.persistentKeepaliveInterval);
  }

  // ---- the one timer ------------------------------------------------------------------------

  #schedule(): void {
    if (this.#closed) return;
    const at = this.#engine.nextDeadline();
    if (at >= this.#timerAt) return; // the armed timer fires first; tick reschedules then
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (at === Infinity) {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      return;
    }
    this.#timerAt = at;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, Math.ceil(at - this.#clock.now())));
  }

  /**
   * Stops the device: timer, UDP sockets, the TUN (a non-persistent interface disappears) and
   * every key. Idempotent. Close handlers run once with `reason`.
   */
  async close(reason = 'closed'): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#handshakeTurn !== undefined) clearImmediate(this.#handshakeTurn);
    this.#handshakeTurn = undefined;
    this.#handshakes.clear();
    this.#bind.close();
    for (const peer of [...this.#engine.peers()]) this.#engine.removePeer(peer);
    this.#engine.setPrivateKey(undefined, this.#clock.now());
    this.#privateKey?.fill(0);
    this.#privateKey = undefined;
    if (this.#tun !== undefined && !this.#tun.closed) this.#tun.close();
    for (const h of this.#closeHandlers.splice(0)) h(reason);
  }
}

/**
 * @internal The device's engine, for tests and benches that inspect protocol state (peer count,
 * load, keypairs). Not exported by the package entry (src/index.ts); embedders use Device's methods.
 */
export function deviceEngine(device: Device): Engine {
  return engineOf(device);
}
