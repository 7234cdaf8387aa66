// A minimal DER (X.690) encoder: just the types an X.509 v3 certificate needs. Values are built
// bottom-up as byte arrays; lengths use the definite short/long forms.

/** Tag-length-value with `tag` (one byte) around `content`. */
export function tlv(tag: number, content: Uint8Array): Uint8Array {
  const n = content.length;
  let head: number[];
  if (n < 0x80) head = [tag, n];
  else {
    const len: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) len.unshift(v & 0xff);
    head = [tag, 0x80 | len.length, ...len];
  }
  const out = new Uint8Array(head.length + n);
  out.set(head, 0);
  out.set(content, head.length);
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** SEQUENCE of the given encoded elements. */
export const sequence = (...items: Uint8Array[]): Uint8Array => tlv(0x30, concat(items));
/** SET of the given encoded elements (callers pass one element, so no DER sorting is needed). */
export const set = (...items: Uint8Array[]): Uint8Array => tlv(0x31, concat(items));
/** Context-specific constructed [n] EXPLICIT wrapper. */
export const explicit = (n: number, inner: Uint8Array): Uint8Array => tlv(0xa0 | n, inner);
/** Context-specific primitive [n] IMPLICIT with raw content. */
export const implicit = (n: number, content: Uint8Array): Uint8Array => tlv(0x80 | n, content);
/** BOOLEAN. */
export const boolean = (v: boolean): Uint8Array => tlv(0x01, Uint8Array.of(v ? 0xff : 0));
/** OCTET STRING. */
export const octetString = (v: Uint8Array): Uint8Array => tlv(0x04, v);
/** BIT STRING with no unused bits. */
export const bitString = (v: Uint8Array): Uint8Array => tlv(0x03, concat([Uint8Array.of(0), v]));
/** UTF8String. */
export const utf8String = (s: string): Uint8Array => tlv(0x0c, new TextEncoder().encode(s));

/** INTEGER from unsigned big-endian bytes (minimal, with a 0x00 pad when the top bit is set). */
export function integer(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const v = bytes.subarray(i);
  return tlv(0x02, v[0]! & 0x80 ? concat([Uint8Array.of(0), v]) : v);
}

/** OBJECT IDENTIFIER from dotted text. Throws RangeError on a malformed OID. */
export function oid(text: string): Uint8Array {
  const arcs = text.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) throw new RangeError(`bad OID ${text}`);
  const out: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const groups: number[] = [];
    for (let v = arc; ; v = Math.floor(v / 128)) {
      groups.unshift(v % 128);
      if (v < 128) break;
    }
    groups.forEach((g, k) => out.push(k < groups.length - 1 ? g | 0x80 : g));
  }
  return tlv(0x06, Uint8Array.from(out));
}

/** UTCTime (years 1950..2049) or GeneralizedTime (otherwise), per RFC 5280 4.1.2.5. */
export function time(ms: number): Uint8Array {
  const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const year = Number(iso.slice(0, 4));
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  return year >= 1950 && year < 2050
    ? tlv(0x17, new TextEncoder().encode(`${digits.slice(2)}Z`))
    : tlv(0x18, new TextEncoder().encode(`${digits}Z`));
}
