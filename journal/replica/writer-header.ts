// The writer stamp of an idempotent append, stored with its batch (docs/journal-format.md,
// "Writer header"): header `sl-writer` on the batch's first record, 12 bytes big-endian: u64
// writer id (below 2^53), u32 sequence. It travels in the batch's checksummed bytes, so every
// replica holds it and a replica that becomes leader knows each writer's last sequence from its
// own log (writer-table.ts). Only the leader writes it; readers of records ignore it.
import { BATCH_HEADER_BYTES } from '../segment/batch-format.js';
import type { RecordHeader, RecordInput } from '../record.js';

export const WRITER_HEADER = 'sl-writer';
const WRITER_HEADER_BYTES = Buffer.from(WRITER_HEADER);
const VALUE_BYTES = 12;

export interface WriterSequence {
  readonly id: number;
  readonly sequence: number;
}

export function encodeWriterHeader(writer: WriterSequence): RecordHeader {
  const value = Buffer.alloc(VALUE_BYTES);
  value.writeUInt32BE(Math.floor(writer.id / 2 ** 32), 0);
  value.writeUInt32BE(writer.id % 2 ** 32, 4);
  value.writeUInt32BE(writer.sequence, 8);
  return { key: WRITER_HEADER, value };
}

/** The records with the writer header added to the first one (a copy; the caller's are untouched). */
export function stampRecords(records: readonly RecordInput[], writer: WriterSequence): RecordInput[] {
  const [first, ...rest] = records;
  if (first === undefined) return [];
  return [{ ...first, headers: [...(first.headers ?? []), encodeWriterHeader(writer)] }, ...rest];
}

/**
 * The writer stamp of a stored batch, read from its first record's headers without decoding
 * the rest; null when it has none or the bytes do not hold one where expected (the batch's
 * checksum was verified when it was stored, so that means it was written without one).
 */
export function readWriterStamp(batch: Buffer): WriterSequence | null {
  let at = BATCH_HEADER_BYTES;
  if (batch.length < at + 20) return null;
  const recordEnd = at + 4 + batch.readUInt32LE(at);
  at += 4 + 4 + 8;
  const keyLength = batch.readInt32LE(at);
  at += 4 + Math.max(0, keyLength);
  if (at + 4 > recordEnd) return null;
  const valueLength = batch.readInt32LE(at);
  at += 4 + Math.max(0, valueLength);
  if (at + 2 > recordEnd) return null;
  const count = batch.readUInt16LE(at);
  at += 2;
  for (let i = 0; i < count; i += 1) {
    if (at + 2 > recordEnd) return null;
    const nameLength = batch.readUInt16LE(at);
    const nameAt = at + 2;
    if (nameAt + nameLength + 4 > recordEnd) return null;
    const length = batch.readUInt32LE(nameAt + nameLength);
    const valueAt = nameAt + nameLength + 4;
    if (valueAt + length > recordEnd) return null;
    if (length === VALUE_BYTES && nameLength === WRITER_HEADER_BYTES.length && batch.compare(WRITER_HEADER_BYTES, 0, nameLength, nameAt, nameAt + nameLength) === 0) {
      return { id: batch.readUInt32BE(valueAt) * 2 ** 32 + batch.readUInt32BE(valueAt + 4), sequence: batch.readUInt32BE(valueAt + 8) };
    }
    at = valueAt + length;
  }
  return null;
}
