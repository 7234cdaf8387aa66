// Bad group input in a policy body (parsePolicyRules): each refusal names its rule and field.

import { describe, expect, it } from 'vitest';
import { parsePolicyRules } from '../../src/control-plane/policy.js';

const rule = (extra: Record<string, unknown>) => ({ rules: [{ action: 'allow', protocol: 'any', ports: null, source_cidr: '10.100.0.0/16', destination_cidr: '10.100.0.0/16', ...extra }] });

describe('parsePolicyRules refuses bad groups', () => {
  it.each([
    ['a non-string selector', { source_cidr: undefined, source_group: 7 }, 'rules[0].source_group', /label selector string/],
    ['cidr and group on one side', { destination_group: 'role=db' }, 'rules[0].destination_group', /either destination_cidr or destination_group, got both/],
    ['a malformed selector', { source_cidr: undefined, source_group: 'role' }, 'rules[0].source_group', /expected a label key=value.*got "role"/],
  ])('%s', (_what, extra, field, message) => {
    const r = parsePolicyRules(rule(extra));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const hit = r.errors.find((e) => e.field === field);
    expect(hit, JSON.stringify(r.errors)).toBeDefined();
    expect(hit!.message).toMatch(message);
  });

  it('accepts a well-formed group in place of a cidr', () => {
    const r = parsePolicyRules(rule({ source_cidr: undefined, source_group: 'role=web,env=prod' }));
    expect(r).toMatchObject({ ok: true, value: [{ source_group: 'role=web,env=prod' }] });
  });
});
