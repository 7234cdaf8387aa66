// Maps of sets (one key, many values) as the bus and the relay assigner index their streams and
// sessions: an emptied set is removed, so the maps stay as small as what they hold.

/** Adds `v` to the set under `k`, creating the set. */
export function add<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  let set = m.get(k);
  if (set === undefined) m.set(k, (set = new Set()));
  set.add(v);
}

/** Removes `v` from the set under `k`, and the set when it is left empty. */
export function remove<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  const set = m.get(k);
  if (set === undefined) return;
  set.delete(v);
  if (set.size === 0) m.delete(k);
}
