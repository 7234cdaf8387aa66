// A server-sent events parser following the WHATWG HTML "Server-sent events" section
// (9.2.6 interpreting an event stream): UTF-8 with one leading BOM stripped, lines ended by CRLF,
// LF or CR (also split across chunks), `:` comments, fields event/data/id/retry, multi-line data
// joined with LF, ids containing NUL ignored, retry only when all ASCII digits.
// Hostile input is bounded: a line longer than maxLineChars or an event whose data grows past
// maxEventChars is discarded up to its end and counted, never buffered without limit.

/** One dispatched event. */
export interface SseEvent {
  /** The `event:` field, 'message' when absent. */
  readonly type: string;
  /** The data lines joined with LF. */
  readonly data: string;
  /** The last event ID in effect when dispatched ('' when none). */
  readonly lastEventId: string;
}

/** Limits and callbacks of a {@link SseParser}. */
export interface SseParserOptions {
  /** Longest line kept, in UTF-16 units (default 1 MiB). */
  readonly maxLineChars?: number;
  /** Largest data buffer of one event, in UTF-16 units (default 1 MiB). */
  readonly maxEventChars?: number;
  /** Called for each dispatched event. */
  readonly onEvent: (event: SseEvent) => void;
  /** Called with a new reconnection time (ms) from a `retry:` field. */
  readonly onRetry?: (ms: number) => void;
}

/** Counters of discarded input. */
export interface SseParserCounters {
  /** Lines discarded for exceeding maxLineChars. */
  linesTooLong: number;
  /** Events discarded for exceeding maxEventChars. */
  eventsTooLarge: number;
  /** Events dispatched. */
  events: number;
}

/** Incremental parser: feed byte chunks as they arrive; events come out through onEvent. */
export class SseParser {
  readonly counters: SseParserCounters = { linesTooLong: 0, eventsTooLarge: 0, events: 0 };
  readonly #maxLine: number;
  readonly #maxEvent: number;
  readonly #onEvent: (event: SseEvent) => void;
  readonly #onRetry: ((ms: number) => void) | undefined;
  readonly #decoder = new TextDecoder('utf-8', { ignoreBOM: false });
  #line = '';
  #discardingLine = false;
  #discardingEvent = false;
  #afterCR = false;
  #data = '';
  #type = '';
  #lastEventId = '';

  constructor(opts: SseParserOptions) {
    if (typeof opts?.onEvent !== 'function') throw new TypeError(`expected onEvent to be a function, got ${typeof opts?.onEvent}`);
    this.#maxLine = opts.maxLineChars ?? 1 << 20;
    this.#maxEvent = opts.maxEventChars ?? 1 << 20;
    this.#onEvent = opts.onEvent;
    this.#onRetry = opts.onRetry;
  }

  /** The last event ID seen (for Last-Event-ID on reconnect). */
  get lastEventId(): string {
    return this.#lastEventId;
  }

  /** Feeds the next chunk of the stream. Never throws on content. */
  feed(chunk: Uint8Array | string): void {
    // TextDecoder (ignoreBOM: false) strips one BOM at the very start of the stream only.
    const text = typeof chunk === 'string' ? chunk : this.#decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      if (c === 10 && this.#afterCR && i === start && this.#line === '' && !this.#discardingLine) {
        // the LF of a CRLF whose CR ended the previous chunk (or line): not a new line
        this.#afterCR = false;
        start = i + 1;
        continue;
      }
      this.#append(text, start, i);
      this.#endLine();
      if (c === 13 && text.charCodeAt(i + 1) === 10) i++;
      this.#afterCR = c === 13 && i + 1 >= text.length;
      start = i + 1;
    }
    if (start < text.length) {
      this.#afterCR = false;
      this.#append(text, start, text.length);
    }
  }

  /** Ends the stream: an unterminated last event is discarded, as the spec says. */
  end(): void {
    this.#decoder.decode();
    this.#line = '';
    this.#data = '';
    this.#type = '';
    this.#discardingLine = false;
    this.#discardingEvent = false;
  }

  #append(text: string, from: number, to: number): void {
    if (this.#discardingLine || from === to) return;
    if (this.#line.length + (to - from) > this.#maxLine) {
      this.#discardingLine = true;
      this.#line = '';
      this.counters.linesTooLong++;
      return;
    }
    this.#line += text.slice(from, to);
  }

  #endLine(): void {
    const line = this.#line;
    this.#line = '';
    if (this.#discardingLine) {
      // the overlong line belonged to the current event: drop that event too
      this.#discardingLine = false;
      this.#discardingEvent = true;
      return;
    }
    if (line === '') return this.#dispatch();
    if (line.charCodeAt(0) === 58 /* : */) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'event':
        this.#type = value;
        break;
      case 'data':
        if (this.#discardingEvent) break;
        if (this.#data.length + value.length + 1 > this.#maxEvent) {
          this.#discardingEvent = true;
          this.#data = '';
          break;
        }
        this.#data += value + '\n';
        break;
      case 'id':
        if (!value.includes('\0')) this.#lastEventId = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.#onRetry?.(Number(value));
        break;
      default:
        break; // unknown fields are ignored
    }
  }

  #dispatch(): void {
    const data = this.#data;
    const type = this.#type;
    const discarded = this.#discardingEvent;
    this.#data = '';
    this.#type = '';
    this.#discardingEvent = false;
    if (discarded) {
      this.counters.eventsTooLarge++;
      return;
    }
    if (data === '') return;
    this.counters.events++;
    this.#onEvent({ type: type === '' ? 'message' : type, data: data.slice(0, -1), lastEventId: this.#lastEventId });
  }
}
