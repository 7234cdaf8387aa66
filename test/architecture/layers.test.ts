// The layers of src/ as a test (docs/architecture.md "Layers and imports"): every import of every
// src/**/*.ts file (static, `export ... from` and dynamic `import()`, type-only included) must
// go down the table below or to an allowed sibling; core and policy stay I/O-free (STYLE.md item
// 1: no node:* module, no clock or RNG of their own); packages come from package.json
// "dependencies" (or "optionalDependencies": better-sqlite3, whose absence src/cli/main.ts reports); and no two files import each other at run time, directly or around a circle. A violation
// names the file, the import and the rule. Known violations are listed, with the reason, in
// KNOWN_EXCEPTIONS / KNOWN_CYCLES, and an entry that is no longer needed fails too, so the
// list only shrinks.

import { readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string>; optionalDependencies?: Record<string, string> };

/**
 * The layers, lowest first; an area may import any area of a lower rank. errors.ts imports
 * nothing and every layer may use it (core included); version.ts and log/ are leaves of rank 2.
 */
const RANK: Readonly<Record<string, number>> = {
  errors: 0,
  core: 1,
  io: 2,
  crypto: 2,
  policy: 2,
  api: 2,
  log: 2,
  version: 2,
  device: 3,
  uapi: 4,
  nat: 4,
  net: 4, // userspace TCP/IP (issue 22): the sans-IO TCP engine (tcp*.ts) and its glue to a Device
  bridge: 4,
  control: 5,
  'control-plane': 5,
  conformance: 5,
  agent: 6,
  index: 6, // the library entry point (src/index.ts): re-exports, never the CLI
  cli: 7,
};

/** Imports between areas of the same rank that the design allows (docs/architecture.md). */
const SIBLINGS: Readonly<Record<string, readonly string[]>> = {
  bridge: ['nat'], // relay bindings are STUN-framed: bridge uses nat's STUN codec
  log: ['io'], // the error-line rate limit uses io/token-bucket.ts
  api: ['log'], // api/ logs through the one logger
};

/** Areas that must stay I/O-free: no node:* imports, no ambient clock or RNG. */
const PURE = ['core', 'policy'];
const AMBIENT = /\b(Date\.now|Math\.random|setTimeout|setInterval|performance\.now|crypto\.getRandomValues)\b/;

/**
 * Area imports that break the table today, each with who removes it. The test fails when one is
 * no longer used: delete the entry then.
 */
const KNOWN_EXCEPTIONS: readonly { from: string; to: string; why: string }[] = [];

/** Import cycles between src files that exist today, each with who removes it. Same rule. */
const KNOWN_CYCLES: readonly { files: readonly string[]; why: string }[] = [];

interface Import {
  /** The importing file, relative to src/ ('device/device.ts'). */
  readonly file: string;
  readonly line: number;
  readonly specifier: string;
  readonly typeOnly: boolean;
  /** The imported src file (relative to src/) for a relative import, else undefined. */
  readonly target: string | undefined;
}

/** All .ts files under src/, relative to it, posix separators. */
function sourceFiles(dir = SRC): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts')) out.push(relative(SRC, path).split('\\').join('/'));
  }
  return out.sort();
}

const parsed = new Map<string, Import[]>();

/** Every import of `file` (relative to src/) in `text`: declarations, re-exports, import(). */
function importsOf(file: string, text: string): Import[] {
  const key = `${file}\0${text}`;
  let imports = parsed.get(key);
  if (imports === undefined) parsed.set(key, (imports = parseImports(file, text)));
  return imports;
}

function parseImports(file: string, text: string): Import[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: Import[] = [];
  const add = (node: ts.Node, specifier: ts.Expression | undefined, typeOnly: boolean): void => {
    if (specifier === undefined || !ts.isStringLiteralLike(specifier)) return;
    const spec = specifier.text;
    const target = spec.startsWith('.') ? posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\.js$/, '.ts') : undefined;
    const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
    out.push({ file, line, specifier: spec, typeOnly, target });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const typeOnly = clause !== undefined && (clause.isTypeOnly || (clause.name === undefined && clause.namedBindings !== undefined
        && ts.isNamedImports(clause.namedBindings) && clause.namedBindings.elements.length > 0 && clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node, node.moduleSpecifier, typeOnly);
    } else if (ts.isExportDeclaration(node)) {
      add(node, node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node, node.arguments[0], false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node, node.argument.literal, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** The area of a file relative to src/: its top directory, or the root file's name. */
function areaOf(file: string): string {
  const slash = file.indexOf('/');
  return slash >= 0 ? file.slice(0, slash) : file.replace(/\.ts$/, '');
}

function allowed(from: string, to: string): boolean {
  const a = RANK[from];
  const b = RANK[to];
  if (a === undefined || b === undefined) return false;
  return from === to || b < a || (SIBLINGS[from]?.includes(to) ?? false);
}

function rule(from: string): string {
  const below = Object.keys(RANK).filter((to) => to !== from && allowed(from, to));
  if (RANK[from] === undefined) return `${from}/ is not in the layer table (add it to RANK in test/architecture/layers.test.ts)`;
  return `${from} (rank ${RANK[from]}) may import only ${below.join(', ') || 'nothing'}`;
}

const BUILTINS = new Set(builtinModules);

/** Layer, purity and dependency violations among `files` (relative path -> text). */
function layerViolations(files: ReadonlyMap<string, string>, exceptions = KNOWN_EXCEPTIONS): { violations: string[]; usedExceptions: Set<number> } {
  const violations: string[] = [];
  const usedExceptions = new Set<number>();
  for (const [file, text] of files) {
    const from = areaOf(file);
    const where = (imp: Import): string => `src/${file}:${imp.line} imports '${imp.specifier}'`;
    for (const imp of importsOf(file, text)) {
      if (imp.target !== undefined) {
        if (!files.has(imp.target)) {
          violations.push(`${where(imp)}: no such file src/${imp.target}`);
          continue;
        }
        const to = areaOf(imp.target);
        if (allowed(from, to)) continue;
        const known = exceptions.findIndex((e) => e.from === from && e.to === to);
        if (known >= 0) {
          usedExceptions.add(known);
          continue;
        }
        violations.push(`${where(imp)} (${to}): ${rule(from)}`);
      } else if (imp.specifier.startsWith('node:') || BUILTINS.has(imp.specifier)) {
        if (PURE.includes(from)) violations.push(`${where(imp)}: ${from}/ is I/O-free (STYLE.md item 1), no node:* module`);
      } else {
        const name = imp.specifier.startsWith('@') ? imp.specifier.split('/').slice(0, 2).join('/') : imp.specifier.split('/')[0]!;
        if (PACKAGE.dependencies[name] === undefined && PACKAGE.optionalDependencies?.[name] === undefined && !imp.typeOnly) {
          violations.push(`${where(imp)}: '${name}' is not in package.json "dependencies", so an installed package cannot load it`);
        }
      }
    }
    if (PURE.includes(from)) {
      // Comments may name these; code may not.
      const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      const m = AMBIENT.exec(code);
      if (m !== null) violations.push(`src/${file} uses ${m[1]}: ${from}/ takes time and randomness as arguments (STYLE.md item 1)`);
    }
  }
  return { violations, usedExceptions };
}

/**
 * Import cycles (strongly connected components of more than one file, or a self-import) among
 * the imports that exist at run time: `import type` is erased (verbatimModuleSyntax), so a type
 * used both ways is no cycle.
 */
function importCycles(files: ReadonlyMap<string, string>): string[][] {
  const graph = new Map<string, string[]>();
  for (const [file, text] of files) {
    const targets = importsOf(file, text).flatMap((i) => (i.target !== undefined && !i.typeOnly && files.has(i.target) ? [i.target] : []));
    graph.set(file, [...new Set(targets)]);
  }
  // Tarjan's strongly connected components; recursion is fine for a few hundred files.
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) connect(v);
  return cycles;
}

function readTree(): Map<string, string> {
  return new Map(sourceFiles().map((f) => [f, readFileSync(join(SRC, f), 'utf8')]));
}

describe('layers (docs/architecture.md "Layers and imports")', () => {
  const tree = readTree();

  it('every src file is in an area of the table', () => {
    expect(tree.size).toBeGreaterThan(100);
    const unknown = [...new Set([...tree.keys()].map(areaOf))].filter((a) => RANK[a] === undefined);
    expect(unknown, 'add new areas to RANK in test/architecture/layers.test.ts').toEqual([]);
  });

  it('imports go down the layers; core and policy stay I/O-free; packages are dependencies', () => {
    const { violations } = layerViolations(tree);
    expect(violations).toEqual([]);
  });

  it('every KNOWN_EXCEPTIONS entry is still needed (remove it once the import is gone)', () => {
    const { usedExceptions } = layerViolations(tree);
    const stale = KNOWN_EXCEPTIONS.filter((_, i) => !usedExceptions.has(i)).map((e) => `${e.from} -> ${e.to} (${e.why})`);
    expect(stale).toEqual([]);
  });

  it('no import cycles between src files other than KNOWN_CYCLES, and each of those still exists', () => {
    const cycles = importCycles(tree).map((c) => c.join(' <-> '));
    const known = KNOWN_CYCLES.map((c) => [...c.files].sort().join(' <-> '));
    expect(cycles.filter((c) => !known.includes(c)), 'new import cycles').toEqual([]);
    expect(known.filter((c) => !cycles.includes(c)), 'KNOWN_CYCLES entries no longer needed: remove them').toEqual([]);
  });

  it('the checks see what they must (a tree with one of each violation)', () => {
    const fake = new Map<string, string>([
      ['core/a.ts', "import { b } from './b.js';\nimport { readFileSync } from 'node:fs';\nexport const a = Date.now();"],
      ['core/b.ts', "import type { A } from './a.js';\nexport { x } from '../io/x.js';"],
      ['io/x.ts', "export const x = 1;\nconst later = () => import('../device/d.js');"],
      ['device/d.ts', "import { p } from '../uapi/p.js';\nimport { y } from 'vitest';\nexport const d = 1;"],
      ['uapi/p.ts', "import type { T } from '../nowhere/t.js';\nexport const p = 1;"],
      ['policy/f.ts', "// Date.now() in a comment is fine\nexport const f = setTimeout;"],
      ['bridge/r.ts', "import { s } from '../nat/s.js';"],
      ['nat/s.ts', 'export const s = 1;'],
    ]);
    const { violations, usedExceptions } = layerViolations(fake);
    expect(violations).toEqual([
      "src/core/a.ts:2 imports 'node:fs': core/ is I/O-free (STYLE.md item 1), no node:* module",
      'src/core/a.ts uses Date.now: core/ takes time and randomness as arguments (STYLE.md item 1)',
      "src/core/b.ts:2 imports '../io/x.js' (io): core (rank 1) may import only errors",
      "src/io/x.ts:2 imports '../device/d.js' (device): io (rank 2) may import only errors, core",
      "src/device/d.ts:1 imports '../uapi/p.js' (uapi): device (rank 3) may import only errors, core, io, crypto, policy, api, log, version",
      "src/device/d.ts:2 imports 'vitest': 'vitest' is not in package.json \"dependencies\", so an installed package cannot load it",
      "src/uapi/p.ts:1 imports '../nowhere/t.js': no such file src/nowhere/t.ts",
      'src/policy/f.ts uses setTimeout: policy/ takes time and randomness as arguments (STYLE.md item 1)',
    ]);
    expect([...usedExceptions]).toEqual([]);
    expect(layerViolations(fake, [{ from: 'device', to: 'uapi', why: 'test' }]).usedExceptions).toEqual(new Set([0]));
    expect(importCycles(fake)).toEqual([]); // core/b.ts -> core/a.ts is type-only
    fake.set('core/b.ts', "import { a } from './a.js';");
    expect(importCycles(fake)).toEqual([['core/a.ts', 'core/b.ts']]);
    expect(importCycles(new Map([['cli/x.ts', "import './x.js';"]]))).toEqual([['cli/x.ts']]);
  });
});
