// `plexd-userspace logs [-f] | log-status | audit`: the agent's logs and its telemetry upload
// (upstream core/cli.md; docs/operations.md "Telemetry"). `logs` reads the journal of the agent's
// service (journalctl), the other two ask the running agent over the node API socket.

import { spawn } from 'node:child_process';
import { queryUnix } from '../agent/local-http.js';
import { journalctlAvailable } from '../agent/telemetry/sources.js';
import { printable } from '../log/printable.js';
import { parseLocalCommand } from './agent.js';
import { EXIT } from './constants.js';

/** The systemd unit `install` creates (docs/deploy.md). */
const UNIT = 'plexd.service';

function fail(message: string, code: number = EXIT.setupFailed): number {
  process.stderr.write(`plexd-userspace: ${message}\n`);
  return code;
}

/** `logs [-f]`: the agent's journal (journalctl -u plexd.service), following with -f. */
export async function runLogs(args: readonly string[]): Promise<number> {
  const follow = args.includes('-f') || args.includes('--follow');
  const rest = args.filter((a) => a !== '-f' && a !== '--follow');
  const p = parseLocalCommand(rest);
  if (typeof p === 'number') return p;
  if (!journalctlAvailable()) {
    return fail(`logs: journalctl is not available on this host; the agent logs to stderr: see your supervisor's log (docker logs, kubectl logs), or \`plexd-userspace log-status\` for what is forwarded`);
  }
  const child = spawn('journalctl', ['-u', UNIT, '--no-pager', ...(follow ? ['-f'] : ['-n', '200'])], { stdio: 'inherit' });
  const stop = () => child.kill('SIGTERM');
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const code = await new Promise<number>((resolve) => {
      child.once('error', (err) => resolve(fail(`logs: ${err.message}`)));
      child.once('exit', (c) => resolve(c ?? 0));
    });
    return follow ? EXIT.ok : code;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

function render(doc: unknown, indent = ''): string {
  if (typeof doc !== 'object' || doc === null) return `${indent}${printable(String(doc))}\n`;
  let out = '';
  for (const [k, v] of Object.entries(doc)) {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) out += `${indent}${printable(k)}:\n${render(v, indent + '  ')}`;
    else out += `${indent}${printable(k.padEnd(26 - indent.length))} ${printable(Array.isArray(v) ? (v.length === 0 ? '-' : v.join(', ')) : String(v ?? '-'))}\n`;
  }
  return out;
}

async function query(args: readonly string[], path: string): Promise<number> {
  const p = parseLocalCommand(args, ['--json']);
  if (typeof p === 'number') return p;
  try {
    const doc = await queryUnix(p.config.nodeApi.socket, path);
    process.stdout.write(p.booleans.has('--json') ? JSON.stringify(doc, null, 2) + '\n' : render(doc));
    return EXIT.ok;
  } catch (err) {
    return fail((err as Error).message);
  }
}

/** `log-status [--json]`: log forwarding's configuration, sources and counters. */
export function runLogStatus(args: readonly string[]): Promise<number> {
  return query(args, '/v1/telemetry/logs');
}

/** `audit [--json]`: audit collection's sources and counters. */
export function runAudit(args: readonly string[]): Promise<number> {
  return query(args, '/v1/telemetry/audit');
}
