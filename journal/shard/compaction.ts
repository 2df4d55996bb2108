// Compaction of one sealed segment: rewrite it keeping only the records `keep` accepts.
// Batches keep their leader epoch and their records keep their offsets (a rewritten batch's
// base is its first kept record), so readers and replication see the same offsets as before.
// The result is written to `<segment>.log.compacting` and fsynced; the shard swaps it in.
import { JournalErrors, ioError, isShardlineError } from '../errors.js';
import type { JournalFile, JournalFileSystem } from '../file-system.js';
import type { JournalRecord } from '../record.js';
import { decodeBatchRecords, encodeBatch, isControlBatch, readBatchHeader, sealBatch } from '../segment/batch-format.js';
import { remainingAfter, type Segment } from '../segment/segment.js';

export interface SegmentRewrite {
  path: string;
  recordsKept: number;
  recordsRemoved: number;
  bytes: number;
}

const WRITE_CHUNK_BYTES = 4 * 1024 * 1024;

/** Returns null when every record is kept (nothing to rewrite). */
export async function compactSegment(fs: JournalFileSystem, segment: Segment, keep: (record: JournalRecord) => boolean): Promise<SegmentRewrite | null> {
  const path = `${segment.logPath}.compacting`;
  let handle: JournalFile | null = null;
  const rewrite: SegmentRewrite = { path, recordsKept: 0, recordsRemoved: 0, bytes: 0 };
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  try {
    handle = await fs.open(path, 'w');
    const output = handle;
    let written = 0;
    const flush = async () => {
      let chunk = pending;
      const end = written + pendingBytes;
      // A writev may write less than asked (a nearly full disk); the rest follows.
      while (written < end) {
        const { bytesWritten } = await output.writev(chunk, written);
        written += bytesWritten;
        if (written < end) chunk = remainingAfter(chunk, bytesWritten);
      }
      pending = [];
      pendingBytes = 0;
    };
    const batches: { position: number; batchBytes: number }[] = [];
    const scan = await segment.scan(segment.visibleBytes, segment.baseOffset, 0, (batch) => batches.push({ position: batch.position, batchBytes: batch.header.batchBytes }));
    // A rewrite of a damaged segment would keep only the batches before the damage and drop
    // everything after it for good; leave such a segment alone for an operator to restore.
    if (scan.stop.kind !== 'end') {
      const reason = scan.stop.kind === 'invalid' ? scan.stop.reason : 'torn batch';
      throw JournalErrors.corruptBatch.create({ segment: segment.name, position: scan.stop.position }, `${reason} in segment ${segment.name}, byte ${scan.stop.position}; compaction skipped it`);
    }
    for (const { position, batchBytes } of batches) {
      const bytes = await segment.read(position, batchBytes);
      const header = readBatchHeader(bytes, 0);
      const records = decodeBatchRecords(bytes, 0, header);
      // A control batch (an epoch start) stays: replicas rebuild their epoch history from it.
      const kept = isControlBatch(header) ? records : records.filter(keep);
      rewrite.recordsRemoved += records.length - kept.length;
      rewrite.recordsKept += kept.length;
      const first = kept[0];
      if (first === undefined) continue;
      const batch = kept.length === records.length
        ? bytes
        : encodeBatch(kept.map((record) => ({ offsetDelta: record.offset - first.offset, timestamp: record.timestamp, key: record.key, value: record.value, headers: record.headers })));
      if (batch !== bytes) sealBatch(batch, first.offset, header.leaderEpoch);
      pending.push(batch);
      pendingBytes += batch.length;
      rewrite.bytes += batch.length;
      if (pendingBytes >= WRITE_CHUNK_BYTES) await flush();
    }
    await flush();
    await output.sync();
  } catch (error) {
    await handle?.close().catch(() => undefined);
    handle = null;
    await fs.unlink(path).catch(() => undefined);
    if (isShardlineError(error)) throw error;
    throw ioError('compact', path, error, { segment: segment.name });
  } finally {
    await handle?.close();
  }
  if (rewrite.recordsRemoved === 0) {
    await fs.unlink(path).catch(() => undefined);
    return null;
  }
  return rewrite;
}
