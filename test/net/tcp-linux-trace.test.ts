// Interoperation-shaped tests: segments laid out byte for byte as Linux sends them (SYN with MSS,
// SACK_PERM, TS, NOP, WS 7; ACKs with NOP NOP TS and SACK blocks; window scaled by 7), fed to one
// engine, and the engine's answers checked field by field.

import { describe, expect, it } from 'vitest';
import { ACK, FIN, PSH, SYN, buildSegment, checksum, parseSegment, pseudoHeaderSum, type Segment, type SegmentFields } from '../../src/net/tcp-segment.js';
import { TcpEngine, type TcpConnection, type TcpSegmentOut } from '../../src/net/tcp.js';
import { IP_A, IP_B, seededBytes } from '../helpers/tcp-sim.js';

/** Builds a segment from hex text (spaces ignored) and fills in the checksum for IP_A -> IP_B. */
function linux(hex: string): Uint8Array {
  const b = Uint8Array.from(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));
  b[16] = b[17] = 0;
  const c = checksum(pseudoHeaderSum(IP_A, IP_B, b.length), b);
  b[16] = c >> 8;
  b[17] = c & 0xff;
  return b;
}

function u32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

function parse(s: TcpSegmentOut): Segment {
  const p = parseSegment(s.src, s.dst, s.bytes);
  if (typeof p === 'string') throw new Error(p);
  return p;
}

describe('a Linux client against the engine', () => {
  it('SYN (MSS 1460, SACK_PERM, TS, NOP, WS 7) -> SYN-ACK; request, response, FIN both ways', () => {
    const out: TcpSegmentOut[] = [];
    const engine = new TcpEngine({ send: (s) => out.push(s), random: seededBytes(60) });
    let conn: TcpConnection | undefined;
    const got: string[] = [];
    engine.listen(80, { mss: 1380, backlog: 8 }, (c) => {
      conn = c;
      c.onData = (d) => {
        got.push(Buffer.from(d).toString());
        c.consumed(d.length, 0);
      };
    });
    const isn = 0x9a3b1c2d;
    const tsv = 0x0badcafe;
    // 54321 -> 80, SYN, window 64240, options: MSS 1460, SACK_PERM, TS(tsv, 0), NOP, WS 7.
    engine.input(IP_A, IP_B, linux(`d431 0050 ${u32(isn)} 00000000 a002 faf0 0000 0000 020405b4 0402 080a ${u32(tsv)} 00000000 01 030307`), 0);
    expect(out.length).toBe(1);
    const synAck = parse(out[0]!);
    expect(synAck).toMatchObject({ srcPort: 80, dstPort: 54321, flags: SYN | ACK, ack: isn + 1, mss: 1380, sackPermitted: true, tsEcr: tsv, wscale: 5, window: 65535 });
    // Linux's options order in our SYN-ACK too: MSS, SACK_PERM, TS, NOP, WS.
    expect([...out[0]!.bytes.subarray(20, 24)]).toEqual([2, 4, 0x05, 0x64]);
    expect([...out[0]!.bytes.subarray(24, 28)]).toEqual([4, 2, 8, 10]);
    expect([...out[0]!.bytes.subarray(36, 40)]).toEqual([1, 3, 3, 5]);
    const iss = synAck.seq;
    const ts2 = synAck.tsVal!;
    // Third ACK: window 502 << 7 = 64256, NOP NOP TS.
    engine.input(IP_A, IP_B, linux(`d431 0050 ${u32(isn + 1)} ${u32(iss + 1)} 8010 01f6 0000 0000 0101 080a ${u32(tsv + 1)} ${u32(ts2)}`), 1);
    expect(conn?.state).toBe('ESTABLISHED');
    expect(conn!.info()).toMatchObject({ sendWindow: 502 << 7, mss: 1380 - 12, windowScale: [7, 5], timestamps: true, sack: true });
    // Request with PSH.
    const req = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    engine.input(IP_A, IP_B, linux(`d431 0050 ${u32(isn + 1)} ${u32(iss + 1)} 8018 01f6 0000 0000 0101 080a ${u32(tsv + 2)} ${u32(ts2)} ${req.toString('hex')}`), 2);
    expect(got.join('')).toBe(req.toString());
    out.length = 0;
    // The response goes out at once (nothing unacknowledged) and carries the ACK of the request.
    conn!.write(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), 3);
    const resp = parse(out[0]!);
    expect(resp).toMatchObject({ seq: iss + 1, ack: isn + 1 + req.length, flags: ACK | PSH, tsEcr: tsv + 2 });
    expect(resp.window).toBe((1 << 20) / 32); // the whole 1 MiB buffer, scaled by 5
    // Linux ACKs the response together with its FIN.
    engine.input(IP_A, IP_B, linux(`d431 0050 ${u32(isn + 1 + req.length)} ${u32(iss + 1 + 19)} 8011 01f6 0000 0000 0101 080a ${u32(tsv + 3)} ${u32(resp.tsVal!)}`), 4);
    expect(conn!.state).toBe('CLOSE-WAIT');
    out.length = 0;
    conn!.shutdown(5);
    expect(parse(out.at(-1)!)).toMatchObject({ flags: FIN | ACK, seq: iss + 1 + 19, ack: isn + 2 + req.length });
    engine.input(IP_A, IP_B, linux(`d431 0050 ${u32(isn + 2 + req.length)} ${u32(iss + 21)} 8010 01f6 0000 0000 0101 080a ${u32(tsv + 4)} ${u32(resp.tsVal!)}`), 6);
    expect(conn!.state).toBe('CLOSED');
    expect(engine.connectionCount).toBe(0);
  });

  it('a Linux ACK with SACK blocks parses, and a Linux RST (seq = RCV.NXT) resets', () => {
    const out: TcpSegmentOut[] = [];
    const engine = new TcpEngine({ send: (s) => out.push(s), random: seededBytes(61) });
    let err: string | undefined;
    engine.listen(80, { mss: 1380, backlog: 8 }, (c) => {
      c.onClose = (e) => {
        err = e?.code;
      };
    });
    engine.input(IP_A, IP_B, linux(`d431 0050 00000100 00000000 a002 faf0 0000 0000 020405b4 0402 080a 00000001 00000000 01 030307`), 0);
    const iss = parse(out[0]!).seq;
    engine.input(IP_A, IP_B, linux(`d431 0050 00000101 ${u32(iss + 1)} 8010 01f6 0000 0000 0101 080a 00000002 ${u32(parse(out[0]!).tsVal!)}`), 1);
    // NOP NOP SACK(10) with one block, NOP NOP TS: data offset 11 words.
    const sackAck = linux(`d431 0050 00000101 ${u32(iss + 1)} b010 01f6 0000 0000 0101 050a ${u32(iss + 1)} ${u32(iss + 1)} 0101 080a 00000003 00000000`);
    expect(parseSegment(IP_A, IP_B, sackAck)).toMatchObject({ sack: [iss + 1, iss + 1], tsVal: 3 });
    engine.input(IP_A, IP_B, sackAck, 2);
    expect(engine.connectionCount).toBe(1);
    engine.input(IP_A, IP_B, linux(`d431 0050 00000101 00000000 5004 0000 0000 0000`), 3);
    expect(err).toBe('ECONNRESET');
    expect(engine.connectionCount).toBe(0);
  });

  it('our SYN is laid out as Linux lays out its own: 40-byte header, MSS, SACK_PERM, TS, NOP, WS', () => {
    const out: TcpSegmentOut[] = [];
    const engine = new TcpEngine({ send: (s) => out.push(s), random: seededBytes(62) });
    engine.connect({ ip: IP_B, port: 40000 }, { ip: IP_A, port: 443 }, { mss: 1380 }, 0);
    const b = out[0]!.bytes;
    expect(b.length).toBe(40);
    expect(b[12]).toBe(0xa0);
    expect(b[13]).toBe(SYN);
    expect([...b.subarray(20, 26)]).toEqual([2, 4, 0x05, 0x64, 4, 2]);
    expect([...b.subarray(26, 28)]).toEqual([8, 10]);
    expect([...b.subarray(36, 40)]).toEqual([1, 3, 3, 5]);
  });
});

describe('going back N after an RTO with SACKed data', () => {
  it('skips the SACKed range and keeps the FIN on the segment that ends the data', () => {
    const out: TcpSegmentOut[] = [];
    const engine = new TcpEngine({ send: (s) => out.push(s), random: seededBytes(63), limits: { timestamps: false } });
    const c = engine.connect({ ip: IP_B, port: 40000 }, { ip: IP_A, port: 80 }, { mss: 1000 }, 0);
    const syn = parse(out[0]!);
    const peer = (seq: number, ack: number, flags: number, extra: Partial<SegmentFields> = {}) =>
      buildSegment({ srcPort: 80, dstPort: 40000, seq, ack, flags, window: 65535, ...extra }, pseudoHeaderSum(IP_A, IP_B, 0), 0);
    engine.input(IP_A, IP_B, peer(5000, syn.seq + 1, SYN | ACK, { synMss: 1000, synSackPermitted: true }), 10);
    expect(c.state).toBe('ESTABLISHED');
    c.setNoDelay(true);
    c.write(new Uint8Array(2500).fill(7), 10);
    c.shutdown(10);
    const base = syn.seq + 1;
    const sent = () => out.splice(0).map(parse).map((x) => ({ seq: x.seq - base, len: x.payload.length, fin: (x.flags & FIN) !== 0 }));
    expect(sent().slice(2)).toEqual([
      { seq: 0, len: 1000, fin: false },
      { seq: 1000, len: 1000, fin: false },
      { seq: 2000, len: 500, fin: false },
      { seq: 2500, len: 0, fin: true },
    ]);
    // Nothing is acknowledged: the RTO resends the first segment (the scoreboard is empty).
    engine.tick(engine.nextDeadline()!);
    expect(sent()).toEqual([{ seq: 0, len: 1000, fin: false }]);
    // The peer now acknowledges 1600 and SACKs 2000..2300: going on back N, the engine sends
    // 1600..2000 (no FIN: it does not end the data), skips the SACKed bytes, then 2300..2500+FIN.
    engine.input(IP_A, IP_B, peer(5001, base + 1600, ACK, { sack: [base + 2000, base + 2300] }), 1000);
    expect(sent()).toEqual([
      { seq: 1600, len: 400, fin: false },
      { seq: 2300, len: 200, fin: true },
    ]);
  });
});
