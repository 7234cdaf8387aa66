// The adversary's ICMP/ICMPv6 echo packets: well-formed checksums (IPv4 header, ICMP, ICMPv6 with
// its pseudo-header), read back, and replies with swapped addresses. The kernel accepting them is
// the netns tier's job (conformance-live: data-ipv6, allowed-ips, handshake-retransmit).
import { describe, expect, it } from 'vitest';
import { formatIp } from '../../src/core/ip.js';
import { echoReply, echoRequest, parseEcho } from '../../src/conformance/icmp-echo.js';

/** Ones' complement sum folded to 16 bits: 0xffff over data that includes its own checksum. */
function folded(data: Uint8Array, sum = 0): number {
  for (let i = 0; i < data.length; i += 2) sum += (data[i]! << 8) | (data[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function checksumsHold(p: Uint8Array): boolean {
  if (p[0]! >> 4 === 4) return folded(p.subarray(0, 20)) === 0xffff && folded(p.subarray(20)) === 0xffff;
  const icmp = p.subarray(40);
  return folded(icmp, folded(p.subarray(8, 40)) + icmp.length + 58) === 0xffff;
}

describe('icmp-echo', () => {
  it.each([
    ['10.202.0.3', '10.202.0.1', 20],
    ['fdca::3', 'fdca::1', 40],
  ])('builds a request %s -> %s with valid checksums, and its reply', (src, dst, header) => {
    for (const size of [0, 1, 56, 1372]) {
      const req = echoRequest(src, dst, 0x1234, 7, size);
      expect(req.length).toBe(header + 8 + size);
      expect(checksumsHold(req)).toBe(true);
      expect(parseEcho(req)).toEqual({ kind: 'request', id: 0x1234, seq: 7 });
      const rep = echoReply(req)!;
      expect(checksumsHold(rep)).toBe(true);
      expect(parseEcho(rep)).toEqual({ kind: 'reply', id: 0x1234, seq: 7 });
      const at = header === 20 ? [12, 16, 20] : [8, 24, 40];
      expect(formatIp(rep.subarray(at[0], at[1]))).toBe(dst);
      expect(formatIp(rep.subarray(at[1], at[2]))).toBe(src);
      expect(echoReply(rep)).toBeUndefined();
    }
  });

  it('rejects mixed families and ignores what is not an echo', () => {
    expect(() => echoRequest('10.0.0.1', 'fdca::1', 1, 1)).toThrow(RangeError);
    const req = echoRequest('10.0.0.1', '10.0.0.2', 1, 1);
    req[9] = 17; // UDP
    expect(parseEcho(req)).toBeUndefined();
    expect(parseEcho(new Uint8Array(10))).toBeUndefined();
  });
});
