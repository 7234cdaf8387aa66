// A lossy, reordering UDP relay for test/netns/netstack.test.ts, used because this kernel has no
// sch_netem: `node netstack-relay.mjs LISTEN_PORT TARGET_HOST TARGET_PORT LOSS REORDER DELAY_MS`.
// Datagrams to LISTEN_PORT go to TARGET from a second socket, and replies come back to the last
// sender; each datagram, both ways, is dropped with probability LOSS, or else held DELAY_MS
// with probability REORDER (so later ones overtake it). Prints "ready".

import { createSocket } from 'node:dgram';

const [listenPort, host, port, loss, reorder, delay] = process.argv.slice(2);
const front = createSocket('udp4');
const back = createSocket('udp4');
let client;
const pass = (send) => {
  if (Math.random() < Number(loss)) return;
  if (Math.random() < Number(reorder)) setTimeout(send, Number(delay));
  else send();
};
front.on('message', (m, r) => {
  client = r;
  pass(() => back.send(m, Number(port), host));
});
back.on('message', (m) => {
  if (client !== undefined) pass(() => front.send(m, client.port, client.address));
});
let n = 2;
const ready = () => --n === 0 && console.log('ready');
front.bind(Number(listenPort), ready);
back.bind(0, ready);
