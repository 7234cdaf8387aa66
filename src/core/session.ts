// The current / previous / next keypairs of a peer and their rotation (whitepaper 5.4.6 key
// confirmation; wireguard-go BeginSymmetricSession and ReceivedWithKeypair).

import type { Keypair } from './keypair.js';

/** Called for each keypair leaving the set: free its index and wipe it. */
export type KeypairRelease<P> = (keypair: Keypair<P>) => void;

/**
 * A peer's keypairs. The initiator uses a new keypair at once (it has seen the response); the
 * responder holds it as `next` until the first packet that decrypts with it confirms the peer has
 * it, and keeps sending with `current` until then.
 */
export class Keypairs<P> {
  current: Keypair<P> | undefined;
  previous: Keypair<P> | undefined;
  next: Keypair<P> | undefined;

  /** Installs a freshly derived keypair, releasing the ones it displaces. */
  install(keypair: Keypair<P>, release: KeypairRelease<P>): void {
    const { previous, next, current } = this;
    if (keypair.isInitiator) {
      if (next !== undefined) {
        // The unconfirmed responder keypair becomes previous so in-flight packets still decrypt.
        this.next = undefined;
        this.previous = next;
        if (current !== undefined) release(current);
      } else {
        this.previous = current;
      }
      if (previous !== undefined) release(previous);
      this.current = keypair;
    } else {
      this.next = keypair;
      if (next !== undefined) release(next);
      this.previous = undefined;
      if (previous !== undefined) release(previous);
    }
  }

  /**
   * Key confirmation: a packet authenticated with `keypair`. When it is `next`, it becomes current
   * (current moves to previous); returns true in that case.
   */
  receivedWith(keypair: Keypair<P>, release: KeypairRelease<P>): boolean {
    if (this.next !== keypair) return false;
    if (this.previous !== undefined) release(this.previous);
    this.previous = this.current;
    this.current = keypair;
    this.next = undefined;
    return true;
  }

  /** Releases all three. */
  clear(release: KeypairRelease<P>): void {
    const { previous, current, next } = this;
    this.previous = this.current = this.next = undefined;
    if (previous !== undefined) release(previous);
    if (current !== undefined) release(current);
    if (next !== undefined) release(next);
  }
}
