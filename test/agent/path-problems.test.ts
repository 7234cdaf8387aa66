// No silent failure (issue 13): a peer without any usable endpoint is warned about once, after the
// grace period, named with what was tried; readiness fails only while every peer has a problem.

import { describe, expect, it } from 'vitest';
import { PathProblems } from '../../src/agent/path-problems.js';
import type { PeerInfo } from '../../src/api/types.js';

const peer = (id: string, extra: Partial<PeerInfo> = {}): PeerInfo => ({ node_id: id, mesh_ip: '10.100.0.9', public_key: Buffer.alloc(32, id.charCodeAt(0)).toString('base64'), ...extra });

describe('PathProblems', () => {
  it('warns once per episode after the grace period, naming the peer and what was tried', () => {
    const warnings: string[] = [];
    const pp = new PathProblems(30_000, (m) => warnings.push(m));
    const a = peer('a');
    const b = peer('b', { endpoint: '192.0.2.1:51820' });
    const input = (aHas: boolean) => [{ info: a, deviceHasEndpoint: aHas }, { info: b, deviceHasEndpoint: true }];
    pp.check(input(false), 0);
    pp.check(input(false), 29_999);
    expect(warnings).toEqual([]);
    expect(pp.problemOf('a')).toBeUndefined();
    pp.check(input(false), 30_000);
    pp.check(input(false), 90_000);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^peer a \(mesh IP 10\.100\.0\.9, key .*\) has no usable endpoint after 30 s \(control-plane endpoint: none; candidates: none; relay: none; no handshake from it reached us\)/);
    expect(pp.problemOf('a')).toMatch(/no usable endpoint/);
    expect(pp.problemOf('b')).toBeUndefined();
    expect(pp.notReadyReason).toBeUndefined(); // b is fine
    // Recovered (a packet from it taught the device an endpoint), then lost again: a new episode.
    pp.check(input(true), 91_000);
    expect(pp.problemOf('a')).toBeUndefined();
    pp.check(input(false), 92_000);
    pp.check(input(false), 122_000);
    expect(warnings).toHaveLength(2);
  });

  it('not ready while every peer has a problem; no peers is no problem', () => {
    const pp = new PathProblems(1000, () => {});
    pp.check([], 0);
    expect(pp.notReadyReason).toBeUndefined();
    const both = [peer('a'), peer('b')].map((info) => ({ info, deviceHasEndpoint: false }));
    pp.check(both, 0);
    pp.check(both, 1000);
    expect(pp.notReadyReason).toMatch(/no peer has a usable endpoint \(2 of 2\)/);
    // A vanished peer is forgotten.
    pp.check(both.slice(0, 1), 2000);
    expect(pp.problemOf('b')).toBeUndefined();
  });
});
