// A path-probing node for test/netns/path-probe.test.ts, run inside a namespace with the built
// dist/: a WireGuard Device on real UDP (packet-callback mode, no TUN) with a PathProber on its
// socket. Each probed choice sets the peer's WireGuard endpoint (as PathManager does) and prints
// {event:'chosen', endpoint, at}; a tunnel packet to the peer leaves every 200 ms and
// {event:'rx', count, at} is printed each second. Exits after `timeoutMs`, on SIGTERM or when
// stdin closes.
//
// argv[2]: JSON {privateKey, peerPublicKey, candidates: [{address, port}], meshIp, peerMeshIp, timeoutMs}
import { PathProber } from '../../dist/agent/path-prober.js';
import { formatEndpoint } from '../../dist/core/endpoint.js';
import { Device, defaultCrypto } from '../../dist/device/device.js';
import { UdpBind } from '../../dist/io/bind-udp.js';
import { ipv4Packet } from './udp-packet.mjs';

const cfg = JSON.parse(process.argv[2]);
const t0 = performance.now();
const out = (o) => process.stdout.write(JSON.stringify({ ...o, at: Math.round(performance.now() - t0) }) + '\n');

let rx = 0;
const device = await Device.create({ bind: new UdpBind({ ipv4Address: '0.0.0.0', ipv6Address: null }), listenPort: 51820, onPacket: () => void rx++ });
await device.configure({ privateKey: cfg.privateKey, peers: [{ publicKey: cfg.peerPublicKey, allowedIps: [`${cfg.peerMeshIp}/32`] }] });
const prober = new PathProber({
  socket: device,
  crypto: defaultCrypto(),
  privateKey: new Uint8Array(Buffer.from(cfg.privateKey, 'base64')),
  onChange: (publicKey, endpoint, rttMs) => {
    out({ event: 'chosen', endpoint: endpoint === undefined ? null : formatEndpoint(endpoint), rttMs });
    if (endpoint !== undefined) void device.apply({ peers: [{ publicKey: new Uint8Array(Buffer.from(publicKey, 'base64')), updateOnly: true, endpoint }] });
  },
});
prober.setPeer(cfg.peerPublicKey, cfg.candidates);
let n = 0;
const send = setInterval(() => device.writePacket(ipv4Packet(cfg.meshIp, cfg.peerMeshIp, `p${n++}`)), 200);
const report = setInterval(() => out({ event: 'rx', count: rx, counters: prober.counters }), 1000);
const stop = async () => {
  clearInterval(send);
  clearInterval(report);
  out({ event: 'exit', counters: prober.counters, drops: prober.drops() });
  prober.close();
  await device.close();
  process.exit(0);
};
setTimeout(stop, cfg.timeoutMs ?? 60_000);
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
