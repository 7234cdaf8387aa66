// Root tier: the native TUN addon against the real kernel, with the shared Tun contract
// (test/helpers/tun-contract.ts, also run against MemoryTun). Each TUN is created by this process
// and immediately moved into a namespace the test owns, so all traffic (ping, UDP bursts) stays
// inside namespaces created here. Skipped with a printed reason when not root.

import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UdpBind } from '../../src/io/bind-udp.js';
import { openTun, type LinuxTun } from '../../src/io/tun-linux.js';
import type { TunCloseReason } from '../../src/io/tun.js';
import { NetnsLab, requireRoot, sweepStale, type Netns } from '../helpers/netns.js';
import { tunContract, udpPacket } from '../helpers/tun-contract.js';
import { addonFile } from '../helpers/addon.js';
import { runUnprivileged } from '../helpers/unprivileged.js';
import { REPO_DIR } from '../helpers/wg-lab.js';
import { until } from '../helpers/wait.js';

const skipReason = requireRoot('test/netns/tun.test.ts');

// --- a tiny ICMP echo responder (RFC 792, RFC 4443) working in place on the batch buffer ---

function checksum(data: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < data.length; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
  if (data.length % 2 === 1) sum += data[data.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function swap(p: Uint8Array, a: number, b: number, len: number): void {
  for (let i = 0; i < len; i++) {
    const t = p[a + i]!;
    p[a + i] = p[b + i]!;
    p[b + i] = t;
  }
}

/** A TCP segment 10.77.0.2:40000 -> 10.77.0.1:5555 (ACK) with `len` payload bytes at `seq`. */
function tcpSegment(seq: number, len: number, id: number): Uint8Array {
  const p = new Uint8Array(40 + len);
  p.set([0x45, 0, (40 + len) >> 8, (40 + len) & 255, id >> 8, id & 255, 0x40, 0, 64, 6, 0, 0, 10, 77, 0, 2, 10, 77, 0, 1]);
  const c = checksum(p.subarray(0, 20));
  p[10] = c >> 8;
  p[11] = c & 255;
  p.set([40000 >> 8, 40000 & 255, 5555 >> 8, 5555 & 255, seq >>> 24, (seq >>> 16) & 255, (seq >>> 8) & 255, seq & 255, 0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff], 20);
  for (let i = 0; i < len; i++) p[40 + i] = (seq + i) & 255;
  const pseudo = new Uint8Array([...p.subarray(12, 20), 0, 6, (20 + len) >> 8, (20 + len) & 255]);
  const t = checksum(new Uint8Array([...pseudo, ...p.subarray(20)]));
  p[36] = t >> 8;
  p[37] = t & 255;
  return p;
}

/** Turns an ICMP/ICMPv6 echo request into its reply in place; false for anything else. */
function echoReplyInPlace(p: Uint8Array): boolean {
  const version = p[0]! >> 4;
  if (version === 4 && p.length >= 28 && p[9] === 1) {
    const ihl = (p[0]! & 0x0f) * 4;
    if (p[ihl] !== 8) return false;
    swap(p, 12, 16, 4); // the IPv4 header checksum is unchanged by a swap
    p[ihl] = 0;
    p[ihl + 2] = 0;
    p[ihl + 3] = 0;
    const c = checksum(p.subarray(ihl));
    p[ihl + 2] = c >> 8;
    p[ihl + 3] = c & 0xff;
    return true;
  }
  if (version === 6 && p.length >= 48 && p[6] === 58 && p[40] === 128) {
    swap(p, 8, 24, 16);
    p[40] = 129;
    p[42] = 0;
    p[43] = 0;
    const icmp = p.subarray(40);
    // Pseudo-header: source, destination, upper-layer length, next header (RFC 8200 8.1).
    let sum = 0;
    for (let i = 8; i < 40; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
    sum += icmp.length + 58;
    const c = checksum(icmp, sum);
    p[42] = c >> 8;
    p[43] = c & 0xff;
    return true;
  }
  return false;
}

function serveEcho(tun: LinuxTun): { replies: number } {
  const state = { replies: 0 };
  tun.onPackets((buf, offsets, count) => {
    for (let i = 0; i < count; i++) {
      const p = buf.subarray(offsets[i], offsets[i + 1]);
      if (echoReplyInPlace(p) && tun.write(p)) state.replies++;
    }
  });
  return state;
}

describe.skipIf(skipReason !== undefined)('Linux TUN addon (root, netns)', () => {
  let lab: NetnsLab;
  let tuns: LinuxTun[] = [];

  beforeAll(() => {
    sweepStale();
  });

  beforeEach(() => {
    lab = new NetnsLab();
  });

  afterEach(async () => {
    for (const tun of tuns) tun.close();
    tuns = [];
    await lab.cleanup();
  });

  afterAll(async () => {
    await lab?.cleanup();
  });

  function create(name = lab.uniqueName('t'), batchSize?: number): LinuxTun {
    const tun = openTun({ name, ...(batchSize === undefined ? {} : { batchSize }) });
    tuns.push(tun);
    lab.trackLink(tun.name); // deleted on cleanup if it never left the root namespace
    return tun;
  }

  /** Moves the TUN into `ns`, gives it 10.77.0.1/24 + fd77::1/64 and brings it up. */
  async function place(tun: LinuxTun, ns: Netns, from?: Netns): Promise<void> {
    await (from ? from.ip('link', 'set', tun.name, 'netns', ns.name) : lab_ip('link', 'set', tun.name, 'netns', ns.name));
    await ns.ip('addr', 'add', '10.77.0.1/24', 'dev', tun.name);
    await ns.ip('addr', 'add', 'fd77::1/64', 'dev', tun.name, 'nodad');
    await ns.ip('link', 'set', tun.name, 'up');
  }

  function lab_ip(...args: string[]): Promise<string> {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0) return Promise.reject(new Error(`ip ${args.join(' ')}: ${r.stderr}`));
    return Promise.resolve(r.stdout);
  }

  it('answers ping over IPv4 and IPv6 from JS through the TUN', async () => {
    const ns = await lab.namespace();
    const tun = create();
    await place(tun, ns);
    const state = serveEcho(tun);
    const ping4 = await ns.run(['ping', '-c', '3', '-i', '0.2', '-W', '2', '10.77.0.2'], { timeoutMs: 15_000 });
    expect(ping4.code, ping4.stdout + ping4.stderr).toBe(0);
    expect(ping4.stdout).toMatch(/3 received/);
    const ping6 = await ns.run(['ping', '-6', '-c', '3', '-i', '0.2', '-W', '2', 'fd77::2'], { timeoutMs: 15_000 });
    expect(ping6.code, ping6.stdout + ping6.stderr).toBe(0);
    expect(state.replies).toBeGreaterThanOrEqual(6);
    expect(tun.stats.txPackets).toBe(state.replies);
    expect(tun.stats.rxPackets).toBeGreaterThanOrEqual(6);
  });

  tunContract('LinuxTun (root, netns)', () => ({
    create: async (options = {}) => {
      const ns = await lab.namespace();
      const tun = create(undefined, options.batchSize);
      await place(tun, ns);
      return {
        tun,
        injectUdp: async (count) => {
          // Blocks this event loop while the kernel queues the datagrams on the TUN, so the
          // reads that follow come in full batches.
          const burst = spawnSync('ip', ['netns', 'exec', ns.name, 'bash', '-c',
            `for i in $(seq 1 ${count}); do printf x > /dev/udp/10.77.0.2/9; done`], { timeout: 20_000 });
          expect(burst.status, String(burst.stderr)).toBe(0);
        },
        delete: async () => {
          await ns.ip('link', 'del', tun.name);
        },
      };
    },
  }));

  it('a write while the interface is down is dropped (EIO) and the TUN stays open', async () => {
    const ns = await lab.namespace();
    const tun = create();
    await place(tun, ns);
    const reasons: TunCloseReason[] = [];
    tun.onClose((r) => reasons.push(r));
    await ns.ip('link', 'set', tun.name, 'down');
    expect(tun.write(udpPacket(40))).toBe(false);
    expect(tun.closed).toBe(false);
    expect(reasons).toEqual([]);
    await ns.ip('link', 'set', tun.name, 'up');
    expect(tun.write(udpPacket(40))).toBe(true);
    expect(tun.stats).toMatchObject({ txPackets: 1, txErrors: 1 });
  });

  it('offloads: a UDP GSO send in the namespace arrives as MTU-sized datagrams with valid checksums', async () => {
    const ns = await lab.namespace();
    const tun = create();
    await place(tun, ns);
    expect(tun.offloads).toBeGreaterThanOrEqual(0);
    const got: Uint8Array[] = [];
    tun.onPackets((buf, offsets, count) => {
      for (let i = 0; i < count; i++) {
        const p = buf.slice(offsets[i]!, offsets[i + 1]!);
        if (p[0]! >> 4 === 4 && p[9] === 17 && ((p[22]! << 8) | p[23]!) === 9999) got.push(p);
      }
    });
    // One sendmsg of 10 x 1000 bytes with UDP_SEGMENT (103) 1000: with USO the kernel hands the
    // TUN one super-packet that the TUN must cut up; without, ten packets.
    const py = 'import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.setsockopt(17,103,1000)\n' +
      's.sendto(bytes(i % 251 for i in range(10000)),("10.77.0.2",9999))';
    const r = await ns.run(['/usr/bin/python3', '-c', py], { timeoutMs: 15_000 });
    expect(r.code, r.stderr).toBe(0);
    await until('ten datagrams', 5000, () => (got.length >= 10 ? true : undefined));
    expect(got.length).toBe(10);
    const payload = Buffer.concat(got.map((p) => p.subarray(28)));
    expect(payload.equals(Buffer.from(Array.from({ length: 10000 }, (_, i) => i % 251)))).toBe(true);
    for (const p of got) {
      expect(p.length).toBe(1028);
      expect(checksum(p.subarray(0, 20))).toBe(0);
      const pseudo = new Uint8Array([...p.subarray(12, 20), 0, 17, p[24]!, p[25]!]);
      const sum = checksum(new Uint8Array([...pseudo, ...p.subarray(20)]));
      expect(sum).toBe(0);
    }
    expect(tun.stats.rxOffloadDropped).toBe(0);
  });

  it('offloads: enqueued TCP segments of one flow reach the kernel as one coalesced write', async () => {
    const ns = await lab.namespace();
    const tun = create();
    await place(tun, ns);
    const before = JSON.parse(await ns.ip('-s', '-j', 'link', 'show', tun.name)) as Array<{ stats64: { rx: { bytes: number; packets: number } } }>;
    const segs: Uint8Array[] = [];
    for (let i = 0; i < 20; i++) segs.push(tcpSegment(1000 + i * 1200, 1200, i));
    for (const p of segs) expect(tun.enqueue(p)).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(tun.stats).toMatchObject({ txErrors: 0, txDropped: 0, txCoalesced: 1 });
    const after = JSON.parse(await ns.ip('-s', '-j', 'link', 'show', tun.name)) as typeof before;
    expect(after[0]!.stats64.rx.bytes - before[0]!.stats64.rx.bytes).toBe(20 * 1200 + 40);
  });

  it('gets and sets the MTU, and sees changes made with ip link', async () => {
    const ns = await lab.namespace();
    const tun = create();
    expect(tun.mtu).toBe(1500); // still in the root namespace
    await place(tun, ns);
    expect(tun.mtu).toBe(1500); // followed into the namespace
    tun.setMtu(1380);
    expect(await ns.ip('-o', 'link', 'show', tun.name)).toMatch(/mtu 1380/);
    await ns.ip('link', 'set', tun.name, 'mtu', '1420');
    expect(tun.mtu).toBe(1420);
    expect(() => tun.setMtu(20)).toThrow(RangeError);
    expect(() => tun.setMtu(65536)).toThrow(RangeError);
  });

  it('lets the kernel choose a name, and reports name errors with stable codes', () => {
    const tun = create('');
    expect(tun.name).toMatch(/^tun\d+$/);
    expect(() => openTun({ name: 'x'.repeat(16) })).toThrow(expect.objectContaining({ code: 'ERR_TUN_NAME_TOO_LONG' }));
    expect(() => openTun({ name: 'a/b' })).toThrow(expect.objectContaining({ code: 'ERR_TUN_NAME_INVALID' }));
    // Taken by a TUN that is in use: EBUSY.
    expect(() => openTun({ name: tun.name })).toThrow(expect.objectContaining({ code: 'ERR_TUN_NAME_TAKEN', errno: 'EBUSY' }));
    // Taken by a device that is not a TUN: EINVAL.
    expect(() => openTun({ name: 'lo' })).toThrow(expect.objectContaining({ code: 'ERR_TUN_NAME_TAKEN', errno: 'EINVAL' }));
  });

  it('the addon itself rejects a 16-byte name with ENAMETOOLONG', () => {
    const addon = createRequire(import.meta.url)(join(REPO_DIR, addonFile()!)) as {
      open(...args: unknown[]): unknown;
    };
    expect(() => addon.open('y'.repeat(16), new ArrayBuffer(70000), new Uint32Array(2), 1, () => {}, () => {}))
      .toThrow(expect.objectContaining({ code: 'ENAMETOOLONG' }));
  });

  it('without CAP_NET_ADMIN says which capability is missing', (ctx) => {
    // nobody may not reach the checkout (a clone under a 0700 dir): it loads a readable copy of the addon.
    const addon = addonFile()!;
    const r = runUnprivileged(ctx, {
      what: 'permission check',
      root: REPO_DIR,
      paths: [addon],
      probe: addon,
      argv: (dir) => [process.execPath, '-e', `try { require(${JSON.stringify(join(dir, addon))}).open('plxtperm0', new ArrayBuffer(70000), new Uint32Array(2), 1, () => {}, () => {}); console.log('opened'); } catch (e) { console.log(e.code + ' ' + e.message); }`],
      timeoutMs: 10_000,
    });
    expect(r.status, r.stderr).toBe(0);
    // Debian's udev makes /dev/net/tun 0666, so the open works and TUNSETIFF names the capability;
    // where the node is closed to others (e.g. 0600 in a container), the open itself says so.
    const openToOthers = (statSync('/dev/net/tun').mode & 0o006) === 0o006;
    expect(r.stdout).toMatch(openToOthers ? /^EPERM .*CAP_NET_ADMIN/ : /^EACCES cannot open \/dev\/net\/tun \(permission denied\)/);
  });

  it('emits a deleted close event when its namespace is deleted', async () => {
    const ns = await lab.namespace();
    const tun = create();
    await place(tun, ns);
    const reasons: TunCloseReason[] = [];
    tun.onClose((r) => reasons.push(r));
    spawnSync('ip', ['netns', 'del', ns.name]);
    await until('the close event', 5000, () => reasons.length > 0, 10);
    expect(reasons[0]!.kind).toBe('deleted');
  });

  it('close() removes the interface', () => {
    const tun = create();
    const name = tun.name;
    tun.close();
    expect(spawnSync('ip', ['link', 'show', name]).status).not.toBe(0);
  });

  it('keeps reading and writing after the interface moves to another namespace', async () => {
    const a = await lab.namespace();
    const b = await lab.namespace();
    const tun = create();
    const name = tun.name;
    await place(tun, a);
    const state = serveEcho(tun);
    const first = await a.run(['ping', '-c', '2', '-i', '0.2', '-W', '2', '10.77.0.2'], { timeoutMs: 15_000 });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    await place(tun, b, a);
    expect(spawnSync('ip', ['-n', a.name, 'link', 'show', name]).status).not.toBe(0);
    expect(tun.closed).toBe(false);
    expect(tun.name).toBe(name);
    expect(tun.mtu).toBe(1500);
    const second = await b.run(['ping', '-c', '2', '-i', '0.2', '-W', '2', '10.77.0.2'], { timeoutMs: 15_000 });
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(state.replies).toBeGreaterThanOrEqual(4);
    tun.setMtu(1400);
    expect(await b.ip('-o', 'link', 'show', name)).toMatch(/mtu 1400/);
  });
});

describe.skipIf(skipReason !== undefined)('UdpBind socket options with CAP_NET_ADMIN (root)', () => {
  let bind: UdpBind | undefined;
  afterEach(() => bind?.close());

  function ssLines(port: number): string[] {
    const r = spawnSync('ss', ['-u', '-a', '-n', '-e', '-m', 'sport', '=', `:${port}`], { encoding: 'utf8' });
    return r.stdout.split('\n');
  }

  it('applies fwmark (SO_MARK) to both sockets, across rebind, and clears it', async () => {
    bind = new UdpBind({ ipv4Address: '127.0.0.1', ipv6Address: '::1' });
    await bind.open(0);
    expect(bind.setFwmark(51820)).toBe(true);
    expect(ssLines(bind.port).filter((l) => l.includes('fwmark:0xca6c'))).toHaveLength(2);
    await bind.rebind(0);
    expect(ssLines(bind.port).filter((l) => l.includes('fwmark:0xca6c'))).toHaveLength(2);
    expect(bind.setFwmark(0)).toBe(true);
    expect(ssLines(bind.port).filter((l) => l.includes('fwmark'))).toHaveLength(0);
  });

  it('forces socket buffers past net.core.rmem_max', async () => {
    bind = new UdpBind({ ipv4Address: '127.0.0.1', ipv6Address: '::1', socketBufferSize: 4 * 1024 * 1024 });
    await bind.open(0);
    // The kernel doubles the request for bookkeeping.
    expect(bind.socketBufferSizes).toEqual({ recv: 8 * 1024 * 1024, send: 8 * 1024 * 1024 });
  });
});
