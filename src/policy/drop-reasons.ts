// Why the policy filter refused a packet: a closed list, each counted (docs/STYLE.md item 4).

/** Every reason the policy filter drops a packet for; see docs/policy.md for each. */
export const POLICY_DROP_REASONS = [
  'malformed-ip', // not a readable IPv4/IPv6 header: no addresses to judge (never allowed)
  'fragment', // a non-first fragment: no L4 header (allowed only by an `any` rule without ports)
  'truncated-l4', // TCP/UDP/ICMP header cut short (allowed only by an `any` rule without ports)
  'ext-header', // IPv6 extension headers run past the packet or exceed the walk bound (same)
  'unknown-protocol', // neither TCP, UDP nor ICMP (same)
  'rule-deny', // the first matching rule says deny
  'default-deny', // a policy is in force and no rule matched
  'no-policy', // no policy was ever received and the configured default is deny
  'conntrack-full', // a new flow was allowed but the connection table is full of live flows
  'revoked', // a tracked flow the policy in force no longer allows (cut after an update)
] as const;

/** A counted reason for a policy drop (see POLICY_DROP_REASONS). */
export type PolicyDropReason = (typeof POLICY_DROP_REASONS)[number];
