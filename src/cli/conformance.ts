// `plexd-userspace conformance vectors|live`: option parsing, report output and exit codes for the
// conformance runner (src/conformance). Thin: the checks and scenarios live there.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatJson, formatJunit, formatTable, reportPassed, type Report, type ScenarioResult } from '../conformance/report.js';
import { VECTOR_PROVIDERS, runVectorChecks, vectorChecks, type VectorProviderName, type VectorResult } from '../conformance/vectors.js';
import { EXIT } from './constants.js';
import { onShutdownSignal } from './signals.js';

const USAGE = `Usage: plexd-userspace conformance vectors [--provider noble|node|all] [OUTPUT]
       plexd-userspace conformance live --target PROGRAM [--peer PROGRAM] [OUTPUT]

  vectors   every known-answer vector in vectors/ through the crypto provider(s) and the core
  live      (root) starts PROGRAM IFNAME and a reference peer (default plexd-userspace; or
            wireguard-go, or a path) in private network namespaces and runs the scenarios
            against it; PROGRAM follows the wireguard-go command line (UAPI socket in
            /var/run/wireguard/IFNAME.sock)

OUTPUT options (both commands):
  --json            print the report as JSON instead of a table
  --junit FILE      also write a JUnit XML report to FILE
  --only A,B        run only these scenarios (vectors: file names such as x25519 or x25519/node)
  --skip A,B        run all but these
  --list            print the scenario names and exit

Exit status: 0 when every selected scenario passes, 1 when one fails, 2 on bad usage;
live interrupted by SIGINT/SIGTERM cleans up and exits 130/143.
`;

/** Parsed command line of `conformance`. */
export interface ConformanceOptions {
  readonly command: 'vectors' | 'live';
  /** vectors: the providers to run. */
  readonly providers: readonly VectorProviderName[];
  /** live: the program under test and the reference peer. */
  readonly target: string | undefined;
  readonly peer: string;
  readonly json: boolean;
  readonly junit: string | undefined;
  readonly only: readonly string[] | undefined;
  readonly skip: readonly string[];
  readonly list: boolean;
}

/** Parses `conformance` arguments; returns the options or a usage error message. Never throws. */
export function parseConformanceArgs(args: readonly string[]): ConformanceOptions | { readonly error: string } {
  const [command, ...rest] = args;
  if (command !== 'vectors' && command !== 'live') {
    return { error: command === undefined ? 'expected a command: vectors or live' : `unknown command ${JSON.stringify(command)}: expected vectors or live` };
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: [...rest],
      strict: true,
      allowPositionals: false,
      options: {
        provider: { type: 'string' },
        target: { type: 'string' },
        peer: { type: 'string' },
        json: { type: 'boolean' },
        junit: { type: 'string' },
        only: { type: 'string' },
        skip: { type: 'string' },
        list: { type: 'boolean' },
      },
    }));
  } catch (err) {
    return { error: (err as Error).message };
  }
  const names = (s: string | undefined): string[] | undefined => s?.split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (command === 'vectors' && (values.target !== undefined || values.peer !== undefined)) return { error: '--target and --peer belong to `conformance live`' };
  if (command === 'live' && values.provider !== undefined) return { error: '--provider belongs to `conformance vectors` (live targets choose their own crypto)' };
  const provider = values.provider ?? 'all';
  if (provider !== 'all' && !Object.hasOwn(VECTOR_PROVIDERS, provider)) return { error: `expected --provider noble, node or all, got ${JSON.stringify(provider)}` };
  if (command === 'live' && values.target === undefined && values.list !== true) return { error: '`conformance live` needs --target PROGRAM' };
  for (const [flag, v] of [['--target', values.target], ['--peer', values.peer], ['--junit', values.junit]] as const) {
    if (v !== undefined && v.trim() === '') return { error: `expected a value for ${flag}, got an empty string` };
  }
  const only = names(values.only);
  if (only !== undefined && only.length === 0) return { error: 'expected scenario names after --only' };
  return {
    command,
    providers: provider === 'all' ? (Object.keys(VECTOR_PROVIDERS) as VectorProviderName[]) : [provider as VectorProviderName],
    target: values.target,
    peer: values.peer ?? 'plexd-userspace',
    json: values.json === true,
    junit: values.junit,
    only,
    skip: names(values.skip) ?? [],
    list: values.list === true,
  };
}

/**
 * Groups vector results into one row per file and provider, named `file-stem/provider`
 * (e.g. `x25519/noble`); the detail lists the failing vectors.
 */
export function vectorRows(results: readonly VectorResult[]): ScenarioResult[] {
  const groups = new Map<string, VectorResult[]>();
  for (const r of results) {
    const name = `${r.file.replace(/\.json$/, '')}/${r.provider}`;
    const group = groups.get(name);
    if (group === undefined) groups.set(name, [r]);
    else group.push(r);
  }
  return [...groups].map(([name, rs]) => {
    const failed = rs.filter((r) => !r.ok);
    return {
      name,
      result: failed.length === 0 ? 'pass' : 'fail',
      timeMs: rs.reduce((s, r) => s + r.timeMs, 0),
      detail: failed.length === 0 ? `${rs.length} vector${rs.length === 1 ? '' : 's'}` : `${failed.length} of ${rs.length} failed: ${failed.map((r) => `${r.name}: ${r.detail}`).join('; ')}`,
    } satisfies ScenarioResult;
  });
}

/** Whether `name` is selected by --only/--skip; a name also matches its part before '/'. */
export function selected(name: string, only: readonly string[] | undefined, skip: readonly string[]): boolean {
  const keys = [name, name.split('/')[0]!];
  if (only !== undefined && !keys.some((k) => only.includes(k))) return false;
  return !keys.some((k) => skip.includes(k));
}

/** Names in --only/--skip that match no scenario (a typo would otherwise select nothing). */
function unknownNames(known: readonly string[], opts: ConformanceOptions): string[] {
  const all = new Set(known.flatMap((n) => [n, n.split('/')[0]!]));
  return [...(opts.only ?? []), ...opts.skip].filter((n) => !all.has(n));
}

function emit(report: Report, opts: ConformanceOptions): number {
  process.stdout.write(opts.json ? formatJson(report) : formatTable(report, process.stdout.isTTY ? process.stdout.columns : Infinity));
  if (opts.junit !== undefined) writeFileSync(opts.junit, formatJunit(report));
  return reportPassed(report) ? EXIT.ok : EXIT.setupFailed;
}

async function runVectors(opts: ConformanceOptions): Promise<number> {
  const checks = vectorChecks(opts.providers.map((p) => VECTOR_PROVIDERS[p]));
  const names = [...new Set(vectorRows(checks.map((c) => ({ ...c, ok: true, detail: '', timeMs: 0 }))).map((r) => r.name))];
  if (opts.list) {
    process.stdout.write(`${names.join('\n')}\n`);
    return EXIT.ok;
  }
  const unknown = unknownNames(names, opts);
  if (unknown.length > 0) return usageError(`unknown scenario ${unknown.join(', ')}; see --list`);
  const chosen = checks.filter((c) => selected(`${c.file.replace(/\.json$/, '')}/${c.provider}`, opts.only, opts.skip));
  const rows = vectorRows(runVectorChecks(chosen));
  return emit({ suite: 'vectors', subject: `providers ${opts.providers.join(', ')} and the protocol core`, results: rows }, opts);
}

async function runLiveCommand(opts: ConformanceOptions): Promise<number> {
  const live = await import('../conformance/live.js');
  if (opts.list) {
    process.stdout.write(`${live.LIVE_SCENARIOS.join('\n')}\n`);
    return EXIT.ok;
  }
  const unknown = unknownNames(live.LIVE_SCENARIOS, opts);
  if (unknown.length > 0) return usageError(`unknown scenario ${unknown.join(', ')}; see --list`);
  const reason = live.liveUnavailableReason(opts.target!, opts.peer);
  if (reason !== undefined) {
    process.stderr.write(`plexd-userspace conformance live: ${reason}\n`);
    return EXIT.setupFailed;
  }
  const progress = (line: string): void => void process.stderr.write(`${line}\n`);
  // SIGINT/SIGTERM abort the run; runLive removes what it created before it settles.
  const abort = new AbortController();
  let stoppedBy: NodeJS.Signals | undefined;
  const off = onShutdownSignal((sig) => {
    if (stoppedBy !== undefined) return;
    stoppedBy = sig;
    progress(`${sig}: cleaning up`);
    abort.abort(new Error(`interrupted by ${sig}`));
  });
  let report: Report;
  try {
    report = await live.runLive({
      target: opts.target!,
      peer: opts.peer,
      selected: (name) => selected(name, opts.only, opts.skip),
      progress,
      signal: abort.signal,
    });
  } catch (err) {
    if (stoppedBy === undefined) throw err;
    // Exit now: a scenario abandoned mid-way may still hold a timer for seconds.
    process.exit(stoppedBy === 'SIGINT' ? 130 : 143);
  } finally {
    off();
  }
  return emit(report, opts);
}

function usageError(message: string): number {
  process.stderr.write(`plexd-userspace conformance: ${message}\n\n${USAGE}`);
  return EXIT.usage;
}

/** The `conformance` subcommand: resolves to the exit code. */
export async function runConformance(args: readonly string[]): Promise<number> {
  if (args[0] === '--help' || args[0] === '-h' || args[0] === 'help') {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  const opts = parseConformanceArgs(args);
  if ('error' in opts) return usageError(opts.error);
  return opts.command === 'vectors' ? runVectors(opts) : runLiveCommand(opts);
}
