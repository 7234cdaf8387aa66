// Reports of a conformance run: the terminal table (scenario, result, time, detail), JSON and
// JUnit XML (the dialect CI systems read: testsuites > testsuite > testcase with failure/skipped).

/** The outcome of one scenario (or one group of vectors). */
export interface ScenarioResult {
  /** Scenario name, as `--only` / `--skip` take it. */
  readonly name: string;
  readonly result: 'pass' | 'fail' | 'skip';
  /** Wall time in milliseconds. */
  readonly timeMs: number;
  /** Why it failed or was skipped, or what was measured; one line. */
  readonly detail: string;
}

/** A whole run: what ran against what, and every result. */
export interface Report {
  /** 'vectors' or 'live'. */
  readonly suite: string;
  /** Free-form description of the subject (providers, target and peer programs). */
  readonly subject: string;
  readonly results: readonly ScenarioResult[];
}

/** True when no selected scenario failed (skipped ones do not count against the run). */
export function reportPassed(report: Report): boolean {
  return report.results.every((r) => r.result !== 'fail');
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** A fixed-width table with a summary line; `width` truncates the detail column (default none). */
export function formatTable(report: Report, width = Infinity): string {
  const rows = report.results.map((r) => [r.name, r.result.toUpperCase(), formatMs(r.timeMs), r.detail.replace(/\s+/g, ' ')] as const);
  const head = ['SCENARIO', 'RESULT', 'TIME', 'DETAIL'] as const;
  const w = [0, 1, 2].map((i) => Math.max(head[i]!.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string => `${r[0]!.padEnd(w[0]!)}  ${r[1]!.padEnd(w[1]!)}  ${r[2]!.padStart(w[2]!)}  ${r[3]!}`.trimEnd();
  const fit = (text: string): string => (text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text);
  const count = (k: ScenarioResult['result']): number => report.results.filter((r) => r.result === k).length;
  const total = report.results.reduce((s, r) => s + r.timeMs, 0);
  return [
    `${report.suite}: ${report.subject}`,
    line(head),
    ...rows.map(line),
    `${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped in ${formatMs(total)}`,
  ]
    .map(fit)
    .join('\n')
    .concat('\n');
}

/** The report as pretty JSON with a `passed` flag. */
export function formatJson(report: Report): string {
  return `${JSON.stringify({ suite: report.suite, subject: report.subject, passed: reportPassed(report), results: report.results }, null, 2)}\n`;
}

function xml(text: string): string {
  // XML 1.0 forbids most control characters even as references: drop them.
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JUnit XML: one testsuite named after the suite, one testcase per scenario (time in seconds). */
export function formatJunit(report: Report): string {
  const secs = (ms: number): string => (ms / 1000).toFixed(3);
  const fails = report.results.filter((r) => r.result === 'fail').length;
  const skips = report.results.filter((r) => r.result === 'skip').length;
  const total = report.results.reduce((s, r) => s + r.timeMs, 0);
  const suite = `plexd-userspace conformance ${report.suite}`;
  const cases = report.results.map((r) => {
    const open = `    <testcase classname="${xml(suite)}" name="${xml(r.name)}" time="${secs(r.timeMs)}"`;
    if (r.result === 'pass') return `${open}/>`;
    const inner = r.result === 'fail' ? `<failure message="${xml(r.detail)}"/>` : `<skipped message="${xml(r.detail)}"/>`;
    return `${open}>\n      ${inner}\n    </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${report.results.length}" failures="${fails}" skipped="${skips}" time="${secs(total)}">`,
    `  <testsuite name="${xml(suite)}" tests="${report.results.length}" failures="${fails}" errors="0" skipped="${skips}" time="${secs(total)}">`,
    `    <properties><property name="subject" value="${xml(report.subject)}"/></properties>`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
