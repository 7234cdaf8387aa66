// PLEXD_POLICY_FILE on the wireguard-go compatible daemon (our extension, docs/policy.md): our
// daemon in namespace A enforces a JSON policy file, wireguard-go in B is its peer over veth.
// The first file allows ICMP only from B to A: B pings A (the reply passes as tracked), A cannot
// ping B. After rewriting the file to allow A -> B and SIGHUP, A pings B and B no longer pings A.
// A broken file on SIGHUP keeps the policy in force; a broken file at start exits 1 naming it.
//
// Network rule: traffic stays inside the namespaces this file creates.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, sweepStale, type Netns } from '../helpers/netns.js';
import { WgLab, ensureBuilt, ping, waitFor, wgUnavailableReason, type WgInterface } from '../helpers/wg-lab.js';

const skip = (requireRoot('policy daemon netns tests') ?? wgUnavailableReason('policy daemon netns tests')) !== undefined;
const OUTER_A = '10.79.0.1';
const OUTER_B = '10.79.0.2';
const IN_A = '10.80.0.1';
const IN_B = '10.80.0.2';

const icmpRule = (src: string, dst: string) => ({ action: 'allow', protocol: 'icmp', source_cidr: `${src}/32`, destination_cidr: `${dst}/32` });

describe.skipIf(skip)('PLEXD_POLICY_FILE on the daemon', () => {
  const wl = new WgLab();
  let nsA: Netns;
  let nsB: Netns;
  let a: WgInterface;
  let policyFile: string;
  const pings = async (ns: Netns, dst: string) => (await ping(ns, dst, { count: 1, waitS: 1 })).received === 1;

  beforeAll(async () => {
    sweepStale();
    await ensureBuilt();
    nsA = await wl.namespace();
    nsB = await wl.namespace();
    await wl.lab.veth(nsA, nsB, { a: `${OUTER_A}/24`, b: `${OUTER_B}/24` });
    policyFile = join(wl.dir, 'policy.json');
    writeFileSync(policyFile, JSON.stringify({ revision_id: '1', fingerprint: 'b-to-a', rules: [icmpRule(IN_B, IN_A)] }));
    a = await wl.start(nsA, 'ours', { addresses: [`${IN_A}/24`], env: { PLEXD_POLICY_FILE: policyFile, LOG_LEVEL: 'verbose' } });
    const b = await wl.start(nsB, 'wireguard-go', { addresses: [`${IN_B}/24`] });
    await wl.connect(a, b, { allowedOfA: [`${IN_A}/32`], allowedOfB: [`${IN_B}/32`], endpointOfB: `${OUTER_B}:${await b.listenPort()}`, endpointOfA: `${OUTER_A}:${await a.listenPort()}` });
  }, 60_000);

  afterAll(() => wl.cleanup());

  it('enforces the file from the start: B -> A passes, A -> B is refused', async () => {
    expect(await waitFor(() => pings(nsB, IN_A), 10_000, 200)).toBe(true);
    expect(await pings(nsA, IN_B)).toBe(false);
    expect(a.output).toMatch(/Policy revision 1 from .*: 1 rules/);
  });

  it('SIGHUP reloads the file; a broken file keeps the policy in force', async () => {
    writeFileSync(policyFile, JSON.stringify([icmpRule(IN_A, IN_B)]));
    a.process.kill('SIGHUP');
    expect(await waitFor(() => pings(nsA, IN_B), 5000, 200)).toBe(true);
    expect(await pings(nsB, IN_A)).toBe(false);
    expect(a.output).toMatch(/Policy revision file from /);

    writeFileSync(policyFile, JSON.stringify([{ ...icmpRule(IN_A, IN_B), destination_cidr: '::/0' }]));
    a.process.kill('SIGHUP');
    expect(await waitFor(() => /Policy reload from .* failed, previous policy stays in force/.test(a.output), 5000, 100)).toBe(true);
    expect(await pings(nsA, IN_B)).toBe(true);
    expect(await pings(nsB, IN_A)).toBe(false);
    expect(await a.exited(0)).toBeUndefined();
  });

  it('a broken file at start ends the daemon with exit 1 naming the rule', async () => {
    const bad = join(wl.dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ revision_id: 7, rules: [{ action: 'maybe' }] }));
    const c = await wl.start(nsA, 'ours', { bare: true, env: { PLEXD_POLICY_FILE: bad } }).catch((err: Error) => err);
    expect(c).toBeInstanceOf(Error);
    expect((c as Error).message).toMatch(/rules\[0\]\.action/);
  });
});
