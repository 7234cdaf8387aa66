// Two engines over an in-memory UDP link with one manual clock (STYLE.md item 11): datagrams are
// delivered synchronously, and `advance` jumps from deadline to deadline so minutes of protocol
// time run in milliseconds. Every action is recorded for assertions.

import type { ActionSink, DropReason, Endpoint, EngineEvent } from '../../src/core/actions.js';
import type { CryptoProvider } from '../../src/core/crypto.js';
import { nobleCrypto } from '../../src/core/crypto-noble.js';
import { Engine } from '../../src/core/engine.js';
import type { Peer } from '../../src/core/peer.js';
import { parseIp, parsePrefix } from '../../src/core/ip.js';
import { ManualClock } from './clock.js';
import { seededRandom } from './rng.js';

/** A datagram in flight. */
export interface Datagram {
  from: Endpoint;
  to: Endpoint;
  data: Uint8Array;
}

/** One side of the pair: its engine, its address as the other side sees it, and what it did. */
export class Node implements ActionSink<Peer> {
  readonly name: string;
  readonly engine: Engine;
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  /** The source address of this node's datagrams (change it to simulate roaming). */
  endpoint: Endpoint;
  /** The peer object for the other node (set by Pair). */
  peer!: Peer;
  readonly tunOut: Uint8Array[] = [];
  readonly sent: Datagram[] = [];
  readonly drops: { reason: DropReason; peer: Peer | undefined }[] = [];
  readonly events: EngineEvent<Peer>[] = [];
  readonly #pair: Pair;

  constructor(pair: Pair, name: string, crypto: CryptoProvider, seed: number, endpoint: Endpoint, underLoadThreshold?: number) {
    this.#pair = pair;
    this.name = name;
    this.endpoint = endpoint;
    const fillRandom = seededRandom(seed);
    this.privateKey = new Uint8Array(32);
    fillRandom(this.privateKey);
    this.engine = new Engine({
      crypto,
      fillRandom,
      wallClockMs: pair.clock.wallClockMs,
      ...(underLoadThreshold === undefined ? {} : { underLoadThreshold }),
    });
    this.engine.setPrivateKey(this.privateKey, pair.clock.now);
    this.publicKey = this.engine.publicKey!;
  }

  network(_peer: Peer | undefined, to: Endpoint, data: Uint8Array): void {
    const d = { from: this.endpoint, to, data };
    this.sent.push(d);
    this.#pair.wire.push(d);
  }

  tun(_peer: Peer, data: Uint8Array): void {
    this.tunOut.push(data.slice());
  }

  drop(reason: DropReason, peer: Peer | undefined): void {
    this.drops.push({ reason, peer });
  }

  event(e: EngineEvent<Peer>): void {
    this.events.push(e);
  }

  /** Reasons dropped so far. */
  dropReasons(): DropReason[] {
    return this.drops.map((d) => d.reason);
  }

  /** Sends an IP packet from the TUN side at the pair's current time, then runs the link. */
  send(packet: Uint8Array): void {
    this.engine.encapsulate(packet, this.#pair.clock.now, this);
    this.#pair.flush();
  }

  /** Datagrams this node sent with message type `type`. */
  sentOfType(type: number): Datagram[] {
    return this.sent.filter((d) => d.data[0] === type);
  }
}

/** Options of the pair. */
export interface PairOptions {
  crypto?: CryptoProvider;
  /** Pre-shared key for both sides. (A is 10.0.0.1, B 10.0.0.2; each routes the other's /32.) */
  psk?: Uint8Array;
  /** Give only A the endpoint of B (B learns A's from the handshake); default both know. */
  onlyAKnowsB?: boolean;
  seedA?: number;
  seedB?: number;
  /** Handshake messages per second that put an engine under load (engine default if omitted). */
  underLoadThreshold?: number;
}

/** Two engines wired together. */
export class Pair {
  readonly clock = new ManualClock();
  readonly wire: Datagram[] = [];
  readonly a: Node;
  readonly b: Node;
  /** Return false to lose a datagram in flight (it is recorded in `lost`). */
  filter: (d: Datagram) => boolean = () => true;
  readonly lost: Datagram[] = [];

  constructor(opts: PairOptions = {}) {
    const crypto = opts.crypto ?? nobleCrypto;
    this.a = new Node(this, 'a', crypto, opts.seedA ?? 1, { address: '192.0.2.1', port: 51820 }, opts.underLoadThreshold);
    this.b = new Node(this, 'b', crypto, opts.seedB ?? 2, { address: '198.51.100.2', port: 51821 }, opts.underLoadThreshold);
    this.a.peer = this.a.engine.addPeer(this.b.publicKey, {
      endpoint: this.b.endpoint,
      ...(opts.psk ? { presharedKey: opts.psk } : {}),
    });
    this.b.peer = this.b.engine.addPeer(this.a.publicKey, {
      ...(opts.onlyAKnowsB ? {} : { endpoint: this.a.endpoint }),
      ...(opts.psk ? { presharedKey: opts.psk } : {}),
    });
    route(this.a.engine, this.a.peer, '10.0.0.2/32');
    route(this.b.engine, this.b.peer, '10.0.0.1/32');
  }

  /** Delivers every datagram in flight (and those their handling produces) at the current time. */
  flush(): void {
    for (let guard = 0; this.wire.length > 0; guard++) {
      if (guard > 100_000) throw new Error('expected the link to settle, got an endless exchange');
      const d = this.wire.shift()!;
      if (!this.filter(d)) {
        this.lost.push(d);
        continue;
      }
      const target = [this.a, this.b].find((n) => n.endpoint.address === d.to.address && n.endpoint.port === d.to.port);
      if (target === undefined) {
        this.lost.push(d);
        continue;
      }
      target.engine.decapsulate(d.data, d.from, this.clock.now, target);
    }
  }

  /** The earlier of both engines' deadlines. */
  nextDeadline(): number {
    return Math.min(this.a.engine.nextDeadline(), this.b.engine.nextDeadline());
  }

  /** Ticks both engines at the current time and flushes the link. */
  tick(): void {
    this.a.engine.tick(this.clock.now, this.a);
    this.b.engine.tick(this.clock.now, this.b);
    this.flush();
  }

  /**
   * Advances the clock by `ms`, stopping at every deadline on the way to tick and flush; `each`
   * (optional) runs at every stop, e.g. to send traffic.
   */
  advance(ms: number): void {
    const end = this.clock.now + ms;
    this.flush();
    for (let guard = 0; ; guard++) {
      if (guard > 1_000_000) throw new Error('expected timers to settle, got an endless loop');
      const next = this.nextDeadline();
      if (next > end) break;
      this.clock.advanceTo(next);
      this.tick();
    }
    this.clock.advanceTo(end);
  }
}

/** Adds `prefix` (text) to an engine's allowed IPs for `peer`. */
export function route(engine: Engine, peer: Peer, prefix: string): void {
  const p = parsePrefix(prefix);
  if (p === undefined) throw new RangeError(`expected a prefix, got ${prefix}`);
  engine.allowedIps.insert(p.ip, p.cidr, peer);
}

/** Parses an address or throws. */
export function ip(text: string): Uint8Array {
  const b = parseIp(text);
  if (b === undefined) throw new RangeError(`expected an address, got ${text}`);
  return b;
}
