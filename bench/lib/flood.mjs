// Handshake-initiation flood generator for bench:handshake, run as its own process inside a lab
// namespace: `node flood.mjs TARGET_IP PORT PUBKEY_B64 RATE SECONDS SRC_IP[,SRC_IP...]`.
// Sends 148-byte initiations with random contents and a correct MAC1 for the target's public key
// (so they pass the first check and cost the responder real work), round-robin over one socket
// per source address (ephemeral ports), paced per millisecond, for at most SECONDS. Prints one
// JSON line { sent, seconds, rate } when done.
//
// Network rule: the caller passes only addresses inside its own namespaces.

import { randomFillSync } from 'node:crypto';
import * as dgram from 'node:dgram';
import { CookieGenerator } from '../../dist/core/cookie.js';
import { nodeCrypto } from '../../dist/crypto/node.js';

const INITIATION_SIZE = 148;
const POOL = 4096;

function initiations(publicKey) {
  const gen = new CookieGenerator(nodeCrypto, publicKey);
  const pool = [];
  for (let i = 0; i < POOL; i++) {
    const msg = new Uint8Array(INITIATION_SIZE);
    randomFillSync(msg, 4, INITIATION_SIZE - 4);
    msg[0] = 1; // type initiation, 3 reserved zero bytes
    msg.fill(0, INITIATION_SIZE - 32); // mac1, mac2
    gen.addMacs(msg, 0);
    pool.push(msg);
  }
  return pool;
}

async function main() {
  const [target, portText, pubB64, rateText, secondsText, sourcesText] = process.argv.slice(2);
  const port = Number(portText);
  const rate = Math.min(Number(rateText), 200_000);
  const seconds = Math.min(Number(secondsText), 120);
  const publicKey = new Uint8Array(Buffer.from(pubB64, 'base64'));
  if (!target || !Number.isInteger(port) || publicKey.length !== 32 || !(rate > 0) || !(seconds > 0) || !sourcesText) {
    throw new TypeError('usage: flood.mjs TARGET_IP PORT PUBKEY_B64 RATE SECONDS SRC_IP[,SRC_IP...]');
  }
  const pool = initiations(publicKey);
  const sockets = await Promise.all(
    sourcesText.split(',').map(
      (address) =>
        new Promise((resolve, reject) => {
          const s = dgram.createSocket('udp4');
          s.on('error', () => {});
          s.once('error', reject);
          s.bind({ address, port: 0 }, () => resolve(s));
        }),
    ),
  );
  let slot = 0; // pacing position
  let sent = 0; // datagrams handed to the kernel
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  await new Promise((resolve) => {
    const tick = () => {
      const now = process.hrtime.bigint();
      if (now >= end) return resolve();
      const due = Math.floor((Number(now - start) / 1e9) * rate);
      // At most 2 ms of backlog at once, so a stall does not turn into a burst.
      let n = Math.min(due - slot, Math.ceil(rate / 500));
      if (due - slot > n) slot = due - n;
      for (; n > 0; n--, slot++) {
        const s = sockets[slot % sockets.length];
        if (s.getSendQueueCount() > 64) continue;
        s.send(pool[slot % POOL], port, target);
        sent++;
      }
      setImmediate(tick);
    };
    tick();
  });
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  for (const s of sockets) s.close();
  process.stdout.write(JSON.stringify({ sent, seconds: elapsed, rate: sent / elapsed }) + '\n');
}

await main();
