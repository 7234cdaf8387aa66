// The event subscription against loopback fakes: Last-Event-ID on reconnect, one reconcile per
// connect, idle timeout, 501 -> pull_only, sustained failure -> degraded_polling, hostile bytes.

import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EventStream, type DeliveryMode } from '../../src/control/event-stream.js';
import { HttpClient } from '../../src/control/http-client.js';
import { until } from '../helpers/wait.js';

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function serve(handler: http.RequestListener): Promise<HttpClient> {
  const s = http.createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return new HttpClient({ baseUrl: `http://127.0.0.1:${(s.address() as AddressInfo).port}` });
}

const fastSleep = (ms: number, signal?: AbortSignal) => new Promise<void>((r, j) => {
  const t = setTimeout(r, Math.min(ms, 20));
  signal?.addEventListener('abort', () => (clearTimeout(t), j(new Error('stop'))), { once: true });
});

describe('EventStream', () => {
  it('resumes with Last-Event-ID, reconciles once per connect, survives garbage and idle streams', async () => {
    const lastIds: Array<string | undefined> = [];
    let n = 0;
    const client = await serve((req, res) => {
      lastIds.push(req.headers['last-event-id'] as string | undefined);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      n++;
      if (n === 1) res.end('id: 5\ndata: one\n\n\0\xff\xfe garbage\n' + 'x'.repeat(3000) + '\n\n');
      else if (n === 2) res.write(': idle from here\n'); // never ends: idle timeout
      else res.end('id: 6\ndata: two\n\n');
    });
    const events: string[] = [];
    let connects = 0;
    const s = new EventStream({
      open: (id, signal) => openEvents(client, id, signal),
      onEvent: (e) => events.push(e.data),
      onConnected: () => connects++,
      poll: async () => {},
      sleep: fastSleep,
      maxEventChars: 1000,
      timings: { idleTimeoutMs: 300 },
    });
    s.start();
    await until('two events', 5000, () => events.length >= 2, 10);
    await s.stop();
    expect(events.slice(0, 2)).toEqual(['one', 'two']);
    expect(lastIds.slice(0, 3)).toEqual([undefined, '5', '5']);
    expect(connects).toBeGreaterThanOrEqual(3);
    expect(s.counters.idleTimeouts).toBe(1);
    expect(s.counters.linesTooLong).toBe(1);
  });

  it('switches to pull_only on 501 and to degraded_polling after sustained failure', async () => {
    const client501 = await serve((_q, res) => res.writeHead(501, { 'content-type': 'application/problem+json' }).end('{"code":"signed_event_bus_not_provisioned"}'));
    const modes: DeliveryMode[] = [];
    let polls = 0;
    const s1 = new EventStream({ open: (id, sig) => openEvents(client501, id, sig), onEvent: () => {}, onConnected: () => {}, poll: async () => void polls++, onModeChange: (m) => modes.push(m), sleep: fastSleep, timings: { pollIntervalMs: 10, reprobeMs: 100 } });
    s1.start();
    await until('two polls', 5000, () => polls >= 2, 10);
    await s1.stop();
    expect(modes[0]).toBe('pull_only');

    const client500 = await serve((_q, res) => res.writeHead(500).end());
    const modes2: DeliveryMode[] = [];
    let polls2 = 0;
    const s2 = new EventStream({ open: (id, sig) => openEvents(client500, id, sig), onEvent: () => {}, onConnected: () => {}, poll: async () => void polls2++, onModeChange: (m) => modes2.push(m), sleep: fastSleep, timings: { degradeAfterMs: 100, pollIntervalMs: 10 } });
    s2.start();
    await until('a poll', 5000, () => polls2 >= 1, 10);
    expect(s2.mode).toBe('degraded_polling');
    await s2.stop();
    expect(modes2).toEqual(['degraded_polling']);
  });
});

function openEvents(client: HttpClient, lastEventId: string | undefined, signal: AbortSignal) {
  return client.open('GET', 'v1/nodes/x/events', { headers: lastEventId === undefined ? {} : { 'last-event-id': lastEventId }, signal });
}
