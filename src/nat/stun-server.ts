// STUN Binding server (RFC 8489 section 6.3): answers Binding requests with XOR-MAPPED-ADDRESS
// (+ SOFTWARE, + FINGERPRINT when the request had one), 420 for unknown comprehension-required
// attributes, and drops everything else with a counted reason. Rate-limited per source address
// with the WireGuard handshake limiter (20/s, burst 5). `StunResponder` is the sans-IO part, which
// the relay embeds on its own socket; `createStunServer` puts it on a Bind (UDP or the memory twin).

import { plainAddress } from '../core/endpoint.js';
import { RateLimiter } from '../core/rate-limiter.js';
import { checkPort, type Bind, type Endpoint } from '../io/bind.js';
import { UdpBind } from '../io/bind-udp.js';
import {
  STUN_ATTR,
  STUN_DROP_REASONS,
  STUN_METHOD,
  decodeStun,
  encodeBindingSuccess,
  encodeErrorResponse,
  type StunMessage,
} from './stun-message.js';

/** SOFTWARE we put in responses. */
export const STUN_SOFTWARE = 'plexd-userspace';

/** Why the server did not answer a datagram. */
export const STUN_SERVER_DROP_REASONS = [...STUN_DROP_REASONS, 'not-a-request', 'not-binding', 'rate-limited'] as const;
/** One of STUN_SERVER_DROP_REASONS. */
export type StunServerDropReason = (typeof STUN_SERVER_DROP_REASONS)[number];

/** What to do with one datagram. */
export type StunServerAction = { readonly kind: 'reply'; readonly data: Uint8Array } | { readonly kind: 'drop'; readonly reason: StunServerDropReason };

/** Counters of a responder: answers, 420s and drops per reason. */
export interface StunServerCounters {
  answered: number;
  unknownAttributes: number;
  readonly drops: Record<StunServerDropReason, number>;
}

// Comprehension-required attributes a Binding server may see and safely ignore: credentials (we
// run without authentication, as plexd's servers do) and ICE's.
const IGNORABLE_REQUIRED = new Set<number>([
  STUN_ATTR.USERNAME,
  STUN_ATTR.MESSAGE_INTEGRITY,
  STUN_ATTR.MESSAGE_INTEGRITY_SHA256,
  STUN_ATTR.REALM,
  STUN_ATTR.NONCE,
  0x0024, // PRIORITY (RFC 8445)
  0x0025, // USE-CANDIDATE (RFC 8445)
]);

function unknownRequired(m: StunMessage): number[] {
  const unknown: number[] = [];
  for (const a of m.attributes) {
    if (a.type < 0x8000 && !IGNORABLE_REQUIRED.has(a.type) && !unknown.includes(a.type)) unknown.push(a.type);
  }
  return unknown;
}

/** Options of {@link StunResponder}. */
export interface StunResponderOptions {
  /** SOFTWARE text; null for none. Default STUN_SOFTWARE. */
  readonly software?: string | null;
  /** Rate-limit per source address (default true). */
  readonly rateLimit?: boolean;
}

/** The sans-IO server: a datagram and its source in, a reply or a drop reason out. */
export class StunResponder {
  readonly counters: StunServerCounters;
  readonly #software: string | undefined;
  readonly #limiter: RateLimiter | undefined;

  constructor(options: StunResponderOptions = {}) {
    this.#software = options.software === null ? undefined : (options.software ?? STUN_SOFTWARE);
    this.#limiter = options.rateLimit === false ? undefined : new RateLimiter();
    const drops = Object.fromEntries(STUN_SERVER_DROP_REASONS.map((r) => [r, 0])) as Record<StunServerDropReason, number>;
    this.counters = { answered: 0, unknownAttributes: 0, drops };
  }

  /** Handles one datagram from `from` at monotonic `nowMs`. Never throws on input. */
  handle(data: Uint8Array, from: Endpoint, nowMs: number): StunServerAction {
    const decoded = decodeStun(data);
    if (!decoded.ok) return this.#drop(decoded.reason);
    return this.handleMessage(decoded.message, from, nowMs);
  }

  /** Like handle() for an already decoded message (the relay decodes first to look for its own attributes). */
  handleMessage(m: StunMessage, from: Endpoint, nowMs: number): StunServerAction {
    if (m.cls !== 'request') return this.#drop('not-a-request');
    if (m.method !== STUN_METHOD.binding) return this.#drop('not-binding');
    if (this.#limiter !== undefined && !this.#limiter.allow(from.address, nowMs)) return this.#drop('rate-limited');
    const fingerprint = m.hasFingerprint;
    const unknown = unknownRequired(m);
    if (unknown.length > 0) {
      // RFC 8489 section 6.3.1.1: 420 with UNKNOWN-ATTRIBUTES.
      this.counters.unknownAttributes++;
      const list = new Uint8Array(unknown.length * 2);
      unknown.forEach((t, i) => {
        list[2 * i] = t >>> 8;
        list[2 * i + 1] = t & 0xff;
      });
      const data = encodeErrorResponse(m.method, m.transactionId, 420, 'Unknown Attribute', {
        attributes: [{ type: STUN_ATTR.UNKNOWN_ATTRIBUTES, value: list }],
        ...(this.#software === undefined ? {} : { software: this.#software }),
        fingerprint,
      });
      return { kind: 'reply', data };
    }
    this.counters.answered++;
    const mapped = { address: plainAddress(from.address), port: from.port };
    return {
      kind: 'reply',
      data: encodeBindingSuccess(m.transactionId, mapped, { ...(this.#software === undefined ? {} : { software: this.#software }), fingerprint }),
    };
  }

  #drop(reason: StunServerDropReason): StunServerAction {
    this.counters.drops[reason]++;
    return { kind: 'drop', reason };
  }
}

/** Options of {@link createStunServer}. */
export interface StunServerOptions extends StunResponderOptions {
  /** Address and port to listen on (port 0: any free port); the address family picks udp4/udp6. */
  readonly listen: Endpoint;
  /** Transport; default a UdpBind on `listen.address` (tests pass a MemoryBind). */
  readonly bind?: Bind;
  /** Monotonic ms for the rate limiter; default performance.now. */
  readonly now?: () => number;
}

/** A running STUN server on one UDP port. */
export interface StunServer {
  /** The bound address and port. */
  readonly address: Endpoint;
  readonly counters: StunServerCounters;
  /** Closes the socket. Idempotent. */
  close(): void;
}

/** A UdpBind on one literal address only (the other family off). */
export function singleAddressBind(address: string): Bind {
  const v6 = address.includes(':');
  return new UdpBind({ ipv4Address: v6 ? null : address, ipv6Address: v6 ? address : null });
}

/**
 * Starts a STUN server on `listen`. Rejects with BindError when the port cannot be bound;
 * throws RangeError for a bad port.
 */
export async function createStunServer(options: StunServerOptions): Promise<StunServer> {
  checkPort(options.listen.port);
  const responder = new StunResponder(options);
  const bind = options.bind ?? singleAddressBind(options.listen.address);
  const now = options.now ?? (() => performance.now());
  bind.onReceive((data, from) => {
    const action = responder.handle(data, from, now());
    if (action.kind === 'reply') bind.send(action.data, from);
  });
  const port = await bind.open(options.listen.port);
  return {
    address: { address: options.listen.address, port },
    counters: responder.counters,
    close: () => bind.close(),
  };
}
