// IP address and prefix text codec without node:* (IPv4 dotted quad; IPv6 per RFC 4291 section
// 2.2 for input and RFC 5952 canonical form for output, matching Go's net/netip).

/** Longest valid textual address: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255". */
const MAX_ADDRESS_TEXT = 45;

const CH_0 = 0x30;
const CH_9 = 0x39;
const CH_DOT = 0x2e;
const CH_COLON = 0x3a;

function hexValue(c: number): number {
  if (c >= CH_0 && c <= CH_9) return c - CH_0;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** Parses text[start..end) as a dotted quad into out[at..at+4); leading zeros are refused. */
function parseIPv4Into(text: string, start: number, end: number, out: Uint8Array, at: number): boolean {
  let part = 0;
  let i = start;
  while (part < 4) {
    const digitsStart = i;
    let value = 0;
    while (i < end) {
      const c = text.charCodeAt(i);
      if (c < CH_0 || c > CH_9) break;
      value = value * 10 + (c - CH_0);
      i++;
      if (i - digitsStart > 3) return false;
    }
    const digits = i - digitsStart;
    // "01" could mean octal to inet_aton; refusing it keeps one reading of every address.
    if (digits === 0 || value > 255 || (digits > 1 && text.charCodeAt(digitsStart) === CH_0)) return false;
    out[at + part] = value;
    part++;
    if (part < 4) {
      if (i >= end || text.charCodeAt(i) !== CH_DOT) return false;
      i++;
    }
  }
  return i === end;
}

function parseIPv6(text: string): Uint8Array | undefined {
  const end = text.length;
  const out = new Uint8Array(16);
  const groups = new Uint16Array(8);
  let count = 0;
  let compressAt = -1;
  let i = 0;
  if (text.charCodeAt(0) === CH_COLON) {
    if (text.charCodeAt(1) !== CH_COLON) return undefined;
    compressAt = 0;
    i = 2;
  }
  while (i < end) {
    if (count === 8) return undefined;
    const groupStart = i;
    let value = 0;
    while (i < end) {
      const h = hexValue(text.charCodeAt(i));
      if (h < 0) break;
      value = (value << 4) | h;
      i++;
    }
    const digits = i - groupStart;
    if (i < end && text.charCodeAt(i) === CH_DOT) {
      // An embedded IPv4 address must be the final 32 bits (RFC 4291 section 2.2 form 3).
      if (count > 6 || !parseIPv4Into(text, groupStart, end, out, 12)) return undefined;
      groups[count++] = (out[12]! << 8) | out[13]!;
      groups[count++] = (out[14]! << 8) | out[15]!;
      i = end;
      break;
    }
    if (digits === 0 || digits > 4) return undefined;
    groups[count++] = value;
    if (i === end) break;
    if (text.charCodeAt(i) !== CH_COLON) return undefined;
    i++;
    if (text.charCodeAt(i) === CH_COLON) {
      if (compressAt >= 0) return undefined;
      compressAt = count;
      i++;
    } else if (i === end) {
      return undefined; // trailing single colon
    }
  }
  if (compressAt < 0 ? count !== 8 : count > 7) return undefined;
  const gap = 8 - count;
  for (let g = 0; g < count; g++) {
    const slot = compressAt >= 0 && g >= compressAt ? g + gap : g;
    out[slot * 2] = groups[g]! >> 8;
    out[slot * 2 + 1] = groups[g]! & 0xff;
  }
  if (compressAt >= 0) out.fill(0, compressAt * 2, (compressAt + gap) * 2);
  return out;
}

/**
 * Parses an IPv4 dotted quad (4 bytes) or IPv6 text (16 bytes, "::ffff:1.2.3.4" stays 16).
 * Returns undefined for anything else: junk, zone ids, leading zeros in IPv4 octets.
 * Throws TypeError if `text` is not a string.
 */
export function parseIp(text: string): Uint8Array | undefined {
  if (typeof text !== 'string') throw new TypeError(`expected an address string, got ${typeof text}`);
  if (text.length === 0 || text.length > MAX_ADDRESS_TEXT) return undefined;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) === CH_COLON) return parseIPv6(text);
  }
  const out = new Uint8Array(4);
  return parseIPv4Into(text, 0, text.length, out, 0) ? out : undefined;
}

function checkAddressBytes(bytes: Uint8Array): void {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`expected a Uint8Array address, got ${bytes === null ? 'null' : typeof bytes}`);
  }
  if (bytes.length !== 4 && bytes.length !== 16) {
    throw new RangeError(`expected a 4- or 16-byte address, got ${bytes.length} bytes`);
  }
}

function dotted(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/**
 * Formats 4 bytes as a dotted quad and 16 bytes in RFC 5952 canonical form: lowercase, no
 * leading zeros, the longest (first on ties) run of two or more zero groups as "::", and
 * IPv4-mapped addresses as "::ffff:a.b.c.d". Throws TypeError/RangeError for other input.
 */
export function formatIp(bytes: Uint8Array): string {
  checkAddressBytes(bytes);
  if (bytes.length === 4) return dotted(bytes, 0);
  let mapped = bytes[10] === 0xff && bytes[11] === 0xff;
  for (let i = 0; mapped && i < 10; i++) mapped = bytes[i] === 0;
  if (mapped) return `::ffff:${dotted(bytes, 12)}`;

  let bestStart = -1;
  let bestLen = 1; // a lone zero group is never compressed (RFC 5952 section 4.2.2)
  for (let g = 0; g < 8; ) {
    if (bytes[g * 2] === 0 && bytes[g * 2 + 1] === 0) {
      const runStart = g;
      while (g < 8 && bytes[g * 2] === 0 && bytes[g * 2 + 1] === 0) g++;
      if (g - runStart > bestLen) {
        bestStart = runStart;
        bestLen = g - runStart;
      }
    } else {
      g++;
    }
  }
  let s = '';
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      s += '::';
      g += bestLen - 1;
      continue;
    }
    if (s.length > 0 && !s.endsWith(':')) s += ':';
    s += ((bytes[g * 2]! << 8) | bytes[g * 2 + 1]!).toString(16);
  }
  return s;
}

/**
 * Parses "address/cidr" (or a bare address, meaning a full-length prefix). Host bits are kept
 * as written; AllowedIps masks them. Returns undefined for bad text or an out-of-range cidr.
 */
export function parsePrefix(text: string): { ip: Uint8Array; cidr: number } | undefined {
  if (typeof text !== 'string') throw new TypeError(`expected a prefix string, got ${typeof text}`);
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (ip === undefined) return undefined;
  const maxBits = ip.length * 8;
  if (slash < 0) return { ip, cidr: maxBits };
  const bits = text.slice(slash + 1);
  // Digits only, no sign/space/exponent, no leading zero: one spelling per prefix length.
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bits)) return undefined;
  const cidr = Number(bits);
  return cidr <= maxBits ? { ip, cidr } : undefined;
}

/** A copy of `ip` with the bits after the first `cidr` cleared: the network of a prefix. */
export function maskHostBits(ip: Uint8Array, cidr: number): Uint8Array {
  const out = ip.slice();
  for (let bit = cidr; bit < out.length * 8; bit++) out[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return out;
}

/** Formats "address/cidr"; throws TypeError/RangeError for a bad address or cidr. */
export function formatPrefix(ip: Uint8Array, cidr: number): string {
  checkAddressBytes(ip);
  if (!Number.isInteger(cidr) || cidr < 0 || cidr > ip.length * 8) {
    throw new RangeError(`expected a cidr in 0..${ip.length * 8}, got ${cidr}`);
  }
  return `${formatIp(ip)}/${cidr}`;
}
