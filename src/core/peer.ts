// A configured WireGuard peer (whitepaper 5.4 and 6; wireguard-go peer.go): its handshake,
// keypairs, cookie state, timers, packets waiting for a session and counters. The Engine owns and
// mutates it; applications read it and change it through Engine methods (setEndpoint...).

import type { Endpoint } from './actions.js';
import { CookieGenerator } from './cookie.js';
import type { CryptoProvider } from './crypto.js';
import { Handshake, PEER_HANDSHAKE } from './handshake.js';
import { HEAP_INDEX, HEAP_KEY, type HeapItem } from './deadline-heap.js';
import { Keypairs } from './session.js';
import { PeerTimers } from './timers.js';

// Engine-only state, keyed by symbols that core/index.ts does not export: a library user sees
// neither the owner, nor a way to set the endpoint or keepalive past Engine's validation, nor the
// peer's keys (handshake, keypairs, cookies), timers or waiting packets. A symbol-keyed property
// or getter costs what a named one does.
/** engine: the Engine holding the peer; undefined once removed. */
export const PEER_OWNER: unique symbol = Symbol('owner');
/** engine: the endpoint, written by Engine.setEndpoint (validated) and by roaming. */
export const PEER_ENDPOINT: unique symbol = Symbol('endpoint');
/** engine: the persistent keepalive interval, written by Engine.setPersistentKeepalive. */
export const PEER_KEEPALIVE: unique symbol = Symbol('persistentKeepalive');
/** engine: the last initiation sent (public bytes, MACs included), resent unchanged when the
 *  endpoint moves before it was answered. */
export const PEER_INITIATION: unique symbol = Symbol('initiation');
/** engine: current / previous / next keypairs. */
export const PEER_KEYPAIRS: unique symbol = Symbol('keypairs');
/** engine: MAC1/MAC2 writer and cookie holder for messages to this peer. */
export const PEER_COOKIES: unique symbol = Symbol('cookieGenerator');
/** engine: protocol timer deadlines. */
export const PEER_TIMERS: unique symbol = Symbol('timers');
/** engine: packets waiting for a session (copies), oldest first. */
export const PEER_STAGED: unique symbol = Symbol('staged');
/** engine: handshake state, pre-shared key and precomputed static-static DH (declared in
 *  handshake.ts, which reads it from the peer an initiation names). */
export { PEER_HANDSHAKE };

/** One peer of an Engine: its key, endpoint, keepalive and counters; the rest is the engine's. */
export class Peer implements HeapItem {
  /** The peer's static public key (32 bytes; a private copy). */
  readonly publicKey: Uint8Array;
  readonly [PEER_HANDSHAKE]: Handshake;
  readonly #crypto: CryptoProvider;
  // Made on first use: in a large configuration most peers never send, receive or time out, and
  // these four objects were a fifth of an idle peer's heap.
  #keypairs: Keypairs<Peer> | undefined;
  #cookieGenerator: CookieGenerator | undefined;
  #timers: PeerTimers | undefined;
  #staged: Uint8Array[] | undefined;
  [HEAP_INDEX] = -1;
  [HEAP_KEY] = Infinity;
  [PEER_OWNER]: object | undefined = undefined;
  [PEER_ENDPOINT]: Endpoint | undefined = undefined;
  [PEER_KEEPALIVE] = 0;
  [PEER_INITIATION]: Uint8Array | undefined = undefined;
  /** Bytes received from this peer: whole authenticated datagrams (handshake and transport). */
  rxBytes = 0;
  /** Bytes sent to this peer: whole datagrams handed to the network. */
  txBytes = 0;
  /** Wall-clock ms of the last completed handshake, 0 when none (for UAPI last_handshake_time). */
  lastHandshakeWallMs = 0;

  /** Use Engine.addPeer. */
  constructor(crypto: CryptoProvider, publicKey: Uint8Array) {
    this[PEER_HANDSHAKE] = new Handshake(publicKey);
    // One private copy of the key, shared read-only by the peer, its handshake and its cookies.
    this.publicKey = this[PEER_HANDSHAKE].remoteStatic;
    this.#crypto = crypto;
  }

  get [PEER_KEYPAIRS](): Keypairs<Peer> {
    return (this.#keypairs ??= new Keypairs<Peer>());
  }

  get [PEER_COOKIES](): CookieGenerator {
    return (this.#cookieGenerator ??= new CookieGenerator(this.#crypto, this.publicKey));
  }

  get [PEER_TIMERS](): PeerTimers {
    return (this.#timers ??= new PeerTimers());
  }

  get [PEER_STAGED](): Uint8Array[] {
    return (this.#staged ??= []);
  }

  /** Where datagrams to this peer go: configured, or learnt from its last authenticated packet. */
  get endpoint(): Endpoint | undefined {
    return this[PEER_ENDPOINT];
  }

  /** Persistent keepalive interval in seconds, 0 when off. */
  get persistentKeepalive(): number {
    return this[PEER_KEEPALIVE];
  }

  /** True when a pre-shared key is configured (non-zero). */
  get hasPresharedKey(): boolean {
    return this[PEER_HANDSHAKE].hasPresharedKey;
  }
}
