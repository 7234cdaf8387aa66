// The public API of the I/O-free WireGuard core (whitepaper 5 and 6): the Engine facade, its
// actions and peers, the protocol building blocks and the crypto provider interface.

export type { ActionSink, DropReason, Endpoint, EngineEvent } from './actions.js';
export { DROP_REASONS } from './actions.js';
export * from './constants.js';
export { Engine } from './engine.js';
export type { EngineOptions, PeerOptions } from './engine.js';
export { Peer } from './peer.js';
export type { Aead, CryptoProvider } from './crypto.js';
export { nobleCrypto } from './crypto-noble.js';
export { AllowedIps } from './allowed-ips.js';
export { IndexTable } from './index-table.js';
export { ReplayWindow } from './replay.js';
export { parseIp, formatIp, parsePrefix, formatPrefix } from './ip.js';
export { kdf1, kdf2, kdf3 } from './kdf.js';
export { tai64n, compareTai64n, tai64nAfter } from './tai64n.js';
export {
  MessageType,
  INITIATION_SIZE,
  RESPONSE_SIZE,
  COOKIE_REPLY_SIZE,
  TRANSPORT_HEADER_SIZE,
  TRANSPORT_MIN_SIZE,
  TRANSPORT_MAX_CONTENT,
  classifyMessage,
  parseInitiation,
  parseResponse,
  parseCookieReply,
  parseTransport,
  serializeInitiation,
  serializeResponse,
  serializeCookieReply,
  serializeTransport,
} from './messages.js';
export type { Initiation, Response, CookieReply, Transport } from './messages.js';
export { CookieChecker, CookieGenerator, endpointBytes } from './cookie.js';
export { RateLimiter, LoadMonitor } from './rate-limiter.js';
export { HandshakeState, makeIdentity } from './handshake.js';
export type { Identity } from './handshake.js';
export { Keypair } from './keypair.js';
export { Keypairs } from './session.js';
export { NoiseState } from './noise.js';
