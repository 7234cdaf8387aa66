// Plain-text tables for the CLI's listings. Cells come from the network (node names and ids from a
// control plane or a database), so each is shown through printable(): no raw escape sequences.

import { printable } from '../log/printable.js';

/** Pads columns; the first row is the header. Every cell is escaped with printable(). */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows].map((r) => r.map((c) => printable(c)));
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}
