// src/policy stays like src/core (docs/STYLE.md item 1): no node:* imports, no ambient clock or RNG.

import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('policy purity', () => {
  it('src/policy imports no node:* module and reads no clock or RNG of its own', () => {
    const dir = new URL('../../src/policy/', import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) {
      const code = readFileSync(new URL(f, dir), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      expect({ f, node: /from\s+['"]node:|require\(|import\(['"]node:/.test(code) }).toEqual({ f, node: false });
      expect({ f, ambient: /\b(Date\.now|Math\.random|setTimeout|setInterval|performance\.now|crypto\.getRandomValues)\b/.test(code) }).toEqual({ f, ambient: false });
      expect({ f, upward: /from\s+['"]\.\.\/(device|io|cli|agent|control|uapi|api)\//.test(code) }).toEqual({ f, upward: false });
    }
  });
});
