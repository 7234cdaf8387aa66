// Text from the network (node names, ids, reasons) made safe for a terminal or a log line: control
// characters (C0, DEL, C1), invisible format characters (bidi overrides, zero-width), separators,
// surrogates and unassigned code points are shown as escapes instead of being written raw.

/** One character a terminal must not receive raw. */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Cn}\p{Zl}\p{Zp}]/u;
const UNPRINTABLE_ALL = new RegExp(UNPRINTABLE.source, 'gu');
const UNPRINTABLE_BUT_LINES = /[^\P{Cc}\n\t]|[\p{Cf}\p{Co}\p{Cs}\p{Cn}\p{Zl}\p{Zp}]/gu;

function escape(c: string): string {
  const cp = c.codePointAt(0)!;
  return cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`;
}

/** True when `text` has no character printable() would escape. */
export function isPrintable(text: string): boolean {
  return !UNPRINTABLE.test(text);
}

/** `text` with every unprintable character as `\xNN` or `\u{N}`; `keepLines` leaves newlines and
 *  tabs (multi-line log messages such as stack traces). */
export function printable(text: string, keepLines = false): string {
  return text.replace(keepLines ? UNPRINTABLE_BUT_LINES : UNPRINTABLE_ALL, escape);
}
