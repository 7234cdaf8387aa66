// Agent config: precedence flags > env > file > defaults, upstream keys we do not act on warned
// about in one line, unknown keys and invalid values refused with the key named.

import { describe, expect, it } from 'vitest';
import { ConfigError, envName, flagName, parseConfigFlags, resolveConfig } from '../../src/agent/config.js';

const FILE = `
mode: node
log_level: verbose
data_dir: /tmp/plexd-file
api:
  base_url: https://cp.example:8443/
  tls_fingerprint: "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
registration:
  project_id: p1
  resource_handle: web-1
wireguard:
  interface_name: plexd7
  listen_port: 51000
nat:
  stun_servers: [stun.example:3478]
  refresh_interval: 2m
actions:
  enabled: true
tunnel: {max_sessions: 10}
`;

describe('agent config', () => {
  it('uses upstream env and flag names where upstream has them, else derives them from keys', () => {
    expect(envName('api.base_url')).toBe('PLEXD_API');
    expect(flagName('api.base_url')).toBe('--api');
    expect(envName('registration.token_file')).toBe('PLEXD_BOOTSTRAP_TOKEN_FILE');
    expect(envName('wireguard.listen_port')).toBe('PLEXD_WIREGUARD_LISTEN_PORT');
    expect(flagName('wireguard.listen_port')).toBe('--wireguard-listen-port');
  });

  it('refuses a key neither we nor upstream have, naming it', () => {
    expect(() => resolveConfig({ fileText: FILE + 'surprise: 1\n', env: {} })).toThrow(/config surprise: unknown key/);
    expect(() => resolveConfig({ fileText: FILE + 'heartbeat: {intervall: 5s}\n', env: {} })).toThrow(/config heartbeat.intervall: unknown key/);
  });

  it('refuses a key given twice through an alias', () => {
    expect(() => resolveConfig({ fileText: 'api: {base_url: "http://x"}\nnode_api: {socket: /a, socket_path: /b}\n', env: {} })).toThrow(/node_api.socket_path: given twice/);
  });

  it('reads the file over defaults and warns once about upstream keys it ignores', () => {
    const warnings: string[] = [];
    const c = resolveConfig({ fileText: FILE, env: {}, warn: (w) => warnings.push(w) });
    expect(c.api.baseUrl).toBe('https://cp.example:8443');
    expect(c.api.tlsFingerprint).toMatch(/^AB:CD/);
    expect(c.wireguard).toMatchObject({ interfaceName: 'plexd7', listenPort: 51000, mtu: 1420, packetCallback: false });
    expect(c.nat).toEqual({ enabled: true, stunServers: ['stun.example:3478'], refreshIntervalS: 120, candidateInterfaces: [] });
    expect(c.reconcile.intervalS).toBe(60);
    expect(c.wireguard.advertiseEndpoint).toBeUndefined();
    expect(c.health.listen).toBe('127.0.0.1:9101');
    expect(c.nodeApi.socket).toBe('/var/run/plexd/api.sock');
    expect(c.registration.tokenFile).toBe('/etc/plexd/bootstrap-token');
    expect(c.logLevel).toBe('verbose');
    expect(warnings).toEqual(['config: upstream plexd keys not supported by plexd-userspace, ignored: tunnel.max_sessions']);
  });

  it('env beats the file, flags beat env', () => {
    const env = { PLEXD_DATA_DIR: '/tmp/from-env', PLEXD_WIREGUARD_LISTEN_PORT: '52000', PLEXD_CRYPTO: 'node' };
    const c1 = resolveConfig({ fileText: FILE, env });
    expect(c1.dataDir).toBe('/tmp/from-env');
    expect(c1.wireguard.listenPort).toBe(52000);
    const { flags } = parseConfigFlags(['--wireguard-listen-port', '53000', '--data-dir=/tmp/from-flag']);
    const c2 = resolveConfig({ fileText: FILE, env, flags });
    expect(c2.dataDir).toBe('/tmp/from-flag');
    expect(c2.wireguard.listenPort).toBe(53000);
  });

  it('refuses invalid values naming the key', () => {
    const bad: Array<[string, string]> = [
      ['wireguard:\n  listen_port: 70000\napi: {base_url: "http://x"}', 'wireguard.listen_port'],
      ['mode: router\napi: {base_url: "http://x"}', 'mode'],
      ['api: {base_url: "ftp://x"}', 'api.base_url'],
      ['api: {base_url: "http://x", tls_fingerprint: "abc"}', 'api.tls_fingerprint'],
      [`api: {base_url: "http://x", tls_fingerprint: "${'ab'.repeat(32)}"}`, 'api.tls_fingerprint'], // a pin on plain HTTP would go unused
      ['wireguard: {interface_name: "way-too-long-interface"}\napi: {base_url: "http://x"}', 'wireguard.interface_name'],
      ['nat: {refresh_interval: "soon"}\napi: {base_url: "http://x"}', 'nat.refresh_interval'],
      ['mode: node', 'api.base_url'],
      ['- a\n- b', '(file)'],
      ['a: [unclosed', '(file)'],
    ];
    for (const [text, key] of bad) {
      let err: unknown;
      try {
        resolveConfig({ fileText: text, env: {} });
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).key, text).toBe(key);
      expect((err as Error).message).toContain(key);
    }
    expect(() => resolveConfig({ fileText: FILE, env: { PLEXD_WIREGUARD_MTU: 'big' } })).toThrow(/wireguard\.mtu/);
    expect(() => parseConfigFlags(['--no-such-flag', 'x'])).toThrow(ConfigError);
    expect(() => parseConfigFlags(['--data-dir'])).toThrow(/expected a value/);
  });

  it('survives a YAML alias bomb with a clear error', () => {
    const bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill('*' + String.fromCharCode(97 + i)).join(',')}]`).join('\n');
    expect(() => resolveConfig({ fileText: bomb, env: {} })).toThrow(ConfigError);
  });

  it('issue 13 keys: advertise_endpoint (env PLEXD_WIREGUARD_ADVERTISE_ENDPOINT), nat.enabled, candidate_interfaces, reconcile.interval', () => {
    const c = resolveConfig({
      fileText: 'api: {base_url: "http://cp:1"}\nnat: {enabled: false, candidate_interfaces: [docker0, "br-*"]}\nreconcile: {interval: 15s}',
      env: { PLEXD_WIREGUARD_ADVERTISE_ENDPOINT: '[2001:db8::1]:51820' },
    });
    expect(c.wireguard.advertiseEndpoint).toBe('[2001:db8::1]:51820');
    expect(c.nat).toMatchObject({ enabled: false, candidateInterfaces: ['docker0', 'br-*'] });
    expect(c.reconcile.intervalS).toBe(15);
    expect(() => resolveConfig({ fileText: 'api: {base_url: "http://cp:1"}\nwireguard: {advertise_endpoint: "host.example:51820"}', env: {} })).toThrow(/wireguard.advertise_endpoint/);
    expect(() => resolveConfig({ fileText: 'api: {base_url: "http://cp:1"}\nreconcile: {interval: soon}', env: {} })).toThrow(/reconcile.interval/);
  });
});
