// Hooks (src/agent/actions/hooks.ts) and the executions entry parser: names that could leave the
// hooks directory are refused, parameters reach a hook only as environment variables, and a
// malformed entry is refused with a reason while the rest of the state still parses.

import { mkdtempSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { discoverHooks, hookEnv, hookNameProblem, HookRegistry, paramEnvName, runExecutable } from '../../src/agent/actions/hooks.js';
import { redact } from '../../src/agent/actions/builtins.js';
import { parseExecutionEntry, parseStateResponse } from '../../src/api/parse.js';

const dir = mkdtempSync(join(tmpdir(), 'plexd-hooks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('hooks', () => {
  it('refuses names with separators, dot-dot, sidecars or odd leading characters', () => {
    for (const bad of ['../x', 'a/b', 'a\\b', '..', 'x..y', '.hidden', '-rf', 'a.json', '', 'x'.repeat(129), 'a b', 'a\0b']) {
      expect(hookNameProblem(bad), JSON.stringify(bad)).toBeDefined();
    }
    for (const good of ['backup', 'db-backup.sh', 'a_b.1']) expect(hookNameProblem(good)).toBeUndefined();
    const reg = new HookRegistry(dir);
    expect(() => reg.verify('../../bin/sh')).toThrow(/path separator/);
    expect(() => reg.verify('..')).toThrow(/\.\./);
  });

  it('discovers regular executables only, with sidecar metadata, skipping symlinks', () => {
    writeFileSync(join(dir, 'ok.sh'), '#!/bin/sh\necho ok\n', { mode: 0o755 });
    writeFileSync(join(dir, 'ok.sh.json'), JSON.stringify({ description: 'says ok', parameters: [{ name: 'who', required: true }], timeout: '30s' }));
    writeFileSync(join(dir, 'noexec'), 'x', { mode: 0o644 });
    symlinkSync('/bin/sh', join(dir, 'link'));
    mkdirSync(join(dir, 'subdir'));
    const hooks = discoverHooks(dir);
    expect(hooks.map((h) => h.name)).toEqual(['ok.sh']);
    expect(hooks[0]).toMatchObject({ description: 'says ok', source: 'script', timeout: '30s', parameters: [{ name: 'who', required: true }] });
    expect(hooks[0]!.checksum).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('passes parameters only as PLEXD_PARAM_* variables: no shell, no argv', async () => {
    const script = join(dir, 'show');
    writeFileSync(script, '#!/bin/sh\necho "argc=$#"\necho "t=$PLEXD_PARAM_TARGET"\necho "m=$PLEXD_PARAM_MY_PARAM_NAME_"\nenv | grep -c "^" >/dev/null\n', { mode: 0o755 });
    const env = hookEnv({ target: '; rm -rf / `id` $(id)', 'my-param.name!': 'x' }, { nodeId: 'n', executionId: 'e' }, { PATH: '/usr/bin:/bin', HOME: '/root', SECRET: 'no' });
    expect(Object.keys(env).sort()).toEqual(['HOME', 'PATH', 'PLEXD_EXECUTION_ID', 'PLEXD_NODE_ID', 'PLEXD_PARAM_MY_PARAM_NAME_', 'PLEXD_PARAM_TARGET']);
    expect(paramEnvName('a-b')).toBe('PLEXD_PARAM_A_B');
    expect(() => hookEnv({ 'a-b': '1', a_b: '2' }, { nodeId: 'n', executionId: 'e' })).toThrow(/both map to PLEXD_PARAM_A_B/);
    const r = await runExecutable(script, env, dir, new AbortController().signal, 4096);
    expect(r.exitCode).toBe(0);
    expect(r.output.toString()).toBe('argc=0\nt=; rm -rf / `id` $(id)\nm=x\n');
  });

  it('caps output and kills a hook at its deadline', async () => {
    const script = join(dir, 'loud');
    writeFileSync(script, '#!/bin/sh\nhead -c 100000 /dev/zero\nsleep 30\n', { mode: 0o755 });
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 300);
    const t0 = Date.now();
    const r = await runExecutable(script, { PATH: '/usr/bin:/bin' }, dir, ctl.signal, 2048);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.output.length).toBe(2048);
    expect(r.truncated).toBe(true);
    expect(r.error).toBeDefined();
  });

  it('config.dump redacts secrets', () => {
    expect(redact({ registration: { token: 'plx_enroll_x', tokenFile: '/etc/t', tokenEnv: 'X' }, api: { baseUrl: 'u', tlsFingerprint: 'ab' }, nsk: 'k' })).toEqual({
      registration: { token: '[redacted]', tokenFile: '[redacted]', tokenEnv: '[redacted]' }, api: { baseUrl: 'u', tlsFingerprint: 'ab' }, nsk: '[redacted]',
    });
  });
});

describe('executions entries', () => {
  const base = { execution_id: 'e1', action: 'system.info', type: 'builtin', status: 'pending', requested_at: '2026-01-01T00:00:00Z', expires_at: '2026-01-01T00:10:00Z' };
  it('parses upstream entries, flattening parameters', () => {
    const r = parseExecutionEntry({ ...base, parameters: { big: 12345678901234567890, s: 'x', b: true, n: null } });
    expect(r.ok && r.value.parameters).toEqual({ big: '12345678901234567000', s: 'x', b: 'true', n: 'null' });
    expect(parseExecutionEntry({ ...base, parameters: null }).ok).toBe(true);
  });

  it('refuses malformed entries with a reason; the state and the other entries still apply', () => {
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
    const cases: Array<[unknown, RegExp]> = [
      [{ ...base, execution_id: undefined }, /execution_id/],
      [{ ...base, parameters: many }, /more than 64 parameters/],
      [{ ...base, parameters: { k: 'x'.repeat(5000) } }, /longer than 4096/],
      [{ ...base, parameters: { '../x': '1' } }, /parameter name/],
      [{ ...base, parameters: [1, 2] }, /not an object/],
      [{ ...base, status: 'succeeded' }, /status/],
      [{ ...base, checksum: 'md5:abc' }, /checksum/],
      ['not an object', /./],
    ];
    const state = parseStateResponse({ peers: [], policy: null, bridge: null, executions: [...cases.map((c) => c[0]), base] });
    expect(state.ok).toBe(true);
    if (!state.ok) return;
    expect(state.value.executions.map((e) => e.execution_id)).toEqual(['e1']);
    expect(state.value.executions_refused).toHaveLength(cases.length);
    cases.forEach(([, re], i) => expect(state.value.executions_refused![i]!.reason, String(i)).toMatch(re));
    const notList = parseStateResponse({ peers: [], executions: { a: 1 } });
    expect(notList.ok && notList.value.executions_refused).toEqual([{ execution_id: '', reason: 'executions is not a list' }]);
  });
});
