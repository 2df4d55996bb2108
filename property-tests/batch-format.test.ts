// Properties of the batch codec (journal/segment/batch-format.ts) and of the recovery scan
// (journal/segment/log-scan.ts), both pure over byte arrays.
//
// Goal: what the writer encodes, the reader gets back unchanged; a log cut at any byte scans to
// exactly the batches that end at or before the cut; a flipped byte is never read as a valid
// batch; no input bytes make the checks throw.
// Method: fast-check generates records, batch sequences, cut points, flips and raw bytes; each
// property compares the scan with the batch boundaries known from the encoder. A failure prints
// the seed and the shrunk counterexample; set FC_SEED (and FC_PATH) to replay it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { checksum64 } from '../journal/testing.js';
import {
  BATCH_FORMAT_VERSION,
  BATCH_HEADER_BYTES,
  BATCH_MAGIC,
  checkBatch,
  decodeBatchRecords,
  encodeBatch,
  encodedRecordBytes,
  RecordDecodeError,
  sealBatch,
  type BatchRecordInput,
} from '../journal/testing.js';
import { scanBatches } from '../journal/testing.js';
import { HARD_MAX_BATCH_BYTES } from '../journal/testing.js';
import { replay } from '../tests/support/fast-check.js';

// Failures print the property's own assertion message, not only the counterexample.
fc.configureGlobal({ includeErrorInReport: true });

const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((array) => Buffer.from(array));
const nullableBytes = (maxLength: number) => fc.option(bytes(maxLength), { nil: null, freq: 4 });

const headerArb = fc.record({ key: fc.string({ unit: 'binary', maxLength: 12 }), value: bytes(24) });

const recordBodyArb = fc.record({
  timestamp: fc.maxSafeNat(),
  key: nullableBytes(40),
  value: nullableBytes(200),
  headers: fc.array(headerArb, { maxLength: 4 }),
});

/** Records with strictly increasing offset deltas from 0 (gaps allowed, as after compaction). */
const recordsArb = fc
  .array(fc.tuple(recordBodyArb, fc.integer({ min: 1, max: 1000 })), { minLength: 1, maxLength: 8 })
  .map((entries): BatchRecordInput[] => {
    let delta = 0;
    return entries.map(([body, gap], index) => {
      if (index > 0) delta += gap;
      return { offsetDelta: delta, ...body };
    });
  });

interface EncodedLog {
  bytes: Buffer;
  /** Start and end byte of each batch, and the offset after it. */
  batches: { start: number; end: number; baseOffset: number; nextOffset: number }[];
  firstOffset: number;
}

/** A log of 1-6 sealed batches with dense, increasing offsets and non-decreasing epochs. */
const logArb = fc
  .record({
    firstOffset: fc.integer({ min: 0, max: 2 ** 40 }),
    batches: fc.array(fc.tuple(recordsArb, fc.integer({ min: 0, max: 3 })), { minLength: 1, maxLength: 6 }),
  })
  .map(({ firstOffset, batches }): EncodedLog => {
    const buffers: Buffer[] = [];
    const layout: EncodedLog['batches'] = [];
    let offset = firstOffset;
    let epoch = 0;
    let position = 0;
    for (const [records, epochStep] of batches) {
      const batch = encodeBatch(records);
      epoch += epochStep;
      sealBatch(batch, offset, epoch);
      const lastDelta = records[records.length - 1]?.offsetDelta ?? 0;
      layout.push({ start: position, end: position + batch.length, baseOffset: offset, nextOffset: offset + lastDelta + 1 });
      offset += lastDelta + 1;
      position += batch.length;
      buffers.push(batch);
    }
    return { bytes: Buffer.concat(buffers), batches: layout, firstOffset };
  });

test('encode, seal, check and decode round-trip any records', () => {
  fc.assert(
    fc.property(recordsArb, fc.integer({ min: 0, max: 0xffffffff }), fc.maxSafeNat(), (records, epoch, baseSeed) => {
      const lastDelta = records[records.length - 1]?.offsetDelta ?? 0;
      const baseOffset = baseSeed % (Number.MAX_SAFE_INTEGER - lastDelta);
      const batch = encodeBatch(records);
      assert.equal(batch.length, BATCH_HEADER_BYTES + records.reduce((sum, record) => sum + encodedRecordBytes(record), 0));
      sealBatch(batch, baseOffset, epoch);

      // A batch embedded at an arbitrary position of a larger buffer checks the same.
      const framed = Buffer.concat([Buffer.from([1, 2, 3]), batch, Buffer.from([9])]);
      const check = checkBatch(framed, 3, HARD_MAX_BATCH_BYTES);
      assert.equal(check.kind, 'valid', check.kind === 'invalid' ? check.reason : check.kind);
      if (check.kind !== 'valid') return;
      const header = check.header;
      assert.equal(header.batchBytes, batch.length);
      assert.equal(header.formatVersion, BATCH_FORMAT_VERSION);
      assert.equal(header.baseOffset, baseOffset);
      assert.equal(header.leaderEpoch, epoch);
      assert.equal(header.recordCount, records.length);
      assert.equal(header.lastOffsetDelta, lastDelta);
      assert.equal(header.firstTimestamp, records[0]?.timestamp);
      assert.equal(header.maxTimestamp, Math.max(0, ...records.map((record) => record.timestamp)));

      const decoded = decodeBatchRecords(framed, 3, header);
      assert.equal(decoded.length, records.length);
      records.forEach((input, index) => {
        const output = decoded[index];
        assert.ok(output !== undefined);
        assert.equal(output.offset, baseOffset + input.offsetDelta);
        assert.equal(output.timestamp, input.timestamp);
        assert.equal(output.epoch, epoch);
        assert.deepEqual(output.key, input.key);
        assert.deepEqual(output.value, input.value);
        const plain = (headers: { key: string; value: Buffer }[]) => headers.map((h) => ({ key: h.key, value: Buffer.from(h.value) }));
        assert.deepEqual(plain(output.headers), plain(input.headers));
      });
    }),
    { numRuns: 500, ...replay },
  );
});

test('a log cut at any byte scans to exactly the batches that end at or before the cut', () => {
  fc.assert(
    fc.property(logArb, fc.nat(), fc.nat({ max: 1 << 20 }), (log, cutSeed, filePosition) => {
      const cut = cutSeed % (log.bytes.length + 1);
      const whole = log.batches.filter((batch) => batch.end <= cut);
      const result = scanBatches(log.bytes.subarray(0, cut), filePosition, log.firstOffset, 0, HARD_MAX_BATCH_BYTES);
      assert.deepEqual(result.batches.map((batch) => batch.position - filePosition), whole.map((batch) => batch.start));
      assert.deepEqual(result.batches.map((batch) => batch.header.baseOffset), whole.map((batch) => batch.baseOffset));
      const boundary = whole[whole.length - 1]?.end ?? 0;
      assert.equal(result.stop.position, filePosition + boundary);
      assert.equal(result.stop.kind, cut === boundary ? 'end' : 'incomplete');
      assert.equal(result.nextOffset, whole[whole.length - 1]?.nextOffset ?? log.firstOffset);
    }),
    { numRuns: 500, ...replay },
  );
});

test('a flipped byte is never scanned as a valid batch: the scan stops at the damaged batch', () => {
  fc.assert(
    fc.property(logArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (log, positionSeed, mask) => {
      const position = positionSeed % log.bytes.length;
      const damaged = Buffer.from(log.bytes);
      damaged[position] = (damaged[position] ?? 0) ^ mask;
      const hit = log.batches.findIndex((batch) => batch.start <= position && position < batch.end);
      const before = log.batches.slice(0, hit);
      const target = log.batches[hit];
      assert.ok(target !== undefined);

      const result = scanBatches(damaged, 0, log.firstOffset, 0, HARD_MAX_BATCH_BYTES);
      assert.deepEqual(result.batches.map((batch) => batch.position), before.map((batch) => batch.start));
      assert.equal(result.stop.position, target.start);
      // Only a flip in the length field can make the batch look longer than the log (torn);
      // everything else is caught as invalid (magic, length bounds, version or checksum).
      const inLengthField = position - target.start >= 4 && position - target.start < 8;
      if (inLengthField) assert.ok(result.stop.kind === 'invalid' || result.stop.kind === 'incomplete', result.stop.kind);
      else assert.equal(result.stop.kind, 'invalid');
      assert.equal(checkBatch(damaged, target.start, HARD_MAX_BATCH_BYTES).kind === 'valid', false);
    }),
    { numRuns: 1000, ...replay },
  );
});

test('only a batch whose checksum verifies is reported as another format version', () => {
  // The checksum covers the version byte, so a flipped version byte is damage (recovery cuts
  // it), while a batch sealed by a newer writer is refused as an unsupported format.
  fc.assert(
    fc.property(recordsArb, fc.integer({ min: 0, max: 255 }).filter((version) => version !== BATCH_FORMAT_VERSION), (records, version) => {
      const batch = encodeBatch(records);
      sealBatch(batch, 0, 0);
      const flipped = Buffer.from(batch);
      flipped.writeUInt8(version, 16);
      const damaged = checkBatch(flipped, 0, HARD_MAX_BATCH_BYTES);
      assert.equal(damaged.kind, 'invalid');
      assert.equal(damaged.kind === 'invalid' ? damaged.unsupportedVersion : null, undefined, 'a flipped version byte is reported as damage');

      const newer = Buffer.from(batch);
      newer.writeUInt8(version, 16);
      newer.writeBigUInt64LE(checksum64(newer.subarray(16)), 8);
      const unsupported = checkBatch(newer, 0, HARD_MAX_BATCH_BYTES);
      assert.equal(unsupported.kind === 'invalid' ? unsupported.unsupportedVersion : null, version, 'a checksummed batch of another version is unsupported');
    }),
    { numRuns: 200, ...replay },
  );
});

test('random bytes never make checkBatch or scanBatches throw', () => {
  // Raw noise, and noise behind a valid magic and plausible length so the checks get further.
  const noiseArb = fc.oneof(
    bytes(300),
    fc.tuple(bytes(300), fc.integer({ min: 0, max: 400 })).map(([tail, length]) => {
      const head = Buffer.alloc(8);
      head.writeUInt32LE(BATCH_MAGIC, 0);
      head.writeUInt32LE(length, 4);
      return Buffer.concat([head, tail]);
    }),
  );
  fc.assert(
    fc.property(noiseArb, fc.nat({ max: 400 }), fc.integer({ min: 0, max: HARD_MAX_BATCH_BYTES }), fc.maxSafeNat(), (noise, position, maxBatchBytes, expectedNext) => {
      const check = checkBatch(noise, position, maxBatchBytes);
      assert.ok(['valid', 'incomplete', 'invalid'].includes(check.kind));
      const result = scanBatches(noise, 0, expectedNext, 0, maxBatchBytes);
      assert.ok(result.stop.position <= noise.length);
    }),
    { numRuns: 2000, ...replay },
  );
});

test('decoding a checksummed batch with a garbage body gives RecordDecodeError, never another error', () => {
  // A writer bug could seal garbage: the checksum then passes, and decoding must still refuse
  // the bytes with a coded error rather than crash or read out of bounds.
  fc.assert(
    fc.property(bytes(200), fc.integer({ min: 1, max: 6 }), fc.nat({ max: 20 }), (body, recordCount, lastOffsetDelta) => {
      const batch = Buffer.concat([Buffer.alloc(BATCH_HEADER_BYTES), body, Buffer.alloc(Math.max(0, 26 - body.length))]);
      batch.writeUInt32LE(BATCH_MAGIC, 0);
      batch.writeUInt32LE(batch.length, 4);
      batch.writeUInt8(BATCH_FORMAT_VERSION, 16);
      batch.writeUInt32LE(recordCount, 32);
      batch.writeUInt32LE(lastOffsetDelta, 36);
      batch.writeBigUInt64LE(checksum64(batch.subarray(16)), 8);
      const check = checkBatch(batch, 0, HARD_MAX_BATCH_BYTES);
      assert.equal(check.kind, 'valid');
      if (check.kind !== 'valid') return;
      try {
        const records = decodeBatchRecords(batch, 0, check.header);
        assert.equal(records.length, recordCount);
      } catch (error) {
        assert.ok(error instanceof RecordDecodeError, String(error));
      }
    }),
    { numRuns: 2000, ...replay },
  );
});
