// rateLimitErrors (src/log/rate-limit.ts): a flood of error lines is cut to the burst, then one
// "suppressed K" line precedes the next line let through; other levels pass.

import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log/logger.js';
import { rateLimitErrors } from '../../src/log/rate-limit.js';

describe('rateLimitErrors', () => {
  it('lets the burst through, counts the rest, and reports them once tokens return', () => {
    const lines: string[] = [];
    let now = 0;
    const log = rateLimitErrors(createLogger('verbose', '', (l) => void lines.push(l)), { burst: 5, perSecond: 1, now: () => now });
    for (let i = 0; i < 100; i++) log.error(`bad ${i}`);
    expect(lines.filter((l) => l.startsWith('ERROR'))).toHaveLength(5);
    log.verbose('still here');
    expect(lines.at(-1)).toContain('still here');
    now += 1000;
    log.error('later');
    expect(lines.slice(-2).map((l) => l.replace(/^ERROR: \S+ \S+ /, ''))).toEqual(['suppressed 95 error lines\n', 'later\n']);
  });
});
