// `up --netstack` (wireguard.netstack) in process, no root: two agents against an in-process
// control plane, each with a userspace TCP/IP stack on its mesh IP. Node 2 serves HTTP on its
// mesh IP from that stack; node 1 reaches it through its SOCKS5 proxy and a port forward (local
// loopback sockets), and through iface.net.fetch: the demo's "HTTP from node 1 to node 2, no root".

import { writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { parseConfigFlags } from '../../src/agent/config.js';
import type { ControlPlane } from '../../src/control-plane/server.js';
import { createLogger } from '../../src/log/logger.js';
import { loopbackAgentConfig, startControlPlane, stopMesh } from './loopback-mesh.js';
import { until } from '../helpers/wait.js';

const log = createLogger('silent');

describe('agent --netstack: SOCKS5 and forwards into the mesh without root', () => {
  let dir: string;
  let cp: ControlPlane;
  const agents: Agent[] = [];
  const web = http.createServer((req, res) => res.end(`node 2 says hi to ${req.url}`));
  let socksPort = 0;
  let forwardPort = 0;

  beforeAll(async () => {
    ({ dir, cp } = await startControlPlane('plexd-netstack-', { logger: log, pollMs: 50 }, true));
    // Free loopback ports for the proxy and the forward (bound for a moment, then released).
    const free = async () => {
      const s = http.createServer().listen(0, '127.0.0.1');
      await once(s, 'listening');
      const p = (s.address() as { port: number }).port;
      s.close();
      return p;
    };
    socksPort = await free();
    forwardPort = await free();
    for (let i = 0; i < 2; i++) {
      const tokenFile = join(dir, `n${i}.token`);
      writeFileSync(tokenFile, cp.store.createToken().token);
      const extra: [string, string][] = [['registration.token_file', tokenFile], ['wireguard.netstack', 'true']];
      if (i === 0) extra.push(['netstack.socks5', `127.0.0.1:${socksPort}`]);
      const config = loopbackAgentConfig(cp.url, dir, i, `ns-${i}`, extra);
      agents.push(await Agent.start({ config, logger: log, env: {}, health: false, nodeApi: false }));
    }
    const [a, b] = agents as [Agent, Agent];
    b.iface.net!.createServer((s) => web.emit('connection', s)).listen(80);
    await until('node 1 reaches node 2', 15_000, async () => (await a.iface.ping(b.identity.mesh_ip, 1000)) !== undefined);
  }, 40_000);

  afterAll(async () => {
    web.close();
    await stopMesh(agents, cp, dir);
  });

  it('the CLI spells it --netstack --socks5 HOST:PORT --forward L=R (repeatable)', () => {
    const f = parseConfigFlags(['--netstack', '--socks5', '127.0.0.1:1080', '--forward', '127.0.0.1:1=a:2', '--forward=127.0.0.1:3=b:4']);
    expect(Object.fromEntries(f.flags)).toEqual({ 'wireguard.netstack': 'true', 'netstack.socks5': '127.0.0.1:1080', 'netstack.forward': '127.0.0.1:1=a:2,127.0.0.1:3=b:4' });
  });

  it('node 1 fetches from node 2 through its stack, its SOCKS5 proxy and a forward', async () => {
    const [a, b] = agents as [Agent, Agent];
    expect(a.iface.userspace).toBe(true);
    const res = await a.iface.net!.fetch(`http://${b.identity.mesh_ip}/fetch`);
    expect(await res.text()).toBe('node 2 says hi to /fetch');

    // SOCKS5 CONNECT by IPv4 address, then a plain HTTP/1.0 request over the tunnel.
    const s = connect(socksPort, '127.0.0.1');
    s.write(Buffer.from([5, 1, 0]));
    const ip = b.identity.mesh_ip.split('.').map(Number);
    s.write(Buffer.from([5, 1, 0, 1, ...ip, 0, 80]));
    s.write('GET /socks HTTP/1.0\r\n\r\n');
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    await once(s, 'end');
    expect(text.startsWith('\x05\x00\x05\x00')).toBe(true);
    expect(text).toContain('node 2 says hi to /socks');

    // A forward started the way the agent does (netstack.forward), to node 2's port 80.
    const { startForward, parseForward } = await import('../../src/net/proxy.js');
    const fwd = await startForward(a.iface.net!, parseForward(`127.0.0.1:${forwardPort}=${b.identity.mesh_ip}:80`));
    try {
      const body = await new Promise<string>((resolve, reject) => {
        http.get(`http://127.0.0.1:${forwardPort}/forward`, (r) => {
          let t = '';
          r.setEncoding('utf8').on('data', (d) => (t += d)).on('end', () => resolve(t));
        }).on('error', reject);
      });
      expect(body).toBe('node 2 says hi to /forward');
    } finally {
      fwd.close();
    }
  }, 30_000);
});
