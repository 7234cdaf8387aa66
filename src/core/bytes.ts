// Owned copies of byte arrays. `Buffer#slice` returns a view of the caller's memory (and a small
// Buffer is a view of Node's shared pool), so a "copy" made with `.slice()` of a Uint8Array that
// may be a Buffer is not one: wiping it would zero bytes the library does not own.

/**
 * A copy of `bytes` in a fresh ArrayBuffer of exactly its length, whatever `bytes` is (Uint8Array,
 * Buffer, pooled Buffer, subarray view): safe to keep, write and wipe.
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}
