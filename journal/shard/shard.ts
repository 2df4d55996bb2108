// A shard: an ordered, append-only log of records kept in segments (oldest first; the last is
// the active one that takes appends).
//
// Invariants:
// - Offsets are assigned by the writer, in log order, when a batch is written; they are dense
//   for appends (compaction may later leave gaps) and never reused except after truncateAfter.
// - Readers see a record only once its append is acknowledged: in fsync mode after the
//   fdatasync that covers it, so a reader never sees a record that a crash could take back.
// - Every batch a reader gets passed its checksum; a damaged batch is an error, never data.
// - Writes, rolls, truncation, retention deletes and compaction swaps run under `writeLock`;
//   reads and compaction's rewrite work do not take it, so they never block appends for long.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { JournalErrors, ShardlineError, ioError, isShardlineError } from '../errors.js';
import type { JournalFileSystem } from '../file-system.js';
import { nodeFileSystem } from '../node-file-system.js';
import type { AppendResult, JournalRecord, RecordInput } from '../record.js';
import {
  encodeBatch,
  lastOffsetOf,
  readBatchHeader,
  sealBatch,
  type BatchHeader,
} from '../segment/batch-format.js';
import { parseSegmentFileName, Segment, syncDirectory, writeDurably, type SegmentSettings } from '../segment/segment.js';
import { Mutex } from './mutex.js';
import { segmentsBelow, segmentsToDelete } from './retention.js';
import { HARD_MAX_BATCH_BYTES, resolveShardConfig, type ShardConfig } from './shard-config.js';
import { compactSegment } from './compaction.js';
import { TRUNCATION_INTENT_DRAFT_SUFFIX, TRUNCATION_INTENT_SUFFIX, clearTruncationIntent, recordTruncationIntent, redoTruncationIntent } from './truncation-intent.js';
import { prepareRecords } from './record-validation.js';
import { ShardReader, type TailOptions } from './shard-reader.js';
import { checkEpochArgument, checkOffsetArgument, type ReadOptions } from './read-limits.js';

export const SHARD_CONFIG_FILE = 'shard.json';
/** Settings an existing shard may change (see Shard.reconfigure). */
export const RECONFIGURABLE_SETTINGS = ['retentionMs', 'retentionBytes', 'segmentBytes', 'segmentMs'] as const;
export type ReconfigurableSetting = (typeof RECONFIGURABLE_SETTINGS)[number];
const SHARD_CONFIG_VERSION = 1;
/** One group commit writes at most this much before it fsyncs and acknowledges. */
const GROUP_COMMIT_MAX_BYTES = 32 * 1024 * 1024;
const MAX_RELATIVE_OFFSET = 2 ** 32 - 2;
/** A failed shard is reopened for appends by the first append at least this long after the failure. */
export const RECOVERY_BACKOFF_MS = 1000;

export interface ShardInfo {
  name: string;
  config: ShardConfig;
  /** First offset that may still be read. */
  startOffset: number;
  /** Offset the next append gets; readers see records below it. */
  nextOffset: number;
  epoch: number;
  sizeBytes: number;
  segmentCount: number;
  maxTimestamp: number;
}

export interface AppendOptions {
  /** Leader epoch to write the batch under; defaults to the shard's current epoch. */
  epoch?: number;
}

export type { TailOptions };

export interface CompactionReport {
  segmentsRewritten: number;
  /** Segments left as they are because of damage (logged); `shardline shard verify` locates it. */
  segmentsSkipped: number;
  recordsRemoved: number;
  bytesBefore: number;
  bytesAfter: number;
}

/** One group commit of a shard, for metrics: what went to disk together and how long it took. */
export interface CommitEvent {
  shard: string;
  /** Appends (batches) written by this group commit. */
  appends: number;
  bytes: number;
  /** Per append, ms from the append call to its acknowledgement. */
  latenciesMs: number[];
}

/**
 * Switches that break durability on purpose, for the self-tests of the power-cut properties
 * only (a check that cannot catch the bug it is for is worth nothing). Never set in a node.
 */
export interface UnsafeDurabilitySwitches {
  /** Acknowledge appends without the fdatasync of the log. */
  skipDataSync?: boolean;
  /** Roll to a new segment without syncing the directory that now holds it. */
  skipRollDirectorySync?: boolean;
}

export interface ShardContext {
  clock: () => number;
  logger: Logger;
  /** Default: the real disk. */
  fileSystem?: JournalFileSystem;
  unsafe?: UnsafeDurabilitySwitches;
  /** Called after each successful group commit (must not throw; it runs on the write path). */
  onCommit?: (event: CommitEvent) => void;
}

interface PendingAppend {
  /** performance.now() when append() queued it. */
  queuedAt: number;
  batch: Buffer;
  lastOffsetDelta: number;
  epoch: number | undefined;
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

interface Waiter {
  offset: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

export class Shard {
  private segments: Segment[] = [];
  private pending: PendingAppend[] = [];
  /** Bytes of appends queued or written and not yet acknowledged (the maxQueuedAppendBytes bound). */
  private pendingBytes = 0;
  /** The append pipeline is running or about to (runPipeline, under the write lock). */
  private draining = false;
  /** Resolves the pipeline's idle wait when an append arrives during an fdatasync. */
  private wakePipeline: (() => void) | null = null;
  /** The pipeline's fdatasync in flight (settles, never rejects), for a roll to wait on. */
  private syncInFlight: Promise<void> | null = null;
  private readonly writeLock = new Mutex();
  private readonly compactionLock = new Mutex();
  private readonly waiters = new Set<Waiter>();
  private nextOffset = 0;
  private visibleNextOffset = 0;
  private epoch = 0;
  /**
   * Set when a write or an fdatasync failed: the shard refuses appends with this error until it
   * is reopened (see recover), because after a failed sync the page cache may hold data that
   * will never reach the disk (Linux marks such pages clean), so nothing past the last durable
   * end can be trusted or built on.
   */
  private failure: ShardlineError | null = null;
  private failedAt = 0;
  /** The durable end to cut back to before the shard takes appends again; null once cut. */
  private cutBackTo: WriteState | null = null;
  /**
   * An in-place rewrite whose fdatasync failed: reads see the new bytes, the disk may keep the
   * old ones for good, and anything decided from what reads see (a tail cut) would mix the two.
   * Written and synced again before the shard is reopened.
   */
  private closed = false;
  private unsyncedWrites = false;
  private intervalTimer: NodeJS.Timeout | null = null;
  /**
   * When the active segment's age started: the journal clock at its first write, or, after a
   * reopen, its first record's timestamp. Rolling by age uses this, not record timestamps alone,
   * so writers that give old timestamps do not roll a segment per append.
   */
  private activeSinceMs: number | null = null;

  private constructor(
    readonly name: string,
    readonly directory: string,
    private currentConfig: ShardConfig,
    private readonly context: ShardContext,
  ) {
    // The view reads the shard's fields as they are at each call (reload replaces the segments).
    this.reader = new ShardReader({
      name,
      logger: context.logger,
      segments: () => this.segments,
      visibleEnd: () => this.visibleNextOffset,
      startOffset: () => this.startOffset,
      assertOpen: () => this.assertOpen(),
      waitForAppend: (offset, signal) => this.waitForAppend(offset, signal),
    });
  }

  private readonly reader: ShardReader;

  /** The shard's settings; reconfigure() may change the ones in RECONFIGURABLE_SETTINGS. */
  get config(): ShardConfig {
    return this.currentConfig;
  }

  /**
   * Changes settings of an open shard that take effect without touching stored data: the
   * retention limits (next retention run) and the segment size and age (next roll). The new
   * settings are validated as a whole and written to shard.json (durably) before they apply,
   * under the write lock so no append reads half a change.
   */
  async reconfigure(changes: Partial<Pick<ShardConfig, ReconfigurableSetting>>): Promise<ShardConfig> {
    this.assertOpen();
    for (const key of Object.keys(changes)) {
      if (!(RECONFIGURABLE_SETTINGS as readonly string[]).includes(key)) {
        throw JournalErrors.invalidConfig.create({ shard: this.name }, key, (changes as Record<string, unknown>)[key], `cannot change on an existing shard; changeable: ${RECONFIGURABLE_SETTINGS.join(', ')}`);
      }
    }
    const next = resolveShardConfig({ ...this.currentConfig, ...changes });
    if (RECONFIGURABLE_SETTINGS.every((key) => next[key] === this.currentConfig[key])) return this.currentConfig;
    return this.writeLock.run(async () => {
      // A new file renamed over the old one: a crash or a full disk never leaves a shard
      // without a readable shard.json.
      const path = join(this.directory, SHARD_CONFIG_FILE);
      await writeDurably(this.fs, `${path}.new`, Buffer.from(JSON.stringify({ version: SHARD_CONFIG_VERSION, config: next }, null, 2)));
      try {
        await this.fs.rename(`${path}.new`, path);
      } catch (error) {
        throw ioError('rename', `${path}.new`, error, { shard: this.name });
      }
      await syncDirectory(this.fs, this.directory);
      this.currentConfig = next;
      this.context.logger.info({ shard: this.name, retentionMs: next.retentionMs, retentionBytes: next.retentionBytes, segmentBytes: next.segmentBytes, segmentMs: next.segmentMs }, 'shard settings changed');
      return next;
    });
  }

  private get fs(): JournalFileSystem {
    return this.context.fileSystem ?? nodeFileSystem;
  }

  /** The log's fdatasync, unless a self-test turned it off (UnsafeDurabilitySwitches). */
  private async syncData(segment: Segment): Promise<void> {
    if (this.context.unsafe?.skipDataSync === true) return;
    await segment.sync();
  }

  private get settings(): SegmentSettings {
    return { indexIntervalBytes: this.config.indexIntervalBytes, maxBatchBytes: HARD_MAX_BATCH_BYTES };
  }

  private get active(): Segment {
    const segment = this.segments[this.segments.length - 1];
    if (segment === undefined) throw new Error(`shard ${this.name} has no active segment`);
    return segment;
  }

  static async writeConfig(fs: JournalFileSystem, directory: string, config: ShardConfig): Promise<void> {
    await writeDurably(fs, join(directory, SHARD_CONFIG_FILE), Buffer.from(JSON.stringify({ version: SHARD_CONFIG_VERSION, config }, null, 2)));
  }

  static async readConfig(directory: string, name: string, fs: JournalFileSystem = nodeFileSystem): Promise<ShardConfig> {
    const path = join(directory, SHARD_CONFIG_FILE);
    let text: string;
    try {
      text = (await fs.readFile(path)).toString('utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw JournalErrors.notAJournal.create({ shard: name }, directory, `no ${SHARD_CONFIG_FILE} in the shard directory`);
      throw ioError('read', path, error, { shard: name });
    }
    let parsed: { version?: unknown; config?: unknown };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      throw JournalErrors.notAJournal.create({ shard: name }, path, 'shard.json is not valid JSON');
    }
    if (parsed.version !== SHARD_CONFIG_VERSION) {
      throw JournalErrors.unsupportedFormat.create({ shard: name }, path, Number(parsed.version), SHARD_CONFIG_VERSION);
    }
    return resolveShardConfig(parsed.config as Partial<ShardConfig>);
  }

  /** Opens a shard directory, recovering the active segment's tail. */
  static async open(name: string, directory: string, context: ShardContext): Promise<Shard> {
    const config = await Shard.readConfig(directory, name, context.fileSystem);
    const shard = new Shard(name, directory, config, context);
    try {
      await shard.load();
    } catch (error) {
      // The segments opened before the failure would otherwise keep their file handles.
      for (const segment of shard.segments) await segment.close();
      throw error;
    }
    shard.startTimers();
    return shard;
  }

  /** With `removeLeftovers` (at open), files of an unfinished compaction are deleted. */
  private async load(removeLeftovers = true): Promise<void> {
    let entries: string[];
    try {
      entries = await this.fs.readdir(this.directory);
    } catch (error) {
      throw ioError('list', this.directory, error, { shard: this.name });
    }
    const bases: number[] = [];
    for (const entry of entries) {
      // Leftovers of a compaction that did not finish: the original segment is still intact.
      if (removeLeftovers && entry.endsWith('.compacting')) await this.fs.unlink(join(this.directory, entry));
      // A sidecar still being written when the process stopped (never redone: it had not been
      // renamed into place, so the log was never touched for it).
      if (entry.endsWith(TRUNCATION_INTENT_DRAFT_SUFFIX)) await this.fs.unlink(join(this.directory, entry));
      const base = parseSegmentFileName(entry);
      if (base !== null) bases.push(base);
    }
    for (const entry of entries) {
      if (!entry.endsWith(TRUNCATION_INTENT_SUFFIX)) continue;
      const outcome = await redoTruncationIntent(this.fs, this.directory, entry, HARD_MAX_BATCH_BYTES);
      this.context.logger.warn({ shard: this.name, intent: entry, outcome }, 'finished a truncation that a crash or a failure interrupted');
    }
    bases.sort((a, b) => a - b);
    if (bases.length === 0) {
      this.segments = [await Segment.create(this.fs, this.directory, 0, this.settings)];
      await syncDirectory(this.fs, this.directory);
    }
    let expectedNext = 0;
    let epoch = 0;
    for (let i = 0; i < bases.length; i += 1) {
      const base = bases[i] ?? 0;
      const isLast = i === bases.length - 1;
      const { segment, recovery } = await Segment.open(this.fs, this.directory, base, this.settings, isLast, expectedNext, epoch);
      if (recovery.truncatedBytes > 0) {
        this.context.logger.warn({ shard: this.name, segment: segment.name, truncatedBytes: recovery.truncatedBytes, reason: recovery.truncateReason }, 'recovery cut a damaged tail');
      } else if (recovery.truncateReason !== null) {
        this.context.logger.error({ shard: this.name, segment: segment.name, position: segment.visibleBytes, reason: recovery.truncateReason }, 'sealed segment is damaged; reads stop at the damage');
      }
      if (recovery.indexRebuilt && !isLast && recovery.truncateReason === null) {
        // Written back so the next open does not scan this segment again.
        await segment.writeIndexFiles();
        this.context.logger.info({ shard: this.name, segment: segment.name }, 'rebuilt a missing or stale index');
      }
      this.segments.push(segment);
      expectedNext = Math.max(segment.nextOffset, base);
      epoch = Math.max(epoch, segment.epoch);
    }
    await this.dropUnfinishedRoll();
    this.nextOffset = this.active.nextOffset;
    this.visibleNextOffset = this.nextOffset;
    this.epoch = epoch;
    this.activeSinceMs = this.active.firstTimestamp;
    await this.removeOrphanIndexFiles(entries, new Set(bases));
    // The tail found may still be only in the page cache (a process crash does not flush it):
    // synced now, it is a durable end that a later failure can be cut back to.
    await this.syncData(this.active);
  }

  /**
   * An empty last segment based past where the one before it ends is the trace of a roll that
   * failed and whose clean-up a power cut took back (a create and a delete, neither synced). In
   * a shard with dense offsets it would make the next append skip offsets, so it goes. (In a
   * compacted shard such a segment may be truncateAfter's record of the next offset; it stays.)
   */
  private async dropUnfinishedRoll(): Promise<void> {
    const last = this.segments[this.segments.length - 1];
    const previous = this.segments[this.segments.length - 2];
    if (this.config.compacted || last === undefined || previous === undefined) return;
    if (last.sizeBytes > 0 || last.baseOffset <= previous.nextOffset) return;
    await last.retire(true);
    this.segments.pop();
    await syncDirectory(this.fs, this.directory);
    this.context.logger.warn({ shard: this.name, segment: last.name, nextOffset: previous.nextOffset }, 'removed an empty segment left by a roll that did not complete');
  }

  /** Deletes the files of segments based after `baseOffset` (the directory sync is the caller's). */
  private async removeSegmentFilesAfter(baseOffset: number): Promise<void> {
    let entries: string[];
    try {
      entries = await this.fs.readdir(this.directory);
    } catch (error) {
      throw ioError('list', this.directory, error, { shard: this.name });
    }
    for (const entry of entries) {
      const match = /^(\d{20})\.(log|index|timeindex)$/.exec(entry);
      if (match === null || Number(match[1]) <= baseOffset) continue;
      const path = join(this.directory, entry);
      await this.fs.unlink(path).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw ioError('delete', path, error, { shard: this.name });
      });
    }
  }

  /** Index files whose log is gone (a crash between deletes) would confuse audits; drop them. */
  private async removeOrphanIndexFiles(entries: string[], bases: Set<number>): Promise<void> {
    for (const entry of entries) {
      const match = /^(\d{20})\.(index|timeindex)$/.exec(entry);
      if (match !== null && !bases.has(Number(match[1]))) await this.fs.unlink(join(this.directory, entry)).catch(() => undefined);
    }
  }

  private startTimers(): void {
    if (this.config.durability !== 'interval') return;
    // syncIfDirty records its own failure (later appends see it); nothing may float unhandled.
    this.intervalTimer = setInterval(() => {
      this.syncIfDirty().catch((error: unknown) => this.context.logger.error({ shard: this.name, err: error }, 'interval fdatasync failed'));
    }, this.config.fsyncIntervalMs);
    this.intervalTimer.unref();
  }

  private async syncIfDirty(): Promise<void> {
    if (!this.unsyncedWrites || this.closed || this.failure !== null) return;
    this.unsyncedWrites = false;
    await this.writeLock.run(async () => {
      try {
        await this.syncData(this.active);
      } catch (error) {
        // Acknowledged appends since the last sync may never reach the disk: cutBack cuts them
        // with the rest (interval mode promises durability only after the sync).
        await this.fail(error instanceof ShardlineError ? error : ioError('fdatasync', this.directory, error, { shard: this.name }), this.writeState());
      }
    });
  }

  info(): ShardInfo {
    this.assertOpen();
    let sizeBytes = 0;
    let maxTimestamp = 0;
    for (const segment of this.segments) {
      sizeBytes += segment.sizeBytes;
      maxTimestamp = Math.max(maxTimestamp, segment.maxTimestamp);
    }
    return {
      name: this.name,
      config: this.config,
      startOffset: this.startOffset,
      nextOffset: this.visibleNextOffset,
      epoch: this.epoch,
      sizeBytes,
      segmentCount: this.segments.length,
      maxTimestamp,
    };
  }

  get startOffset(): number {
    return this.segments[0]?.baseOffset ?? 0;
  }

  /** Segment files, oldest first, for audit tools. */
  segmentPaths(): { baseOffset: number; logPath: string; offsetIndexPath: string; timeIndexPath: string; sizeBytes: number }[] {
    return this.segments.map((segment) => ({ baseOffset: segment.baseOffset, logPath: segment.logPath, offsetIndexPath: segment.offsetIndexPath, timeIndexPath: segment.timeIndexPath, sizeBytes: segment.sizeBytes }));
  }

  // ---- append ---------------------------------------------------------------------------

  /**
   * Appends records as one batch. Resolves with their offsets once the batch is acknowledged
   * under the shard's durability mode; rejects with a coded error and writes nothing on bad
   * input.
   */
  append(records: readonly RecordInput[], options: AppendOptions = {}): Promise<AppendResult> {
    try {
      this.assertOpen();
      if (this.failure !== null && this.context.clock() - this.failedAt < RECOVERY_BACKOFF_MS) throw this.failure;
      const batch = this.encode(records);
      // One append is always taken, so a batch larger than the bound is not refused forever.
      if (this.pending.length > 0 && this.pendingBytes + batch.length > this.config.maxQueuedAppendBytes) {
        throw JournalErrors.overloaded.create({ shard: this.name }, this.pendingBytes + batch.length, this.config.maxQueuedAppendBytes);
      }
      const epoch = options.epoch;
      checkEpochArgument(epoch, this.name);
      return new Promise<AppendResult>((resolve, reject) => {
        this.pending.push({ queuedAt: performance.now(), batch, lastOffsetDelta: records.length - 1, epoch, resolve, reject });
        this.pendingBytes += batch.length;
        // writeGroup settles every append it takes; a failure past that is logged, not left floating.
        this.drain().catch((error: unknown) => this.context.logger.error({ shard: this.name, err: error }, 'append writer failed'));
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private encode(records: readonly RecordInput[]): Buffer {
    return encodeBatch(prepareRecords(records, this.config, this.name, this.context.clock()));
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
      while (this.pending.length > 0) await this.writeLock.run(() => this.runPipeline());
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
    if (this.closed || this.failure !== null) {
      try {
        if (this.closed) throw JournalErrors.closed.create({ shard: this.name }, `shard ${this.name}`);
        await this.recover();
      } catch (error) {
        this.rejectAllPending(error instanceof ShardlineError ? error : ioError('append', this.directory, error, { shard: this.name }));
        return;
      }
    }
    const waitsForSync = this.config.durability === 'fsync';
    /** Written (or being synced), not acknowledged, oldest first. */
    const unacknowledged: WrittenGroup[] = [];
    let toSync: WrittenGroup[] = [];
    let writing: { group: PendingAppend[]; before: WriteState; done: Promise<void> } | null = null;
    let syncing: Promise<void> | null = null;
    let failedWrite: { group: PendingAppend[]; before: WriteState } | null = null;
    let failure: ShardlineError | null = null;
    const failWith = (error: unknown, operation: string): void => {
      failure ??= error instanceof ShardlineError ? error : ioError(operation, this.directory, error, { shard: this.name });
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
      if (failure === null && writing === null && this.pending.length > 0 && !this.writeLock.contended) {
        if (this.closed) {
          this.rejectAllPending(JournalErrors.closed.create({ shard: this.name }, `shard ${this.name}`));
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
    if (durableEnd !== undefined && error.code !== JournalErrors.closed.code && error !== this.failure) await this.fail(error, durableEnd);
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
    const written: WrittenGroup = { before: this.writeState(), appends: [], results: [], ends: new Map(), nextOffset: this.nextOffset, bytes: 0, };
    let buffers: Buffer[] = [];
    let headers: BatchHeader[] = [];
    let bytesInActive = this.active.sizeBytes;
    for (const append of group) {
      written.bytes += append.batch.length;
      const epoch = append.epoch ?? this.epoch;
      if (epoch < this.epoch) {
        append.reject(JournalErrors.staleEpoch.create({ shard: this.name }, epoch, this.epoch));
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
        if (this.active.syncFailed) throw ioError('fdatasync', this.active.logPath, new Error('an earlier fdatasync of this segment failed'), { shard: this.name });
        await this.roll();
        bytesInActive = 0;
      }
      const baseOffset = this.nextOffset;
      sealBatch(append.batch, baseOffset, epoch);
      headers.push(readBatchHeader(append.batch, 0));
      buffers.push(append.batch);
      bytesInActive += append.batch.length;
      this.nextOffset = baseOffset + append.lastOffsetDelta + 1;
      this.epoch = epoch;
      written.appends.push(append);
      written.results.push({ baseOffset, lastOffset: this.nextOffset - 1 });
    }
    await this.writeToActive(buffers, headers, written);
    written.nextOffset = this.nextOffset;
    return written;
  }

  /** One fdatasync per segment the groups wrote to (normally one). */
  private async syncGroups(groups: WrittenGroup[]): Promise<void> {
    const segments = new Set<Segment>();
    for (const group of groups) for (const segment of group.ends.keys()) segments.add(segment);
    for (const segment of segments) await this.syncData(segment);
  }

  /** Makes durable groups visible and resolves their appends, in offset order. */
  private acknowledge(groups: WrittenGroup[]): void {
    const now = performance.now();
    let appends = 0;
    let bytes = 0;
    const latenciesMs: number[] = [];
    for (const group of groups) {
      for (const [segment, end] of group.ends) segment.makeVisible(end);
      this.visibleNextOffset = group.nextOffset;
      this.pendingBytes -= group.bytes;
      group.appends.forEach((append, index) => {
        append.resolve(group.results[index] as AppendResult);
        appends += 1;
        bytes += append.batch.length;
        latenciesMs.push(now - append.queuedAt);
      });
    }
    this.wakeWaiters();
    if (this.context.onCommit !== undefined && appends > 0) this.context.onCommit({ shard: this.name, appends, bytes, latenciesMs });
  }

  /** What a failed group commit must restore (see rollBack). */
  private writeState(): WriteState {
    return { activeBaseOffset: this.active.baseOffset, activeBytes: this.active.sizeBytes, nextOffset: this.nextOffset, epoch: this.epoch, activeSinceMs: this.activeSinceMs };
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
    this.failure = failure;
    this.failedAt = this.context.clock();
    this.cutBackTo = durableEnd;
    const diskFull = failure.code === JournalErrors.diskFull.code;
    this.context.logger.error({ shard: this.name, err: failure, nextOffset: durableEnd.nextOffset }, diskFull
      ? 'append failed: the file system is full; the shard is cut back to its last durable record and takes appends again once space returns'
      : 'a write or fdatasync failed; the shard is cut back to its last durable record and refuses appends until it is reopened');
    try {
      await this.cutBack(durableEnd);
      this.cutBackTo = null;
    } catch (error) {
      this.context.logger.error({ shard: this.name, err: error }, 'cutting the shard back to its last durable record failed; the next reopen tries again');
    }
  }

  /**
   * Reopens a failed shard for appends (runs under the write lock, at most once per
   * RECOVERY_BACKOFF_MS): finishes the cut back if it failed before, then clears the failure.
   * Throws the original failure when the cut fails again.
   */
  private async recover(): Promise<void> {
    const failure = this.failure;
    if (failure === null) return;
    try {
      if (this.cutBackTo !== null) await this.cutBack(this.cutBackTo);
      else if (this.active.syncFailed) await this.cutBack(this.writeState());
      this.cutBackTo = null;
      await this.reload();
    } catch (error) {
      this.failedAt = this.context.clock();
      this.context.logger.error({ shard: this.name, err: error }, 'reopening the failed shard failed');
      throw failure;
    }
    this.failure = null;
    this.context.logger.info({ shard: this.name, nextOffset: this.nextOffset }, 'shard reopened for appends after a failed write');
  }

  /**
   * Reopens the shard from its files, as a restart would: the directory is synced first so that
   * nothing is built on a name a power cut could still take back, then every segment is opened
   * again (the active one verified to its end) and the old ones are retired once their readers
   * let go. After a failure the in-memory state cannot be trusted, the files can.
   */
  private async reload(): Promise<void> {
    await syncDirectory(this.fs, this.directory);
    const old = this.segments;
    this.segments = [];
    try {
      await this.load(false);
    } catch (error) {
      // A sync that failed during the reload (the active segment's, at the end of load) doomed
      // that file's unsynced pages, and a later sync will report success without saving them:
      // the old segment of the same file must be cut back to its last good sync before the
      // next attempt adopts what only the page cache holds.
      for (const segment of this.segments) {
        if (segment.syncFailed) {
          const known = old.find((candidate) => candidate.baseOffset === segment.baseOffset);
          if (known !== undefined) known.syncFailed = true;
        }
        await segment.close();
      }
      this.segments = old;
      throw error;
    }
    for (const segment of old) await segment.retire(false);
    this.visibleNextOffset = this.nextOffset;
    this.wakeWaiters();
  }

  /**
   * A truncation, retention or compaction step failed part way: the shard's state in memory may
   * no longer match its files, so it refuses appends until recover() has reloaded it.
   */
  private failStructure(error: unknown, operation: string): never {
    const failure = error instanceof ShardlineError ? error : ioError(operation, this.directory, error, { shard: this.name });
    if (failure.code !== JournalErrors.closed.code && this.failure === null) {
      this.failure = failure;
      this.failedAt = this.context.clock();
      this.context.logger.error({ shard: this.name, err: failure }, `${operation} failed; the shard refuses appends until it is reopened from its files`);
    }
    throw failure;
  }

  /**
   * Cuts the shard back to `target` (the end before a failed write), or further where a log
   * fdatasync failed since: then everything after that file's last successful sync may never
   * reach the disk (doomed pages), acknowledged writes of interval and none modes included.
   */
  private async cutBack(target: WriteState): Promise<void> {
    while (this.segments.length > 1 && this.active.baseOffset > target.activeBaseOffset) {
      // Out of the list only once its files are gone: a retry after a failed delete must find
      // it again, and a reload must never adopt the unsynced data it holds.
      await this.active.retire(true);
      this.segments.pop();
    }
    // Files of a segment the shard never listed (a roll whose directory sync failed and whose
    // clean-up failed too) would be adopted by the reload that follows, past the cut.
    await this.removeSegmentFilesAfter(this.active.baseOffset);
    // Always, and before the segment that stays is cut: a power cut must not bring deleted
    // later segments back behind a shortened one (a hole in the offsets), and a failed roll may
    // have left a create or a delete in the directory unsynced.
    await syncDirectory(this.fs, this.directory);
    const active = this.active;
    const bytes = active.syncFailed ? Math.min(target.activeBytes, active.syncedBytes) : target.activeBytes;
    // Always: a failed writev may have left bytes past the size the segment knows.
    await active.rollBackTo(bytes);
    this.nextOffset = Math.max(active.nextOffset, active.baseOffset);
    this.visibleNextOffset = Math.min(this.visibleNextOffset, this.nextOffset);
    this.epoch = Math.max(0, ...this.segments.map((segment) => segment.epoch));
    this.activeSinceMs = bytes === target.activeBytes ? target.activeSinceMs : active.firstTimestamp;
  }


  private needsRoll(bytesInActive: number, batchBytes: number, lastOffsetDelta: number): boolean {
    const active = this.active;
    if (bytesInActive === 0) return false;
    if (bytesInActive + batchBytes > this.config.segmentBytes) return true;
    if (this.nextOffset + lastOffsetDelta - active.baseOffset > MAX_RELATIVE_OFFSET) return true;
    return this.activeSinceMs !== null && this.context.clock() - this.activeSinceMs >= this.config.segmentMs;
  }

  private async writeToActive(buffers: Buffer[], headers: BatchHeader[], written: WrittenGroup): Promise<void> {
    if (buffers.length === 0) return;
    const active = this.active;
    this.activeSinceMs ??= this.context.clock();
    await active.append(buffers, headers);
    written.ends.set(active, active.sizeBytes);
  }

  /**
   * Seals the active segment (fsync log and indexes) and starts a new one at nextOffset; the
   * directory is fsynced so the new file survives a crash.
   */
  private async roll(): Promise<void> {
    const sealed = this.active;
    await this.syncData(sealed);
    await sealed.writeIndexFiles();
    const segment = await Segment.create(this.fs, this.directory, this.nextOffset, this.settings);
    try {
      if (this.context.unsafe?.skipRollDirectorySync !== true) await syncDirectory(this.fs, this.directory);
    } catch (error) {
      // Not in the shard's list: its file must not be found by the next open either.
      await segment.close();
      await segment.unlinkFiles().catch(() => undefined);
      throw error;
    }
    this.segments.push(segment);
    this.activeSinceMs = null;
    this.context.logger.debug({ shard: this.name, sealed: sealed.name, active: segment.name }, 'segment rolled');
  }

  /** Rolls the active segment now if it holds anything (tests and operators). */
  async rollNow(): Promise<void> {
    this.assertOpen();
    await this.writeLock.run(async () => {
      // A failed shard's offsets in memory may be stale: a roll would name a segment after them.
      if (this.failure !== null) throw this.failure;
      if (this.active.sizeBytes === 0) return;
      const before = this.writeState();
      try {
        await this.roll();
      } catch (error) {
        const failure = error instanceof ShardlineError ? error : ioError('roll', this.directory, error, { shard: this.name });
        if (failure.code !== JournalErrors.closed.code) await this.fail(failure, before);
        throw failure;
      }
    });
  }

  // ---- read -----------------------------------------------------------------------------

  async read(fromOffset: number, options: ReadOptions = {}): Promise<JournalRecord[]> {
    return this.reader.read(fromOffset, options);
  }

  async readBatches(fromOffset: number, options: { maxBytes?: number } = {}): Promise<{ batches: Buffer[]; next: number }> {
    return this.reader.readBatches(fromOffset, options);
  }

  /** First offset whose record timestamp is >= `timestamp`, or null when there is none. */
  async offsetForTime(timestamp: number): Promise<number | null> {
    return this.reader.offsetForTime(timestamp);
  }

  async readByTime(timestamp: number, options: ReadOptions = {}): Promise<JournalRecord[]> {
    return this.reader.readByTime(timestamp, options);
  }

  tail(fromOffset: number, options: TailOptions = {}): AsyncGenerator<JournalRecord> {
    return this.reader.tail(fromOffset, options);
  }

  /** Resolves true once a record at or after `offset` is visible; false when aborted. */
  waitForAppend(offset: number, signal?: AbortSignal): Promise<boolean> {
    if (this.closed) return Promise.reject(JournalErrors.closed.create({ shard: this.name }, `shard ${this.name}`));
    if (this.visibleNextOffset > offset) return Promise.resolve(true);
    if (signal?.aborted === true) return Promise.resolve(false);
    return new Promise<boolean>((resolve, reject) => {
      const onAbort = () => {
        this.waiters.delete(waiter);
        resolve(false);
      };
      const waiter: Waiter = {
        offset,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(true);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      this.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private wakeWaiters(): void {
    for (const waiter of this.waiters) {
      if (this.visibleNextOffset > waiter.offset) {
        this.waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  // ---- truncation, retention, compaction -------------------------------------------------

  /**
   * Removes every record with an offset above `offset`; the next append gets the offset after
   * the last record kept. `offset` may be startOffset - 1 (empty the shard). For replication:
   * a follower cuts entries that diverge from its new leader.
   */
  async truncateAfter(offset: number): Promise<void> {
    this.assertOpen();
    checkOffsetArgument(offset, 'offset', this.name);
    // Under the compaction lock too: a compaction swapping in a rewrite made before the cut
    // would bring truncated records back.
    await this.compactionLock.run(() => this.writeLock.run(async () => {
      if (offset < this.startOffset - 1 || offset >= this.nextOffset) {
        throw JournalErrors.offsetOutOfRange.create({ shard: this.name, offset }, offset, this.startOffset - 1, this.nextOffset - 1);
      }
      if (offset === this.nextOffset - 1) return;
      if (this.failure !== null) throw this.failure;
      try {
        // The first segment is cut in place, never deleted: its file name carries the start
        // offset, so a crash here cannot restart the shard's offsets at 0.
        let removed = false;
        while (this.segments.length > 1 && this.active.baseOffset > offset) {
          // Out of the list only once its files are gone (as in cutBack): after a failed
          // delete the reopen must still know this file's sync history, or it would adopt
          // pages a failed fdatasync doomed (seed 1375433083 of the faults variant).
          await this.active.retire(true);
          this.segments.pop();
          removed = true;
        }
        // Durably gone before the segment that stays is cut: a power cut in between must not
        // bring later segments back behind a shortened one (a hole in the offsets).
        if (removed) await syncDirectory(this.fs, this.directory);
        await this.truncateActive(offset);
        if (Math.max(this.active.nextOffset, this.active.baseOffset) < offset + 1) {
          // Compaction had removed the last records kept: without a segment named after the
          // next offset, the next append (and the next open) would hand out their offsets again.
          this.segments.push(await Segment.create(this.fs, this.directory, offset + 1, this.settings));
          await syncDirectory(this.fs, this.directory);
        }
      } catch (error) {
        this.failStructure(error, 'truncate');
      }
      this.nextOffset = Math.max(this.active.nextOffset, this.active.baseOffset);
      this.visibleNextOffset = this.nextOffset;
      this.epoch = Math.max(0, ...this.segments.map((segment) => segment.epoch));
      this.activeSinceMs = this.active.sizeBytes === 0 ? null : this.active.firstTimestamp;
    }));
  }

  /** Cuts the active segment after `offset`, re-encoding a batch that straddles it. */
  private async truncateActive(offset: number): Promise<void> {
    const segment = this.active;
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
      await recordTruncationIntent(this.fs, this.directory, segment.baseOffset, intent);
      await segment.overwriteAt(intent.position, intent.batch);
      await segment.truncateTo(intent.position + intent.batch.length);
      await clearTruncationIntent(this.fs, this.directory, segment.baseOffset);
    }
    segment.makeVisible();
  }

  /** Deletes whole sealed segments past the age or size limit; returns how many went. */
  async enforceRetention(): Promise<number> {
    this.assertOpen();
    if (this.config.retentionMs === null && this.config.retentionBytes === null) return 0;
    return this.writeLock.run(async () => {
      if (this.failure !== null) return 0;
      const count = segmentsToDelete(this.segments, this.config, this.context.clock());
      const removed = this.segments.splice(0, count);
      try {
        for (const segment of removed) await segment.retire(true);
        if (count > 0) await syncDirectory(this.fs, this.directory);
      } catch (error) {
        this.failStructure(error, 'retention');
      }
      if (count > 0) {
        this.context.logger.info({ shard: this.name, segments: count, startOffset: this.startOffset }, 'retention deleted segments');
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
    this.assertOpen();
    checkOffsetArgument(offset, 'offset', this.name);
    return this.writeLock.run(async () => {
      if (this.failure !== null) throw this.failure;
      const count = segmentsBelow(this.segments, offset);
      const removed = this.segments.splice(0, count);
      try {
        for (const segment of removed) await segment.retire(true);
        if (count > 0) await syncDirectory(this.fs, this.directory);
      } catch (error) {
        this.failStructure(error, 'segment deletion');
      }
      if (count > 0) this.context.logger.info({ shard: this.name, segments: count, startOffset: this.startOffset }, 'deleted segments below an offset');
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
    this.assertOpen();
    if (!this.config.compacted) throw JournalErrors.invalidArgument.create({ shard: this.name }, 'shard', this.name, 'is not a compacted shard (compacted: false)');
    return this.compactionLock.run(async () => {
      const report: CompactionReport = { segmentsRewritten: 0, segmentsSkipped: 0, recordsRemoved: 0, bytesBefore: 0, bytesAfter: 0 };
      const sealed = this.segments.slice(0, -1);
      if (sealed.length === 0) return report;
      let latest: Map<string, number>;
      try {
        latest = await this.latestOffsetPerKey();
      } catch (error) {
        // Damage hides which record is the latest of its keys; compacting around it could drop
        // the only readable value of a key. Leave the shard alone until it is repaired.
        if (!isShardlineError(error, JournalErrors.corruptBatch.code)) throw error;
        this.context.logger.error({ shard: this.name, err: error }, 'compaction skipped a damaged shard');
        return { ...report, segmentsSkipped: sealed.length };
      }
      const tombstoneCutoff = this.context.clock() - this.config.tombstoneRetentionMs;
      for (const segment of sealed) {
        if (!this.segments.includes(segment)) continue;
        segment.retain();
        let rewrite;
        try {
          rewrite = await compactSegment(this.fs, segment, (record) => record.key !== null && latest.get(record.key.toString('latin1')) === record.offset && !(record.value === null && record.timestamp < tombstoneCutoff));
        } catch (error) {
          // One damaged segment must not stop the others from being compacted.
          if (!isShardlineError(error, JournalErrors.corruptBatch.code)) throw error;
          this.context.logger.error({ shard: this.name, segment: segment.name, err: error }, 'compaction skipped a damaged segment');
          report.segmentsSkipped += 1;
          continue;
        } finally {
          segment.release();
        }
        if (rewrite === null) continue;
        await this.writeLock.run(async () => {
          if (this.failure !== null) {
            await this.fs.unlink(rewrite.path).catch(() => undefined);
            throw this.failure;
          }
          await this.swapCompacted(segment, rewrite.path, rewrite.recordsKept).catch((error: unknown) => this.failStructure(error, 'compaction'));
        });
        report.segmentsRewritten += 1;
        report.recordsRemoved += rewrite.recordsRemoved;
        report.bytesBefore += segment.sizeBytes;
        report.bytesAfter += rewrite.bytes;
      }
      return report;
    });
  }

  private async latestOffsetPerKey(): Promise<Map<string, number>> {
    const latest = new Map<string, number>();
    const end = this.visibleNextOffset;
    let next = this.startOffset;
    while (next < end) {
      const { records, next: after } = await this.reader.readRange(next, { maxRecords: 10_000, maxBytes: 16 * 1024 * 1024 });
      for (const record of records) if (record.key !== null) latest.set(record.key.toString('latin1'), record.offset);
      if (after <= next) break;
      next = after;
    }
    return latest;
  }

  private async swapCompacted(segment: Segment, rewrittenPath: string, recordsKept: number): Promise<void> {
    const position = this.segments.indexOf(segment);
    if (position < 0 || position === this.segments.length - 1 || this.closed) {
      await this.fs.unlink(rewrittenPath).catch(() => undefined);
      return;
    }
    // The first segment stays, even empty, because its base offset is the shard's start offset:
    // compaction must not turn "read from 0" into an out-of-range error.
    if (recordsKept === 0 && position > 0) {
      this.segments.splice(position, 1);
      await this.fs.unlink(rewrittenPath).catch(() => undefined);
      await segment.retire(true);
    } else {
      try {
        await this.fs.rename(rewrittenPath, segment.logPath);
      } catch (error) {
        throw ioError('rename', rewrittenPath, error, { shard: this.name, segment: segment.name });
      }
      const { segment: replacement } = await Segment.open(this.fs, this.directory, segment.baseOffset, this.settings, false, segment.baseOffset, 0);
      try {
        await replacement.writeIndexFiles();
      } catch (error) {
        await replacement.close();
        throw error;
      }
      this.segments[position] = replacement;
      await segment.retire(false);
    }
    await syncDirectory(this.fs, this.directory);
  }

  // ---- lifecycle ------------------------------------------------------------------------

  /** Finishes queued appends, writes the active segment's indexes and closes every file. */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.pending.length > 0 || this.draining) await this.writeLock.run(async () => undefined);
    this.closed = true;
    if (this.intervalTimer !== null) clearInterval(this.intervalTimer);
    await this.writeLock.run(async () => {
      if (this.failure === null) {
        await this.active.sync().catch(() => undefined);
        await this.active.writeIndexFiles().catch(() => undefined);
      }
      for (const segment of this.segments) await segment.close();
    });
    this.rejectWaiters();
  }

  /** Closes the shard and removes its segment files (the directory is removed by the journal). */
  async destroy(): Promise<void> {
    this.closed = true;
    if (this.intervalTimer !== null) clearInterval(this.intervalTimer);
    for (const append of this.pending.splice(0)) append.reject(JournalErrors.closed.create({ shard: this.name }, `shard ${this.name}`));
    await this.writeLock.run(async () => {
      for (const segment of this.segments) await segment.close();
    });
    this.rejectWaiters();
  }

  private rejectWaiters(): void {
    const error = JournalErrors.closed.create({ shard: this.name }, `shard ${this.name}`);
    for (const waiter of this.waiters) waiter.reject(error);
    this.waiters.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw JournalErrors.closed.create({ shard: this.name }, `shard ${this.name}`);
  }
}
