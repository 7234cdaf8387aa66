// The upstream compatibility matrix (test/compat/upstream-matrix.ts) held against our code: each
// supported config key, environment name and flag parses to upstream's meaning and default; each
// accepted-with-warning one yields a warning naming it and no error; each missing command is
// refused by name (exit 2) instead of being taken for an interface name; the matrix and the
// config table agree both ways; docs/agent.md shows the matrix verbatim
// (UPDATE_COMPAT_DOCS=1 rewrites it).

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import {
  CONFIG_KEYS,
  IGNORED_UPSTREAM_ENV,
  IGNORED_UPSTREAM_FLAGS,
  IGNORED_UPSTREAM_KEYS,
  envName,
  flagName,
  loadConfig,
  parseConfigFlags,
  resolveConfig,
  type AgentConfig,
} from '../../src/agent/config.js';
import { runDeregister, runStatus } from '../../src/cli/agent.js';
import { main } from '../../src/cli/main.js';
import { resolveToken } from '../../src/control/register.js';
import { UPSTREAM_MATRIX, renderMatrix, type CompatEntry } from './upstream-matrix.js';

const BASE = 'http://127.0.0.1:1';
const dir = mkdtempSync(join(tmpdir(), 'plexd-compat-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A YAML document setting the dotted `key` to `value` (a YAML scalar), plus api.base_url. */
function yamlWith(key: string, value: string): string {
  const doc: Record<string, unknown> = {};
  const set = (k: string, v: unknown) => {
    const parts = k.split('.');
    let o = doc;
    for (const p of parts.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
    o[parts.at(-1)!] = v;
  };
  if (key !== 'api.base_url') set('api.base_url', BASE);
  set(key, value === '—' || value.startsWith('(') ? 'x' : parseYaml(value));
  return stringify(doc);
}

function resolve(src: { fileText?: string; env?: Record<string, string>; flags?: Map<string, string> }): { config: AgentConfig; warnings: string[] } {
  const warnings: string[] = [];
  const config = resolveConfig({ env: {}, ...src, warn: (w) => warnings.push(w) });
  return { config, warnings };
}

/** Runs `fn` with stdout and stderr captured; returns the exit code and the text. */
async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += String(c)), true));
  try {
    return { code: await fn(), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

const rows = (kind: CompatEntry['kind'], status: CompatEntry['status']) => UPSTREAM_MATRIX.filter((e) => e.kind === kind && e.status === status);
/** The probe of the config row an env or flag row names with `key`. */
const probeOf = (key: string) => UPSTREAM_MATRIX.find((e) => e.kind === 'config' && e.name === key)!.probe!;

describe('upstream matrix: config keys', () => {
  it.each(rows('config', 'supported').map((e) => [e.name, e] as const))('%s parses to upstream\'s meaning and default', (name, e) => {
    expect(CONFIG_KEYS[name], `${name} is in CONFIG_KEYS`).toBeDefined();
    const p = e.probe!;
    const set = resolve({ fileText: yamlWith(name, p.value) });
    expect(p.read(set.config)).toEqual(p.expect);
    expect(set.warnings).toEqual([]);
    if ('def' in p) expect(p.read(resolve({ fileText: yamlWith('data_dir', '/var/lib/plexd') }).config)).toEqual(p.def);
  });

  it.each(rows('config', 'accepted-with-warning').map((e) => [e.name, e] as const))('%s is accepted with one warning naming it', (name, e) => {
    const r = resolve({ fileText: yamlWith(name, e.upstreamDefault) });
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toContain(name);
  });

  it('every upstream key in our table is in the matrix, and every ignored key is a warning row', () => {
    const matrixConfig = new Set(UPSTREAM_MATRIX.filter((e) => e.kind === 'config').map((e) => e.name));
    const ours = ['api.tls_fingerprint', 'wireguard.packet_callback', 'wireguard.bind_address', 'wireguard.advertise_endpoint', 'nat.candidate_interfaces', 'bridge.acme_ca_file', 'bridge.access_address', 'kubernetes.audit_log_path', 'metrics.spool_max_bytes', 'log_fwd.spool_max_bytes', 'audit_fwd.spool_max_bytes', 'wireguard.netstack', 'netstack.socks5', 'netstack.forward'];
    for (const k of Object.keys(CONFIG_KEYS)) if (!ours.includes(k)) expect(matrixConfig.has(k), k).toBe(true);
    for (const k of IGNORED_UPSTREAM_KEYS.keys) expect(rows('config', 'accepted-with-warning').map((e) => e.name), k).toContain(k);
  });

  it('all ignored keys of one file share one warning', () => {
    const r = resolve({ fileText: `api: {base_url: "${BASE}", connect_timeout: 10s}\nactions: {enabled: true}\nbridge: {enabled: false}\n` });
    expect(r.warnings).toEqual(['config: upstream plexd keys not supported by plexd-userspace, ignored: api.connect_timeout, bridge.enabled']);
  });

  it('wrong types are refused naming the key', () => {
    for (const [text, key] of [
      ['heartbeat: {interval: often}', 'heartbeat.interval'],
      ['policy: {enabled: maybe}', 'policy.enabled'],
      ['registration: {token_env: "not a name"}', 'registration.token_env'],
      ['wireguard: {mtu: 100}', 'wireguard.mtu'],
      ['nat: {refresh_interval: 5s}', 'nat.refresh_interval'],
      ['bridge: {max_relay_sessions: 0}', 'bridge.max_relay_sessions'],
      ['node_api: {socket_path: [a]}', 'node_api.socket_path'],
    ] as const) {
      expect(() => resolve({ fileText: `api: {base_url: "${BASE}"}\n${text}\n` }), text).toThrow(new RegExp(`^config ${key.replace(/\./g, '\\.')}: `));
    }
  });
});

describe('upstream matrix: environment', () => {
  const keyed = rows('env', 'supported').filter((e) => e.key !== undefined);
  it.each(keyed.map((e) => [e.name, e] as const))('%s is honoured with upstream\'s meaning', (name, e) => {
    expect(envName(e.key!)).toBe(name);
    const p = probeOf(e.key!);
    const env: Record<string, string> = { PLEXD_API: BASE, [name]: p.value };
    const r = resolve({ env });
    expect(p.read(r.config)).toEqual(p.expect);
    expect(r.warnings).toEqual([]);
  });

  it('booleans take Go\'s ParseBool spellings, as upstream\'s environment parser', () => {
    for (const v of ['F', 'f', 'FALSE', 'False', '0']) expect(resolve({ env: { PLEXD_API: BASE, PLEXD_POLICY_ENABLED: v } }).config.policy.enabled, v).toBe(false);
    for (const v of ['T', 't', 'TRUE', 'True', '1']) expect(resolve({ env: { PLEXD_API: BASE, PLEXD_POLICY_ENABLED: v } }).config.policy.enabled, v).toBe(true);
  });

  it.each(rows('env', 'accepted-with-warning').map((e) => [e.name] as const))('%s is accepted with a warning naming it', (name) => {
    expect(IGNORED_UPSTREAM_ENV).toContain(name);
    const r = resolve({ env: { PLEXD_API: BASE, [name]: '1' } });
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toContain(name);
  });

  it('PLEXD_BOOTSTRAP_TOKEN is read under the name registration.token_env gives', () => {
    const none = join(dir, 'no-token-file');
    expect(resolveToken({ tokenFile: none, env: { PLEXD_BOOTSTRAP_TOKEN: 'tok-a' } })).toMatchObject({ token: 'tok-a', source: 'env' });
    const c = resolve({ fileText: `api: {base_url: "${BASE}"}\nregistration: {token_env: MY_TOKEN}\n` }).config;
    expect(resolveToken({ tokenFile: none, tokenEnv: c.registration.tokenEnv, env: { PLEXD_BOOTSTRAP_TOKEN: 'tok-a', MY_TOKEN: 'tok-b' } })).toMatchObject({ token: 'tok-b' });
  });

  it('PLEXD_CONFIG names the file when --config is not given, and that file must exist', async () => {
    const file = join(dir, 'env-config.yaml');
    writeFileSync(file, 'api: {base_url: "http://127.0.0.1:1"}\nsurprise: 1\n');
    const before = process.env['PLEXD_CONFIG'];
    try {
      process.env['PLEXD_CONFIG'] = file;
      const r = await capture(() => runStatus([]));
      expect(r.code).toBe(2);
      expect(r.err).toContain('config surprise: unknown key');
      process.env['PLEXD_CONFIG'] = join(dir, 'absent.yaml');
      const missing = await capture(() => runStatus([]));
      expect(missing.code).toBe(2);
      expect(missing.err).toContain('absent.yaml');
    } finally {
      if (before === undefined) delete process.env['PLEXD_CONFIG'];
      else process.env['PLEXD_CONFIG'] = before;
    }
  });

  it('our derived names are gone where upstream has one (PLEXD_API_BASE_URL)', () => {
    expect(() => resolve({ env: { PLEXD_API_BASE_URL: BASE } })).toThrow(/api\.base_url: required \(file, PLEXD_API or --api\)/);
  });

  it('PLEXD_SESSION_TOKEN (not applicable) changes nothing and breaks nothing', () => {
    expect(resolve({ env: { PLEXD_API: BASE, PLEXD_SESSION_TOKEN: 'x' } }).warnings).toEqual([]);
  });
});

describe('upstream matrix: flags and commands', () => {
  const keyed = rows('flag', 'supported').filter((e) => e.key !== undefined);
  it.each(keyed.map((e) => [e.name, e] as const))('%s is accepted with upstream\'s meaning', (name, e) => {
    const flag = name.replace(/^\S+ (?=--)/, '');
    expect(flagName(e.key!)).toBe(flag);
    const p = probeOf(e.key!);
    const f = parseConfigFlags([flag, p.value, ...(flag === '--api' ? [] : ['--api', BASE])]);
    expect(p.read(resolve({ flags: f.flags }).config)).toEqual(p.expect);
    if ('def' in p) expect(p.read(resolve({ flags: new Map([['api.base_url', BASE]]) }).config)).toEqual(p.def);
  });

  it.each(rows('flag', 'accepted-with-warning').map((e) => [e.name] as const))('%s is accepted and reported as ignored', (name) => {
    expect(IGNORED_UPSTREAM_FLAGS).toContain(name);
    expect(parseConfigFlags([name, 'x', '--api', BASE]).ignored).toEqual([name]);
  });

  it('--config names the file; --version prints ours', async () => {
    expect(parseConfigFlags(['--config', '/x.yaml']).configFile).toBe('/x.yaml');
    const v = await capture(() => main(['--version']));
    expect(v.code).toBe(0);
    expect(v.out).toMatch(/^plexd-userspace v/);
  });

  it('deregister --purge is accepted (no identity: exit 1, not a usage error)', async () => {
    const r = await capture(() => runDeregister(['--purge', '--api', BASE, '--data-dir', join(dir, 'empty')]));
    expect(r.code).toBe(1);
    expect(r.err).toContain('not registered');
  });

  it('the default config file may be absent: one warning, then flags, environment and defaults', () => {
    const warnings: string[] = [];
    const c = loadConfig(join(dir, 'no-such.yaml'), new Map([['api.base_url', BASE]]), {}, (w) => warnings.push(w), true);
    expect(c.dataDir).toBe('/var/lib/plexd');
    expect(warnings).toEqual([`config: no file at ${join(dir, 'no-such.yaml')}; running on flags, environment and defaults`]);
    expect(() => loadConfig(join(dir, 'no-such.yaml'), new Map([['api.base_url', BASE]]), {})).toThrow(/cannot read/);
    writeFileSync(join(dir, 'empty.yaml'), '\n');
    expect(() => loadConfig(join(dir, 'empty.yaml'), new Map(), {})).toThrow(/is empty/);
  });

  it.skipIf(existsSync('/etc/plexd/config.yaml'))('up with no file at the default path and no PLEXD_API says both, exit 2', async () => {
    const before = { c: process.env['PLEXD_CONFIG'], a: process.env['PLEXD_API'] };
    delete process.env['PLEXD_CONFIG'];
    delete process.env['PLEXD_API'];
    try {
      const r = await capture(() => main(['up', '--data-dir', join(dir, 'never')]));
      expect(r.code).toBe(2);
      expect(r.err).toBe('plexd-userspace: config: no file at /etc/plexd/config.yaml; running on flags, environment and defaults\nplexd-userspace: config api.base_url: required (file, PLEXD_API or --api)\n');
    } finally {
      if (before.c !== undefined) process.env['PLEXD_CONFIG'] = before.c;
      if (before.a !== undefined) process.env['PLEXD_API'] = before.a;
    }
  });

  it('an unknown flag is a usage error (exit 2) naming it, before anything is read or written', async () => {
    const r = await capture(() => main(['up', '--no-such-flag', 'x', '--data-dir', join(dir, 'never')]));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^plexd-userspace: config --no-such-flag: unknown flag\n\nUsage:/);
    expect(() => readFileSync(join(dir, 'never'))).toThrow(/ENOENT/);
  });

  it.each(rows('command', 'supported').map((e) => [e.name] as const))('command %s exists (--help, exit 0)', async (name) => {
    const r = await capture(() => main([name, '--help']));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Usage:/);
  });

  it.each(rows('command', 'missing').map((e) => [e.name] as const))('command %s is refused by name, exit 2 (not taken for an interface)', async (name) => {
    const r = await capture(() => main([name]));
    expect(r.code).toBe(2);
    expect(r.err).toBe(`plexd-userspace: ${name}: an upstream plexd command that plexd-userspace does not implement (docs/agent.md)\n`);
  });
});

describe('upstream matrix: docs', () => {
  it('docs/agent.md shows the matrix verbatim', () => {
    const path = join(import.meta.dirname, '../../docs/agent.md');
    const text = readFileSync(path, 'utf8');
    const start = '<!-- compat-matrix:start (generated from test/compat/upstream-matrix.ts; UPDATE_COMPAT_DOCS=1 npx vitest run --project unit test/compat) -->\n';
    const end = '<!-- compat-matrix:end -->';
    const i = text.indexOf(start);
    const j = text.indexOf(end);
    expect(i, 'start marker').toBeGreaterThan(0);
    expect(j, 'end marker').toBeGreaterThan(i);
    const want = text.slice(0, i + start.length) + renderMatrix() + text.slice(j);
    if (process.env['UPDATE_COMPAT_DOCS'] === '1') writeFileSync(path, want);
    else expect(text.slice(i + start.length, j)).toBe(renderMatrix());
  });
});
