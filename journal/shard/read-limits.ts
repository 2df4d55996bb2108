// Read limits shared by the journal and the memory ShardStore, so both page alike.
import { JournalErrors } from '../errors.js';
import type { JournalRecord } from '../record.js';

export const DEFAULT_READ_MAX_RECORDS = 1000;
export const DEFAULT_READ_MAX_BYTES = 1024 * 1024;
export const MAX_READ_RECORDS = 100_000;

export interface ReadOptions {
  maxRecords?: number;
  /** Soft cap on returned record bytes; at least one record is returned when one exists. */
  maxBytes?: number;
}

export function resolveReadLimits(options: ReadOptions, shard: string): { maxRecords: number; maxBytes: number } {
  const maxRecords = options.maxRecords ?? DEFAULT_READ_MAX_RECORDS;
  const maxBytes = options.maxBytes ?? DEFAULT_READ_MAX_BYTES;
  if (!Number.isInteger(maxRecords) || maxRecords < 1 || maxRecords > MAX_READ_RECORDS) {
    throw JournalErrors.invalidArgument.create({ shard }, 'maxRecords', maxRecords, `must be an integer in [1, ${MAX_READ_RECORDS}]`);
  }
  if (!Number.isInteger(maxBytes) || maxBytes < 1) throw JournalErrors.invalidArgument.create({ shard }, 'maxBytes', maxBytes, 'must be a positive integer');
  return { maxRecords, maxBytes };
}

/** What a record counts against a read's maxBytes. */
export function readCost(record: JournalRecord): number {
  return (record.value?.length ?? 0) + (record.key?.length ?? 0) + 16;
}

export function checkOffsetArgument(offset: unknown, argument: string, shard: string): asserts offset is number {
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < -1) {
    throw JournalErrors.invalidArgument.create({ shard }, argument, offset, 'must be a non-negative integer');
  }
}

export function checkTimestampArgument(timestamp: unknown, shard: string): asserts timestamp is number {
  if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw JournalErrors.invalidArgument.create({ shard }, 'timestamp', timestamp, 'must be a non-negative integer (ms since epoch)');
  }
}

export function checkEpochArgument(epoch: unknown, shard: string): asserts epoch is number | undefined {
  if (epoch !== undefined && (typeof epoch !== 'number' || !Number.isInteger(epoch) || epoch < 0 || epoch > 0xffffffff)) {
    throw JournalErrors.invalidArgument.create({ shard }, 'epoch', epoch, 'must be an integer in [0, 4294967295]');
  }
}
