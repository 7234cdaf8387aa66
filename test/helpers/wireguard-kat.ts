// Generator of vectors/wireguard-handshake-kat.json: a full WireGuard handshake and the first
// transport messages from fixed keys, ephemerals, PSK, timestamp and indices, computed by our core
// (whitepaper 5.4). Regenerate with `UPDATE_VECTORS=1 npx vitest run test/core/noise.test.ts`.

import type { HandshakeKatInputs } from '../../src/conformance/vectors.js';
import type { CryptoProvider } from '../../src/core/crypto.js';
import { CookieGenerator } from '../../src/core/cookie.js';
import { nobleCrypto } from '../../src/core/crypto-noble.js';
import {
  Handshake,
  consumeInitiationMessage,
  consumeResponseMessage,
  createInitiationMessage,
  createResponseMessage,
  deriveKeys,
  makeIdentity,
  PEER_HANDSHAKE,
} from '../../src/core/handshake.js';
import { Keypair, sealTransport } from '../../src/core/keypair.js';
import { tai64n } from '../../src/core/tai64n.js';
import { fromHex, toHex } from './bytes.js';
import { ipPacket } from './ip-packet.js';

/** The fixed inputs (hex) of the known-answer handshake (declared with the vector loader). */
export type KatInputs = HandshakeKatInputs;

/** Everything derived from the inputs. */
export interface KatOutputs {
  initiator_static_public: string;
  responder_static_public: string;
  timestamp: string;
  initiation: string;
  response: string;
  handshake_hash: string;
  initiator_send_key: string;
  responder_send_key: string;
  /** Transport messages, counter 0 each way: the queued packet, then the reply. */
  initiator_transport_0: string;
  responder_transport_0: string;
  /** The initiator's next message: a keepalive (counter 1). */
  initiator_keepalive_1: string;
}

/** Deterministic inputs: each key is BLAKE2s of a label, so the file regenerates identically. */
export function defaultKatInputs(): KatInputs {
  const hex32 = (label: string): string => toHex(nobleCrypto.hash(new TextEncoder().encode(`plexd-userspace kat ${label}`)));
  return {
    initiator_static_private: hex32('initiator static'),
    responder_static_private: hex32('responder static'),
    preshared_key: hex32('preshared key'),
    initiator_ephemeral_private: hex32('initiator ephemeral'),
    responder_ephemeral_private: hex32('responder ephemeral'),
    initiator_sender_index: 0x11223344,
    responder_sender_index: 0xa1b2c3d4,
    initiator_wall_clock_ms: 1_700_000_000_123,
    initiator_first_packet: toHex(ipPacket('10.0.0.1', '10.0.0.2', 'plexd-userspace known answer: initiator')),
    responder_first_packet: toHex(ipPacket('10.0.0.2', '10.0.0.1', 'plexd-userspace known answer: responder')),
  };
}

/** Runs the handshake and first transport messages with our core; throws if any step fails. */
export function computeKat(crypto: CryptoProvider, inp: KatInputs): KatOutputs {
  const iId = makeIdentity(crypto, fromHex(inp.initiator_static_private));
  const rId = makeIdentity(crypto, fromHex(inp.responder_static_private));
  const psk = fromHex(inp.preshared_key);
  const iHs = new Handshake(rId.publicKey);
  iHs.presharedKey.set(psk);
  iHs.precomputedStaticStatic.set(crypto.x25519(iId.privateKey, rId.publicKey));
  const rHs = new Handshake(iId.publicKey);
  rHs.presharedKey.set(psk);
  rHs.precomputedStaticStatic.set(crypto.x25519(rId.privateKey, iId.publicKey));

  const timestamp = tai64n(inp.initiator_wall_clock_ms);
  const initiation = createInitiationMessage(iId, iHs, fromHex(inp.initiator_ephemeral_private), timestamp, inp.initiator_sender_index);
  if (initiation === undefined) throw new Error('initiation failed');
  new CookieGenerator(crypto, rId.publicKey).addMacs(initiation, 0);

  const consumed = consumeInitiationMessage(rId, initiation, () => ({ [PEER_HANDSHAKE]: rHs }), 0);
  if (typeof consumed === 'string') throw new Error(`consume initiation: ${consumed}`);
  const response = createResponseMessage(rId, rHs, fromHex(inp.responder_ephemeral_private), inp.responder_sender_index);
  if (response === undefined) throw new Error('response failed');
  new CookieGenerator(crypto, iId.publicKey).addMacs(response, 0);
  if (!consumeResponseMessage(iId, iHs, response)) throw new Error('consume response failed');
  const handshakeHash = toHex(iHs.noise.hash);
  if (handshakeHash !== toHex(rHs.noise.hash)) throw new Error('handshake hashes differ');

  const iKeys = deriveKeys(iId, iHs)!;
  const rKeys = deriveKeys(rId, rHs)!;
  const outputs = {
    initiator_send_key: toHex(iKeys.sendKey),
    responder_send_key: toHex(rKeys.sendKey),
  };
  const iKp = new Keypair('r', crypto.aead(iKeys.sendKey), crypto.aead(iKeys.receiveKey), true, 0, iKeys.localIndex, iKeys.remoteIndex);
  const rKp = new Keypair('i', crypto.aead(rKeys.sendKey), crypto.aead(rKeys.receiveKey), false, 0, rKeys.localIndex, rKeys.remoteIndex);
  return {
    initiator_static_public: toHex(iId.publicKey),
    responder_static_public: toHex(rId.publicKey),
    timestamp: toHex(timestamp),
    initiation: toHex(initiation),
    response: toHex(response),
    handshake_hash: handshakeHash,
    ...outputs,
    initiator_transport_0: toHex(sealTransport(iKp, fromHex(inp.initiator_first_packet))),
    responder_transport_0: toHex(sealTransport(rKp, fromHex(inp.responder_first_packet))),
    initiator_keepalive_1: toHex(sealTransport(iKp, new Uint8Array(0))),
  };
}

/** One rejected variant: which side receives it after the valid exchange, and the drop reason. */
export interface KatInvalid {
  name: string;
  /** 'responder' or 'initiator' engine receives `message` after the valid exchange. */
  to: 'responder' | 'initiator';
  message: string;
  reason: string;
}

/** Invalid variants derived from the valid messages (issue 2: tag, MAC1, timestamp, counter). */
export function invalidKat(crypto: CryptoProvider, inp: KatInputs, out: KatOutputs): KatInvalid[] {
  const flip = (hex: string, at: number): string => {
    const b = fromHex(hex);
    b[at < 0 ? b.length + at : at]! ^= 0x01;
    return toHex(b);
  };
  // A correctly MACed initiation whose timestamp is one second older than the accepted one.
  const older = computeKat(crypto, { ...inp, initiator_wall_clock_ms: inp.initiator_wall_clock_ms - 1000 });
  return [
    { name: 'transport tag tampered', to: 'responder', message: flip(out.initiator_transport_0, -1), reason: 'decrypt' },
    { name: 'transport ciphertext tampered', to: 'initiator', message: flip(out.responder_transport_0, 20), reason: 'decrypt' },
    { name: 'initiation MAC1 wrong', to: 'responder', message: flip(out.initiation, 116), reason: 'mac1' },
    { name: 'response MAC1 wrong', to: 'initiator', message: flip(out.response, 60), reason: 'mac1' },
    { name: 'initiation timestamp stale (replayed initiation)', to: 'responder', message: out.initiation, reason: 'stale-timestamp' },
    { name: 'initiation timestamp older', to: 'responder', message: older.initiation, reason: 'stale-timestamp' },
    { name: 'transport counter replayed', to: 'responder', message: out.initiator_transport_0, reason: 'replay' },
    { name: 'initiation encrypted static tampered, MAC1 still wrong', to: 'responder', message: flip(out.initiation, 60), reason: 'mac1' },
    { name: 'reserved byte set', to: 'responder', message: flip(out.initiation, 2), reason: 'reserved-nonzero' },
    { name: 'initiation one byte short', to: 'responder', message: out.initiation.slice(0, -2), reason: 'bad-length' },
  ];
}
