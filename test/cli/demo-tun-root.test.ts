// `plexd-userspace demo --tun` without root: exit 1 and a message saying root is needed, never an
// attempt to create namespaces. In-process with an injected uid, and the real binary as a non-root
// user (`setpriv --reuid=nobody` when we are root, or plainly when we are not).

import { spawnSync } from 'node:child_process';
import { describe, expect, it, vi } from 'vitest';
import { runDemo } from '../../src/cli/demo.js';
import { tunDemoUnavailableReason } from '../../src/cli/demo-tun.js';
import { DAEMON, ensureBuilt } from '../helpers/wg-lab.js';

const NEEDS_ROOT = /demo --tun: needs root: .*without --tun, which needs no root/;
const asRoot = process.getuid?.() === 0;
const setpriv = spawnSync('setpriv', ['--version']).error === undefined;
if (asRoot && !setpriv) console.warn('[skip] demo --tun as a non-root user: running as root and setpriv (util-linux) is not installed');

describe('demo --tun without root', () => {
  it('runDemo exits 1 with the message for a non-root uid', async () => {
    const err: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => (err.push(String(c)), true));
    try {
      expect(await runDemo(['--tun'], { uid: () => 1000 })).toBe(1);
    } finally {
      spy.mockRestore();
    }
    expect(err.join('')).toMatch(NEEDS_ROOT);
  });

  it('the reason names root only for a non-root uid', () => {
    expect(tunDemoUnavailableReason(1000)).toMatch(/^needs root/);
    expect(tunDemoUnavailableReason(undefined)).toMatch(/^needs root/);
    expect(tunDemoUnavailableReason(0) ?? '').not.toMatch(/^needs root/);
  });

  it.skipIf(asRoot && !setpriv)('the real binary as a non-root user exits 1 with the message', async () => {
    await ensureBuilt();
    const argv = [process.execPath, DAEMON, 'demo', '--tun'];
    const cmd = asRoot ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', ...argv] : argv;
    const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toMatch(NEEDS_ROOT);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
  });
});
