// The native addon file this checkout loads (src/io/native.ts picks a source build or the
// committed prebuilt), for tests that copy or require the file itself.
import { relative } from 'node:path';
import { nativeAddonStatus } from '../../src/io/native.js';
import { REPO_DIR } from './wg-lab.js';

/** The loaded addon's path relative to the checkout, or undefined when none loads here. */
export function addonFile(): string | undefined {
  const status = nativeAddonStatus();
  return status.origin === 'none' ? undefined : relative(REPO_DIR, status.path);
}
