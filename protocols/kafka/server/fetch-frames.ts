// Fetch's fast path: a Kafka record batch v2 written straight from one stored journal batch
// (journal/segment/batch-format.ts), with no object per record: the journal record's fields are
// read where they lie and written as Kafka's varint record into one output buffer, values
// copied once. One journal batch becomes one Kafka batch (one Produce request was one append,
// so consumers get the batches producers sent).
//
// A CRC-32C over every byte sent would be a fetch's costliest step where the CPU's CRC
// instruction is not at hand (crc32c.ts's JavaScript fallback runs at about 1 GB/s), so Produce
// works it out once: the producer's own CRC when the bytes a fetch will send are the producer's
// (framedAsSent), else the CRC of the batch framed as a fetch will frame it (encodeBatch, then
// this framer). It is stored in the first record's `kafka.crc` header (u32 CRC, u32 record
// count). A fetch uses it only when it frames that whole batch with every offset present
// (compaction or a fetch from the middle changes the bytes, and then the CRC is computed). The
// framing depends only on the stored records, so the stored CRC is the CRC of the bytes sent;
// fetch-frames.test.ts checks both against the general encoder (encodeRecordBatch).
//
// A batch with anything the fast path does not map the way fromJournalRecord (records.ts) does
// (a record that is not a Kafka envelope, an envelope header other than `v`, `subj`, `kafka.h`,
// `kafka.crc`, `prod`, `sl-writer`, a malformed Kafka header list) is NOT_FRAMED: the caller
// uses the general path, which reports what is wrong. `sl-writer` is the journal's writer stamp
// of an idempotent append to a replicated shard (journal/replica/writer-header.ts): the general
// path never shows it to a consumer (fromJournalRecord reads only the envelope's headers and
// `kafka.h`), so the fast path leaves it out too, and the batch's frame, hence the CRC Produce
// stored, is the same with or without it. Pure: no I/O.
import { isUtf8 } from 'node:buffer';
import { BATCH_HEADER_BYTES, decodeBatchRecords, encodeBatch, isControlBatch, readBatchHeader, WRITER_HEADER, type RecordInput } from '../../../journal/index.js';
import { crc32c, encodeRecordBatch, type DecodedBatch } from '../codec/index.js';
import { fromJournalRecord, type StoredKafkaRecord } from './records.js';

/** The journal header holding the Kafka CRC of the batch a Produce appended (on its first record). */
export const KAFKA_CRC_HEADER = 'kafka.crc';
/** Kafka's batch header: baseOffset through recordCount. */
const KAFKA_BATCH_HEADER_BYTES = 61;
const CRC_AT = 17;
const ATTRIBUTES_AT = 21;
/** The most a Kafka record may take beyond its key, value and Kafka headers: length, attributes, timestamp, offset, key and value lengths, header count. */
const KAFKA_RECORD_FIXED_MAX = 5 + 1 + 10 + 5 + 5 + 5 + 5;
/** Timestamp deltas past this would need a varlong beyond a double's exact integers: the general path takes them. */
const MAX_TIMESTAMP_DELTA = 2 ** 51;
const TWO_POW_32 = 2 ** 32;

export const NOT_FRAMED = -1;

const NAME_V = Buffer.from('v');
const NAME_SUBJECT = Buffer.from('subj');
const NAME_KAFKA_HEADERS = Buffer.from('kafka.h');
const NAME_KAFKA_CRC = Buffer.from(KAFKA_CRC_HEADER);
const NAME_PRODUCER = Buffer.from('prod');
const NAME_WRITER = Buffer.from(WRITER_HEADER);

export interface FramedBatch {
  /** Where the Kafka batch ends in `out`; NOT_FRAMED: use the general path; `at` itself: no record in range. */
  end: number;
  /** The offset of the last record framed (-1 when none). */
  lastOffset: number;
}

/**
 * The `records` of one partition of a Fetch: the stored batches (readBatches) from `from`, below
 * `end` (the high watermark), one Kafka batch per journal batch, whole batches up to `maxBytes`
 * (the first one even past it when `atLeastOne`: a consumer must be able to make progress).
 * undefined when no Kafka record is in range.
 */
export function framePartition(batches: readonly Buffer[], from: number, end: number, maxBytes: number, atLeastOne: boolean): { records: Buffer; lastOffset: number } | undefined {
  let bound = 0;
  for (const batch of batches) bound += framedBytesBound(batch.length, readBatchHeader(batch, 0).recordCount);
  const out = Buffer.allocUnsafe(bound);
  const parts: Buffer[] = [];
  let runStart = 0;
  let at = 0;
  let total = 0;
  let lastOffset = -1;
  for (const batch of batches) {
    // A journal control batch (replication's epoch start) is no Kafka record: its offset is a
    // gap, as after compaction, which consumers step over.
    if (isControlBatch(readBatchHeader(batch, 0))) continue;
    let framed = frameJournalBatch(batch, from, end, out, at);
    let general: Buffer | undefined;
    if (framed.end === NOT_FRAMED) {
      const encoded = encodeGeneral(batch, from, end);
      if (encoded !== undefined) {
        general = encoded.bytes;
        framed = { end: at + general.length, lastOffset: encoded.lastOffset };
      } else framed = { end: at, lastOffset: -1 };
    }
    const size = framed.end - at;
    if (size === 0) continue;
    if (total + size > maxBytes && !(atLeastOne && total === 0)) break;
    total += size;
    lastOffset = framed.lastOffset;
    if (general === undefined) {
      at = framed.end;
      continue;
    }
    if (at > runStart) parts.push(out.subarray(runStart, at));
    parts.push(general);
    runStart = at;
  }
  if (at > runStart) parts.push(out.subarray(runStart, at));
  if (parts.length === 0) return undefined;
  return { records: parts.length === 1 ? parts[0]! : Buffer.concat(parts), lastOffset };
}

/** The general path for one journal batch: records decoded as Kafka records (records.ts), encoded by the codec. */
function encodeGeneral(batch: Buffer, from: number, end: number): { bytes: Buffer; lastOffset: number } | undefined {
  const records: StoredKafkaRecord[] = [];
  for (const record of decodeBatchRecords(batch, 0, readBatchHeader(batch, 0))) {
    if (record.offset < from || record.offset >= end) continue;
    const kafka = fromJournalRecord(record);
    if (kafka !== undefined) records.push(kafka);
  }
  if (records.length === 0) return undefined;
  return { bytes: encodeStoredRecords(records), lastOffset: records[records.length - 1]!.offset };
}

/** Records as one uncompressed record batch v2 with offsets = shard offsets: what every Fetch sends. */
export function encodeStoredRecords(records: readonly StoredKafkaRecord[]): Buffer {
  const first = records[0]!;
  const last = records[records.length - 1]!;
  const base = BigInt(first.timestamp);
  return encodeRecordBatch({
    baseOffset: BigInt(first.offset),
    partitionLeaderEpoch: 0,
    attributes: 0,
    lastOffsetDelta: last.offset - first.offset,
    baseTimestamp: base,
    maxTimestamp: records.reduce((max, record) => (BigInt(record.timestamp) > max ? BigInt(record.timestamp) : max), base),
    producerId: -1n,
    producerEpoch: -1,
    baseSequence: -1,
    records: records.map((record) => ({ attributes: 0, timestampDelta: BigInt(record.timestamp) - base, offsetDelta: record.offset - first.offset, key: record.key, value: record.value, headers: record.headers })),
  });
}

/** An upper bound of the Kafka bytes of a journal batch of `batchBytes` holding `records` records. */
export function framedBytesBound(batchBytes: number, records: number): number {
  return KAFKA_BATCH_HEADER_BYTES + batchBytes + records * KAFKA_RECORD_FIXED_MAX;
}

/**
 * Writes the records of the verified journal batch `batch` with offsets in [from, end) as one
 * Kafka record batch into `out` at `at`. `withCrc` false leaves the CRC field unset (Produce
 * may not need it).
 */
export function frameJournalBatch(batch: Buffer, from: number, end: number, out: Buffer, at: number, withCrc = true): FramedBatch {
  const header = readBatchHeader(batch, 0);
  const limit = Math.min(batch.length, header.batchBytes);
  let cursor = BATCH_HEADER_BYTES;
  let w = at + KAFKA_BATCH_HEADER_BYTES;
  let firstOffset = -1;
  let lastOffset = -1;
  let baseTimestamp = 0;
  let maxTimestamp = 0;
  let count = 0;
  let storedCrc = -1;
  for (let index = 0; index < header.recordCount; index += 1) {
    if (cursor + 4 > limit) return notFramed();
    const recordEnd = cursor + 4 + batch.readUInt32LE(cursor);
    if (recordEnd > limit || recordEnd < cursor + 26) return notFramed();
    const offset = header.baseOffset + batch.readUInt32LE(cursor + 4);
    if (offset >= end) break;
    const next = cursor;
    cursor = recordEnd;
    if (offset < from) continue;
    const timestamp = batch.readUInt32LE(next + 8) + batch.readUInt32LE(next + 12) * TWO_POW_32;
    let p = next + 16;
    const keyLength = batch.readInt32LE(p);
    if (keyLength < 0) return notFramed(); // not an envelope: the general path skips it
    const keyAt = p + 4;
    p = keyAt + keyLength;
    if (p + 4 > recordEnd) return notFramed();
    const valueLength = batch.readInt32LE(p);
    if (valueLength < -1) return notFramed();
    const valueAt = p + 4;
    p = valueAt + Math.max(valueLength, 0);
    if (p + 2 > recordEnd) return notFramed();
    const headerCount = batch.readUInt16LE(p);
    p += 2;
    let hasSubject = false;
    let kafkaHeadersAt = -1;
    let kafkaHeadersEnd = -1;
    for (let h = 0; h < headerCount; h += 1) {
      if (p + 2 > recordEnd) return notFramed();
      const nameLength = batch.readUInt16LE(p);
      const nameAt = p + 2;
      if (nameAt + nameLength + 4 > recordEnd) return notFramed();
      const valueBytes = batch.readUInt32LE(nameAt + nameLength);
      const headerValueAt = nameAt + nameLength + 4;
      p = headerValueAt + valueBytes;
      if (p > recordEnd) return notFramed();
      if (nameIs(batch, nameAt, nameLength, NAME_V)) {
        if (valueBytes !== 1 || batch[headerValueAt] !== 1) return notFramed();
      } else if (nameIs(batch, nameAt, nameLength, NAME_SUBJECT)) {
        hasSubject = true;
      } else if (nameIs(batch, nameAt, nameLength, NAME_KAFKA_HEADERS)) {
        if (kafkaHeadersAt < 0) {
          kafkaHeadersAt = headerValueAt;
          kafkaHeadersEnd = p;
        }
      } else if (nameIs(batch, nameAt, nameLength, NAME_KAFKA_CRC)) {
        if (index === 0 && valueBytes === 8 && batch.readUInt32BE(headerValueAt + 4) === header.recordCount) storedCrc = batch.readUInt32BE(headerValueAt);
      } else if (nameIs(batch, nameAt, nameLength, NAME_PRODUCER)) {
        // decodeEnvelope refuses a malformed one; so does the general path.
        if (valueBytes !== 12 || batch.readUInt32BE(headerValueAt) >= 2 ** 21) return notFramed();
      } else if (nameIs(batch, nameAt, nameLength, NAME_WRITER)) {
        // The journal's, not the producer's: no Kafka header (see the top of this file).
      } else {
        return notFramed();
      }
    }
    if (p !== recordEnd) return notFramed();
    if (firstOffset < 0) {
      firstOffset = offset;
      baseTimestamp = timestamp;
      maxTimestamp = timestamp;
    } else if (timestamp > maxTimestamp) maxTimestamp = timestamp;
    const timestampDelta = timestamp - baseTimestamp;
    const offsetDelta = offset - firstOffset;
    if (Math.abs(timestampDelta) > MAX_TIMESTAMP_DELTA || offsetDelta > 0x3fffffff) return notFramed();
    // The Kafka record's body length, known before it is written (its varint comes first).
    let headersLength = 0;
    let kafkaHeaderCount = 0;
    if (kafkaHeadersAt >= 0) {
      const sized = kafkaHeadersSize(batch, kafkaHeadersAt, kafkaHeadersEnd);
      if (sized < 0) return notFramed();
      kafkaHeaderCount = batch.readUInt32BE(kafkaHeadersAt);
      headersLength = sized;
    }
    const key = hasSubject ? keyLength : -1;
    const bodyLength = 1 + varlongSize(timestampDelta) + varintSize(offsetDelta) + varintSize(key) + Math.max(key, 0) + varintSize(valueLength) + Math.max(valueLength, 0) + varintSize(kafkaHeaderCount) + headersLength;
    if (w + varintSize(bodyLength) + bodyLength > out.length) return notFramed();
    w = writeVarint(out, w, bodyLength);
    out[w++] = 0;
    w = writeVarlong(out, w, timestampDelta);
    w = writeVarint(out, w, offsetDelta);
    w = writeVarint(out, w, key);
    if (key > 0) w += batch.copy(out, w, keyAt, keyAt + key);
    w = writeVarint(out, w, valueLength);
    if (valueLength > 0) w += batch.copy(out, w, valueAt, valueAt + valueLength);
    w = writeVarint(out, w, kafkaHeaderCount);
    if (kafkaHeaderCount > 0) w = writeKafkaHeaders(batch, kafkaHeadersAt, kafkaHeaderCount, out, w);
    lastOffset = offset;
    count += 1;
  }
  if (count === 0) return { end: at, lastOffset: -1 };
  out.writeUInt32BE(Math.floor(firstOffset / TWO_POW_32), at);
  out.writeUInt32BE(firstOffset % TWO_POW_32, at + 4);
  out.writeInt32BE(w - at - 12, at + 8);
  out.writeInt32BE(0, at + 12); // partitionLeaderEpoch
  out[at + 16] = 2; // magic
  out.writeInt16BE(0, at + ATTRIBUTES_AT);
  out.writeInt32BE(lastOffset - firstOffset, at + 23);
  out.writeUInt32BE(Math.floor(baseTimestamp / TWO_POW_32), at + 27);
  out.writeUInt32BE(baseTimestamp % TWO_POW_32, at + 31);
  out.writeUInt32BE(Math.floor(maxTimestamp / TWO_POW_32), at + 35);
  out.writeUInt32BE(maxTimestamp % TWO_POW_32, at + 39);
  out.fill(0xff, at + 43, at + 57); // producerId -1, producerEpoch -1, baseSequence -1
  out.writeInt32BE(count, at + 57);
  // The stored CRC covers exactly these bytes only when the whole stored batch, gapless, was framed.
  const whole = firstOffset === header.baseOffset && count === header.recordCount && header.lastOffsetDelta === header.recordCount - 1;
  if (withCrc) out.writeUInt32BE(whole && storedCrc >= 0 ? storedCrc : crc32c(out, at + ATTRIBUTES_AT, w), at + CRC_AT);
  return { end: w, lastOffset };
}

/**
 * The Kafka frame Produce's records will have when fetched (baseOffset 0) and its CRC, as a
 * fetch frames them: the records go through the journal's batch encoder first, so the bytes are
 * the ones a fetch reads. `producerBatch` is the batch the producer sent (CRC already checked):
 * when the frame is byte for byte the same from the attributes on, its CRC is taken as is.
 * undefined when the fast path would not frame these records (the fetch computes the CRC then).
 */
export function produceCrc(inputs: readonly RecordInput[], producerBatch: DecodedBatch): number | undefined {
  if (framedAsSent(inputs, producerBatch)) return producerBatch.crc;
  const stored = encodeBatch(inputs.map((input, index) => ({ offsetDelta: index, timestamp: input.timestamp ?? 0, key: input.key ?? null, value: input.value, headers: input.headers ?? [] })));
  stored.fill(0, 20, 32); // leader epoch and base offset, set only when the journal writes it
  const out = Buffer.allocUnsafe(framedBytesBound(stored.length, inputs.length));
  const framed = frameJournalBatch(stored, 0, Number.MAX_SAFE_INTEGER, out, 0, false);
  if (framed.end === NOT_FRAMED || framed.end === 0) return undefined;
  const frame = out.subarray(0, framed.end);
  const same = frame.length === producerBatch.bytes.length && frame.subarray(ATTRIBUTES_AT).equals(producerBatch.bytes.subarray(ATTRIBUTES_AT));
  return same ? producerBatch.crc : crc32c(frame, ATTRIBUTES_AT);
}

/**
 * Whether a fetch frames `inputs` (what Produce stores of `sent`) as exactly the bytes the
 * producer sent, from the attributes on, without framing them: the same header fields (no
 * compression, no producer id, the first record's timestamp as the base, the true maximum),
 * records numbered 0.., each timestamp kept, and the same length. The decoded fields being
 * equal, the same total length means the producer wrote every varint as short as a fetch does.
 * A header name that was not UTF-8 decodes to U+FFFD and encodes back to other bytes, possibly
 * as many: such a batch is framed the long way.
 */
function framedAsSent(inputs: readonly RecordInput[], sent: DecodedBatch): boolean {
  const records = sent.records;
  if (sent.attributes !== 0 || sent.producerId !== -1n || sent.producerEpoch !== -1 || sent.baseSequence !== -1) return false;
  if (records.length === 0 || records.length !== inputs.length || sent.lastOffsetDelta !== records.length - 1) return false;
  const sentBase = Number(sent.baseTimestamp);
  const base = inputs[0]!.timestamp;
  if (base !== sentBase) return false;
  let maxTimestamp = base;
  let size = KAFKA_BATCH_HEADER_BYTES;
  for (let i = 0; i < records.length; i += 1) {
    const record = records[i]!;
    const timestamp = inputs[i]!.timestamp;
    if (timestamp === undefined || record.attributes !== 0 || record.offsetDelta !== i || timestamp !== sentBase + Number(record.timestampDelta)) return false;
    if (timestamp > maxTimestamp) maxTimestamp = timestamp;
    let body = 1 + varlongSize(timestamp - base) + varintSize(i) + nullableSize(record.key) + nullableSize(record.value) + varintSize(record.headers.length);
    for (const header of record.headers) {
      if (header.key.includes('\uFFFD')) return false;
      const nameBytes = Buffer.byteLength(header.key);
      body += varintSize(nameBytes) + nameBytes + nullableSize(header.value);
    }
    size += varintSize(body) + body;
  }
  return maxTimestamp === Number(sent.maxTimestamp) && size === sent.bytes.length;
}

function nullableSize(bytes: Buffer | null): number {
  return bytes === null ? 1 : varintSize(bytes.length) + bytes.length;
}

/** The `kafka.crc` header value: CRC and the record count it covers. */
export function crcHeaderValue(crc: number, records: number): Buffer {
  const value = Buffer.allocUnsafe(8);
  value.writeUInt32BE(crc, 0);
  value.writeUInt32BE(records, 4);
  return value;
}

function notFramed(): FramedBatch {
  return { end: NOT_FRAMED, lastOffset: -1 };
}

function nameIs(bytes: Buffer, at: number, length: number, name: Buffer): boolean {
  if (length !== name.length) return false;
  for (let i = 0; i < length; i += 1) if (bytes[at + i] !== name[i]) return false;
  return true;
}

/**
 * Bytes the Kafka headers of a `kafka.h` value take as Kafka writes them (after the count);
 * -1 when the value is malformed (the general path then reports it) or a name is not UTF-8.
 * Layout (records.ts): u32 count; per header u32 name length, name, i32 value length or -1, value.
 */
function kafkaHeadersSize(bytes: Buffer, at: number, end: number): number {
  if (at + 4 > end) return -1;
  const count = bytes.readUInt32BE(at);
  let p = at + 4;
  let size = 0;
  for (let i = 0; i < count; i += 1) {
    if (p + 4 > end) return -1;
    const nameLength = bytes.readUInt32BE(p);
    p += 4;
    if (p + nameLength + 4 > end || nameLength > 0x3fffffff) return -1;
    // The general path decodes the name as UTF-8 and encodes it again: equal bytes only when valid.
    if (!isUtf8(bytes.subarray(p, p + nameLength))) return -1;
    p += nameLength;
    const valueLength = bytes.readInt32BE(p);
    p += 4;
    if (valueLength < -1 || p + Math.max(valueLength, 0) > end) return -1;
    p += Math.max(valueLength, 0);
    size += varintSize(nameLength) + nameLength + varintSize(valueLength) + Math.max(valueLength, 0);
  }
  return count > 0x3fffffff ? -1 : size;
}

function writeKafkaHeaders(bytes: Buffer, at: number, count: number, out: Buffer, start: number): number {
  let w = start;
  let p = at + 4;
  for (let i = 0; i < count; i += 1) {
    const nameLength = bytes.readUInt32BE(p);
    p += 4;
    w = writeVarint(out, w, nameLength);
    w += bytes.copy(out, w, p, p + nameLength);
    p += nameLength;
    const valueLength = bytes.readInt32BE(p);
    p += 4;
    w = writeVarint(out, w, valueLength);
    if (valueLength > 0) {
      w += bytes.copy(out, w, p, p + valueLength);
      p += valueLength;
    }
  }
  return w;
}

/** Size of a zigzag varint of a 32-bit value. */
function varintSize(value: number): number {
  return unsignedSize(value >= 0 ? value * 2 : -value * 2 - 1);
}

function varlongSize(value: number): number {
  return unsignedSize(value >= 0 ? value * 2 : -value * 2 - 1);
}

function unsignedSize(value: number): number {
  let size = 1;
  let rest = value;
  while (rest >= 0x80) {
    rest = Math.floor(rest / 0x80);
    size += 1;
  }
  return size;
}

function writeVarint(out: Buffer, at: number, value: number): number {
  return writeUnsigned(out, at, value >= 0 ? value * 2 : -value * 2 - 1);
}

function writeVarlong(out: Buffer, at: number, value: number): number {
  return writeUnsigned(out, at, value >= 0 ? value * 2 : -value * 2 - 1);
}

function writeUnsigned(out: Buffer, at: number, value: number): number {
  let w = at;
  let rest = value;
  while (rest >= 0x80) {
    out[w++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  out[w++] = rest;
  return w;
}
