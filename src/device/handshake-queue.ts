// The device's bounded queue of received handshake messages (wireguard-go device/channels.go
// QueueHandshakeSize and RoutineHandshake): initiations and responses wait here, copied, so the
// loop can serve transport data first and spend a bounded budget on handshakes per turn.

import { INITIATION_SIZE } from '../core/messages.js';
import type { Endpoint } from '../core/actions.js';

/** Default capacity in messages (wireguard-go's QueueHandshakeSize). */
export const HANDSHAKE_QUEUE_SIZE = 1024;

/**
 * A ring of `capacity` slots of INITIATION_SIZE bytes (the largest handshake message), allocated
 * on the first push. push copies the message in; shift lends a view of the head to its callback,
 * valid during that call only.
 */
export class HandshakeQueue {
  readonly capacity: number;
  #slab: Uint8Array | undefined;
  readonly #lengths: Uint16Array;
  readonly #from: (Endpoint | undefined)[];
  #head = 0;
  #size = 0;

  /** `capacity`: messages held at most (integer >= 1); throws RangeError otherwise. */
  constructor(capacity = HANDSHAKE_QUEUE_SIZE) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`expected a capacity >= 1, got ${capacity}`);
    this.capacity = capacity;
    this.#lengths = new Uint16Array(capacity);
    this.#from = new Array<Endpoint | undefined>(capacity).fill(undefined);
  }

  /** Messages waiting. */
  get size(): number {
    return this.#size;
  }

  /**
   * Copies `data` (at most INITIATION_SIZE bytes; the caller checked the type) into the tail.
   * Returns false, keeping nothing, when full or when data is longer than a slot.
   */
  push(data: Uint8Array, from: Endpoint): boolean {
    if (this.#size === this.capacity || data.length > INITIATION_SIZE) return false;
    const slab = (this.#slab ??= new Uint8Array(this.capacity * INITIATION_SIZE));
    const slot = (this.#head + this.#size) % this.capacity;
    slab.set(data, slot * INITIATION_SIZE);
    this.#lengths[slot] = data.length;
    this.#from[slot] = from;
    this.#size++;
    return true;
  }

  /**
   * Removes the head and calls `fn` with a view of it (valid during the call only) and its
   * source. Returns false when empty.
   */
  shift(fn: (data: Uint8Array, from: Endpoint) => void): boolean {
    if (this.#size === 0) return false;
    const slot = this.#head;
    const from = this.#from[slot]!;
    this.#from[slot] = undefined;
    this.#head = (slot + 1) % this.capacity;
    this.#size--;
    const at = slot * INITIATION_SIZE;
    fn(this.#slab!.subarray(at, at + this.#lengths[slot]!), from);
    return true;
  }

  /** Forgets every waiting message. */
  clear(): void {
    this.#from.fill(undefined);
    this.#slab?.fill(0);
    this.#head = 0;
    this.#size = 0;
  }
}
