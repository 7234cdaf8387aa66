// The addon loader's choice (src/io/native.ts): the source build before the shipped prebuilt,
// the next candidate when one is absent or does not load, and with none one error that says what
// was tried and what to do (issue 17).
import { describe, expect, it } from 'vitest';
import { BindError, TunError } from '../../src/io/errors.js';
import { addonCandidates, chooseAddon, nativeAddonStatus, unavailableError, type AddonCandidate } from '../../src/io/native.js';

const ROOT = '/pkg';
const [SOURCE, PREBUILT] = addonCandidates(ROOT, 'linux', 'arm64') as [AddonCandidate, AddonCandidate];
const fake = (path: string) => ({ from: path });

describe('addonCandidates', () => {
  it('tries the source build first, then the prebuilt for the platform and arch', () => {
    expect(addonCandidates(ROOT, 'linux', 'arm64')).toEqual([
      { origin: 'source', path: '/pkg/build/Release/plexd_native.node' },
      { origin: 'prebuilt', path: '/pkg/prebuilds/linux-arm64/plexd_native.node' },
    ]);
  });
});

describe('chooseAddon', () => {
  it('takes the prebuilt when there is no source build', () => {
    const r = chooseAddon([SOURCE, PREBUILT], fake, (p) => p === PREBUILT.path, ROOT);
    expect(r).toEqual({ addon: { from: PREBUILT.path }, from: PREBUILT });
  });

  it('takes the source build over the prebuilt when both are there', () => {
    const r = chooseAddon([SOURCE, PREBUILT], fake, () => true, ROOT);
    expect('from' in r && r.from.origin).toBe('source');
  });

  it('falls back to the prebuilt when the source build does not load', () => {
    const load = (p: string) => {
      if (p === SOURCE.path) throw new Error('undefined symbol: napi_foo\nmore');
      return fake(p);
    };
    const r = chooseAddon([SOURCE, PREBUILT], load, () => true, ROOT);
    expect('from' in r && r.from.origin).toBe('prebuilt');
  });

  it('with none: one reason per candidate, relative to the package, and the first load error as cause', () => {
    const bad = new Error('wrong ELF class: ELFCLASS32\nRequire stack: ...');
    const r = chooseAddon([SOURCE, PREBUILT], (p) => { throw p === PREBUILT.path ? bad : new Error('?'); }, (p) => p === PREBUILT.path, ROOT);
    expect(r).toEqual({
      failures: ['build/Release/plexd_native.node: absent', 'prebuilds/linux-arm64/plexd_native.node: wrong ELF class: ELFCLASS32'],
      cause: bad,
    });
  });
});

describe('unavailableError', () => {
  const why = 'needs the native addon plexd_native.node, and none loads for linux-riscv64 (x: absent)';

  it('for a TUN: TunError ERR_TUN_UNSUPPORTED naming the rebuild and the packet-callback way around', () => {
    const err = unavailableError('tun', why, ['build it with `npm rebuild plexd-userspace`']);
    expect(err).toBeInstanceOf(TunError);
    expect((err as TunError).code).toBe('ERR_TUN_UNSUPPORTED');
    expect(err.message).toBe(
      `a TUN device ${why}; build it with \`npm rebuild plexd-userspace\`; or run without a TUN: the agent's packet-callback mode (wireguard.packet_callback: true) or the library's Device onPacket`,
    );
  });

  it('for the UDP bind: BindError ERR_BIND_FAILED naming the dgram bind', () => {
    const err = unavailableError('udp', why, []);
    expect(err).toBeInstanceOf(BindError);
    expect(err.message).toContain('PLEXD_BIND=dgram');
  });
});

describe.skipIf(process.platform !== 'linux')('nativeAddonStatus', () => {
  it('says which addon this checkout loads (a source build or the prebuilt)', () => {
    const s = nativeAddonStatus();
    expect(['source', 'prebuilt']).toContain(s.origin);
    expect(nativeAddonStatus()).toBe(s); // loaded once
  });
});
