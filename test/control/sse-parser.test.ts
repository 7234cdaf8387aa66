// WHATWG SSE parsing, including hostile streams: every line ending, split chunks, BOM, comments,
// id/retry rules, and bounded memory for overlong lines and events.

import { describe, expect, it } from 'vitest';
import { SseParser, type SseEvent } from '../../src/control/sse-parser.js';

function parseAll(chunks: (string | Uint8Array)[], opts: { maxLineChars?: number; maxEventChars?: number } = {}) {
  const events: SseEvent[] = [];
  const retries: number[] = [];
  const p = new SseParser({ ...opts, onEvent: (e) => events.push(e), onRetry: (ms) => retries.push(ms) });
  for (const c of chunks) p.feed(c);
  return { events, retries, p };
}

describe('SseParser', () => {
  it('parses fields, multi-line data, default type and comments', () => {
    const { events } = parseAll([': hello\nevent: x\ndata: a\ndata:b\ndata\n\ndata: m\n\n']);
    expect(events).toEqual([
      { type: 'x', data: 'a\nb\n', lastEventId: '' },
      { type: 'message', data: 'm', lastEventId: '' },
    ]);
  });

  it('accepts CRLF, CR and LF, also split between chunks, byte by byte', () => {
    const text = 'data: 1\r\n\r\ndata: 2\r\rdata: 3\n\ndata: 4\r\n\r\n';
    const whole = parseAll([text]).events.map((e) => e.data);
    expect(whole).toEqual(['1', '2', '3', '4']);
    const bytes = new TextEncoder().encode(text);
    const split = parseAll([...bytes].map((b) => Uint8Array.of(b))).events.map((e) => e.data);
    expect(split).toEqual(whole);
  });

  it('strips one leading BOM only, and decodes UTF-8 split across chunks', () => {
    const bytes = new TextEncoder().encode('\uFEFFdata: h\u00e9\n\n');
    const { events } = parseAll([bytes.subarray(0, 2), bytes.subarray(2, 10), bytes.subarray(10)]);
    expect(events.map((e) => e.data)).toEqual(['h\u00e9']);
    // A BOM that is not at the very start is part of the field name: that line is ignored.
    expect(parseAll(['data: a\n\n\uFEFFdata: b\n\n']).events.map((e) => e.data)).toEqual(['a']);
  });

  it('keeps the last id across events, ignores ids with NUL, retry only with digits', () => {
    const { events, retries } = parseAll(['id: 7\ndata: a\n\nid: bad\0\ndata: b\n\nretry: 1500\nretry: 1x\nretry\n\nid\ndata: c\n\n']);
    expect(events.map((e) => e.lastEventId)).toEqual(['7', '7', '']);
    expect(retries).toEqual([1500]);
  });

  it('does not dispatch an event without data, nor an unterminated one at the end', () => {
    const { events, p } = parseAll(['event: x\n\nid: 3\n\ndata: tail']);
    p.end();
    expect(events).toEqual([]);
    expect(p.lastEventId).toBe('3');
  });

  it('discards an overlong line and its event, counted, then continues', () => {
    const huge = 'x'.repeat(5000);
    const { events, p } = parseAll(['data: ok1\n\n', 'data: ', huge, huge, '\n\n', 'data: ok2\n\n'], { maxLineChars: 1000 });
    expect(events.map((e) => e.data)).toEqual(['ok1', 'ok2']);
    expect(p.counters.linesTooLong).toBe(1);
    expect(p.counters.eventsTooLarge).toBe(1);
  });

  it('discards an event whose data lines add up past the limit', () => {
    const line = 'data: ' + 'y'.repeat(300) + '\n';
    const { events, p } = parseAll([line.repeat(10) + '\n', 'data: fine\n\n'], { maxEventChars: 1000 });
    expect(events.map((e) => e.data)).toEqual(['fine']);
    expect(p.counters.eventsTooLarge).toBe(1);
  });

  it('survives random garbage without throwing and recovers after it', () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const got: string[] = [];
    const p = new SseParser({ onEvent: (e) => got.push(e.data), maxLineChars: 256, maxEventChars: 512 });
    for (let i = 0; i < 2000; i++) {
      const b = new Uint8Array(1 + Math.floor(rnd() * 64));
      for (let j = 0; j < b.length; j++) b[j] = rnd() < 0.1 ? 10 : Math.floor(rnd() * 256);
      p.feed(b);
    }
    // whatever state the garbage left, a clean event after a blank line comes through
    p.feed('\n\ndata: after\n\n');
    expect(got.at(-1)).toBe('after');
  });
});
