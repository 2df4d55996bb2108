// Byte format of a record batch, the unit the journal writes, checksums and reads.
// Pure functions over byte arrays: no files, no clock. docs/journal-format.md mirrors this.
//
// All integers are little-endian. 64-bit offsets and timestamps are stored as u64 but kept as
// JS numbers in memory; the journal refuses values above Number.MAX_SAFE_INTEGER.
//
// Batch header (BATCH_HEADER_BYTES = 56):
//   0  u32 magic           0x424C4853 ("SHLB" read as bytes S H L B)
//   4  u32 batchBytes      whole batch, header included
//   8  u64 checksum        xxhash64 (seed 0) of bytes [16, batchBytes)
//  16  u8  formatVersion   1
//  17  u8  attributes      bit 0: control batch (replication's epoch start); other bits 0
//  18  u16 reserved        0
//  20  u32 leaderEpoch
//  24  u64 baseOffset
//  32  u32 recordCount     >= 1
//  36  u32 lastOffsetDelta offset of the last record minus baseOffset (compaction leaves gaps)
//  40  u64 firstTimestamp  ms since epoch, of the first record
//  48  u64 maxTimestamp    largest record timestamp in the batch
// Records follow, each:
//   u32 recordBytes (bytes after this field), u32 offsetDelta, u64 timestamp,
//   i32 keyLength (-1 = null key), key, i32 valueLength (-1 = null value, a tombstone), value,
//   u16 headerCount, then per header: u16 keyLength, key (UTF-8), u32 valueLength, value.
// Offset deltas strictly increase inside a batch.
import { checksum64 } from '../checksum.js';
import type { JournalRecord, RecordHeader } from '../record.js';

export const BATCH_MAGIC = 0x424c4853;
export const BATCH_FORMAT_VERSION = 1;
export const BATCH_HEADER_BYTES = 56;
/**
 * Attributes bit of a control batch: written by the journal for its own bookkeeping (a new
 * replication leader's epoch-start batch), never shown to readers of records. Segments written
 * before the bit existed hold 0 here, so they read as they always did.
 */
export const CONTROL_BATCH_ATTRIBUTE = 0x01;
const ATTRIBUTES_AT = 17;
const CHECKSUMMED_FROM = 16;
const RECORD_FIXED_BYTES = 4 + 4 + 8 + 4 + 4 + 2;
const TWO_POW_32 = 2 ** 32;

export interface BatchHeader {
  batchBytes: number;
  checksum: bigint;
  formatVersion: number;
  attributes: number;
  leaderEpoch: number;
  baseOffset: number;
  recordCount: number;
  lastOffsetDelta: number;
  firstTimestamp: number;
  maxTimestamp: number;
}

export interface BatchRecordInput {
  offsetDelta: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}

/** Whether the batch is a control batch, which record readers skip (CONTROL_BATCH_ATTRIBUTE). */
export function isControlBatch(header: Pick<BatchHeader, 'attributes'>): boolean {
  return (header.attributes & CONTROL_BATCH_ATTRIBUTE) !== 0;
}

/** Marks an encoded, not yet sealed batch as a control batch (the seal's checksum then covers the mark). */
export function markControlBatch(batch: Buffer): void {
  batch.writeUInt8(batch.readUInt8(ATTRIBUTES_AT) | CONTROL_BATCH_ATTRIBUTE, ATTRIBUTES_AT);
}

export function lastOffsetOf(header: BatchHeader): number {
  return header.baseOffset + header.lastOffsetDelta;
}

function writeU64(buffer: Buffer, value: number, position: number): void {
  buffer.writeUInt32LE(value % TWO_POW_32, position);
  buffer.writeUInt32LE(Math.floor(value / TWO_POW_32), position + 4);
}

function readU64(buffer: Buffer, position: number): number {
  return buffer.readUInt32LE(position) + buffer.readUInt32LE(position + 4) * TWO_POW_32;
}

/** Size of one record's encoding, including its length prefix. */
export function encodedRecordBytes(record: { key: Buffer | null; value: Buffer | null; headers: RecordHeader[] }): number {
  let bytes = RECORD_FIXED_BYTES + (record.key?.length ?? 0) + (record.value?.length ?? 0);
  for (const header of record.headers) bytes += 2 + Buffer.byteLength(header.key) + 4 + header.value.length;
  return bytes;
}

/**
 * Encodes records into an unsealed batch: base offset, leader epoch and checksum are left for
 * sealBatch, because the writer assigns offsets only when it writes (in log order).
 */
export function encodeBatch(records: readonly BatchRecordInput[]): Buffer {
  let batchBytes = BATCH_HEADER_BYTES;
  for (const record of records) batchBytes += encodedRecordBytes(record);
  const buffer = Buffer.allocUnsafe(batchBytes);
  let maxTimestamp = 0;
  let position = BATCH_HEADER_BYTES;
  for (const record of records) {
    if (record.timestamp > maxTimestamp) maxTimestamp = record.timestamp;
    position = writeRecord(buffer, position, record);
  }
  const first = records[0];
  const last = records[records.length - 1];
  if (first === undefined || last === undefined) throw new Error('encodeBatch needs at least one record');
  buffer.writeUInt32LE(BATCH_MAGIC, 0);
  buffer.writeUInt32LE(batchBytes, 4);
  buffer.writeUInt8(BATCH_FORMAT_VERSION, 16);
  buffer.writeUInt8(0, ATTRIBUTES_AT);
  buffer.writeUInt16LE(0, 18);
  buffer.writeUInt32LE(records.length, 32);
  buffer.writeUInt32LE(last.offsetDelta, 36);
  writeU64(buffer, first.timestamp, 40);
  writeU64(buffer, maxTimestamp, 48);
  return buffer;
}

/** Writes base offset and leader epoch into an encoded batch, then its checksum. */
export function sealBatch(batch: Buffer, baseOffset: number, leaderEpoch: number): void {
  batch.writeUInt32LE(leaderEpoch, 20);
  writeU64(batch, baseOffset, 24);
  batch.writeBigUInt64LE(checksum64(batch.subarray(CHECKSUMMED_FROM)), 8);
}

function writeRecord(buffer: Buffer, start: number, record: BatchRecordInput): number {
  let position = start + 4;
  buffer.writeUInt32LE(record.offsetDelta, position);
  writeU64(buffer, record.timestamp, position + 4);
  position += 12;
  position = writeNullableBytes(buffer, position, record.key);
  position = writeNullableBytes(buffer, position, record.value);
  buffer.writeUInt16LE(record.headers.length, position);
  position += 2;
  for (const header of record.headers) {
    const keyBytes = buffer.write(header.key, position + 2, 'utf8');
    buffer.writeUInt16LE(keyBytes, position);
    position += 2 + keyBytes;
    buffer.writeUInt32LE(header.value.length, position);
    header.value.copy(buffer, position + 4);
    position += 4 + header.value.length;
  }
  buffer.writeUInt32LE(position - start - 4, start);
  return position;
}

function writeNullableBytes(buffer: Buffer, position: number, bytes: Buffer | null): number {
  if (bytes === null) {
    buffer.writeInt32LE(-1, position);
    return position + 4;
  }
  buffer.writeInt32LE(bytes.length, position);
  bytes.copy(buffer, position + 4);
  return position + 4 + bytes.length;
}

export type BatchCheck =
  | { kind: 'valid'; header: BatchHeader }
  /** Fewer bytes than the batch claims are available: a torn tail, or a read that must fetch more. */
  | { kind: 'incomplete'; needBytes: number }
  | { kind: 'invalid'; reason: string; unsupportedVersion?: number };

/**
 * Checks the batch that starts at `position` in `bytes`: structure, declared length within
 * `maxBatchBytes`, version, and the checksum. It never throws and never allocates from a
 * length it has not checked.
 */
export function checkBatch(bytes: Buffer, position: number, maxBatchBytes: number): BatchCheck {
  const available = bytes.length - position;
  if (available < BATCH_HEADER_BYTES) return { kind: 'incomplete', needBytes: BATCH_HEADER_BYTES };
  const header = readBatchHeader(bytes, position);
  if (bytes.readUInt32LE(position) !== BATCH_MAGIC) return { kind: 'invalid', reason: 'bad magic number' };
  if (header.batchBytes < BATCH_HEADER_BYTES + RECORD_FIXED_BYTES || header.batchBytes > maxBatchBytes) {
    return { kind: 'invalid', reason: `batch length ${header.batchBytes} outside [${BATCH_HEADER_BYTES + RECORD_FIXED_BYTES}, ${maxBatchBytes}]` };
  }
  if (header.recordCount === 0) return { kind: 'invalid', reason: 'batch with zero records' };
  if (available < header.batchBytes) return { kind: 'incomplete', needBytes: header.batchBytes };
  const computed = checksum64(bytes.subarray(position + CHECKSUMMED_FROM, position + header.batchBytes));
  if (computed !== header.checksum) {
    return { kind: 'invalid', reason: `checksum mismatch (stored ${header.checksum.toString(16)}, computed ${computed.toString(16)})` };
  }
  // The checksum covers the version byte: only a batch that verifies is of another format
  // version; a flipped version byte is damage like any other.
  if (header.formatVersion !== BATCH_FORMAT_VERSION) {
    return { kind: 'invalid', reason: `unknown batch format version ${header.formatVersion}`, unsupportedVersion: header.formatVersion };
  }
  return { kind: 'valid', header };
}

export function readBatchHeader(bytes: Buffer, position: number): BatchHeader {
  return {
    batchBytes: bytes.readUInt32LE(position + 4),
    checksum: bytes.readBigUInt64LE(position + 8),
    formatVersion: bytes.readUInt8(position + 16),
    attributes: bytes.readUInt8(position + ATTRIBUTES_AT),
    leaderEpoch: bytes.readUInt32LE(position + 20),
    baseOffset: readU64(bytes, position + 24),
    recordCount: bytes.readUInt32LE(position + 32),
    lastOffsetDelta: bytes.readUInt32LE(position + 36),
    firstTimestamp: readU64(bytes, position + 40),
    maxTimestamp: readU64(bytes, position + 48),
  };
}

export class RecordDecodeError extends Error {}

/**
 * Decodes the records of a batch already checked by checkBatch. Keys, values and header
 * values are views into `bytes` (no copy); callers that keep them past the buffer's life must
 * copy. A structural error inside a checksummed batch means a writer bug, but it is still
 * reported as an error rather than trusted.
 */
export function decodeBatchRecords(bytes: Buffer, position: number, header: BatchHeader): JournalRecord[] {
  const records: JournalRecord[] = [];
  const end = position + header.batchBytes;
  let cursor = position + BATCH_HEADER_BYTES;
  let previousDelta = -1;
  for (let index = 0; index < header.recordCount; index += 1) {
    if (cursor + 4 > end) throw new RecordDecodeError(`record ${index} starts past the batch end`);
    const recordEnd = cursor + 4 + bytes.readUInt32LE(cursor);
    if (recordEnd > end || recordEnd - cursor < RECORD_FIXED_BYTES) throw new RecordDecodeError(`record ${index} length out of bounds`);
    const offsetDelta = bytes.readUInt32LE(cursor + 4);
    if (offsetDelta <= previousDelta || offsetDelta > header.lastOffsetDelta) throw new RecordDecodeError(`record ${index} offset delta ${offsetDelta} out of order`);
    previousDelta = offsetDelta;
    const timestamp = readU64(bytes, cursor + 8);
    let at = cursor + 16;
    const key = readNullableBytes(bytes, at, recordEnd);
    at = key.next;
    const value = readNullableBytes(bytes, at, recordEnd);
    at = value.next;
    if (at + 2 > recordEnd) throw new RecordDecodeError(`record ${index} header count out of bounds`);
    const headerCount = bytes.readUInt16LE(at);
    at += 2;
    const headers: RecordHeader[] = [];
    for (let h = 0; h < headerCount; h += 1) {
      if (at + 2 > recordEnd) throw new RecordDecodeError(`record ${index} header ${h} out of bounds`);
      const keyLength = bytes.readUInt16LE(at);
      if (at + 2 + keyLength + 4 > recordEnd) throw new RecordDecodeError(`record ${index} header ${h} out of bounds`);
      const headerKey = bytes.toString('utf8', at + 2, at + 2 + keyLength);
      at += 2 + keyLength;
      const valueLength = bytes.readUInt32LE(at);
      if (at + 4 + valueLength > recordEnd) throw new RecordDecodeError(`record ${index} header ${h} out of bounds`);
      headers.push({ key: headerKey, value: bytes.subarray(at + 4, at + 4 + valueLength) });
      at += 4 + valueLength;
    }
    if (at !== recordEnd) throw new RecordDecodeError(`record ${index} has ${recordEnd - at} trailing bytes`);
    records.push({ offset: header.baseOffset + offsetDelta, timestamp, key: key.bytes, value: value.bytes, headers, epoch: header.leaderEpoch });
    cursor = recordEnd;
  }
  if (cursor !== end) throw new RecordDecodeError(`${end - cursor} bytes after the last record`);
  if (previousDelta !== header.lastOffsetDelta) throw new RecordDecodeError('last offset delta does not match the header');
  return records;
}

function readNullableBytes(bytes: Buffer, at: number, end: number): { bytes: Buffer | null; next: number } {
  if (at + 4 > end) throw new RecordDecodeError('length field out of bounds');
  const length = bytes.readInt32LE(at);
  if (length === -1) return { bytes: null, next: at + 4 };
  if (length < 0 || at + 4 + length > end) throw new RecordDecodeError(`length ${length} out of bounds`);
  return { bytes: bytes.subarray(at + 4, at + 4 + length), next: at + 4 + length };
}
