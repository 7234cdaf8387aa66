// The runnable examples in docs/ stay runnable: each is executed against the built package
// (dist/, made by `npm ci` / `npm run build`, rebuilt here when src/ is newer) and its output checked.
// Paths come from the repository root, not the current directory, so the test runs from anywhere.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, REPO_DIR } from '../helpers/wg-lab.js';

describe('docs/examples', () => {
  beforeAll(() => ensureBuilt(), 180_000);

  it('two-devices.mjs: a packet crosses a tunnel between two in-process devices', () => {
    const r = spawnSync(process.execPath, [join(REPO_DIR, 'docs/examples/two-devices.mjs')], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('b received: hello through the tunnel');
    expect(r.status).toBe(0);
  });
});
