// The node bearer credential (plexd-api.md): `nsk_<env>_<base64url-unpadded(node_uuid 16 bytes ||
// nsk 32 bytes)>`, sent as `Authorization: Bearer ...` on every call after registration.

import { decodeBase64Url, encodeBase64Url, isUuid } from './fields.js';

/** Byte length of a node secret key. */
export const NSK_BYTES = 32;

/** Environment label in the credential: lowercase letters and digits, 1..16 characters. */
const ENV = /^[a-z0-9]{1,16}$/;

/** Length of the base64url part: 48 bytes -> 64 characters, no padding. */
const BODY_LENGTH = 64;

/** Default environment label of our control plane's credentials. */
export const DEFAULT_CREDENTIAL_ENV = 'live';

/** A parsed credential. */
export interface NodeCredential {
  readonly env: string;
  /** Lowercase 8-4-4-4-12 UUID. */
  readonly nodeId: string;
  /** The 32-byte node secret key. */
  readonly nsk: Uint8Array;
}

/** The 16 bytes of a UUID text; throws TypeError when `id` is not a UUID. */
export function uuidToBytes(id: string): Uint8Array {
  if (!isUuid(id)) throw new TypeError(`expected a UUID, got ${JSON.stringify(id)}`);
  const hex = id.replaceAll('-', '');
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The lowercase 8-4-4-4-12 text of 16 UUID bytes. */
export function uuidFromBytes(b: Uint8Array): string {
  if (b.length !== 16) throw new RangeError(`expected 16 bytes, got ${b.length}`);
  let hex = '';
  for (const x of b) hex += x.toString(16).padStart(2, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Builds the credential text. Throws TypeError/RangeError on a bad env, node id or nsk length. */
export function encodeNodeCredential(nodeId: string, nsk: Uint8Array, env = DEFAULT_CREDENTIAL_ENV): string {
  if (!ENV.test(env)) throw new TypeError(`expected env of 1..16 [a-z0-9], got ${JSON.stringify(env)}`);
  if (nsk.length !== NSK_BYTES) throw new RangeError(`expected a ${NSK_BYTES}-byte nsk, got ${nsk.length} bytes`);
  const raw = new Uint8Array(16 + NSK_BYTES);
  raw.set(uuidToBytes(nodeId), 0);
  raw.set(nsk, 16);
  return `nsk_${env}_${encodeBase64Url(raw)}`;
}

/** Parses credential text (not the "Bearer " prefix); undefined when malformed in any way. */
export function parseNodeCredential(text: string): NodeCredential | undefined {
  if (typeof text !== 'string' || text.length > 128 || !text.startsWith('nsk_')) return undefined;
  // env has no '_', base64url may: split at the first '_' after the prefix.
  const sep = text.indexOf('_', 4);
  if (sep < 0) return undefined;
  const env = text.slice(4, sep);
  const body = text.slice(sep + 1);
  if (!ENV.test(env) || body.length !== BODY_LENGTH) return undefined;
  const raw = decodeBase64Url(body);
  if (raw === undefined || raw.length !== 16 + NSK_BYTES) return undefined;
  return { env, nodeId: uuidFromBytes(raw.subarray(0, 16)), nsk: raw.slice(16) };
}

/** Extracts and parses the credential of an `Authorization` header value ("Bearer <cred>",
 *  scheme case-insensitive); undefined when absent or malformed. */
export function parseBearer(header: string | undefined): NodeCredential | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer +(\S+) *$/i.exec(header);
  return m === null ? undefined : parseNodeCredential(m[1]!);
}
