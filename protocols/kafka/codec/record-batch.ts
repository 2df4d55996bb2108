// Kafka record batch v2 (magic 2), the only on-wire record format Shardline accepts (Produce v3+
// and Fetch v4+ carry nothing else). Layout (big-endian; the protocol guide's "Record Batch"):
//
//   baseOffset int64 | batchLength int32 (bytes after this field) | partitionLeaderEpoch int32 |
//   magic int8 = 2 | crc uint32 (CRC-32C of attributes..end) | attributes int16 |
//   lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64 | producerId int64 |
//   producerEpoch int16 | baseSequence int32 | recordCount int32 | records
//
// and each record: length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
// keyLength varint (-1 null) | key | valueLength varint (-1 null) | value | headerCount varint |
// headers (keyLength varint, key utf8, valueLength varint (-1 null), value).
//
// With compression (attributes bits 0-2) everything after recordCount is compressed as one block;
// the count stays outside. The CRC leaves out baseOffset, batchLength and partitionLeaderEpoch on
// purpose: a broker assigns the offset and epoch without recomputing it. Pure, no I/O.
import { codecFor, DEFAULT_CODECS, type CompressionCodecs } from './compression.js';
import { crc32c } from './crc32c.js';
import { KafkaErrors } from './errors.js';
import { Reader, Writer } from './primitives.js';

/** Bytes from partitionLeaderEpoch through recordCount: the least a batchLength can be. */
export const BATCH_HEADER_AFTER_LENGTH = 49;
/** baseOffset + batchLength. */
export const BATCH_LOG_OVERHEAD = 12;
const CRC_OFFSET = 17; // from the batch start: 8 + 4 + 4 + 1
const ATTRIBUTES_OFFSET = 21;

export const BatchAttributes = {
  compressionMask: 0x07,
  timestampLogAppend: 0x08,
  transactional: 0x10,
  control: 0x20,
  deleteHorizon: 0x40,
} as const;

export interface RecordHeader { key: string; value: Buffer | null }

export interface KafkaRecord {
  /** Unused by Kafka today (always 0); kept so a batch re-encodes byte for byte. */
  attributes: number;
  timestampDelta: bigint;
  offsetDelta: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}

export interface RecordBatch {
  baseOffset: bigint;
  partitionLeaderEpoch: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: bigint;
  maxTimestamp: bigint;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  records: KafkaRecord[];
}

export interface DecodedBatch extends RecordBatch {
  /** The CRC as stored (already checked against the bytes). */
  crc: number;
  /** The whole batch's bytes as received, baseOffset to end (a view, not a copy). */
  bytes: Buffer;
}

export function compressionOf(attributes: number): number { return attributes & BatchAttributes.compressionMask; }
export function isTransactional(attributes: number): boolean { return (attributes & BatchAttributes.transactional) !== 0; }
export function isControl(attributes: number): boolean { return (attributes & BatchAttributes.control) !== 0; }
export function isLogAppendTime(attributes: number): boolean { return (attributes & BatchAttributes.timestampLogAppend) !== 0; }

export interface DecodeBatchOptions {
  codecs?: CompressionCodecs;
  /** Cap on one batch's decompressed records (a gzip bomb stops here). Default 64 MiB. */
  maxUncompressedBytes?: number;
  /**
   * A Fetch response may end with a batch cut short by the broker's size limit; a consumer
   * ignores it. A Produce request may not, so the default refuses one.
   */
  allowPartialTail?: boolean;
}

const DEFAULT_MAX_UNCOMPRESSED = 64 * 1024 * 1024;

function bad(detail: string, position: number) {
  return KafkaErrors.decode.create({ position }, 'record batch', `${detail} (at byte ${position})`);
}

/** Decodes every batch of a `records` field. Fails with SL_KAFKA_DECODE / SL_KAFKA_COMPRESSION. */
export function decodeRecordBatches(bytes: Buffer, options: DecodeBatchOptions = {}): { batches: DecodedBatch[]; partialTailBytes: number } {
  const batches: DecodedBatch[] = [];
  let position = 0;
  while (position < bytes.length) {
    const left = bytes.length - position;
    if (left < BATCH_LOG_OVERHEAD + BATCH_HEADER_AFTER_LENGTH) {
      if (options.allowPartialTail) return { batches, partialTailBytes: left };
      throw bad(`${left} bytes left, too few for a batch header`, position);
    }
    const batchLength = bytes.readInt32BE(position + 8);
    if (batchLength < BATCH_HEADER_AFTER_LENGTH) throw bad(`batch length ${batchLength} is below the ${BATCH_HEADER_AFTER_LENGTH}-byte header`, position + 8);
    if (batchLength > left - BATCH_LOG_OVERHEAD) {
      if (options.allowPartialTail) return { batches, partialTailBytes: left };
      throw bad(`batch length ${batchLength} runs past the ${left - BATCH_LOG_OVERHEAD} bytes present`, position + 8);
    }
    const end = position + BATCH_LOG_OVERHEAD + batchLength;
    batches.push(decodeOneBatch(bytes.subarray(position, end), options, position));
    position = end;
  }
  return { batches, partialTailBytes: 0 };
}

/** Decodes one complete batch (exactly its bytes). */
export function decodeRecordBatch(bytes: Buffer, options: DecodeBatchOptions = {}): DecodedBatch {
  const { batches } = decodeRecordBatches(bytes, options);
  if (batches.length !== 1) throw bad(`expected one batch, found ${batches.length}`, 0);
  return batches[0]!;
}

function decodeOneBatch(bytes: Buffer, options: DecodeBatchOptions, base: number): DecodedBatch {
  const magic = bytes.readInt8(16);
  if (magic !== 2) throw bad(`magic ${magic} is not supported (only record batch v2)`, base + 16);
  const crc = bytes.readUInt32BE(CRC_OFFSET);
  const computed = crc32c(bytes, ATTRIBUTES_OFFSET);
  if (crc !== computed) throw bad(`CRC-32C ${crc.toString(16)} does not match the content's ${computed.toString(16)}`, base + CRC_OFFSET);
  const r = new Reader(bytes);
  const baseOffset = r.int64();
  r.int32(); // batchLength, checked by the caller
  const partitionLeaderEpoch = r.int32();
  r.int8(); // magic
  r.uint32(); // crc
  const attributes = r.int16();
  const lastOffsetDelta = r.int32();
  const baseTimestamp = r.int64();
  const maxTimestamp = r.int64();
  const producerId = r.int64();
  const producerEpoch = r.int16();
  const baseSequence = r.int32();
  const countAt = r.offset;
  const count = r.int32();
  if (count < 0) throw bad(`record count ${count}`, base + countAt);
  let recordsReader: Reader;
  const codecId = compressionOf(attributes);
  if (codecId === 0) {
    recordsReader = r;
  } else {
    const inflated = codecFor(codecId, options.codecs ?? DEFAULT_CODECS).decompress(r.raw(r.remaining), options.maxUncompressedBytes ?? DEFAULT_MAX_UNCOMPRESSED);
    recordsReader = new Reader(inflated);
  }
  // Every record takes at least 7 bytes; a count past that is refused before looping.
  if (count > recordsReader.remaining) throw bad(`${count} records cannot fit in ${recordsReader.remaining} bytes`, base + countAt);
  const records: KafkaRecord[] = [];
  for (let i = 0; i < count; i++) records.push(decodeRecord(recordsReader));
  recordsReader.expectEnd('record batch records');
  return { baseOffset, partitionLeaderEpoch, attributes, lastOffsetDelta, baseTimestamp, maxTimestamp, producerId, producerEpoch, baseSequence, records, crc, bytes };
}

function nullableVarBytes(r: Reader, what: string): Buffer | null {
  const length = r.varint(what);
  if (length === -1) return null;
  if (length < 0) throw KafkaErrors.decode.create({ position: r.offset }, 'record', `${what} length ${length}`);
  return r.raw(length, what);
}

function decodeRecord(outer: Reader): KafkaRecord {
  const length = outer.varint('record length');
  if (length < 0) throw KafkaErrors.decode.create({ position: outer.offset }, 'record', `length ${length}`);
  const body = outer.raw(length, 'record');
  const r = new Reader(body);
  const attributes = r.int8('record attributes');
  const timestampDelta = r.varlong('record timestamp delta');
  const offsetDelta = r.varint('record offset delta');
  const key = nullableVarBytes(r, 'record key');
  const value = nullableVarBytes(r, 'record value');
  const headerCount = r.varint('record header count');
  if (headerCount < 0 || headerCount > r.remaining) throw KafkaErrors.decode.create({ position: r.offset }, 'record', `header count ${headerCount} with ${r.remaining} bytes left`);
  const headers: RecordHeader[] = [];
  for (let i = 0; i < headerCount; i++) {
    const keyLength = r.varint('record header key length');
    if (keyLength < 0) throw KafkaErrors.decode.create({ position: r.offset }, 'record', `header key length ${keyLength}`);
    const headerKey = r.raw(keyLength, 'record header key').toString('utf8');
    headers.push({ key: headerKey, value: nullableVarBytes(r, 'record header value') });
  }
  r.expectEnd('record');
  return { attributes, timestampDelta, offsetDelta, key, value, headers };
}

/** Writes one record into `out`; `w` is scratch space for its body (its length comes first). */
function encodeRecord(record: KafkaRecord, out: Writer, w: Writer): void {
  w.reset();
  w.int8(record.attributes, 'record attributes');
  w.varlong(record.timestampDelta, 'record timestamp delta');
  w.varint(record.offsetDelta, 'record offset delta');
  for (const part of [record.key, record.value]) {
    if (part === null) w.varint(-1); else { w.varint(part.length); w.raw(part); }
  }
  w.varint(record.headers.length);
  for (const header of record.headers) {
    const key = Buffer.from(header.key, 'utf8');
    w.varint(key.length);
    w.raw(key);
    if (header.value === null) w.varint(-1); else { w.varint(header.value.length); w.raw(header.value); }
  }
  const body = w.view(0);
  out.varint(body.length);
  out.raw(body);
}

/** Encodes one batch, computing batchLength and the CRC-32C; compresses per its attributes. */
export function encodeRecordBatch(batch: RecordBatch, codecs: CompressionCodecs = DEFAULT_CODECS): Buffer {
  const w = new Writer(128);
  w.int64(batch.baseOffset, 'baseOffset');
  w.int32(0); // batchLength, patched below
  w.int32(batch.partitionLeaderEpoch, 'partitionLeaderEpoch');
  w.int8(2);
  w.uint32(0); // crc, patched below
  w.int16(batch.attributes, 'attributes');
  w.int32(batch.lastOffsetDelta, 'lastOffsetDelta');
  w.int64(batch.baseTimestamp, 'baseTimestamp');
  w.int64(batch.maxTimestamp, 'maxTimestamp');
  w.int64(batch.producerId, 'producerId');
  w.int16(batch.producerEpoch, 'producerEpoch');
  w.int32(batch.baseSequence, 'baseSequence');
  w.int32(batch.records.length);
  const codecId = compressionOf(batch.attributes);
  const scratch = new Writer(256);
  if (codecId === 0) {
    for (const record of batch.records) encodeRecord(record, w, scratch);
  } else {
    const plain = new Writer();
    for (const record of batch.records) encodeRecord(record, plain, scratch);
    w.raw(codecFor(codecId, codecs).compress(plain.finish()));
  }
  w.patchInt32(8, w.length - BATCH_LOG_OVERHEAD);
  w.patchUint32(CRC_OFFSET, crc32c(w.view(ATTRIBUTES_OFFSET)));
  return w.finish();
}
