// `plexd-userspace relay --listen HOST:PORT --sessions FILE`: the bridge relay (src/bridge/relay.ts)
// on its own, for manual runs and the NAT lab; in an agent the control plane's sessions drive it.
// FILE holds a JSON array of plexd relay sessions (or {"sessions": [...]}, as in a state pull's
// bridge.relay); SIGHUP re-reads it (reconcile). Prints "listening on HOST:PORT" once bound; on
// SIGTERM/SIGINT prints its counters and exits.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { RelaySession } from '../api/types.js';
import { DEFAULT_RELAY_PORT, createRelay, type Relay } from '../bridge/relay.js';
import { EXIT } from './constants.js';
import { untilSignalled } from './signals.js';
import { parseListen } from './stun-server.js';

const USAGE = `Usage: plexd-userspace relay [--listen HOST:PORT] [--sessions FILE] [--max-sessions N] [--ttl SECONDS]

  --listen HOST:PORT   default 0.0.0.0:${DEFAULT_RELAY_PORT}
  --sessions FILE      JSON array of {session_id, peer_a_id, peer_a_endpoint, peer_b_id,
                       peer_b_endpoint, expires_at, relay_port?, binding_key?}; an empty
                       endpoint is learned from the peer's relay binding; relay_port gives the
                       session its own UDP port; binding_key (base64, 32 bytes) makes bindings
                       authenticated, without it they are not. SIGHUP reloads the file.
  --max-sessions N     default 100
  --ttl SECONDS        default 300
`;

function readSessions(path: string): RelaySession[] {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (err) {
    throw new Error(`--sessions ${path}: ${(err as Error).message.replace(/\s+/g, ' ')}`, { cause: err });
  }
  const list = Array.isArray(doc) ? doc : (doc as { sessions?: unknown })?.sessions;
  if (!Array.isArray(list)) throw new TypeError(`expected a JSON array of sessions in ${path}`);
  return list as RelaySession[];
}

function load(relay: Relay, path: string): void {
  for (const [id, why] of relay.reconcile(readSessions(path))) process.stderr.write(`relay: session ${id} not added: ${why}\n`);
  void relay.settled().then((failed) => {
    for (const [id, why] of failed) process.stderr.write(`relay: session ${id}: its port could not be opened: ${why}\n`);
  });
}

/** Runs the command; resolves to the exit code. */
export async function runRelay(args: readonly string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: { listen: { type: 'string' }, sessions: { type: 'string' }, 'max-sessions': { type: 'string' }, ttl: { type: 'string' }, help: { type: 'boolean' } },
    }));
  } catch (err) {
    process.stderr.write(`plexd-userspace relay: ${(err as Error).message}\n\n${USAGE}`);
    return EXIT.usage;
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  const listen = parseListen(values.listen ?? `0.0.0.0:${DEFAULT_RELAY_PORT}`);
  const maxSessions = Number(values['max-sessions'] ?? 100);
  const ttl = Number(values.ttl ?? 300);
  const bad =
    listen === undefined ? `expected --listen HOST:PORT, got ${JSON.stringify(values.listen)}`
    : !Number.isInteger(maxSessions) || maxSessions < 1 ? `expected --max-sessions a positive integer, got ${JSON.stringify(values['max-sessions'])}`
    : !(ttl > 0) || !Number.isFinite(ttl) ? `expected --ttl a positive number of seconds, got ${JSON.stringify(values.ttl)}`
    : undefined;
  if (bad !== undefined || listen === undefined) {
    process.stderr.write(`plexd-userspace relay: ${bad}\n\n${USAGE}`);
    return EXIT.usage;
  }
  let relay: Relay | undefined;
  try {
    if (values.sessions !== undefined) readSessions(values.sessions); // fail before binding
    relay = await createRelay({ listen, maxSessions, ttlMs: ttl * 1000 });
    if (values.sessions !== undefined) load(relay, values.sessions);
  } catch (err) {
    // A bound socket would keep the process alive after we report the failure.
    relay?.close();
    process.stderr.write(`plexd-userspace relay: ${(err as Error).message}\n`);
    return EXIT.setupFailed;
  }
  const onHup = () => {
    try {
      if (values.sessions !== undefined) load(relay, values.sessions);
    } catch (err) {
      process.stderr.write(`relay: reload failed: ${(err as Error).message}\n`);
    }
  };
  process.on('SIGHUP', onHup);
  const a = relay.address;
  process.stdout.write(`listening on ${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}\n`);
  await untilSignalled();
  process.off('SIGHUP', onHup);
  relay.close();
  process.stdout.write(`${JSON.stringify({ ...relay.counters, stun: relay.stunCounters })}\n`);
  return EXIT.ok;
}
