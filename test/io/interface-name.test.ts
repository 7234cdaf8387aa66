// The one interface-name rule (src/io/interface-name.ts), used by the TUN and the UAPI server:
// both accept and refuse the same names ('' aside, which only the TUN takes: "kernel chooses").

import { describe, expect, it } from 'vitest';
import { expectInterfaceName, interfaceNameProblem } from '../../src/io/interface-name.js';
import { checkInterfaceName } from '../../src/io/tun-linux.js';

describe('interface names', () => {
  const good = ['wg0', 'x'.repeat(15), 'plexd-0.1_a', 'é'.repeat(7)];
  const tooLong = ['x'.repeat(16), 'é'.repeat(8)];
  const invalid = ['.', '..', 'a/b', 'a:b', 'a b', 'a\tb', 'a\0b'];

  it('says why a name is refused', () => {
    for (const n of good) expect(interfaceNameProblem(n)).toBeUndefined();
    for (const n of tooLong) expect(interfaceNameProblem(n)).toBe('too-long');
    for (const n of invalid) expect(interfaceNameProblem(n)).toBe('invalid');
    expect(interfaceNameProblem('')).toBe('empty');
    expect(() => interfaceNameProblem(7 as unknown as string)).toThrow(TypeError);
  });

  it('the TUN and the UAPI server agree on every name but the empty one', () => {
    for (const n of [...good, ...tooLong, ...invalid]) {
      const tunOk = (() => { try { checkInterfaceName(n); return true; } catch { return false; } })();
      const uapiOk = (() => { try { expectInterfaceName(n); return true; } catch { return false; } })();
      expect(uapiOk, JSON.stringify(n)).toBe(tunOk);
    }
    expect(() => checkInterfaceName('')).not.toThrow();
    expect(() => expectInterfaceName('')).toThrow(RangeError);
  });
});
