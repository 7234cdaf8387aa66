// Handshake throughput workload (whitepaper 5.4.2-5.4.5): complete WireGuard handshakes between
// two in-memory identities, MACs included, for bench scripts to time (the core reads no clock).
// Imported by path (bench/crypto.mjs, test/core/noise.test.ts); not part of the core API.

import { CookieChecker, CookieGenerator } from './cookie.js';
import type { CryptoProvider } from './crypto.js';
import {
  Handshake,
  consumeInitiationMessage,
  consumeResponseMessage,
  createInitiationMessage,
  createResponseMessage,
  deriveKeys,
  makeIdentity,
  PEER_HANDSHAKE,
} from './handshake.js';
import { tai64n } from './tai64n.js';

/**
 * Runs `count` complete handshakes (initiation with MAC1, its MAC1 check and consumption, response,
 * its consumption, transport key derivation on both sides) with fresh ephemerals from
 * `fillRandom`. Returns the number completed; throws Error if one fails (a provider bug).
 */
export function runHandshakes(crypto: CryptoProvider, count: number, fillRandom: (buf: Uint8Array) => void): number {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`expected a non-negative integer count, got ${count}`);
  const key = (): Uint8Array => {
    const k = new Uint8Array(32);
    fillRandom(k);
    return k;
  };
  const initiator = makeIdentity(crypto, key());
  const responder = makeIdentity(crypto, key());
  const iHs = new Handshake(responder.publicKey);
  iHs.precomputedStaticStatic.set(crypto.x25519(initiator.privateKey, responder.publicKey));
  const rHs = new Handshake(initiator.publicKey);
  rHs.precomputedStaticStatic.set(crypto.x25519(responder.privateKey, initiator.publicKey));
  const toResponder = new CookieGenerator(crypto, responder.publicKey);
  const toInitiator = new CookieGenerator(crypto, initiator.publicKey);
  const responderMacs = new CookieChecker(crypto, responder.publicKey);
  const initiatorMacs = new CookieChecker(crypto, initiator.publicKey);
  const peer = { [PEER_HANDSHAKE]: rHs };
  const lookup = (): typeof peer => peer;
  for (let i = 0; i < count; i++) {
    const init = createInitiationMessage(initiator, iHs, key(), tai64n(1_700_000_000_000 + i * 1000), i + 1);
    if (init === undefined) throw new Error('expected an initiation, got a failed DH');
    toResponder.addMacs(init, 0);
    if (!responderMacs.checkMac1(init)) throw new Error('expected a valid MAC1');
    const consumed = consumeInitiationMessage(responder, init, lookup, i * 1000);
    if (typeof consumed === 'string') throw new Error(`expected a consumed initiation, got ${consumed}`);
    const resp = createResponseMessage(responder, rHs, key(), i + 2);
    if (resp === undefined) throw new Error('expected a response, got a failed DH');
    toInitiator.addMacs(resp, 0);
    if (!initiatorMacs.checkMac1(resp) || !consumeResponseMessage(initiator, iHs, resp)) {
      throw new Error('expected the response to authenticate');
    }
    for (const hs of [iHs, rHs]) {
      const keys = deriveKeys(hs === iHs ? initiator : responder, hs)!;
      keys.sendKey.fill(0);
      keys.receiveKey.fill(0);
    }
  }
  return count;
}
