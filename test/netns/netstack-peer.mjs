// The userspace side of test/netns/netstack.test.ts, run as an unprivileged user (no TUN, no
// root): joins the mesh with plexd-userspace/net (dist/net) and runs the steps named in the JSON
// argument against the kernel peer, printing one JSON line per step.
// argv[2]: { dist, privateKey, peer: { publicKey, endpoint }, address, peerAddress, steps: [...] }

import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as http from 'node:http';

const opts = JSON.parse(process.argv[2]);
const { joinMesh } = await import(`${opts.dist}/net/index.js`);
const out = (o) => console.log(JSON.stringify(o));

const net = await joinMesh({
  addresses: [opts.address],
  ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}),
  hosts: { kernel: opts.peerAddress },
  config: {
    privateKey: opts.privateKey,
    peers: [{ publicKey: opts.peer.publicKey, endpoint: opts.peer.endpoint, allowedIps: opts.allowedIps ?? [`${opts.peerAddress}/32`], persistentKeepalive: 25 }],
  },
});
out({ step: 'joined', uid: process.getuid() });

async function echo(host, port, bytes) {
  const data = randomBytes(bytes);
  const got = createHash('sha256');
  const start = performance.now();
  const s = net.connect({ host, port, allowHalfOpen: true });
  await once(s, 'connect');
  s.on('data', (d) => got.update(d));
  s.end(data);
  await once(s, 'end');
  return { sent: createHash('sha256').update(data).digest('hex'), received: got.digest('hex'), ms: performance.now() - start };
}

for (const step of opts.steps) {
  try {
    if (step.kind === 'ping') {
      let rtt;
      for (let i = 0; i < 10 && rtt === undefined; i++) rtt = await net.ping('kernel', 1000).catch(() => undefined);
      out({ step: 'ping', rtt });
    } else if (step.kind === 'udp') {
      const u = net.dgram.createSocket('udp4');
      u.send('over udp', 7, 'kernel');
      const [msg] = await once(u, 'message');
      u.close();
      out({ step: 'udp', reply: msg.toString() });
    } else if (step.kind === 'tcp') {
      out({ step: 'tcp', ...(await echo('kernel', 7, step.bytes)) });
    } else if (step.kind === 'many') {
      const results = await Promise.all(Array.from({ length: step.count }, () => echo('kernel', 7, step.bytes)));
      out({ step: 'many', ok: results.filter((r) => r.sent === r.received).length });
    } else if (step.kind === 'http') {
      const text = await new Promise((resolve, reject) => {
        http.get('http://kernel/via-http-get', { agent: net.httpAgent }, (res) => {
          let t = '';
          res.setEncoding('utf8').on('data', (d) => (t += d)).on('end', () => resolve(t));
        }).on('error', reject);
      });
      const res = await net.fetch('http://kernel/via-fetch', { method: 'POST', body: 'hello' });
      out({ step: 'http', get: text, fetch: await res.text(), status: res.status });
    } else if (step.kind === 'zero-window') {
      const s = net.connect({ host: 'kernel', port: 19 });
      s.pause();
      await once(s, 'connect');
      await new Promise((r) => setTimeout(r, 3000));
      const whilePaused = s.readableLength;
      let total = 0;
      let bad = 0;
      s.on('data', (d) => {
        total += d.length;
        for (const b of d) if (b !== 0x5a) bad++;
      });
      s.resume();
      await once(s, 'end');
      out({ step: 'zero-window', whilePaused, total, bad });
    } else if (step.kind === 'reset') {
      const s = net.connect({ host: 'kernel', port: 13 });
      await once(s, 'connect');
      s.write('x');
      const [err] = await once(s, 'error').catch((e) => [e]);
      out({ step: 'reset', code: err.code });
    } else if (step.kind === 'simultaneous-close') {
      const s = net.connect({ host: 'kernel', port: 17 });
      s.once('connect', () => s.end());
      s.resume();
      let error;
      s.on('error', (e) => (error = e.code));
      await once(s, 'close');
      out({ step: 'simultaneous-close', error: error ?? null, remaining: net.stack.tcp.connectionCount });
    } else if (step.kind === 'measure') {
      const { measure } = await import('./netstack-measure.mjs');
      out({ step: 'measure', ...(await measure((host, port) => net.connect({ host, port, allowHalfOpen: true }), step.host ?? 'kernel', step.bytes, step.pings)) });
    } else if (step.kind === 'serve') {
      // An echo server on our stack for the kernel's client; stays up until stdin closes.
      net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s)).listen(step.port, () => out({ step: 'serve', port: step.port }));
      await new Promise((resolve) => process.stdin.once('data', resolve));
    }
  } catch (err) {
    out({ step: step.kind, error: String(err?.stack ?? err) });
  }
}
out({ step: 'done', counters: net.stack.counters, tcp: net.stack.tcp.counters });
await net.close();
process.exit(0);
