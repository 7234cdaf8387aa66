// The agent's side of policy enforcement (docs/policy.md "In the agent"): one PolicyFilter per mesh
// interface, fed the `policy` block of each state pull (plexd-api.md GET /v1/nodes/{id}/state).
// A revision is compiled and swapped in only when its revision_id or fingerprint differs from the
// one in force. Deny by default, as upstream plexd: before any policy, and after a `null` block
// (no policy set), no mesh packet passes; `policy.enabled: false` is the explicit opt-out (allow
// all, blocks ignored). An invalid block is refused and counted, and the previous revision stays
// in force (never fail open on bad input).

import { randomBytes } from 'node:crypto';
import { MAX_RULE_HITS, type Policy as WirePolicy, type RuleHits } from '../api/types.js';
import { PolicyFilter, type PolicySnapshot } from '../policy/filter.js';
import { PolicyError } from '../policy/policy-error.js';
import { parsePolicy } from '../policy/rules.js';

/** What {@link PolicyEnforcer.update} did with a state's policy block. */
export type PolicyUpdate = 'applied' | 'unchanged' | 'absent' | 'cleared' | 'rejected' | 'disabled';

/** The revision in force as the agent reports it upstream (heartbeat `policy`, docs/agent.md). */
export interface PolicyReport {
  readonly revision_id: string | null;
  readonly fingerprint: string | null;
  readonly mode: PolicySnapshot['mode'];
}

/** Owns the interface's PolicyFilter and the last wire policy applied to it. */
export class PolicyEnforcer {
  /** The filter to attach to the Device (Device.create({filter}) or setFilter). */
  readonly filter: PolicyFilter;
  readonly counters = { applied: 0, rejected: 0 };
  /** The last refusal's message (PolicyError names the rule index and field). */
  lastError: string | undefined;
  #wire: WirePolicy | undefined;

  /** False: policy.enabled false, every packet passes and blocks are ignored. */
  readonly enabled: boolean;

  /**
   * `enabled` (default true): deny until a policy is applied and after a `null` one; false: allow
   * all. The flow hash seed is random so peers cannot aim flows at one conntrack chain.
   */
  constructor(opts: { readonly enabled?: boolean; readonly conntrackMax?: number } = {}) {
    this.enabled = opts.enabled ?? true;
    this.filter = new PolicyFilter({
      defaultAction: this.enabled ? 'deny' : 'allow',
      hashSeed: randomBytes(4).readUInt32LE(0),
      ...(opts.conntrackMax !== undefined ? { conntrackMax: opts.conntrackMax } : {}),
    });
  }

  /**
   * Applies `policy` atomically when its revision or fingerprint differs from the one in force.
   * `null` (no policy set) drops the revision in force: deny all ('cleared'). Never throws for
   * bad rules: they are refused ('rejected', counted, lastError set) and the revision in force
   * stays.
   */
  update(policy: WirePolicy | null | undefined): PolicyUpdate {
    if (!this.enabled) return 'disabled';
    if (policy === undefined) return 'absent';
    if (policy === null) {
      if (this.filter.policy === undefined) return 'absent';
      this.filter.clear();
      this.#wire = undefined;
      return 'cleared';
    }
    const cur = this.filter.policy;
    if (cur !== undefined && cur.revisionId === policy.revision_id && cur.fingerprint === policy.fingerprint) return 'unchanged';
    try {
      this.filter.apply(parsePolicy(policy));
    } catch (err) {
      if (!(err instanceof PolicyError)) throw err;
      this.counters.rejected++;
      this.lastError = `revision ${policy.revision_id}: ${err.message}`;
      return 'rejected';
    }
    this.#wire = policy;
    this.counters.applied++;
    return 'applied';
  }

  /** The wire form of the revision in force, for the cached state (undefined before any). */
  get inForce(): WirePolicy | undefined {
    return this.#wire;
  }

  /** Revision, fingerprint and mode in force, for the heartbeat and the status document. */
  report(): PolicyReport {
    const p = this.filter.policy;
    const mode = p !== undefined ? 'enforcing' : this.filter.defaultAction === 'allow' ? 'default-allow' : 'default-deny';
    return { revision_id: p?.revisionId ?? null, fingerprint: p?.fingerprint ?? null, mode };
  }

  /** Packets and bytes each compiled rule decided (by index, at most MAX_RULE_HITS), for the
   *  heartbeat's `rule_hits` (the control plane's dashboard shows them). */
  ruleHits(): RuleHits[] {
    return this.filter.snapshot().rules.slice(0, MAX_RULE_HITS).map((r) => ({ packets: r.packets, bytes: r.bytes }));
  }

  /** The filter's snapshot plus the agent's apply/refusal counters (node API, /healthz). */
  snapshot(): PolicySnapshot & { readonly updates: { applied: number; rejected: number; lastError: string | null } } {
    return { ...this.filter.snapshot(), updates: { ...this.counters, lastError: this.lastError ?? null } };
  }
}
