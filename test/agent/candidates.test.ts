// Candidate gathering (issue 13): which interface addresses become endpoint candidates, and how
// advertise_endpoint, bind_address, STUN and relay combine. A table of fake interfaces.

import { describe, expect, it } from 'vitest';
import { MAX_CANDIDATES } from '../../src/api/types.js';
import { chooseCandidates, interfaceSkipReason, localCandidates, type InterfaceTable } from '../../src/agent/candidates.js';

const v4 = (address: string, internal = false) => ({ address, family: 'IPv4' as const, internal });
const v6 = (address: string, internal = false) => ({ address, family: 'IPv6' as const, internal });

const HOST: InterfaceTable = {
  lo: [v4('127.0.0.1', true), v6('::1', true)],
  eth0: [v4('192.168.1.20'), v6('fe80::1%eth0'), v6('2001:db8::20')],
  eth1: [v4('169.254.3.3'), v4('10.0.5.1')],
  plexd0: [v4('10.100.0.5')],
  wg0: [v4('10.9.0.1')],
  tun3: [v4('10.8.0.1')],
  docker0: [v4('172.17.0.1')],
  'br-1a2b': [v4('172.18.0.1')],
  veth9: [v6('fe80::9')],
  cni0: [v4('10.244.0.1')],
  flannel1: [v4('10.244.0.0')],
  cali77: [v4('10.1.1.1')],
  virbr0: [v4('192.168.122.1')],
  // Named like nothing we know, but it carries a mesh address: another tunnel of ours.
  meshy: [v4('10.100.0.9'), v4('10.3.3.3')],
  ens5: [{ address: '10.0.9.9', family: 4, internal: false }],
};

const opts = { port: 51820, meshInterface: 'plexd0', meshCidr: '10.100.0.0/16', allow: [] as string[] };

describe('local candidates', () => {
  it('keeps LAN addresses, IPv4 first; skips loopback, link-local, mesh, tunnels and bridges', () => {
    expect(localCandidates(HOST, opts)).toEqual(['192.168.1.20:51820', '10.0.5.1:51820', '10.0.9.9:51820', '[2001:db8::20]:51820']);
  });

  it.each([
    ['plexd0', 'the mesh interface'],
    ['wg0', 'a WireGuard/TUN device'],
    ['tun3', 'a WireGuard/TUN device'],
    ['plexd7', 'a WireGuard/TUN device'],
    ['docker0', 'a container/VM bridge'],
    ['br-1a2b', 'a container/VM bridge'],
    ['veth9', 'a container/VM bridge'],
    ['cni0', 'a container/VM bridge'],
    ['flannel1', 'a container/VM bridge'],
    ['cali77', 'a container/VM bridge'],
    ['virbr0', 'a container/VM bridge'],
    ['eth0', undefined],
    ['enp3s0', undefined],
  ])('interface %s: %s', (name, reason) => {
    const got = interfaceSkipReason(name, opts);
    if (reason === undefined) expect(got).toBeUndefined();
    else expect(got).toMatch(new RegExp(`^${reason.replace(/[/]/g, '\\/')}`));
  });

  it('nat.candidate_interfaces is an allow-list that admits a bridge, but never the mesh interface', () => {
    expect(localCandidates(HOST, { ...opts, allow: ['docker0', 'br-*', 'plexd0'] })).toEqual(['172.17.0.1:51820', '172.18.0.1:51820']);
  });

  it('the interface named in wireguard.interface_name is skipped whatever its name', () => {
    expect(localCandidates({ custom: [v4('192.168.9.9')], eth0: [v4('192.168.1.20')] }, { ...opts, meshInterface: 'custom', meshCidr: undefined })).toEqual(['192.168.1.20:51820']);
  });
});

describe('chooseCandidates', () => {
  const local = ['192.168.1.20:51820', '10.0.5.1:51820'];
  it('local first, then reflexive, then relay; endpoint keeps its upstream meaning', () => {
    expect(chooseCandidates({ local })).toEqual({ endpoint: '192.168.1.20:51820', candidates: local });
    expect(chooseCandidates({ local, reflexive: '203.0.113.7:40000', relay: '198.51.100.1:51821' })).toEqual({
      endpoint: '203.0.113.7:40000',
      candidates: [...local, '203.0.113.7:40000', '198.51.100.1:51821'],
    });
    // No NAT: the reflexive address is a local one, listed once.
    expect(chooseCandidates({ local, reflexive: '10.0.5.1:51820' }).candidates).toEqual(['192.168.1.20:51820', '10.0.5.1:51820']);
    expect(chooseCandidates({})).toEqual({ endpoint: undefined, candidates: [] });
  });

  it('advertise_endpoint wins outright; bind_address replaces the local scan', () => {
    expect(chooseCandidates({ advertise: '198.51.100.9:4000', local, reflexive: '203.0.113.7:40000' })).toEqual({ endpoint: '198.51.100.9:4000', candidates: ['198.51.100.9:4000'] });
    expect(chooseCandidates({ bound: '10.77.0.11:51820', local, reflexive: '203.0.113.7:40000' })).toEqual({ endpoint: '203.0.113.7:40000', candidates: ['10.77.0.11:51820', '203.0.113.7:40000'] });
    expect(chooseCandidates({ bound: '10.77.0.11:51820', local })).toEqual({ endpoint: '10.77.0.11:51820', candidates: ['10.77.0.11:51820'] });
  });

  it('at most MAX_CANDIDATES, local ones giving way to reflexive and relay', () => {
    const many = Array.from({ length: 30 }, (_, i) => `10.0.0.${i + 1}:51820`);
    const got = chooseCandidates({ local: many, reflexive: '203.0.113.7:40000', relay: '198.51.100.1:51821' }).candidates;
    expect(got).toHaveLength(MAX_CANDIDATES);
    expect(got.slice(-2)).toEqual(['203.0.113.7:40000', '198.51.100.1:51821']);
  });
});
