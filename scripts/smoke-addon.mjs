// Smoke test of the native addon this Node.js loads (run it with an arm64 node under qemu-user
// to check the cross-compiled prebuilt: see scripts/prebuild.sh): prints which addon loaded, sends
// datagrams between two batched UDP binds on loopback, and with `--tun NAME` (root, best in a
// network namespace of its own) opens a TUN device and reads its MTU. Needs dist/ (npm run build).
import { NativeBind } from '../dist/io/bind-native.js';
import { nativeAddonStatus } from '../dist/io/native.js';

const status = nativeAddonStatus();
console.log(`${process.arch} node ${process.version}: addon ${status.origin} ${status.path ?? status.reason}`);
if (status.origin === 'none') process.exit(1);
const a = new NativeBind();
const b = new NativeBind();
await a.open(0);
await b.open(0);
const N = 200;
let got = 0;
b.onReceiveBatch(() => got++, () => undefined);
for (let i = 0; i < N; i++) a.send(new Uint8Array([i & 0xff, 1, 2, 3]), { address: '127.0.0.1', port: b.port });
a.flush?.();
const deadline = Date.now() + 5000;
while (got < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
console.log(`udp: ${got}/${N} datagrams over the batched bind`);
a.close();
b.close();
const tunAt = process.argv.indexOf('--tun');
if (tunAt > 0) {
  const { openTun } = await import('../dist/io/tun-linux.js');
  const tun = openTun({ name: process.argv[tunAt + 1] });
  console.log(`tun: opened ${tun.name}, mtu ${tun.mtu}`);
  tun.close();
}
process.exit(got === N ? 0 : 1);
