// Conformance output and command line: the table, JSON and JUnit formats, option parsing errors,
// --only/--skip selection and the exit codes of `conformance vectors`.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConformanceArgs, runConformance, selected, vectorRows } from '../../src/cli/conformance.js';
import { main } from '../../src/cli/main.js';
import { formatJson, formatJunit, formatTable, reportPassed, type Report } from '../../src/conformance/report.js';

const report: Report = {
  suite: 'live',
  subject: 'target wireguard-go, peer plexd-userspace',
  results: [
    { name: 'handshake-peer-initiates', result: 'pass', timeMs: 312.4, detail: 'first reply after 0.31 s' },
    { name: 'replay', result: 'fail', timeMs: 2100, detail: 'target answered a replayed <packet> & "more"\u0001' },
    { name: 'rekey', result: 'skip', timeMs: 0, detail: 'not selected' },
  ],
};

describe('report formats', () => {
  it('table: aligned columns, times, a summary line, optional truncation', () => {
    const text = formatTable(report);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('live: target wireguard-go, peer plexd-userspace');
    expect(lines[1]).toMatch(/^SCENARIO {18}RESULT {4}TIME {2}DETAIL$/);
    expect(lines[2]).toMatch(/^handshake-peer-initiates {2}PASS {4}312 ms {2}first reply after 0\.31 s$/);
    expect(lines[3]).toMatch(/^replay {20}FAIL {4}2\.10 s {2}target answered/);
    expect(lines[5]).toBe('1 passed, 1 failed, 1 skipped in 2.41 s');
    expect(formatTable(report, 40).split('\n').every((l) => l.length <= 40)).toBe(true);
  });

  it('json: round-trips the results with a passed flag', () => {
    const doc = JSON.parse(formatJson(report)) as { passed: boolean; results: unknown[]; suite: string };
    expect(doc.passed).toBe(false);
    expect(doc.suite).toBe('live');
    expect(doc.results).toEqual(report.results);
    expect(reportPassed({ ...report, results: report.results.filter((r) => r.result !== 'fail') })).toBe(true);
  });

  it('junit: counts, escaped text, failure and skipped elements, seconds', () => {
    const x = formatJunit(report);
    expect(x).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites tests="3" failures="1" skipped="1" time="2\.412">/);
    expect(x).toContain('<testcase classname="plexd-userspace conformance live" name="handshake-peer-initiates" time="0.312"/>');
    expect(x).toContain('<failure message="target answered a replayed &#60;packet&#62; &#38; &#34;more&#34;"/>');
    expect(x).toContain('<skipped message="not selected"/>');
    expect(x).not.toMatch(/[\u0000-\u0008]/);
    expect(x.match(/<testcase /g)).toHaveLength(3);
  });
});

describe('option parsing', () => {
  it('accepts the documented forms', () => {
    expect(parseConformanceArgs(['vectors'])).toMatchObject({ command: 'vectors', providers: ['noble', 'node'], json: false, skip: [] });
    expect(parseConformanceArgs(['vectors', '--provider', 'node', '--json'])).toMatchObject({ providers: ['node'], json: true });
    expect(parseConformanceArgs(['live', '--target', 'wireguard-go', '--only', 'replay, psk', '--junit', 'r.xml'])).toMatchObject({
      command: 'live',
      target: 'wireguard-go',
      peer: 'plexd-userspace',
      only: ['replay', 'psk'],
      junit: 'r.xml',
    });
    expect(parseConformanceArgs(['live', '--target=./x', '--peer', 'wireguard-go', '--skip', 'cookie-under-load'])).toMatchObject({
      target: './x',
      peer: 'wireguard-go',
      skip: ['cookie-under-load'],
    });
  });

  it.each([
    [[], /expected a command/],
    [['fuzz'], /unknown command "fuzz"/],
    [['vectors', '--provider', 'openssl'], /expected --provider noble, node or all, got "openssl"/],
    [['vectors', '--target', 'x'], /--target and --peer belong to `conformance live`/],
    [['live'], /needs --target PROGRAM/],
    [['live', '--target', 'x', '--provider', 'node'], /--provider belongs to `conformance vectors`/],
    [['live', '--target', ''], /expected a value for --target/],
    [['live', '--target', 'x', '--only', ','], /expected scenario names after --only/],
    [['vectors', '--bogus'], /Unknown option '--bogus'/],
    [['vectors', 'extra'], /Unexpected argument 'extra'/],
    [['vectors', '--junit'], /argument missing/],
  ])('rejects %j', (args, message) => {
    const r = parseConformanceArgs(args);
    expect(r).toHaveProperty('error');
    expect((r as { error: string }).error).toMatch(message);
  });

  it('selects by full name or by the part before the slash', () => {
    expect(selected('x25519/node', undefined, [])).toBe(true);
    expect(selected('x25519/node', ['x25519'], [])).toBe(true);
    expect(selected('x25519/node', ['x25519/noble'], [])).toBe(false);
    expect(selected('x25519/node', undefined, ['x25519/node'])).toBe(false);
    expect(selected('replay', ['replay', 'psk'], ['replay'])).toBe(false);
  });

  it('groups vector results per file and provider with the failures in the detail', () => {
    const rows = vectorRows([
      { file: 'a.json', provider: 'noble', name: 'one', ok: true, detail: '', timeMs: 1 },
      { file: 'a.json', provider: 'noble', name: 'two', ok: false, detail: 'bad', timeMs: 2 },
      { file: 'a.json', provider: 'node', name: 'one', ok: true, detail: '', timeMs: 4 },
    ]);
    expect(rows).toEqual([
      { name: 'a/noble', result: 'fail', timeMs: 3, detail: '1 of 2 failed: two: bad' },
      { name: 'a/node', result: 'pass', timeMs: 4, detail: '1 vector' },
    ]);
  });
});

describe('plexd-userspace conformance', () => {
  let out = '';
  let err = '';
  const capture = (): void => {
    out = '';
    err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  };
  afterEach(() => vi.restoreAllMocks());

  it('vectors --provider node --json --junit FILE: exit 0, JSON on stdout, JUnit file written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plexd-conf-'));
    try {
      capture();
      const code = await main(['conformance', 'vectors', '--provider', 'node', '--json', '--junit', join(dir, 'r.xml')]);
      vi.restoreAllMocks();
      expect(code).toBe(0);
      const doc = JSON.parse(out) as { passed: boolean; results: Array<{ name: string; result: string }> };
      expect(doc.passed).toBe(true);
      expect(doc.results.map((r) => r.name)).toContain('wireguard-handshake-kat/node');
      expect(doc.results.some((r) => r.name.endsWith('/noble'))).toBe(false);
      expect(readFileSync(join(dir, 'r.xml'), 'utf8')).toMatch(/<testsuite name="plexd-userspace conformance vectors" tests="9" failures="0"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('vectors --only selects rows; a table goes to stdout', async () => {
    capture();
    const code = await runConformance(['vectors', '--provider', 'node', '--only', 'wireguard-kdf,x25519/node']);
    vi.restoreAllMocks();
    expect(code).toBe(0);
    expect(out).toMatch(/^vectors: providers node/);
    expect(out).toMatch(/\nwireguard-kdf\/node +PASS/);
    expect(out).toMatch(/\n2 passed, 0 failed, 0 skipped/);
  });

  it('usage errors exit 2 with the message and the usage text', async () => {
    capture();
    const codes = [
      await runConformance(['vectors', '--only', 'no-such-file']),
      await runConformance(['live', '--target', 'x', '--skip', 'no-such-scenario']),
      await runConformance(['nope']),
    ];
    vi.restoreAllMocks();
    expect(codes).toEqual([2, 2, 2]);
    expect(err).toMatch(/unknown scenario no-such-file; see --list/);
    expect(err).toMatch(/unknown scenario no-such-scenario/);
    expect(err).toMatch(/Usage: plexd-userspace conformance vectors/);
    expect(out).toBe('');
  });
});
