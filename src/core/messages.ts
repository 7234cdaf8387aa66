// WireGuard message framing (whitepaper 5.4.2, 5.4.3, 5.4.6, 5.4.7): types 1-4, exact lengths,
// reserved bytes zero, little-endian fields. Parsing returns views; nothing here throws on input.

import type { DropReason } from './actions.js';

/** Message type byte values (whitepaper 5.4). */
export const MessageType = {
  initiation: 1,
  response: 2,
  cookieReply: 3,
  transport: 4,
} as const;
/** One of the four message type values. */
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Size of a Poly1305 tag (RFC 8439). */
export const TAG_SIZE = 16;
/** Size of a TAI64N timestamp (whitepaper 5.4.2). */
export const TIMESTAMP_SIZE = 12;
/** Size of a MAC1 or MAC2 field (whitepaper 5.4.4). */
export const MAC_SIZE = 16;

/** Handshake initiation: 148 bytes (whitepaper 5.4.2). */
export const INITIATION_SIZE = 148;
/** Handshake response: 92 bytes (whitepaper 5.4.3). */
export const RESPONSE_SIZE = 92;
/** Cookie reply: 64 bytes (whitepaper 5.4.7). */
export const COOKIE_REPLY_SIZE = 64;
/** Transport header: type, receiver, counter (whitepaper 5.4.6). */
export const TRANSPORT_HEADER_SIZE = 16;
/** Smallest transport message: header plus the tag of an empty (keepalive) payload. */
export const TRANSPORT_MIN_SIZE = TRANSPORT_HEADER_SIZE + TAG_SIZE;
/** Largest plaintext a transport message carries: a UDP payload of 65535 bytes minus overhead. */
export const TRANSPORT_MAX_CONTENT = 65535 - TRANSPORT_MIN_SIZE;

/** Field offsets of the initiation (whitepaper 5.4.2). */
export const InitiationOffset = {
  sender: 4,
  ephemeral: 8,
  static: 40,
  timestamp: 88,
  mac1: 116,
  mac2: 132,
} as const;
/** Field offsets of the response (whitepaper 5.4.3). */
export const ResponseOffset = {
  sender: 4,
  receiver: 8,
  ephemeral: 12,
  empty: 44,
  mac1: 60,
  mac2: 76,
} as const;
/** Field offsets of the cookie reply (whitepaper 5.4.7). */
export const CookieReplyOffset = { receiver: 4, nonce: 8, cookie: 32 } as const;
/** Field offsets of the transport message (whitepaper 5.4.6). */
export const TransportOffset = { receiver: 4, counter: 8, content: 16 } as const;

/** Reads a little-endian unsigned 32-bit integer at `offset` (caller checked the length). */
export function readU32(buf: Uint8Array, offset: number): number {
  return (buf[offset]! | (buf[offset + 1]! << 8) | (buf[offset + 2]! << 16) | (buf[offset + 3]! << 24)) >>> 0;
}

/** Writes `value` (an unsigned 32-bit integer) little-endian at `offset`. */
export function writeU32(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = value;
  buf[offset + 1] = value >>> 8;
  buf[offset + 2] = value >>> 16;
  buf[offset + 3] = value >>> 24;
}

/** Largest high word of a 64-bit counter that still gives an exact number (< 2^53). */
const MAX_COUNTER_HIGH = 0x1f_ffff;

/**
 * Reads the 64-bit little-endian transport counter at `offset`; returns -1 when it is 2^53 or
 * more (such counters are at or past REJECT_AFTER_MESSAGES here and are dropped as replays).
 */
export function readCounter(buf: Uint8Array, offset: number): number {
  const hi = readU32(buf, offset + 4);
  if (hi > MAX_COUNTER_HIGH) return -1;
  return hi * 0x1_0000_0000 + readU32(buf, offset);
}

/** Writes `counter` (an integer in [0, 2^53)) as a 64-bit little-endian value at `offset`. */
export function writeCounter(buf: Uint8Array, offset: number, counter: number): void {
  const lo = counter >>> 0;
  writeU32(buf, offset, lo);
  writeU32(buf, offset + 4, (counter - lo) / 0x1_0000_0000);
}

/**
 * Classifies a datagram: its message type when the header and length are valid for that type,
 * otherwise the drop reason. Never throws.
 */
export function classifyMessage(buf: Uint8Array): MessageType | DropReason {
  const length = buf.length;
  if (length < 4) return 'short';
  const type = buf[0]!;
  if (type < 1 || type > 4) return 'unknown-type';
  if ((buf[1]! | buf[2]! | buf[3]!) !== 0) return 'reserved-nonzero';
  switch (type) {
    case MessageType.initiation:
      return length === INITIATION_SIZE ? MessageType.initiation : 'bad-length';
    case MessageType.response:
      return length === RESPONSE_SIZE ? MessageType.response : 'bad-length';
    case MessageType.cookieReply:
      return length === COOKIE_REPLY_SIZE ? MessageType.cookieReply : 'bad-length';
    default:
      return length >= TRANSPORT_MIN_SIZE ? MessageType.transport : 'bad-length';
  }
}

/** Handshake initiation fields (whitepaper 5.4.2); byte fields are views into the message. */
export interface Initiation {
  readonly sender: number;
  readonly ephemeral: Uint8Array; // 32
  readonly static: Uint8Array; // 32 + 16
  readonly timestamp: Uint8Array; // 12 + 16
  readonly mac1: Uint8Array; // 16
  readonly mac2: Uint8Array; // 16
}

/** Handshake response fields (whitepaper 5.4.3); byte fields are views into the message. */
export interface Response {
  readonly sender: number;
  readonly receiver: number;
  readonly ephemeral: Uint8Array; // 32
  readonly empty: Uint8Array; // 0 + 16
  readonly mac1: Uint8Array; // 16
  readonly mac2: Uint8Array; // 16
}

/** Cookie reply fields (whitepaper 5.4.7); byte fields are views into the message. */
export interface CookieReply {
  readonly receiver: number;
  readonly nonce: Uint8Array; // 24
  readonly cookie: Uint8Array; // 16 + 16
}

/** Transport header fields (whitepaper 5.4.6); `content` is ciphertext || tag. */
export interface Transport {
  readonly receiver: number;
  /** Exact counter, or -1 when it is 2^53 or more. */
  readonly counter: number;
  readonly content: Uint8Array;
}

/** Parses an initiation, or returns the drop reason. */
export function parseInitiation(buf: Uint8Array): Initiation | DropReason {
  const kind = classifyMessage(buf);
  if (kind !== MessageType.initiation) return typeof kind === 'string' ? kind : 'unknown-type';
  const o = InitiationOffset;
  return {
    sender: readU32(buf, o.sender),
    ephemeral: buf.subarray(o.ephemeral, o.static),
    static: buf.subarray(o.static, o.timestamp),
    timestamp: buf.subarray(o.timestamp, o.mac1),
    mac1: buf.subarray(o.mac1, o.mac2),
    mac2: buf.subarray(o.mac2, INITIATION_SIZE),
  };
}

/** Parses a response, or returns the drop reason. */
export function parseResponse(buf: Uint8Array): Response | DropReason {
  const kind = classifyMessage(buf);
  if (kind !== MessageType.response) return typeof kind === 'string' ? kind : 'unknown-type';
  const o = ResponseOffset;
  return {
    sender: readU32(buf, o.sender),
    receiver: readU32(buf, o.receiver),
    ephemeral: buf.subarray(o.ephemeral, o.empty),
    empty: buf.subarray(o.empty, o.mac1),
    mac1: buf.subarray(o.mac1, o.mac2),
    mac2: buf.subarray(o.mac2, RESPONSE_SIZE),
  };
}

/** Parses a cookie reply, or returns the drop reason. */
export function parseCookieReply(buf: Uint8Array): CookieReply | DropReason {
  const kind = classifyMessage(buf);
  if (kind !== MessageType.cookieReply) return typeof kind === 'string' ? kind : 'unknown-type';
  const o = CookieReplyOffset;
  return {
    receiver: readU32(buf, o.receiver),
    nonce: buf.subarray(o.nonce, o.cookie),
    cookie: buf.subarray(o.cookie, COOKIE_REPLY_SIZE),
  };
}

/** Parses a transport message header, or returns the drop reason. */
export function parseTransport(buf: Uint8Array): Transport | DropReason {
  const kind = classifyMessage(buf);
  if (kind !== MessageType.transport) return typeof kind === 'string' ? kind : 'unknown-type';
  return {
    receiver: readU32(buf, TransportOffset.receiver),
    counter: readCounter(buf, TransportOffset.counter),
    content: buf.subarray(TransportOffset.content),
  };
}

function expectField(name: string, value: Uint8Array, length: number): void {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    const got = value instanceof Uint8Array ? `${value.length} bytes` : typeof value;
    throw new RangeError(`expected ${name} of ${length} bytes, got ${got}`);
  }
}

function expectIndex(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new RangeError(`expected ${name} to be an unsigned 32-bit integer, got ${value}`);
  }
}

function header(buf: Uint8Array, type: MessageType): void {
  buf[0] = type;
  buf[1] = 0;
  buf[2] = 0;
  buf[3] = 0;
}

/** Serializes an initiation into a new 148-byte array. Throws RangeError on wrong field sizes. */
export function serializeInitiation(m: Initiation): Uint8Array {
  expectIndex('sender', m.sender);
  expectField('ephemeral', m.ephemeral, 32);
  expectField('static', m.static, 32 + TAG_SIZE);
  expectField('timestamp', m.timestamp, TIMESTAMP_SIZE + TAG_SIZE);
  expectField('mac1', m.mac1, MAC_SIZE);
  expectField('mac2', m.mac2, MAC_SIZE);
  const buf = new Uint8Array(INITIATION_SIZE);
  const o = InitiationOffset;
  header(buf, MessageType.initiation);
  writeU32(buf, o.sender, m.sender);
  buf.set(m.ephemeral, o.ephemeral);
  buf.set(m.static, o.static);
  buf.set(m.timestamp, o.timestamp);
  buf.set(m.mac1, o.mac1);
  buf.set(m.mac2, o.mac2);
  return buf;
}

/** Serializes a response into a new 92-byte array. Throws RangeError on wrong field sizes. */
export function serializeResponse(m: Response): Uint8Array {
  expectIndex('sender', m.sender);
  expectIndex('receiver', m.receiver);
  expectField('ephemeral', m.ephemeral, 32);
  expectField('empty', m.empty, TAG_SIZE);
  expectField('mac1', m.mac1, MAC_SIZE);
  expectField('mac2', m.mac2, MAC_SIZE);
  const buf = new Uint8Array(RESPONSE_SIZE);
  const o = ResponseOffset;
  header(buf, MessageType.response);
  writeU32(buf, o.sender, m.sender);
  writeU32(buf, o.receiver, m.receiver);
  buf.set(m.ephemeral, o.ephemeral);
  buf.set(m.empty, o.empty);
  buf.set(m.mac1, o.mac1);
  buf.set(m.mac2, o.mac2);
  return buf;
}

/** Serializes a cookie reply into a new 64-byte array. Throws RangeError on wrong field sizes. */
export function serializeCookieReply(m: CookieReply): Uint8Array {
  expectIndex('receiver', m.receiver);
  expectField('nonce', m.nonce, 24);
  expectField('cookie', m.cookie, MAC_SIZE + TAG_SIZE);
  const buf = new Uint8Array(COOKIE_REPLY_SIZE);
  const o = CookieReplyOffset;
  header(buf, MessageType.cookieReply);
  writeU32(buf, o.receiver, m.receiver);
  buf.set(m.nonce, o.nonce);
  buf.set(m.cookie, o.cookie);
  return buf;
}

/**
 * Writes a transport header (type 4, receiver, counter) into buf[0..16). `counter` must be an
 * integer in [0, 2^53); the hot path calls this, so only the caller's invariants protect it.
 */
export function writeTransportHeader(buf: Uint8Array, receiver: number, counter: number): void {
  header(buf, MessageType.transport);
  writeU32(buf, TransportOffset.receiver, receiver);
  writeCounter(buf, TransportOffset.counter, counter);
}

/** Serializes a transport message from a header and already-sealed content (ciphertext || tag). */
export function serializeTransport(m: Transport): Uint8Array {
  expectIndex('receiver', m.receiver);
  if (!Number.isSafeInteger(m.counter) || m.counter < 0) {
    throw new RangeError(`expected counter to be an integer in [0, 2^53), got ${m.counter}`);
  }
  if (!(m.content instanceof Uint8Array) || m.content.length < TAG_SIZE) {
    throw new RangeError(`expected content of at least ${TAG_SIZE} bytes, got ${m.content?.length}`);
  }
  const buf = new Uint8Array(TRANSPORT_HEADER_SIZE + m.content.length);
  writeTransportHeader(buf, m.receiver, m.counter);
  buf.set(m.content, TRANSPORT_HEADER_SIZE);
  return buf;
}
