// The raw-UDP adversary of `conformance live`: a WireGuard peer made of our own core (an Engine
// over a node:dgram socket) whose key the runner configured on the target, so it can capture and
// replay transport packets, craft malformed messages of every type, flood initiations, drop the
// target's initiations and time what the target sends on its own (retransmits, keepalives). It
// answers ICMP/ICMPv6 echo requests from the target. It runs as a child process inside a namespace
// the runner created (adversary-process.ts) and answers one JSON line per command. Traffic goes
// only to the target address it is given.

import { randomFillSync } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import type { ActionSink, DropReason, Endpoint } from '../core/actions.js';
import { REKEY_AFTER_TIME } from '../core/constants.js';
import { CookieGenerator } from '../core/cookie.js';
import type { CryptoProvider } from '../core/crypto.js';
import { Engine } from '../core/engine.js';
import { Handshake, createInitiationMessage, makeIdentity } from '../core/handshake.js';
import { parseIp } from '../core/ip.js';
import {
  COOKIE_REPLY_SIZE,
  INITIATION_SIZE,
  MessageType,
  RESPONSE_SIZE,
  TRANSPORT_MIN_SIZE,
  parseCookieReply,
  readU32,
  writeU32,
} from '../core/messages.js';
import type { Peer } from '../core/peer.js';
import { tai64n } from '../core/tai64n.js';
import { sleep } from '../io/wait.js';
import { echoReply, echoRequest, parseEcho } from './icmp-echo.js';

/** The adversary's configuration (first line on its stdin). Keys are hex. */
export interface AdversaryConfig {
  readonly privateKey: string;
  readonly targetPublicKey: string;
  /** The target's outer address and listen port. */
  readonly target: Endpoint;
  /** Local address to bind (inside the adversary's namespace); port chosen by the kernel. */
  readonly bindAddress: string;
  /** Our inner IPv4 and IPv6 addresses (allowed on the target for our key) and the target's. */
  readonly innerSelf: string;
  readonly innerTarget: string;
  readonly innerSelf6: string;
  readonly innerTarget6: string;
}

/** What arrived from the target since a `watch` command, in ms since that command. */
export interface Watched {
  /** Every handshake initiation (148 bytes), the dropped ones included. */
  readonly initiations: readonly number[];
  /** Keepalives: transport messages with an empty payload that authenticated. */
  readonly keepalives: readonly number[];
  /** Echo requests from the target that we answered. */
  readonly echoesAnswered: number;
}

/** The answer to one command; `watched` for the `watched` command. */
export interface AdversaryAnswer {
  readonly ok: boolean;
  readonly detail: string;
  readonly watched?: Watched;
}


function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

function random(n: number): Uint8Array {
  return randomFillSync(new Uint8Array(n));
}

/** A WireGuard peer under the runner's control; see the module comment. */
export class Adversary {
  readonly #cfg: AdversaryConfig;
  readonly #crypto: CryptoProvider;
  readonly #engine: Engine;
  readonly #socket: Socket;
  readonly #targetKey: Uint8Array;
  #peer: Peer;
  /** Added to the monotonic clock (and the wall clock) to make the engine's timers fire at will. */
  #offset = 0;
  #tick: NodeJS.Timeout | undefined;
  readonly #icmpId = (process.pid & 0x7fff) | 1;
  #seq = 0;
  readonly #replies = new Set<number>();
  readonly #replyWaiters = new Set<() => void>();
  /** Recording since the last `watch` command (see Watched), with initiations still to drop. */
  #watch: { start: number; drop: number; initiations: number[]; keepalives: number[]; echoesAnswered: number } | undefined;
  #dropCount = 0;
  /** Every datagram we sent or received, while capturing. */
  #sent: Uint8Array[] | undefined;
  readonly #received: Uint8Array[] = [];
  /** Drops our own engine counted, per reason (for diagnostics). */
  readonly drops: Partial<Record<DropReason, number>> = {};
  #handshakes = 0;
  readonly #sink: ActionSink<Peer>;

  private constructor(cfg: AdversaryConfig, crypto: CryptoProvider, socket: Socket) {
    this.#cfg = cfg;
    this.#crypto = crypto;
    this.#socket = socket;
    this.#targetKey = fromHex(cfg.targetPublicKey);
    this.#engine = new Engine({ crypto, fillRandom: (b) => void randomFillSync(b), wallClockMs: () => Date.now() + this.#offset });
    this.#engine.setPrivateKey(fromHex(cfg.privateKey), this.now());
    this.#peer = this.#addPeer();
    this.#sink = {
      network: (_p, ep, data) => {
        this.#sent?.push(data.slice());
        this.#socket.send(data, ep.port, ep.address);
      },
      tun: (_p, data) => {
        const echo = parseEcho(data);
        if (echo?.kind === 'request') {
          const reply = echoReply(data);
          if (reply === undefined) return;
          if (this.#watch !== undefined) this.#watch.echoesAnswered++;
          // The sink must not call back into the engine: answer once decapsulate has returned.
          queueMicrotask(() => this.#engine.encapsulate(reply, this.now(), this.#sink));
          return;
        }
        if (echo === undefined || echo.id !== this.#icmpId) return;
        this.#replies.add(echo.seq);
        for (const w of this.#replyWaiters) w();
      },
      drop: (reason) => {
        this.#dropCount++;
        this.drops[reason] = (this.drops[reason] ?? 0) + 1;
      },
      event: (e) => {
        if (e.kind === 'handshake-complete') this.#handshakes++;
      },
    };
    socket.on('message', (msg) => {
      const data = new Uint8Array(msg.buffer, msg.byteOffset, msg.length);
      this.#received.push(data.slice());
      if (this.#received.length > 10_000) this.#received.splice(0, 5_000);
      const watch = this.#watch;
      const at = performance.now() - (watch?.start ?? 0);
      if (watch !== undefined && data[0] === MessageType.initiation && data.length === INITIATION_SIZE) {
        watch.initiations.push(at);
        if (watch.drop > 0) {
          watch.drop--;
          return; // unseen by our engine, as if lost on the way
        }
      }
      const drops = this.#dropCount;
      this.#engine.decapsulate(data, cfg.target, this.now(), this.#sink);
      const keepalive = data[0] === MessageType.transport && data.length === TRANSPORT_MIN_SIZE && this.#dropCount === drops;
      if (watch !== undefined && keepalive) watch.keepalives.push(at);
    });
    this.#tick = setInterval(() => {
      const now = this.now();
      if (now >= this.#engine.nextDeadline()) this.#engine.tick(now, this.#sink);
    }, 20);
  }

  /** Binds the socket and sets up the engine; resolves once ready. */
  static async create(cfg: AdversaryConfig, crypto: CryptoProvider): Promise<Adversary> {
    const socket = createSocket({ type: cfg.bindAddress.includes(':') ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, cfg.bindAddress, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', () => {});
    return new Adversary(cfg, crypto, socket);
  }

  /** The bound UDP port. */
  get port(): number {
    return this.#socket.address().port;
  }

  /** The engine's clock: monotonic ms plus the offset the rekey scenario adds. */
  now(): number {
    return performance.now() + this.#offset;
  }

  /** Stops the timer and closes the socket. */
  close(): void {
    clearInterval(this.#tick);
    this.#tick = undefined;
    this.#socket.close();
  }

  #addPeer(): Peer {
    const peer = this.#engine.addPeer(this.#targetKey, { endpoint: this.#cfg.target });
    for (const address of [this.#cfg.innerTarget, this.#cfg.innerTarget6]) {
      const ip = parseIp(address);
      if (ip === undefined) throw new RangeError(`expected an inner target address, got ${address}`);
      this.#engine.allowedIps.insert(ip, ip.length * 8, peer);
    }
    return peer;
  }

  /** Forgets every session with the target, so the next packet starts a new handshake. */
  fresh(): void {
    this.#engine.removePeer(this.#peer);
    this.#peer = this.#addPeer();
  }

  /** Sends one echo request (through the engine) from `src` to the target's address of its family; its sequence number. */
  #sendEcho(src = this.#cfg.innerSelf, size?: number): number {
    const seq = (this.#seq = (this.#seq + 1) & 0xffff);
    const dst = src.includes(':') ? this.#cfg.innerTarget6 : this.#cfg.innerTarget;
    this.#engine.encapsulate(echoRequest(src, dst, this.#icmpId, seq, size), this.now(), this.#sink);
    return seq;
  }

  /** Resolves true once the echo reply `seq` has arrived, false after `timeoutMs`. */
  #awaitReply(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.#replies.has(seq)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.#replyWaiters.delete(check);
        resolve(ok);
      };
      const check = (): void => {
        if (this.#replies.has(seq)) done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.#replyWaiters.add(check);
    });
  }

  /**
   * Pings the target's inner address of `src`'s family (default: from our IPv4 address) with
   * `size` payload bytes, resending every 250 ms until a reply or `timeoutMs`.
   */
  async ping(timeoutMs = 5_000, src?: string, size?: number): Promise<AdversaryAnswer> {
    const start = performance.now();
    while (performance.now() - start < timeoutMs) {
      const seq = this.#sendEcho(src, size);
      if (await this.#awaitReply(seq, Math.min(250, timeoutMs))) return { ok: true, detail: `reply after ${Math.round(performance.now() - start)} ms` };
    }
    return { ok: false, detail: `no echo reply within ${timeoutMs} ms` };
  }

  /** Sends `seq` and captures the transport datagram that carried it. */
  async #captureEcho(): Promise<{ seq: number; datagram: Uint8Array; replied: boolean }> {
    this.#sent = [];
    const seq = this.#sendEcho();
    const sent = this.#sent;
    this.#sent = undefined;
    const datagram = sent.find((d) => d[0] === MessageType.transport && d.length > TRANSPORT_MIN_SIZE);
    if (datagram === undefined) throw new Error('no transport datagram was sent (no session)');
    return { seq, datagram, replied: await this.#awaitReply(seq, 2_000) };
  }

  /**
   * Replay: two echo requests are answered; then both captured datagrams are sent again (the
   * newest, then the older one still inside the window) and must not be answered; then a fresh
   * echo must be.
   */
  async replay(): Promise<AdversaryAnswer> {
    this.fresh();
    const up = await this.ping();
    if (!up.ok) return { ok: false, detail: `no session with the target: ${up.detail}` };
    const a = await this.#captureEcho();
    const b = await this.#captureEcho();
    if (!a.replied || !b.replied) return { ok: false, detail: 'the target did not answer the original echo requests' };
    for (const [which, c] of [['newest', b], ['older, in-window', a]] as const) {
      this.#replies.delete(c.seq);
      this.#socket.send(c.datagram, this.#cfg.target.port, this.#cfg.target.address);
      if (await this.#awaitReply(c.seq, 1_000)) {
        return { ok: false, detail: `the target answered a replayed transport packet (${which}, counter ${readU32(c.datagram, 8)})` };
      }
    }
    const after = await this.ping(2_000);
    return after.ok ? { ok: true, detail: 'replayed counters dropped (newest and in-window); fresh packet answered' } : { ok: false, detail: `after the replay: ${after.detail}` };
  }

  /** A 148-byte initiation from `id` to the target with a fresh timestamp and MAC1 (MAC2 from `gen`). */
  #initiation(privateKey: Uint8Array, gen: CookieGenerator, index = readU32(random(4), 0)): Uint8Array {
    const id = makeIdentity(this.#crypto, privateKey);
    const hs = new Handshake(this.#targetKey);
    hs.precomputedStaticStatic.set(this.#crypto.x25519(privateKey, this.#targetKey));
    const msg = createInitiationMessage(id, hs, random(32), tai64n(Date.now() + this.#offset), index);
    if (msg === undefined) throw new Error('could not create an initiation');
    gen.addMacs(msg, this.now());
    return msg;
  }

  /**
   * Malformed messages of every type, sent on an established session; the target must drop them
   * all, keep the session (no new handshake) and still answer.
   */
  async malformed(): Promise<AdversaryAnswer> {
    this.fresh();
    const up = await this.ping();
    if (!up.ok) return { ok: false, detail: `no session with the target: ${up.detail}` };
    const good = (await this.#captureEcho()).datagram;
    const receiver = readU32(good, 4);
    const withMac1 = (msg: Uint8Array): Uint8Array => {
      new CookieGenerator(this.#crypto, this.#targetKey).addMacs(msg, this.now());
      return msg;
    };
    const typed = (type: number, length: number, fill?: (m: Uint8Array) => void): Uint8Array => {
      const m = random(length);
      m.set([type, 0, 0, 0]);
      fill?.(m);
      return m;
    };
    const flip = (m: Uint8Array, at: number): Uint8Array => {
      const c = m.slice();
      c[at < 0 ? c.length + at : at]! ^= 1;
      return c;
    };
    const valid = this.#initiation(random(32), new CookieGenerator(this.#crypto, this.#targetKey));
    const cases: Array<[string, Uint8Array]> = [
      ['empty datagram', new Uint8Array(0)],
      ['1 byte', Uint8Array.of(1)],
      ['3 bytes', Uint8Array.of(4, 0, 0)],
      ['type 0', typed(0, 148)],
      ['type 5', typed(5, 148)],
      ['type 255', typed(255, 64)],
      ['initiation 147 bytes', typed(1, INITIATION_SIZE - 1)],
      ['initiation 149 bytes', typed(1, INITIATION_SIZE + 1)],
      ['initiation random, bad MAC1', typed(1, INITIATION_SIZE)],
      ['initiation random body, valid MAC1', withMac1(typed(1, INITIATION_SIZE))],
      ['initiation from an unknown key, valid MAC1', valid],
      ['initiation, reserved byte set', flip(valid, 1)],
      ['initiation, MAC1 flipped', flip(valid, 116)],
      ['response 91 bytes', typed(2, RESPONSE_SIZE - 1)],
      ['response random, bad MAC1', typed(2, RESPONSE_SIZE)],
      ['response for our live index, valid MAC1', withMac1(typed(2, RESPONSE_SIZE, (m) => writeU32(m, 8, receiver)))],
      ['cookie reply 63 bytes', typed(3, COOKIE_REPLY_SIZE - 1)],
      ['cookie reply 65 bytes', typed(3, COOKIE_REPLY_SIZE + 1)],
      ['cookie reply, unknown index', typed(3, COOKIE_REPLY_SIZE)],
      ['transport 31 bytes', typed(4, TRANSPORT_MIN_SIZE - 1)],
      ['transport, unknown index', typed(4, 80)],
      ['transport, live index, garbage', typed(4, 80, (m) => writeU32(m, 4, receiver))],
      ['transport, live index, counter 2^64-1', typed(4, 80, (m) => (writeU32(m, 4, receiver), m.fill(0xff, 8, 16)))],
      ['transport, tag flipped', flip(good, -1)],
      ['transport, reserved byte set', flip(good, 2)],
      ['transport, 2000 bytes garbage', typed(4, 2000, (m) => writeU32(m, 4, receiver))],
    ];
    const handshakesBefore = this.#handshakes;
    const seenBefore = this.#received.length;
    for (const [, msg] of cases) this.#socket.send(msg, this.#cfg.target.port, this.#cfg.target.address);
    await sleep(300);
    const answers = this.#received.slice(seenBefore).map((d) => d[0]);
    const after = await this.ping(3_000);
    if (!after.ok) return { ok: false, detail: `after ${cases.length} malformed datagrams: ${after.detail}` };
    if (this.#handshakes !== handshakesBefore) return { ok: false, detail: 'the session did not survive: a new handshake was needed' };
    const noted = answers.length === 0 ? 'no answers' : `answered with message types ${answers.join(',')}`;
    return { ok: true, detail: `${cases.length} malformed datagrams ignored (${noted}); session intact` };
  }

  /**
   * Rekey forced by us (clock-independent for the target): our engine's clock jumps past
   * REKEY_AFTER_TIME, so the next packet starts a new handshake as initiator; the target must
   * answer it and both directions must move to the new session.
   */
  async rekey(): Promise<AdversaryAnswer> {
    this.fresh();
    const up = await this.ping();
    if (!up.ok) return { ok: false, detail: `no session with the target: ${up.detail}` };
    const before = await this.#captureEcho();
    const handshakes = this.#handshakes;
    // Targets ignore initiations sooner than 20 ms after the last one (wireguard-go
    // HandshakeInitationRate, our HANDSHAKE_INITIATION_RATE): let real time pass first.
    await sleep(100);
    this.#offset += REKEY_AFTER_TIME + 1_000;
    const start = performance.now();

    while (this.#handshakes === handshakes && performance.now() - start < 6_000) {
      this.#sendEcho();
      await sleep(100);
    }
    if (this.#handshakes === handshakes) return { ok: false, detail: 'the target did not answer the rekey initiation within 6 s' };
    const seenBefore = this.#received.length;
    const after = await this.#captureEcho();
    if (!after.replied) return { ok: false, detail: 'no echo reply on the new session' };
    const sentOld = readU32(before.datagram, 4);
    const sentNew = readU32(after.datagram, 4);
    const incoming = this.#received.slice(seenBefore).filter((d) => d[0] === MessageType.transport).map((d) => readU32(d, 4));
    if (sentNew === sentOld) return { ok: false, detail: 'still sending on the old session' };
    return { ok: true, detail: `new session after ${Math.round(performance.now() - start)} ms (target index ${sentOld} -> ${sentNew}; replies to index ${incoming.at(-1)})` };
  }

  /**
   * Handshake flood: `count` copies of one valid initiation as fast as the socket takes them; at
   * least one authenticated cookie reply (type 3) must come back, an initiation carrying the
   * cookie's MAC2 must be answered, and after the load a normal handshake must work.
   */
  async flood(count: number): Promise<AdversaryAnswer> {
    this.fresh();
    const gen = new CookieGenerator(this.#crypto, this.#targetKey);
    const key = fromHex(this.#cfg.privateKey);
    const msg = this.#initiation(key, gen);
    const seenBefore = this.#received.length;
    const start = performance.now();
    let sent = 0;
    while (sent < count && performance.now() - start < 5_000) {
      const batch = Math.min(64, count - sent);
      await Promise.all(Array.from({ length: batch }, () => new Promise<void>((r) => this.#socket.send(msg, this.#cfg.target.port, this.#cfg.target.address, () => r()))));
      sent += batch;
    }
    await sleep(300);
    const floodMs = Math.round(performance.now() - start);
    const got = this.#received.slice(seenBefore);
    const cookies = got.filter((d) => d[0] === MessageType.cookieReply);
    const valid = cookies.filter((d) => {
      const c = parseCookieReply(d);
      return typeof c !== 'string' && gen.consumeReply(c.nonce, c.cookie, this.now());
    });
    const summary = `${sent} initiations in ${floodMs} ms, ${got.filter((d) => d[0] === MessageType.response).length} responses, ${cookies.length} cookie replies (${valid.length} valid)`;
    if (valid.length === 0) return { ok: false, detail: `no authenticated cookie reply: ${summary}` };
    const mark = this.#received.length;
    const withMac2 = this.#initiation(key, gen);
    if ((withMac2.subarray(132).some((b) => b !== 0)) === false) return { ok: false, detail: 'internal: no MAC2 after a valid cookie' };
    this.#socket.send(withMac2, this.#cfg.target.port, this.#cfg.target.address);
    await sleep(500);
    const mac2Answered = this.#received.slice(mark).some((d) => d[0] === MessageType.response && readU32(d, 8) === readU32(withMac2, 4));
    if (!mac2Answered) return { ok: false, detail: `the initiation with the cookie's MAC2 was not answered; ${summary}` };
    await sleep(1_200); // wireguard-go stays under load for a second after the queue drains
    this.fresh();
    const after = await this.ping(5_000);
    return after.ok ? { ok: true, detail: `${summary}; MAC2 initiation answered; handshake works after the flood` } : { ok: false, detail: `after the flood: ${after.detail}; ${summary}` };
  }

  /**
   * Starts recording what the target sends (see Watched); the first `dropInitiations` initiations
   * are dropped unseen by our engine. `fresh` forgets the session first.
   */
  watch(dropInitiations = 0, fresh = false): AdversaryAnswer {
    if (fresh) this.fresh();
    this.#watch = { start: performance.now(), drop: dropInitiations, initiations: [], keepalives: [], echoesAnswered: 0 };
    return { ok: true, detail: `watching; dropping the next ${dropInitiations} initiations` };
  }

  /**
   * Waits `waitMs` (or, with `untilEchoAnswered`, until we answered an echo request of the
   * target), then ends the recording and returns it.
   */
  async watched(waitMs: number, untilEchoAnswered = false): Promise<AdversaryAnswer> {
    const watch = this.#watch;
    if (watch === undefined) return { ok: false, detail: 'watched without watch' };
    const end = performance.now() + waitMs;
    while (performance.now() < end && !(untilEchoAnswered && watch.echoesAnswered > 0)) await sleep(Math.min(20, end - performance.now()));
    this.#watch = undefined;
    const watched: Watched = { initiations: watch.initiations, keepalives: watch.keepalives, echoesAnswered: watch.echoesAnswered };
    return { ok: true, detail: `${watched.initiations.length} initiations, ${watched.keepalives.length} keepalives, ${watched.echoesAnswered} echo requests answered`, watched };
  }
}

/** A command line on the adversary's stdin. */
export type AdversaryCommand =
  /** Ping from `source` (default our IPv4 address); `keepSession` skips starting over. */
  | { readonly op: 'ping'; readonly source?: string; readonly size?: number; readonly timeoutMs?: number; readonly keepSession?: boolean }
  | { readonly op: 'replay' | 'malformed' | 'rekey' }
  | { readonly op: 'flood'; readonly count: number }
  | { readonly op: 'watch'; readonly dropInitiations?: number; readonly fresh?: boolean }
  | { readonly op: 'watched'; readonly waitMs: number; readonly untilEchoAnswered?: boolean };

/** Carries out one command; unknown commands fail. Never throws. */
export async function runAdversaryCommand(adv: Adversary, cmd: AdversaryCommand): Promise<AdversaryAnswer> {
  try {
    switch (cmd.op) {
      case 'ping':
        if (cmd.keepSession !== true) adv.fresh();
        return await adv.ping(cmd.timeoutMs, cmd.source, cmd.size);
      case 'replay':
        return await adv.replay();
      case 'malformed':
        return await adv.malformed();
      case 'rekey':
        return await adv.rekey();
      case 'flood':
        return await adv.flood(cmd.count);
      case 'watch':
        return adv.watch(cmd.dropInitiations, cmd.fresh);
      case 'watched':
        return await adv.watched(cmd.waitMs, cmd.untilEchoAnswered);
      default:
        return { ok: false, detail: `unknown command ${JSON.stringify(cmd)}` };
    }
  } catch (err) {
    return { ok: false, detail: `adversary error: ${(err as Error).message}` };
  }
}
