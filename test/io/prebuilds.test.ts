// The prebuilt addons the package ships (prebuilds/, made by `npm run build:prebuilds`) are built
// from the native sources in this checkout: a change to native/ or binding.gyp without a re-run
// fails here. Each is a shared object for its machine; the one for this host loads.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url);
const manifest = JSON.parse(readFileSync(new URL('prebuilds/manifest.json', ROOT), 'utf8')) as { napi: number; sources: string; platforms: string[] };
// ELF e_machine of each platform's .node.
const MACHINE: Record<string, number> = { 'linux-x64': 62, 'linux-arm64': 183 };

/** What scripts/prebuild.sh hashes: binding.gyp then native/* in byte order, concatenated. */
function sourcesHash(): string {
  const hash = createHash('sha256').update(readFileSync(new URL('binding.gyp', ROOT)));
  for (const name of readdirSync(new URL('native/', ROOT)).sort()) hash.update(readFileSync(new URL(`native/${name}`, ROOT)));
  return hash.digest('hex');
}

describe('prebuilds/', () => {
  it('were built from the native sources of this checkout (else run `npm run build:prebuilds`)', () => {
    expect(manifest.sources).toBe(sourcesHash());
  });

  it('use the N-API version binding.gyp sets, which this Node.js supports', () => {
    expect(readFileSync(new URL('binding.gyp', ROOT), 'utf8')).toContain(`"NAPI_VERSION=${manifest.napi}"`);
    expect(Number(process.versions.napi)).toBeGreaterThanOrEqual(manifest.napi);
  });

  it.each(['linux-x64', 'linux-arm64'])('%s is a small ELF shared object for its machine', (platform) => {
    expect(manifest.platforms).toContain(platform);
    const file = new URL(`prebuilds/${platform}/plexd_native.node`, ROOT);
    const bytes = readFileSync(file);
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(bytes.readUInt16LE(16)).toBe(3); // ET_DYN
    expect(bytes.readUInt16LE(18)).toBe(MACHINE[platform]);
    expect(statSync(file).size).toBeLessThan(256 * 1024);
  });

  it.skipIf(!(`${process.platform}-${process.arch}` in MACHINE))('the one for this host loads and has the addon surface', () => {
    const addon = createRequire(import.meta.url)(new URL(`prebuilds/${process.platform}-${process.arch}/plexd_native.node`, ROOT).pathname) as Record<string, unknown>;
    for (const fn of ['open', 'write', 'close', 'udpOpen', 'udpFlush', 'setSocketMark']) expect(typeof addon[fn], fn).toBe('function');
  });
});
