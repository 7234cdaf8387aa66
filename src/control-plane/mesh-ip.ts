// Mesh IP allocation from domain_mesh_cidr (plexd-api.md "Mesh"): one /32 per node, network and
// broadcast addresses skipped, nodes from the bottom of the range and bridges from the top.
// Uniqueness rests on the UNIQUE nodes.mesh_ip_num column; callers allocate and insert in one
// transaction.

import { formatIp, parsePrefix } from '../core/ip.js';
import type { Db } from './database.js';
import { prepared } from './prepared.js';

/** Default mesh range. */
export const DEFAULT_MESH_CIDR = '10.100.0.0/16';

/** Usable host addresses of an IPv4 mesh prefix, as 32-bit numbers. */
export interface MeshRange {
  readonly cidr: string;
  readonly first: number;
  readonly last: number;
}

/** The host range of an IPv4 prefix of length 8..30. Throws RangeError otherwise. */
export function meshRange(cidr: string): MeshRange {
  const p = parsePrefix(cidr);
  if (p === undefined || p.ip.length !== 4 || p.cidr < 8 || p.cidr > 30) {
    throw new RangeError(`expected an IPv4 mesh prefix between /8 and /30, got ${JSON.stringify(cidr)}`);
  }
  const ip = ipv4FromBytes(p.ip);
  const size = 2 ** (32 - p.cidr);
  const network = ip - (ip % size);
  return { cidr: `${formatIpv4(network)}/${p.cidr}`, first: network + 1, last: network + size - 2 };
}

/** The 32-bit number of a 4-byte IPv4 address (as core/ip.ts parseIp gives it). */
export function ipv4FromBytes(ip: Uint8Array): number {
  return ((ip[0]! << 24) | (ip[1]! << 16) | (ip[2]! << 8) | ip[3]!) >>> 0;
}

/** Dotted-quad text of a 32-bit number. */
export function formatIpv4(n: number): string {
  return formatIp(Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff));
}

/** Tables holding addresses allocated from a range, with their UNIQUE number column (a closed
 *  list: the names go into SQL text). */
const NUMBERED = { nodes: 'mesh_ip_num', access_users: 'address_num' } as const;
/** A table of {@link NUMBERED}. */
export type NumberedTable = keyof typeof NUMBERED;

/** The lowest address of `first`..`last` no row of `table` holds, or undefined when all are
 *  taken. One indexed probe per allocated address at most. Call inside the inserting transaction. */
export function lowestFree(db: Db, table: NumberedTable, first: number, last: number): number | undefined {
  const col = NUMBERED[table];
  if (prepared(db, `SELECT 1 FROM ${table} WHERE ${col} = ?`).get(first) === undefined) return first;
  // The first gap above an allocated address.
  const row = prepared(
    db,
    `SELECT MIN(n.${col} + 1) AS ip FROM ${table} n
     WHERE n.${col} >= ? AND n.${col} < ?
       AND NOT EXISTS (SELECT 1 FROM ${table} m WHERE m.${col} = n.${col} + 1)`,
  ).get(first, last) as { ip: number | null };
  return row.ip ?? undefined;
}

/** Columns of mesh_alloc (its one row, id = 1) that allocateMeshIp reads: the hint and whether
 *  the address at it is taken. */
export const MESH_HINT_COLUMNS = 'dense_below, CASE WHEN EXISTS (SELECT 1 FROM nodes WHERE mesh_ip_num = dense_below) THEN 1 ELSE 0 END AS taken';

/** A row of MESH_HINT_COLUMNS. */
export interface MeshHint {
  readonly dense_below: number;
  readonly taken: number;
}

/** The lowest free address (mode "node") or the highest free one ("bridge") in `range`, or
 *  undefined when the range is full. Call inside the transaction that inserts the node. */
export function allocateMeshIp(db: Db, range: MeshRange, mode: 'node' | 'bridge', hintRow?: MeshHint): number | undefined {
  if (mode === 'node') {
    // mesh_alloc.dense_below (schema 15): everything below it is taken, so the search starts
    // there: one probe while nodes are added, instead of an anti-join over every node. Callers
    // insert the node at the address returned (in the same transaction).
    // The hint and whether it is taken, in one statement (each is a round trip on PostgreSQL),
    // or as the caller read them with MESH_HINT_COLUMNS in a statement of its own.
    const row = hintRow ?? (prepared(db, `SELECT ${MESH_HINT_COLUMNS} FROM mesh_alloc WHERE id = 1`).get() as MeshHint | undefined);
    const hint = row?.dense_below;
    const from = Math.max(range.first, hint ?? range.first);
    const free = row !== undefined && row.taken === 0 && hint === from && from <= range.last ? from : undefined;
    const ip = free ?? (from <= range.last ? lowestFree(db, 'nodes', from, range.last) : undefined) ?? (from > range.first ? lowestFree(db, 'nodes', range.first, range.last) : undefined);
    // Everything below `ip` is taken now; inserting the node at it raises the hint past it (the
    // mesh_alloc_taken trigger), so the common case (the hint was free) writes nothing here.
    if (ip !== undefined && hint !== undefined && ip >= from && ip !== hint) prepared(db, 'UPDATE mesh_alloc SET dense_below = ? WHERE id = 1').run(ip);
    return ip;
  }
  const taken = (n: number) => prepared(db, 'SELECT 1 FROM nodes WHERE mesh_ip_num = ?').get(n) !== undefined;
  if (!taken(range.last)) return range.last;
  const row = prepared(
    db,
    `SELECT MAX(n.mesh_ip_num - 1) AS ip FROM nodes n
     WHERE n.mesh_ip_num > ? AND n.mesh_ip_num <= ?
       AND NOT EXISTS (SELECT 1 FROM nodes m WHERE m.mesh_ip_num = n.mesh_ip_num - 1)`,
  ).get(range.first, range.last) as { ip: number | null };
  return row.ip ?? undefined;
}
