// One transport session's keys (whitepaper 5.4.5-5.4.6; wireguard-go keypair.go): send and receive
// AEADs, the send counter, the replay window, and transport message seal/open with padding.

import { PADDING_MULTIPLE } from './constants.js';
import type { Aead } from './crypto.js';
import { TAG_SIZE, TRANSPORT_HEADER_SIZE, writeTransportHeader } from './messages.js';
import { ReplayWindow } from './replay.js';

/** A keypair derived from one handshake; `P` is the owning peer type. */
export class Keypair<P> {
  /** The peer this keypair talks to. */
  readonly peer: P;
  readonly send: Aead;
  readonly receive: Aead;
  /** Next counter to send with; also the number of messages sent. */
  sendCounter = 0;
  /** Receive-side replay filter (RFC 6479). */
  readonly replay = new ReplayWindow();
  /** True when we initiated the handshake that made this keypair (only initiators rekey on time). */
  readonly isInitiator: boolean;
  /** `now` at derivation, for REKEY_AFTER_TIME and REJECT_AFTER_TIME. */
  readonly created: number;
  /** Our index: transport messages to us carry it as receiver. */
  readonly localIndex: number;
  /** The peer's index, written into our transport messages. */
  readonly remoteIndex: number;
  #wiped = false;

  constructor(peer: P, send: Aead, receive: Aead, isInitiator: boolean, created: number, localIndex: number, remoteIndex: number) {
    this.peer = peer;
    this.send = send;
    this.receive = receive;
    this.isInitiator = isInitiator;
    this.created = created;
    this.localIndex = localIndex;
    this.remoteIndex = remoteIndex;
  }

  /** True once wipe() ran. */
  get wiped(): boolean {
    return this.#wiped;
  }

  /** Erases both keys; idempotent. */
  wipe(): void {
    if (this.#wiped) return;
    this.#wiped = true;
    this.send.wipe();
    this.receive.wipe();
  }
}

/**
 * Plaintext length after zero-padding `length` to a multiple of 16 (whitepaper 5.4.6), never
 * past a tunnel MTU `mtu` > 0 (wireguard-go's calculatePaddingSize, the kernel's
 * calculate_skb_padding): a full-MTU packet stays unpadded, so its datagram is exactly
 * MTU + 32 bytes and fits the underlay the MTU was chosen for (1420 + 32 + 48 = 1500 over IPv6).
 * A packet longer than the MTU pads its remainder modulo the MTU, as they do.
 */
export function paddedLength(length: number, mtu = 0): number {
  if (mtu <= 0) return (length + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1);
  const last = length > mtu ? length % mtu : length;
  const padded = Math.min((last + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1), mtu);
  return length + padded - last;
}

/** Length of the transport message carrying a `length`-byte packet (header, padding, tag). */
export function transportLength(length: number, mtu = 0): number {
  return TRANSPORT_HEADER_SIZE + paddedLength(length, mtu) + TAG_SIZE;
}

/**
 * Builds a transport message for `packet` (empty = keepalive) with the keypair's next counter,
 * padding the plaintext as paddedLength(packet.length, mtu). Writes into `out` when it is given and at least
 * transportLength(packet.length, mtu) long (returning a view of its start), else into a new array the
 * caller owns. `out` must not overlap `packet`. The caller checked the counter against
 * REJECT_AFTER_MESSAGES and the length against TRANSPORT_MAX_CONTENT.
 */
export function sealTransport<P>(keypair: Keypair<P>, packet: Uint8Array, out?: Uint8Array, mtu = 0): Uint8Array {
  const padded = paddedLength(packet.length, mtu);
  const length = TRANSPORT_HEADER_SIZE + padded + TAG_SIZE;
  const message = out !== undefined && out.length >= length ? out.subarray(0, length) : new Uint8Array(length);
  const counter = keypair.sendCounter++;
  writeTransportHeader(message, keypair.remoteIndex, counter);
  message.set(packet, TRANSPORT_HEADER_SIZE);
  // A reused buffer holds an older packet: the padding must be zero (whitepaper 5.4.6).
  if (padded > packet.length) message.fill(0, TRANSPORT_HEADER_SIZE + packet.length, TRANSPORT_HEADER_SIZE + padded);
  keypair.send.seal(counter, message.subarray(TRANSPORT_HEADER_SIZE, TRANSPORT_HEADER_SIZE + padded), undefined, message.subarray(TRANSPORT_HEADER_SIZE));
  return message;
}

/**
 * Authenticates and decrypts a transport message in place: the plaintext lands at
 * datagram[16..16+n). Returns n, or -1 when authentication fails. `counter` is the header's.
 */
export function openTransport<P>(keypair: Keypair<P>, datagram: Uint8Array, counter: number): number {
  const content = datagram.subarray(TRANSPORT_HEADER_SIZE);
  return keypair.receive.open(counter, content, undefined, content);
}
