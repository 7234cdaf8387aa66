// Rule parsing: unknown fields ignored, values checked, errors naming rule index and field; the
// wire contract's parsed Policy (src/api) is accepted as is and means the same.

import { describe, expect, it } from 'vitest';
import { parseStateResponse } from '../../src/api/parse.js';
import { PolicyError } from '../../src/policy/policy-error.js';
import { parsePolicy, parseRule } from '../../src/policy/rules.js';

const OK = { action: 'allow', protocol: 'tcp', source_cidr: '10.100.0.1/32', destination_cidr: '10.100.0.0/16', ports: { from: 22, to: 22 } };

function errorOf(fn: () => unknown): PolicyError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PolicyError) return err;
    throw err;
  }
  throw new Error('expected a PolicyError');
}

describe('parsePolicy', () => {
  it('parses a revision, ignoring unknown fields and clearing host bits', () => {
    const p = parsePolicy({ revision_id: 'rev-7', fingerprint: 'abc', extra: 1, rules: [{ ...OK, note: 'x', destination_cidr: '10.100.3.4/16' }] });
    expect(p.revisionId).toBe('rev-7');
    expect(p.fingerprint).toBe('abc');
    expect(p.rules[0]).toMatchObject({ action: 'allow', protocol: 'tcp', ports: { from: 22, to: 22 } });
    expect(p.rules[0]!.destination.text).toBe('10.100.0.0/16');
    expect(p.rules[0]!.source.text).toBe('10.100.0.1/32');
    expect(parsePolicy({ revision_id: 42 }).revisionId).toBe('42');
    expect(parseRule({ action: 'deny', source_cidr: 'FD00::1:0/112', destination_cidr: '::/0' }, 0).source.text).toBe('fd00::1:0/112');
  });

  it('defaults missing fields as the wire contract does: protocol any, 0.0.0.0/0, every port', () => {
    const r = parseRule({ action: 'deny', ports: null }, 3);
    expect([r.protocol, r.source.text, r.destination.text, r.ports]).toEqual(['any', '0.0.0.0/0', '0.0.0.0/0', undefined]);
  });

  it('names the rule index and field of every bad value', () => {
    const cases: Array<[unknown, number | undefined, string]> = [
      [{ rules: [OK], fingerprint: 'f' }, undefined, 'revision_id'],
      [{ revision_id: '', rules: [] }, undefined, 'revision_id'],
      [{ revision_id: 1, fingerprint: 5 }, undefined, 'fingerprint'],
      [{ revision_id: 1, rules: {} }, undefined, 'rules'],
      [{ revision_id: 1, rules: [OK, 'x'] }, 1, 'rule'],
      [{ revision_id: 1, rules: [OK, { ...OK, action: 'ALLOW' }] }, 1, 'action'],
      [{ revision_id: 1, rules: [{ ...OK, protocol: 'sctp' }] }, 0, 'protocol'],
      [{ revision_id: 1, rules: [OK, OK, { ...OK, source_cidr: '10.0.0.0/33' }] }, 2, 'source_cidr'],
      [{ revision_id: 1, rules: [{ ...OK, destination_cidr: 'fd00::/8' }] }, 0, 'destination_cidr'],
      [{ revision_id: 1, rules: [{ ...OK, destination_cidr: 7 }] }, 0, 'destination_cidr'],
      [{ revision_id: 1, rules: [{ ...OK, ports: { from: 80, to: 79 } }] }, 0, 'ports.to'],
      [{ revision_id: 1, rules: [{ ...OK, ports: { from: -1, to: 79 } }] }, 0, 'ports.from'],
      [{ revision_id: 1, rules: [{ ...OK, ports: { from: 1, to: 65536 } }] }, 0, 'ports.to'],
      [{ revision_id: 1, rules: [{ ...OK, ports: { from: 1.5, to: 2 } }] }, 0, 'ports.from'],
      [{ revision_id: 1, rules: [{ ...OK, ports: '22' }] }, 0, 'ports'],
      [{ revision_id: 1, rules: [{ ...OK, protocol: 'icmp' }] }, 0, 'ports'],
      ['policy', undefined, 'policy'],
    ];
    for (const [input, index, field] of cases) {
      const err = errorOf(() => parsePolicy(input));
      expect({ index: err.ruleIndex, field: err.field, code: err.code }).toEqual({ index, field, code: 'ERR_POLICY_INVALID' });
      expect(err.message).toContain(index === undefined ? field : `rules[${index}].${field}`);
    }
  });

  it('accepts the policy block the wire contract parses from a state response', () => {
    const state = parseStateResponse({ node_id: 'n', peers: [], policy: { revision_id: 'r9', fingerprint: 'ff', rules: [OK, { action: 'deny', protocol: 'any' }] } });
    expect(state.ok).toBe(true);
    if (!state.ok || state.value.policy === null) throw new Error('unreachable');
    const p = parsePolicy(state.value.policy);
    expect(p.rules.map((r) => `${r.action} ${r.protocol} ${r.source.text}`)).toEqual(['allow tcp 10.100.0.1/32', 'deny any 0.0.0.0/0']);
  });
});
