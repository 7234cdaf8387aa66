// Userspace ICMP echo for packet-callback mode (no TUN, no kernel stack): build IPv4 ICMP echo
// requests (RFC 792), answer requests addressed to our mesh IP, and hand replies to whoever is
// pinging. IPv4 only; the mesh addresses are IPv4 /32s.

import { internetChecksum } from '../core/checksum.js';
import { formatIp, parseIp } from '../core/ip.js';
import { systemClock, type Clock } from '../io/clock.js';

/** RFC 1071 one's-complement checksum of `b[from, to)`. */
export const inetChecksum = (b: Uint8Array, from = 0, to = b.length): number => internetChecksum(b, from, to);

function ipv4(src: Uint8Array, dst: Uint8Array, icmp: Uint8Array): Uint8Array {
  const p = new Uint8Array(20 + icmp.length);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[6] = 0x40; // DF
  p[8] = 64;
  p[9] = 1; // ICMP
  p.set(src, 12);
  p.set(dst, 16);
  const c = inetChecksum(p, 0, 20);
  p[10] = c >> 8;
  p[11] = c & 0xff;
  p.set(icmp, 20);
  return p;
}

function icmpMessage(type: number, id: number, seq: number, payload: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + payload.length);
  m[0] = type;
  m[4] = (id >> 8) & 0xff;
  m[5] = id & 0xff;
  m[6] = (seq >> 8) & 0xff;
  m[7] = seq & 0xff;
  m.set(payload, 8);
  const c = inetChecksum(m);
  m[2] = c >> 8;
  m[3] = c & 0xff;
  return m;
}

/** An IPv4 ICMP echo request from `src` to `dst`. Throws RangeError for non-IPv4 addresses. */
export function echoRequest(src: string, dst: string, id: number, seq: number, payload: Uint8Array = new Uint8Array(32)): Uint8Array {
  const s = parseIp(src);
  const d = parseIp(dst);
  if (s?.length !== 4 || d?.length !== 4) throw new RangeError(`expected IPv4 addresses, got ${src} ${dst}`);
  return ipv4(s, d, icmpMessage(8, id, seq, payload));
}

/** A parsed ICMP echo packet. */
export interface Echo {
  readonly kind: 'request' | 'reply';
  readonly src: string;
  readonly dst: string;
  readonly id: number;
  readonly seq: number;
  readonly payload: Uint8Array;
}

/** Reads an IPv4 ICMP echo request/reply; undefined for anything else or a bad checksum. */
export function parseEcho(p: Uint8Array): Echo | undefined {
  if (p.length < 28 || p[0]! >> 4 !== 4 || p[9] !== 1) return undefined;
  const ihl = (p[0]! & 0x0f) * 4;
  const total = (p[2]! << 8) | p[3]!;
  if (ihl < 20 || total > p.length || total < ihl + 8) return undefined;
  if (((p[6]! & 0x1f) | p[7]!) !== 0 || (p[6]! & 0x20) !== 0) return undefined; // fragments
  const type = p[ihl]!;
  if ((type !== 8 && type !== 0) || p[ihl + 1] !== 0) return undefined;
  if (inetChecksum(p, ihl, total) !== 0) return undefined;
  return {
    kind: type === 8 ? 'request' : 'reply',
    src: formatIp(p.subarray(12, 16)),
    dst: formatIp(p.subarray(16, 20)),
    id: (p[ihl + 4]! << 8) | p[ihl + 5]!,
    seq: (p[ihl + 6]! << 8) | p[ihl + 7]!,
    payload: p.slice(ihl + 8, total),
  };
}

/** The echo reply answering `req` (addresses swapped). */
export function echoReply(req: Echo): Uint8Array {
  return ipv4(parseIp(req.dst)!, parseIp(req.src)!, icmpMessage(0, req.id, req.seq, req.payload));
}

/**
 * Answers echo requests to `ownIp` through `send` and passes echo replies to `onReply`.
 * Returns the packet handler to install as the Device's onPacket. Counts what it saw.
 */
export function icmpResponder(ownIp: () => string, send: (packet: Uint8Array) => void, onReply?: (echo: Echo) => void) {
  const counters = { requestsAnswered: 0, repliesSeen: 0, ignored: 0 };
  const handle = (packet: Uint8Array): void => {
    const e = parseEcho(packet);
    if (e === undefined) {
      counters.ignored++;
      return;
    }
    if (e.kind === 'request' && e.dst === ownIp()) {
      counters.requestsAnswered++;
      send(echoReply(e));
    } else if (e.kind === 'reply') {
      counters.repliesSeen++;
      onReply?.(e);
    } else {
      counters.ignored++;
    }
  };
  return { handle, counters };
}

/**
 * Pings `dst` from `src` through `send`: resolves with the RTT in ms of the first matching reply,
 * or undefined after `timeoutMs`. Retries every `intervalMs` (the first packets may be queued
 * behind a handshake). Feed replies to `deliver` on the returned pinger.
 */
export class Pinger {
  readonly #pending = new Map<string, (rttMs: number) => void>();
  readonly #clock: Clock;
  #nextId = 1;

  /** `clock`: where send and receive times are read (default the system clock). */
  constructor(clock: Clock = systemClock) {
    this.#clock = clock;
  }

  /** Feed every echo reply here (icmpResponder's onReply). */
  deliver(e: Echo): void {
    const key = `${e.src}/${e.id}`;
    const done = this.#pending.get(key);
    if (done === undefined) return;
    const sent = new DataView(e.payload.buffer, e.payload.byteOffset, e.payload.byteLength);
    const rtt = e.payload.byteLength >= 8 ? this.#clock.now() - sent.getFloat64(0) : 0;
    done(rtt);
  }

  /** Sends echo requests until a reply or the timeout. */
  ping(src: string, dst: string, send: (p: Uint8Array) => void, timeoutMs = 5000, intervalMs = 200): Promise<number | undefined> {
    const id = this.#nextId++ & 0xffff;
    const key = `${dst}/${id}`;
    return new Promise((resolve) => {
      let seq = 0;
      const fire = () => {
        const payload = new Uint8Array(32);
        new DataView(payload.buffer).setFloat64(0, this.#clock.now());
        send(echoRequest(src, dst, id, seq++ & 0xffff, payload));
      };
      const finish = (rtt: number | undefined) => {
        clearInterval(every);
        clearTimeout(timer);
        this.#pending.delete(key);
        resolve(rtt);
      };
      this.#pending.set(key, (rtt) => finish(rtt));
      const every = setInterval(fire, intervalMs);
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      fire();
    });
  }
}
