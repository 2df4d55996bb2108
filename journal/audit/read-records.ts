// readRecordsOnDisk: the records of one shard straight from its segment files, in offset order,
// without the journal lock and without changing a byte. Every batch read passes its checksum
// and the offset/epoch order checks of recovery first; at damage the read stops with
// SL_JOURNAL_CORRUPT_BATCH (context: shard, segment, position), and no record of the damaged
// batch is ever yielded, because a batch is decoded whole before any of its records goes out.
//
// Ranges: fromOffset and fromTime are inclusive, toOffset and toTime exclusive; all are
// optional and combine (a record must be in every given range). Offsets bound the read; times
// filter it, because record timestamps are set by writers and need not rise with offsets.
//
// A torn tail on the active (last) segment is where the data ends, not damage: it is a write
// in progress on a live journal, or one that recovery cuts off on the next open.
import { JournalErrors } from '../errors.js';
import type { JournalRecord } from '../record.js';
import { BATCH_HEADER_BYTES, BATCH_MAGIC, decodeBatchRecords, lastOffsetOf, RecordDecodeError, type BatchHeader } from '../segment/batch-format.js';
import type { ScannedBatch } from '../segment/log-scan.js';
import { byteProgress } from './byte-progress.js';
import { listShardFiles, openJournalDirectory, requireShard, type SegmentFile } from './data-directory.js';
import { readIndexFiles, trustedIndex } from './index-files.js';
import { ReadOnlyLog, scanLog, type LogChunk, type LogScanEnd } from './log-file.js';

export interface ReadOnDiskOptions {
  /** First offset to return (inclusive). */
  fromOffset?: number;
  /** Offset to stop before (exclusive). */
  toOffset?: number;
  /** Earliest record timestamp to return, ms since epoch (inclusive). */
  fromTime?: number;
  /** Record timestamps must be below this, ms since epoch (exclusive). */
  toTime?: number;
  onProgress?: (bytesDone: number, totalBytes: number) => void;
}

interface Range {
  fromOffset: number;
  toOffset: number;
  fromTime: number;
  toTime: number;
}

/** Where the offset and epoch order checks stand between segments. */
interface Order {
  nextOffset: number;
  epoch: number;
}

interface ReadContext {
  shard: string;
  range: Range;
}

export async function* readRecordsOnDisk(dataDir: string, shard: string, options: ReadOnDiskOptions = {}): AsyncGenerator<JournalRecord> {
  const range = checkRange(options, shard);
  const journalDirectory = await openJournalDirectory(dataDir);
  await requireShard(journalDirectory, shard);
  const { segments } = await listShardFiles(journalDirectory, shard);
  const active = segments[segments.length - 1];
  const wanted = segmentsInRange(segments, range);
  const progress = byteProgress(wanted.reduce((total, file) => total + file.sizeBytes, 0), options.onProgress);
  let order: Order | null = { nextOffset: 0, epoch: 0 };
  for (const file of wanted) {
    order = yield* readSegment({ shard, range }, file, file === active, order, (bytes) => progress.within(bytes));
    progress.complete(file.sizeBytes);
    if (order === null) return;
  }
}

function checkRange(options: ReadOnDiskOptions, shard: string): Range {
  const bound = (name: keyof Range, fallback: number): number => {
    const value = options[name];
    if (value === undefined) return fallback;
    if (!Number.isSafeInteger(value) || value < 0) throw JournalErrors.invalidArgument.create({ shard }, name, value, 'must be a non-negative integer');
    return value;
  };
  return { fromOffset: bound('fromOffset', 0), toOffset: bound('toOffset', Infinity), fromTime: bound('fromTime', 0), toTime: bound('toTime', Infinity) };
}

/** From the segment holding fromOffset to the last one starting below toOffset. */
function segmentsInRange(segments: SegmentFile[], range: Range): SegmentFile[] {
  let first = 0;
  segments.forEach((file, index) => {
    if (file.baseOffset <= range.fromOffset) first = index;
  });
  return segments.slice(first).filter((file) => file.baseOffset < range.toOffset);
}

/** Yields the segment's records in range; returns the order state, or null when the read is done. */
async function* readSegment(context: ReadContext, file: SegmentFile, active: boolean, order: Order, onBytes: (bytes: number) => void): AsyncGenerator<JournalRecord, Order | null> {
  const log = await ReadOnlyLog.open(file.logPath);
  if (log === null) return order;
  try {
    const start = await startPosition(file, log, context.range);
    // Starting inside the segment, the batches before `start` are unknown: check order from there.
    const [expected, epoch] = start === 0 ? [Math.max(order.nextOffset, file.baseOffset), order.epoch] : [file.baseOffset, 0];
    for await (const chunk of scanLog(log, start, expected, epoch)) {
      for (const batch of chunk.batches) {
        if (batch.header.baseOffset >= context.range.toOffset) return null;
        if (mayHoldRange(batch.header, context.range)) yield* recordsInRange(context, file, chunk, batch);
      }
      onBytes(chunk.bytesPosition + chunk.bytes.length);
      if (chunk.end !== null) return endOfSegment(context, file, chunk.end, active);
    }
    throw new Error('scanLog ended without an end chunk');
  } finally {
    await log.close();
  }
}

function mayHoldRange(header: BatchHeader, range: Range): boolean {
  return lastOffsetOf(header) >= range.fromOffset && header.maxTimestamp >= range.fromTime;
}

function* recordsInRange(context: ReadContext, file: SegmentFile, chunk: LogChunk, batch: ScannedBatch): Generator<JournalRecord> {
  let records: JournalRecord[];
  try {
    records = decodeBatchRecords(chunk.bytes, batch.position - chunk.bytesPosition, batch.header);
  } catch (error) {
    if (error instanceof RecordDecodeError) throw corrupt(context, file, batch.position, error.message);
    throw error;
  }
  const { fromOffset, toOffset, fromTime, toTime } = context.range;
  for (const record of records) {
    if (record.offset >= fromOffset && record.offset < toOffset && record.timestamp >= fromTime && record.timestamp < toTime) yield record;
  }
}

function endOfSegment(context: ReadContext, file: SegmentFile, end: LogScanEnd, active: boolean): Order | null {
  const stop = end.stop;
  if (stop.kind === 'end') return { nextOffset: end.nextOffset, epoch: end.epoch };
  if (stop.kind === 'incomplete') {
    if (active) return null;
    throw corrupt(context, file, stop.position, 'batch runs past the end of the sealed segment');
  }
  throw corrupt(context, file, stop.position, stop.reason);
}

function corrupt(context: ReadContext, file: SegmentFile, position: number, reason: string) {
  return JournalErrors.corruptBatch.create({ shard: context.shard, segment: file.name, position }, `${reason} in shard ${context.shard}, segment ${file.name}, byte ${position}`);
}

/**
 * Where to start reading the segment: a position from its index when the journal would trust
 * the index, else 0. Only the index entries are used, which the index checksum covers; its
 * header summary (max timestamp) is not covered, so it is not trusted to skip a segment.
 */
async function startPosition(file: SegmentFile, log: ReadOnlyLog, range: Range): Promise<number> {
  if (range.fromOffset <= file.baseOffset && range.fromTime === 0) return 0;
  const trusted = trustedIndex(file, await readIndexFiles(file), log.sizeBytes);
  if (trusted === null) return 0;
  const position = Math.max(trusted.index.lookupOffset(range.fromOffset), trusted.index.lookupTime(range.fromTime));
  // An index that points at no batch start would make good data look damaged; a scan from the
  // start is slower but reports only real damage.
  return position === 0 || (await startsBatch(log, position)) ? position : 0;
}

async function startsBatch(log: ReadOnlyLog, position: number): Promise<boolean> {
  const header = await log.read(position, BATCH_HEADER_BYTES);
  return header.length === BATCH_HEADER_BYTES && header.readUInt32LE(0) === BATCH_MAGIC;
}
