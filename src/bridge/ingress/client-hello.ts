// The TLS ClientHello reader of the ingress (RFC 8446 4.1.2, RFC 5246 7.4.1.2): sans-IO, fed the
// bytes a connection sent so far, it answers "need more", the SNI (RFC 6066 3) and ALPN list
// (RFC 7301 3.1), or a refusal from a closed list. Bounded: the ClientHello may span several
// handshake records but at most MAX_CLIENT_HELLO bytes, and the caller stops reading there. It
// never throws on input; the bytes are only read, so a passthrough forwards them untouched.

/** Longest ClientHello handshake message accepted (bytes, header included); real ones are < 2 KiB
 *  (post-quantum key shares push towards 2-3 KiB). */
export const MAX_CLIENT_HELLO = 16 * 1024;
/** Longest TLS plaintext record (RFC 8446 5.1: 2^14). */
export const MAX_RECORD = 16 * 1024;
/** The most bytes a caller ever needs to buffer: the ClientHello plus one record header per record
 *  it can span (1-byte fragments are legal but absurd; we cap the records at 16). */
export const MAX_HELLO_RECORDS = 16;
/** Buffer bound for callers: beyond this the answer is always a refusal. */
export const MAX_HELLO_BUFFER = MAX_CLIENT_HELLO + MAX_HELLO_RECORDS * 5;

/** Why a ClientHello was refused (counted per reason). */
export const HELLO_REFUSALS = ['not_tls', 'not_client_hello', 'oversized', 'malformed', 'no_sni', 'bad_sni'] as const;
/** One of HELLO_REFUSALS. */
export type HelloRefusal = (typeof HELLO_REFUSALS)[number];

/** What the bytes so far say. `sni` is lower-cased, without a trailing dot. */
export type HelloResult =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'refuse'; readonly reason: HelloRefusal }
  | { readonly kind: 'hello'; readonly sni: string; readonly alpn: readonly string[] };

const NEED_MORE: HelloResult = { kind: 'need-more' };
const refuse = (reason: HelloRefusal): HelloResult => ({ kind: 'refuse', reason });

const CONTENT_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
/** RFC 1035 host name after IDNA: letters, digits, hyphens, dots (underscore seen in the wild). */
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/**
 * Reads the ClientHello at the start of `buf` (everything the client sent so far). 'need-more'
 * means read on (the caller refuses once it holds MAX_HELLO_BUFFER bytes or its deadline passes).
 */
export function parseClientHello(buf: Uint8Array): HelloResult {
  // Gather the handshake bytes from consecutive handshake records (RFC 8446 5.1: a handshake
  // message may be fragmented across records; records must not interleave other types).
  const hs: Uint8Array[] = [];
  let have = 0;
  let need = -1; // handshake message length incl. its 4-byte header, once known
  let off = 0;
  for (let records = 0; ; records++) {
    if (need >= 0 && have >= need) break;
    if (records === MAX_HELLO_RECORDS) return refuse('oversized');
    if (buf.length - off < 5) return buf.length === 0 || off > 0 || plausibleStart(buf) ? NEED_MORE : refuse('not_tls');
    if (buf[off] !== CONTENT_HANDSHAKE || buf[off + 1] !== 3) return refuse(off === 0 ? 'not_tls' : 'malformed');
    const len = (buf[off + 3]! << 8) | buf[off + 4]!;
    if (len === 0) return refuse('malformed');
    if (len > MAX_RECORD) return refuse('oversized');
    if (buf.length - off - 5 < len) {
      // The header says how long the message is even before the record is complete.
      if (need < 0 && have === 0 && len >= 4) {
        const n = messageLength(buf.subarray(off + 5));
        if (n !== undefined && n.type !== HANDSHAKE_CLIENT_HELLO) return refuse('not_client_hello');
        if (n !== undefined && n.length > MAX_CLIENT_HELLO) return refuse('oversized');
      }
      return NEED_MORE;
    }
    const frag = buf.subarray(off + 5, off + 5 + len);
    hs.push(frag);
    have += frag.length;
    off += 5 + len;
    if (need < 0 && have >= 4) {
      const all = concat(hs, have);
      const n = messageLength(all)!;
      if (n.type !== HANDSHAKE_CLIENT_HELLO) return refuse('not_client_hello');
      if (n.length > MAX_CLIENT_HELLO) return refuse('oversized');
      need = n.length;
    }
  }
  const msg = concat(hs, have).subarray(0, need);
  return readHello(msg.subarray(4));
}

/** True when the first bytes could still start a TLS handshake record. */
function plausibleStart(buf: Uint8Array): boolean {
  return buf[0] === CONTENT_HANDSHAKE && (buf.length < 2 || buf[1] === 3);
}

function messageLength(b: Uint8Array): { type: number; length: number } | undefined {
  if (b.length < 4) return undefined;
  return { type: b[0]!, length: 4 + ((b[1]! << 16) | (b[2]! << 8) | b[3]!) };
}

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A bounds-checked cursor; `ok` turns false on the first read past the end. */
class Cursor {
  ok = true;
  readonly b: Uint8Array;
  off: number;
  readonly end: number;
  constructor(b: Uint8Array, off = 0, end = b.length) {
    this.b = b;
    this.off = off;
    this.end = end;
  }
  u8(): number {
    if (this.off + 1 > this.end) return this.fail();
    return this.b[this.off++]!;
  }
  u16(): number {
    if (this.off + 2 > this.end) return this.fail();
    const v = (this.b[this.off]! << 8) | this.b[this.off + 1]!;
    this.off += 2;
    return v;
  }
  skip(n: number): void {
    if (this.off + n > this.end) this.fail();
    else this.off += n;
  }
  /** A sub-cursor over the next `n` bytes (advances past them). */
  take(n: number): Cursor {
    if (this.off + n > this.end) {
      this.fail();
      return new Cursor(this.b, this.end, this.end);
    }
    const c = new Cursor(this.b, this.off, this.off + n);
    this.off += n;
    return c;
  }
  get left(): number {
    return this.end - this.off;
  }
  fail(): number {
    this.ok = false;
    this.off = this.end;
    return 0;
  }
}

// RFC 8446 4.1.2: legacy_version, random, legacy_session_id<0..32>, cipher_suites<2..2^16-2>,
// legacy_compression_methods<1..2^8-1>, extensions<8..2^16-1>.
function readHello(body: Uint8Array): HelloResult {
  const c = new Cursor(body);
  if (c.u8() !== 3) return refuse('malformed');
  c.u8();
  c.skip(32);
  const sid = c.u8();
  if (sid > 32) return refuse('malformed');
  c.skip(sid);
  const suites = c.u16();
  if (suites < 2 || suites % 2 !== 0) return refuse('malformed');
  c.skip(suites);
  const comp = c.u8();
  if (comp < 1) return refuse('malformed');
  c.skip(comp);
  if (!c.ok) return refuse('malformed');
  if (c.left === 0) return refuse('no_sni'); // no extensions at all (TLS 1.0-style hello)
  const exts = c.take(c.u16());
  if (!c.ok || c.left !== 0) return refuse('malformed');
  let sni: string | undefined;
  let alpn: string[] = [];
  const seen = new Set<number>();
  while (exts.left > 0) {
    const type = exts.u16();
    const data = exts.take(exts.u16());
    if (!exts.ok) return refuse('malformed');
    // RFC 8446 4.2: no extension type twice.
    if (seen.has(type)) return refuse('malformed');
    seen.add(type);
    if (type === EXT_SERVER_NAME) {
      const r = readServerName(data);
      if (typeof r !== 'string') return r;
      sni = r;
    } else if (type === EXT_ALPN) {
      const r = readAlpn(data);
      if (r === undefined) return refuse('malformed');
      alpn = r;
    }
  }
  if (sni === undefined) return refuse('no_sni');
  return { kind: 'hello', sni, alpn };
}

// RFC 6066 3: ServerNameList<1..2^16-1> of {NameType name_type; opaque HostName<1..2^16-1>}.
function readServerName(data: Cursor): string | HelloResult {
  const list = data.take(data.u16());
  if (!data.ok || data.left !== 0 || list.left === 0) return refuse('malformed');
  let host: string | undefined;
  while (list.left > 0) {
    const type = list.u8();
    const name = list.take(list.u16());
    if (!list.ok) return refuse('malformed');
    // "MUST NOT contain more than one name of the same name_type"; only host_name (0) exists.
    if (type !== 0 || host !== undefined) return refuse('malformed');
    let s = '';
    for (let i = name.off; i < name.end; i++) {
      const ch = name.b[i]!;
      if (ch < 0x21 || ch > 0x7e) return refuse('bad_sni');
      s += String.fromCharCode(ch);
    }
    s = s.toLowerCase();
    if (s.endsWith('.')) s = s.slice(0, -1);
    if (!HOSTNAME.test(s)) return refuse('bad_sni');
    host = s;
  }
  return host ?? refuse('malformed');
}

// RFC 7301 3.1: ProtocolNameList<2..2^16-1> of ProtocolName<1..2^8-1>.
function readAlpn(data: Cursor): string[] | undefined {
  const list = data.take(data.u16());
  if (!data.ok || data.left !== 0 || list.left === 0) return undefined;
  const out: string[] = [];
  while (list.left > 0) {
    const n = list.u8();
    const p = list.take(n);
    if (!list.ok || n === 0) return undefined;
    if (out.length < 16) out.push(Buffer.from(p.b.subarray(p.off, p.end)).toString('latin1'));
  }
  return out;
}

/** True for a host name the ingress can route (the SNI rules above; used for rule hostnames). */
export function isRoutableHostname(name: string): boolean {
  return HOSTNAME.test(name) && !/^[0-9.]+$/.test(name);
}
