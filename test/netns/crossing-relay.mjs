// A UDP forwarder between two WireGuard ends that makes their first handshake initiations cross:
// it holds every datagram until it has seen an initiation (type 1) from each side, then releases
// both queues at once (in the order given), and forwards directly after that. It prints one line
// per initiation it forwards ("init a" / "init b"), so a test counts retransmissions exactly.
// Run inside a namespace the test created:
//   node crossing-relay.mjs LISTEN_A PORT_A TARGET_A LISTEN_B PORT_B TARGET_B FIRST(a|b)
// where the socket on LISTEN_A:PORT_A faces end a, and what arrives there goes to TARGET_A (end
// b's host:port) from the socket facing b; likewise the other way. Ends on SIGTERM or when its parent goes away (stdin closes).
import dgram from 'node:dgram';

const [listenA, portA, targetA, listenB, portB, targetB, first] = process.argv.slice(2);
const split = (hp) => {
  const i = hp.lastIndexOf(':');
  return { address: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
};
const to = { a: split(targetA), b: split(targetB) };
const sockets = { a: dgram.createSocket('udp4'), b: dgram.createSocket('udp4') };
const other = { a: 'b', b: 'a' };
const held = { a: [], b: [] };
const seenInit = { a: false, b: false };
let holding = true;

function forward(from, msg) {
  if (msg[0] === 1) process.stdout.write(`init ${from}\n`);
  const dest = to[from];
  sockets[other[from]].send(msg, dest.port, dest.address);
}

for (const side of ['a', 'b']) {
  sockets[side].on('message', (msg) => {
    if (!holding) return forward(side, msg);
    held[side].push(msg);
    if (msg[0] === 1) seenInit[side] = true;
    if (seenInit.a && seenInit.b) {
      holding = false;
      process.stdout.write('released\n');
      for (const s of first === 'b' ? ['b', 'a'] : ['a', 'b']) for (const m of held[s].splice(0)) forward(s, m);
    }
  });
}
sockets.a.bind(Number(portA), listenA, () => sockets.b.bind(Number(portB), listenB, () => process.stdout.write('ready\n')));
process.on('SIGTERM', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
