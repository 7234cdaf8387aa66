// The sans-IO WireGuard device (whitepaper 5 and 6; wireguard-go device/send.go, receive.go,
// timers.go): routes, encrypts, decrypts, handshakes and runs timers, reporting every effect to an
// ActionSink. Time (`now`, monotonic ms) and randomness come from the caller.

import type { ActionSink, DropReason, Endpoint, EngineEvent } from './actions.js';
import { DROP_REASONS } from './actions.js';
import {
  KEEPALIVE_TIMEOUT,
  MAX_STAGED_PACKETS,
  MAX_TIMER_HANDSHAKES,
  REJECT_AFTER_MESSAGES,
  REJECT_AFTER_TIME,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME,
  REKEY_TIMEOUT,
  REKEY_TIMEOUT_JITTER_MAX,
  ZERO_KEY_MATERIAL_TIME,
} from './constants.js';
import { AllowedIps } from './allowed-ips.js';
import { copyBytes } from './bytes.js';
import { CookieChecker, endpointBytes } from './cookie.js';
import type { CryptoProvider } from './crypto.js';
import { DeadlineHeap, HEAP_INDEX, HEAP_KEY } from './deadline-heap.js';
import {
  consumeInitiationMessage,
  consumeResponseMessage,
  createInitiationMessage,
  createResponseMessage,
  deriveKeys,
  HandshakeState,
  makeIdentity,
} from './handshake.js';
import type { Identity } from './handshake.js';
import { IndexTable } from './index-table.js';
import { Keypair, openTransport, sealTransport, transportLength } from './keypair.js';
import {
  CookieReplyOffset,
  InitiationOffset,
  MessageType,
  ResponseOffset,
  TRANSPORT_HEADER_SIZE,
  TRANSPORT_MAX_CONTENT,
  TransportOffset,
  classifyMessage,
  readCounter,
  readU32,
} from './messages.js';
import {
  Peer,
  PEER_COOKIES,
  PEER_ENDPOINT,
  PEER_HANDSHAKE,
  PEER_INITIATION,
  PEER_KEEPALIVE,
  PEER_KEYPAIRS,
  PEER_OWNER,
  PEER_STAGED,
  PEER_TIMERS,
} from './peer.js';
import { LoadMonitor, RateLimiter } from './rate-limiter.js';
import { tai64n } from './tai64n.js';

/** Construction options of an Engine. */
export interface EngineOptions {
  /** The crypto provider (nobleCrypto, or the node:crypto one from src/crypto). */
  readonly crypto: CryptoProvider;
  /** Fills its argument with cryptographically secure random bytes. */
  fillRandom(buf: Uint8Array): void;
  /** Wall-clock ms since the Unix epoch; read only for TAI64N timestamps and lastHandshakeWallMs. */
  wallClockMs(): number;
  /** Handshake messages per second above which the engine is under load (default 128). */
  readonly underLoadThreshold?: number;
  /** Packets queued per peer while waiting for a session (default MAX_STAGED_PACKETS = 128). */
  readonly maxStagedPackets?: number;
}

/** Options of Engine.addPeer. */
export interface PeerOptions {
  /** 32-byte pre-shared key; omitted or all zero = none. */
  readonly presharedKey?: Uint8Array;
  /** Initial endpoint; roaming replaces it with the source of authenticated packets. */
  readonly endpoint?: Endpoint;
  /** Persistent keepalive interval in seconds, 0..65535; 0 (default) = off. */
  readonly persistentKeepalive?: number;
}

type IndexEntry = Peer | Keypair<Peer>;

const EMPTY_PACKET = new Uint8Array(0);

// A key as a Map key: one char per byte. fromCharCode builds one flat 32-char string, where
// appending hex digits built a chain of ~25 cons strings (~800 bytes per peer in #peers).
function keyOf(publicKey: Uint8Array): string {
  return String.fromCharCode.apply(null, publicKey as unknown as number[]);
}

function expectKey(name: string, value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== 32) {
    const got = value instanceof Uint8Array ? `${value.length} bytes` : value === null ? 'null' : typeof value;
    throw new TypeError(`expected ${name} to be a 32-byte Uint8Array, got ${got}`);
  }
}

function expectTime(now: number): void {
  if (typeof now !== 'number' || Number.isNaN(now)) throw new TypeError(`expected now to be a number of ms, got ${String(now)}`);
}

/**
 * A WireGuard device without I/O. Feed it TUN packets (encapsulate / sendTo), UDP datagrams
 * (decapsulate) and the time (tick when nextDeadline() is reached); it answers through the
 * ActionSink given to each call. Not reentrant: sinks must not call back into the engine.
 */
export class Engine {
  /** Routing table: outbound destination -> peer, and the inbound source check. */
  readonly allowedIps = new AllowedIps<Peer>();
  readonly #crypto: CryptoProvider;
  readonly #fillRandom: (buf: Uint8Array) => void;
  readonly #wallClockMs: () => number;
  readonly #maxStaged: number;
  #identity: Identity | undefined;
  readonly #cookieChecker: CookieChecker;
  readonly #peers = new Map<string, Peer>();
  readonly #index: IndexTable<IndexEntry>;
  readonly #heap = new DeadlineHeap<Peer>();
  readonly #rateLimiter = new RateLimiter();
  // Cookie replies per source under load: the legit sender needs one per REKEY_TIMEOUT, a flood
  // from a few addresses would otherwise cost an XChaCha20-Poly1305 seal and a send per message.
  readonly #cookieLimiter = new RateLimiter();
  readonly #load: LoadMonitor;
  readonly #drops: Record<DropReason, number>;
  readonly #random2 = new Uint8Array(2);
  // The last transport message's buffer when the sink said it was done with it: the next message
  // is sealed into it, so a sink that sends synchronously makes the send path allocation-free.
  #sendBuffer: Uint8Array | undefined;
  // The tunnel MTU padding stops at (setMtu); 0 = pad every packet to a multiple of 16.
  #mtu = 0;
  readonly #releaseKeypair = (keypair: Keypair<Peer>): void => {
    if (this.#index.get(keypair.localIndex) === keypair) this.#index.remove(keypair.localIndex);
    keypair.wipe();
  };
  readonly #lookupPeer = (remoteStatic: Uint8Array): Peer | undefined => this.#peers.get(keyOf(remoteStatic));

  constructor(opts: EngineOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError(`expected engine options, got ${String(opts)}`);
    if (opts.crypto === null || typeof opts.crypto !== 'object') throw new TypeError(`expected a crypto provider, got ${typeof opts.crypto}`);
    if (typeof opts.fillRandom !== 'function') throw new TypeError(`expected fillRandom to be a function, got ${typeof opts.fillRandom}`);
    if (typeof opts.wallClockMs !== 'function') throw new TypeError(`expected wallClockMs to be a function, got ${typeof opts.wallClockMs}`);
    const maxStaged = opts.maxStagedPackets ?? MAX_STAGED_PACKETS;
    if (!Number.isInteger(maxStaged) || maxStaged < 1) throw new RangeError(`expected maxStagedPackets >= 1, got ${maxStaged}`);
    this.#crypto = opts.crypto;
    this.#fillRandom = opts.fillRandom;
    this.#wallClockMs = opts.wallClockMs;
    this.#maxStaged = maxStaged;
    this.#cookieChecker = new CookieChecker(opts.crypto);
    this.#index = new IndexTable<IndexEntry>(opts.fillRandom);
    this.#load = new LoadMonitor(opts.underLoadThreshold);
    this.#drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  }

  // ---- configuration ------------------------------------------------------------------------

  /**
   * The tunnel MTU in bytes, which transport padding never goes past (see paddedLength; a
   * full-MTU packet is sent unpadded, as wireguard-go and the kernel send it); 0 (the initial
   * value) pads every packet to a multiple of 16. Throws RangeError unless an integer in 0..65535.
   */
  setMtu(mtu: number): void {
    if (!Number.isInteger(mtu) || mtu < 0 || mtu > 65535) throw new RangeError(`expected mtu to be an integer in 0..65535, got ${mtu}`);
    this.#mtu = mtu;
  }

  /** Our static public key, or undefined while no private key is set. */
  get publicKey(): Uint8Array | undefined {
    const key = this.#identity?.publicKey;
    return key === undefined ? undefined : copyBytes(key);
  }

  /**
   * Sets (or with undefined, clears) our 32-byte static private key, as wireguard-go's
   * SetPrivateKey: removes a peer whose public key is our new one, recomputes every peer's static
   * DH, drops handshakes in flight and makes current sessions rekey on next use. Same key: no-op.
   */
  setPrivateKey(key: Uint8Array | undefined, now: number): void {
    if (key !== undefined) expectKey('private key', key);
    expectTime(now);
    const old = this.#identity;
    if (old !== undefined && key !== undefined && keyOf(old.privateKey) === keyOf(key)) return;
    if (old === undefined && key === undefined) return;
    const identity = key === undefined ? undefined : makeIdentity(this.#crypto, key);
    if (identity !== undefined) {
      const self = this.#peers.get(keyOf(identity.publicKey));
      if (self !== undefined) this.removePeer(self);
      this.#cookieChecker.init(identity.publicKey);
    } else {
      this.#cookieChecker.wipe();
    }
    this.#identity = identity;
    old?.privateKey.fill(0);
    for (const peer of this.#peers.values()) {
      // The static-static DH is recomputed lazily at the next handshake (Handshake.staticStatic).
      peer[PEER_HANDSHAKE].forgetStaticStatic();
      this.#expireCurrentKeypairs(peer);
    }
  }

  /**
   * Adds a peer. Throws TypeError for a malformed key, RangeError when the key is already a
   * peer (use getPeer first to update) or is our own public key.
   */
  addPeer(publicKey: Uint8Array, opts: PeerOptions = {}): Peer {
    expectKey('peer public key', publicKey);
    const key = keyOf(publicKey);
    if (this.#peers.has(key)) throw new RangeError('expected a new peer public key, got one already added');
    if (this.#identity !== undefined && keyOf(this.#identity.publicKey) === key) {
      throw new RangeError('expected a peer public key other than our own, got our own');
    }
    const peer = new Peer(this.#crypto, publicKey);
    peer[PEER_OWNER] = this;
    this.#peers.set(key, peer);
    if (opts.presharedKey !== undefined) this.setPresharedKey(peer, opts.presharedKey);
    if (opts.endpoint !== undefined) this.setEndpoint(peer, opts.endpoint);
    if (opts.persistentKeepalive !== undefined) this.setPersistentKeepalive(peer, opts.persistentKeepalive);
    return peer;
  }

  /** The peer with this public key, or undefined. */
  getPeer(publicKey: Uint8Array): Peer | undefined {
    return publicKey instanceof Uint8Array && publicKey.length === 32 ? this.#peers.get(keyOf(publicKey)) : undefined;
  }

  /** All peers, in insertion order. */
  peers(): IterableIterator<Peer> {
    return this.#peers.values();
  }

  /** Number of peers. */
  get peerCount(): number {
    return this.#peers.size;
  }

  /**
   * Removes a peer: its allowed IPs, sessions and timers; every key is wiped and waiting packets
   * are discarded (counted as 'keys-zeroed' without a sink call). Removing twice does nothing.
   */
  removePeer(peer: Peer): void {
    if (!(peer instanceof Peer) || peer[PEER_OWNER] !== this) return;
    this.#peers.delete(keyOf(peer.publicKey));
    this.allowedIps.removeValue(peer);
    this.#heap.remove(peer);
    peer[PEER_TIMERS].stop();
    this.#zeroAndFlushAll(peer, undefined);
    peer[PEER_HANDSHAKE].wipe();
    peer[PEER_COOKIES].wipe();
    peer[PEER_OWNER] = undefined;
  }

  /** Sets the peer's endpoint (undefined to forget it). */
  setEndpoint(peer: Peer, endpoint: Endpoint | undefined): void {
    this.#expectPeer(peer);
    if (endpoint !== undefined) {
      if (endpoint === null || typeof endpoint.address !== 'string' || !Number.isInteger(endpoint.port) || endpoint.port < 0 || endpoint.port > 65535) {
        throw new TypeError(`expected an endpoint { address, port }, got ${JSON.stringify(endpoint)}`);
      }
      endpoint = { address: endpoint.address, port: endpoint.port };
    }
    const before = peer[PEER_ENDPOINT];
    peer[PEER_ENDPOINT] = endpoint;
    // An initiation still waiting for its response went to the old endpoint (or nowhere): send
    // the same bytes to the new one at the next tick instead of waiting for the REKEY_TIMEOUT
    // retry. Not a new initiation (same ephemeral, timestamp and index), so the one-initiation-
    // per-REKEY_TIMEOUT rule (whitepaper 6.4) holds; a copy the peer already consumed is refused
    // there as a replayed timestamp. The path prober and the agent move endpoints this way when
    // the first guess (a NAT's public address, seen from behind that NAT) cannot work.
    if (
      endpoint !== undefined &&
      (before === undefined || before.address !== endpoint.address || before.port !== endpoint.port) &&
      this.#pendingInitiation(peer) !== undefined
    ) {
      peer[PEER_TIMERS].resendInitiation = -Infinity;
      this.#reschedule(peer);
    }
  }

  /** The last initiation sent to `peer`, if it is still the handshake in progress. */
  #pendingInitiation(peer: Peer): Uint8Array | undefined {
    const message = peer[PEER_INITIATION];
    const hs = peer[PEER_HANDSHAKE];
    if (message === undefined) return undefined;
    if (hs.state !== HandshakeState.initiationCreated || readU32(message, InitiationOffset.sender) !== hs.localIndex) {
      peer[PEER_INITIATION] = undefined;
      return undefined;
    }
    return message;
  }

  /** Sets the 32-byte pre-shared key; undefined or all zero = none. Applies to the next handshake. */
  setPresharedKey(peer: Peer, presharedKey: Uint8Array | undefined): void {
    this.#expectPeer(peer);
    if (presharedKey === undefined) peer[PEER_HANDSHAKE].presharedKey.fill(0);
    else {
      expectKey('pre-shared key', presharedKey);
      peer[PEER_HANDSHAKE].presharedKey.set(presharedKey);
    }
  }

  /**
   * Sets the persistent keepalive interval in seconds (0..65535, 0 = off). Turning it on sends
   * a keepalive at the next tick, like wireguard-go's UAPI.
   */
  setPersistentKeepalive(peer: Peer, seconds: number): void {
    this.#expectPeer(peer);
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > 65535) {
      throw new RangeError(`expected persistent keepalive seconds in 0..65535, got ${seconds}`);
    }
    const old = peer.persistentKeepalive;
    peer[PEER_KEEPALIVE] = seconds;
    if (seconds === 0) peer[PEER_TIMERS].persistentKeepalive = Infinity;
    else if (old === 0) {
      peer[PEER_TIMERS].persistentKeepalive = -Infinity;
      this.#reschedule(peer);
    }
  }

  /**
   * Forces the under-load state (cookies demanded, per-source rate limit) until `until` (same
   * clock as `now`); a time in the past ends a forced or detected state.
   */
  setUnderLoad(until: number): void {
    expectTime(until);
    this.#load.setUntil(until);
  }

  /**
   * For a driver that queues handshake messages: its queue is backed up (wireguard-go: at least
   * 1/8 full) at `now`, so the device is under load until at least now + UNDER_LOAD_AFTER_TIME.
   */
  markUnderLoad(now: number): void {
    this.#load.extend(now);
  }

  /**
   * Counts a drop the driver decided before the engine saw the packet ('handshake-queue-full'),
   * and tells `sink` as every other drop does.
   */
  countDrop(reason: DropReason, sink?: ActionSink<Peer>): void {
    this.#drop(sink, reason, undefined);
  }

  /** True when handshake messages at `now` need a valid MAC2 (whitepaper 5.4.7). */
  isUnderLoad(now: number): boolean {
    return this.#load.isUnderLoad(now);
  }

  /** Drops counted so far, per reason (a copy). */
  dropCounts(): Record<DropReason, number> {
    return { ...this.#drops };
  }

  /** Number of allocated session indices (handshakes plus keypairs). */
  get indexCount(): number {
    return this.#index.size;
  }

  // ---- data path ----------------------------------------------------------------------------

  /**
   * Sends an IP packet read from the TUN: the peer is chosen by destination address in
   * allowedIps. Without a usable session the packet is copied into the peer's queue and a
   * handshake starts. `packet` is not kept after return.
   */
  encapsulate(packet: Uint8Array, now: number, sink: ActionSink<Peer>): void {
    const length = packet.length;
    const version = length > 0 ? packet[0]! >> 4 : 0;
    let peer: Peer | undefined;
    if (version === 4 && length >= 20) peer = this.allowedIps.lookup(4, packet, 16);
    else if (version === 6 && length >= 40) peer = this.allowedIps.lookup(6, packet, 24);
    else {
      this.#drop(sink, 'not-ip', undefined);
      return;
    }
    if (peer === undefined) {
      this.#drop(sink, 'no-route', undefined);
      return;
    }
    this.#send(peer, packet, now, sink);
  }

  /** As encapsulate, to a peer chosen by the caller (any payload, not only IP). */
  sendTo(peer: Peer, packet: Uint8Array, now: number, sink: ActionSink<Peer>): void {
    this.#expectPeer(peer);
    this.#send(peer, packet, now, sink);
  }

  /**
   * Handles one UDP datagram from `from`. Transport data is decrypted in place and delivered as a
   * view into `datagram`; handshakes answer through the sink. Never throws on content.
   */
  decapsulate(datagram: Uint8Array, from: Endpoint, now: number, sink: ActionSink<Peer>): void {
    const type = classifyMessage(datagram);
    switch (type) {
      case MessageType.transport:
        this.#receiveTransport(datagram, from, now, sink);
        return;
      case MessageType.initiation:
      case MessageType.response:
        this.#receiveHandshake(datagram, type, from, now, sink);
        return;
      case MessageType.cookieReply:
        this.#receiveCookieReply(datagram, now, sink);
        return;
      default:
        this.#drop(sink, type, undefined);
    }
  }

  /** Runs every timer due at `now` (whitepaper 6). Call when now >= nextDeadline(). */
  tick(now: number, sink: ActionSink<Peer>): void {
    expectTime(now);
    const heap = this.#heap;
    while (heap.peekKey() <= now) {
      const peer = heap.pop()!;
      this.#runTimers(peer, now, sink);
      this.#reschedule(peer);
    }
  }

  /**
   * The earliest time (same clock as `now`) at which tick has work, or Infinity. May be in the
   * past (even -Infinity right after a persistent keepalive is turned on): tick at once then.
   */
  nextDeadline(): number {
    const heap = this.#heap;
    // Deadlines that moved later are re-keyed lazily here rather than on every packet.
    for (;;) {
      const top = heap.peek();
      if (top === undefined) return Infinity;
      const actual = top[PEER_TIMERS].next();
      if (actual <= top[HEAP_KEY]) return top[HEAP_KEY];
      if (actual === Infinity) heap.remove(top);
      else heap.schedule(top, actual);
    }
  }

  // ---- internals: sending -------------------------------------------------------------------

  #send(peer: Peer, packet: Uint8Array, now: number, sink: ActionSink<Peer>): void {
    if (packet.length > TRANSPORT_MAX_CONTENT) {
      this.#drop(sink, 'too-large', peer);
      return;
    }
    const keypair = peer[PEER_KEYPAIRS].current;
    if (peer[PEER_STAGED].length === 0 && keypair !== undefined && keypair.sendCounter < REJECT_AFTER_MESSAGES && now - keypair.created < REJECT_AFTER_TIME) {
      this.#sendData(peer, keypair, packet, now, sink);
      this.#keepKeyFreshSending(peer, now, sink);
      this.#reschedule(peer);
      return;
    }
    this.#stage(peer, copyBytes(packet), sink);
    this.#sendStaged(peer, now, sink);
    this.#reschedule(peer);
  }

  #stage(peer: Peer, packet: Uint8Array, sink: ActionSink<Peer> | undefined): void {
    const staged = peer[PEER_STAGED];
    if (staged.length >= this.#maxStaged) {
      staged.shift();
      this.#drop(sink, 'queue-full', peer);
    }
    staged.push(packet);
  }

  /** wireguard-go SendStagedPackets: sends the queue with the current keypair, else handshakes. */
  #sendStaged(peer: Peer, now: number, sink: ActionSink<Peer>): void {
    const staged = peer[PEER_STAGED];
    if (staged.length === 0) return;
    const keypair = peer[PEER_KEYPAIRS].current;
    if (keypair === undefined || keypair.sendCounter >= REJECT_AFTER_MESSAGES || now - keypair.created >= REJECT_AFTER_TIME) {
      this.#sendHandshakeInitiation(peer, false, now, sink);
      return;
    }
    while (staged.length > 0 && keypair.sendCounter < REJECT_AFTER_MESSAGES) {
      this.#sendData(peer, keypair, staged.shift()!, now, sink);
    }
    this.#keepKeyFreshSending(peer, now, sink);
  }

  #sendData(peer: Peer, keypair: Keypair<Peer>, packet: Uint8Array, now: number, sink: ActionSink<Peer>): void {
    const pool = this.#sendBuffer;
    const pooled = pool !== undefined && pool.length >= transportLength(packet.length, this.#mtu);
    const message = sealTransport(keypair, packet, pooled ? pool : undefined, this.#mtu);
    const timers = peer[PEER_TIMERS];
    timers.anyAuthenticatedPacketTraversal(now, peer.persistentKeepalive);
    timers.anyAuthenticatedPacketSent();
    if (packet.length > 0 && timers.newHandshake === Infinity) timers.dataSent(now, this.#jitter());
    if (this.#transmit(peer, message, sink)) {
      if (!pooled) this.#sendBuffer = message; // a new, bigger buffer the sink gave back
    } else if (pooled) {
      this.#sendBuffer = undefined; // the sink kept it
    }
  }

  /** wireguard-go SendKeepalive: queue an empty packet unless something is queued, then flush. */
  #sendKeepalive(peer: Peer, now: number, sink: ActionSink<Peer>): void {
    if (peer[PEER_STAGED].length === 0) peer[PEER_STAGED].push(EMPTY_PACKET);
    this.#sendStaged(peer, now, sink);
  }

  /** Hands `data` to the sink; true when the sink is done with it (see ActionSink.network). */
  #transmit(peer: Peer, data: Uint8Array, sink: ActionSink<Peer>): boolean {
    const endpoint = peer.endpoint;
    if (endpoint === undefined) {
      this.#drop(sink, 'no-endpoint', peer);
      return true;
    }
    peer.txBytes += data.length;
    return sink.network(peer, endpoint, data) === true;
  }

  /** Rekey when the current keypair is old (initiator) or has sent REKEY_AFTER_MESSAGES (6.2). */
  #keepKeyFreshSending(peer: Peer, now: number, sink: ActionSink<Peer>): void {
    const keypair = peer[PEER_KEYPAIRS].current;
    if (keypair === undefined) return;
    if (keypair.sendCounter > REKEY_AFTER_MESSAGES || (keypair.isInitiator && now - keypair.created > REKEY_AFTER_TIME)) {
      this.#sendHandshakeInitiation(peer, false, now, sink);
    }
  }

  /**
   * Rekey before the current keypair dies if we initiated it and it is older than
   * REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT (whitepaper 6.2, receive side).
   */
  #keepKeyFreshReceiving(peer: Peer, now: number, sink: ActionSink<Peer>): void {
    if (peer[PEER_TIMERS].sentLastMinuteHandshake) return;
    const keypair = peer[PEER_KEYPAIRS].current;
    if (keypair !== undefined && keypair.isInitiator && now - keypair.created > REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT) {
      peer[PEER_TIMERS].sentLastMinuteHandshake = true;
      this.#sendHandshakeInitiation(peer, false, now, sink);
    }
  }

  /** Whitepaper 5.4.2 / wireguard-go SendHandshakeInitiation: at most one per REKEY_TIMEOUT. */
  #sendHandshakeInitiation(peer: Peer, isRetry: boolean, now: number, sink: ActionSink<Peer>): void {
    const timers = peer[PEER_TIMERS];
    const hs = peer[PEER_HANDSHAKE];
    if (!isRetry) timers.handshakeAttempts = 0;
    if (now - hs.lastSentHandshake < REKEY_TIMEOUT) return;
    hs.lastSentHandshake = now;
    const identity = this.#identity;
    if (identity === undefined) return;
    this.#releaseHandshake(hs);
    const ephemeral = new Uint8Array(32);
    this.#fillRandom(ephemeral);
    const index = this.#index.allocate(peer);
    const message = createInitiationMessage(identity, hs, ephemeral, tai64n(this.#wallClockMs()), index);
    ephemeral.fill(0);
    if (message === undefined) {
      this.#index.remove(index);
      return;
    }
    peer[PEER_COOKIES].addMacs(message, now);
    peer[PEER_INITIATION] = message; // a fresh buffer, not written after this
    timers.resendInitiation = Infinity;
    timers.anyAuthenticatedPacketTraversal(now, peer.persistentKeepalive);
    timers.anyAuthenticatedPacketSent();
    this.#transmit(peer, message, sink);
    timers.handshakeInitiated(now, this.#jitter());
    this.#event(sink, { kind: 'handshake-initiation-sent', peer, retry: isRetry });
  }

  /** Whitepaper 5.4.3 / wireguard-go SendHandshakeResponse, after a consumed initiation. */
  #sendHandshakeResponse(peer: Peer, identity: Identity, now: number, sink: ActionSink<Peer>): void {
    const hs = peer[PEER_HANDSHAKE];
    hs.lastSentHandshake = now;
    if (hs.localIndex !== 0) this.#index.remove(hs.localIndex);
    const ephemeral = new Uint8Array(32);
    this.#fillRandom(ephemeral);
    const index = this.#index.allocate(peer);
    const message = createResponseMessage(identity, hs, ephemeral, index);
    ephemeral.fill(0);
    if (message === undefined) {
      this.#index.remove(index);
      return;
    }
    peer[PEER_COOKIES].addMacs(message, now);
    if (!this.#beginSession(peer, identity, now, sink)) return;
    const timers = peer[PEER_TIMERS];
    timers.sessionDerived(now);
    timers.anyAuthenticatedPacketTraversal(now, peer.persistentKeepalive);
    timers.anyAuthenticatedPacketSent();
    this.#transmit(peer, message, sink);
    this.#event(sink, { kind: 'handshake-response-sent', peer });
  }

  /** Derives a keypair from the finished handshake and rotates it in (whitepaper 5.4.5). */
  #beginSession(peer: Peer, identity: Identity, now: number, sink: ActionSink<Peer>): boolean {
    const keys = deriveKeys(identity, peer[PEER_HANDSHAKE]);
    if (keys === undefined) return false;
    const keypair = new Keypair<Peer>(
      peer,
      this.#crypto.aead(keys.sendKey),
      this.#crypto.aead(keys.receiveKey),
      keys.isInitiator,
      now,
      keys.localIndex,
      keys.remoteIndex,
    );
    keys.sendKey.fill(0);
    keys.receiveKey.fill(0);
    this.#index.replace(keys.localIndex, keypair);
    peer[PEER_KEYPAIRS].install(keypair, this.#releaseKeypair);
    this.#event(sink, { kind: 'keypair-created', peer, isInitiator: keys.isInitiator });
    return true;
  }

  // ---- internals: receiving -----------------------------------------------------------------

  #receiveTransport(datagram: Uint8Array, from: Endpoint, now: number, sink: ActionSink<Peer>): void {
    const entry = this.#index.get(readU32(datagram, TransportOffset.receiver));
    if (!(entry instanceof Keypair)) {
      this.#drop(sink, 'unknown-index', undefined);
      return;
    }
    const keypair = entry;
    const peer = keypair.peer;
    const counter = readCounter(datagram, TransportOffset.counter);
    if (counter < 0 || counter >= REJECT_AFTER_MESSAGES) {
      this.#drop(sink, 'replay', peer);
      return;
    }
    if (now - keypair.created >= REJECT_AFTER_TIME) {
      this.#drop(sink, 'expired-keypair', peer);
      return;
    }
    const length = openTransport(keypair, datagram, counter);
    if (length < 0) {
      this.#drop(sink, 'decrypt', peer);
      return;
    }
    if (!keypair.replay.accept(counter, REJECT_AFTER_MESSAGES)) {
      this.#drop(sink, 'replay', peer);
      return;
    }
    const timers = peer[PEER_TIMERS];
    if (peer[PEER_KEYPAIRS].receivedWith(keypair, this.#releaseKeypair)) {
      // Key confirmation (whitepaper 5.4.6): the responder's new keypair is now current.
      this.#setEndpointFromPacket(peer, from, sink);
      timers.handshakeComplete();
      peer.lastHandshakeWallMs = this.#wallClockMs();
      this.#event(sink, { kind: 'handshake-complete', peer });
      this.#sendStaged(peer, now, sink);
    }
    peer.rxBytes += datagram.length;
    this.#setEndpointFromPacket(peer, from, sink);
    this.#keepKeyFreshReceiving(peer, now, sink);
    timers.anyAuthenticatedPacketTraversal(now, peer.persistentKeepalive);
    timers.anyAuthenticatedPacketReceived();
    if (length === 0) {
      this.#reschedule(peer);
      return; // keepalive
    }
    timers.dataReceived(now);
    this.#reschedule(peer);
    this.#deliver(peer, datagram, length, sink);
  }

  /** Checks the inner IP header and source address (whitepaper 2 cryptokey routing), then delivers. */
  #deliver(peer: Peer, datagram: Uint8Array, length: number, sink: ActionSink<Peer>): void {
    const at = TRANSPORT_HEADER_SIZE;
    const version = datagram[at]! >> 4;
    let total: number;
    let owner: Peer | undefined;
    if (version === 4) {
      total = length >= 20 ? (datagram[at + 2]! << 8) | datagram[at + 3]! : 0;
      if (total < 20 || total > length) {
        this.#drop(sink, 'inner-malformed', peer);
        return;
      }
      owner = this.allowedIps.lookup(4, datagram, at + 12);
    } else if (version === 6) {
      total = length >= 40 ? ((datagram[at + 4]! << 8) | datagram[at + 5]!) + 40 : Infinity;
      if (total > length) {
        this.#drop(sink, 'inner-malformed', peer);
        return;
      }
      owner = this.allowedIps.lookup(6, datagram, at + 8);
    } else {
      this.#drop(sink, 'inner-malformed', peer);
      return;
    }
    if (owner !== peer) {
      this.#drop(sink, 'allowed-ips', peer);
      return;
    }
    sink.tun(peer, datagram.subarray(at, at + total));
  }

  #receiveHandshake(datagram: Uint8Array, type: 1 | 2, from: Endpoint, now: number, sink: ActionSink<Peer>): void {
    const identity = this.#identity;
    if (identity === undefined) {
      this.#drop(sink, 'no-identity', undefined);
      return;
    }
    const underLoad = this.#load.record(now);
    if (!this.#cookieChecker.checkMac1(datagram)) {
      this.#drop(sink, 'mac1', undefined);
      return;
    }
    if (underLoad) {
      // Whitepaper 5.4.7: without a valid MAC2 answer with a cookie; with one, rate-limit.
      const source = endpointBytes(from);
      if (!this.#cookieChecker.checkMac2(datagram, source, now)) {
        if (!this.#cookieLimiter.allow(from.address, now)) {
          this.#drop(sink, 'rate-limited', undefined);
          return;
        }
        const reply = this.#cookieChecker.createReply(datagram, readU32(datagram, InitiationOffset.sender), source, now, this.#fillRandom);
        sink.network(undefined, from, reply);
        this.#event(sink, { kind: 'cookie-sent', to: from });
        this.#drop(sink, 'cookie-required', undefined);
        return;
      }
      if (!this.#rateLimiter.allow(from.address, now)) {
        this.#drop(sink, 'rate-limited', undefined);
        return;
      }
    }
    if (type === MessageType.initiation) {
      const result = consumeInitiationMessage(identity, datagram, this.#lookupPeer, now);
      if (typeof result === 'string') {
        this.#drop(sink, result, undefined);
        return;
      }
      const peer = result;
      peer[PEER_TIMERS].anyAuthenticatedPacketTraversal(now, peer.persistentKeepalive);
      peer[PEER_TIMERS].anyAuthenticatedPacketReceived();
      this.#setEndpointFromPacket(peer, from, sink);
      peer.rxBytes += datagram.length;
      this.#sendHandshakeResponse(peer, identity, now, sink);
      this.#reschedule(peer);
      return;
    }
    const receiver = readU32(datagram, ResponseOffset.receiver);
    const entry = this.#index.get(receiver);
    if (!(entry instanceof Peer) || !entry[PEER_HANDSHAKE].awaitsResponse(receiver)) {
      this.#drop(sink, 'unexpected-response', entry instanceof Keypair ? entry.peer : entry);
      return;
    }
    const peer = entry;
    if (!consumeResponseMessage(identity, peer[PEER_HANDSHAKE], datagram)) {
      this.#drop(sink, 'handshake-decrypt', peer);
      return;
    }
    this.#setEndpointFromPacket(peer, from, sink);
    peer.rxBytes += datagram.length;
    const timers = peer[PEER_TIMERS];
    timers.anyAuthenticatedPacketTraversal(now, peer.persistentKeepalive);
    timers.anyAuthenticatedPacketReceived();
    if (this.#beginSession(peer, identity, now, sink)) {
      timers.sessionDerived(now);
      timers.handshakeComplete();
      peer.lastHandshakeWallMs = this.#wallClockMs();
      this.#event(sink, { kind: 'handshake-complete', peer });
      this.#sendKeepalive(peer, now, sink);
    }
    this.#reschedule(peer);
  }

  #receiveCookieReply(datagram: Uint8Array, now: number, sink: ActionSink<Peer>): void {
    const entry = this.#index.get(readU32(datagram, CookieReplyOffset.receiver));
    const peer = entry instanceof Keypair ? entry.peer : entry;
    if (peer === undefined) {
      this.#drop(sink, 'unexpected-response', undefined);
      return;
    }
    const nonce = datagram.subarray(CookieReplyOffset.nonce, CookieReplyOffset.cookie);
    if (!peer[PEER_COOKIES].consumeReply(nonce, datagram.subarray(CookieReplyOffset.cookie), now)) {
      this.#drop(sink, 'cookie-decrypt', peer);
    }
  }

  /** Roaming (whitepaper 2.1): the source of an authenticated packet becomes the endpoint. */
  #setEndpointFromPacket(peer: Peer, from: Endpoint, sink: ActionSink<Peer>): void {
    const current = peer.endpoint;
    if (current !== undefined && current.port === from.port && current.address === from.address) return;
    const endpoint = { address: from.address, port: from.port };
    peer[PEER_ENDPOINT] = endpoint;
    this.#event(sink, { kind: 'endpoint-changed', peer, endpoint });
  }

  // ---- internals: timers --------------------------------------------------------------------

  #runTimers(peer: Peer, now: number, sink: ActionSink<Peer>): void {
    const timers = peer[PEER_TIMERS];
    if (timers.resendInitiation <= now) {
      timers.resendInitiation = Infinity;
      const message = this.#pendingInitiation(peer);
      // Within the attempt's REKEY_TIMEOUT only; after it the retransmit timer sends a new one.
      if (message !== undefined && now - peer[PEER_HANDSHAKE].lastSentHandshake < REKEY_TIMEOUT) {
        this.#transmit(peer, copyBytes(message), sink);
        this.#event(sink, { kind: 'handshake-initiation-resent', peer });
      }
    }
    if (timers.retransmitHandshake <= now) {
      timers.retransmitHandshake = Infinity;
      this.#expiredRetransmitHandshake(peer, now, sink);
    }
    if (timers.sendKeepalive <= now) {
      timers.sendKeepalive = Infinity;
      this.#sendKeepalive(peer, now, sink);
      if (timers.needAnotherKeepalive) {
        timers.needAnotherKeepalive = false;
        timers.sendKeepalive = now + KEEPALIVE_TIMEOUT;
      }
    }
    if (timers.newHandshake <= now) {
      timers.newHandshake = Infinity;
      // Sent data got no answer within KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (whitepaper 6.5).
      this.#sendHandshakeInitiation(peer, false, now, sink);
    }
    if (timers.zeroKeyMaterial <= now) {
      timers.zeroKeyMaterial = Infinity;
      this.#zeroAndFlushAll(peer, sink);
      this.#event(sink, { kind: 'keys-zeroed', peer });
    }
    if (timers.persistentKeepalive <= now) {
      timers.persistentKeepalive = Infinity;
      if (peer.persistentKeepalive > 0) this.#sendKeepalive(peer, now, sink);
    }
  }

  #expiredRetransmitHandshake(peer: Peer, now: number, sink: ActionSink<Peer>): void {
    const timers = peer[PEER_TIMERS];
    if (timers.handshakeAttempts > MAX_TIMER_HANDSHAKES) {
      // REKEY_ATTEMPT_TIME is over (whitepaper 6.4): stop, drop what waited, erase later.
      timers.sendKeepalive = Infinity;
      this.#flushStaged(peer, 'handshake-timeout', sink);
      if (timers.zeroKeyMaterial === Infinity) timers.zeroKeyMaterial = now + ZERO_KEY_MATERIAL_TIME;
      this.#event(sink, { kind: 'handshake-gave-up', peer });
      return;
    }
    timers.handshakeAttempts++;
    this.#sendHandshakeInitiation(peer, true, now, sink);
  }

  /** Erases every keypair and the handshake, and drops waiting packets (wireguard-go ZeroAndFlushAll). */
  #zeroAndFlushAll(peer: Peer, sink: ActionSink<Peer> | undefined): void {
    peer[PEER_KEYPAIRS].clear(this.#releaseKeypair);
    this.#releaseHandshake(peer[PEER_HANDSHAKE]);
    this.#flushStaged(peer, 'keys-zeroed', sink);
  }

  /** Frees the handshake's indices (in progress and crossed) and clears it. */
  #releaseHandshake(hs: Peer[typeof PEER_HANDSHAKE]): void {
    if (hs.localIndex !== 0) this.#index.remove(hs.localIndex);
    if (hs.crossedIndex !== 0) this.#index.remove(hs.crossedIndex);
    hs.clear();
  }

  /** wireguard-go ExpireCurrentKeypairs: after a key change, force a fresh handshake on next send. */
  #expireCurrentKeypairs(peer: Peer): void {
    const hs = peer[PEER_HANDSHAKE];
    this.#releaseHandshake(hs);
    hs.lastSentHandshake = -Infinity;
    const { current, next } = peer[PEER_KEYPAIRS];
    if (current !== undefined) current.sendCounter = REJECT_AFTER_MESSAGES;
    if (next !== undefined) next.sendCounter = REJECT_AFTER_MESSAGES;
  }

  #flushStaged(peer: Peer, reason: DropReason, sink: ActionSink<Peer> | undefined): void {
    const staged = peer[PEER_STAGED];
    for (let i = 0; i < staged.length; i++) {
      // The keepalive placeholder is not a user packet.
      if (staged[i] !== EMPTY_PACKET) this.#drop(sink, reason, peer);
    }
    staged.length = 0;
  }

  /** Puts the peer's earliest deadline in the heap; later deadlines are re-keyed lazily. */
  #reschedule(peer: Peer): void {
    const next = peer[PEER_TIMERS].next();
    if (next === Infinity) return;
    if (peer[HEAP_INDEX] < 0 || next < peer[HEAP_KEY]) this.#heap.schedule(peer, next);
  }

  /** Uniform jitter in [0, REKEY_TIMEOUT_JITTER_MAX) ms from the injected randomness. */
  #jitter(): number {
    const b = this.#random2;
    this.#fillRandom(b);
    return ((b[0]! | (b[1]! << 8)) * REKEY_TIMEOUT_JITTER_MAX) >>> 16;
  }

  #drop(sink: ActionSink<Peer> | undefined, reason: DropReason, peer: Peer | undefined): void {
    this.#drops[reason]++;
    sink?.drop(reason, peer);
  }

  #event(sink: ActionSink<Peer>, e: EngineEvent<Peer>): void {
    sink.event?.(e);
  }

  #expectPeer(peer: Peer): void {
    if (!(peer instanceof Peer) || peer[PEER_OWNER] !== this) {
      throw new TypeError('expected a live peer of this engine, got another value');
    }
  }
}
