// `plexd-userspace stun-server --listen HOST:PORT`: the built-in STUN Binding server
// (src/nat/stun-server.ts) on its own, so a self-hosted mesh needs no third-party STUN server.
// Prints "listening on HOST:PORT" once bound; runs until SIGTERM/SIGINT, then prints its counters.

import { parseArgs } from 'node:util';
import { parseEndpoint } from '../api/fields.js';
import { createStunServer } from '../nat/stun-server.js';
import { EXIT } from './constants.js';
import { untilSignalled } from './signals.js';

const USAGE = `Usage: plexd-userspace stun-server [--listen HOST:PORT] [--no-rate-limit]

  --listen HOST:PORT   address to answer on (default 0.0.0.0:3478; [::]:3478 for IPv6)
  --no-rate-limit      answer every request (default: 20/s per source address, burst 5)
`;

/** Parses `--listen` ("ip:port" or "[ipv6]:port", port 0 allowed); undefined when malformed. */
export function parseListen(text: string): { address: string; port: number } | undefined {
  const zeroPort = /:0$/.test(text);
  const e = parseEndpoint(zeroPort ? `${text.slice(0, -1)}1` : text);
  return e === undefined ? undefined : { address: e.host, port: zeroPort ? 0 : e.port };
}

/** Runs the command; resolves to the exit code. */
export async function runStunServer(args: readonly string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: [...args], strict: true, allowPositionals: false, options: { listen: { type: 'string' }, 'no-rate-limit': { type: 'boolean' }, help: { type: 'boolean' } } }));
  } catch (err) {
    process.stderr.write(`plexd-userspace stun-server: ${(err as Error).message}\n\n${USAGE}`);
    return EXIT.usage;
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  const listen = parseListen(values.listen ?? '0.0.0.0:3478');
  if (listen === undefined) {
    process.stderr.write(`plexd-userspace stun-server: expected --listen HOST:PORT, got ${JSON.stringify(values.listen)}\n`);
    return EXIT.usage;
  }
  let server;
  try {
    server = await createStunServer({ listen, rateLimit: values['no-rate-limit'] !== true });
  } catch (err) {
    process.stderr.write(`plexd-userspace stun-server: ${(err as Error).message}\n`);
    return EXIT.setupFailed;
  }
  const a = server.address;
  process.stdout.write(`listening on ${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}\n`);
  await untilSignalled();
  server.close();
  process.stdout.write(`${JSON.stringify(server.counters)}\n`);
  return EXIT.ok;
}
