// A fake instance metadata service for test/netns/metadata-token.test.ts, run inside a test
// namespace on 169.254.169.254:80. argv: MODE TOKEN. Modes: v2 (the GET needs the session token
// the PUT handed out), v1 (the PUT is 404), slow (never answers in time), oversize (600 bytes),
// missing (the token path is 404). Prints READY once listening; one line per request on stderr.
import * as http from 'node:http';

const [mode, token] = process.argv.slice(2);
const SESSION = 'sess-fake-imds';
const server = http.createServer((req, res) => {
  process.stderr.write(`${req.method} ${req.url} ${req.headers['x-aws-ec2-metadata-token'] ?? '-'}\n`);
  if (mode === 'slow') return void setTimeout(() => res.end(token), 30_000).unref();
  if (req.method === 'PUT' && req.url === '/latest/api/token') {
    if (mode === 'v1' || req.headers['x-aws-ec2-metadata-token-ttl-seconds'] === undefined) return void res.writeHead(404).end();
    return void res.end(SESSION);
  }
  if (req.method !== 'GET' || req.url !== '/plexd/bootstrap-token' || mode === 'missing') return void res.writeHead(404).end('not found');
  if (mode === 'v2' && req.headers['x-aws-ec2-metadata-token'] !== SESSION) return void res.writeHead(401).end();
  res.end(mode === 'oversize' ? 'x'.repeat(600) : `${token}\n`);
});
server.listen(80, '169.254.169.254', () => process.stdout.write('READY\n'));
process.on('SIGTERM', () => process.exit(0));
