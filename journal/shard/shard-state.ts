// The state a shard's parts share: the segment list, the offsets, the locks, the failed state
// and the readers waiting for appends. The writer (shard-writer.ts), the maintenance work
// (shard-maintenance.ts), loading (shard-load.ts) and the Shard facade all change the same
// shard, so they hold this one object rather than references to each other; each part keeps
// the state only it uses to itself.
import type { Logger } from 'pino';
import { JournalErrors, ShardlineError, ioError } from '../errors.js';
import type { JournalFileSystem } from '../file-system.js';
import { nodeFileSystem } from '../node-file-system.js';
import type { Segment, SegmentSettings } from '../segment/segment.js';
import { Mutex } from './mutex.js';
import { HARD_MAX_BATCH_BYTES, type ShardConfig } from './shard-config.js';

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

interface Waiter {
  offset: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

export class ShardState {
  segments: Segment[] = [];
  readonly writeLock = new Mutex();
  readonly compactionLock = new Mutex();
  nextOffset = 0;
  visibleNextOffset = 0;
  epoch = 0;
  /**
   * Set when a write or an fdatasync failed: the shard refuses appends with this error until it
   * is reopened (see ShardWriter.recover), because after a failed sync the page cache may hold
   * data that will never reach the disk (Linux marks such pages clean), so nothing past the
   * last durable end can be trusted or built on.
   */
  failure: ShardlineError | null = null;
  failedAt = 0;
  closed = false;
  /**
   * When the active segment's age started: the journal clock at its first write, or, after a
   * reopen, its first record's timestamp. Rolling by age uses this, not record timestamps alone,
   * so writers that give old timestamps do not roll a segment per append.
   */
  activeSinceMs: number | null = null;
  /**
   * The offset retention and compaction stay below (replication's high watermark: records at
   * or above it may still be truncated, so nothing there may be deleted or count as superseding
   * an older record); null: no bound.
   */
  maintenanceLimit: (() => number) | null = null;
  private readonly waiters = new Set<Waiter>();

  constructor(
    readonly name: string,
    readonly directory: string,
    /** The shard's settings; Shard.reconfigure may change the reconfigurable ones. */
    public config: ShardConfig,
    readonly context: ShardContext,
  ) {}

  get fs(): JournalFileSystem {
    return this.context.fileSystem ?? nodeFileSystem;
  }

  get settings(): SegmentSettings {
    return { indexIntervalBytes: this.config.indexIntervalBytes, maxBatchBytes: HARD_MAX_BATCH_BYTES };
  }

  get active(): Segment {
    const segment = this.segments[this.segments.length - 1];
    if (segment === undefined) throw new Error(`shard ${this.name} has no active segment`);
    return segment;
  }

  get startOffset(): number {
    return this.segments[0]?.baseOffset ?? 0;
  }

  /** Where retention and compaction must stop: the maintenance limit, else the visible end. */
  maintenanceEnd(): number {
    const limit = this.maintenanceLimit?.() ?? Number.POSITIVE_INFINITY;
    return Math.min(limit, this.visibleNextOffset);
  }

  /** The log's fdatasync, unless a self-test turned it off (UnsafeDurabilitySwitches). */
  async syncData(segment: Segment): Promise<void> {
    if (this.context.unsafe?.skipDataSync === true) return;
    await segment.sync();
  }

  closedError(): ShardlineError {
    return JournalErrors.closed.create({ shard: this.name }, `shard ${this.name}`);
  }

  assertOpen(): void {
    if (this.closed) throw this.closedError();
  }

  /**
   * A truncation, retention or compaction step failed part way: the shard's state in memory may
   * no longer match its files, so it refuses appends until ShardWriter.recover has reloaded it.
   */
  failStructure(error: unknown, operation: string): never {
    const failure = error instanceof ShardlineError ? error : ioError(operation, this.directory, error, { shard: this.name });
    if (failure.code !== JournalErrors.closed.code && this.failure === null) {
      this.failure = failure;
      this.failedAt = this.context.clock();
      this.context.logger.error({ shard: this.name, err: failure }, `${operation} failed; the shard refuses appends until it is reopened from its files`);
    }
    throw failure;
  }

  /** Resolves true once a record at or after `offset` is visible; false when aborted. */
  waitForAppend(offset: number, signal?: AbortSignal): Promise<boolean> {
    if (this.closed) return Promise.reject(this.closedError());
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

  wakeWaiters(): void {
    for (const waiter of this.waiters) {
      if (this.visibleNextOffset > waiter.offset) {
        this.waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  rejectWaiters(): void {
    const error = this.closedError();
    for (const waiter of this.waiters) waiter.reject(error);
    this.waiters.clear();
  }
}
