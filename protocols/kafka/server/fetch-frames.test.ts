// The fast fetch path (fetch-frames.ts) against the general one (records decoded, then the
// codec's encodeRecordBatch, as Fetch did before): the same bytes for any records, with the CRC
// Produce stored or one computed, from any fetch offset, across compaction gaps and size limits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CONTROL_BATCH_ATTRIBUTE, decodeBatchRecords, encodeBatch, readBatchHeader, sealBatch, WRITER_HEADER, type RecordInput } from '../../../journal/index.js';
import { crc32c, decodeRecordBatch, decodeRecordBatches, encodeRecordBatch, type DecodedBatch, type KafkaRecord } from '../codec/index.js';
import { crcHeaderValue, encodeStoredRecords, frameJournalBatch, framePartition, KAFKA_CRC_HEADER, NOT_FRAMED, produceCrc } from './fetch-frames.js';
import { fromJournalRecord, toRecordInput } from './records.js';
import { replay } from '../../../tests/support/fast-check.js';

fc.configureGlobal({ includeErrorInReport: true });

const TOPIC = 'orders';
const NOW = 1_800_000_000_000;

/** A producer's batch as it arrives (CRC checked by the decoder), with the journal inputs Produce makes of it and their CRC header. */
function produced(records: KafkaRecord[], options: { baseTimestamp?: number; logAppendTime?: boolean; maxTimestampOff?: number } = {}): { sent: DecodedBatch; inputs: RecordInput[] } {
  const baseTimestamp = BigInt(options.baseTimestamp ?? NOW);
  const maxTimestamp = BigInt(options.maxTimestampOff ?? 0) + records.reduce((max, r) => (baseTimestamp + r.timestampDelta > max ? baseTimestamp + r.timestampDelta : max), baseTimestamp);
  const bytes = encodeRecordBatch({ baseOffset: 0n, partitionLeaderEpoch: -1, attributes: options.logAppendTime === true ? 0x08 : 0, lastOffsetDelta: records.length - 1, baseTimestamp, maxTimestamp, producerId: -1n, producerEpoch: -1, baseSequence: -1, records });
  const sent = decodeRecordBatch(bytes);
  // As the service does: LogAppendTime, or a negative timestamp, is the time of the append.
  const inputs = sent.records.map((record) => {
    const timestamp = Number(sent.baseTimestamp + record.timestampDelta);
    return toRecordInput(TOPIC, record, options.logAppendTime === true || timestamp < 0 ? NOW + 5 : timestamp);
  });
  const crc = produceCrc(inputs, sent);
  if (crc !== undefined) inputs[0] = { ...inputs[0]!, headers: [...(inputs[0]!.headers ?? []), { key: KAFKA_CRC_HEADER, value: crcHeaderValue(crc, inputs.length) }] };
  return { sent, inputs };
}

/** A producer's batch whose first record's first header name is replaced by `name` (same length), CRC made anew. */
function withRawHeaderName(records: KafkaRecord[], from: string, name: Buffer): DecodedBatch {
  const bytes = encodeRecordBatch({ baseOffset: 0n, partitionLeaderEpoch: -1, attributes: 0, lastOffsetDelta: records.length - 1, baseTimestamp: BigInt(NOW), maxTimestamp: BigInt(NOW) + BigInt(records.length - 1), producerId: -1n, producerEpoch: -1, baseSequence: -1, records });
  const at = bytes.indexOf(from);
  name.copy(bytes, at);
  bytes.writeUInt32BE(crc32c(bytes, 21), 17);
  return decodeRecordBatch(bytes);
}

/** The journal batch as stored at `baseOffset`; `keep` drops records as compaction does (offsets kept). */
function stored(inputs: readonly RecordInput[], baseOffset: number, keep: (index: number) => boolean = () => true): Buffer {
  const records = inputs.map((input, index) => ({ offsetDelta: index, timestamp: input.timestamp ?? 0, key: input.key ?? null, value: input.value, headers: input.headers ?? [] })).filter((_, index) => keep(index));
  const batch = encodeBatch(records);
  sealBatch(batch, baseOffset, 0);
  return batch;
}

/** What the general path sends for one stored batch from `from`: decoded records, encoded by the codec. */
function general(batch: Buffer, from: number, end = Number.MAX_SAFE_INTEGER): Buffer | undefined {
  const records = decodeBatchRecords(batch, 0, readBatchHeader(batch, 0)).filter((record) => record.offset >= from && record.offset < end).map(fromJournalRecord).filter((record) => record !== undefined);
  return records.length === 0 ? undefined : encodeStoredRecords(records);
}

function fast(batch: Buffer, from: number, end = Number.MAX_SAFE_INTEGER): Buffer | undefined {
  return framePartition([batch], from, end, Number.MAX_SAFE_INTEGER, true)?.records;
}

const record = (i: number, overrides: Partial<KafkaRecord> = {}): KafkaRecord => ({ attributes: 0, timestampDelta: BigInt(i), offsetDelta: i, key: Buffer.from(`k${i}`), value: Buffer.alloc(40, i), headers: [], ...overrides });

test('a produced batch fetched whole: the bytes the producer sent, its CRC taken from Produce', () => {
  const records = [record(0), record(1, { key: null }), record(2, { value: null, headers: [{ key: 'trace', value: Buffer.from('x') }, { key: 'empty', value: null }] })];
  const { sent, inputs } = produced(records);
  // Same bytes as sent from the attributes on (base offset and epoch are the broker's).
  const crcHeader = inputs[0]!.headers!.find((header) => header.key === KAFKA_CRC_HEADER)!;
  assert.equal(crcHeader.value.readUInt32BE(0), sent.crc, 'the producer CRC is reused');
  const batch = stored(inputs, 500);
  const frame = fast(batch, 500)!;
  assert.deepEqual(frame.subarray(21), sent.bytes.subarray(21));
  assert.deepEqual(frame, general(batch, 500));
  assert.equal(decodeRecordBatch(frame).baseOffset, 500n);
});

test('the stored CRC is what a whole-batch fetch sends; a fetch from the middle computes its own', () => {
  const { inputs } = produced([record(0), record(1), record(2)]);
  // A wrong stored CRC shows which one goes out (a real one is never wrong: the journal checksums it).
  const tampered = inputs.map((input, index) => (index === 0 ? { ...input, headers: input.headers!.map((header) => (header.key === KAFKA_CRC_HEADER ? { key: header.key, value: crcHeaderValue(0xdeadbeef, 3) } : header)) } : input));
  const whole = fast(stored(tampered, 0), 0)!;
  assert.equal(whole.readUInt32BE(17), 0xdeadbeef, 'whole batch: the stored CRC, not recomputed');
  const middle = fast(stored(tampered, 0), 1)!;
  assert.deepEqual(middle, general(stored(tampered, 0), 1));
  assert.equal(decodeRecordBatch(middle).records.length, 2, 'its CRC verifies');
  // A count that is not the batch's (records merged or dropped) is not trusted either.
  const miscounted = inputs.map((input, index) => (index === 0 ? { ...input, headers: input.headers!.map((header) => (header.key === KAFKA_CRC_HEADER ? { key: header.key, value: crcHeaderValue(0xdeadbeef, 4) } : header)) } : input));
  assert.deepEqual(fast(stored(miscounted, 0), 0), general(stored(miscounted, 0), 0));
});

test('a header name that is not UTF-8 comes back as other bytes of the same length: Produce computes the CRC', () => {
  const sent = withRawHeaderName([record(0, { headers: [{ key: 'abc', value: null }] }), record(1)], 'abc', Buffer.from([0xf0, 0x9f, 0x98]));
  assert.equal(sent.records[0]!.headers[0]!.key, '\uFFFD');
  const inputs = sent.records.map((r) => toRecordInput(TOPIC, r, NOW + Number(r.timestampDelta)));
  const crc = produceCrc(inputs, sent)!;
  assert.notEqual(crc, sent.crc);
  inputs[0] = { ...inputs[0]!, headers: [...inputs[0]!.headers!, { key: KAFKA_CRC_HEADER, value: crcHeaderValue(crc, 2) }] };
  const frame = fast(stored(inputs, 0), 0)!;
  assert.equal(frame.readUInt32BE(17), crc);
  assert.deepEqual(frame, general(stored(inputs, 0), 0));
  assert.equal(decodeRecordBatch(frame).records[0]!.headers[0]!.key, '\uFFFD');
});

test('a LogAppendTime batch: Produce computes the CRC of what it stores', () => {
  const { sent, inputs } = produced([record(0), record(1)], { logAppendTime: true });
  const crc = inputs[0]!.headers!.find((header) => header.key === KAFKA_CRC_HEADER)!.value.readUInt32BE(0);
  assert.notEqual(crc, sent.crc);
  const frame = fast(stored(inputs, 7), 7)!;
  assert.equal(frame.readUInt32BE(17), crc);
  assert.deepEqual(frame, general(stored(inputs, 7), 7));
});

test('a batch stamped by an idempotent append to a replicated shard: the fast path frames the bytes the producer sent, without the stamp', () => {
  const { sent, inputs } = produced([record(0, { headers: [{ key: 'trace', value: Buffer.from('t') }] }), record(1)]);
  // As PlacedShardStore's writer stamps it (journal/replica/writer-header.ts): a 12-byte header on the first record, after Produce's.
  const stamp = { key: WRITER_HEADER, value: Buffer.from([0, 0x10, 0, 0, 0, 0, 0x30, 0x39, 0, 0, 0, 7]) };
  const stamped = inputs.map((input, index) => (index === 0 ? { ...input, headers: [...input.headers!, stamp] } : input));
  const batch = stored(stamped, 40);
  assert.notEqual(frameJournalBatch(batch, 40, 100, Buffer.alloc(4096), 0).end, NOT_FRAMED, 'the fast path takes it');
  const frame = fast(batch, 40)!;
  assert.deepEqual(frame.subarray(21), sent.bytes.subarray(21), "the producer's bytes, its CRC reused");
  assert.deepEqual(frame, general(batch, 40));
  assert.deepEqual(frame, fast(stored(inputs, 40), 40), 'the same frame as the batch without the stamp');
  const fetched = decodeRecordBatch(frame);
  assert.deepEqual(fetched.records.map((r) => r.headers.map((header) => header.key)), [['trace'], []]);
  // From the middle (no stored CRC), and the stamp on a later record: still the general bytes.
  assert.deepEqual(fast(batch, 41), general(batch, 41));
  const late = stored(inputs.map((input, index) => (index === 1 ? { ...input, headers: [...input.headers!, stamp] } : input)), 0);
  assert.deepEqual(fast(late, 0), general(late, 0));
});

test('records the fast path does not map go the general way: not an envelope, another protocol\'s headers', () => {
  const { inputs } = produced([record(0), record(1)]);
  const withMqtt = inputs.map((input, index) => (index === 1 ? { ...input, headers: [...input.headers!, { key: 'mqtt', value: Buffer.from([1]) }] } : input));
  const batch = stored(withMqtt, 0);
  assert.equal(frameJournalBatch(batch, 0, 100, Buffer.alloc(4096), 0).end, NOT_FRAMED);
  assert.deepEqual(fast(batch, 0), general(batch, 0));
  const notEnvelope = stored([...inputs, { key: null, value: Buffer.from('raw'), timestamp: NOW }], 0);
  assert.equal(frameJournalBatch(notEnvelope, 0, 100, Buffer.alloc(4096), 0).end, NOT_FRAMED);
  assert.deepEqual(fast(notEnvelope, 0), general(notEnvelope, 0));
  assert.equal(decodeRecordBatch(fast(notEnvelope, 0)!).records.length, 2, 'the raw record is left out');
});

test('whole batches up to the byte limit, the first even past it; nothing past the high watermark', () => {
  const batches = [0, 1, 2].map((n) => stored(produced([record(0), record(1), record(2)]).inputs, n * 3));
  const one = general(batches[0]!, 0)!.length;
  assert.equal(framePartition(batches, 0, 100, 1, true)!.records.length, one, 'at least one batch');
  assert.equal(framePartition(batches, 0, 100, 1, false), undefined, 'not past the limit for a later partition');
  const two = framePartition(batches, 0, 100, 2 * one + 10, true)!;
  assert.equal(decodeRecordBatches(two.records).batches.length, 2);
  assert.equal(two.lastOffset, 5);
  const cut = framePartition(batches, 4, 7, Number.MAX_SAFE_INTEGER, true)!;
  assert.deepEqual(decodeRecordBatches(cut.records).batches.map((batch) => [batch.baseOffset, batch.records.length]), [[4n, 2], [6n, 1]]);
  assert.equal(cut.lastOffset, 6);
});

// Arbitraries: Kafka records as producers send them (keys and values null or bytes, headers
// with UTF-8 names and null values, timestamps before and after the batch's base).
const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((array) => Buffer.from(array));
const kafkaRecords = fc.array(
  fc.record({
    timestampDelta: fc.integer({ min: -100_000, max: 100_000 }),
    key: fc.option(bytes(30), { nil: null }),
    value: fc.option(bytes(300), { nil: null }),
    headers: fc.array(fc.record({ key: fc.string({ unit: 'binary', maxLength: 8 }), value: fc.option(bytes(20), { nil: null }) }), { maxLength: 3 }),
  }),
  { minLength: 1, maxLength: 25 },
).map((records) => records.map((r, i): KafkaRecord => ({ attributes: 0, timestampDelta: BigInt(r.timestampDelta), offsetDelta: i, key: r.key, value: r.value, headers: r.headers })));

test('property: the fast path sends the general encoder\'s bytes, from any offset, across compaction gaps', () => {
  fc.assert(
    fc.property(kafkaRecords, fc.nat({ max: 2 ** 40 }), fc.nat(), fc.array(fc.boolean(), { minLength: 25, maxLength: 25 }), fc.boolean(), fc.boolean(), fc.boolean(), fc.constantFrom(0, 0, 1, -1), fc.constantFrom(NOW, 50), (records, baseOffset, fromPick, dropped, compacted, logAppendTime, firstAtBase, maxTimestampOff, baseTimestamp) => {
      // A producer's first record is at the base timestamp: then the bytes may be the producer's own.
      if (firstAtBase) records[0] = { ...records[0]!, timestampDelta: 0n };
      // A base near zero makes some timestamps negative: stored as the append time.
      const { inputs } = produced(records, { logAppendTime, maxTimestampOff, baseTimestamp });
      // Compaction keeps the first record here so the batch is not empty; the others may go.
      const batch = stored(inputs, baseOffset, (index) => !compacted || index === 0 || !dropped[index]);
      const from = baseOffset + (fromPick % inputs.length);
      const expected = general(batch, from);
      const actual = fast(batch, from);
      assert.deepEqual(actual, expected);
      if (actual !== undefined) assert.ok(decodeRecordBatches(actual).batches.length === 1, 'the CRC verifies');
    }),
    { numRuns: 300, ...replay },
  );
});

test('property: several stored batches give the general frames of whole batches within the limit', () => {
  fc.assert(
    fc.property(fc.array(kafkaRecords, { minLength: 1, maxLength: 5 }), fc.nat({ max: 40_000 }), fc.boolean(), (groups, maxBytes, atLeastOne) => {
      let offset = 0;
      const batches = groups.map((records) => {
        const batch = stored(produced(records).inputs, offset);
        offset += records.length;
        return batch;
      });
      const frames = batches.map((batch) => general(batch, 0)!);
      const expected: Buffer[] = [];
      let total = 0;
      for (const frame of frames) {
        if (total + frame.length > maxBytes && !(atLeastOne && total === 0)) break;
        expected.push(frame);
        total += frame.length;
      }
      const actual = framePartition(batches, 0, offset, maxBytes, atLeastOne);
      assert.deepEqual(actual?.records, expected.length === 0 ? undefined : Buffer.concat(expected));
    }),
    { numRuns: 150, ...replay },
  );
});

test('a journal control batch (an epoch start) is left out of a fetch, its offset a gap', () => {
  const record = (value: string): KafkaRecord => ({ attributes: 0, timestampDelta: 0n, offsetDelta: 0, key: null, value: Buffer.from(value), headers: [] });
  const seal = (inputs: RecordInput[], base: number, control: boolean): Buffer => {
    const batch = encodeBatch(inputs.map((input, index) => ({ offsetDelta: index, timestamp: input.timestamp ?? NOW, key: input.key ?? null, value: input.value, headers: input.headers ?? [] })));
    // Even a control batch that holds a Kafka envelope is not a Kafka record.
    if (control) batch[17] = (batch[17] ?? 0) | CONTROL_BATCH_ATTRIBUTE;
    sealBatch(batch, base, 1);
    return batch;
  };
  const batches = [seal(produced([record('a')]).inputs, 0, false), seal(produced([record('epoch')]).inputs, 1, true), seal(produced([record('b')]).inputs, 2, false)];
  const framed = framePartition(batches, 0, 3, 1 << 20, true);
  assert.ok(framed !== undefined);
  const sent = decodeRecordBatches(framed.records).batches.flatMap((batch) => batch.records.map((r) => [Number(batch.baseOffset) + r.offsetDelta, r.value?.toString()]));
  assert.deepEqual(sent, [[0, 'a'], [2, 'b']]);
  assert.equal(framed.lastOffset, 2);
  // Only the control batch in range: nothing to send (the fetch waits for the next record).
  assert.equal(framePartition(batches.slice(1, 2), 1, 2, 1 << 20, true), undefined);
});
