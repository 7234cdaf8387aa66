// A NAT-lab node for test/netns/nat-stun.test.ts, run inside a namespace with the built dist/:
// a WireGuard Device on real UDP (packet-callback mode, no TUN) that either classifies its NAT with
// STUN from the WireGuard port, or binds to a relay session from that port and exchanges packets
// with its peer through the relay. Prints one JSON line with the result and exits. Bounded: every
// loop stops after `timeoutMs`.
//
// argv[2]: JSON {mode: 'discover', servers: [{address, port}], rtoMs}
//        | {mode: 'relay', privateKey, peerPublicKey, relay: {address, port}, sessionId, nodeId,
//           meshIp, peerMeshIp, timeoutMs}
import { relayBindingAttributes } from '../../dist/bridge/relay-binding.js';
import { Device } from '../../dist/device/device.js';
import { UdpBind } from '../../dist/io/bind-udp.js';
import { stunOverDevice } from '../../dist/nat/device-stun.js';
import { discoverNat } from '../../dist/nat/nat-type.js';
import { ipv4Packet } from './udp-packet.mjs';

const cfg = JSON.parse(process.argv[2]);
const timeoutMs = cfg.timeoutMs ?? 15_000;
const deadline = performance.now() + timeoutMs;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const received = [];
const device = await Device.create({
  bind: new UdpBind({ ipv4Address: '0.0.0.0', ipv6Address: null }),
  onPacket: (packet) => received.push({ at: performance.now(), text: Buffer.from(packet.subarray(20)).toString() }),
});
const client = stunOverDevice(device, { rtoMs: cfg.rtoMs ?? 200, rc: 5, rm: 4 });
let result;
try {
  if (cfg.mode === 'discover') {
    const started = performance.now();
    const r = await discoverNat(client, cfg.servers, { port: device.listenPort, addresses: cfg.localAddresses });
    result = { natType: r.natType, endpoint: r.endpoint, behindNat: r.behindNat, localPort: device.listenPort, ms: performance.now() - started, results: r.results };
  } else {
    await device.configure({
      privateKey: cfg.privateKey,
      peers: [{ publicKey: cfg.peerPublicKey, endpoint: `${cfg.relay.address}:${cfg.relay.port}`, allowedIps: [`${cfg.peerMeshIp}/32`] }],
    });
    const bindStart = performance.now();
    let bound;
    while (bound?.kind !== 'mapped' && performance.now() < deadline) {
      bound = await client.request(cfg.relay, { attributes: relayBindingAttributes(cfg.sessionId, cfg.nodeId) });
    }
    const bindMs = performance.now() - bindStart;
    const sendStart = performance.now();
    let n = 0;
    while (performance.now() < deadline) {
      device.writePacket(ipv4Packet(cfg.meshIp, cfg.peerMeshIp, `ping ${n++} from ${cfg.nodeId}`));
      const firstAt = received[0]?.at;
      // Keep sending for a while after the first arrival so the peer gets ours too.
      if (firstAt !== undefined && performance.now() - firstAt > 1000) break;
      await sleep(50);
    }
    result = {
      bound: bound?.kind,
      mappedAtRelay: bound?.mapped,
      localPort: device.listenPort,
      bindMs,
      firstPacketMs: received[0] === undefined ? null : received[0].at - sendStart,
      received: received.length,
      sample: received[0]?.text,
    };
  }
} finally {
  client.close();
  await device.close();
}
process.stdout.write(`${JSON.stringify(result)}\n`);
