// A TLS client for test/netns/bridge-ingress.test.ts, run in the client namespace: one HTTPS GET
// to IP:PORT with SNI HOSTNAME, trusting CA_FILE ("none": accept anything, for the certificate
// only). Prints one JSON line: status, body, the peer certificate's SHA-256 and issuer CN, or error.
// Usage: node ingress-client.mjs IP PORT HOSTNAME CA_FILE|none

import { readFileSync } from 'node:fs';
import { request } from 'node:https';

const [ip, port, hostname, caFile] = process.argv.slice(2);
const ca = caFile === 'none' ? undefined : readFileSync(caFile, 'utf8');
const req = request({ host: ip, port: Number(port), servername: hostname, path: '/', headers: { host: hostname }, ...(ca ? { ca } : { rejectUnauthorized: false }), timeout: 8000, agent: false }, (res) => {
  const cert = res.socket.getPeerCertificate();
  let body = '';
  res.on('data', (d) => (body += d));
  res.on('end', () => {
    console.log(JSON.stringify({ status: res.statusCode, body, fingerprint: cert.fingerprint256.replace(/:/g, '').toLowerCase(), issuer: cert.issuer?.CN ?? null }));
  });
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', (err) => console.log(JSON.stringify({ error: err.code ?? err.message })));
req.end();
