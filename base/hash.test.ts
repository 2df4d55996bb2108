// Goal: base/hash.ts gives, for every input, the value of each FNV-1a it replaced; the broker's
// copy decides which data shard a topic's history is in, so it must match bit for bit.
// Method: the replaced functions are copied here verbatim as references and compared over
// arbitrary strings (whole code points across the Unicode range, astral ones among them, plus
// lone surrogate halves, which topics decoded leniently can carry) and arbitrary bytes.
// Replay a failure with FC_SEED (and FC_PATH).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { fnv1a, fnv1aBytes } from './index.js';
import { replay } from '../tests/support/fast-check.js';

/** engine/broker.ts shardOf before base/ (with the modulo left to the caller). */
function brokerShardHash(topic: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < topic.length; i += 1) {
    hash ^= topic.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** engine/shared/strategy.ts fnv1a before base/. */
function strategyFnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** journal/sim/simulated-disk.ts fingerprint before base/. */
function diskFingerprint(data: Buffer): string {
  let hash = 0x811c9dc5;
  for (const byte of data) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash.toString(16).padStart(8, '0');
}

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit));
const anyText = fc.string({ unit: fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), loneSurrogate, fc.constantFrom('/', '+', '#', '$')), maxLength: 64 });

test('fnv1a equals the broker topic-to-shard hash and the shared-subscription hash', () => {
  fc.assert(
    fc.property(anyText, fc.integer({ min: 1, max: 1024 }), (text, shards) => {
      assert.equal(fnv1a(text), brokerShardHash(text));
      assert.equal(fnv1a(text) % shards, brokerShardHash(text) % shards);
      assert.equal(fnv1a(text), strategyFnv1a(text));
    }),
    { numRuns: 5000, ...replay },
  );
});

test('fnv1aBytes equals the simulated disk fingerprint', () => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 256 }), anyText.map((text) => new TextEncoder().encode(text))), (bytes) => {
      const data = Buffer.from(bytes);
      assert.equal(fnv1aBytes(data).toString(16).padStart(8, '0'), diskFingerprint(data));
    }),
    { numRuns: 5000, ...replay },
  );
});

test('known values stay put', () => {
  // Published FNV-1a 32-bit test vectors, and a topic over an astral character.
  assert.equal(fnv1a(''), 0x811c9dc5);
  assert.equal(fnv1a('a'), 0xe40c292c);
  assert.equal(fnv1a('foobar'), 0xbf9cf968);
  assert.equal(fnv1aBytes(new TextEncoder().encode('foobar')), 0xbf9cf968);
  assert.equal(fnv1a('sensor/\u{1F600}'), brokerShardHash('sensor/\u{1F600}'));
});
