// A segment's .index and .timeindex files as the audit sees them. Whether the journal trusts
// them is decided by SegmentIndex.decode, the same function the journal uses; this module adds
// only what decode does not say: why a file was refused, and its raw entries, so the audit can
// check each entry against the log. The byte layout is documented in segment-index.ts.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { ioError } from '../errors.js';
import { INDEX_HEADER_BYTES, OFFSET_ENTRY_BYTES, TIME_ENTRY_BYTES, SegmentIndex, checkIndexFile, type IndexSummary } from '../segment/segment-index.js';
import { DEFAULT_SHARD_CONFIG } from '../shard/shard-config.js';
import type { SegmentFile } from './data-directory.js';

export { OFFSET_ENTRY_BYTES, TIME_ENTRY_BYTES };

export interface IndexFiles {
  offsetFile: Buffer | null;
  timeFile: Buffer | null;
}

export interface IndexEntry {
  /** Entry number, the same in both files. */
  entry: number;
  relativeOffset: number;
  position: number;
  maxTimestampBefore: number;
}

export type IndexFileDiagnosis =
  | { kind: 'missing' }
  | { kind: 'invalid'; reason: string }
  | { kind: 'stale'; coveredLogBytes: number }
  | { kind: 'fresh' };

export async function readIndexFiles(file: SegmentFile): Promise<IndexFiles> {
  return { offsetFile: await readIfPresent(file.offsetIndexPath), timeFile: await readIfPresent(file.timeIndexPath) };
}

async function readIfPresent(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError('read', path, error);
  }
}

export function indexFileNames(file: SegmentFile): { offset: string; time: string } {
  return { offset: basename(file.offsetIndexPath), time: basename(file.timeIndexPath) };
}

/**
 * The index the journal would use for this segment, or null where it would rebuild one from
 * the log. decode's interval only shapes entries added later, which the audit never adds.
 */
export function trustedIndex(file: SegmentFile, files: IndexFiles, logBytes: number): { index: SegmentIndex; summary: IndexSummary } | null {
  if (files.offsetFile === null || files.timeFile === null) return null;
  return SegmentIndex.decode(file.baseOffset, DEFAULT_SHARD_CONFIG.indexIntervalBytes, files.offsetFile, files.timeFile, logBytes);
}

/** Both files, when the journal would trust them. */
export function trustedIndexFiles(file: SegmentFile, files: IndexFiles, logBytes: number): { offsetFile: Buffer; timeFile: Buffer } | null {
  const { offsetFile, timeFile } = files;
  return offsetFile !== null && timeFile !== null && trustedIndex(file, files, logBytes) !== null ? { offsetFile, timeFile } : null;
}

/** Why one index file (`kind`: OFFSET_INDEX_KIND or TIME_INDEX_KIND) would be refused, in header field order. */
export function diagnoseIndexFile(bytes: Buffer | null, kind: number, logBytes: number): IndexFileDiagnosis {
  if (bytes === null) return { kind: 'missing' };
  const check = checkIndexFile(bytes, kind);
  if (check.kind === 'invalid') return check;
  const coveredLogBytes = check.summary.coveredLogBytes;
  if (coveredLogBytes !== logBytes) return { kind: 'stale', coveredLogBytes };
  return { kind: 'fresh' };
}

/**
 * The summary in one file's header. decode uses the offset index's only; the time index
 * repeats it, and verify holds both to the log.
 */
export function readIndexSummary(bytes: Buffer, kind: number): IndexSummary {
  const check = checkIndexFile(bytes, kind);
  if (check.kind === 'invalid') throw new Error(`readIndexSummary of a refused index file: ${check.reason}`);
  return check.summary;
}

/** The entries of an index that decode accepted (so both files agree on count and positions). */
export function readIndexEntries(files: { offsetFile: Buffer; timeFile: Buffer }): IndexEntry[] {
  const count = files.offsetFile.readUInt32LE(32);
  const entries: IndexEntry[] = [];
  for (let entry = 0; entry < count; entry += 1) {
    const offsetAt = INDEX_HEADER_BYTES + entry * OFFSET_ENTRY_BYTES;
    const timeAt = INDEX_HEADER_BYTES + entry * TIME_ENTRY_BYTES;
    entries.push({
      entry,
      relativeOffset: files.offsetFile.readUInt32LE(offsetAt),
      position: files.offsetFile.readUInt32LE(offsetAt + 4),
      maxTimestampBefore: readU64(files.timeFile, timeAt),
    });
  }
  return entries;
}

function readU64(buffer: Buffer, position: number): number {
  return buffer.readUInt32LE(position) + buffer.readUInt32LE(position + 4) * 2 ** 32;
}
