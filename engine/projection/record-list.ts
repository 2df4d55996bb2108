// A list of journal records as one byte string: the snapshot form of projections whose state is
// a set of records (retained messages, delayed messages). Decoding gives back records equal to
// the ones encoded, so a projection rebuilt from a snapshot applies the very records a replay
// would have read. Pure; decoding checks every length against the bytes left and throws a
// plain Error on a short or malformed input (the snapshot is then ignored).
//
// Layout (integers big-endian):
//   u32 count
//   per record:
//     f64 offset, f64 timestamp
//     i32 key length (-1: no key), key bytes
//     i32 value length (-1: tombstone), value bytes
//     u16 header count; per header: u16 key length, key (UTF-8), u32 value length, value
// Values and keys of decoded records are views into the input (no copy).
import type { JournalRecord, RecordHeader } from '../../journal/index.js';

export type ListedRecord = Pick<JournalRecord, 'offset' | 'timestamp' | 'key' | 'value' | 'headers'>;

const MAX_HEADERS = 0xffff;

function recordBytes(record: ListedRecord): number {
  let bytes = 16 + 4 + (record.key?.length ?? 0) + 4 + (record.value?.length ?? 0) + 2;
  for (const header of record.headers) bytes += 2 + Buffer.byteLength(header.key) + 4 + header.value.length;
  return bytes;
}

export function encodeRecordList(records: readonly ListedRecord[]): Buffer {
  let total = 4;
  for (const record of records) total += recordBytes(record);
  const out = Buffer.allocUnsafe(total);
  let at = out.writeUInt32BE(records.length, 0);
  const bytes = (value: Buffer | null): void => {
    at = out.writeInt32BE(value === null ? -1 : value.length, at);
    if (value !== null) at += value.copy(out, at);
  };
  for (const record of records) {
    if (record.headers.length > MAX_HEADERS) throw new Error(`a record at offset ${record.offset} has ${record.headers.length} headers, more than a snapshot holds (${MAX_HEADERS})`);
    at = out.writeDoubleBE(record.offset, at);
    at = out.writeDoubleBE(record.timestamp, at);
    bytes(record.key);
    bytes(record.value);
    at = out.writeUInt16BE(record.headers.length, at);
    for (const header of record.headers) {
      const key = Buffer.from(header.key, 'utf8');
      at = out.writeUInt16BE(key.length, at);
      at += key.copy(out, at);
      at = out.writeUInt32BE(header.value.length, at);
      at += header.value.copy(out, at);
    }
  }
  return out;
}

export function decodeRecordList(input: Buffer): ListedRecord[] {
  let at = 0;
  const need = (bytes: number): void => {
    if (bytes < 0 || at + bytes > input.length) throw new Error(`record list cut short: ${bytes} bytes needed at ${at}, ${input.length - at} left`);
  };
  const take = (bytes: number): Buffer => {
    need(bytes);
    const value = input.subarray(at, at + bytes);
    at += bytes;
    return value;
  };
  const nullable = (): Buffer | null => {
    need(4);
    const length = input.readInt32BE(at);
    at += 4;
    return length === -1 ? null : take(length);
  };
  need(4);
  const count = input.readUInt32BE(0);
  at = 4;
  // Each record takes at least 26 bytes: a count larger than the input allows is refused
  // before anything is allocated for it.
  if (count * 26 > input.length - at) throw new Error(`record list claims ${count} records in ${input.length} bytes`);
  const records: ListedRecord[] = [];
  for (let i = 0; i < count; i += 1) {
    need(16);
    const offset = input.readDoubleBE(at);
    const timestamp = input.readDoubleBE(at + 8);
    at += 16;
    const key = nullable();
    const value = nullable();
    need(2);
    const headerCount = input.readUInt16BE(at);
    at += 2;
    const headers: RecordHeader[] = [];
    for (let h = 0; h < headerCount; h += 1) {
      need(2);
      const keyLength = input.readUInt16BE(at);
      at += 2;
      const headerKey = take(keyLength).toString('utf8');
      need(4);
      const valueLength = input.readUInt32BE(at);
      at += 4;
      headers.push({ key: headerKey, value: take(valueLength) });
    }
    records.push({ offset, timestamp, key, value, headers });
  }
  if (at !== input.length) throw new Error(`record list has ${input.length - at} bytes after its last record`);
  return records;
}
