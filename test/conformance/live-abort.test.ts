// runLive takes an AbortSignal instead of installing signal handlers (the CLI turns SIGINT and
// SIGTERM into the abort). Without root: an aborted signal refuses the run before anything is
// created, and the library leaves the process's signal handlers and exit alone. The abort in the middle
// of a run, with its cleanup, is in test/netns/conformance-live.test.ts.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runLive } from '../../src/conformance/live.js';

describe('runLive and AbortSignal', () => {
  it('rejects with the reason at once when the signal is already aborted, touching nothing', async () => {
    const abort = new AbortController();
    abort.abort(new Error('stopped before the start'));
    const lines: string[] = [];
    const before = { int: process.listenerCount('SIGINT'), term: process.listenerCount('SIGTERM') };
    await expect(runLive({ target: 'wireguard-go', peer: 'plexd-userspace', selected: () => true, progress: (l) => lines.push(l), signal: abort.signal }))
      .rejects.toThrow('stopped before the start');
    expect(lines).toEqual([]);
    expect({ int: process.listenerCount('SIGINT'), term: process.listenerCount('SIGTERM') }).toEqual(before);
  });

  it('the live runner neither exits the process nor installs SIGINT/SIGTERM handlers', () => {
    // The library half of the runner; adversary-process.ts is a child's entry point and may exit.
    const code = readFileSync(new URL('../../src/conformance/live.ts', import.meta.url), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    expect(code).not.toMatch(/process\.exit\(|process\.(on|once)\(\s*'SIG/);
  });
});
