// Issue 11 item 8: names from the network are escaped wherever they are printed: the helper, the
// CLI tables (control-plane nodes list, agent peers) and every log line.

import { describe, expect, it } from 'vitest';
import { formatTable } from '../../src/cli/table.js';
import { createLogger } from '../../src/log/logger.js';
import { isPrintable, printable } from '../../src/log/printable.js';

/** What a terminal must never receive from a name: C0 (with ESC, NUL), DEL, C1, bidi and zero-width. */
const RAW = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/;

describe('printable', () => {
  it('escapes control, format and separator characters and keeps the rest', () => {
    expect(printable('a\x1b[31mb\0c\x7f\x9b\u202ed\u2028é😀')).toBe('a\\x1b[31mb\\x00c\\x7f\\x9b\\u{202e}d\\u{2028}é😀');
    expect(printable('two\nlines\tand\rcr', true)).toBe('two\nlines\tand\\x0dcr');
    expect(printable('two\nlines')).toBe('two\\x0alines');
    expect(isPrintable('Büro 3')).toBe(true);
    expect(isPrintable('x\0')).toBe(false);
  });

  it('tables escape every cell, and columns line up on the escaped text', () => {
    const out = formatTable(['NAME', 'IP'], [['evil\x1b]0;pwned\x07', '10.0.0.1'], ['ok', '10.0.0.2']]);
    expect(RAW.test(out)).toBe(false);
    const name = 'evil\\x1b]0;pwned\\x07';
    expect(out).toBe(`${'NAME'.padEnd(name.length)}  IP\n${name}  10.0.0.1\n${'ok'.padEnd(name.length)}  10.0.0.2\n`);
  });

  it('log lines escape what a message quotes, keeping the line structure of stack traces', () => {
    const lines: string[] = [];
    const log = createLogger('verbose', '', (l) => void lines.push(l));
    log.info('peer \x1b[2J\u202eevil\0 joined');
    log.error('failed:\n    at frame');
    expect(RAW.test(lines.join(''))).toBe(false);
    expect(lines[0]).toMatch(/ peer \\x1b\[2J\\u\{202e\}evil\\x00 joined\n$/);
    expect(lines[1]).toMatch(/ failed:\n    at frame\n$/);
  });
});
