// Entry point of the adversary child process (`ip netns exec NS node adversary-process.js`): reads
// an AdversaryConfig as the first JSON line on stdin, prints {"ready":true,"port":N}, then answers
// each command line with one JSON line. Exits when stdin closes (the runner died or finished).

import { createInterface } from 'node:readline';
import { nodeCrypto } from '../crypto/node.js';
import { Adversary, runAdversaryCommand, type AdversaryCommand, type AdversaryConfig } from './adversary.js';

const lines = createInterface({ input: process.stdin });
let adversary: Adversary | undefined;
let queue = Promise.resolve();

lines.on('line', (line) => {
  queue = queue.then(async () => {
    if (adversary === undefined) {
      try {
        adversary = await Adversary.create(JSON.parse(line) as AdversaryConfig, nodeCrypto);
        process.stdout.write(`${JSON.stringify({ ready: true, port: adversary.port })}\n`);
      } catch (err) {
        process.stdout.write(`${JSON.stringify({ ready: false, detail: (err as Error).message })}\n`);
        process.exit(1);
      }
      return;
    }
    const answer = await runAdversaryCommand(adversary, JSON.parse(line) as AdversaryCommand);
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  });
});
lines.on('close', () => {
  void queue.then(() => {
    adversary?.close();
    process.exit(0);
  });
});
