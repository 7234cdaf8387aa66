// Lenient field readers for plexd API v1 JSON bodies (plexd-api.md: ignore unknown fields,
// tolerate missing optional ones). Each reader records a FieldError naming the field instead of
// throwing, so one pass reports every problem of a hostile or broken body.

import { parseIp } from '../core/ip.js';
import { parseEndpoint as parseStrictEndpoint, type Endpoint, type ParsedEndpoint } from '../core/endpoint.js';

/** One problem with one field of a body; `field` is a dotted path such as `policy.rules[2].action`. */
export interface FieldError {
  readonly field: string;
  readonly message: string;
}

/** Outcome of parsing a body: the typed value, or every field problem found. */
export type ParseResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly errors: readonly FieldError[] };

/** Longest string any field may carry unless a reader says otherwise (bytes of UTF-16 units). */
export const MAX_FIELD_LENGTH = 4096;

/** Most array elements any list field may carry (peers, rules, sessions, executions). */
export const MAX_LIST_LENGTH = 100_000;

/** A plain JSON object (not an array, not null). */
export type JsonObject = Record<string, unknown>;

/** True for a plain JSON object. */
export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Collects field errors while a parser walks a body. */
export class FieldReader {
  readonly errors: FieldError[] = [];
  readonly obj: JsonObject;
  readonly path: string;

  /** Reads `value` at `path` (empty for the body root); a non-object records one error. */
  constructor(value: unknown, path = '', errors?: FieldError[]) {
    if (errors !== undefined) this.errors = errors;
    this.path = path;
    if (isObject(value)) {
      this.obj = value;
    } else {
      this.obj = {};
      this.fail('', `expected a JSON object, got ${describe(value)}`);
    }
  }

  /** The dotted path of `key` below this reader. */
  at(key: string): string {
    if (key === '') return this.path === '' ? '(body)' : this.path;
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  /** Records a problem with field `key`. */
  fail(key: string, message: string): void {
    this.errors.push({ field: this.at(key), message });
  }

  /** The raw value of `key`, undefined when absent (own properties only). */
  raw(key: string): unknown {
    return Object.hasOwn(this.obj, key) ? this.obj[key] : undefined;
  }

  /** A required string of 1..max characters; null and absent are both "missing". */
  string(key: string, max = MAX_FIELD_LENGTH): string {
    const v = this.raw(key);
    if (v === undefined || v === null) {
      this.fail(key, 'is required');
      return '';
    }
    return this.checkString(key, v, max) ?? '';
  }

  /** An optional string (absent or null -> undefined). */
  optString(key: string, max = MAX_FIELD_LENGTH): string | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) return undefined;
    return this.checkString(key, v, max);
  }

  private checkString(key: string, v: unknown, max: number): string | undefined {
    if (typeof v !== 'string') {
      this.fail(key, `expected a string, got ${describe(v)}`);
      return undefined;
    }
    if (v.length === 0) {
      this.fail(key, 'must not be empty');
      return undefined;
    }
    if (v.length > max) {
      this.fail(key, `longer than ${max} characters`);
      return undefined;
    }
    return v;
  }

  /** A required boolean; absent -> `fallback` when given, else an error. */
  bool(key: string, fallback?: boolean): boolean {
    const v = this.raw(key);
    if (typeof v === 'boolean') return v;
    if ((v === undefined || v === null) && fallback !== undefined) return fallback;
    this.fail(key, v === undefined ? 'is required' : `expected a boolean, got ${describe(v)}`);
    return false;
  }

  /** An integer in [min, max]; absent -> `fallback` when given, else an error. */
  int(key: string, min: number, max: number, fallback?: number): number {
    const v = this.raw(key);
    if ((v === undefined || v === null) && fallback !== undefined) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(key, v === undefined ? 'is required' : `expected an integer in [${min}, ${max}], got ${describe(v)}`);
      return min;
    }
    return v;
  }

  /** A required string from `allowed`. */
  oneOf<T extends string>(key: string, allowed: readonly T[]): T {
    const v = this.string(key, 64);
    if (v !== '' && !(allowed as readonly string[]).includes(v)) {
      this.fail(key, `expected one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
    }
    return v as T;
  }

  /** Like oneOf, but absent/null or an unknown value gives `fallback` (forward compatible). */
  oneOfOr<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
    const v = this.raw(key);
    return typeof v === 'string' && (allowed as readonly string[]).includes(v) ? (v as T) : fallback;
  }

  /** A required RFC 3339 timestamp; returns the text (check with `parseRfc3339`). */
  timestamp(key: string): string {
    const v = this.string(key, 64);
    if (v !== '' && parseRfc3339(v) === undefined) this.fail(key, `expected an RFC 3339 timestamp, got ${JSON.stringify(v)}`);
    return v;
  }

  /** An optional RFC 3339 timestamp. */
  optTimestamp(key: string): string | undefined {
    const v = this.optString(key, 64);
    if (v !== undefined && parseRfc3339(v) === undefined) {
      this.fail(key, `expected an RFC 3339 timestamp, got ${JSON.stringify(v)}`);
      return undefined;
    }
    return v;
  }

  /** A required base64 string decoding to exactly `bytes` bytes (standard alphabet, padded or not). */
  base64Key(key: string, bytes: number): string {
    const v = this.string(key, 2 * bytes + 8);
    if (v !== '' && decodeBase64(v, bytes) === undefined) this.fail(key, `expected base64 of ${bytes} bytes`);
    return v;
  }

  /** An optional base64 key of `bytes` bytes. */
  optBase64Key(key: string, bytes: number): string | undefined {
    const v = this.optString(key, 2 * bytes + 8);
    if (v !== undefined && decodeBase64(v, bytes) === undefined) {
      this.fail(key, `expected base64 of ${bytes} bytes`);
      return undefined;
    }
    return v;
  }

  /** A required "ip:port" or "[ipv6]:port" endpoint. */
  endpoint(key: string): string {
    const v = this.string(key, 64);
    if (v !== '' && parseEndpoint(v) === undefined) this.fail(key, `expected "ip:port", got ${JSON.stringify(v)}`);
    return v;
  }

  /** An optional endpoint; absent, null or "" -> undefined. */
  optEndpoint(key: string): string | undefined {
    if (this.raw(key) === '') return undefined;
    const v = this.optString(key, 64);
    if (v !== undefined && parseEndpoint(v) === undefined) {
      this.fail(key, `expected "ip:port", got ${JSON.stringify(v)}`);
      return undefined;
    }
    return v;
  }

  /** A required IP address (no prefix). */
  ip(key: string): string {
    const v = this.string(key, 64);
    if (v !== '' && parseIp(v) === undefined) this.fail(key, `expected an IP address, got ${JSON.stringify(v)}`);
    return v;
  }

  /** A required array, each element parsed by `each` with its own indexed path; null/absent -> []
   *  when `optional`. */
  list<T>(key: string, each: (r: FieldReader) => T, optional = false): T[] {
    const v = this.raw(key);
    if ((v === undefined || v === null) && optional) return [];
    if (!Array.isArray(v)) {
      this.fail(key, v === undefined ? 'is required' : `expected an array, got ${describe(v)}`);
      return [];
    }
    if (v.length > MAX_LIST_LENGTH) {
      this.fail(key, `more than ${MAX_LIST_LENGTH} elements`);
      return [];
    }
    return v.map((el, i) => each(new FieldReader(el, `${this.at(key)}[${i}]`, this.errors)));
  }

  /** An optional list of strings of 1..maxLength characters, at most maxItems; absent/null -> []. */
  stringList(key: string, maxItems: number, maxLength: number): string[] {
    const v = this.raw(key);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.fail(key, `expected an array, got ${describe(v)}`);
      return [];
    }
    if (v.length > maxItems) {
      this.fail(key, `more than ${maxItems} elements`);
      return [];
    }
    const out: string[] = [];
    v.forEach((el, i) => {
      if (typeof el === 'string' && el.length > 0 && el.length <= maxLength) out.push(el);
      else this.fail(`${key}[${i}]`, `expected a string of 1..${maxLength} characters`);
    });
    return out;
  }

  /** An optional list of "ip:port" endpoints (at most `maxItems`), duplicates dropped (the first
   *  stays); absent/null -> undefined, a malformed element is an error naming its index. */
  optEndpointList(key: string, maxItems: number): string[] | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) return undefined;
    const out: string[] = [];
    this.stringList(key, maxItems, 64).forEach((el, i) => {
      if (parseEndpoint(el) === undefined) this.fail(`${key}[${i}]`, `expected "ip:port", got ${JSON.stringify(el)}`);
      else if (!out.includes(el)) out.push(el);
    });
    return out;
  }

  /** A nested object read by `read`; null/absent -> null when `nullable`, else an error. */
  object<T>(key: string, read: (r: FieldReader) => T, nullable: true): T | null;
  object<T>(key: string, read: (r: FieldReader) => T, nullable?: false): T;
  object<T>(key: string, read: (r: FieldReader) => T, nullable = false): T | null {
    const v = this.raw(key);
    if ((v === undefined || v === null) && nullable) return null;
    return read(new FieldReader(v, this.at(key), this.errors));
  }

  /** The parse result: `value` when no error was recorded. */
  result<T>(value: T): ParseResult<T> {
    return this.errors.length === 0 ? { ok: true, value } : { ok: false, errors: this.errors };
  }
}

/** A short description of a JSON value's type for error messages (never echoes big values). */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 32 ? 'a long string' : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v === 'object' ? 'an object' : typeof v;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** Milliseconds since the epoch of an RFC 3339 timestamp, or undefined when malformed. */
export function parseRfc3339(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (m === null) return undefined;
  const [, , mo, d, h, mi, s] = m.map(Number) as number[];
  if (mo! < 1 || mo! > 12 || d! < 1 || d! > 31 || h! > 23 || mi! > 59 || s! > 60) return undefined;
  // Date.parse takes at most millisecond precision; trim nanoseconds first.
  const trimmed = text.replace(/(\.\d{3})\d+/, '$1').replace(' ', 'T');
  const ms = Date.parse(trimmed);
  return Number.isFinite(ms) ? ms : undefined;
}

/** RFC 3339 text (UTC, millisecond precision) of `ms` since the epoch. */
export function formatRfc3339(ms: number): string {
  return new Date(ms).toISOString();
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Decodes standard base64 (padding optional); undefined when malformed or not `bytes` long. The
 * bytes are decoded straight into a fresh array of their own, never through Node's shared Buffer
 * pool, so a secret decoded here leaves no copy behind once the caller wipes the result.
 */
export function decodeBase64(text: string, bytes?: number): Uint8Array | undefined {
  if (!BASE64.test(text) || text.length % 4 === 1) return undefined;
  const length = Buffer.byteLength(text, 'base64');
  if (bytes !== undefined && length !== bytes) return undefined;
  const out = new Uint8Array(length);
  Buffer.from(out.buffer, 0, length).write(text, 'base64');
  // Reject non-canonical encodings (stray low bits) so one key has one spelling.
  if (encodeBase64(out) !== text.padEnd(Math.ceil(text.length / 4) * 4, '=')) {
    out.fill(0);
    return undefined;
  }
  return out;
}

/** Standard padded base64 of `bytes`. */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Unpadded base64url of `bytes` (RFC 4648 section 5). */
export function encodeBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Decodes unpadded base64url; undefined when malformed (padding, foreign characters, stray bits). */
export function decodeBase64Url(text: string): Uint8Array | undefined {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return undefined;
  const out = Uint8Array.from(Buffer.from(text, 'base64url'));
  if (encodeBase64Url(out) !== text) return undefined;
  return out;
}

// wg's strict form (core/endpoint.ts) plus the control plane's rule: no zone, no port 0 (its
// endpoints name a reachable port).
function controlPlaneEndpoint(text: string): ParsedEndpoint | undefined {
  const e = parseStrictEndpoint(text);
  return e === undefined || e.port === 0 || e.zone !== undefined ? undefined : e;
}

/** Splits "ip:port" / "[ipv6]:port" into its parts (host as written); undefined when malformed, with a zone, or port 0. */
export function parseEndpoint(text: string): { host: string; port: number } | undefined {
  const e = controlPlaneEndpoint(text);
  return e === undefined ? undefined : { host: e.host, port: e.port };
}

/** A control-plane "ip:port" as an Endpoint (canonical address); undefined for absent, empty or malformed text (see parseEndpoint). */
export function endpointOf(text: string | undefined): Endpoint | undefined {
  if (typeof text !== 'string' || text === '') return undefined;
  const e = controlPlaneEndpoint(text);
  return e === undefined ? undefined : { address: e.address, port: e.port };
}

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** True for a UUID in 8-4-4-4-12 hex form (any version; case-insensitive). */
export function isUuid(text: string): boolean {
  return UUID.test(text);
}
