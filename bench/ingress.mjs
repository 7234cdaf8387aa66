// Ingress benchmark (issue 16): HTTPS requests/s and throughput through the bridge's ingress
// (dist/bridge/ingress/ingress.js) next to a direct connection, all on loopback. Three processes:
// the origin (plain HTTP for terminate, HTTPS for direct and passthrough), the ingress (one
// listener, a terminate and a passthrough rule), and this client. Requests: keep-alive GETs of a
// 1 KiB body from CONC connections for SECONDS each; throughput: GETs of a 64 MiB body, one at a
// time. Run with `npm run bench:ingress` (SECONDS, CONC to change). No traffic leaves 127.0.0.1.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request } from 'node:https';
import { fileURLToPath } from 'node:url';
import { createSelfSignedCertificate } from '../dist/control-plane/certificate.js';

const SECONDS = Number(process.env.SECONDS ?? 5);
const CONC = Number(process.env.CONC ?? 16);
const BIG = 64 << 20;
const self = fileURLToPath(import.meta.url);
const role = process.argv[2];

if (role === 'origin') {
  const { createServer } = await import('node:http');
  const { createServer: createHttps } = await import('node:https');
  const { cert, key } = JSON.parse(process.argv[3]);
  const small = Buffer.alloc(1024, 120);
  const big = Buffer.alloc(BIG, 121);
  const handler = (req, res) => res.end(req.url === '/big' ? big : small);
  const plain = createServer(handler).listen(0, '127.0.0.1');
  const tls = createHttps({ cert, key }, handler).listen(0, '127.0.0.1');
  await Promise.all([once(plain, 'listening'), once(tls, 'listening')]);
  process.send({ plain: plain.address().port, tls: tls.address().port });
} else if (role === 'ingress') {
  const { Ingress } = await import('../dist/bridge/ingress/ingress.js');
  const { silentLogger } = await import('../dist/log/logger.js');
  const { cert, key, plain, tls } = JSON.parse(process.argv[3]);
  const { createServer } = await import('node:net');
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = probe.address().port;
  probe.close();
  const ing = new Ingress({ log: silentLogger, address: '127.0.0.1', httpPort: null });
  const refused = await ing.reconcile([
    { rule_id: 't', hostname: 'term.bench', listen_port: port, target_addr: `127.0.0.1:${plain}`, mode: 'terminate', cert_pem: cert, key_pem: key },
    { rule_id: 'p', hostname: 'pass.bench', listen_port: port, target_addr: `127.0.0.1:${tls}`, mode: 'passthrough' },
  ]);
  if (refused.size > 0) throw new Error(JSON.stringify([...refused]));
  process.send({ port });
} else {
  const id = createSelfSignedCertificate(['term.bench', 'pass.bench', 'direct.bench']);
  const origin = fork(self, ['origin', JSON.stringify({ cert: id.certPem, key: id.keyPem })]);
  const [ports] = await once(origin, 'message');
  const ingress = fork(self, ['ingress', JSON.stringify({ cert: id.certPem, key: id.keyPem, ...ports })]);
  const [{ port }] = await once(ingress, 'message');

  const get = (agent, p, servername, path) =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: p, servername, path, agent, ca: id.certPem }, (res) => {
        let n = 0;
        res.on('data', (d) => (n += d.length));
        res.on('end', () => resolve(n));
      });
      req.on('error', reject);
      req.end();
    });
  async function rps(p, servername) {
    const agent = new Agent({ keepAlive: true, maxSockets: CONC });
    let n = 0;
    const end = performance.now() + SECONDS * 1000;
    await Promise.all(Array.from({ length: CONC }, async () => {
      while (performance.now() < end) {
        await get(agent, p, servername, '/');
        n++;
      }
    }));
    agent.destroy();
    return Math.round(n / SECONDS);
  }
  async function throughput(p, servername) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    await get(agent, p, servername, '/big');
    const t0 = performance.now();
    let bytes = 0;
    for (let i = 0; i < 4; i++) bytes += await get(agent, p, servername, '/big');
    agent.destroy();
    return Math.round(((bytes * 8) / ((performance.now() - t0) / 1000) / 1e6) * 10) / 10;
  }
  const cases = [
    ['direct HTTPS (origin TLS)', ports.tls, 'direct.bench'],
    ['bridge terminate (TLS at the bridge, plain TCP on)', port, 'term.bench'],
    ['bridge passthrough (SNI peek, origin TLS)', port, 'pass.bench'],
  ];
  console.log(`ingress bench: ${SECONDS} s per case, ${CONC} keep-alive connections, 1 KiB bodies; throughput: 4 x 64 MiB on one connection`);
  // No WireGuard is on this path (TCP/TLS on loopback), so the reference in the same run is the
  // direct connection: each case's ratio is against it.
  console.log('| path | requests/s | throughput (Mbit/s) | ratio to direct (req/s, Mbit/s) |\n|---|---|---|---|');
  let direct;
  for (const [name, p, sni] of cases) {
    const row = { rps: await rps(p, sni), mbps: await throughput(p, sni) };
    direct ??= row;
    console.log(`| ${name} | ${row.rps} | ${row.mbps} | ${(row.rps / direct.rps).toFixed(2)}x, ${(row.mbps / direct.mbps).toFixed(2)}x |`);
  }
  origin.kill();
  ingress.kill();
}
