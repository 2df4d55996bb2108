// The maintenance of a shard: truncation (a replication follower cutting a divergent tail),
// retention and offset-based segment deletion, and compaction. Each structural change runs
// under the shard's write lock, between the writer's group commits; compaction's rewrite runs
// outside it, so appends go on meanwhile. A step that fails part way marks the shard failed
// (ShardState.failStructure), and the writer reloads it from its files before taking appends.
import { JournalErrors, ioError, isShardlineError } from '../errors.js';
import { encodeBatch, lastOffsetOf, sealBatch } from '../segment/batch-format.js';
import { Segment, syncDirectory } from '../segment/segment.js';
import { compactSegment } from './compaction.js';
import { checkOffsetArgument } from './read-limits.js';
import { segmentsBelow, segmentsToDelete } from './retention.js';
import type { ShardReader } from './shard-reader.js';
import type { ShardState } from './shard-state.js';
import { clearTruncationIntent, recordTruncationIntent } from './truncation-intent.js';

export interface CompactionReport {
  segmentsRewritten: number;
  /** Segments left as they are because of damage (logged); `shardline shard verify` locates it. */
  segmentsSkipped: number;
  recordsRemoved: number;
  bytesBefore: number;
  bytesAfter: number;
}

export class ShardMaintenance {
  constructor(
    private readonly state: ShardState,
    /** Truncation re-encodes a straddling batch and compaction finds each key's latest record through it. */
    private readonly reader: ShardReader,
  ) {}

  /**
   * Removes every record with an offset above `offset`; the next append gets the offset after
   * the last record kept. `offset` may be startOffset - 1 (empty the shard). For replication:
   * a follower cuts entries that diverge from its new leader.
   */
  async truncateAfter(offset: number): Promise<void> {
    this.state.assertOpen();
    checkOffsetArgument(offset, 'offset', this.state.name);
    // Under the compaction lock too: a compaction swapping in a rewrite made before the cut
    // would bring truncated records back.
    await this.state.compactionLock.run(() => this.state.writeLock.run(async () => {
      if (offset < this.state.startOffset - 1 || offset >= this.state.nextOffset) {
        throw JournalErrors.offsetOutOfRange.create({ shard: this.state.name, offset }, offset, this.state.startOffset - 1, this.state.nextOffset - 1);
      }
      if (offset === this.state.nextOffset - 1) return;
      if (this.state.failure !== null) throw this.state.failure;
      try {
        // The first segment is cut in place, never deleted: its file name carries the start
        // offset, so a crash here cannot restart the shard's offsets at 0.
        let removed = false;
        while (this.state.segments.length > 1 && this.state.active.baseOffset > offset) {
          // Out of the list only once its files are gone (as in cutBack): after a failed
          // delete the reopen must still know this file's sync history, or it would adopt
          // pages a failed fdatasync doomed (seed 1375433083 of the faults variant).
          await this.state.active.retire(true);
          this.state.segments.pop();
          removed = true;
        }
        // Durably gone before the segment that stays is cut: a power cut in between must not
        // bring later segments back behind a shortened one (a hole in the offsets).
        if (removed) await syncDirectory(this.state.fs, this.state.directory);
        await this.truncateActive(offset);
        if (Math.max(this.state.active.nextOffset, this.state.active.baseOffset) < offset + 1) {
          // Compaction had removed the last records kept: without a segment named after the
          // next offset, the next append (and the next open) would hand out their offsets again.
          this.state.segments.push(await Segment.create(this.state.fs, this.state.directory, offset + 1, this.state.settings));
          await syncDirectory(this.state.fs, this.state.directory);
        }
      } catch (error) {
        this.state.failStructure(error, 'truncate');
      }
      this.state.nextOffset = Math.max(this.state.active.nextOffset, this.state.active.baseOffset);
      this.state.visibleNextOffset = this.state.nextOffset;
      this.state.epoch = Math.max(0, ...this.state.segments.map((segment) => segment.epoch));
      this.state.activeSinceMs = this.state.active.sizeBytes === 0 ? null : this.state.active.firstTimestamp;
    }));
  }

  /** Cuts the active segment after `offset`, re-encoding a batch that straddles it. */
  private async truncateActive(offset: number): Promise<void> {
    const segment = this.state.active;
    let cut: { position: number; straddling: Buffer | null } | null = null;
    await segment.scan(segment.sizeBytes, segment.baseOffset, 0, (batch) => {
      if (cut !== null || lastOffsetOf(batch.header) <= offset) return;
      cut = { position: batch.position, straddling: batch.header.baseOffset <= offset ? Buffer.alloc(0) : null };
    }, segment.index.lookupOffset(offset));
    const found = cut as { position: number; straddling: Buffer | null } | null;
    if (found === null) return;
    let kept: Buffer | null = null;
    if (found.straddling !== null) {
      const { bytes, header } = await this.reader.readVerifiedBatch(segment, found.position);
      const records = this.reader.decodeVerified(segment, found.position, bytes, header).filter((record) => record.offset <= offset);
      kept = encodeBatch(records.map((record) => ({ offsetDelta: record.offset - header.baseOffset, timestamp: record.timestamp, key: record.key, value: record.value, headers: record.headers })));
      sealBatch(kept, header.baseOffset, header.leaderEpoch);
    }
    if (kept === null) {
      await segment.truncateTo(found.position);
    } else {
      // The shortened batch goes over the old one, which an interrupted write would leave
      // half old, half new: so it is recorded durably beside the segment first, and every
      // open redoes it until it is cleared (truncation-intent.ts).
      const intent = { position: found.position, batch: kept };
      await recordTruncationIntent(this.state.fs, this.state.directory, segment.baseOffset, intent);
      await segment.overwriteAt(intent.position, intent.batch);
      await segment.truncateTo(intent.position + intent.batch.length);
      await clearTruncationIntent(this.state.fs, this.state.directory, segment.baseOffset);
    }
    segment.makeVisible();
  }

  /**
   * Empties the shard and makes it start at `offset` (>= its end). The old segments go newest
   * first and the directory is synced before the new empty segment is created (and synced): a
   * crash in between leaves a prefix of the old log, or no segment at all (the shard then opens
   * empty at 0), never old records beside the new start. The caller's next attempt (the
   * follower's fetch is again below its leader's log start) empties it again.
   */
  async restartAt(offset: number): Promise<void> {
    this.state.assertOpen();
    checkOffsetArgument(offset, 'offset', this.state.name);
    await this.state.compactionLock.run(() => this.state.writeLock.run(async () => {
      if (offset < this.state.nextOffset) {
        throw JournalErrors.offsetOutOfRange.create({ shard: this.state.name, offset }, offset, this.state.nextOffset, Number.MAX_SAFE_INTEGER);
      }
      if (this.state.failure !== null) throw this.state.failure;
      try {
        // Readers keep the old segments in view until the new one replaces them (a segment a
        // reader holds stays readable after its files are gone).
        for (const segment of [...this.state.segments].reverse()) await segment.retire(true);
        await syncDirectory(this.state.fs, this.state.directory);
        const fresh = await Segment.create(this.state.fs, this.state.directory, offset, this.state.settings);
        this.state.segments = [fresh];
        await syncDirectory(this.state.fs, this.state.directory);
      } catch (error) {
        this.state.failStructure(error, 'restart');
      }
      this.state.nextOffset = Math.max(this.state.active.nextOffset, this.state.active.baseOffset);
      this.state.visibleNextOffset = this.state.nextOffset;
      this.state.epoch = Math.max(0, ...this.state.segments.map((segment) => segment.epoch));
      this.state.activeSinceMs = null;
      this.state.context.logger.info({ shard: this.state.name, startOffset: offset }, 'shard emptied to start at a later offset');
    }));
  }

  /** Deletes whole sealed segments past the age or size limit; returns how many went. */
  async enforceRetention(): Promise<number> {
    this.state.assertOpen();
    if (this.state.config.retentionMs === null && this.state.config.retentionBytes === null) return 0;
    return this.state.writeLock.run(async () => {
      if (this.state.failure !== null) return 0;
      // Never a segment with a record a replication truncation could still remove.
      const count = Math.min(segmentsToDelete(this.state.segments, this.state.config, this.state.context.clock()), segmentsBelow(this.state.segments, this.state.maintenanceEnd()));
      const removed = this.state.segments.splice(0, count);
      try {
        for (const segment of removed) await segment.retire(true);
        if (count > 0) await syncDirectory(this.state.fs, this.state.directory);
      } catch (error) {
        this.state.failStructure(error, 'retention');
      }
      if (count > 0) {
        this.state.context.logger.info({ shard: this.state.name, segments: count, startOffset: this.state.startOffset }, 'retention deleted segments');
      }
      return count;
    });
  }

  /**
   * Deletes the sealed segments whose records all lie below `offset` (oldest first, never the
   * active segment); the start offset moves to the first kept segment. For an owner that has
   * rewritten what it still needs at or after `offset` (the placement Raft log's checkpoint),
   * so disk use stays bounded without age or size retention. Returns how many went.
   */
  async dropSegmentsBelow(offset: number): Promise<number> {
    this.state.assertOpen();
    checkOffsetArgument(offset, 'offset', this.state.name);
    return this.state.writeLock.run(async () => {
      if (this.state.failure !== null) throw this.state.failure;
      const count = segmentsBelow(this.state.segments, Math.min(offset, this.state.maintenanceEnd()));
      const removed = this.state.segments.splice(0, count);
      try {
        for (const segment of removed) await segment.retire(true);
        if (count > 0) await syncDirectory(this.state.fs, this.state.directory);
      } catch (error) {
        this.state.failStructure(error, 'segment deletion');
      }
      if (count > 0) this.state.context.logger.info({ shard: this.state.name, segments: count, startOffset: this.state.startOffset }, 'deleted segments below an offset');
      return count;
    });
  }

  /**
   * Compacts sealed segments of a compacted shard: a record survives only if it is the latest
   * of its key (as of the start of the run); a tombstone that is the latest goes once it is
   * older than tombstoneRetentionMs. The rewrite runs outside the write lock; only the swap of
   * each rewritten segment takes it, so appends continue meanwhile.
   */
  async compact(): Promise<CompactionReport> {
    this.state.assertOpen();
    if (!this.state.config.compacted) throw JournalErrors.invalidArgument.create({ shard: this.state.name }, 'shard', this.state.name, 'is not a compacted shard (compacted: false)');
    return this.state.compactionLock.run(async () => {
      const report: CompactionReport = { segmentsRewritten: 0, segmentsSkipped: 0, recordsRemoved: 0, bytesBefore: 0, bytesAfter: 0 };
      const sealed = this.state.segments.slice(0, -1);
      if (sealed.length === 0) return report;
      let latest: Map<string, number>;
      // Fixed for the run: the limit only grows, and what lay below it stays there.
      const limit = this.state.maintenanceEnd();
      try {
        latest = await this.latestOffsetPerKey(limit);
      } catch (error) {
        // Damage hides which record is the latest of its keys; compacting around it could drop
        // the only readable value of a key. Leave the shard alone until it is repaired.
        if (!isShardlineError(error, JournalErrors.corruptBatch.code)) throw error;
        this.state.context.logger.error({ shard: this.state.name, err: error }, 'compaction skipped a damaged shard');
        return { ...report, segmentsSkipped: sealed.length };
      }
      const tombstoneCutoff = this.state.context.clock() - this.state.config.tombstoneRetentionMs;
      for (const segment of sealed) {
        if (!this.state.segments.includes(segment)) continue;
        segment.retain();
        let rewrite;
        try {
          // Records at or past the limit stay as they are (a truncation may still remove them).
          rewrite = await compactSegment(this.state.fs, segment, (record) => record.offset >= limit || (record.key !== null && latest.get(record.key.toString('latin1')) === record.offset && !(record.value === null && record.timestamp < tombstoneCutoff)));
        } catch (error) {
          // One damaged segment must not stop the others from being compacted.
          if (!isShardlineError(error, JournalErrors.corruptBatch.code)) throw error;
          this.state.context.logger.error({ shard: this.state.name, segment: segment.name, err: error }, 'compaction skipped a damaged segment');
          report.segmentsSkipped += 1;
          continue;
        } finally {
          segment.release();
        }
        if (rewrite === null) continue;
        await this.state.writeLock.run(async () => {
          if (this.state.failure !== null) {
            await this.state.fs.unlink(rewrite.path).catch(() => undefined);
            throw this.state.failure;
          }
          await this.swapCompacted(segment, rewrite.path, rewrite.recordsKept).catch((error: unknown) => this.state.failStructure(error, 'compaction'));
        });
        report.segmentsRewritten += 1;
        report.recordsRemoved += rewrite.recordsRemoved;
        report.bytesBefore += segment.sizeBytes;
        report.bytesAfter += rewrite.bytes;
      }
      return report;
    });
  }

  /** Each key's latest record below `end`: only a record that can no longer be truncated may supersede another. */
  private async latestOffsetPerKey(end: number): Promise<Map<string, number>> {
    const latest = new Map<string, number>();
    let next = this.state.startOffset;
    while (next < end) {
      const { records, next: after } = await this.reader.readRange(next, { maxRecords: 10_000, maxBytes: 16 * 1024 * 1024 });
      for (const record of records) if (record.key !== null && record.offset < end) latest.set(record.key.toString('latin1'), record.offset);
      if (after <= next) break;
      next = after;
    }
    return latest;
  }

  private async swapCompacted(segment: Segment, rewrittenPath: string, recordsKept: number): Promise<void> {
    const position = this.state.segments.indexOf(segment);
    if (position < 0 || position === this.state.segments.length - 1 || this.state.closed) {
      await this.state.fs.unlink(rewrittenPath).catch(() => undefined);
      return;
    }
    // The first segment stays, even empty, because its base offset is the shard's start offset:
    // compaction must not turn "read from 0" into an out-of-range error.
    if (recordsKept === 0 && position > 0) {
      this.state.segments.splice(position, 1);
      await this.state.fs.unlink(rewrittenPath).catch(() => undefined);
      await segment.retire(true);
    } else {
      try {
        await this.state.fs.rename(rewrittenPath, segment.logPath);
      } catch (error) {
        throw ioError('rename', rewrittenPath, error, { shard: this.state.name, segment: segment.name });
      }
      const { segment: replacement } = await Segment.open(this.state.fs, this.state.directory, segment.baseOffset, this.state.settings, false, segment.baseOffset, 0);
      try {
        await replacement.writeIndexFiles();
      } catch (error) {
        await replacement.close();
        throw error;
      }
      this.state.segments[position] = replacement;
      await segment.retire(false);
    }
    await syncDirectory(this.state.fs, this.state.directory);
  }
}
