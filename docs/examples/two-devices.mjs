// Two WireGuard devices in one process, packet-callback mode over loopback UDP: no TUN, no root.
// Run after `npm ci`: node docs/examples/two-devices.mjs
import { randomBytes } from 'node:crypto';
import { Device, core } from 'plexd-userspace';

const keyA = randomBytes(32);
const keyB = randomBytes(32);
const pub = (k) => Buffer.from(core.nobleCrypto.x25519PublicKey(k)).toString('base64');

let resolveDelivered;
const delivered = new Promise((r) => (resolveDelivered = r));
const a = await Device.create({ onPacket: () => {} });
const b = await Device.create({ onPacket: (packet) => resolveDelivered(Buffer.from(packet)) });

await a.configure({
  privateKey: keyA.toString('base64'),
  peers: [{ publicKey: pub(keyB), endpoint: `127.0.0.1:${b.listenPort}`, allowedIps: ['10.0.0.2/32'] }],
});
await b.configure({
  privateKey: keyB.toString('base64'),
  peers: [{ publicKey: pub(keyA), allowedIps: ['10.0.0.1/32'] }],
});

// A minimal IPv4/UDP packet from 10.0.0.1 to 10.0.0.2 (checksums are not checked by WireGuard).
const payload = Buffer.from('hello through the tunnel');
const packet = Buffer.alloc(28 + payload.length);
packet[0] = 0x45; // IPv4, 20-byte header
packet.writeUInt16BE(packet.length, 2);
packet[8] = 64; // TTL
packet[9] = 17; // UDP
packet.set([10, 0, 0, 1], 12);
packet.set([10, 0, 0, 2], 16);
packet.writeUInt16BE(4000, 20);
packet.writeUInt16BE(5000, 22);
packet.writeUInt16BE(8 + payload.length, 24);
payload.copy(packet, 28);

a.writePacket(packet); // queued, a handshake starts, then it is sent encrypted
const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('no packet within 5 s')), 5000).unref());
const got = await Promise.race([delivered, timeout]);
console.log('b received:', got.subarray(28).toString());
await a.close();
await b.close();
