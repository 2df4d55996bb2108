// Kafka records ↔ the neutral record envelope (engine/messages/envelope.ts): subject = topic,
// application key = Kafka key (a null key leaves the envelope's key unset), value, timestamp =
// the record's timestamp. Kafka headers (string name, nullable bytes value) have no neutral
// equivalent that keeps bytes and nulls, so they travel in the Kafka namespace of the envelope:
// one journal header `kafka.h` (u32 count; per header u32 name length, name, i32 value length
// or -1 for null, value), which readers of other protocols skip. The first record of a
// produced batch also carries `kafka.crc`, the batch's Kafka CRC as a fetch frames it
// (fetch-frames.ts).
import type { JournalRecord, RecordInput } from '../../../journal/index.js';
import { decodeEnvelope, encodeEnvelope, NO_HEADERS } from '../../../engine/index.js';
import type { KafkaRecord, RecordHeader } from '../codec/index.js';

export const KAFKA_HEADERS = 'kafka.h';

export function toRecordInput(topic: string, record: KafkaRecord, timestamp: number): RecordInput {
  const input = encodeEnvelope({ subject: topic, ...(record.key === null ? {} : { key: record.key }), value: record.value, headers: NO_HEADERS, timestamp });
  if (record.headers.length > 0) input.headers = [...(input.headers ?? []), { key: KAFKA_HEADERS, value: encodeHeaders(record.headers) }];
  return input;
}

export interface StoredKafkaRecord {
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}

/** A stored record as Kafka sees it; undefined for a record that is not an envelope. */
export function fromJournalRecord(record: JournalRecord): StoredKafkaRecord | undefined {
  const envelope = decodeEnvelope(record);
  if (envelope === undefined) return undefined;
  const raw = record.headers.find((header) => header.key === KAFKA_HEADERS);
  return { offset: record.offset, timestamp: record.timestamp, key: envelope.key ?? null, value: envelope.value, headers: raw === undefined ? [] : decodeHeaders(raw.value) };
}

function encodeHeaders(headers: readonly RecordHeader[]): Buffer {
  const parts: Buffer[] = [u32(headers.length)];
  for (const header of headers) {
    const name = Buffer.from(header.key);
    parts.push(u32(name.length), name);
    if (header.value === null) parts.push(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    else parts.push(u32(header.value.length), header.value);
  }
  return Buffer.concat(parts);
}

function decodeHeaders(bytes: Buffer): RecordHeader[] {
  const headers: RecordHeader[] = [];
  let at = 0;
  const need = (n: number): void => {
    if (at + n > bytes.length) throw new Error(`${KAFKA_HEADERS}: runs past its end`);
  };
  need(4);
  const count = bytes.readUInt32BE(at);
  at += 4;
  for (let i = 0; i < count; i += 1) {
    need(4);
    const nameLength = bytes.readUInt32BE(at);
    at += 4;
    need(nameLength + 4);
    const key = bytes.toString('utf8', at, at + nameLength);
    at += nameLength;
    const valueLength = bytes.readInt32BE(at);
    at += 4;
    if (valueLength < 0) headers.push({ key, value: null });
    else {
      need(valueLength);
      headers.push({ key, value: bytes.subarray(at, at + valueLength) });
      at += valueLength;
    }
  }
  return headers;
}

function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value);
  return buffer;
}
