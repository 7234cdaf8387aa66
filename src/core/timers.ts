// Per-peer protocol timers (whitepaper section 6; wireguard-go timers.go), as deadlines in the
// core's monotonic milliseconds. These hooks only move deadlines; the engine runs the expiries.

import { KEEPALIVE_TIMEOUT, REKEY_TIMEOUT, ZERO_KEY_MATERIAL_TIME } from './constants.js';

/** The timers of a peer; Infinity means "not pending". */
export class PeerTimers {
  /** Resend the initiation (REKEY_TIMEOUT + jitter after sending one). */
  retransmitHandshake = Infinity;
  /** Passive keepalive (KEEPALIVE_TIMEOUT after receiving data without sending). */
  sendKeepalive = Infinity;
  /** New handshake when sent data got no reply (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter). */
  newHandshake = Infinity;
  /** Erase all keys (ZERO_KEY_MATERIAL_TIME after the last session was derived). */
  zeroKeyMaterial = Infinity;
  /** Persistent keepalive (its interval after any authenticated packet either way). */
  persistentKeepalive = Infinity;
  /** Resend the unanswered initiation to a newly set endpoint (-Infinity: at the next tick). */
  resendInitiation = Infinity;
  /** Retransmissions of the current handshake attempt so far. */
  handshakeAttempts = 0;
  /** Data arrived while the keepalive timer was already pending: rearm after it fires. */
  needAnotherKeepalive = false;
  /** The receive-side "last minute" rekey was sent for the current keypair. */
  sentLastMinuteHandshake = false;

  /** The earliest pending deadline, or Infinity. */
  next(): number {
    return Math.min(this.retransmitHandshake, this.sendKeepalive, this.newHandshake, this.zeroKeyMaterial, this.persistentKeepalive, this.resendInitiation);
  }

  /** After an authenticated data packet (not a keepalive) was sent; `jitter` in [0, 334) ms. */
  dataSent(now: number, jitter: number): void {
    if (this.newHandshake === Infinity) this.newHandshake = now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter;
  }

  /** After an authenticated data packet (not a keepalive) was received. */
  dataReceived(now: number): void {
    if (this.sendKeepalive === Infinity) this.sendKeepalive = now + KEEPALIVE_TIMEOUT;
    else this.needAnotherKeepalive = true;
  }

  /** After any authenticated packet was sent: keepalive, data or handshake. */
  anyAuthenticatedPacketSent(): void {
    this.sendKeepalive = Infinity;
  }

  /** After any authenticated packet was received: keepalive, data or handshake. */
  anyAuthenticatedPacketReceived(): void {
    this.newHandshake = Infinity;
  }

  /** Before sending or after receiving any authenticated packet; `intervalSeconds` 0 = off. */
  anyAuthenticatedPacketTraversal(now: number, intervalSeconds: number): void {
    if (intervalSeconds > 0) this.persistentKeepalive = now + intervalSeconds * 1000;
  }

  /** After an initiation was sent; `jitter` in [0, 334) ms. */
  handshakeInitiated(now: number, jitter: number): void {
    this.retransmitHandshake = now + REKEY_TIMEOUT + jitter;
  }

  /** After a response was consumed or the first packet confirmed a responder keypair. */
  handshakeComplete(): void {
    this.retransmitHandshake = Infinity;
    this.handshakeAttempts = 0;
    this.sentLastMinuteHandshake = false;
  }

  /** After a keypair was derived (response sent or consumed). */
  sessionDerived(now: number): void {
    this.zeroKeyMaterial = now + ZERO_KEY_MATERIAL_TIME;
  }

  /** Cancels everything (peer removed). */
  stop(): void {
    this.retransmitHandshake = this.sendKeepalive = this.newHandshake = Infinity;
    this.zeroKeyMaterial = this.persistentKeepalive = this.resendInitiation = Infinity;
    this.handshakeAttempts = 0;
    this.needAnotherKeepalive = false;
    this.sentLastMinuteHandshake = false;
  }
}
