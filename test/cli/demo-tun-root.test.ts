// `plexd-userspace demo --tun` without root: exit 1 and a message saying root is needed, never an
// attempt to create namespaces. In-process with an injected uid, and the real binary as a non-root
// user (`setpriv` to nobody when we are root, or plainly when we are not). The binary runs from a
// copy of the installed package (package.json, bin, dist, build, runtime node_modules) in a temp
// directory that user can read, since the checkout itself may sit under a 0700 directory.

import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { runDemo } from '../../src/cli/demo.js';
import { tunDemoUnavailableReason } from '../../src/cli/demo-tun.js';
import { addonFile } from '../helpers/addon.js';
import { runtimeDependencies, runUnprivileged } from '../helpers/unprivileged.js';
import { ensureBuilt, REPO_DIR } from '../helpers/wg-lab.js';

const NEEDS_ROOT = /demo --tun: needs root: .*without --tun, which needs no root/;

/** The files an installed plexd-userspace runs from, relative to the package root. */
function installedFiles(): string[] {
  const addon = addonFile();
  return ['package.json', 'bin', 'dist', ...(addon !== undefined ? [addon] : []), ...runtimeDependencies(REPO_DIR).map((d) => `node_modules/${d}`)];
}

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

  it('the real binary as a non-root user exits 1 with the message', async (ctx) => {
    await ensureBuilt();
    const r = runUnprivileged(ctx, {
      what: 'demo --tun as a non-root user',
      root: REPO_DIR,
      paths: installedFiles(),
      probe: 'bin/plexd-userspace.js',
      argv: (dir) => [process.execPath, join(dir, 'bin/plexd-userspace.js'), 'demo', '--tun'],
    });
    expect(r.stderr).toMatch(NEEDS_ROOT);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
  });
});
