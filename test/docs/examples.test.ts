// The runnable examples in docs/ stay runnable: each is executed against the built package
// (dist/, made by `npm ci` / `npm run build`) and its output checked.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const noDist = !existsSync('dist/index.js');
if (noDist) console.warn('[skip] docs/examples: dist/index.js is missing (run `npm run build`)');

describe.skipIf(noDist)('docs/examples', () => {
  it('two-devices.mjs: a packet crosses a tunnel between two in-process devices', () => {
    const r = spawnSync(process.execPath, ['docs/examples/two-devices.mjs'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('b received: hello through the tunnel');
    expect(r.status).toBe(0);
  });
});
