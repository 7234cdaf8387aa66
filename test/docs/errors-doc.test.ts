// docs/errors.md tells the truth about the error family: every class that extends PlexdError in
// src/ has rows in "Error classes and codes" naming its file and exactly the codes of its static
// `codes`; no row names a class that is not in the family; "API problem codes" is ERROR_CODES.

import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/api/problem.js';
import { errorClasses, ownCodes, type ErrorClassInfo } from '../helpers/error-classes.js';

const DOC = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const PROBLEM_REF = '](#api-problem-codes)';

/** The table rows of the section under `## title`, as arrays of trimmed cells. */
function tableRows(title: string): string[][] {
  const start = DOC.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`docs/errors.md has no section "${title}"`);
  const end = DOC.indexOf('\n## ', start + 1);
  const section = DOC.slice(start, end < 0 ? undefined : end);
  return section
    .split('\n')
    .filter((l) => l.startsWith('|') && !/^\|\s*-/.test(l))
    .map((l) => l.slice(1, l.lastIndexOf('|')).split('|').map((c) => c.trim()))
    .slice(1); // the header row
}

const ticked = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

/** The documented problem codes with their status. */
function problemCodes(): Map<string, number> {
  return new Map(tableRows('API problem codes').map(([code, status]) => [ticked(code!)[0]!, Number(status)]));
}

/** Class name -> the file and codes the doc gives it. */
function documentedClasses(): Map<string, { file: string | undefined; codes: string[] }> {
  const out = new Map<string, { file: string | undefined; codes: string[] }>();
  let current: { file: string | undefined; codes: string[] } | undefined;
  for (const [classCell, codeCell] of tableRows('Error classes and codes')) {
    const [name, file] = ticked(classCell!);
    if (name !== undefined) {
      expect(out.has(name), `${name} is documented twice`).toBe(false);
      current = { file, codes: [] };
      out.set(name, current);
    }
    if (current === undefined) throw new Error(`a code row before any class: ${codeCell}`);
    if (codeCell!.includes(PROBLEM_REF)) current.codes.push(...problemCodes().keys());
    else current.codes.push(...ticked(codeCell!).filter((c) => /^\w+$/.test(c)));
  }
  return out;
}

describe('docs/errors.md', () => {
  let classes: ErrorClassInfo[];
  beforeAll(async () => {
    classes = await errorClasses();
  });

  it('finds the family in src/ (the scan works)', () => {
    const names = classes.map((c) => c.name);
    for (const n of ['TunError', 'BindError', 'UapiSocketError', 'UapiError', 'ControlPlaneError', 'RegistrationError', 'UsageError', 'OsError']) expect(names).toContain(n);
    for (const c of classes) {
      expect({ name: c.name, exported: c.exported }).toEqual({ name: c.name, exported: true });
      expect(typeof c.cls, c.name).toBe('function');
    }
  });

  it('lists every concrete class with its file and exactly its static codes', () => {
    const doc = documentedClasses();
    for (const c of classes.filter((k) => !k.abstract)) {
      const codes = ownCodes(c.cls);
      expect(codes, `${c.name} declares no static codes`).toBeDefined();
      expect(new Set(codes).size, `${c.name}.codes has duplicates`).toBe(codes!.length);
      const row = doc.get(c.name);
      expect(row, `${c.name} (${c.file}) is missing from docs/errors.md`).toBeDefined();
      expect({ name: c.name, file: row!.file }).toEqual({ name: c.name, file: c.file });
      expect({ name: c.name, codes: [...row!.codes].sort() }).toEqual({ name: c.name, codes: [...codes!].sort() });
    }
  });

  it('names no class that is not in the family, and mentions each abstract base', () => {
    const concrete = new Set(classes.filter((k) => !k.abstract).map((k) => k.name));
    for (const name of documentedClasses().keys()) expect(concrete, `docs/errors.md documents ${name}, not a PlexdError class`).toContain(name);
    for (const c of classes.filter((k) => k.abstract)) {
      expect(ownCodes(c.cls), `${c.name} is abstract: its subclasses own the codes`).toBeUndefined();
      expect(DOC).toContain(`\`${c.name}\``);
    }
  });

  it('lists the API problem codes of src/api/problem.ts with their status', () => {
    expect(Object.fromEntries(problemCodes())).toEqual(ERROR_CODES);
  });
});
