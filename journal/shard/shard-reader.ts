// The read side of a shard: reads by offset and by time, verified batches as stored, and
// tailing. It holds no state of its own: it looks at the shard's segments through a ReadView,
// never past the visible end (what the writer has acknowledged), and never takes the write
// lock, so reads do not hold up appends. A segment is retained while read, so a retention
// delete or a compaction swap cannot close its file under the reader. Control batches
// (replication's epoch starts) are left out of reads of records, which see their offsets as
// gaps, like compaction's; readBatches returns them, for the replicas that copy the log.
import type { Logger } from 'pino';
import { JournalErrors } from '../errors.js';
import type { JournalRecord } from '../record.js';
import { BATCH_HEADER_BYTES, checkBatch, decodeBatchRecords, isControlBatch, lastOffsetOf, RecordDecodeError, type BatchHeader } from '../segment/batch-format.js';
import type { Segment } from '../segment/segment.js';
import { checkOffsetArgument, checkTimestampArgument, readCost, resolveReadLimits, type ReadOptions } from './read-limits.js';
import { HARD_MAX_BATCH_BYTES } from './shard-config.js';

const TAIL_PAGE_RECORDS = 500;
/** A read fetches the log in chunks of about this size, at least the batch it needs. */
const READ_CHUNK_MIN_BYTES = 64 * 1024;
const READ_CHUNK_MAX_BYTES = 4 * 1024 * 1024;

export interface TailOptions {
  signal?: AbortSignal;
}

/** What the reads see of their shard; the writer changes it, the reads only look. */
export interface ReadView {
  readonly name: string;
  readonly logger: Logger;
  segments(): readonly Segment[];
  /** The offset after the last record a reader may see (acknowledged, in fsync mode synced). */
  visibleEnd(): number;
  startOffset(): number;
  assertOpen(): void;
  /** Resolves true once a record at or after `offset` is visible; false when aborted. */
  waitForAppend(offset: number, signal?: AbortSignal): Promise<boolean>;
}

export class ShardReader {
  constructor(private readonly view: ReadView) {}

  async read(fromOffset: number, options: ReadOptions = {}): Promise<JournalRecord[]> {
    return (await this.readRange(fromOffset, options)).records;
  }

  /**
   * Reads from `fromOffset` and reports where the next read should start, which is past any
   * gap compaction left, so a tailing reader never spins on a gap.
   */
  async readRange(fromOffset: number, options: ReadOptions): Promise<{ records: JournalRecord[]; next: number }> {
    this.view.assertOpen();
    const { maxRecords, maxBytes } = resolveReadLimits(options, this.view.name);
    const end = this.view.visibleEnd();
    checkOffsetArgument(fromOffset, 'fromOffset', this.view.name);
    if (fromOffset < this.view.startOffset() || fromOffset > end) {
      throw JournalErrors.offsetOutOfRange.create({ shard: this.view.name, offset: fromOffset }, fromOffset, this.view.startOffset(), end);
    }
    const records: JournalRecord[] = [];
    if (fromOffset === end) return { records, next: end };
    const budget = { records: maxRecords, bytes: maxBytes };
    let segment: Segment | undefined = this.segmentFor(fromOffset);
    let position = segment.index.lookupOffset(fromOffset);
    while (segment !== undefined && budget.records > 0 && budget.bytes > 0) {
      segment.retain();
      try {
        const complete = await this.readSegment(segment, position, fromOffset, end, records, budget);
        if (!complete) break;
      } finally {
        segment.release();
      }
      const after: number = segment.baseOffset;
      segment = this.view.segments().find((candidate) => candidate.baseOffset > after);
      position = 0;
    }
    // No records means the scan reached the visible end (damage with nothing before it throws).
    const last = records[records.length - 1];
    return { records, next: last !== undefined ? last.offset + 1 : end };
  }

  private segmentFor(offset: number): Segment {
    let found = this.view.segments()[0];
    for (const segment of this.view.segments()) {
      if (segment.baseOffset <= offset) found = segment;
      else break;
    }
    if (found === undefined) throw new Error(`shard ${this.view.name} has no segments`);
    return found;
  }

  /**
   * Reads batches of one segment from `position`, appending records at or after `fromOffset`
   * and below `end`. Returns false when the budget ran out inside the segment. A damaged batch
   * ends the read: records before it are returned, and a read that starts at it throws.
   */
  private async readSegment(segment: Segment, startPosition: number, fromOffset: number, end: number, out: JournalRecord[], budget: { records: number; bytes: number }): Promise<boolean> {
    return this.walkChunks(segment, startPosition, () => budget.bytes, (bytes, position) => this.takeRecords(segment, bytes, position, fromOffset, end, out, budget));
  }

  /**
   * Walks a segment's visible bytes from `startPosition` in chunks cut at batch boundaries,
   * reading the next chunk while `take` checks the current one, as long as `budgetBytes` wants
   * more. `take` says how far it got, the size of a batch the chunk cut (read whole next time),
   * and whether to stop. Returns false when `take` stopped.
   */
  private async walkChunks(segment: Segment, startPosition: number, budgetBytes: () => number, take: (bytes: Buffer, position: number) => { cursor: number; wanted: number; stop: boolean }): Promise<boolean> {
    let position = startPosition;
    let wanted = 0;
    let ahead: ReadAhead | null = null;
    try {
      while (position < segment.visibleBytes && budgetBytes() > 0) {
        if (ahead !== null && ahead.position !== position) ahead = await drainReadAhead(ahead);
        const bytes = ahead !== null ? await ahead.bytes : await segment.read(position, readChunkBytes(segment, position, chunkWanted(wanted, budgetBytes())));
        ahead = startReadAhead(segment, position + bytes.length, budgetBytes() - bytes.length);
        const taken = take(bytes, position);
        if (taken.stop) return false;
        if (taken.cursor === 0 && taken.wanted === 0) break;
        wanted = taken.wanted;
        position += taken.cursor;
      }
      return true;
    } finally {
      // A read ahead that is not used must still finish before the caller releases the segment.
      if (ahead !== null) await drainReadAhead(ahead);
    }
  }

  /**
   * Checks and decodes the whole batches of one chunk (read at `position`) into `out`. Stops
   * at a batch the chunk cuts (`wanted` is its size, `cursor` its start), or with `stop` when
   * the budget is spent or a batch is damaged.
   */
  private takeRecords(segment: Segment, bytes: Buffer, position: number, fromOffset: number, end: number, out: JournalRecord[], budget: { records: number; bytes: number }): { cursor: number; wanted: number; stop: boolean } {
    let cursor = 0;
    while (cursor < bytes.length) {
      const check = checkBatch(bytes, cursor, HARD_MAX_BATCH_BYTES);
      if (check.kind === 'incomplete' && position + cursor + check.needBytes <= segment.visibleBytes) return { cursor, wanted: check.needBytes, stop: false };
      if (check.kind !== 'valid') {
        const reason = check.kind === 'invalid' ? check.reason : 'batch runs past the end of the segment';
        return { cursor, wanted: 0, stop: !this.damaged(segment, position + cursor, reason, out) };
      }
      const header = check.header;
      // A control batch (an epoch start) is the journal's own: its offset is a gap to readers.
      if (lastOffsetOf(header) >= fromOffset && !isControlBatch(header)) {
        let records: JournalRecord[];
        try {
          records = decodeBatchRecords(bytes, cursor, header);
        } catch (error) {
          if (error instanceof RecordDecodeError) return { cursor, wanted: 0, stop: !this.damaged(segment, position + cursor, error.message, out) };
          throw error;
        }
        for (const record of records) {
          if (record.offset < fromOffset || record.offset >= end) continue;
          out.push(record);
          budget.records -= 1;
          budget.bytes -= readCost(record);
          if (budget.records <= 0 || budget.bytes <= 0) return { cursor, wanted: 0, stop: true };
        }
      }
      cursor += header.batchBytes;
    }
    return { cursor, wanted: 0, stop: false };
  }

  private damaged(segment: Segment, position: number, reason: string, out: JournalRecord[]): false {
    if (out.length > 0) {
      this.view.logger.error({ shard: this.view.name, segment: segment.name, position, reason }, 'refused to serve a damaged batch');
      return false;
    }
    throw this.corrupt(segment, position, reason);
  }

  private corrupt(segment: Segment, position: number, reason: string): Error {
    this.view.logger.error({ shard: this.view.name, segment: segment.name, position, reason }, 'refused to serve a damaged batch');
    return JournalErrors.corruptBatch.create({ shard: this.view.name, segment: segment.name, position }, `${reason} in shard ${this.view.name}, segment ${segment.name}, byte ${position}`);
  }

  /**
   * Verified whole batches, as stored, from the one holding `fromOffset` on: for followers that
   * copy the log and fetches that send batches unchanged, without decoding records. The first
   * batch may start below `fromOffset` (the caller skips those records). `next` is where the
   * following call starts. Damage ends the call like read does.
   */
  async readBatches(fromOffset: number, options: { maxBytes?: number } = {}): Promise<{ batches: Buffer[]; next: number }> {
    this.view.assertOpen();
    const { maxBytes } = resolveReadLimits({ maxBytes: options.maxBytes }, this.view.name);
    checkOffsetArgument(fromOffset, 'fromOffset', this.view.name);
    const end = this.view.visibleEnd();
    if (fromOffset < this.view.startOffset() || fromOffset > end) {
      throw JournalErrors.offsetOutOfRange.create({ shard: this.view.name, offset: fromOffset }, fromOffset, this.view.startOffset(), end);
    }
    const found = { batches: [] as Buffer[], next: fromOffset, budget: maxBytes };
    let segment: Segment | undefined = fromOffset === end ? undefined : this.segmentFor(fromOffset);
    let position = segment?.index.lookupOffset(fromOffset) ?? 0;
    while (segment !== undefined && found.budget > 0) {
      segment.retain();
      try {
        if (!(await this.collectBatches(segment, position, fromOffset, found))) break;
      } finally {
        segment.release();
      }
      const after: number = segment.baseOffset;
      segment = this.view.segments().find((candidate) => candidate.baseOffset > after);
      position = 0;
    }
    return { batches: found.batches, next: found.batches.length > 0 ? found.next : end };
  }

  /** Adds the segment's verified batches ending at or after `fromOffset`; false when a batch is damaged. */
  private async collectBatches(segment: Segment, startPosition: number, fromOffset: number, found: { batches: Buffer[]; next: number; budget: number }): Promise<boolean> {
    return this.walkChunks(segment, startPosition, () => found.budget, (bytes, position) => this.takeBatches(segment, bytes, position, fromOffset, found));
  }

  /** Verifies the whole batches of one chunk (read at `position`) into `found`. */
  private takeBatches(segment: Segment, bytes: Buffer, position: number, fromOffset: number, found: { batches: Buffer[]; next: number; budget: number }): { cursor: number; wanted: number; stop: boolean } {
    let cursor = 0;
    while (cursor < bytes.length && found.budget > 0) {
      const check = checkBatch(bytes, cursor, HARD_MAX_BATCH_BYTES);
      if (check.kind === 'incomplete' && position + cursor + check.needBytes <= segment.visibleBytes) return { cursor, wanted: check.needBytes, stop: false };
      if (check.kind !== 'valid') {
        if (found.batches.length > 0) return { cursor, wanted: 0, stop: true };
        throw this.corrupt(segment, position + cursor, check.kind === 'invalid' ? check.reason : 'batch runs past the end of the segment');
      }
      const last = lastOffsetOf(check.header);
      if (last >= fromOffset) {
        found.batches.push(bytes.subarray(cursor, cursor + check.header.batchBytes));
        found.budget -= check.header.batchBytes;
        found.next = last + 1;
      }
      cursor += check.header.batchBytes;
    }
    return { cursor, wanted: 0, stop: false };
  }

  /** First offset whose record timestamp is >= `timestamp`, or null when there is none. */
  async offsetForTime(timestamp: number): Promise<number | null> {
    this.view.assertOpen();
    checkTimestampArgument(timestamp, this.view.name);
    for (const segment of [...this.view.segments()]) {
      if (segment.visibleBytes === 0 || segment.maxTimestamp < timestamp || !this.view.segments().includes(segment)) continue;
      segment.retain();
      try {
        const found = await this.findTimeInSegment(segment, timestamp);
        if (found !== null) return found;
      } finally {
        segment.release();
      }
    }
    return null;
  }

  private async findTimeInSegment(segment: Segment, timestamp: number): Promise<number | null> {
    let position = segment.index.lookupTime(timestamp);
    while (position < segment.visibleBytes) {
      // Each batch is verified before its timestamps are trusted: a flipped maxTimestamp must
      // not make a lookup skip records.
      const { bytes, header } = await this.readVerifiedBatch(segment, position);
      if (header.maxTimestamp >= timestamp && !isControlBatch(header)) {
        for (const record of this.decodeVerified(segment, position, bytes, header)) {
          if (record.timestamp >= timestamp) return record.offset;
        }
      }
      position += header.batchBytes;
    }
    return null;
  }

  /** Reads and verifies the whole batch at `position`; damage throws SL_JOURNAL_CORRUPT_BATCH. */
  async readVerifiedBatch(segment: Segment, position: number): Promise<{ bytes: Buffer; header: BatchHeader }> {
    let bytes = await segment.read(position, Math.min(BATCH_HEADER_BYTES, segment.visibleBytes - position));
    let check = checkBatch(bytes, 0, HARD_MAX_BATCH_BYTES);
    if (check.kind === 'incomplete' && bytes.length === BATCH_HEADER_BYTES && position + check.needBytes <= segment.visibleBytes) {
      bytes = await segment.read(position, check.needBytes);
      check = checkBatch(bytes, 0, HARD_MAX_BATCH_BYTES);
    }
    if (check.kind !== 'valid') throw this.corrupt(segment, position, check.kind === 'invalid' ? check.reason : 'batch runs past the end of the segment');
    return { bytes, header: check.header };
  }

  decodeVerified(segment: Segment, position: number, bytes: Buffer, header: BatchHeader): JournalRecord[] {
    try {
      return decodeBatchRecords(bytes, 0, header);
    } catch (error) {
      if (error instanceof RecordDecodeError) throw this.corrupt(segment, position, error.message);
      throw error;
    }
  }

  async readByTime(timestamp: number, options: ReadOptions = {}): Promise<JournalRecord[]> {
    const offset = await this.offsetForTime(timestamp);
    if (offset === null || offset >= this.view.visibleEnd()) return [];
    return this.read(Math.max(offset, this.view.startOffset()), options);
  }

  /**
   * Yields records from `fromOffset` on, then waits for appends (woken by the writer, no
   * polling). Ends when the signal aborts; throws when the shard closes or is deleted.
   */
  async *tail(fromOffset: number, options: TailOptions = {}): AsyncGenerator<JournalRecord> {
    let next = fromOffset;
    const signal = options.signal;
    const aborted = (): boolean => signal?.aborted === true;
    while (!aborted()) {
      const { records, next: after } = await this.readRange(next, { maxRecords: TAIL_PAGE_RECORDS });
      for (const record of records) {
        yield record;
        if (aborted()) return;
      }
      if (records.length === 0) {
        if (!(await this.view.waitForAppend(after, signal))) return;
      }
      next = after;
    }
  }
}

/**
 * Length of the chunk a read fetches at `position` when it wants about `wantedBytes`: cut at a
 * batch boundary the index knows, so the chunk does not end in a batch that would then be read
 * again. The cut never goes past the visible bytes; without a known boundary it is just the
 * wanted length, and the caller handles a batch cut at the end.
 */
function readChunkBytes(segment: Segment, position: number, wantedBytes: number): number {
  const visible = segment.visibleBytes;
  const limit = Math.min(visible, position + wantedBytes);
  if (limit >= visible) return visible - position;
  const boundary = segment.index.batchBoundaryNear(position, limit);
  return (boundary === null ? limit : Math.min(boundary, visible)) - position;
}

/** Bytes a read wants next: what the budget still allows, at least a batch it must finish. */
function chunkWanted(batchBytes: number, budgetBytes: number): number {
  return Math.max(batchBytes, Math.min(budgetBytes + BATCH_HEADER_BYTES, READ_CHUNK_MAX_BYTES), READ_CHUNK_MIN_BYTES);
}

interface ReadAhead {
  position: number;
  bytes: Promise<Buffer>;
}

/** Starts reading the chunk at `position` when the budget left after the current chunk wants it. */
function startReadAhead(segment: Segment, position: number, budgetBytesAfter: number): ReadAhead | null {
  if (budgetBytesAfter <= 0 || position >= segment.visibleBytes) return null;
  const bytes = segment.read(position, readChunkBytes(segment, position, chunkWanted(0, budgetBytesAfter)));
  // Errors surface where the chunk is awaited; one that is never used is ignored.
  bytes.catch(() => undefined);
  return { position, bytes };
}

async function drainReadAhead(ahead: ReadAhead): Promise<null> {
  await ahead.bytes.catch(() => undefined);
  return null;
}
