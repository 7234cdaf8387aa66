// The package's `install` script (issue 17): installing must not need a compiler. When the addon
// already loads (the prebuilt for this platform, prebuilds/PLATFORM-ARCH, or an earlier source
// build) there is nothing to do; otherwise node-gyp builds it from native/ when a compiler is
// there; otherwise, or when that build fails, it says what is lost and the install still succeeds:
// the library and the agent's packet-callback mode need no addon (src/io/native.ts).
// `npm install --build-from-source` (npm_config_build_from_source) always builds.
// Runs before the TypeScript build exists (`npm ci` in a clone), so it reads no dist/.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const say = (line) => process.stderr.write(`plexd-userspace: ${line}\n`);

// The same places, in the same order, as addonCandidates in src/io/native.ts.
const candidates = [
  ['source build', join(root, 'build', 'Release', 'plexd_native.node')],
  ['prebuilt', join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'plexd_native.node')],
];

function loadable() {
  const require = createRequire(import.meta.url);
  for (const [origin, path] of candidates) {
    if (!existsSync(path)) continue;
    try {
      require(path);
      return origin;
    } catch (err) {
      say(`${path} does not load here: ${String(err.message).split('\n', 1)[0]}`);
    }
  }
  return undefined;
}

const onPath = (name) => (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, name)));

function main() {
  const forced = process.env.npm_config_build_from_source === 'true';
  if (process.platform !== 'linux') {
    say(`no native addon on ${process.platform}: TUN devices are Linux only; the library and packet-callback mode work`);
    return 0;
  }
  const found = forced ? undefined : loadable();
  if (found !== undefined) return 0;
  const missing = [['c++', 'g++'], ['make'], ['python3']].filter((alts) => !alts.some(onPath)).map((alts) => alts[0]);
  if (missing.length > 0) {
    say(`no native addon for ${process.platform}-${process.arch} and no compiler to build one (missing: ${missing.join(', ')}).`);
    say('TUN devices are unavailable; the library, the agent\'s packet-callback mode and the control plane work.');
    say('To build it later: install g++, make and python3, then `npm rebuild plexd-userspace`.');
    return 0;
  }
  // npm puts its own node-gyp on PATH for lifecycle scripts; npm_config_node_gyp names its script.
  const gyp = process.env.npm_config_node_gyp;
  const [cmd, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status === 0) return 0;
  say(`building the native addon failed (${r.error?.message ?? `exit ${r.status}`}); TUN devices are unavailable, the rest works.`);
  return forced ? 1 : 0;
}

process.exitCode = main();
