// The kernel side of test/netns/netstack.test.ts, run inside the TUN-backed peer's namespace:
// `serve`: TCP echo (half-open aware) on 7, UDP echo on 7, HTTP on 80, a TCP sink on 9 that
// answers the byte count after the client's FIN; prints "ready".
// `measure HOST BYTES PINGS`: bench/netstack.mjs's kernel-stack side (netstack-measure.mjs).
// `client HOST PORT BYTES`: sends BYTES random bytes to an echo server, prints one JSON line
// { sent, received, ms } with both sha256 digests.

import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createServer as createHttp } from 'node:http';
import { connect, createServer } from 'node:net';

const [mode, ...args] = process.argv.slice(2);
if (mode === 'serve') {
  let open = 7;
  // 19: floods 8 MiB of 0x5a then ends (our reader pauses: zero window); 13: answers the first
  // byte with a RST; 17: ends at once (we end at once too: simultaneous close).
  createServer((s) => {
    s.on('error', () => {});
    const chunk = Buffer.alloc(64 * 1024, 0x5a);
    let left = 128;
    const pump = () => {
      while (left > 0) {
        left--;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
      s.end();
    };
    pump();
  }).listen(19, () => ready());
  createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.resetAndDestroy());
  }).listen(13, () => ready());
  createServer((s) => {
    s.on('error', () => {});
    s.end();
    s.resume();
  }).listen(17, () => ready());
  createServer({ allowHalfOpen: true }, (s) => {
    let n = 0;
    s.on('error', () => {});
    s.on('data', (d) => (n += d.length));
    s.on('end', () => s.end(String(n)));
  }).listen(9, () => ready());
  const ready = () => --open === 0 && console.log('ready');
  createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  }).listen(7, ready);
  const u = createSocket('udp4');
  u.on('message', (m, r) => u.send(m, r.port, r.address));
  u.bind(7, ready);
  createHttp((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => res.end(`kernel says ${req.method} ${req.url} ${body}`));
  }).listen(80, ready);
} else if (mode === 'client') {
  const [host, port, bytes] = args;
  const data = randomBytes(Number(bytes));
  const sent = createHash('sha256').update(data).digest('hex');
  const got = createHash('sha256');
  const start = performance.now();
  const s = connect({ host, port: Number(port), allowHalfOpen: true }, () => s.end(data));
  s.on('data', (d) => got.update(d));
  s.on('end', () => {
    console.log(JSON.stringify({ sent, received: got.digest('hex'), ms: performance.now() - start }));
    s.destroy();
  });
  s.on('error', (e) => {
    console.log(JSON.stringify({ error: e.message }));
    process.exit(1);
  });
} else if (mode === 'measure') {
  const { measure } = await import('./netstack-measure.mjs');
  const [host, bytes, pings] = args;
  console.log(JSON.stringify(await measure((h, p) => connect({ host: h, port: p, allowHalfOpen: true }), host, Number(bytes), Number(pings))));
} else {
  console.error('usage: netstack-kernel.mjs serve | client HOST PORT BYTES | measure HOST BYTES PINGS');
  process.exit(2);
}
