// A shard: an ordered, append-only log of records kept in segments (oldest first; the last is
// the active one that takes appends). This class is the shard's public face; the work is done
// by its parts, which share one ShardState (shard-state.ts):
// - ShardWriter (shard-writer.ts): the append queue, the pipelined group commit, rolls and the
//   cut back after a failed write or fdatasync;
// - ShardReader (shard-reader.ts): reads and tails, behind a read-only view;
// - ShardMaintenance (shard-maintenance.ts): truncation, retention and compaction;
// - loadShard / reloadShard (shard-load.ts): opening the segments from the files.
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
import { JournalErrors, ioError } from '../errors.js';
import type { JournalFileSystem } from '../file-system.js';
import { nodeFileSystem } from '../node-file-system.js';
import type { AppendResult, JournalRecord, RecordInput } from '../record.js';
import { syncDirectory, writeDurably } from '../segment/segment.js';
import { resolveShardConfig, type ShardConfig } from './shard-config.js';
import { loadShard } from './shard-load.js';
import { ShardMaintenance, type CompactionReport } from './shard-maintenance.js';
import { ShardReader, type TailOptions } from './shard-reader.js';
import { ShardState, type ShardContext } from './shard-state.js';
import { ShardWriter, type AppendOptions } from './shard-writer.js';
import type { ReadOptions } from './read-limits.js';

export { RECOVERY_BACKOFF_MS, type AppendOptions } from './shard-writer.js';
export type { CompactionReport } from './shard-maintenance.js';
export type { CommitEvent, ShardContext, UnsafeDurabilitySwitches } from './shard-state.js';
export type { TailOptions };

export const SHARD_CONFIG_FILE = 'shard.json';
/** Settings an existing shard may change (see Shard.reconfigure). */
export const RECONFIGURABLE_SETTINGS = ['retentionMs', 'retentionBytes', 'segmentBytes', 'segmentMs'] as const;
export type ReconfigurableSetting = (typeof RECONFIGURABLE_SETTINGS)[number];
const SHARD_CONFIG_VERSION = 1;

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

export class Shard {
  private readonly state: ShardState;
  private readonly writer: ShardWriter;
  private readonly reader: ShardReader;
  private readonly maintenance: ShardMaintenance;

  private constructor(
    readonly name: string,
    readonly directory: string,
    config: ShardConfig,
    context: ShardContext,
  ) {
    this.state = new ShardState(name, directory, config, context);
    this.writer = new ShardWriter(this.state);
    // The view reads the shard's state as it is at each call (reload replaces the segments).
    this.reader = new ShardReader({
      name,
      logger: context.logger,
      segments: () => this.state.segments,
      visibleEnd: () => this.state.visibleNextOffset,
      startOffset: () => this.state.startOffset,
      assertOpen: () => this.state.assertOpen(),
      waitForAppend: (offset, signal) => this.state.waitForAppend(offset, signal),
    });
    this.maintenance = new ShardMaintenance(this.state, this.reader);
  }

  /** The shard's settings; reconfigure() may change the ones in RECONFIGURABLE_SETTINGS. */
  get config(): ShardConfig {
    return this.state.config;
  }

  /**
   * Changes settings of an open shard that take effect without touching stored data: the
   * retention limits (next retention run) and the segment size and age (next roll). The new
   * settings are validated as a whole and written to shard.json (durably) before they apply,
   * under the write lock so no append reads half a change.
   */
  async reconfigure(changes: Partial<Pick<ShardConfig, ReconfigurableSetting>>): Promise<ShardConfig> {
    this.state.assertOpen();
    for (const key of Object.keys(changes)) {
      if (!(RECONFIGURABLE_SETTINGS as readonly string[]).includes(key)) {
        throw JournalErrors.invalidConfig.create({ shard: this.name }, key, (changes as Record<string, unknown>)[key], `cannot change on an existing shard; changeable: ${RECONFIGURABLE_SETTINGS.join(', ')}`);
      }
    }
    const next = resolveShardConfig({ ...this.state.config, ...changes });
    if (RECONFIGURABLE_SETTINGS.every((key) => next[key] === this.state.config[key])) return this.state.config;
    return this.state.writeLock.run(async () => {
      // A new file renamed over the old one: a crash or a full disk never leaves a shard
      // without a readable shard.json.
      const path = join(this.directory, SHARD_CONFIG_FILE);
      await writeDurably(this.state.fs, `${path}.new`, Buffer.from(JSON.stringify({ version: SHARD_CONFIG_VERSION, config: next }, null, 2)));
      try {
        await this.state.fs.rename(`${path}.new`, path);
      } catch (error) {
        throw ioError('rename', `${path}.new`, error, { shard: this.name });
      }
      await syncDirectory(this.state.fs, this.directory);
      this.state.config = next;
      this.state.context.logger.info({ shard: this.name, retentionMs: next.retentionMs, retentionBytes: next.retentionBytes, segmentBytes: next.segmentBytes, segmentMs: next.segmentMs }, 'shard settings changed');
      return next;
    });
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
      await loadShard(shard.state);
    } catch (error) {
      // The segments opened before the failure would otherwise keep their file handles.
      for (const segment of shard.state.segments) await segment.close();
      throw error;
    }
    shard.writer.startTimers();
    return shard;
  }

  info(): ShardInfo {
    this.state.assertOpen();
    let sizeBytes = 0;
    let maxTimestamp = 0;
    for (const segment of this.state.segments) {
      sizeBytes += segment.sizeBytes;
      maxTimestamp = Math.max(maxTimestamp, segment.maxTimestamp);
    }
    return {
      name: this.name,
      config: this.config,
      startOffset: this.state.startOffset,
      nextOffset: this.state.visibleNextOffset,
      epoch: this.state.epoch,
      sizeBytes,
      segmentCount: this.state.segments.length,
      maxTimestamp,
    };
  }

  get startOffset(): number {
    return this.state.startOffset;
  }

  /**
   * About how many bytes of log hold offsets from `offset` to the end (for catch-up progress):
   * whole later segments plus the rest of the one holding `offset` from its nearest indexed
   * batch at or before it, so it may count up to one index interval too many. No I/O.
   */
  approximateBytesFrom(offset: number): number {
    let bytes = 0;
    const segments = this.state.segments;
    for (let i = segments.length - 1; i >= 0; i -= 1) {
      const segment = segments[i] as (typeof segments)[number];
      if (segment.baseOffset <= offset) return bytes + Math.max(0, segment.sizeBytes - segment.index.lookupOffset(offset));
      bytes += segment.sizeBytes;
    }
    return bytes;
  }

  /** The file system the shard's files are on (for files kept beside its segments). */
  get fs(): JournalFileSystem {
    return this.state.fs;
  }

  /** Segment files, oldest first, for audit tools. */
  segmentPaths(): { baseOffset: number; logPath: string; offsetIndexPath: string; timeIndexPath: string; sizeBytes: number }[] {
    return this.state.segments.map((segment) => ({ baseOffset: segment.baseOffset, logPath: segment.logPath, offsetIndexPath: segment.offsetIndexPath, timeIndexPath: segment.timeIndexPath, sizeBytes: segment.sizeBytes }));
  }

  // ---- read -----------------------------------------------------------------------------

  async read(fromOffset: number, options: ReadOptions = {}): Promise<JournalRecord[]> {
    return this.reader.read(fromOffset, options);
  }

  /**
   * Calls `listener` with every batch this shard writes, sealed as stored, in offset order, once
   * written and before it is durable or visible (so before readBatches can return it; a failed
   * write or sync may still cut it back). Must not throw. Returns the function that stops it.
   */
  observeWrites(listener: (batches: readonly Buffer[]) => void): () => void {
    return this.writer.observeWrites(listener);
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
    return this.state.waitForAppend(offset, signal);
  }

  // ---- append ---------------------------------------------------------------------------

  /**
   * Appends records as one batch. Resolves with their offsets once the batch is acknowledged
   * under the shard's durability mode; rejects with a coded error and writes nothing on bad
   * input.
   */
  append(records: readonly RecordInput[], options: AppendOptions = {}): Promise<AppendResult> {
    return this.writer.append(records, options);
  }

  /**
   * Appends a batch exactly as another replica stored it (replication: a follower copying its
   * leader's batches); it must verify and start at the log end. See ShardWriter.appendStored.
   */
  appendStored(batch: Buffer): Promise<AppendResult> {
    return this.writer.appendStored(batch);
  }

  /** Rolls the active segment now if it holds anything (tests and operators). */
  async rollNow(): Promise<void> {
    return this.writer.rollNow();
  }

  // ---- truncation, retention, compaction -------------------------------------------------

  /**
   * Removes every record with an offset above `offset`; the next append gets the offset after
   * the last record kept. `offset` may be startOffset - 1 (empty the shard). For replication:
   * a follower cuts entries that diverge from its new leader.
   */
  async truncateAfter(offset: number): Promise<void> {
    return this.maintenance.truncateAfter(offset);
  }

  /**
   * Bounds retention and compaction to offsets below `limit()` (replication's high watermark;
   * null lifts the bound): retention deletes only segments wholly below it, and compaction
   * neither removes a record at or above it nor lets one there supersede an older record.
   */
  limitMaintenance(limit: (() => number) | null): void {
    this.state.maintenanceLimit = limit;
  }

  /**
   * Empties the shard and makes it start at `offset`, at or past its end: a replica whose whole
   * log lies below its leader's log start (retention deleted what it would fetch next) starts
   * over there. Crash safe: the new empty segment is made durable before the old ones go.
   */
  async restartAt(offset: number): Promise<void> {
    return this.maintenance.restartAt(offset);
  }

  /** Deletes whole sealed segments past the age or size limit; returns how many went. */
  async enforceRetention(): Promise<number> {
    return this.maintenance.enforceRetention();
  }

  /**
   * Deletes the sealed segments whose records all lie below `offset` (oldest first, never the
   * active segment); the start offset moves to the first kept segment. Returns how many went.
   */
  async dropSegmentsBelow(offset: number): Promise<number> {
    return this.maintenance.dropSegmentsBelow(offset);
  }

  /**
   * Compacts sealed segments of a compacted shard: a record survives only if it is the latest
   * of its key; the rewrite runs outside the write lock, so appends continue meanwhile.
   */
  async compact(): Promise<CompactionReport> {
    return this.maintenance.compact();
  }

  // ---- lifecycle ------------------------------------------------------------------------

  /** Finishes queued appends, writes the active segment's indexes and closes every file. */
  async close(): Promise<void> {
    const state = this.state;
    if (state.closed) return;
    while (this.writer.busy) await state.writeLock.run(async () => undefined);
    state.closed = true;
    this.writer.stopTimers();
    await state.writeLock.run(async () => {
      if (state.failure === null) {
        await state.active.sync().catch(() => undefined);
        await state.active.writeIndexFiles().catch(() => undefined);
      }
      for (const segment of state.segments) await segment.close();
    });
    state.rejectWaiters();
  }

  /** Closes the shard and removes its segment files (the directory is removed by the journal). */
  async destroy(): Promise<void> {
    const state = this.state;
    state.closed = true;
    this.writer.stopTimers();
    this.writer.rejectQueued(state.closedError());
    await state.writeLock.run(async () => {
      for (const segment of state.segments) await segment.close();
    });
    state.rejectWaiters();
  }
}
