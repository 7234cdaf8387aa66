// The policy filter of the data path (docs/policy.md): decides each packet entering the tunnel
// (outbound) or leaving it toward the TUN (inbound) against the policy revision in force, with
// connection tracking so replies to allowed flows pass. Pure: no I/O, time passed in.

import { CompiledPolicy } from './compiled-policy.js';
import {
  CT_ICMP_ECHO,
  CT_STATE_NAMES,
  CT_TCP_CLOSING,
  CT_TCP_ESTABLISHED,
  CT_TCP_SYN_SENT,
  CT_UDP_ASSURED,
  CT_UDP_NEW,
  Conntrack,
  DEFAULT_CONNTRACK_TIMEOUTS,
  type ConntrackTimeouts,
} from './conntrack.js';
import { POLICY_DROP_REASONS, type PolicyDropReason } from './drop-reasons.js';
import {
  CLASS_ICMP,
  CLASS_TCP,
  CLASS_UDP,
  ICMP_ECHO_REQUEST,
  ICMP_OTHER,
  PROTO_TCP,
  PROTO_UDP,
  PacketMeta,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  readPacket,
} from './packet-meta.js';
import type { Policy } from './rules.js';

/** What the Device asks of a packet filter; true lets the packet through. */
export interface PacketFilter {
  /** A packet from the TUN about to be encrypted toward a peer. */
  outbound(packet: Uint8Array, now: number): boolean;
  /** A decrypted packet from peer `peerPublicKey` about to be written to the TUN. */
  inbound(packet: Uint8Array, peerPublicKey: Uint8Array, now: number): boolean;
}

/** Options of a PolicyFilter. */
export interface PolicyFilterOptions {
  /** What happens while no policy was ever applied: 'allow' (default, mesh mode) or 'deny'. */
  readonly defaultAction?: 'allow' | 'deny';
  /** Most flows tracked at once (default 65,536). New flows beyond it drop as 'conntrack-full'. */
  readonly conntrackMax?: number;
  /** Idle timeouts per flow state, ms (defaults: DEFAULT_CONNTRACK_TIMEOUTS). */
  readonly timeouts?: Partial<ConntrackTimeouts>;
  /** Seed of the flow hash; pass a random 32-bit value so peers cannot aim at one bucket. */
  readonly hashSeed?: number;
}

/** One rule with its counters, as `plexd-userspace policies` and /healthz show it. */
export interface PolicyRuleSnapshot {
  readonly index: number;
  readonly action: string;
  readonly protocol: string;
  readonly source: string;
  readonly destination: string;
  /** "22" or "8000-8999", null for every port. */
  readonly ports: string | null;
  /**
   * Packets and bytes this rule decided, both directions: new flows, untracked packets, and the
   * first packet of a tracked flow after an update. Packets passing as part of a flow do not count.
   */
  readonly packets: number;
  readonly bytes: number;
}

/** The filter's state for operators and the control plane. Plain JSON data. */
export interface PolicySnapshot {
  /** 'enforcing' once a policy was applied; before that 'default-allow' or 'default-deny'. */
  readonly mode: 'enforcing' | 'default-allow' | 'default-deny';
  /** Revision and fingerprint in force (null before the first policy), for reporting upstream. */
  readonly revisionId: string | null;
  readonly fingerprint: string | null;
  /** Policy revisions applied since start. */
  readonly revisionsApplied: number;
  readonly rules: readonly PolicyRuleSnapshot[];
  /** Packets passed, per direction, and how many of them passed as part of a tracked flow. */
  readonly accepted: { readonly outbound: number; readonly inbound: number; readonly tracked: number };
  /** Drops per reason since start (all revisions). */
  readonly drops: Readonly<Record<PolicyDropReason, number>>;
  readonly conntrack: {
    readonly entries: number;
    readonly max: number;
    readonly created: number;
    readonly expired: number;
    readonly removed: number;
    readonly byState: Readonly<Record<string, number>>;
  };
  /** Bytes held by the compiled rule sets (0 without a policy). */
  readonly compiledBytes: number;
}

const DIR_OUT = 0;
const DIR_IN = 1;
const REASON_INDEX = new Map<PolicyDropReason, number>(POLICY_DROP_REASONS.map((r, i) => [r, i]));
const REASON_REVOKED = REASON_INDEX.get('revoked')!;
const REASON_RULE_DENY = REASON_INDEX.get('rule-deny')!;
const REASON_DEFAULT_DENY = REASON_INDEX.get('default-deny')!;
const REASON_NO_POLICY = REASON_INDEX.get('no-policy')!;
const REASON_MALFORMED = REASON_INDEX.get('malformed-ip')!;
const REASON_FULL = REASON_INDEX.get('conntrack-full')!;

/**
 * A stateful first-match-wins packet filter over plexd policy rules. `apply` swaps in a new
 * revision in one assignment; tracked flows are re-checked against it lazily, on their next
 * packet, and cut ('revoked') if it no longer allows them. Hostile packets never throw.
 */
export class PolicyFilter implements PacketFilter {
  readonly defaultAction: 'allow' | 'deny';
  readonly #conntrack: Conntrack;
  readonly #meta = new PacketMeta();
  readonly #scratch = new Uint8Array(32);
  readonly #drops = new Float64Array(POLICY_DROP_REASONS.length);
  readonly #accepted = new Float64Array(3);
  // Everything a decision reads from a revision lives in this one object: swapping it is atomic.
  #active: CompiledPolicy | undefined;
  #generation = 0;

  /** Throws TypeError/RangeError for bad options. */
  constructor(options: PolicyFilterOptions = {}) {
    const def = options.defaultAction ?? 'allow';
    if (def !== 'allow' && def !== 'deny') throw new TypeError(`expected defaultAction 'allow' or 'deny', got ${String(def)}`);
    this.defaultAction = def;
    this.#conntrack = new Conntrack(options.conntrackMax ?? 65_536, { ...DEFAULT_CONNTRACK_TIMEOUTS, ...options.timeouts }, options.hashSeed);
  }

  /**
   * Makes `policy` (from parsePolicy) the revision in force. Compiles first, then swaps in one
   * assignment; per-rule counters start at zero for the new revision.
   */
  apply(policy: Policy): void {
    const compiled = new CompiledPolicy(policy);
    this.#generation = (this.#generation + 1) | 0;
    this.#active = compiled;
  }

  /**
   * Drops the revision in force: `defaultAction` decides again (a control plane's `null` policy
   * under deny by default). Tracked flows are not consulted without a revision.
   */
  clear(): void {
    this.#generation = (this.#generation + 1) | 0;
    this.#active = undefined;
  }

  /** The revision in force, or undefined before the first apply (or after clear). */
  get policy(): Policy | undefined {
    return this.#active?.policy;
  }

  /** See PacketFilter.outbound. */
  outbound(packet: Uint8Array, now: number): boolean {
    return this.#decide(packet, DIR_OUT, now);
  }

  /** See PacketFilter.inbound. The peer is not consulted: allowed IPs already bind its sources. */
  inbound(packet: Uint8Array, _peerPublicKey: Uint8Array, now: number): boolean {
    return this.#decide(packet, DIR_IN, now);
  }

  /** Drops so far for `reason`. */
  dropCount(reason: PolicyDropReason): number {
    return this.#drops[REASON_INDEX.get(reason)!]!;
  }

  #drop(reason: number): false {
    this.#drops[reason]!++;
    return false;
  }

  #accept(dir: number, tracked: boolean): true {
    this.#accepted[dir]!++;
    if (tracked) this.#accepted[2]!++;
    return true;
  }

  #decide(packet: Uint8Array, dir: number, now: number): boolean {
    const policy = this.#active;
    if (policy === undefined) {
      return this.defaultAction === 'allow' ? this.#accept(dir, false) : this.#drop(REASON_NO_POLICY);
    }
    const m = this.#meta;
    if (!readPacket(packet, m)) return this.#drop(REASON_MALFORMED);
    const ct = this.#conntrack;
    const tracked = m.klass === CLASS_TCP || m.klass === CLASS_UDP || (m.klass === CLASS_ICMP && m.icmpKind !== ICMP_OTHER);
    if (tracked) {
      const hit = ct.lookup(m, dir, now);
      if (hit >= 0) return this.#onFlow(policy, hit >>> 1, (hit & 1) === 1, dir, packet.length, now);
    }
    // A new flow, or a packet that is never tracked: the rules decide.
    const rule = policy.match(m.family, packet, m.srcOffset, m.dstOffset, m.klass, m.dport);
    if (!policy.decide(rule, packet.length)) {
      if (m.special !== undefined) return this.#drop(REASON_INDEX.get(m.special)!);
      return this.#drop(rule < 0 ? REASON_DEFAULT_DENY : REASON_RULE_DENY);
    }
    if (!tracked) return this.#accept(dir, false);
    let state: number;
    if (m.klass === CLASS_TCP) {
      const f = m.tcpFlags;
      if ((f & TCP_RST) !== 0) return this.#accept(dir, false); // nothing to track
      // A SYN opens a flow; anything else allowed is picked up mid-stream (e.g. after a restart).
      state = (f & (TCP_SYN | TCP_ACK)) === TCP_SYN ? CT_TCP_SYN_SENT : (f & TCP_FIN) !== 0 ? CT_TCP_CLOSING : CT_TCP_ESTABLISHED;
    } else if (m.klass === CLASS_UDP) {
      state = CT_UDP_NEW;
    } else {
      // Only an echo request opens an ICMP flow; an allowed echo reply passes untracked.
      if (m.icmpKind !== ICMP_ECHO_REQUEST) return this.#accept(dir, false);
      state = CT_ICMP_ECHO;
    }
    if (ct.insert(m, dir, state, this.#generation, now) < 0) return this.#drop(REASON_FULL);
    return this.#accept(dir, false);
  }

  /** A packet of tracked flow `e` (`reply`: travelling against the flow's first packet). */
  #onFlow(policy: CompiledPolicy, e: number, reply: boolean, dir: number, length: number, now: number): boolean {
    const ct = this.#conntrack;
    if (ct.genOf(e) !== this.#generation && !this.#revalidate(policy, e, length)) {
      ct.remove(e);
      return this.#drop(REASON_REVOKED);
    }
    const m = this.#meta;
    const state = ct.stateOf(e);
    if (m.klass === CLASS_TCP) {
      const f = m.tcpFlags;
      if ((f & TCP_RST) !== 0) {
        ct.remove(e);
      } else if (state === CT_TCP_SYN_SENT) {
        // RFC 9293 3.5: the answer to a SYN is SYN-ACK; until then stay here.
        ct.touch(e, reply && (f & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK) ? CT_TCP_ESTABLISHED : CT_TCP_SYN_SENT, now);
      } else if ((f & TCP_FIN) !== 0 || state === CT_TCP_CLOSING) {
        // A fresh SYN from the opener on a closing flow reuses the ports for a new connection.
        const reopen = !reply && (f & (TCP_SYN | TCP_ACK | TCP_FIN)) === TCP_SYN;
        ct.touch(e, reopen ? CT_TCP_SYN_SENT : CT_TCP_CLOSING, now);
      } else {
        ct.touch(e, CT_TCP_ESTABLISHED, now);
      }
    } else if (m.klass === CLASS_UDP) {
      ct.touch(e, reply || state === CT_UDP_ASSURED ? CT_UDP_ASSURED : CT_UDP_NEW, now);
    } else {
      ct.touch(e, CT_ICMP_ECHO, now);
    }
    return this.#accept(dir, true);
  }

  /**
   * Re-checks flow `e` against the revision in force by its original packet's header fields;
   * the deciding rule counts the current packet (`length` bytes).
   */
  #revalidate(policy: CompiledPolicy, e: number, length: number): boolean {
    const ct = this.#conntrack;
    const scratch = this.#scratch;
    const fd = ct.original(e, scratch);
    const family = fd >>> 16 === 4 ? 4 : 6;
    const proto = ct.protoOf(e);
    const klass = proto === PROTO_TCP ? CLASS_TCP : proto === PROTO_UDP ? CLASS_UDP : CLASS_ICMP;
    if (!policy.decide(policy.match(family, scratch, 0, 16, klass, fd & 0xffff), length)) return false;
    ct.setGen(e, this.#generation);
    return true;
  }

  /** Counters and the revision in force (see PolicySnapshot). Allocates; not for the hot path. */
  snapshot(): PolicySnapshot {
    const active = this.#active;
    const ct = this.#conntrack;
    const drops = {} as Record<PolicyDropReason, number>;
    POLICY_DROP_REASONS.forEach((r, i) => (drops[r] = this.#drops[i]!));
    const byState: Record<string, number> = {};
    CT_STATE_NAMES.forEach((n, i) => (byState[n] = ct.countIn(i)));
    return {
      mode: active !== undefined ? 'enforcing' : this.defaultAction === 'allow' ? 'default-allow' : 'default-deny',
      revisionId: active?.policy.revisionId ?? null,
      fingerprint: active?.policy.fingerprint ?? null,
      revisionsApplied: this.#generation,
      rules: (active?.policy.rules ?? []).map((r, index) => ({
        index,
        action: r.action,
        protocol: r.protocol,
        source: r.source.text,
        destination: r.destination.text,
        ports: r.ports === undefined ? null : r.ports.from === r.ports.to ? String(r.ports.from) : `${r.ports.from}-${r.ports.to}`,
        packets: active!.hitPackets[index]!,
        bytes: active!.hitBytes[index]!,
      })),
      accepted: { outbound: this.#accepted[DIR_OUT]!, inbound: this.#accepted[DIR_IN]!, tracked: this.#accepted[2]! },
      drops,
      conntrack: { entries: ct.size, max: ct.max, ...ct.counters, byState },
      compiledBytes: active?.memoryBytes ?? 0,
    };
  }
}
