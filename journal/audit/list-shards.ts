// listShardsOnDisk: what each shard of a data directory holds, read without the journal lock
// (so it works beside a live journal) and without changing a byte. It is meant to be cheap: a
// segment's figures come from its index header when the journal would trust that header, and
// from a scan of its log otherwise (normally only the active segment of a live journal).
import { isShardlineError } from '../../base/index.js';
import { BATCH_HEADER_BYTES, BATCH_MAGIC, readBatchHeader } from '../segment/batch-format.js';
import type { ShardConfig } from '../shard/shard-config.js';
import { Shard } from '../shard/shard.js';
import { listShardFiles, listShardNames, openJournalDirectory, type SegmentFile } from './data-directory.js';
import { readIndexFiles, trustedIndex } from './index-files.js';
import { ReadOnlyLog, scanLog } from './log-file.js';

export interface ShardOnDisk {
  name: string;
  /** Null when shard.json is missing or invalid; configError then holds the journal's error code. */
  config: ShardConfig | null;
  configError: string | null;
  segmentCount: number;
  /** Total size of the segment logs. */
  sizeBytes: number;
  /** Base offset of the first segment. */
  startOffset: number;
  /** Offset after the last valid batch; a damaged or torn tail is not counted. */
  nextOffset: number;
  epoch: number;
  /** nextOffset - startOffset: offsets are dense except where compaction left gaps, so null for compacted shards. */
  recordCount: number | null;
  /** Timestamp of the first record of the first segment; null when the shard is empty. */
  firstTimestamp: number | null;
  /** Largest record timestamp; null when the shard is empty. */
  maxTimestamp: number | null;
}

interface SegmentFigures {
  nextOffset: number;
  epoch: number;
  maxTimestamp: number | null;
  firstTimestamp: number | null;
}

export async function listShardsOnDisk(dataDir: string): Promise<ShardOnDisk[]> {
  const journalDirectory = await openJournalDirectory(dataDir);
  const shards: ShardOnDisk[] = [];
  for (const name of (await listShardNames(journalDirectory)).names) shards.push(await describeShard(journalDirectory, name));
  return shards;
}

async function describeShard(journalDirectory: string, name: string): Promise<ShardOnDisk> {
  const files = await listShardFiles(journalDirectory, name);
  const shard: ShardOnDisk = {
    name,
    config: null,
    configError: null,
    segmentCount: 0,
    sizeBytes: 0,
    startOffset: files.segments[0]?.baseOffset ?? 0,
    nextOffset: 0,
    epoch: 0,
    recordCount: null,
    firstTimestamp: null,
    maxTimestamp: null,
  };
  try {
    shard.config = await Shard.readConfig(files.directory, name);
  } catch (error) {
    if (!isShardlineError(error)) throw error;
    shard.configError = error.code;
  }
  for (const file of files.segments) {
    // Chained like Shard.load: a segment's batches start at or after the previous one's end.
    const figures = await segmentFigures(file, Math.max(shard.nextOffset, file.baseOffset), shard.epoch);
    if (figures === null) continue;
    shard.segmentCount += 1;
    shard.sizeBytes += file.sizeBytes;
    shard.nextOffset = Math.max(figures.nextOffset, file.baseOffset);
    shard.epoch = Math.max(shard.epoch, figures.epoch);
    shard.firstTimestamp ??= figures.firstTimestamp;
    if (figures.maxTimestamp !== null) shard.maxTimestamp = Math.max(shard.maxTimestamp ?? 0, figures.maxTimestamp);
  }
  if (shard.config !== null && !shard.config.compacted) shard.recordCount = shard.nextOffset - shard.startOffset;
  return shard;
}

/** Null when the segment vanished (retention on a live journal) after it was listed. */
async function segmentFigures(file: SegmentFile, expectedNextOffset: number, epoch: number): Promise<SegmentFigures | null> {
  const log = await ReadOnlyLog.open(file.logPath);
  if (log === null) return null;
  try {
    const firstTimestamp = await firstTimestampOf(log);
    const trusted = trustedIndex(file, await readIndexFiles(file), log.sizeBytes);
    if (trusted !== null) {
      const { nextOffset, epoch: segmentEpoch, maxTimestamp } = trusted.summary;
      return { nextOffset, epoch: Math.max(epoch, segmentEpoch), maxTimestamp: log.sizeBytes > 0 ? maxTimestamp : null, firstTimestamp };
    }
    let maxTimestamp: number | null = null;
    for await (const chunk of scanLog(log, 0, expectedNextOffset, epoch)) {
      for (const batch of chunk.batches) maxTimestamp = Math.max(maxTimestamp ?? 0, batch.header.maxTimestamp);
      if (chunk.end !== null) return { nextOffset: chunk.end.nextOffset, epoch: chunk.end.epoch, maxTimestamp, firstTimestamp };
    }
    throw new Error('scanLog ended without an end chunk');
  } finally {
    await log.close();
  }
}

/** From the first batch header alone (not checksummed: a listing, not a verification). */
async function firstTimestampOf(log: ReadOnlyLog): Promise<number | null> {
  const header = await log.read(0, BATCH_HEADER_BYTES);
  if (header.length < BATCH_HEADER_BYTES || header.readUInt32LE(0) !== BATCH_MAGIC) return null;
  return readBatchHeader(header, 0).firstTimestamp;
}
