import { describe, expect, it } from 'vitest';
import { PlexdError, hasCode } from '../../src/errors.js';

class AreaError extends PlexdError<'ERR_AREA_A' | 'ERR_AREA_B'> {
  static readonly codes = ['ERR_AREA_A', 'ERR_AREA_B'] as const;
}
class OtherError extends PlexdError<'ERR_OTHER'> {
  static readonly codes = ['ERR_OTHER'] as const;
}

describe('PlexdError', () => {
  it('carries name, code and cause', () => {
    const cause = new Error('root');
    const e = new AreaError('ERR_AREA_A', 'it broke', { cause });
    expect(e.name).toBe('AreaError');
    expect(e.code).toBe('ERR_AREA_A');
    expect(e.cause).toBe(cause);
    expect(e).toBeInstanceOf(Error);
    expect(e instanceof PlexdError).toBe(true);
    expect(e instanceof AreaError).toBe(true);
    expect(e instanceof OtherError).toBe(false);
    expect(hasCode(e, 'ERR_AREA_A')).toBe(true);
    expect(hasCode(new Error('x'), 'ERR_AREA_A')).toBe(false);
  });

  it('refuses a code outside the closed set', () => {
    expect(() => new AreaError('ERR_NOPE' as 'ERR_AREA_A', 'x')).toThrow(TypeError);
  });

  it('instanceof holds across two copies of the module', async () => {
    const copy = (await import('../../src/errors.ts?second-copy' as string)) as typeof import('../../src/errors.js');
    expect(copy.PlexdError).not.toBe(PlexdError);
    class AreaErrorCopy extends copy.PlexdError<'ERR_AREA_A'> {}
    Object.defineProperty(AreaErrorCopy, 'name', { value: 'AreaError' });
    const foreign = new AreaErrorCopy('ERR_AREA_A', 'from the other copy');
    expect(foreign instanceof PlexdError).toBe(true);
    expect(foreign instanceof AreaError).toBe(true);
    expect(foreign instanceof OtherError).toBe(false);
    expect(new AreaError('ERR_AREA_B', 'x') instanceof copy.PlexdError).toBe(true);
    expect({ code: 'ERR_AREA_A' } instanceof PlexdError).toBe(false);
  });
});
