// The WireGuard handshake of one peer (whitepaper 5.4.2-5.4.5; wireguard-go noise-protocol.go):
// state, the four create/consume steps over noise.ts in WireGuard framing, and key derivation.
// MAC fields are left zero here; cookie.ts fills and checks them.

import { copyBytes } from './bytes.js';
import { CONSTRUCTION, HANDSHAKE_INITIATION_RATE, IDENTIFIER } from './constants.js';
import type { CryptoProvider } from './crypto.js';
import type { DropReason } from './actions.js';
import {
  INITIATION_SIZE,
  InitiationOffset,
  MessageType,
  RESPONSE_SIZE,
  ResponseOffset,
  TIMESTAMP_SIZE,
  readU32,
  writeU32,
} from './messages.js';
import {
  NoiseState,
  consumeInitiationPayload,
  consumeInitiationStatic,
  consumeResponse,
  createInitiation,
  createResponse,
  initialState,
  isZero,
  split,
} from './noise.js';
import { tai64nAfter } from './tai64n.js';

/** Where a handshake stands (wireguard-go handshakeState). */
export const HandshakeState = {
  zeroed: 0,
  initiationCreated: 1,
  initiationConsumed: 2,
  responseCreated: 3,
  responseConsumed: 4,
} as const;
/** One of the HandshakeState values. */
export type HandshakeState = (typeof HandshakeState)[keyof typeof HandshakeState];

/** Our static identity as the handshake needs it; `initial` is the shared starting NoiseState. */
export interface Identity {
  readonly crypto: CryptoProvider;
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly initial: NoiseState;
}

const encoder = new TextEncoder();

/** Builds an Identity for a 32-byte private key (derives the public key; computes C0, H0). */
export function makeIdentity(crypto: CryptoProvider, privateKey: Uint8Array): Identity {
  return {
    crypto,
    privateKey: copyBytes(privateKey),
    publicKey: crypto.x25519PublicKey(privateKey),
    initial: initialState(crypto, encoder.encode(CONSTRUCTION), encoder.encode(IDENTIFIER)),
  };
}

/**
 * Handshake state with one peer; secrets are zeroed by clear() and wipe(). The key and working
 * buffers are allocated on first use, so a peer that never handshakes costs only its public key
 * (a large configuration is mostly such peers); once allocated they are kept and zeroed in place.
 */
export class Handshake {
  /** The peer's static public key (a private copy, never written). */
  readonly remoteStatic: Uint8Array;
  state: HandshakeState = HandshakeState.zeroed;
  /** Our index for this handshake in the index table, 0 for none. */
  localIndex = 0;
  /** The peer's index (its sender field). */
  remoteIndex = 0;
  /** `now` of the last accepted initiation, for HANDSHAKE_INITIATION_RATE. */
  lastInitiationConsumption = -Infinity;
  /** `now` of the last initiation or response we sent (REKEY_TIMEOUT spacing). */
  lastSentHandshake = -Infinity;
  #presharedKey: Uint8Array | undefined;
  #staticStatic: Uint8Array | undefined;
  #staticStaticOf: Identity | undefined;
  #noise: NoiseState | undefined;
  #localEphemeral: Uint8Array | undefined;
  #remoteEphemeral: Uint8Array | undefined;
  #lastTimestamp: Uint8Array | undefined;
  #crossed: CrossedInitiation | undefined;

  constructor(remoteStatic: Uint8Array) {
    this.remoteStatic = copyBytes(remoteStatic);
  }

  /** Pre-shared key Q, all zero when none (whitepaper 5.4.3); written in place to set it. */
  get presharedKey(): Uint8Array {
    return (this.#presharedKey ??= new Uint8Array(32));
  }

  /** True when a non-zero pre-shared key is set (allocates nothing). */
  get hasPresharedKey(): boolean {
    return this.#presharedKey !== undefined && !isZero(this.#presharedKey);
  }

  /**
   * DH(our static private, remoteStatic) as last computed by staticStatic(), all zero before that
   * or for a low-order key. Written in place by tests that precompute it themselves.
   */
  get precomputedStaticStatic(): Uint8Array {
    return (this.#staticStatic ??= new Uint8Array(32));
  }

  /** Chaining key and hash of the handshake in progress. */
  get noise(): NoiseState {
    return (this.#noise ??= new NoiseState());
  }

  /** Our ephemeral private key of the handshake in progress. */
  get localEphemeral(): Uint8Array {
    return (this.#localEphemeral ??= new Uint8Array(32));
  }

  /** The peer's ephemeral public key of the handshake in progress. */
  get remoteEphemeral(): Uint8Array {
    return (this.#remoteEphemeral ??= new Uint8Array(32));
  }

  /** Newest TAI64N accepted from the peer, all zero before the first (whitepaper 5.4.2 replay protection). */
  get lastTimestamp(): Uint8Array {
    return (this.#lastTimestamp ??= new Uint8Array(TIMESTAMP_SIZE));
  }

  /**
   * The precomputed static-static DH for identity `id` (whitepaper 5.4.2 `ss`): computed at the
   * first handshake after a key change instead of when the peer is added (one X25519 per peer was
   * most of the time of loading a large configuration); all zero for a low-order key.
   */
  staticStatic(id: Identity): Uint8Array {
    const ss = this.precomputedStaticStatic;
    if (this.#staticStaticOf !== id) {
      const shared = id.crypto.x25519(id.privateKey, this.remoteStatic);
      ss.set(shared);
      shared.fill(0);
      this.#staticStaticOf = id;
    }
    return ss;
  }

  /** Zeroes the static-static DH; the next handshake recomputes it (our private key changed). */
  forgetStaticStatic(): void {
    this.#staticStatic?.fill(0);
    this.#staticStaticOf = undefined;
  }

  /**
   * Our index of an initiation of ours that the peer's initiation crossed (both sides initiated at
   * once), still waiting for its response; 0 for none. It is in the index table like localIndex.
   */
  get crossedIndex(): number {
    return this.#crossed?.localIndex ?? 0;
  }

  /**
   * True when a response with receiver `index` may be consumed now: it answers the initiation in
   * progress, or the crossed one while no other handshake is under way.
   */
  awaitsResponse(index: number): boolean {
    if (index === 0) return false;
    if (this.state === HandshakeState.initiationCreated) return this.localIndex === index;
    return this.state === HandshakeState.zeroed && this.#crossed?.localIndex === index;
  }

  /**
   * Sets our initiation in progress aside, because the peer's initiation is about to replace it
   * (see consumeInitiationMessage). Its chaining key, hash, ephemeral and index move, not copy.
   */
  setAsideInitiation(): void {
    if (this.state !== HandshakeState.initiationCreated) return;
    this.discardCrossed();
    this.#crossed = new CrossedInitiation(this.noise, this.localEphemeral, this.localIndex);
    this.#noise = undefined;
    this.#localEphemeral = undefined;
    this.localIndex = 0;
    this.state = HandshakeState.zeroed;
  }

  /**
   * Makes the crossed initiation the handshake in progress again (state initiationCreated), so a
   * response to it is consumed like any other. Only when awaitsResponse(crossedIndex) holds.
   */
  resumeCrossed(): void {
    const crossed = this.#crossed;
    if (crossed === undefined || this.state !== HandshakeState.zeroed) return;
    this.#noise?.wipe();
    this.#localEphemeral?.fill(0);
    this.#noise = crossed.noise;
    this.#localEphemeral = crossed.localEphemeral;
    this.localIndex = crossed.localIndex;
    this.state = HandshakeState.initiationCreated;
    this.#crossed = undefined;
  }

  /** Wipes the crossed initiation, if any; releasing its index (crossedIndex) is the caller's. */
  discardCrossed(): void {
    const crossed = this.#crossed;
    if (crossed === undefined) return;
    crossed.noise.wipe();
    crossed.localEphemeral.fill(0);
    this.#crossed = undefined;
  }

  /**
   * Zeroes ephemeral and symmetric state, the crossed initiation included, and returns to
   * `zeroed` (releasing localIndex and crossedIndex is the caller's).
   */
  clear(): void {
    this.#localEphemeral?.fill(0);
    this.#remoteEphemeral?.fill(0);
    this.#noise?.wipe();
    this.discardCrossed();
    this.localIndex = 0;
    this.state = HandshakeState.zeroed;
  }

  /** clear() plus every long-lived secret: pre-shared and precomputed keys (peer removal). */
  wipe(): void {
    this.clear();
    this.#presharedKey?.fill(0);
    this.forgetStaticStatic();
  }
}

/** Our initiation set aside while we answer the peer's crossing one (Handshake.setAsideInitiation). */
class CrossedInitiation {
  readonly noise: NoiseState;
  readonly localEphemeral: Uint8Array;
  readonly localIndex: number;

  constructor(noise: NoiseState, localEphemeral: Uint8Array, localIndex: number) {
    this.noise = noise;
    this.localEphemeral = localEphemeral;
    this.localIndex = localIndex;
  }
}

/**
 * Creates an initiation (whitepaper 5.4.2) with `ephemeralPrivate`, `timestamp` (TAI64N) and our
 * `senderIndex`; returns the 148-byte message with zero MACs, or undefined when the peer's key
 * gives a zero DH. On success `hs` is in state initiationCreated.
 */
export function createInitiationMessage(
  id: Identity,
  hs: Handshake,
  ephemeralPrivate: Uint8Array,
  timestamp: Uint8Array,
  senderIndex: number,
): Uint8Array | undefined {
  const msg = new Uint8Array(INITIATION_SIZE);
  msg[0] = MessageType.initiation;
  writeU32(msg, InitiationOffset.sender, senderIndex);
  hs.noise.copyFrom(id.initial);
  hs.localEphemeral.set(ephemeralPrivate);
  const ok = createInitiation(
    id.crypto,
    hs.noise,
    {
      localStaticPublic: id.publicKey,
      remoteStatic: hs.remoteStatic,
      staticStatic: hs.staticStatic(id),
      ephemeralPrivate,
    },
    timestamp,
    msg.subarray(InitiationOffset.ephemeral, InitiationOffset.mac1),
  );
  if (!ok) {
    hs.clear();
    return undefined;
  }
  hs.localIndex = senderIndex;
  hs.state = HandshakeState.initiationCreated;
  return msg;
}

/** engine: a peer's Handshake, keyed by a symbol core/index.ts does not export (see peer.ts). */
export const PEER_HANDSHAKE: unique symbol = Symbol('handshake');

/** Finds the handshake of the peer with a given static public key. */
export type HandshakeLookup<P> = (remoteStatic: Uint8Array) => P | undefined;

const scratchTimestamp = new Uint8Array(TIMESTAMP_SIZE);

/**
 * Consumes an initiation (whitepaper 5.4.2) whose MACs were already checked: authenticates it,
 * finds the peer, rejects replays (TAI64N not newer) and floods (within HANDSHAKE_INITIATION_RATE
 * of the last accepted one at `now`). On success the peer's handshake is initiationConsumed.
 */
export function consumeInitiationMessage<P extends { readonly [PEER_HANDSHAKE]: Handshake }>(
  id: Identity,
  msg: Uint8Array,
  lookup: HandshakeLookup<P>,
  now: number,
): P | DropReason {
  const scratch = new NoiseState();
  scratch.copyFrom(id.initial);
  const body = msg.subarray(InitiationOffset.ephemeral, InitiationOffset.mac1);
  const remoteStatic = consumeInitiationStatic(id.crypto, scratch, id.privateKey, id.publicKey, body);
  if (remoteStatic === undefined) return 'handshake-decrypt';
  const peer = lookup(remoteStatic);
  if (peer === undefined) {
    scratch.wipe();
    return 'unknown-peer';
  }
  const hs = peer[PEER_HANDSHAKE];
  if (!consumeInitiationPayload(id.crypto, scratch, hs.staticStatic(id), body, scratchTimestamp)) {
    scratch.wipe();
    return 'handshake-decrypt';
  }
  if (!tai64nAfter(scratchTimestamp, hs.lastTimestamp)) {
    scratch.wipe();
    return 'stale-timestamp';
  }
  if (now - hs.lastInitiationConsumption <= HANDSHAKE_INITIATION_RATE) {
    scratch.wipe();
    return 'initiation-flood';
  }
  // Both sides initiated at once: keep ours so the peer's response to it still completes. With
  // one handshake state (wireguard-go) each side answers the other's and drops the response to
  // its own, and both wait REKEY_TIMEOUT for a retry. The initiation we set aside is the one we
  // sent; it lives no longer than it would have (the next initiation or clear() wipes it).
  hs.setAsideInitiation();
  hs.noise.copyFrom(scratch);
  scratch.wipe();
  hs.remoteIndex = readU32(msg, InitiationOffset.sender);
  hs.remoteEphemeral.set(msg.subarray(InitiationOffset.ephemeral, InitiationOffset.static));
  hs.lastTimestamp.set(scratchTimestamp);
  hs.lastInitiationConsumption = now;
  hs.state = HandshakeState.initiationConsumed;
  return peer;
}

/**
 * Creates the response (whitepaper 5.4.3) to a consumed initiation with `ephemeralPrivate` and our
 * `senderIndex`; returns the 92-byte message with zero MACs, or undefined when `hs` is not in state
 * initiationConsumed or a DH is zero. On success `hs` is responseCreated.
 */
export function createResponseMessage(
  id: Identity,
  hs: Handshake,
  ephemeralPrivate: Uint8Array,
  senderIndex: number,
): Uint8Array | undefined {
  if (hs.state !== HandshakeState.initiationConsumed) return undefined;
  const msg = new Uint8Array(RESPONSE_SIZE);
  msg[0] = MessageType.response;
  writeU32(msg, ResponseOffset.sender, senderIndex);
  writeU32(msg, ResponseOffset.receiver, hs.remoteIndex);
  hs.localEphemeral.set(ephemeralPrivate);
  const ok = createResponse(
    id.crypto,
    hs.noise,
    {
      remoteEphemeral: hs.remoteEphemeral,
      remoteStatic: hs.remoteStatic,
      ephemeralPrivate,
      presharedKey: hs.presharedKey,
    },
    new Uint8Array(0),
    msg.subarray(ResponseOffset.ephemeral, ResponseOffset.mac1),
  );
  if (!ok) {
    hs.clear();
    return undefined;
  }
  hs.localIndex = senderIndex;
  hs.state = HandshakeState.responseCreated;
  return msg;
}

const EMPTY = new Uint8Array(0);

/**
 * Consumes a response (whitepaper 5.4.3) addressed to `hs` (found by its receiver index), MACs
 * already checked: to the initiation in progress, or to a crossed one (Handshake.awaitsResponse).
 * True on success (`hs` is then responseConsumed); false leaves `hs` as it was, a crossed
 * initiation possibly resumed as the one in progress.
 */
export function consumeResponseMessage(id: Identity, hs: Handshake, msg: Uint8Array): boolean {
  const receiver = readU32(msg, ResponseOffset.receiver);
  if (!hs.awaitsResponse(receiver)) return false;
  if (hs.state === HandshakeState.zeroed) hs.resumeCrossed();
  const scratch = new NoiseState();
  scratch.copyFrom(hs.noise);
  const ok = consumeResponse(
    id.crypto,
    scratch,
    { ephemeralPrivate: hs.localEphemeral, localStaticPrivate: id.privateKey, presharedKey: hs.presharedKey },
    msg.subarray(ResponseOffset.ephemeral, ResponseOffset.mac1),
    EMPTY,
  );
  if (ok) {
    hs.noise.copyFrom(scratch);
    hs.remoteIndex = readU32(msg, ResponseOffset.sender);
    hs.state = HandshakeState.responseConsumed;
  }
  scratch.wipe();
  return ok;
}

/** Transport keys derived from a completed handshake (caller wipes both arrays). */
export interface DerivedKeys {
  readonly sendKey: Uint8Array;
  readonly receiveKey: Uint8Array;
  readonly isInitiator: boolean;
  readonly localIndex: number;
  readonly remoteIndex: number;
}

/**
 * Derives the transport keys (whitepaper 5.4.5) from a handshake in state responseConsumed
 * (initiator) or responseCreated (responder), then zeroes the handshake's secrets. Returns
 * undefined in any other state. `hs.localIndex` is handed over to the keypair (reset to 0).
 */
export function deriveKeys(id: Identity, hs: Handshake): DerivedKeys | undefined {
  let isInitiator: boolean;
  if (hs.state === HandshakeState.responseConsumed) isInitiator = true;
  else if (hs.state === HandshakeState.responseCreated) isInitiator = false;
  else return undefined;
  const [first, second] = split(id.crypto, hs.noise);
  const keys: DerivedKeys = {
    sendKey: isInitiator ? first : second,
    receiveKey: isInitiator ? second : first,
    isInitiator,
    localIndex: hs.localIndex,
    remoteIndex: hs.remoteIndex,
  };
  hs.noise.wipe();
  hs.localEphemeral.fill(0);
  hs.remoteEphemeral.fill(0);
  hs.localIndex = 0;
  hs.state = HandshakeState.zeroed;
  return keys;
}
