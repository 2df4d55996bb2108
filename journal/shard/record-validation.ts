// Checks an append's records against a shard's settings before anything is written. Shared by
// the journal and the memory ShardStore so both refuse the same input with the same codes.
import { JournalErrors } from '../errors.js';
import type { RecordInput } from '../record.js';
import { BATCH_HEADER_BYTES, encodedRecordBytes, type BatchRecordInput } from '../segment/batch-format.js';
import type { ShardConfig } from './shard-config.js';

/** Validated records with offset deltas 0..n-1 and timestamps filled in from `now`. */
/** `control`: the journal's own control batch (an epoch start), which needs no key even in a compacted shard. */
export function prepareRecords(records: readonly RecordInput[], config: ShardConfig, shard: string, now: number, control = false): BatchRecordInput[] {
  if (!Array.isArray(records) || records.length === 0) {
    throw JournalErrors.invalidArgument.create({ shard }, 'records', Array.isArray(records) ? '[]' : typeof records, 'must be a non-empty array of records');
  }
  const inputs: BatchRecordInput[] = new Array<BatchRecordInput>(records.length);
  let batchBytes = BATCH_HEADER_BYTES;
  for (let i = 0; i < records.length; i += 1) {
    const input = validateRecord(records[i], i, now, config, shard, control);
    const bytes = encodedRecordBytes(input);
    if (bytes > config.maxRecordBytes) throw JournalErrors.recordTooLarge.create({ shard, record: i }, bytes, config.maxRecordBytes);
    batchBytes += bytes;
    inputs[i] = input;
  }
  if (batchBytes > config.maxBatchBytes) throw JournalErrors.recordTooLarge.create({ shard, batchBytes }, batchBytes, config.maxBatchBytes);
  return inputs;
}

function validateRecord(record: RecordInput | undefined, index: number, now: number, config: ShardConfig, shard: string, control: boolean): BatchRecordInput {
  const context = { shard, record: index };
  if (record === null || typeof record !== 'object') throw JournalErrors.invalidArgument.create(context, `records[${index}]`, typeof record, 'must be an object');
  const { key = null, value, headers = [], timestamp = now } = record;
  if (value !== null && !Buffer.isBuffer(value)) throw JournalErrors.invalidArgument.create(context, `records[${index}].value`, typeof value, 'must be a Buffer or null');
  if (key !== null && !Buffer.isBuffer(key)) throw JournalErrors.invalidArgument.create(context, `records[${index}].key`, typeof key, 'must be a Buffer or null');
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw JournalErrors.invalidArgument.create(context, `records[${index}].timestamp`, timestamp, 'must be a non-negative integer (ms since epoch)');
  if (!Array.isArray(headers) || headers.length > 0xffff) throw JournalErrors.invalidArgument.create(context, `records[${index}].headers`, typeof headers, 'must be an array of at most 65535 headers');
  for (const header of headers) {
    // A lone surrogate would not survive UTF-8 and come back as U+FFFD: refuse it up front.
    if (typeof header?.key !== 'string' || !header.key.isWellFormed() || Buffer.byteLength(header.key) > 0xffff || !Buffer.isBuffer(header.value)) {
      throw JournalErrors.invalidArgument.create(context, `records[${index}].headers`, header?.key, 'each header needs a well-formed string key (<= 65535 UTF-8 bytes) and a Buffer value');
    }
  }
  if (config.compacted && key === null && !control) throw JournalErrors.keyRequired.create(context, index);
  return { offsetDelta: index, timestamp, key, value, headers };
}
