// STUN message codec (RFC 8489, compatible with RFC 5389): the 20-byte header, attribute TLVs with
// 32-bit padding, (XOR-)MAPPED-ADDRESS, ERROR-CODE, SOFTWARE, FINGERPRINT and an optional
// MESSAGE-INTEGRITY check. Decoding is bounded and never throws: hostile input gets a drop reason
// from STUN_DROP_REASONS (docs/STYLE.md 4). Only what Binding needs is encoded.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { copyBytes } from '../core/bytes.js';
import { formatIp, parseIp } from '../core/ip.js';
import type { Endpoint } from '../io/bind.js';

/** RFC 8489 section 5: fixed value at bytes 4..8 of every message. */
export const STUN_MAGIC_COOKIE = 0x2112a442;
/** Header size: type, length, cookie, 96-bit transaction ID. */
export const STUN_HEADER_LENGTH = 20;
/** Transaction ID size in bytes. */
export const STUN_TRANSACTION_ID_LENGTH = 12;
/** Largest message we decode or build: one unfragmented datagram (RFC 8489 section 6.1: 576+ paths; 1500 MTU). */
export const STUN_MAX_MESSAGE = 1500;
/** Attribute limit per message so a hostile one cannot make us walk hundreds of tiny TLVs. */
export const STUN_MAX_ATTRIBUTES = 32;

/** Method numbers (RFC 8489 section 18.2). Only Binding is used. */
export const STUN_METHOD = { binding: 0x001 } as const;

/** Message classes (RFC 8489 section 5). */
export type StunClass = 'request' | 'indication' | 'success' | 'error';

/** Attribute types (RFC 8489 section 18.3; 0x8000+ are comprehension-optional). */
export const STUN_ATTR = {
  MAPPED_ADDRESS: 0x0001,
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  UNKNOWN_ATTRIBUTES: 0x000a,
  REALM: 0x0014,
  NONCE: 0x0015,
  MESSAGE_INTEGRITY_SHA256: 0x001c,
  XOR_MAPPED_ADDRESS: 0x0020,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
} as const;

/** RFC 8489 section 14.7: the FINGERPRINT value is CRC-32 of the message xor this. */
const FINGERPRINT_XOR = 0x5354554e;
const MAX_SOFTWARE_BYTES = 763; // RFC 8489 section 14.14: < 128 characters, <= 763 bytes

/** Why a datagram is not an acceptable STUN message. */
export const STUN_DROP_REASONS = [
  'too-short',
  'too-long',
  'not-stun', // top two bits of the type set: some other protocol
  'bad-cookie',
  'length-mismatch', // header length + 20 != datagram length
  'length-unaligned', // header length not a multiple of 4
  'attribute-truncated',
  'too-many-attributes',
  'fingerprint-mismatch',
  'fingerprint-not-last',
] as const;
/** One of STUN_DROP_REASONS. */
export type StunDropReason = (typeof STUN_DROP_REASONS)[number];

/** One attribute: `value` is a view into the decoded datagram (copy to keep it past the datagram). */
export interface StunAttribute {
  readonly type: number;
  readonly value: Uint8Array;
}

/** A decoded STUN message. Views into the input; `raw` is the whole datagram. */
export interface StunMessage {
  readonly method: number;
  readonly cls: StunClass;
  readonly transactionId: Uint8Array;
  /** In wire order, up to and excluding anything after MESSAGE-INTEGRITY other than FINGERPRINT. */
  readonly attributes: readonly StunAttribute[];
  /** True when a FINGERPRINT was present (and matched: a bad one is a drop). */
  readonly hasFingerprint: boolean;
  /** Offset of the MESSAGE-INTEGRITY attribute header, or -1. For checkIntegrity. */
  readonly integrityOffset: number;
  readonly raw: Uint8Array;
}

/** Result of decodeStun: a message or the reason it was dropped. */
export type StunDecodeResult = { readonly ok: true; readonly message: StunMessage } | { readonly ok: false; readonly reason: StunDropReason };

const CLASSES: readonly StunClass[] = ['request', 'indication', 'success', 'error'];

function u16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}
function u32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}
function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 8;
  b[at + 1] = v & 0xff;
}
function put32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

/** RFC 8489 section 5: method bits M0-M11 interleaved with class bits C0 (bit 4) and C1 (bit 8). */
export function stunMessageType(method: number, cls: StunClass): number {
  const c = CLASSES.indexOf(cls);
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((c & 1) << 4) | ((c & 2) << 7);
}

/** The demultiplexing test for a shared socket; one copy, below the device (io/datagram-kinds.ts). */
export { looksLikeStun } from '../io/datagram-kinds.js';

// CRC-32 of the message before the FINGERPRINT attribute at `end`, the header's length field
// counting up to and including FINGERPRINT (RFC 8489 section 14.7), whatever follows.
function fingerprintOf(data: Uint8Array, end: number): number {
  const header = copyBytes(data.subarray(0, STUN_HEADER_LENGTH));
  put16(header, 2, end + 8 - STUN_HEADER_LENGTH);
  return (crc32(data.subarray(STUN_HEADER_LENGTH, end), crc32(header)) ^ FINGERPRINT_XOR) >>> 0;
}

/** Decodes one datagram. Never throws; the result says why when it is not a usable message. */
export function decodeStun(data: Uint8Array): StunDecodeResult {
  if (data.length < STUN_HEADER_LENGTH) return { ok: false, reason: 'too-short' };
  if (data.length > STUN_MAX_MESSAGE) return { ok: false, reason: 'too-long' };
  const type = u16(data, 0);
  if ((type & 0xc000) !== 0) return { ok: false, reason: 'not-stun' };
  if (u32(data, 4) !== STUN_MAGIC_COOKIE) return { ok: false, reason: 'bad-cookie' };
  const length = u16(data, 2);
  if (length + STUN_HEADER_LENGTH !== data.length) return { ok: false, reason: 'length-mismatch' };
  if ((length & 3) !== 0) return { ok: false, reason: 'length-unaligned' };
  const attributes: StunAttribute[] = [];
  let integrityOffset = -1;
  let hasFingerprint = false;
  let at = STUN_HEADER_LENGTH;
  let count = 0;
  while (at < data.length) {
    if (hasFingerprint) return { ok: false, reason: 'fingerprint-not-last' };
    if (data.length - at < 4) return { ok: false, reason: 'attribute-truncated' };
    if (++count > STUN_MAX_ATTRIBUTES) return { ok: false, reason: 'too-many-attributes' };
    const attrType = u16(data, at);
    const attrLength = u16(data, at + 2);
    const padded = (attrLength + 3) & ~3;
    if (at + 4 + padded > data.length) return { ok: false, reason: 'attribute-truncated' };
    const value = data.subarray(at + 4, at + 4 + attrLength);
    if (attrType === STUN_ATTR.FINGERPRINT) {
      if (attrLength !== 4 || u32(value, 0) !== fingerprintOf(data, at)) return { ok: false, reason: 'fingerprint-mismatch' };
      hasFingerprint = true;
    } else if (integrityOffset < 0 || attrType === STUN_ATTR.MESSAGE_INTEGRITY_SHA256) {
      // RFC 8489 section 14.5: after MESSAGE-INTEGRITY only MESSAGE-INTEGRITY-SHA256 and
      // FINGERPRINT count; anything else there is ignored.
      if (attrType === STUN_ATTR.MESSAGE_INTEGRITY && integrityOffset < 0) integrityOffset = at;
      attributes.push({ type: attrType, value });
    }
    at += 4 + padded;
  }
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
  const cls = CLASSES[((type >> 4) & 1) | ((type >> 7) & 2)]!;
  return {
    ok: true,
    message: { method, cls, transactionId: data.subarray(8, 20), attributes, hasFingerprint, integrityOffset, raw: data },
  };
}

/** The first attribute of `type`, or undefined. */
export function getAttribute(message: StunMessage, type: number): Uint8Array | undefined {
  for (const a of message.attributes) if (a.type === type) return a.value;
  return undefined;
}

/** Why an address attribute could not be read. */
export type StunAddressError = 'no-address' | 'bad-address';

/**
 * Decodes a MAPPED-ADDRESS / XOR-MAPPED-ADDRESS value (RFC 8489 sections 14.1, 14.2). `xor` with
 * the message's transaction ID undoes the XOR encoding. Undefined when malformed.
 */
export function decodeAddress(value: Uint8Array, xorTransactionId?: Uint8Array): Endpoint | undefined {
  if (value.length < 4 || value[0] !== 0) return undefined;
  const family = value[1];
  const size = family === 0x01 ? 4 : family === 0x02 ? 16 : 0;
  if (size === 0 || value.length !== 4 + size) return undefined;
  let port = u16(value, 2);
  const ip = copyBytes(value.subarray(4, 4 + size));
  if (xorTransactionId !== undefined) {
    port ^= STUN_MAGIC_COOKIE >>> 16;
    const mask = new Uint8Array(16);
    put32(mask, 0, STUN_MAGIC_COOKIE);
    mask.set(xorTransactionId.subarray(0, 12), 4);
    for (let i = 0; i < size; i++) ip[i]! ^= mask[i]!;
  }
  return { address: formatIp(ip), port };
}

/**
 * The mapped address of a Binding success response: XOR-MAPPED-ADDRESS, else the RFC 3489-era
 * MAPPED-ADDRESS. Returns an error name when neither is present or well-formed.
 */
export function readMappedAddress(message: StunMessage): Endpoint | StunAddressError {
  const xor = getAttribute(message, STUN_ATTR.XOR_MAPPED_ADDRESS);
  if (xor !== undefined) return decodeAddress(xor, message.transactionId) ?? 'bad-address';
  const plain = getAttribute(message, STUN_ATTR.MAPPED_ADDRESS);
  if (plain !== undefined) return decodeAddress(plain) ?? 'bad-address';
  return 'no-address';
}

/** ERROR-CODE (RFC 8489 section 14.8): code 300..699 and the reason phrase, or undefined. */
export function readErrorCode(message: StunMessage): { code: number; reason: string } | undefined {
  const v = getAttribute(message, STUN_ATTR.ERROR_CODE);
  if (v === undefined || v.length < 4) return undefined;
  const code = (v[2]! & 0x07) * 100 + v[3]!;
  if (code < 300 || code > 699) return undefined;
  return { code, reason: Buffer.from(v.subarray(4)).toString('utf8') };
}

/** SOFTWARE as text, or undefined. */
export function readSoftware(message: StunMessage): string | undefined {
  const v = getAttribute(message, STUN_ATTR.SOFTWARE);
  return v === undefined ? undefined : Buffer.from(v).toString('utf8');
}

/**
 * Checks MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 section 14.5) with `key` (short-term: the
 * password bytes; long-term: see longTermKey). False when absent or wrong.
 */
export function checkIntegrity(message: StunMessage, key: Uint8Array): boolean {
  const at = message.integrityOffset;
  if (at < 0) return false;
  const raw = message.raw;
  if (u16(raw, at + 2) !== 20) return false;
  // The length field covers the message up to and including MESSAGE-INTEGRITY.
  const header = copyBytes(raw.subarray(0, STUN_HEADER_LENGTH));
  put16(header, 2, at + 24 - STUN_HEADER_LENGTH);
  const mac = createHmac('sha1', key).update(header).update(raw.subarray(STUN_HEADER_LENGTH, at)).digest();
  return timingSafeEqual(mac, raw.subarray(at + 4, at + 24));
}

/** The long-term credential key, MD5(username ":" realm ":" password) (RFC 8489 section 9.2.2, no SASLprep). */
export function longTermKey(username: string, realm: string, password: string): Uint8Array {
  return createHash('md5').update(`${username}:${realm}:${password}`, 'utf8').digest();
}

/** Options of encodeStun. */
export interface StunEncodeOptions {
  /** Append FINGERPRINT (default false). */
  readonly fingerprint?: boolean;
}

/**
 * Builds a message. Attributes are written in order with zero padding. Throws RangeError for a
 * transaction ID that is not 12 bytes or a message over STUN_MAX_MESSAGE.
 */
export function encodeStun(
  method: number,
  cls: StunClass,
  transactionId: Uint8Array,
  attributes: readonly StunAttribute[],
  options: StunEncodeOptions = {},
): Uint8Array {
  if (transactionId.length !== STUN_TRANSACTION_ID_LENGTH) {
    throw new RangeError(`expected a 12-byte transaction ID, got ${transactionId.length} bytes`);
  }
  let size = STUN_HEADER_LENGTH;
  for (const a of attributes) size += 4 + ((a.value.length + 3) & ~3);
  if (options.fingerprint === true) size += 8;
  if (size > STUN_MAX_MESSAGE) throw new RangeError(`expected a message of at most ${STUN_MAX_MESSAGE} bytes, got ${size}`);
  const out = new Uint8Array(size);
  put16(out, 0, stunMessageType(method, cls));
  put16(out, 2, size - STUN_HEADER_LENGTH);
  put32(out, 4, STUN_MAGIC_COOKIE);
  out.set(transactionId, 8);
  let at = STUN_HEADER_LENGTH;
  for (const a of attributes) {
    put16(out, at, a.type);
    put16(out, at + 2, a.value.length);
    out.set(a.value, at + 4);
    at += 4 + ((a.value.length + 3) & ~3);
  }
  if (options.fingerprint === true) {
    put16(out, at, STUN_ATTR.FINGERPRINT);
    put16(out, at + 2, 4);
    put32(out, at + 4, fingerprintOf(out, at));
  }
  return out;
}

/**
 * An address attribute value (family, port, address), XOR-encoded when `xorTransactionId` is
 * given. Throws TypeError for an address that is not an IP literal.
 */
export function encodeAddress(endpoint: Endpoint, xorTransactionId?: Uint8Array): Uint8Array {
  const ip = parseIp(endpoint.address);
  if (ip === undefined) throw new TypeError(`expected an IP literal, got ${JSON.stringify(endpoint.address)}`);
  const out = new Uint8Array(4 + ip.length);
  out[1] = ip.length === 4 ? 0x01 : 0x02;
  put16(out, 2, endpoint.port);
  out.set(ip, 4);
  if (xorTransactionId !== undefined) {
    out[2]! ^= 0x21;
    out[3]! ^= 0x12;
    const mask = new Uint8Array(16);
    put32(mask, 0, STUN_MAGIC_COOKIE);
    mask.set(xorTransactionId, 4);
    for (let i = 0; i < ip.length; i++) out[4 + i]! ^= mask[i]!;
  }
  return out;
}

/** A SOFTWARE attribute (truncated to the RFC's 763-byte limit). */
export function softwareAttribute(software: string): StunAttribute {
  return { type: STUN_ATTR.SOFTWARE, value: Buffer.from(software, 'utf8').subarray(0, MAX_SOFTWARE_BYTES) };
}

/** A Binding request with optional SOFTWARE and extra attributes. */
export function encodeBindingRequest(
  transactionId: Uint8Array,
  options: StunEncodeOptions & { software?: string; attributes?: readonly StunAttribute[] } = {},
): Uint8Array {
  const attrs = [...(options.software === undefined ? [] : [softwareAttribute(options.software)]), ...(options.attributes ?? [])];
  return encodeStun(STUN_METHOD.binding, 'request', transactionId, attrs, options);
}

/** A Binding success response carrying XOR-MAPPED-ADDRESS of `mapped` (and SOFTWARE if given). */
export function encodeBindingSuccess(
  transactionId: Uint8Array,
  mapped: Endpoint,
  options: StunEncodeOptions & { software?: string } = {},
): Uint8Array {
  const attrs: StunAttribute[] = [{ type: STUN_ATTR.XOR_MAPPED_ADDRESS, value: encodeAddress(mapped, transactionId) }];
  if (options.software !== undefined) attrs.push(softwareAttribute(options.software));
  return encodeStun(STUN_METHOD.binding, 'success', transactionId, attrs, options);
}

/**
 * An error response (RFC 8489 section 14.8) with `code` 300..699, a reason phrase and any extra
 * attributes (e.g. UNKNOWN-ATTRIBUTES). Throws RangeError for another code.
 */
export function encodeErrorResponse(
  method: number,
  transactionId: Uint8Array,
  code: number,
  reason: string,
  options: StunEncodeOptions & { software?: string; attributes?: readonly StunAttribute[] } = {},
): Uint8Array {
  if (!Number.isInteger(code) || code < 300 || code > 699) throw new RangeError(`expected an error code in 300..699, got ${code}`);
  const phrase = Buffer.from(reason, 'utf8').subarray(0, 763);
  const value = new Uint8Array(4 + phrase.length);
  value[2] = Math.floor(code / 100);
  value[3] = code % 100;
  value.set(phrase, 4);
  const attrs: StunAttribute[] = [{ type: STUN_ATTR.ERROR_CODE, value }, ...(options.attributes ?? [])];
  if (options.software !== undefined) attrs.push(softwareAttribute(options.software));
  return encodeStun(method, 'error', transactionId, attrs, options);
}
