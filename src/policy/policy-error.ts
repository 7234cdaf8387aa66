// The one error a policy from the control plane can raise: a rule (or the envelope around the
// rules) that is not well formed. It names the rule index and field so an operator can find it.

import { PlexdError, type PlexdErrorOptions } from '../errors.js';

/** Stable codes of PolicyError (docs/policy.md). */
const POLICY_ERROR_CODES = ['ERR_POLICY_INVALID'] as const;
export type PolicyErrorCode = (typeof POLICY_ERROR_CODES)[number];

/**
 * A policy document that cannot be applied. `ruleIndex` is the 0-based index in `rules` (absent
 * for envelope fields), `field` the offending key (`source_cidr`, `ports.from`, ...).
 */
export class PolicyError extends PlexdError<PolicyErrorCode> {
  static readonly codes = POLICY_ERROR_CODES;
  readonly ruleIndex: number | undefined;
  readonly field: string;

  constructor(field: string, ruleIndex: number | undefined, message: string, options?: PlexdErrorOptions) {
    super('ERR_POLICY_INVALID', `${ruleIndex === undefined ? field : `rules[${ruleIndex}].${field}`}: ${message}`, options);
    this.field = field;
    this.ruleIndex = ruleIndex;
  }
}
