import { describe, expect, it } from 'vitest';
import {
  decodeBase64,
  parseCapabilitiesRequest,
  parseDeregisterRequest,
  parseEndpoint,
  parseEndpointRequest,
  parseEndpointResponse,
  parseExecutionReport,
  parseHeartbeatRequest,
  parseHeartbeatResponse,
  parseKeyRotateRequest,
  parseKeyRotateResponse,
  parseProblem,
  parseRegisterRequest,
  parseRegisterResponse,
  parseRfc3339,
  parseRules,
  parseStateResponse,
  problem,
  type ParseResult,
} from '../../src/api/index.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
const NODE = '0f8fad5b-d9cb-469f-a165-70867728950e';

function fields<T>(r: ParseResult<T>): string[] {
  return r.ok ? [] : r.errors.map((e) => e.field).sort();
}

const register = {
  project_id: 'default',
  resource_handle: 'web-1',
  bootstrap_token: 'pbt_abc',
  nonce: '9B2C1A0E-1111-4222-8333-444455556666',
  public_key: KEY,
};

describe('request parsers', () => {
  it('register: accepts a good body, ignores unknown fields, lowercases the nonce', () => {
    const r = parseRegisterRequest({ ...register, future: { x: 1 } });
    expect(r).toEqual({ ok: true, value: { ...register, nonce: register.nonce.toLowerCase() } });
  });

  it('register: optional mode, checked when present', () => {
    expect(parseRegisterRequest({ ...register, mode: 'bridge' }).ok && parseRegisterRequest({ ...register, mode: 'bridge' })).toMatchObject({ value: { mode: 'bridge' } });
    expect(fields(parseRegisterRequest({ ...register, mode: 'router' }))).toEqual(['mode']);
  });

  it('register: names every bad field', () => {
    expect(fields(parseRegisterRequest({}))).toEqual(['bootstrap_token', 'nonce', 'project_id', 'public_key', 'resource_handle']);
    expect(fields(parseRegisterRequest({ ...register, nonce: 'x', public_key: Buffer.alloc(31).toString('base64') }))).toEqual(['nonce', 'public_key']);
    expect(fields(parseRegisterRequest({ ...register, bootstrap_token: 'a'.repeat(513) }))).toEqual(['bootstrap_token']);
    expect(fields(parseRegisterRequest({ ...register, bootstrap_token: 'has space' }))).toEqual(['bootstrap_token']);
    expect(fields(parseRegisterRequest({ ...register, project_id: 12 }))).toEqual(['project_id']);
    expect(fields(parseRegisterRequest({ ...register, resource_handle: '' }))).toEqual(['resource_handle']);
  });

  it('register: resource_handle is printable and at most 253 characters (it reaches terminals)', () => {
    for (const bad of ['evil\x1b[2Jhost', 'nul\0byte', 'line\nbreak', 'tab\there', 'del\x7f', 'c1\x9b31m', 'bidi\u202eexe.txt', 'zw\u200bsp', 'lone\ud800', 'sep\u2028', 'x'.repeat(254)]) {
      expect([bad, fields(parseRegisterRequest({ ...register, resource_handle: bad }))]).toEqual([bad, ['resource_handle']]);
    }
    for (const good of ['web-1', 'db.example.com', 'Büro Rechner 3', 'サーバー', 'x'.repeat(253), 'emoji 😀']) {
      expect([good, fields(parseRegisterRequest({ ...register, resource_handle: good }))]).toEqual([good, []]);
    }
  });

  it('every parser survives hostile roots without throwing', () => {
    const parsers = [
      parseRegisterRequest, parseHeartbeatRequest, parseEndpointRequest, parseKeyRotateRequest,
      parseCapabilitiesRequest, parseExecutionReport, parseRegisterResponse, parseHeartbeatResponse,
      parseEndpointResponse, parseStateResponse, parseKeyRotateResponse, parseRules,
    ];
    const deep: unknown = JSON.parse('['.repeat(1000) + ']'.repeat(1000));
    for (const p of parsers) {
      for (const junk of [null, 0, 'x', true, deep]) {
        expect(() => p(junk)).not.toThrow();
        expect(p(junk).ok, `${p.name} ${String(junk)}`).toBe(false);
      }
    }
    // Inherited properties are not fields.
    const inherited = Object.create({ ...register }) as object;
    expect(fields(parseRegisterRequest(inherited))).toHaveLength(5);
    expect(parseDeregisterRequest(undefined)).toEqual({ ok: true, value: {} });
    expect(parseDeregisterRequest([]).ok).toBe(false);
  });

  it('heartbeat: nat_summary optional, client_now must be RFC 3339', () => {
    const ok = parseHeartbeatRequest({ client_now: '2025-01-01T00:00:00Z', binary_checksum: 'ab', binary_version: '0.1' });
    expect(ok).toEqual({ ok: true, value: { client_now: '2025-01-01T00:00:00Z', binary_checksum: 'ab', binary_version: '0.1', nat_summary: {} } });
    const nat = parseHeartbeatRequest({ client_now: '2025-01-01T00:00:00.123456789+02:00', nat_summary: { endpoint: '1.2.3.4:51820', nat_type: 'weird' } });
    expect(nat.ok && nat.value.nat_summary).toEqual({ endpoint: '1.2.3.4:51820', nat_type: 'unknown' });
    expect(fields(parseHeartbeatRequest({ client_now: 'now' }))).toEqual(['client_now']);
    expect(fields(parseHeartbeatRequest({ client_now: '2025-01-01T00:00:00Z', nat_summary: { endpoint: 'x' } }))).toEqual(['nat_summary.endpoint']);
  });

  it('endpoint: ip:port and [v6]:port, unknown nat_type tolerated', () => {
    expect(parseEndpointRequest({ endpoint: '[2001:db8::1]:51820', nat_type: 'symmetric', reported_at: '2025-01-01T00:00:00Z' }).ok).toBe(true);
    expect(parseEndpointRequest({ endpoint: '1.2.3.4:1', nat_type: 'new_kind' })).toEqual({ ok: true, value: { endpoint: '1.2.3.4:1', nat_type: 'unknown', reported_at: '' } });
    for (const bad of ['1.2.3.4', '1.2.3.4:0', '1.2.3.4:65536', 'host:80', '::1:80', '[::1]80', '1.2.3.4:+80']) {
      expect(fields(parseEndpointRequest({ endpoint: bad })), bad).toEqual(['endpoint']);
    }
    expect(parseEndpoint('[::1]:80')).toEqual({ host: '::1', port: 80 });
  });

  it('executions: status transitions and optional fields', () => {
    expect(parseExecutionReport({ status: 'succeeded', exit_code: 0, output: { inline: 'b2s=' } })).toEqual({ ok: true, value: { status: 'succeeded', exit_code: 0, output: { inline: 'b2s=' } } });
    expect(parseExecutionReport({ status: 'started', declared_output_bytes: 20000 })).toEqual({ ok: true, value: { status: 'started', declared_output_bytes: 20000 } });
    expect(fields(parseExecutionReport({ status: 'succeeded', output: 'ok' }))).toEqual(['output']);
    expect(fields(parseExecutionReport({ status: 'succeeded', output: { inline: 'not base64!' } }))).toEqual(['output.inline']);
    expect(fields(parseExecutionReport({ status: 'succeeded', output: { object_key: 'k', sha256: 'XYZ' } }))).toEqual(['output.sha256']);
    expect(fields(parseExecutionReport({ status: 'started', declared_output_bytes: -1 }))).toEqual(['declared_output_bytes']);
    expect(fields(parseExecutionReport({ status: 'pending' }))).toEqual(['status']);
    expect(fields(parseExecutionReport({ status: 'failed', exit_code: 1.5 }))).toEqual(['exit_code']);
  });

  it('capabilities and key rotation', () => {
    expect(parseCapabilitiesRequest({})).toEqual({ ok: true, value: { features: [] } });
    expect(parseCapabilitiesRequest({ features: ['relay', 'psk'], os: 'linux' })).toEqual({ ok: true, value: { features: ['relay', 'psk'], os: 'linux' } });
    expect(fields(parseCapabilitiesRequest({ features: ['ok', 7] }))).toEqual(['features[1]']);
    expect(fields(parseCapabilitiesRequest({ features: Array(300).fill('x') }))).toEqual(['features']);
    expect(parseKeyRotateRequest({ new_public_key: KEY }).ok).toBe(true);
    expect(fields(parseKeyRotateRequest({ new_public_key: 'nope' }))).toEqual(['new_public_key']);
  });

  it('rules: a policy file as an array or {rules}', () => {
    const rule = { action: 'allow', protocol: 'tcp', source_cidr: '10.100.0.0/16', destination_cidr: '10.100.0.5/32', ports: { from: 22, to: 22 } };
    expect(parseRules([rule])).toEqual({ ok: true, value: [rule] });
    expect(parseRules({ rules: [{ action: 'deny' }] })).toEqual({
      ok: true,
      value: [{ action: 'deny', protocol: 'any', source_cidr: '0.0.0.0/0', destination_cidr: '0.0.0.0/0', ports: null }],
    });
    expect(fields(parseRules([{ ...rule, action: 'maybe', ports: { from: 9, to: 1 }, source_cidr: '10.0.0.0/33' }]))).toEqual([
      'rules[0].action', 'rules[0].ports', 'rules[0].source_cidr',
    ]);
  });
});

describe('response parsers', () => {
  const peer = { node_id: NODE, mesh_ip: '10.100.0.2', public_key: KEY, psk: KEY, endpoint: '192.0.2.1:51820' };

  it('register response with a peer snapshot', () => {
    const body = { node_id: NODE, mesh_ip: '10.100.0.1', signing_public_key: KEY, signing_key_id: 'k1', nsk: KEY, peer_snapshot: [peer], domain_mesh_cidr: '10.100.0.0/16' };
    expect(parseRegisterResponse(body)).toEqual({ ok: true, value: body });
    expect(parseRegisterResponse({ ...body, peer_snapshot: undefined }).ok).toBe(true);
    expect(fields(parseRegisterResponse({ ...body, peer_snapshot: [{ ...peer, mesh_ip: 'x' }] }))).toEqual(['peer_snapshot[0].mesh_ip']);
  });

  it('state: peer candidates are endpoints, at most 16', () => {
    const ok = parseStateResponse({ peers: [{ ...peer, candidates: ['10.0.0.2:51820', '[fd00::2]:51820'] }] });
    expect(ok.ok && ok.value.peers[0]?.candidates).toEqual(['10.0.0.2:51820', '[fd00::2]:51820']);
    const none = parseStateResponse({ peers: [{ ...peer, candidates: null }] });
    expect(none.ok && none.value.peers[0]).not.toHaveProperty('candidates');
    expect(fields(parseStateResponse({ peers: [{ ...peer, candidates: ['10.0.0.2:51820', 'nope'] }] }))).toEqual(['peers[0].candidates[1]']);
    expect(fields(parseStateResponse({ peers: [{ ...peer, candidates: Array(17).fill('10.0.0.2:1') }] }))).toEqual(['peers[0].candidates']);
    expect(fields(parseStateResponse({ peers: [{ ...peer, candidates: '10.0.0.2:1' }] }))).toEqual(['peers[0].candidates']);
  });

  it('state: null blocks, missing lists, lenient peers', () => {
    expect(parseStateResponse({ peers: [{ ...peer, endpoint: '' }], policy: null, bridge: null })).toEqual({
      ok: true,
      value: { node_id: '', mesh_ip: '', peers: [{ node_id: NODE, mesh_ip: '10.100.0.2', public_key: KEY, psk: KEY }], policy: null, bridge: null, executions: [] },
    });
    const full = parseStateResponse({
      peers: [],
      policy: { revision_id: 'r1', fingerprint: 'f', rules: [] },
      bridge: { relay: { sessions: [{ session_id: 's', peer_a_id: 'a', peer_a_endpoint: '1.1.1.1:1', peer_b_id: 'b', peer_b_endpoint: '2.2.2.2:2', expires_at: '2025-01-01T00:00:00Z' }] } },
      executions: [{ execution_id: 'e', action: 'restart', status: 'pending', parameters: { n: 30, s: 's3://b', o: { k: 'v' }, z: null }, expires_at: '2025-01-01T00:00:00Z' }],
    });
    expect(full.ok).toBe(true);
    if (full.ok) {
      expect(full.value.bridge?.relay?.sessions).toHaveLength(1);
      expect(full.value.executions[0]).toMatchObject({ status: 'pending', type: 'builtin', parameters: { n: '30', s: 's3://b', o: '{"k":"v"}', z: 'null' }, expires_at: '2025-01-01T00:00:00Z' });
      expect(full.value.bridge?.relay?.sessions[0]).not.toHaveProperty('relay_port');
    }
    // relay_port (ours, additive): kept when it is a port, ignored otherwise.
    const session = (relay_port: unknown) => ({ session_id: 's', peer_a_id: 'a', peer_b_id: 'b', expires_at: '2025-01-01T00:00:00Z', relay_port });
    const ports = parseStateResponse({ peers: [], bridge: { relay: { sessions: [51822, 0, 70000, '51823', 1.5, null].map(session) } } });
    expect(ports.ok).toBe(true);
    if (ports.ok) expect(ports.value.bridge?.relay?.sessions.map((x) => x.relay_port)).toEqual([51822, undefined, undefined, undefined, undefined, undefined]);
    // binding_key (ours, additive): kept when it is a 32-byte key; anything else refuses the state
    // rather than leave the session unauthenticated.
    const keyed = (binding_key: unknown) => parseStateResponse({ peers: [], bridge: { relay: { sessions: [{ ...session(51822), binding_key }] } } });
    const good = keyed(KEY);
    expect(good.ok && good.value.bridge?.relay?.sessions[0]?.binding_key).toBe(KEY);
    for (const bad of ['c2hvcnQ=', 42, '', 'not base64!']) expect(fields(keyed(bad))).toEqual(['bridge.relay.sessions[0].binding_key']);
  });

  it('heartbeat, endpoint and rotate responses', () => {
    expect(parseHeartbeatResponse({ accepted_at: '2025-01-01T00:00:00Z' })).toEqual({ ok: true, value: { accepted_at: '2025-01-01T00:00:00Z', reconcile: false, rotate_keys: false } });
    expect(parseEndpointResponse({ accepted_at: '2025-01-01T00:00:00Z', stale_after: 120 })).toEqual({ ok: true, value: { accepted_at: '2025-01-01T00:00:00Z', stale_after: 120 } });
    expect(parseEndpointResponse({ accepted_at: '2025-01-01T00:00:00Z', stale_after: '2025-01-01T00:02:00Z' })).toEqual({ ok: true, value: { accepted_at: '2025-01-01T00:00:00Z', stale_after: 120 } });
    expect(fields(parseEndpointResponse({ accepted_at: '2025-01-01T00:00:00Z', stale_after: -1 }))).toEqual(['stale_after']);
    expect(parseKeyRotateResponse({ rotation_id: 'r', kid: 'k' })).toEqual({ ok: true, value: { rotation_id: 'r', kid: 'k', wrap_key_version: 0 } });
  });
});

describe('problem+json and helpers', () => {
  it('builds problems with the code and its status', () => {
    expect(problem('token_consumed', 'used')).toEqual({ type: 'urn:plexd:problem:token_consumed', title: 'Token consumed', status: 409, code: 'token_consumed', detail: 'used' });
    expect(problem('clock_skew').status).toBe(400);
    expect(problem('signed_event_bus_not_provisioned').status).toBe(501);
  });

  it('reads any server problem leniently', () => {
    expect(parseProblem({ code: 'token_expired', status: 401, detail: 'x' }, 401)).toMatchObject({ code: 'token_expired', status: 401, detail: 'x' });
    expect(parseProblem('<html>', 502)).toEqual({ type: 'about:blank', title: '', status: 502, code: 'unknown' });
  });

  it('RFC 3339 and base64 are strict', () => {
    expect(parseRfc3339('2025-01-01T00:00:00Z')).toBe(Date.UTC(2025, 0, 1));
    expect(parseRfc3339('2025-01-01T02:00:00.5+02:00')).toBe(Date.UTC(2025, 0, 1) + 500);
    for (const bad of ['2025-01-01', '2025-13-01T00:00:00Z', '2025-01-01T00:00:00', 'Wed, 01 Jan 2025 00:00:00 GMT', '']) {
      expect(parseRfc3339(bad), bad).toBeUndefined();
    }
    expect(decodeBase64(KEY, 32)).toHaveLength(32);
    expect(decodeBase64(KEY.replace(/=+$/, ''), 32)).toHaveLength(32);
    expect(decodeBase64(KEY, 31)).toBeUndefined();
    expect(decodeBase64('AAF=', 2)).toBeUndefined();
    expect(decodeBase64('AAE=', 2)).toHaveLength(2);
    expect(decodeBase64('AA-_', 3)).toBeUndefined();
  });
});
