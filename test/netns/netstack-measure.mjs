// TCP throughput and RTT measurement shared by bench/netstack.mjs's two sides (the kernel's
// node:net and our MeshNet): `connect(host, port)` returns a connected-or-connecting Duplex.
// Throughput: BYTES to the sink on port 9, which answers with the count after our FIN (time to
// that answer). RTT: 64-byte ping-pongs with the echo server on port 7 (Nagle off), median.

import { once } from 'node:events';

export async function measure(connect, host, bytes, pings) {
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const s = connect(host, 9);
  await once(s, 'connect');
  const start = performance.now();
  let reply = '';
  s.on('data', (d) => (reply += d));
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!s.write(chunk)) await once(s, 'drain');
  }
  s.end();
  await once(s, 'end');
  const ms = performance.now() - start;
  if (Number(reply) < bytes) throw new Error(`sink got ${reply} of ${bytes} bytes`);
  const e = connect(host, 7);
  await once(e, 'connect');
  e.setNoDelay(true);
  const msg = Buffer.alloc(64, 1);
  const rtts = [];
  let got = 0;
  let wake;
  e.on('data', (d) => {
    got += d.length;
    if (got >= 64) wake?.();
  });
  for (let i = 0; i < pings; i++) {
    got = 0;
    const t = performance.now();
    const p = new Promise((r) => (wake = r));
    e.write(msg);
    await p;
    rtts.push(performance.now() - t);
  }
  e.destroy();
  rtts.sort((a, b) => a - b);
  return { mbitPerS: (Number(reply) * 8) / (ms * 1000), seconds: ms / 1000, rttMedianMs: rtts[Math.floor(rtts.length / 2)], rttP99Ms: rtts[Math.floor(rtts.length * 0.99)] };
}
