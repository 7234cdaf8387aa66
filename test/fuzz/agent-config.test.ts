// Fuzz target: the agent's configuration (src/agent/config.ts) from hostile sources. Inputs: YAML
// documents built from our keys, their aliases, upstream keys we ignore, unknown keys and random
// nesting, with values of every YAML type (strings, huge strings, NULs, numbers, booleans, null,
// lists, maps); byte mutations of upstream's example config (test/compat/upstream-config.yaml);
// random environments over our and upstream's variable names; random argument lists through
// parseConfigFlags. Asserts: resolveConfig returns a well-formed AgentConfig or throws a
// ConfigError naming a key (never another error, never a hang); at most one warning per source.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CONFIG_KEYS, ConfigError, IGNORED_UPSTREAM_ENV, IGNORED_UPSTREAM_KEYS, envName, flagName, parseConfigFlags, resolveConfig, type AgentConfig } from '../../src/agent/config.js';
import { fuzzIterations, fuzzSeed, fuzzTimeout } from '../helpers/fuzz.js';
import { retainedBytes } from '../helpers/heap.js';
import { seededInts } from '../helpers/rng.js';

const ITERATIONS = fuzzIterations(1500);
const SEED = fuzzSeed(0xc0f1_0014);
const UPSTREAM = readFileSync(join(import.meta.dirname, '../compat/upstream-config.yaml'), 'utf8');

/** Throws when `ok` is false (plain checks in the loop: vitest's expect retains memory per call). */
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`not well-formed: ${what}`);
}

function wellFormed(c: AgentConfig): void {
  check(c.mode === 'node' || c.mode === 'bridge', `mode ${c.mode}`);
  check(['error', 'info', 'verbose', 'silent'].includes(c.logLevel), `logLevel ${c.logLevel}`);
  check(/^https?:/.test(c.api.baseUrl), `baseUrl ${c.api.baseUrl}`);
  for (const port of [c.wireguard.listenPort, c.bridge.relayListenPort]) check(Number.isInteger(port) && port >= 0 && port <= 65535, `port ${port}`);
  check(c.wireguard.mtu === 1420 || (c.wireguard.mtu >= 576 && c.wireguard.mtu <= 65535), `mtu ${c.wireguard.mtu}`);
  for (const d of [c.heartbeat.intervalS, c.api.requestTimeoutS, c.nat.refreshIntervalS, c.bridge.sessionTtlS, c.registration.maxRetryS]) check(d >= 1 && d <= 86_400, `duration ${d}`);
  check(typeof c.policy.enabled === 'boolean', 'policy.enabled');
  check(Array.isArray(c.nat.stunServers), 'nat.stun_servers');
}

describe('fuzz: agent config from hostile files, environments and flags', () => {
  it(`${ITERATIONS} inputs: a well-formed config or a ConfigError naming a key, never another throw`, () => {
    const int = seededInts(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
    const ours = Object.keys(CONFIG_KEYS);
    const aliases = Object.values(CONFIG_KEYS).flatMap((s) => s.aliases ?? []);
    const ignored = [...IGNORED_UPSTREAM_KEYS.keys, ...IGNORED_UPSTREAM_KEYS.sections.map((s) => `${s}.${pick(['enabled', 'x', 'local_endpoint.url'])}`)];
    const unknown = ['surprise', 'api.base', 'nat.stun_server', 'wireguard', 'policy.enabled.x', '__proto__', 'constructor.prototype', 'a.b.c.d.e'];
    const envNames = [...ours.map(envName), ...IGNORED_UPSTREAM_ENV, 'PLEXD_API_BASE_URL', 'PLEXD_CONFIG', 'PLEXD_SESSION_TOKEN'];
    const flags = [...ours.map(flagName), '--config', '--requested-resource-id', '--bogus', '--', '-x'];
    const scalar = (): unknown =>
      pick<() => unknown>([
        () => pick(['http://127.0.0.1:1', 'https://cp.example/', 'ftp://x', '', 'node', 'bridge', 'warn', 'debug', '30s', '5m', '250ms', '9h', '25h', '0', '-1', '1e9', 'true', 'F', 'plexd0', 'a:1', '127.0.0.1:9101', '0.0.0.0:99999', 'x'.repeat(5000), 'a\0b']),
        () => int(200_000) - 100_000,
        () => int(2) === 0,
        () => null,
        () => int(1000) / 7,
        () => Array.from({ length: int(5) }, () => pick(['a', 1, null])),
        () => ({ [pick(['x', 'enabled', 'url'])]: pick([1, 'y', null]) }),
      ])();
    const doc = (): string => {
      const o: Record<string, unknown> = {};
      const n = int(8);
      for (let i = 0; i < n; i++) {
        const key = pick([...ours, ...ours, ...aliases, ...ignored, ...unknown]);
        const parts = key.split('.');
        let cur = o;
        for (const p of parts.slice(0, -1)) {
          if (typeof cur[p] !== 'object' || cur[p] === null || Array.isArray(cur[p])) cur[p] = {};
          cur = cur[p] as Record<string, unknown>;
        }
        cur[parts.at(-1)!] = scalar();
      }
      if (int(4) !== 0) o['api'] = { ...(typeof o['api'] === 'object' && o['api'] !== null ? (o['api'] as object) : {}), base_url: 'http://127.0.0.1:1' };
      return stringify(o) + (int(16) === 0 ? '__proto__: {polluted: 1}\nconstructor: {prototype: {polluted: 1}}\n' : '');
    };
    const mutate = (text: string): string => {
      const b = Buffer.from(text);
      for (let i = int(8); i >= 0; i--) b[int(b.length)] = pick([0x3a, 0x20, 0x0a, 0x2d, 0x7b, 0x5b, 0x22, 0x26, 0x2a, int(256)]);
      return b.toString('latin1');
    };

    const outcomes: Record<string, number> = {};
    const count = (k: string) => void (outcomes[k] = (outcomes[k] ?? 0) + 1);
    // No stack traces in the loop: under vitest each captured stack stays reachable (~0.5 KB per
    // thrown ConfigError; the same loop on dist/ under plain node retains nothing), which would
    // hide a real leak in the heap figure.
    const stackLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    const heap0 = retainedBytes();
    for (let it = 0; it < ITERATIONS; it++) {
      const kind = int(4);
      try {
        if (kind === 3) {
          const args = Array.from({ length: int(6) }, () => (int(2) === 0 ? pick(flags) : String(scalar())));
          const f = parseConfigFlags(args, ['--json']);
          check(f.flags.size <= args.length, 'flag count');
          const c = resolveConfig({ env: {}, flags: new Map([['api.base_url', 'http://127.0.0.1:1'], ...f.flags]) });
          wellFormed(c);
          count('flags:ok');
          continue;
        }
        const fileText = kind === 0 ? doc() : kind === 1 ? mutate(UPSTREAM) : undefined;
        const env: Record<string, string> = {};
        for (let i = int(kind === 2 ? 6 : 2); i > 0; i--) env[pick(envNames)] = String(scalar());
        if (kind === 2 && int(3) !== 0) env['PLEXD_API'] = 'http://127.0.0.1:1';
        const warnings: string[] = [];
        const c = resolveConfig({ ...(fileText !== undefined ? { fileText } : {}), env, warn: (w) => warnings.push(w) });
        wellFormed(c);
        check(warnings.length <= 2, `${warnings.length} warnings`);
        count(['file', 'upstream-mutated', 'env'][kind] + ':ok');
      } catch (err) {
        if (!(err instanceof ConfigError) || !err.message.startsWith(`config ${err.key}`)) {
          Error.stackTraceLimit = stackLimit;
          throw new Error(`seed ${SEED} iteration ${it}: ${String(err)}`);
        }
        count(`${['file', 'upstream-mutated', 'env', 'flags'][kind]}:refused`);
      }
    }
    Error.stackTraceLimit = stackLimit;
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    const heapDeltaMb = (retainedBytes() - heap0) / 2 ** 20;
    console.log(`[fuzz agent-config] ${ITERATIONS} inputs (seed ${SEED}): ${JSON.stringify(outcomes)}, retained heap delta ${heapDeltaMb.toFixed(1)} MiB`);
    // 16 MiB plus 64 bytes an input: under vitest ~35 B an input stays reachable even without stack
    // traces (500k inputs: 18.1 MiB), which the same inputs kinds on dist/ under plain node do not
    // show (0.1 MiB per 30k); retaining any config or document per input would be far above this.
    expect(heapDeltaMb).toBeLessThan(16 + (ITERATIONS * 64) / 2 ** 20);
  }, fuzzTimeout(ITERATIONS, 2));
});
