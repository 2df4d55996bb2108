// Tests of record batch v2 (record-batch.ts), its gzip hook (compression.ts) and the request
// frame splitter (framing.ts).
//
// Goal: a batch built by hand from the protocol guide's layout decodes to the fields it spells
// and encodes back to the same bytes (batchLength, CRC-32C over attributes..end); any batch
// round-trips, uncompressed and gzip; a changed byte, a cut batch, a hostile count or length, a
// gzip bomb, an unsupported codec all fail typed (SL_KAFKA_DECODE / SL_KAFKA_COMPRESSION); the
// splitter yields the same frames however the stream is cut and refuses bad sizes from the prefix.
// FC_SEED/FC_PATH replay a failing property.
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isShardlineError } from '../../../base/index.js';
import { CompressionType } from './compression.js';
import { crc32c } from './crc32c.js';
import { FrameSplitter, frame } from './framing.js';
import { compressionOf, decodeRecordBatch, decodeRecordBatches, encodeRecordBatch, isTransactional, type KafkaRecord, type RecordBatch } from './record-batch.js';
import { numRuns, replay } from '../../../tests/support/fast-check.js';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const typed = (error: unknown) => isShardlineError(error, 'SL_KAFKA_DECODE') || isShardlineError(error, 'SL_KAFKA_COMPRESSION');

// One record, key null, value "hi", one header k=v, as a producer sends it (no producer id).
const AFTER_CRC = `0000 00000000 0000000000000064 0000000000000064 ffffffffffffffff ffff ffffffff 00000001
  18 00 00 00 01 04 6869 02 02 6b 02 76`;
// batchLength 62 = 49 header bytes after the length field + a 13-byte record. The CRC-32C
// 9090f6ba was computed outside this code base (a bitwise, tableless CRC-32C in Python).
const HAND_BATCH = hex(`0000000000000000 0000003e ffffffff 02 9090f6ba ${AFTER_CRC}`);
const HAND_RECORD: KafkaRecord = { attributes: 0, timestampDelta: 0n, offsetDelta: 0, key: null, value: Buffer.from('hi'), headers: [{ key: 'k', value: Buffer.from('v') }] };
const HAND_FIELDS: RecordBatch = {
  baseOffset: 0n, partitionLeaderEpoch: -1, attributes: 0, lastOffsetDelta: 0, baseTimestamp: 100n, maxTimestamp: 100n,
  producerId: -1n, producerEpoch: -1, baseSequence: -1, records: [HAND_RECORD],
};

describe('record batch v2', () => {
  test('a hand-built batch decodes to its fields and encodes back byte for byte', () => {
    const decoded = decodeRecordBatch(HAND_BATCH);
    const { crc, bytes, ...fields } = decoded;
    assert.deepStrictEqual(fields, HAND_FIELDS);
    assert.equal(crc, 0x9090f6ba);
    assert.equal(bytes.length, 74);
    assert.equal(encodeRecordBatch(HAND_FIELDS).toString('hex'), HAND_BATCH.toString('hex'));
  });

  test('the CRC covers attributes..end but not the offset or leader epoch', () => {
    const restamped = Buffer.from(HAND_BATCH);
    restamped.writeBigInt64BE(1000n, 0); // a broker assigns offsets without recomputing the CRC
    restamped.writeInt32BE(7, 12);
    assert.equal(decodeRecordBatch(restamped).baseOffset, 1000n);
    for (const at of [21, 40, HAND_BATCH.length - 1]) {
      const changed = Buffer.from(HAND_BATCH);
      changed[at] = changed[at]! ^ 0x01;
      assert.throws(() => decodeRecordBatch(changed), (e: unknown) => isShardlineError(e, 'SL_KAFKA_DECODE'), `byte ${at}`);
    }
  });

  test('magic other than 2, short lengths and hostile counts are refused', () => {
    const magic1 = Buffer.from(HAND_BATCH); magic1[16] = 1;
    const shortLength = Buffer.from(HAND_BATCH); shortLength.writeInt32BE(10, 8);
    const hugeLength = Buffer.from(HAND_BATCH); hugeLength.writeInt32BE(0x7fffffff, 8);
    for (const bytes of [magic1, shortLength, hugeLength, HAND_BATCH.subarray(0, 50), HAND_BATCH.subarray(0, 73)]) {
      assert.throws(() => decodeRecordBatches(bytes), (e: unknown) => isShardlineError(e, 'SL_KAFKA_DECODE'));
    }
    // A record count of 2^31-1 with a valid CRC: refused from the bytes present, before looping.
    const tail = Buffer.from(hex(AFTER_CRC)); tail.writeInt32BE(0x7fffffff, 36);
    const hostile = Buffer.concat([hex('0000000000000000 0000003e ffffffff 02'), Buffer.alloc(4), tail]);
    hostile.writeUInt32BE(crc32c(tail), 17);
    assert.throws(() => decodeRecordBatch(hostile), (e: unknown) => isShardlineError(e, 'SL_KAFKA_DECODE'));
  });

  test('a Fetch-style partial last batch is reported, not decoded, when allowed', () => {
    const two = Buffer.concat([HAND_BATCH, HAND_BATCH.subarray(0, 30)]);
    assert.throws(() => decodeRecordBatches(two), (e: unknown) => isShardlineError(e, 'SL_KAFKA_DECODE'));
    const { batches, partialTailBytes } = decodeRecordBatches(two, { allowPartialTail: true });
    assert.equal(batches.length, 1);
    assert.equal(partialTailBytes, 30);
  });

  test('gzip: compressed records round-trip; a bomb stops at the limit; unknown codecs are typed refusals', () => {
    const gz = { ...HAND_FIELDS, attributes: CompressionType.gzip | 0x10, records: [HAND_RECORD, { ...HAND_RECORD, offsetDelta: 1 }], lastOffsetDelta: 1 };
    const bytes = encodeRecordBatch(gz);
    const { crc: _crc, bytes: _bytes, ...back } = decodeRecordBatch(bytes);
    assert.deepStrictEqual(back, gz);
    assert.equal(compressionOf(back.attributes), CompressionType.gzip);
    assert.ok(isTransactional(back.attributes));
    // A gzip payload of 1 MiB of zeros, and a 64 KiB decompression cap.
    const bomb = Buffer.from(bytes.subarray(0, 61));
    const payload = gzipSync(Buffer.alloc(1024 * 1024));
    const bombBatch = Buffer.concat([bomb, payload]);
    bombBatch.writeInt32BE(bombBatch.length - 12, 8);
    bombBatch.writeUInt32BE(crc32c(bombBatch, 21), 17);
    assert.throws(() => decodeRecordBatch(bombBatch, { maxUncompressedBytes: 64 * 1024 }), (e: unknown) => isShardlineError(e, 'SL_KAFKA_COMPRESSION'));
    // zstd is decompression only; codec ids 5-7 are not Kafka's.
    assert.throws(() => encodeRecordBatch({ ...HAND_FIELDS, attributes: CompressionType.zstd }), (e: unknown) => isShardlineError(e, 'SL_KAFKA_COMPRESSION'));
    for (const codec of [5, 6, 7]) {
      assert.throws(() => encodeRecordBatch({ ...HAND_FIELDS, attributes: codec }), (e: unknown) => isShardlineError(e, 'SL_KAFKA_COMPRESSION'));
      const other = Buffer.from(HAND_BATCH);
      other.writeInt16BE(codec, 21);
      other.writeUInt32BE(crc32c(other, 21), 17);
      assert.throws(() => decodeRecordBatch(other), (e: unknown) => isShardlineError(e, 'SL_KAFKA_COMPRESSION'));
    }
  });

  const recordArb: fc.Arbitrary<KafkaRecord> = fc.record({
    attributes: fc.constant(0),
    timestampDelta: fc.bigInt(-(1n << 40n), 1n << 40n),
    offsetDelta: fc.nat({ max: 1000 }),
    key: fc.option(fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)), { nil: null }),
    value: fc.option(fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)), { nil: null }),
    headers: fc.array(fc.record({ key: fc.string({ unit: 'binary', maxLength: 5 }), value: fc.option(fc.uint8Array({ maxLength: 5 }).map((a) => Buffer.from(a)), { nil: null }) }, { noNullPrototype: true }), { maxLength: 3 }),
  }, { noNullPrototype: true });
  const batchArb: fc.Arbitrary<RecordBatch> = fc.record({
    baseOffset: fc.bigInt(0n, (1n << 62n)),
    partitionLeaderEpoch: fc.integer({ min: -1, max: 1000 }),
    attributes: fc.constantFrom(0, 0x08, 0x10, 0x30, CompressionType.gzip, CompressionType.gzip | 0x10),
    lastOffsetDelta: fc.nat({ max: 1000 }),
    baseTimestamp: fc.bigInt(-1n, 1n << 45n),
    maxTimestamp: fc.bigInt(-1n, 1n << 45n),
    producerId: fc.bigInt(-1n, 1n << 40n),
    producerEpoch: fc.integer({ min: -1, max: 32767 }),
    baseSequence: fc.integer({ min: -1, max: 0x7fffffff }),
    records: fc.array(recordArb, { maxLength: 4 }),
  }, { noNullPrototype: true });

  test('any batch round-trips, alone and several in a row (property)', () => {
    fc.assert(fc.property(fc.array(batchArb, { minLength: 1, maxLength: 3 }), (batches) => {
      const bytes = Buffer.concat(batches.map((batch) => encodeRecordBatch(batch)));
      const back = decodeRecordBatches(bytes).batches.map(({ crc: _c, bytes: _b, ...fields }) => fields);
      assert.deepStrictEqual(back, batches);
    }), { numRuns: numRuns(60), ...replay });
  });

  test('cut or mutated batches fail typed, never with a RangeError (property)', () => {
    fc.assert(fc.property(batchArb, fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }), fc.boolean(), (batch, cutAt, flips, fixCrc) => {
      const bytes = encodeRecordBatch(batch);
      // An empty records field is zero batches; any non-empty cut is an error.
      assert.throws(() => decodeRecordBatches(bytes.subarray(0, 1 + (cutAt % (bytes.length - 1)))), typed);
      const mutated = Buffer.from(bytes);
      for (const [at, value] of flips) mutated[at % mutated.length] = value;
      // With the CRC fixed up the mutation reaches the record parser instead of the checksum.
      if (fixCrc && mutated.length >= 21) mutated.writeUInt32BE(crc32c(mutated, 21), 17);
      try { decodeRecordBatches(mutated); } catch (error) { assert.ok(typed(error), String(error)); }
    }), { numRuns: numRuns(300), ...replay });
  });
});

describe('frame splitter', () => {
  const bodies = [Buffer.from('a'), Buffer.alloc(0), Buffer.alloc(300, 7), Buffer.from('last frame')];
  const stream = Buffer.concat(bodies.map(frame));

  test('the same frames however the stream is cut (property)', () => {
    fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 30 }), (points) => {
      const cuts = [0, ...points.sort((a, b) => a - b), stream.length];
      const splitter = new FrameSplitter(1024);
      const out: Buffer[] = [];
      for (let i = 1; i < cuts.length; i++) {
        const result = splitter.push(stream.subarray(cuts[i - 1], cuts[i]));
        assert.ok(result.ok);
        out.push(...result.frames);
      }
      assert.deepStrictEqual(out.map((b) => b.toString('hex')), bodies.map((b) => b.toString('hex')));
      assert.equal(splitter.pendingBytes, 0);
    }), { numRuns: numRuns(200), ...replay });
  });

  test('negative and oversized sizes are refused from the prefix alone, and the splitter stays failed', () => {
    for (const prefix of ['ffffffff', '00000401', '7fffffff']) {
      const splitter = new FrameSplitter(1024);
      // Only the two halves of the prefix: nothing of the frame exists, the size is enough.
      assert.ok(splitter.push(hex(prefix.slice(0, 4))).ok);
      const result = splitter.push(hex(prefix.slice(4)));
      assert.ok(!result.ok && isShardlineError(result.error, 'SL_KAFKA_FRAME_SIZE'), prefix);
      assert.equal(splitter.pendingBytes, 0);
      assert.ok(!splitter.push(frame(Buffer.from('x'))).ok);
    }
    assert.ok(new FrameSplitter(1024).push(frame(Buffer.alloc(1024))).ok, 'exactly the maximum is allowed');
  });
});
