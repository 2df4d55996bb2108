// The write side of a shard: the append queue, the pipelined group commit, segment rolls, the
// interval fdatasync, and the failure handling that cuts the shard back to its last durable
// end when a write or a sync fails. It runs under the shard's write lock and is the only part
// that assigns offsets or moves the visible end forward.
import { join } from 'node:path';
import { JournalErrors, ShardlineError, ioError } from '../errors.js';
import type { AppendResult, RecordInput } from '../record.js';
import { checkBatch, encodeBatch, markControlBatch, readBatchHeader, sealBatch, type BatchHeader } from '../segment/batch-format.js';
import { Segment, syncDirectory } from '../segment/segment.js';
import { checkEpochArgument } from './read-limits.js';
import { prepareRecords } from './record-validation.js';
import { reloadShard } from './shard-load.js';
import type { ShardState } from './shard-state.js';

/** One group commit writes at most this much before it fsyncs and acknowledges. */
const GROUP_COMMIT_MAX_BYTES = 32 * 1024 * 1024;
const MAX_RELATIVE_OFFSET = 2 ** 32 - 2;
/** A failed shard is reopened for appends by the first append at least this long after the failure. */
export const RECOVERY_BACKOFF_MS = 1000;

export interface AppendOptions {
  /** Leader epoch to write the batch under; defaults to the shard's current epoch. */
  epoch?: number;
  /**
   * Write a control batch (replication's epoch start): stored and replicated like any batch,
   * skipped by every reader of records (batch-format.ts, CONTROL_BATCH_ATTRIBUTE).
   */
  control?: boolean;
}

interface PendingAppend {
  /** performance.now() when append() queued it. */
  queuedAt: number;
  batch: Buffer;
  lastOffsetDelta: number;
  epoch: number | undefined;
  /**
   * A batch already sealed by another replica (replication's append-as-stored): it keeps its
   * base offset, epoch and checksum, so it is written only if it starts at the log end.
   */
  stored: boolean;
  resolve: (result: AppendResult) => void;
  reject: (error: Error) => void;
}

interface WriteState {
  /** The active segment then; segments created after it are not part of this state. */
  activeBaseOffset: number;
  activeBytes: number;
  nextOffset: number;
  epoch: number;
  activeSinceMs: number | null;
}

/** A group whose writev completed, waiting for its fdatasync and acknowledgement. */
interface WrittenGroup {
  /** The shard's state before the group was written: the durable end if it fails. */
  before: WriteState;
  /** Appends written, in offset order, with their results (stale-epoch ones left out). */
  appends: PendingAppend[];
  results: AppendResult[];
  /** Per segment written, its size after this group: what readers may see once it is durable. */
  ends: Map<Segment, number>;
  /** The shard's next offset after this group. */
  nextOffset: number;
  /** Batch bytes the group took off the queue (stale-epoch ones too), for the queue bound. */
  bytes: number;
}

export class ShardWriter {
  private pending: PendingAppend[] = [];
  /** Bytes of appends queued or written and not yet acknowledged (the maxQueuedAppendBytes bound). */
  private pendingBytes = 0;
  /** The append pipeline is running or about to (runPipeline, under the write lock). */
  private draining = false;
  /** Resolves the pipeline's idle wait when an append arrives during an fdatasync. */
  private wakePipeline: (() => void) | null = null;
  /** The pipeline's fdatasync in flight (settles, never rejects), for a roll to wait on. */
  private syncInFlight: Promise<void> | null = null;
  /** The durable end to cut back to before the shard takes appends again; null once cut. */
  private cutBackTo: WriteState | null = null;
  private unsyncedWrites = false;
  private intervalTimer: NodeJS.Timeout | null = null;
  /** Told each group's batches once written (not yet durable): see Shard.observeWrites. */
  private readonly writeListeners = new Set<(batches: readonly Buffer[]) => void>();

  constructor(private readonly state: ShardState) {}

  /** Appends are queued or being written: close() waits until they are settled. */
  get busy(): boolean {
    return this.pending.length > 0 || this.draining;
  }

  observeWrites(listener: (batches: readonly Buffer[]) => void): () => void {
    this.writeListeners.add(listener);
    return () => this.writeListeners.delete(listener);
  }

  /** Rejects the appends still queued (destroy: nothing more is written). */
  rejectQueued(error: Error): void {
    for (const append of this.pending.splice(0)) append.reject(error);
  }

  /**
   * Appends records as one batch. Resolves with their offsets once the batch is acknowledged
   * under the shard's durability mode; rejects with a coded error and writes nothing on bad
   * input.
   */
  append(records: readonly RecordInput[], options: AppendOptions = {}): Promise<AppendResult> {
    try {
      this.state.assertOpen();
      if (this.state.failure !== null && this.state.context.clock() - this.state.failedAt < RECOVERY_BACKOFF_MS) throw this.state.failure;
      const control = options.control === true;
      const batch = this.encode(records, control);
      if (control) markControlBatch(batch);
      // One append is always taken, so a batch larger than the bound is not refused forever.
      if (this.pending.length > 0 && this.pendingBytes + batch.length > this.state.config.maxQueuedAppendBytes) {
        throw JournalErrors.overloaded.create({ shard: this.state.name }, this.pendingBytes + batch.length, this.state.config.maxQueuedAppendBytes);
      }
      const epoch = options.epoch;
      checkEpochArgument(epoch, this.state.name);
      return new Promise<AppendResult>((resolve, reject) => {
        this.enqueue({ queuedAt: performance.now(), batch, lastOffsetDelta: records.length - 1, epoch, stored: false, resolve, reject });
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Appends a batch as another replica stored it (a follower copying its leader): the bytes are
   * written unchanged, so every replica holds the same batch, checksum included. The batch must
   * verify and start at the log end when it is written; its epoch must not be older than the
   * shard's. Acknowledged like append (after the fdatasync in fsync mode).
   */
  appendStored(batch: Buffer): Promise<AppendResult> {
    try {
      this.state.assertOpen();
      if (this.state.failure !== null && this.state.context.clock() - this.state.failedAt < RECOVERY_BACKOFF_MS) throw this.state.failure;
      const check = checkBatch(batch, 0, this.state.config.maxBatchBytes);
      if (check.kind !== 'valid' || check.header.batchBytes !== batch.length) {
        throw JournalErrors.corruptBatch.create({ shard: this.state.name }, check.kind === 'invalid' ? check.reason : `a stored batch of ${batch.length} bytes does not hold exactly one whole batch`);
      }
      return new Promise<AppendResult>((resolve, reject) => {
        this.enqueue({ queuedAt: performance.now(), batch, lastOffsetDelta: check.header.lastOffsetDelta, epoch: check.header.leaderEpoch, stored: true, resolve, reject });
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private enqueue(append: PendingAppend): void {
    this.pending.push(append);
    this.pendingBytes += append.batch.length;
    // writeGroup settles every append it takes; a failure past that is logged, not left floating.
    this.drain().catch((error: unknown) => this.state.context.logger.error({ shard: this.state.name, err: error }, 'append writer failed'));
  }

  private encode(records: readonly RecordInput[], control: boolean): Buffer {
    return encodeBatch(prepareRecords(records, this.state.config, this.state.name, this.state.context.clock(), control));
  }

  private async drain(): Promise<void> {
    if (this.draining) {
      // The pipeline may be idle waiting for an fdatasync: this append can be written meanwhile.
      this.wakePipeline?.();
      return;
    }
    this.draining = true;
    try {
      // The pipeline gives the lock up when someone else waits for it (truncation, retention,
      // a compaction swap, close), so they get in between groups as before pipelining.
      while (this.pending.length > 0) await this.state.writeLock.run(() => this.runPipeline());
    } finally {
      this.draining = false;
    }
  }

  private takeGroup(): PendingAppend[] {
    let bytes = 0;
    let count = 0;
    for (const append of this.pending) {
      if (count > 0 && bytes + append.batch.length > GROUP_COMMIT_MAX_BYTES) break;
      bytes += append.batch.length;
      count += 1;
    }
    return this.pending.splice(0, count);
  }

  /**
   * Group commit, pipelined (issue 16): one group's writev may run while the group before it
   * is in its fdatasync, so an append that arrives during a sync does not wait for it to end
   * before its bytes go to the file. Runs under the write lock until there is nothing to do or
   * another lock user waits. The rules that keep it durable:
   * - one writev at a time, in queue order, so the file holds groups in offset order;
   * - one fdatasync at a time, started when no write is in flight; it covers the groups whose
   *   writes had completed when it was called (Segment.sync records the size at its call as
   *   what it made durable), and the groups written during it wait for the next one, which they
   *   share (adaptive: one client at a low rate gets one sync per append, many clients share
   *   each sync);
   * - acknowledgements, visibility to readers and waiters go in offset order, group by group,
   *   only after the fdatasync that covers the group succeeded;
   * - a failed write or sync stops new work, lets what is in flight settle, acknowledges what a
   *   successful sync covered, and fails everything else through fail(), cut back to the end
   *   before the oldest group not acknowledged: the same path a failed group took before.
   * In interval and none modes a group is acknowledged when its write completes.
   */
  private async runPipeline(): Promise<void> {
    if (this.pending.length === 0) return;
    if (this.state.closed || this.state.failure !== null) {
      try {
        if (this.state.closed) throw JournalErrors.closed.create({ shard: this.state.name }, `shard ${this.state.name}`);
        await this.recover();
      } catch (error) {
        this.rejectAllPending(error instanceof ShardlineError ? error : ioError('append', this.state.directory, error, { shard: this.state.name }));
        return;
      }
    }
    const waitsForSync = this.state.config.durability === 'fsync';
    /** Written (or being synced), not acknowledged, oldest first. */
    const unacknowledged: WrittenGroup[] = [];
    let toSync: WrittenGroup[] = [];
    let writing: { group: PendingAppend[]; before: WriteState; done: Promise<void> } | null = null;
    let syncing: Promise<void> | null = null;
    let failedWrite: { group: PendingAppend[]; before: WriteState } | null = null;
    let failure: ShardlineError | null = null;
    const failWith = (error: unknown, operation: string): void => {
      failure ??= error instanceof ShardlineError ? error : ioError(operation, this.state.directory, error, { shard: this.state.name });
    };
    for (;;) {
      // A sync waits for the write in flight (one write, tens of µs) so it covers that group
      // too: started without it, the group would miss this sync and wait for the whole next one.
      if (failure === null && syncing === null && writing === null && toSync.length > 0) {
        const groups = toSync;
        toSync = [];
        syncing = this.syncGroups(groups).then(
          () => {
            unacknowledged.splice(0, groups.length);
            this.acknowledge(groups);
          },
          (error: unknown) => failWith(error, 'fdatasync'),
        );
        const done = syncing.finally(() => {
          syncing = null;
          this.syncInFlight = null;
        });
        this.syncInFlight = done;
        syncing = done;
      }
      if (failure === null && writing === null && this.pending.length > 0 && !this.state.writeLock.contended) {
        if (this.state.closed) {
          this.rejectAllPending(JournalErrors.closed.create({ shard: this.state.name }, `shard ${this.state.name}`));
        } else {
          const group = this.takeGroup();
          const before = this.writeState();
          const started: { group: PendingAppend[]; before: WriteState; done: Promise<void> } = { group, before, done: Promise.resolve() };
          started.done = this.writeGroup(group).then(
            (written) => {
              writing = null;
              unacknowledged.push(written);
              if (waitsForSync) {
                toSync.push(written);
              } else {
                this.unsyncedWrites = true;
                unacknowledged.shift();
                this.acknowledge([written]);
              }
            },
            (error: unknown) => {
              writing = null;
              failedWrite = started;
              failWith(error, 'append');
            },
          );
          writing = started;
        }
      }
      if (writing === null && syncing === null) {
        if (failure === null && toSync.length > 0) continue;
        break;
      }
      const wake = failure === null ? new Promise<void>((resolve) => { this.wakePipeline = resolve; }) : null;
      const running: Promise<void>[] = [];
      if (writing !== null) running.push((writing as { done: Promise<void> }).done);
      if (syncing !== null) running.push(syncing);
      if (wake !== null) running.push(wake);
      await Promise.race(running);
      this.wakePipeline = null;
    }
    if (failure === null) return;
    const error: ShardlineError = failure;
    const inFlight = failedWrite as { group: PendingAppend[]; before: WriteState } | null;
    const durableEnd = unacknowledged[0]?.before ?? inFlight?.before;
    if (durableEnd !== undefined && error.code !== JournalErrors.closed.code && error !== this.state.failure) await this.fail(error, durableEnd);
    for (const group of unacknowledged) {
      for (const append of group.appends) append.reject(error);
      this.pendingBytes -= group.bytes;
    }
    for (const append of inFlight?.group ?? []) {
      append.reject(error);
      this.pendingBytes -= append.batch.length;
    }
    this.rejectAllPending(error);
  }

  /** Groups in flight still count their bytes until they are settled. */
  private rejectAllPending(error: Error): void {
    for (const append of this.pending.splice(0)) {
      append.reject(error);
      this.pendingBytes -= append.batch.length;
    }
  }

  /**
   * Writes a group: assigns offsets, writes the batches with one writev per segment (rolling
   * where needed) and returns what its acknowledgement needs. A stale epoch is refused here.
   * Throws on a failed write; the pipeline then fails every append not acknowledged.
   */
  private async writeGroup(group: PendingAppend[]): Promise<WrittenGroup> {
    const written: WrittenGroup = { before: this.writeState(), appends: [], results: [], ends: new Map(), nextOffset: this.state.nextOffset, bytes: 0, };
    let buffers: Buffer[] = [];
    let headers: BatchHeader[] = [];
    let bytesInActive = this.state.active.sizeBytes;
    for (const append of group) {
      written.bytes += append.batch.length;
      const epoch = append.epoch ?? this.state.epoch;
      if (epoch < this.state.epoch) {
        append.reject(JournalErrors.staleEpoch.create({ shard: this.state.name }, epoch, this.state.epoch));
        continue;
      }
      if (this.needsRoll(bytesInActive, append.batch.length, append.lastOffsetDelta)) {
        await this.writeToActive(buffers, headers, written);
        buffers = [];
        headers = [];
        // The roll fdatasyncs the segment it seals: the previous group's sync of that file must
        // be over first, so a file never has two syncs running (its syncedBytes stays exact).
        await this.syncInFlight;
        // That sync failed: the pipeline fails this group with it; nothing more is written.
        if (this.state.active.syncFailed) throw ioError('fdatasync', this.state.active.logPath, new Error('an earlier fdatasync of this segment failed'), { shard: this.state.name });
        await this.roll();
        bytesInActive = 0;
      }
      let baseOffset = this.state.nextOffset;
      if (append.stored) {
        const header = readBatchHeader(append.batch, 0);
        // A compacted shard's leader may have compacted records away: its batch then starts
        // past our end, a gap like the ones compaction leaves here.
        const gapAllowed = this.state.config.compacted && header.baseOffset > baseOffset;
        if (header.baseOffset !== baseOffset && !gapAllowed) {
          append.reject(JournalErrors.invalidArgument.create({ shard: this.state.name, offset: header.baseOffset }, 'baseOffset', header.baseOffset, `a stored batch must start at the log end, ${baseOffset}`));
          continue;
        }
        baseOffset = header.baseOffset;
        headers.push(header);
      } else {
        sealBatch(append.batch, baseOffset, epoch);
        headers.push(readBatchHeader(append.batch, 0));
      }
      buffers.push(append.batch);
      bytesInActive += append.batch.length;
      this.state.nextOffset = baseOffset + append.lastOffsetDelta + 1;
      this.state.epoch = epoch;
      written.appends.push(append);
      written.results.push({ baseOffset, lastOffset: this.state.nextOffset - 1 });
    }
    await this.writeToActive(buffers, headers, written);
    written.nextOffset = this.state.nextOffset;
    return written;
  }

  /** One fdatasync per segment the groups wrote to (normally one). */
  private async syncGroups(groups: WrittenGroup[]): Promise<void> {
    const segments = new Set<Segment>();
    for (const group of groups) for (const segment of group.ends.keys()) segments.add(segment);
    for (const segment of segments) await this.state.syncData(segment);
  }

  /** Makes durable groups visible and resolves their appends, in offset order. */
  private acknowledge(groups: WrittenGroup[]): void {
    const now = performance.now();
    let appends = 0;
    let bytes = 0;
    const latenciesMs: number[] = [];
    for (const group of groups) {
      for (const [segment, end] of group.ends) segment.makeVisible(end);
      this.state.visibleNextOffset = group.nextOffset;
      this.pendingBytes -= group.bytes;
      group.appends.forEach((append, index) => {
        append.resolve(group.results[index] as AppendResult);
        appends += 1;
        bytes += append.batch.length;
        latenciesMs.push(now - append.queuedAt);
      });
    }
    this.state.wakeWaiters();
    if (this.state.context.onCommit !== undefined && appends > 0) this.state.context.onCommit({ shard: this.state.name, appends, bytes, latenciesMs });
  }

  /** What a failed group commit must restore (see rollBack). */
  private writeState(): WriteState {
    return { activeBaseOffset: this.state.active.baseOffset, activeBytes: this.state.active.sizeBytes, nextOffset: this.state.nextOffset, epoch: this.state.epoch, activeSinceMs: this.state.activeSinceMs };
  }

  /**
   * Fails the shard after a write or an fdatasync failed: appends are refused with `failure`
   * until recover() has run, and the shard is cut back at once to `durableEnd` (the end of what
   * was durable before the failing write): segments created since are deleted, the active
   * segment is truncated (and synced), offsets, epoch and roll age are restored, so the next
   * append gets the same offset (offsets stay dense). Nothing cut was acknowledged in fsync
   * mode. When the cut itself fails, recover() tries it again.
   */
  private async fail(failure: ShardlineError, durableEnd: WriteState): Promise<void> {
    this.state.failure = failure;
    this.state.failedAt = this.state.context.clock();
    this.cutBackTo = durableEnd;
    const diskFull = failure.code === JournalErrors.diskFull.code;
    this.state.context.logger.error({ shard: this.state.name, err: failure, nextOffset: durableEnd.nextOffset }, diskFull
      ? 'append failed: the file system is full; the shard is cut back to its last durable record and takes appends again once space returns'
      : 'a write or fdatasync failed; the shard is cut back to its last durable record and refuses appends until it is reopened');
    try {
      await this.cutBack(durableEnd);
      this.cutBackTo = null;
    } catch (error) {
      this.state.context.logger.error({ shard: this.state.name, err: error }, 'cutting the shard back to its last durable record failed; the next reopen tries again');
    }
  }

  /**
   * Reopens a failed shard for appends (runs under the write lock, at most once per
   * RECOVERY_BACKOFF_MS): finishes the cut back if it failed before, then clears the failure.
   * Throws the original failure when the cut fails again.
   */
  private async recover(): Promise<void> {
    const failure = this.state.failure;
    if (failure === null) return;
    try {
      if (this.cutBackTo !== null) await this.cutBack(this.cutBackTo);
      else if (this.state.active.syncFailed) await this.cutBack(this.writeState());
      this.cutBackTo = null;
      await reloadShard(this.state);
    } catch (error) {
      this.state.failedAt = this.state.context.clock();
      this.state.context.logger.error({ shard: this.state.name, err: error }, 'reopening the failed shard failed');
      throw failure;
    }
    this.state.failure = null;
    this.state.context.logger.info({ shard: this.state.name, nextOffset: this.state.nextOffset }, 'shard reopened for appends after a failed write');
  }

  /**
   * Cuts the shard back to `target` (the end before a failed write), or further where a log
   * fdatasync failed since: then everything after that file's last successful sync may never
   * reach the disk (doomed pages), acknowledged writes of interval and none modes included.
   */
  private async cutBack(target: WriteState): Promise<void> {
    while (this.state.segments.length > 1 && this.state.active.baseOffset > target.activeBaseOffset) {
      // Out of the list only once its files are gone: a retry after a failed delete must find
      // it again, and a reload must never adopt the unsynced data it holds.
      await this.state.active.retire(true);
      this.state.segments.pop();
    }
    // Files of a segment the shard never listed (a roll whose directory sync failed and whose
    // clean-up failed too) would be adopted by the reload that follows, past the cut.
    await this.removeSegmentFilesAfter(this.state.active.baseOffset);
    // Always, and before the segment that stays is cut: a power cut must not bring deleted
    // later segments back behind a shortened one (a hole in the offsets), and a failed roll may
    // have left a create or a delete in the directory unsynced.
    await syncDirectory(this.state.fs, this.state.directory);
    const active = this.state.active;
    const bytes = active.syncFailed ? Math.min(target.activeBytes, active.syncedBytes) : target.activeBytes;
    // Always: a failed writev may have left bytes past the size the segment knows.
    await active.rollBackTo(bytes);
    this.state.nextOffset = Math.max(active.nextOffset, active.baseOffset);
    this.state.visibleNextOffset = Math.min(this.state.visibleNextOffset, this.state.nextOffset);
    this.state.epoch = Math.max(0, ...this.state.segments.map((segment) => segment.epoch));
    this.state.activeSinceMs = bytes === target.activeBytes ? target.activeSinceMs : active.firstTimestamp;
  }

  /** Deletes the files of segments based after `baseOffset` (the directory sync is the caller's). */
  private async removeSegmentFilesAfter(baseOffset: number): Promise<void> {
    let entries: string[];
    try {
      entries = await this.state.fs.readdir(this.state.directory);
    } catch (error) {
      throw ioError('list', this.state.directory, error, { shard: this.state.name });
    }
    for (const entry of entries) {
      const match = /^(\d{20})\.(log|index|timeindex)$/.exec(entry);
      if (match === null || Number(match[1]) <= baseOffset) continue;
      const path = join(this.state.directory, entry);
      await this.state.fs.unlink(path).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw ioError('delete', path, error, { shard: this.state.name });
      });
    }
  }

  private needsRoll(bytesInActive: number, batchBytes: number, lastOffsetDelta: number): boolean {
    const active = this.state.active;
    if (bytesInActive === 0) return false;
    if (bytesInActive + batchBytes > this.state.config.segmentBytes) return true;
    if (this.state.nextOffset + lastOffsetDelta - active.baseOffset > MAX_RELATIVE_OFFSET) return true;
    return this.state.activeSinceMs !== null && this.state.context.clock() - this.state.activeSinceMs >= this.state.config.segmentMs;
  }

  private async writeToActive(buffers: Buffer[], headers: BatchHeader[], written: WrittenGroup): Promise<void> {
    if (buffers.length === 0) return;
    const active = this.state.active;
    this.state.activeSinceMs ??= this.state.context.clock();
    await active.append(buffers, headers);
    written.ends.set(active, active.sizeBytes);
    for (const listener of this.writeListeners) listener(buffers);
  }

  /**
   * Seals the active segment (fsync log and indexes) and starts a new one at nextOffset; the
   * directory is fsynced so the new file survives a crash.
   */
  private async roll(): Promise<void> {
    const sealed = this.state.active;
    await this.state.syncData(sealed);
    await sealed.writeIndexFiles();
    const segment = await Segment.create(this.state.fs, this.state.directory, this.state.nextOffset, this.state.settings);
    try {
      if (this.state.context.unsafe?.skipRollDirectorySync !== true) await syncDirectory(this.state.fs, this.state.directory);
    } catch (error) {
      // Not in the shard's list: its file must not be found by the next open either.
      await segment.close();
      await segment.unlinkFiles().catch(() => undefined);
      throw error;
    }
    this.state.segments.push(segment);
    this.state.activeSinceMs = null;
    this.state.context.logger.debug({ shard: this.state.name, sealed: sealed.name, active: segment.name }, 'segment rolled');
  }

  /** Rolls the active segment now if it holds anything (tests and operators). */
  async rollNow(): Promise<void> {
    this.state.assertOpen();
    await this.state.writeLock.run(async () => {
      // A failed shard's offsets in memory may be stale: a roll would name a segment after them.
      if (this.state.failure !== null) throw this.state.failure;
      if (this.state.active.sizeBytes === 0) return;
      const before = this.writeState();
      try {
        await this.roll();
      } catch (error) {
        const failure = error instanceof ShardlineError ? error : ioError('roll', this.state.directory, error, { shard: this.state.name });
        if (failure.code !== JournalErrors.closed.code) await this.fail(failure, before);
        throw failure;
      }
    });
  }

  startTimers(): void {
    if (this.state.config.durability !== 'interval') return;
    // syncIfDirty records its own failure (later appends see it); nothing may float unhandled.
    this.intervalTimer = setInterval(() => {
      this.syncIfDirty().catch((error: unknown) => this.state.context.logger.error({ shard: this.state.name, err: error }, 'interval fdatasync failed'));
    }, this.state.config.fsyncIntervalMs);
    this.intervalTimer.unref();
  }

  stopTimers(): void {
    if (this.intervalTimer !== null) clearInterval(this.intervalTimer);
  }

  private async syncIfDirty(): Promise<void> {
    if (!this.unsyncedWrites || this.state.closed || this.state.failure !== null) return;
    this.unsyncedWrites = false;
    await this.state.writeLock.run(async () => {
      try {
        await this.state.syncData(this.state.active);
      } catch (error) {
        // Acknowledged appends since the last sync may never reach the disk: cutBack cuts them
        // with the rest (interval mode promises durability only after the sync).
        await this.fail(error instanceof ShardlineError ? error : ioError('fdatasync', this.state.directory, error, { shard: this.state.name }), this.writeState());
      }
    });
  }
}
