// Tests of the snappy, lz4 and zstd codecs of record batches (compression.ts).
//
// Goal: batches compressed by each codec round-trip through decodeRecordBatch, including the
// forms other clients send (snappy as one raw block and in Java's xerial framing; zstd from a
// real zstd encoder, the reference library compiled to wasm); a hand-built raw snappy block
// inflates; for each codec a bomb stops at the limit before the output is allocated (snappy's
// declared length, lz4's block walk, zstd's declared window and its output count), and corrupt
// or cut payloads fail typed (SL_KAFKA_COMPRESSION), never with a RangeError.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { before, describe, test } from 'node:test';
import { isShardlineError } from '../../../base/index.js';
import { CompressionType, DEFAULT_CODECS, codecFor } from './compression.js';
import { crc32c } from './crc32c.js';
import { decodeRecordBatch, encodeRecordBatch, type KafkaRecord, type RecordBatch } from './record-batch.js';

const require = createRequire(import.meta.url);
const zstd = require('@bokuweb/zstd-wasm') as { init(): Promise<void>; compress(data: Uint8Array, level?: number): Uint8Array };
const snappyjs = require('snappyjs') as { compress(data: Uint8Array): Uint8Array };

const typed = (error: unknown) => isShardlineError(error, 'SL_KAFKA_COMPRESSION');
const records: KafkaRecord[] = Array.from({ length: 50 }, (_, i) => ({ attributes: 0, timestampDelta: BigInt(i), offsetDelta: i, key: Buffer.from(`key-${i % 5}`), value: Buffer.from(`value ${i} `.repeat(20)), headers: i % 2 === 0 ? [{ key: 'h', value: Buffer.from('x') }] : [] }));
const fields = (attributes: number): RecordBatch => ({ baseOffset: 0n, partitionLeaderEpoch: -1, attributes, lastOffsetDelta: 49, baseTimestamp: 1000n, maxTimestamp: 1049n, producerId: -1n, producerEpoch: -1, baseSequence: -1, records });

/** A batch whose records section is `payload` as is (what a client's own codec produced), with a valid CRC. */
function withPayload(codec: number, payload: Buffer, count = records.length): Buffer {
  const head = encodeRecordBatch({ ...fields(0), records: [] }).subarray(0, 61);
  const batch = Buffer.concat([head, payload]);
  batch.writeInt32BE(batch.length - 12, 8);
  batch.writeInt16BE(codec, 21);
  batch.writeInt32BE(count, 57);
  batch.writeUInt32BE(crc32c(batch, 21), 17);
  return batch;
}

/** The uncompressed records section of the test batch. */
const plain = encodeRecordBatch(fields(0)).subarray(61);

describe('record batch compression: snappy, lz4, zstd', () => {
  before(async () => {
    await zstd.init();
  });

  for (const codec of [CompressionType.snappy, CompressionType.lz4]) {
    test(`${codec === CompressionType.snappy ? 'snappy' : 'lz4'}: a batch round-trips and is smaller than the plain one`, () => {
      const bytes = encodeRecordBatch(fields(codec));
      assert.ok(bytes.length < 61 + plain.length / 2);
      const { crc: _crc, bytes: _bytes, ...back } = decodeRecordBatch(bytes);
      assert.deepStrictEqual(back, fields(codec));
    });
  }

  test('snappy: one raw block (as librdkafka sends) and Java\'s xerial framing in several chunks both inflate', () => {
    const raw = withPayload(CompressionType.snappy, Buffer.from(snappyjs.compress(plain)));
    assert.deepStrictEqual(decodeRecordBatch(raw).records, records);
    const half = Math.floor(plain.length / 2);
    const chunks = [plain.subarray(0, half), plain.subarray(half)].map((part) => Buffer.from(snappyjs.compress(part)));
    const header = Buffer.from('82534e415050590000000001000000010', 'hex').subarray(0, 16);
    const framed = Buffer.concat([header, ...chunks.flatMap((chunk) => [int32(chunk.length), chunk])]);
    assert.deepStrictEqual(decodeRecordBatch(withPayload(CompressionType.snappy, framed)).records, records);
    // A block built by hand from the format: varint length 5, a literal tag (len-1 << 2), "hello".
    assert.equal(codecFor(CompressionType.snappy, DEFAULT_CODECS).decompress(Buffer.from([5, 4 << 2, ...Buffer.from('hello')]), 100).toString(), 'hello');
  });

  test('zstd: a batch compressed by the reference zstd (level 3 and 19) inflates; compressing zstd is refused typed', () => {
    for (const level of [3, 19]) {
      const batch = withPayload(CompressionType.zstd, Buffer.from(zstd.compress(plain, level)));
      assert.deepStrictEqual(decodeRecordBatch(batch).records, records);
    }
    assert.throws(() => encodeRecordBatch(fields(CompressionType.zstd)), typed);
  });

  test('bombs stop at the limit: 4 MiB of zeros against a 64 KiB cap, for each codec', () => {
    const zeros = Buffer.alloc(4 * 1024 * 1024);
    const payloads: Array<[number, Buffer]> = [
      [CompressionType.snappy, Buffer.from(snappyjs.compress(zeros))],
      [CompressionType.lz4, codecFor(CompressionType.lz4, DEFAULT_CODECS).compress(zeros)],
      [CompressionType.zstd, Buffer.from(zstd.compress(zeros, 3))],
    ];
    for (const [codec, payload] of payloads) {
      assert.ok(payload.length < 300 * 1024, `codec ${codec}: ${payload.length} bytes`);
      assert.throws(() => decodeRecordBatch(withPayload(codec, payload, 1), { maxUncompressedBytes: 64 * 1024 }), typed, `codec ${codec}`);
      // Within the cap the same payload inflates (the cap, not the payload, refused it).
      assert.equal(codecFor(codec, DEFAULT_CODECS).decompress(payload, zeros.length).length, zeros.length);
    }
  });

  test('a zstd frame that declares a 2 GiB window, or an lz4 block that claims a longer match than its block maximum, is refused before decoding', () => {
    // Frame header: magic, descriptor 0 (no single segment, no checksum), window byte 0xf8 (2^41: 2 TiB), one empty last raw block.
    const huge = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xf8, 0x01, 0x00, 0x00]);
    assert.throws(() => codecFor(CompressionType.zstd, DEFAULT_CODECS).decompress(huge, 1024), /window/);
    // Single segment, 4-byte content size 0x7fffffff.
    const declared = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0xff, 0xff, 0xff, 0x7f, 0x01, 0x00, 0x00]);
    assert.throws(() => codecFor(CompressionType.zstd, DEFAULT_CODECS).decompress(declared, 1024), /window/);
    // LZ4 frame (64 KiB blocks) with one block: a literal "a" then a match of 15 + 255*300 bytes at offset 1.
    const block = Buffer.concat([Buffer.from([0x1f, 0x61, 0x01, 0x00]), Buffer.alloc(300, 0xff), Buffer.from([0x00, 0x00])]);
    const frame = Buffer.concat([Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x40, 0x40, 0xc0]), uint32le(block.length), block, uint32le(0)]);
    assert.throws(() => codecFor(CompressionType.lz4, DEFAULT_CODECS).decompress(frame, 10 * 1024 * 1024), /maximum/);
  });

  test('corrupt or cut payloads fail typed', () => {
    const cases: Array<[number, Buffer]> = [
      [CompressionType.snappy, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
      [CompressionType.snappy, Buffer.concat([Buffer.from('82534e41505059000000000100000001', 'hex'), int32(1000), Buffer.alloc(10)])],
      [CompressionType.lz4, Buffer.from('not an lz4 frame')],
      [CompressionType.lz4, codecFor(CompressionType.lz4, DEFAULT_CODECS).compress(plain).subarray(0, 40)],
      [CompressionType.zstd, Buffer.from('not a zstd frame')],
      [CompressionType.zstd, Buffer.from(zstd.compress(plain, 3)).subarray(0, 30)],
    ];
    for (const [codec, payload] of cases) {
      assert.throws(() => codecFor(codec, DEFAULT_CODECS).decompress(payload, 1024 * 1024), typed, `codec ${codec}: ${payload.toString('hex').slice(0, 40)}`);
    }
    // A zstd payload whose bytes were flipped mid-stream: typed, whatever fzstd says.
    const flipped = Buffer.from(zstd.compress(plain, 3));
    for (let i = 12; i < flipped.length; i += 7) flipped[i] = flipped[i]! ^ 0x5a;
    try {
      const out = codecFor(CompressionType.zstd, DEFAULT_CODECS).decompress(flipped, 1024 * 1024);
      assert.ok(out.length <= 1024 * 1024);
    } catch (error) {
      assert.ok(typed(error), String(error));
    }
  });
});

function int32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value);
  return buffer;
}

function uint32le(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32LE(value);
  return buffer;
}
