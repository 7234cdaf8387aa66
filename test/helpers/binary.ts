// The standalone binary under test (dist/bin/plexd-userspace-linux-<arch>, scripts/build-binary.mjs):
// built once per test process when missing or older than any of its inputs, so a fresh clone (CI)
// and a changed src/ both test a binary of the current code.

import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_DIR = fileURLToPath(new URL('../../', import.meta.url));

/** Where `npm run build:binary` puts the binary for this machine. */
export const BINARY = join(REPO_DIR, 'dist/bin', `plexd-userspace-linux-${process.arch}`);

/** How long a build may take on a loaded 2-core machine (it takes about 10 s alone). */
export const BUILD_TIMEOUT_MS = 180_000;

// The binary's inputs: the code, the vectors, the build script and the addons it carries.
function newestInput(): number {
  let newest = 0;
  const see = (path: string) => {
    if (existsSync(path)) newest = Math.max(newest, statSync(path).mtimeMs);
  };
  for (const dir of ['src', 'vectors']) {
    for (const e of readdirSync(join(REPO_DIR, dir), { withFileTypes: true, recursive: true })) {
      if (e.isFile()) see(join(e.parentPath, e.name));
    }
  }
  see(join(REPO_DIR, 'scripts/build-binary.mjs'));
  see(join(REPO_DIR, 'build/Release/plexd_native.node'));
  see(join(REPO_DIR, `prebuilds/linux-${process.arch}/plexd_native.node`));
  return newest;
}

let built: Promise<string> | undefined;

/** The binary's path, after building it when missing or stale. Rejects with the build's output on failure. */
export function ensureBinary(): Promise<string> {
  built ??= (async () => {
    if (existsSync(BINARY) && statSync(BINARY).mtimeMs > newestInput()) return BINARY;
    const child = spawn(process.execPath, [join(REPO_DIR, 'scripts/build-binary.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), BUILD_TIMEOUT_MS);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    if (code !== 0) throw new Error(`npm run build:binary failed (exit ${code}):\n${output}`);
    return BINARY;
  })();
  return built;
}

/**
 * A copy of the binary at `dir`/plexd-userspace (as installed), away from the checkout, so it
 * can only use what it carries: next to the repository a fallback that looks for build/ relative
 * to the executable would find the addon there.
 */
export async function installedBinary(dir: string): Promise<string> {
  const to = join(dir, 'plexd-userspace');
  copyFileSync(await ensureBinary(), to);
  chmodSync(to, 0o755);
  return to;
}
