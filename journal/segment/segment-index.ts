// The sparse offset index and the time index of one segment, in memory and as bytes.
// Pure: the file I/O lives in segment.ts.
//
// Offset index: one entry per indexIntervalBytes of log, (relativeOffset u32, position u32),
// where relativeOffset is a batch's baseOffset minus the segment's baseOffset and position is
// the batch's byte position. Lookup(offset) gives the position of the last indexed batch whose
// baseOffset <= offset; the batch holding `offset` is there or later.
//
// Time index: entries (maxTimestampBefore u64, position u32): the largest record timestamp of
// all batches before `position` in this segment. Lookup(t) gives the position of the last entry
// whose maxTimestampBefore < t; no batch before it holds a timestamp >= t.
//
// Index file (.index and .timeindex), little-endian:
//   0 u32 magic 0x58444953 ("SIDX") | 4 u8 kind (1 offset, 2 time) | 5 u8 version 1 | 6 u16 entryBytes
//   8 u64 coveredLogBytes | 16 u64 nextOffset | 24 u64 maxTimestamp | 32 u32 entryCount
//  36 u32 epoch (highest leader epoch) | 40 u64 checksum (xxhash64 of bytes [0, 40) and [48, end),
//  so the summary fields are covered too) | 48 entries...
// coveredLogBytes is the log size the index was written for: an index whose coveredLogBytes
// differs from the log's size is stale and is rebuilt from the log.
import { checksum64 } from '../checksum.js';

export const INDEX_MAGIC = 0x58444953;
export const INDEX_VERSION = 1;
export const INDEX_HEADER_BYTES = 48;
export const OFFSET_INDEX_KIND = 1;
export const TIME_INDEX_KIND = 2;
export const OFFSET_ENTRY_BYTES = 8;
export const TIME_ENTRY_BYTES = 12;
const TWO_POW_32 = 2 ** 32;

export interface IndexSummary {
  coveredLogBytes: number;
  nextOffset: number;
  maxTimestamp: number;
  /** Highest leader epoch of the segment's batches. */
  epoch: number;
}

export class SegmentIndex {
  private relativeOffsets: number[] = [];
  private offsetPositions: number[] = [];
  private timestamps: number[] = [];
  private timePositions: number[] = [];
  private bytesSinceEntry = Number.POSITIVE_INFINITY;
  private maxTimestampSoFar = 0;

  constructor(readonly baseOffset: number, readonly intervalBytes: number) {}

  /** Records a batch appended at `position`; call in log order. */
  addBatch(position: number, batchBaseOffset: number, batchBytes: number, batchMaxTimestamp: number): void {
    if (this.bytesSinceEntry >= this.intervalBytes) {
      this.relativeOffsets.push(batchBaseOffset - this.baseOffset);
      this.offsetPositions.push(position);
      this.timestamps.push(this.maxTimestampSoFar);
      this.timePositions.push(position);
      this.bytesSinceEntry = 0;
    }
    this.bytesSinceEntry += batchBytes;
    if (batchMaxTimestamp > this.maxTimestampSoFar) this.maxTimestampSoFar = batchMaxTimestamp;
  }

  get maxTimestamp(): number {
    return this.maxTimestampSoFar;
  }

  get entryCount(): number {
    return this.relativeOffsets.length;
  }

  lookupOffset(offset: number): number {
    const target = offset - this.baseOffset;
    const found = lastIndexAtMost(this.relativeOffsets, target);
    return found < 0 ? 0 : (this.offsetPositions[found] ?? 0);
  }

  lookupTime(timestamp: number): number {
    // Entries' maxTimestampBefore never decreases, so "last entry below t" is a binary search.
    const found = lastIndexAtMost(this.timestamps, timestamp - 1);
    return found < 0 ? 0 : (this.timePositions[found] ?? 0);
  }

  /**
   * Where a read that wants the bytes up to `limit` should stop so that it does not cut a
   * batch: the last indexed batch start in (position, limit], or, when the batch at
   * `position` runs past `limit`, the first indexed batch start after `limit`. Null when the
   * index knows no such start (the caller reads up to `limit` and handles a cut batch).
   * Every indexed position is a batch start, so the answer is a batch boundary.
   */
  batchBoundaryNear(position: number, limit: number): number | null {
    const before = lastIndexAtMost(this.offsetPositions, limit);
    const atOrBefore = before < 0 ? null : (this.offsetPositions[before] ?? null);
    if (atOrBefore !== null && atOrBefore > position) return atOrBefore;
    return this.offsetPositions[before + 1] ?? null;
  }

  /** Drops entries at or after `position` (truncation). */
  truncateTo(position: number, maxTimestampBefore: number): void {
    const keep = this.offsetPositions.findIndex((entry) => entry >= position);
    if (keep >= 0) {
      this.relativeOffsets.length = keep;
      this.offsetPositions.length = keep;
      this.timestamps.length = keep;
      this.timePositions.length = keep;
    }
    this.bytesSinceEntry = Number.POSITIVE_INFINITY;
    this.maxTimestampSoFar = maxTimestampBefore;
  }

  encodeOffsetIndex(summary: IndexSummary): Buffer {
    const count = this.relativeOffsets.length;
    const buffer = Buffer.alloc(INDEX_HEADER_BYTES + count * OFFSET_ENTRY_BYTES);
    for (let i = 0; i < count; i += 1) {
      const at = INDEX_HEADER_BYTES + i * OFFSET_ENTRY_BYTES;
      buffer.writeUInt32LE(this.relativeOffsets[i] ?? 0, at);
      buffer.writeUInt32LE(this.offsetPositions[i] ?? 0, at + 4);
    }
    writeIndexHeader(buffer, OFFSET_INDEX_KIND, OFFSET_ENTRY_BYTES, summary, count);
    return buffer;
  }

  encodeTimeIndex(summary: IndexSummary): Buffer {
    const count = this.timestamps.length;
    const buffer = Buffer.alloc(INDEX_HEADER_BYTES + count * TIME_ENTRY_BYTES);
    for (let i = 0; i < count; i += 1) {
      const at = INDEX_HEADER_BYTES + i * TIME_ENTRY_BYTES;
      writeU64(buffer, this.timestamps[i] ?? 0, at);
      buffer.writeUInt32LE(this.timePositions[i] ?? 0, at + 8);
    }
    writeIndexHeader(buffer, TIME_INDEX_KIND, TIME_ENTRY_BYTES, summary, count);
    return buffer;
  }

  /**
   * Rebuilds an index from its two files. Returns null (rebuild from the log) when either file
   * is damaged, of another version, or was written for a different log size.
   */
  static decode(baseOffset: number, intervalBytes: number, offsetFile: Buffer, timeFile: Buffer, logBytes: number): { index: SegmentIndex; summary: IndexSummary } | null {
    const offsetHeader = checkIndexFile(offsetFile, OFFSET_INDEX_KIND);
    const timeHeader = checkIndexFile(timeFile, TIME_INDEX_KIND);
    if (offsetHeader.kind === 'invalid' || timeHeader.kind === 'invalid') return null;
    if (offsetHeader.summary.coveredLogBytes !== logBytes || timeHeader.summary.coveredLogBytes !== logBytes) return null;
    if (offsetHeader.count !== timeHeader.count) return null;
    const index = new SegmentIndex(baseOffset, intervalBytes);
    let previousPosition = -1;
    for (let i = 0; i < offsetHeader.count; i += 1) {
      const at = INDEX_HEADER_BYTES + i * OFFSET_ENTRY_BYTES;
      const position = offsetFile.readUInt32LE(at + 4);
      const timeAt = INDEX_HEADER_BYTES + i * TIME_ENTRY_BYTES;
      if (position <= previousPosition || position >= logBytes || timeFile.readUInt32LE(timeAt + 8) !== position) return null;
      previousPosition = position;
      index.relativeOffsets.push(offsetFile.readUInt32LE(at));
      index.offsetPositions.push(position);
      index.timestamps.push(readU64(timeFile, timeAt));
      index.timePositions.push(position);
    }
    index.maxTimestampSoFar = offsetHeader.summary.maxTimestamp;
    // Appends after a clean reopen start a new index entry at once; harmless and simple.
    return { index, summary: offsetHeader.summary };
  }
}

function lastIndexAtMost(sorted: number[], target: number): number {
  let low = 0;
  let high = sorted.length - 1;
  let found = -1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    if ((sorted[middle] ?? 0) <= target) {
      found = middle;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return found;
}

function writeU64(buffer: Buffer, value: number, position: number): void {
  buffer.writeUInt32LE(value % TWO_POW_32, position);
  buffer.writeUInt32LE(Math.floor(value / TWO_POW_32), position + 4);
}

function readU64(buffer: Buffer, position: number): number {
  return buffer.readUInt32LE(position) + buffer.readUInt32LE(position + 4) * TWO_POW_32;
}

/** Checksum of an index file: everything but the checksum field itself. */
export function indexChecksum(buffer: Buffer): bigint {
  return checksum64(Buffer.concat([buffer.subarray(0, 40), buffer.subarray(INDEX_HEADER_BYTES)]));
}

function writeIndexHeader(buffer: Buffer, kind: number, entryBytes: number, summary: IndexSummary, count: number): void {
  buffer.writeUInt32LE(INDEX_MAGIC, 0);
  buffer.writeUInt8(kind, 4);
  buffer.writeUInt8(INDEX_VERSION, 5);
  buffer.writeUInt16LE(entryBytes, 6);
  writeU64(buffer, summary.coveredLogBytes, 8);
  writeU64(buffer, summary.nextOffset, 16);
  writeU64(buffer, summary.maxTimestamp, 24);
  buffer.writeUInt32LE(count, 32);
  buffer.writeUInt32LE(summary.epoch, 36);
  buffer.writeBigUInt64LE(indexChecksum(buffer), 40);
}

export type IndexFileCheck =
  | { kind: 'valid'; summary: IndexSummary; count: number }
  | { kind: 'invalid'; reason: string };

/** Checks one index file's header, length and checksum, saying why it is refused. */
export function checkIndexFile(buffer: Buffer, kind: number): IndexFileCheck {
  const entryBytes = kind === OFFSET_INDEX_KIND ? OFFSET_ENTRY_BYTES : TIME_ENTRY_BYTES;
  if (buffer.length < INDEX_HEADER_BYTES) return { kind: 'invalid', reason: `${buffer.length} bytes, shorter than the ${INDEX_HEADER_BYTES}-byte header` };
  if (buffer.readUInt32LE(0) !== INDEX_MAGIC) return { kind: 'invalid', reason: 'bad magic number' };
  if (buffer.readUInt8(4) !== kind) return { kind: 'invalid', reason: `index kind ${buffer.readUInt8(4)}, expected ${kind}` };
  if (buffer.readUInt8(5) !== INDEX_VERSION) return { kind: 'invalid', reason: `unknown index version ${buffer.readUInt8(5)}` };
  if (buffer.readUInt16LE(6) !== entryBytes) return { kind: 'invalid', reason: `entry size ${buffer.readUInt16LE(6)}, expected ${entryBytes}` };
  const count = buffer.readUInt32LE(32);
  if (buffer.length !== INDEX_HEADER_BYTES + count * entryBytes) return { kind: 'invalid', reason: `${buffer.length} bytes for ${count} entries` };
  if (indexChecksum(buffer) !== buffer.readBigUInt64LE(40)) return { kind: 'invalid', reason: 'checksum mismatch' };
  return {
    kind: 'valid',
    summary: { coveredLogBytes: readU64(buffer, 8), nextOffset: readU64(buffer, 16), maxTimestamp: readU64(buffer, 24), epoch: buffer.readUInt32LE(36) },
    count,
  };
}
