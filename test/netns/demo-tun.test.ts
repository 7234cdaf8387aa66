// `plexd-userspace demo --tun` as root, the real binary: exit 0, a table row per ordered pair of the
// three nodes, and nothing left behind (namespaces, links and UAPI sockets named with the demo
// process's `plxt<pid base36>-` prefix, the temporary directory), also when interrupted by SIGINT.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../helpers/netns.js';
import { DAEMON, ensureBuilt, waitFor } from '../helpers/wg-lab.js';

const skip = requireRoot('demo --tun tests') !== undefined;

interface Demo {
  proc: ChildProcess;
  out: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startDemo(): Demo {
  const proc = spawn(process.execPath, [DAEMON, 'demo', '--tun'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  proc.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  return { proc, out: () => text, exit };
}

/** Names with the demo's prefix still present: namespaces, root-namespace links, UAPI sockets, plus its temp dir. */
function leftovers(pid: number, out: string): string[] {
  const prefix = `plxt${pid.toString(36)}-`;
  const ns = (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '').split('\n').map((l) => l.split(' ')[0] ?? '');
  const links = (spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout ?? '').split('\n').map((l) => ((l.split(': ')[1] ?? '').split('@')[0] ?? ''));
  const socks = existsSync('/var/run/wireguard') ? readdirSync('/var/run/wireguard') : [];
  const left = [...ns, ...links, ...socks].filter((n) => n.startsWith(prefix));
  const dir = /SQLite in (\S+)\)/.exec(out)?.[1];
  if (dir !== undefined && existsSync(dir)) left.push(dir);
  return left;
}

describe.skipIf(skip)('plexd-userspace demo --tun', () => {
  let running: Demo | undefined;
  beforeAll(() => ensureBuilt());
  afterEach(() => {
    if (running !== undefined && running.proc.exitCode === null) running.proc.kill('SIGKILL');
    running = undefined;
  });

  it('brings up three TUN agents in namespaces, every pair answers a kernel ping, exit 0, nothing left', async () => {
    const d = (running = startDemo());
    const { code } = await d.exit;
    const out = d.out();
    expect(code, out).toBe(0);
    expect(out).toMatch(/control plane: http:\/\/10\.79\.0\.1:\d+ in namespace plxt/);
    expect(out).toMatch(/NODE\s+MESH IP\s+PEER\s+PATH\s+LAST HANDSHAKE\s+RTT/);
    const rows = out.split('\n').filter((l) => /^demo-node-\d/.test(l));
    expect(rows.length, out).toBe(6);
    const pairs = new Set<string>();
    for (const row of rows) {
      const m = /^(demo-node-\d)\s+(\d+\.\d+\.\d+\.\d+)\s+(demo-node-\d) \((\d+\.\d+\.\d+\.\d+)\)\s+(direct|relayed)\s+\d+ s ago\s+[\d.]+ ms$/.exec(row);
      expect(m, row).not.toBeNull();
      expect(m![1]).not.toBe(m![3]);
      pairs.add(`${m![1]} ${m![3]}`);
    }
    expect(pairs.size).toBe(6);
    expect(out).toContain('all 6 pairs answered');
    expect(leftovers(d.proc.pid!, out)).toEqual([]);
  });

  it('SIGINT mid-run removes everything and exits 130', async () => {
    const d = (running = startDemo());
    expect(await waitFor(() => /registered demo-node-1/.test(d.out()), 30_000), d.out()).toBe(true);
    d.proc.kill('SIGINT');
    const { code } = await d.exit;
    expect(code, d.out()).toBe(130);
    expect(leftovers(d.proc.pid!, d.out())).toEqual([]);
  });
});
