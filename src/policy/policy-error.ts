// The one error a policy from the control plane can raise: a rule (or the envelope around the
// rules) that is not well formed. It names the rule index and field so an operator can find it.

/** Stable codes of PolicyError (docs/policy.md). */
export type PolicyErrorCode = 'ERR_POLICY_INVALID';

/**
 * A policy document that cannot be applied. `ruleIndex` is the 0-based index in `rules` (absent
 * for envelope fields), `field` the offending key (`source_cidr`, `ports.from`, ...).
 */
export class PolicyError extends Error {
  readonly code: PolicyErrorCode = 'ERR_POLICY_INVALID';
  readonly ruleIndex: number | undefined;
  readonly field: string;

  constructor(field: string, ruleIndex: number | undefined, message: string) {
    super(`${ruleIndex === undefined ? field : `rules[${ruleIndex}].${field}`}: ${message}`);
    this.name = 'PolicyError';
    this.field = field;
    this.ruleIndex = ruleIndex;
  }
}
