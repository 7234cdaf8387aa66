// The PlexdError family as the source declares it: every class in src/ that extends PlexdError,
// directly or through another member (OsError), found by scanning the text, then imported. The
// docs test and the family test both start from this list, so a class added later is seen by both.

import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PlexdError } from '../../src/errors.js';

const ROOT = new URL('../../', import.meta.url).pathname;

/** One member of the family: its name, file (from the repository root) and class object. */
export interface ErrorClassInfo {
  readonly name: string;
  readonly file: string;
  readonly abstract: boolean;
  readonly exported: boolean;
  readonly base: string;
  readonly cls: typeof PlexdError;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every class of src/ that extends PlexdError (transitively), imported; PlexdError itself excluded. */
export async function errorClasses(): Promise<ErrorClassInfo[]> {
  const found: Array<Omit<ErrorClassInfo, 'cls'>> = [];
  for (const path of sources(join(ROOT, 'src'))) {
    const text = readFileSync(path, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    for (const m of text.matchAll(/(export\s+)?(abstract\s+)?class\s+(\w+)(?:\s*<[^{]*?>)?\s+extends\s+(\w+)/g)) {
      found.push({ name: m[3]!, file: relative(ROOT, path), abstract: m[2] !== undefined, exported: m[1] !== undefined, base: m[4]! });
    }
  }
  const family = new Set(['PlexdError']);
  for (let grew = true; grew; ) {
    grew = false;
    for (const c of found) {
      if (!family.has(c.name) && family.has(c.base)) {
        family.add(c.name);
        grew = true;
      }
    }
  }
  const members = found.filter((c) => c.name !== 'PlexdError' && family.has(c.name));
  const out: ErrorClassInfo[] = [];
  for (const c of members) {
    const mod = (await import(/* @vite-ignore */ new URL(c.file, `file://${ROOT}`).href)) as Record<string, unknown>;
    out.push({ ...c, cls: mod[c.name] as typeof PlexdError });
  }
  return out;
}

/** The static `codes` a class declares itself (not inherited), or undefined. */
export function ownCodes(cls: typeof PlexdError): readonly string[] | undefined {
  return Object.hasOwn(cls, 'codes') ? (cls as unknown as { codes: readonly string[] }).codes : undefined;
}
