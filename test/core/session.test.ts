// Keypairs and transport (whitepaper 5.4.5-5.4.6): rotation and key confirmation, padding,
// keepalives, in-place decryption, tampering, replay and counter limits.

import { describe, expect, it } from 'vitest';
import type { CryptoProvider } from '../../src/core/crypto.js';
import { nobleCrypto } from '../../src/core/crypto-noble.js';
import { Keypair, openTransport, paddedLength, sealTransport, transportLength } from '../../src/core/keypair.js';
import { Keypairs } from '../../src/core/session.js';
import { readCounter } from '../../src/core/messages.js';
import { REJECT_AFTER_MESSAGES } from '../../src/core/constants.js';

const crypto: CryptoProvider = nobleCrypto;
const k1 = new Uint8Array(32).fill(1);
const k2 = new Uint8Array(32).fill(2);
let nextIndex = 1;
const kp = (isInitiator: boolean, send = k1, recv = k2): Keypair<string> =>
  new Keypair('peer', crypto.aead(send), crypto.aead(recv), isInitiator, 0, nextIndex++, 99);

describe('transport seal/open', () => {
  it('pads to 16, encrypts, and decrypts in place with the other side', () => {
    const a = kp(true, k1, k2);
    const b = kp(false, k2, k1);
    for (const n of [0, 1, 15, 16, 17, 1420]) {
      expect(paddedLength(n)).toBe(Math.ceil(n / 16) * 16);
      const packet = new Uint8Array(n).map((_, i) => i & 0xff);
      const msg = sealTransport(a, packet);
      expect(msg.length).toBe(16 + paddedLength(n) + 16);
      expect(msg[0]).toBe(4);
      expect(msg[4]).toBe(99);
      const counter = readCounter(msg, 8);
      const len = openTransport(b, msg, counter);
      expect(len).toBe(paddedLength(n));
      expect(Array.from(msg.subarray(16, 16 + n))).toEqual(Array.from(packet));
      expect(msg.subarray(16 + n, 16 + len).every((x) => x === 0)).toBe(true);
    }
    expect(a.sendCounter).toBe(6);
  });

  it('never pads past the tunnel MTU (wireguard-go calculatePaddingSize), a slow twin over all sizes', () => {
    // wireguard-go device/send.go, calculatePaddingSize, restated naively.
    const goPadding = (size: number, mtu: number): number => {
      if (mtu === 0) return (16 - (size % 16)) % 16;
      let last = size;
      if (last > mtu) last %= mtu;
      let padded = last;
      while (padded % 16 !== 0) padded++;
      if (padded > mtu) padded = mtu;
      return padded - last;
    };
    for (const mtu of [0, 1280, 1420, 1421, 1427, 9000]) {
      for (let n = 0; n <= 2 * mtu + 40 && n <= 20_000; n++) {
        expect(paddedLength(n, mtu) - n, `size ${n} mtu ${mtu}`).toBe(goPadding(n, mtu));
      }
    }
    // A full-MTU packet is sent unpadded: 1420 + 32 = 1452 bytes, 1500 with IPv6 and UDP headers.
    const a = kp(true, k1, k2);
    const b = kp(false, k2, k1);
    const packet = new Uint8Array(1420).fill(9);
    const msg = sealTransport(a, packet, undefined, 1420);
    expect(msg.length).toBe(1452);
    expect(transportLength(1420, 1420)).toBe(1452);
    expect(openTransport(b, msg, readCounter(msg, 8))).toBe(1420);
    expect(sealTransport(a, new Uint8Array(1410), undefined, 1420).length).toBe(16 + 1420 + 16);
  });

  it('seals into a reused buffer byte for byte like a fresh one, zeroing stale padding', () => {
    const fresh = kp(true, k1, k2);
    const reused = kp(true, k1, k2);
    const out = new Uint8Array(transportLength(1420)).fill(0xee);
    for (const n of [1420, 1, 0, 17, 1420]) {
      const packet = new Uint8Array(n).map((_, i) => (i * 7) & 0xff);
      const a = sealTransport(fresh, packet);
      const b = sealTransport(reused, packet, out);
      expect(b.buffer).toBe(out.buffer);
      expect(Array.from(b)).toEqual(Array.from(a));
    }
    // Too small: a new array, the buffer untouched.
    const small = new Uint8Array(8);
    expect(sealTransport(reused, new Uint8Array(40), small).buffer).not.toBe(small.buffer);
    expect(small.every((x) => x === 0)).toBe(true);
  });

  it('rejects a tampered tag, header-independent content and the wrong key', () => {
    const a = kp(true, k1, k2);
    const b = kp(false, k2, k1);
    const msg = sealTransport(a, new Uint8Array(40));
    const bad = msg.slice();
    bad[bad.length - 1]! ^= 1;
    expect(openTransport(b, bad, 0)).toBe(-1);
    expect(openTransport(b, msg.slice(), 1)).toBe(-1); // wrong counter = wrong nonce
    expect(openTransport(a, msg.slice(), 0)).toBe(-1); // a's receive key is not its send key
    expect(openTransport(b, msg.slice(), 0)).toBe(48);
  });

  it('the replay window refuses a counter twice and counters at the limit', () => {
    const b = kp(false);
    expect(b.replay.accept(5, REJECT_AFTER_MESSAGES)).toBe(true);
    expect(b.replay.accept(5, REJECT_AFTER_MESSAGES)).toBe(false);
    expect(b.replay.accept(REJECT_AFTER_MESSAGES, REJECT_AFTER_MESSAGES)).toBe(false);
  });

  it('wipe makes both keys unusable', () => {
    const a = kp(true);
    a.wipe();
    expect(a.wiped).toBe(true);
    expect(() => sealTransport(a, new Uint8Array(1))).toThrow(TypeError);
  });
});

describe('keypair rotation (wireguard-go BeginSymmetricSession / ReceivedWithKeypair)', () => {
  it('initiator: new keypair is current at once, old current becomes previous', () => {
    const set = new Keypairs<string>();
    const released: Keypair<string>[] = [];
    const release = (k: Keypair<string>): void => void released.push(k);
    const x = kp(true);
    const y = kp(true);
    const z = kp(true);
    set.install(x, release);
    expect(set.current).toBe(x);
    set.install(y, release);
    expect([set.current, set.previous]).toEqual([y, x]);
    set.install(z, release);
    expect([set.current, set.previous]).toEqual([z, y]);
    expect(released).toEqual([x]);
  });

  it('responder: new keypair waits in next until a packet confirms it', () => {
    const set = new Keypairs<string>();
    const released: Keypair<string>[] = [];
    const release = (k: Keypair<string>): void => void released.push(k);
    const old = kp(true);
    set.install(old, release);
    const n = kp(false);
    set.install(n, release);
    expect([set.current, set.next]).toEqual([old, n]);
    expect(set.receivedWith(old, release)).toBe(false);
    expect(set.receivedWith(n, release)).toBe(true);
    expect([set.current, set.previous, set.next]).toEqual([n, old, undefined]);
    // A second unconfirmed responder keypair replaces the first unconfirmed one.
    const n2 = kp(false);
    const n3 = kp(false);
    set.install(n2, release);
    set.install(n3, release);
    expect(set.next).toBe(n3);
    expect(released).toContain(n2);
    expect(released).toContain(old);
    set.clear(release);
    expect([set.current, set.previous, set.next]).toEqual([undefined, undefined, undefined]);
    expect(released).toContain(n);
    expect(released).toContain(n3);
  });

  it('initiator install while a responder keypair is pending keeps it as previous', () => {
    const set = new Keypairs<string>();
    const released: Keypair<string>[] = [];
    const release = (k: Keypair<string>): void => void released.push(k);
    const cur = kp(true);
    set.install(cur, release);
    const pending = kp(false);
    set.install(pending, release);
    const mine = kp(true);
    set.install(mine, release);
    expect([set.current, set.previous, set.next]).toEqual([mine, pending, undefined]);
    expect(released).toEqual([cur]);
  });
});
