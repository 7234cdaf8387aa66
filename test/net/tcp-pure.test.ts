// STYLE.md item 1 for the TCP engine: src/net/tcp*.ts imports no node:* module and nothing but
// core/, errors.ts and its own files, and never reads a clock or an RNG of its own (time and
// randomness are arguments), so it runs the same under a manual clock and in any JS runtime.

import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const NET = fileURLToPath(new URL('../../src/net/', import.meta.url));
const AMBIENT = /\b(Date\.now|Math\.random|setTimeout|setInterval|setImmediate|queueMicrotask|performance\.now|crypto\.getRandomValues|process\.)/;

describe('the TCP engine is sans-IO', () => {
  const files = readdirSync(NET).filter((f) => /^tcp.*\.ts$/.test(f));
  it('has its files', () => {
    expect(files).toEqual(expect.arrayContaining(['tcp.ts', 'tcp-connection.ts', 'tcp-segment.ts', 'tcp-congestion.ts', 'tcp-error.ts']));
  });
  for (const f of files) {
    it(`${f}: imports only core/, errors.ts and tcp*.ts; no clock, no RNG`, () => {
      const text = readFileSync(NET + f, 'utf8');
      const code = text.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
      for (const m of code.matchAll(/from\s+'([^']+)'/g)) expect(m[1], `${f} imports ${m[1]}`).toMatch(/^(\.\/tcp[\w-]*\.js|\.\.\/core\/[\w-]+\.js|\.\.\/errors\.js)$/);
      expect(code).not.toMatch(AMBIENT);
    });
  }
});
