// Fuzz target: signed event envelopes and SSE streams through the agent's parser and verifier
// (src/control/sse-parser.ts, src/control/envelopes.ts). Inputs: random text, mutated signed
// envelopes (bytes and fields), authentic envelopes of every scope, type, id kind and age in random
// order (replays, reorderings, rotations by the right and the wrong key), and SSE streams of them
// cut into random chunks. Asserts: nothing throws; every payload is either accepted or exactly one
// counted drop; an accepted envelope is authentic, in scope, of a known type, and its decimal id
// is above every one accepted before; the parser's and verifier's memory stays bounded.
// Signatures cost milliseconds, so most inputs fail before verification (as hostile ones would).

import { describe, expect, it } from 'vitest';
import { EVENT_TYPES, type EventEnvelope } from '../../src/api/events.js';
import { encodeBase64, formatRfc3339 } from '../../src/api/fields.js';
import { generateSigningKey, signEnvelope, verifyEnvelope } from '../../src/api/signing.js';
import { EnvelopeVerifier, SigningKeyring } from '../../src/control/envelopes.js';
import { SseParser } from '../../src/control/sse-parser.js';
import { fuzzIterations, fuzzSeed, fuzzTimeout } from '../helpers/fuzz.js';
import { seededInts, seededRandom } from '../helpers/rng.js';

const ITERATIONS = fuzzIterations(3000);
const SEED = fuzzSeed(0x5e11_0006);
const NOW = 1_700_000_000_000;
const ME = { nodeId: 'node-me', projectId: 'proj-1' };
const WINDOW = 32;
const POOL = 160;

describe('fuzz: envelopes and SSE streams through the parser and verifier', () => {
  it(`${ITERATIONS} inputs: no throw, each accepted or one counted drop, order and scope hold, memory bounded`, () => {
    const int = seededInts(SEED);
    const fill = seededRandom(SEED ^ 0x9e3779b9);
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
    const k1 = generateSigningKey();
    const k2 = generateSigningKey();
    const stranger = generateSigningKey();
    const keys: Record<string, Uint8Array> = { k1: k1.publicKey, k2: k2.publicKey, k9: stranger.publicKey };
    const v = new EnvelopeVerifier(new SigningKeyring('k1', encodeBase64(k1.publicKey)), ME, { wallMs: () => NOW, replayWindow: WINDOW });

    // Authentic envelopes, signed once: ids sequenced and not, every scope kind, known and unknown
    // types, fresh and stale, rotations by k1 (the current key) to k2 and by k2 to a third key.
    const scopes = [`node:${ME.nodeId}`, `project:${ME.projectId}`, 'node:other', 'project:other', `node:${ME.projectId}`];
    const types = [...EVENT_TYPES, 'unknown_thing', 'Peer_Added'];
    const pool: string[] = [];
    for (let i = 0; i < POOL; i++) {
      const id = int(4) === 0 ? pick(['gap-', 'rotation-k2-', 'x-', '0', '01', '-1']) + String(int(1000)) : String(1 + int(400));
      const type = pick(types);
      const signer = pick([['k1', k1], ['k1', k1], ['k2', k2], ['k3', stranger]] as const);
      const payload =
        type === 'signing_key_rotated'
          ? int(2) === 0
            ? { key_id: 'k2', public_key: encodeBase64(k2.publicKey), previous_key_id: 'k1', transition_expires: formatRfc3339(NOW + 60_000) }
            : { key_id: 'k9', public_key: encodeBase64(stranger.publicKey), previous_key_id: signer[0], transition_expires: formatRfc3339(NOW + 60_000) }
          : { n: i };
      const env = signEnvelope({ id, type, scope: pick(scopes), key_id: signer[0], issued_at: formatRfc3339(NOW + (int(15) - 7) * 60_000 + int(60_000)), payload }, signer[1].secretKey);
      pool.push(JSON.stringify(env));
    }

    let calls = 0;
    let lastSeq = 0;
    const acceptedIds = new Set<string>();
    let rotations = 0;
    const accept = (data: string): void => {
      const before = v.accepted + v.dropped;
      const current = v.keyring.currentId;
      const env = v.accept(data);
      calls++;
      expect(v.accepted + v.dropped).toBe(before + 1);
      // The keyring moves only on an accepted rotation signed by the key that was current.
      if (v.keyring.currentId !== current) {
        expect(env?.type === 'signing_key_rotated' && env.key_id === current).toBe(true);
        rotations++;
      }
      if (env === undefined) return;
      checkAccepted(env);
    };
    const checkAccepted = (env: EventEnvelope): void => {
      const key = keys[env.key_id];
      expect(key !== undefined && verifyEnvelope(env, () => key, NOW).ok).toBe(true);
      expect([`node:${ME.nodeId}`, `project:${ME.projectId}`]).toContain(env.scope);
      expect(EVENT_TYPES as readonly string[]).toContain(env.type);
      if (/^[1-9][0-9]*$/.test(env.id)) {
        expect(Number(env.id)).toBeGreaterThan(lastSeq);
        lastSeq = Number(env.id);
      }
      acceptedIds.add(env.id);
    };

    const mutateText = (text: string): string => {
      const b = Buffer.from(text, 'utf8');
      switch (int(5)) {
        case 0:
          return b.subarray(0, int(b.length + 1)).toString('utf8');
        case 1: {
          for (let n = 1 + int(4); n > 0; n--) b[int(b.length)]! ^= 1 << int(8);
          return b.toString('latin1');
        }
        case 2: {
          const at = int(b.length);
          return text.slice(0, at) + pick(['"', '{', '}', ',', '\\u0000', '"id":"9"', ' ', 'null', '1e999', '\n']) + text.slice(at);
        }
        case 3:
          return text.replace(/"[a-z_]+":/, pick(['"ID":', '"":', '"id":', '"payload":', '"__proto__":']));
        default:
          return text.repeat(1 + int(3));
      }
    };
    const mutateField = (text: string): string => {
      const env = JSON.parse(text) as Record<string, unknown>;
      const field = pick(['id', 'type', 'scope', 'key_id', 'issued_at', 'payload', 'signature', 'extra']);
      env[field] = pick<unknown>([null, 7, '', 'x'.repeat(int(300)), {}, [], `node:${ME.nodeId}`, String(lastSeq + 1), 'peer_added', 'k1', formatRfc3339(NOW), { evil: true }, encodeBase64(new Uint8Array(64))]);
      if (int(4) === 0) delete env[field];
      return JSON.stringify(env);
    };
    const randomText = (): string => {
      const b = new Uint8Array(int(200));
      fill(b);
      return int(2) === 0 ? Buffer.from(b).toString('latin1') : pick(['', '{}', '[]', 'null', '"x"', '{"id":"1"}', '{"payload":{"a":'.repeat(int(50))]);
    };
    // A new envelope as the control plane would send next (mostly in scope, current key), so the
    // accepting path and the high-water mark are exercised, not only the refusals.
    const signers: Record<string, Uint8Array> = { k1: k1.secretKey, k2: k2.secretKey, k9: stranger.secretKey };
    const fresh = (): string => {
      const keyId = int(10) === 0 ? pick(['k1', 'k2', 'k9']) : v.keyring.currentId;
      const rotation = int(20) === 0;
      const env = signEnvelope(
        {
          id: int(5) === 0 ? `gap-${int(1_000_000)}` : String(Math.max(1, v.highWater + int(4) - 1)),
          type: rotation ? 'signing_key_rotated' : int(10) === 0 ? 'unknown_thing' : pick(EVENT_TYPES),
          scope: int(8) === 0 ? pick(scopes) : `node:${ME.nodeId}`,
          key_id: keyId,
          issued_at: formatRfc3339(NOW - int(400_000)),
          payload: rotation ? { key_id: 'k2', public_key: encodeBase64(k2.publicKey), previous_key_id: keyId, transition_expires: formatRfc3339(NOW + 60_000) } : {},
        },
        signers[keyId]!,
      );
      return JSON.stringify(env);
    };
    const sseStream = (): void => {
      const parts: string[] = [];
      for (let n = 1 + int(6); n > 0; n--) {
        const r = int(6);
        if (r === 0) parts.push(`: ${randomText()}\n`);
        else if (r === 1) parts.push(`id: ${int(500)}\nevent: peer_added\ndata: ${mutateText(pick(pool))}\n\n`);
        else if (r === 2) parts.push(`data: ${'y'.repeat(int(3000))}\ndata: more\n\n`);
        else if (r === 3) parts.push(`retry: ${int(100000)}\r\n\r`);
        else parts.push(`data: ${randomText().replace(/[\r\n]/g, '')}\n\n`);
      }
      const text = (int(10) === 0 ? '\ufeff' : '') + parts.join('');
      const bytes = Buffer.from(text, 'utf8');
      const p = new SseParser({ maxLineChars: 2048, maxEventChars: 2048, onEvent: (e) => accept(e.data) });
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + int(64);
        p.feed(bytes.subarray(at, at + n));
        at += n;
      }
    };

    const heap0 = process.memoryUsage().heapUsed;
    const outcomes = { random: 0, mutatedText: 0, mutatedField: 0, replayed: 0, fresh: 0, sse: 0 };
    for (let i = 0; i < ITERATIONS; i++) {
      try {
        const r = int(100);
        if (r < 40) (outcomes.random++, accept(randomText()));
        else if (r < 80) (outcomes.mutatedText++, accept(mutateText(pick(pool))));
        else if (r < 85) (outcomes.mutatedField++, accept(mutateField(pick(pool))));
        else if (r < 90) (outcomes.replayed++, accept(pick(pool)));
        else if (r < 93) (outcomes.fresh++, accept(fresh()));
        else (outcomes.sse++, sseStream());
      } catch (err) {
        throw new Error(`seed ${SEED} iteration ${i}: ${(err as Error).message}`, { cause: err });
      }
    }
    global.gc?.();
    const heapDeltaMb = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
    console.log(
      `fuzz envelopes: seed ${SEED}, ${ITERATIONS} inputs (${JSON.stringify(outcomes)}), ${calls} payloads verified: accepted ${v.accepted}, ` +
        `drops ${JSON.stringify(Object.fromEntries(Object.entries(v.drops).filter(([, n]) => n > 0)))}, rotations ${rotations} (key ${v.keyring.currentId}), last_seq ${v.highWater}, heap delta ${heapDeltaMb.toFixed(1)} MiB`,
    );
    expect(v.accepted + v.dropped).toBe(calls);
    expect(v.accepted).toBeGreaterThan(0);
    expect(v.drops.replayed + v.drops.wrong_scope + v.drops.unknown_type + v.drops.bad_signature).toBeGreaterThan(0);
    expect(heapDeltaMb).toBeLessThan(64);
  }, fuzzTimeout(ITERATIONS, 2));
});
