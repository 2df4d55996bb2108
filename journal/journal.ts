// A journal: one data directory holding many shards.
//
// Layout:
//   DIR/shardline-journal.json   marker: {"format": 1}; a non-empty directory without it is refused
//   DIR/journal.lock             the process that has the journal open (directory-lock.ts)
//   DIR/shards/NAME/shard.json   the shard's settings
//   DIR/shards/NAME/<20-digit base offset>.log | .index | .timeindex
// Shard creation and deletion go through a rename of the whole shard directory, so a crash
// leaves either the old or the new state, never half a shard.
import { dirname, join, resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import { acquireDirectoryLock, releaseDirectoryLock, type ProcessProbe } from './directory-lock.js';
import { JournalErrors, ioError } from './errors.js';
import type { JournalFileSystem } from './file-system.js';
import { nodeFileSystem } from './node-file-system.js';
import type { AppendResult, JournalRecord, RecordInput } from './record.js';
import { syncDirectory, writeDurably } from './segment/segment.js';
import { resolveShardConfig, type ShardConfig } from './shard/shard-config.js';
import { validateShardName } from './shard/shard-name.js';
import { Shard, type AppendOptions, type CommitEvent, type CompactionReport, type ReconfigurableSetting, type ShardInfo, type TailOptions, type UnsafeDurabilitySwitches } from './shard/shard.js';
import type { ReadOptions } from './shard/read-limits.js';

export const JOURNAL_MARKER_FILE = 'shardline-journal.json';
export const JOURNAL_FORMAT_VERSION = 1;
const SHARDS_DIR = 'shards';
const HOUSEKEEPING_PREFIX = '.';
/**
 * Data directories open in this process, per file system. The lock file stops other
 * processes; this stops a second Journal in the same process, whose pid the lock file cannot
 * tell apart. (A simulated disk gives a new file system per boot, so a journal reopened after
 * a simulated power cut is not refused because of the journal that died in it.)
 */
const openDirectories = new WeakMap<JournalFileSystem, Set<string>>();

function openDirectoriesOf(fs: JournalFileSystem): Set<string> {
  let directories = openDirectories.get(fs);
  if (directories === undefined) {
    directories = new Set();
    openDirectories.set(fs, directories);
  }
  return directories;
}

export interface JournalOptions {
  /** Defaults for shards created without their own settings. */
  shardDefaults?: Partial<ShardConfig>;
  clock?: () => number;
  logger?: Logger;
  /** How often retention runs, in ms; 0 turns the background run off. */
  retentionCheckMs?: number;
  /**
   * Settings the node imposes on shards by name (the data shards' retention, say): applied to
   * every shard when the journal opens, to each shard it creates (over the caller's settings),
   * and again by setShardPolicy. Undefined for a shard: its own settings stay.
   */
  shardPolicy?: ShardPolicy;
  /** How long to wait for another live process's lock before SL_JOURNAL_LOCKED; default 0. */
  lockWaitMs?: number;
  /** How the lock judges its holder (tests); default: /proc. */
  lockProbe?: ProcessProbe;
  /** Where the files are; default: the real disk (tests pass a simulated disk). */
  fileSystem?: JournalFileSystem;
  /** Self-tests of the power-cut checks only: durability turned off on purpose. */
  unsafe?: UnsafeDurabilitySwitches;
}

/** Which reconfigurable settings a shard gets from the node; undefined leaves the shard alone. */
export type ShardPolicy = (name: string, config: ShardConfig) => Partial<Pick<ShardConfig, ReconfigurableSetting>> | undefined;

export type CommitListener = (event: CommitEvent) => void;

export class Journal {
  private readonly shards = new Map<string, Shard>();
  private readonly opening = new Map<string, Promise<Shard>>();
  private closed = false;
  private retentionTimer: NodeJS.Timeout | null = null;

  private constructor(
    readonly directory: string,
    private readonly options: Required<Pick<JournalOptions, 'clock' | 'logger'>> & JournalOptions,
  ) {}

  static async open(directory: string, options: JournalOptions = {}): Promise<Journal> {
    const path = resolve(directory);
    const journal = new Journal(path, { clock: Date.now, logger: pino({ level: 'silent' }), ...options });
    const open = openDirectoriesOf(journal.fs);
    if (open.has(path)) throw JournalErrors.locked.create({}, path, process.pid, 0);
    open.add(path);
    try {
      await journal.prepareDirectory();
      await acquireDirectoryLock(path, { waitMs: options.lockWaitMs ?? 0, logger: journal.options.logger, fileSystem: journal.fs, ...(options.lockProbe === undefined ? {} : { probe: options.lockProbe }) });
    } catch (error) {
      open.delete(path);
      throw error;
    }
    try {
      await journal.openShards();
    } catch (error) {
      await journal.closeShards();
      await releaseDirectoryLock(path, journal.fs);
      open.delete(path);
      throw error;
    }
    journal.startRetention(options.retentionCheckMs ?? 60_000);
    return journal;
  }

  private get fs(): JournalFileSystem {
    return this.options.fileSystem ?? nodeFileSystem;
  }

  private get shardsDirectory(): string {
    return join(this.directory, SHARDS_DIR);
  }

  private async prepareDirectory(): Promise<void> {
    const markerPath = join(this.directory, JOURNAL_MARKER_FILE);
    let entries: string[];
    // Directories mkdir is about to create: their names are durable only once their parents are synced.
    const created: string[] = [];
    for (let dir = this.directory; ; dir = dirname(dir)) {
      if (await this.fs.stat(dir).then(() => true, () => false)) break;
      created.push(dir);
      if (dirname(dir) === dir) break;
    }
    try {
      await this.fs.mkdir(this.directory, { recursive: true });
      entries = await this.fs.readdir(this.directory);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR' || code === 'EEXIST') throw JournalErrors.notAJournal.create({}, this.directory, 'it is a file, not a directory');
      throw ioError('open data directory', this.directory, error);
    }
    if (!entries.includes(JOURNAL_MARKER_FILE)) {
      if (entries.length > 0) throw JournalErrors.notAJournal.create({}, this.directory, `it is not empty and has no ${JOURNAL_MARKER_FILE}`);
      await this.fs.mkdir(this.shardsDirectory, { recursive: true });
      await writeDurably(this.fs, markerPath, Buffer.from(`${JSON.stringify({ format: JOURNAL_FORMAT_VERSION })}\n`));
      await syncDirectory(this.fs, this.directory);
      // Without this a power cut can take the whole new journal with it (its directory's name
      // never reached the disk), acknowledged appends included. The parent is synced even when
      // the directory already existed: a crash may have left it empty, its name not yet durable.
      for (const parent of new Set([dirname(this.directory), ...created.map((dir) => dirname(dir))])) {
        if (parent !== this.directory) await syncDirectory(this.fs, parent);
      }
      return;
    }
    let marker: { format?: unknown };
    try {
      marker = JSON.parse((await this.fs.readFile(markerPath)).toString('utf8')) as typeof marker;
    } catch {
      throw JournalErrors.notAJournal.create({}, this.directory, `${JOURNAL_MARKER_FILE} is not valid JSON`);
    }
    if (marker.format !== JOURNAL_FORMAT_VERSION) {
      throw JournalErrors.unsupportedFormat.create({}, `journal ${this.directory}`, Number(marker.format), JOURNAL_FORMAT_VERSION);
    }
    await this.fs.mkdir(this.shardsDirectory, { recursive: true });
  }

  private async openShards(): Promise<void> {
    const entries = await this.fs.readdir(this.shardsDirectory);
    for (const entry of entries) {
      if (entry.startsWith(HOUSEKEEPING_PREFIX)) {
        // A create or delete that a crash interrupted: finish it by removing the leftover.
        await this.fs.rm(join(this.shardsDirectory, entry), { recursive: true, force: true });
        continue;
      }
      const path = join(this.shardsDirectory, entry);
      if (!(await this.fs.stat(path)).isDirectory()) {
        // A stray file is not a shard; refusing to start over it would help nobody.
        this.options.logger.warn({ path }, 'ignoring a file in the shards directory');
        continue;
      }
      const name = validateShardName(entry);
      const shard = await Shard.open(name, path, this.shardContext());
      this.shards.set(name, shard);
      await this.applyPolicy(shard);
    }
  }

  private async applyPolicy(shard: Shard): Promise<void> {
    const changes = this.options.shardPolicy?.(shard.name, shard.config);
    if (changes !== undefined) await shard.reconfigure(changes);
  }

  /**
   * Replaces the shard policy (a live settings change) and applies it to every open shard;
   * resolves once each shard's new settings are on disk and in effect.
   */
  async setShardPolicy(policy: ShardPolicy | undefined): Promise<void> {
    this.assertOpen();
    this.options.shardPolicy = policy;
    for (const shard of [...this.shards.values()]) await this.applyPolicy(shard);
  }

  private readonly commitListeners = new Set<CommitListener>();

  /** Calls `listener` after every group commit of any shard (metrics); returns the unsubscribe. */
  onCommit(listener: CommitListener): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  private shardContext() {
    return {
      clock: this.options.clock,
      logger: this.options.logger,
      fileSystem: this.fs,
      ...(this.options.unsafe === undefined ? {} : { unsafe: this.options.unsafe }),
      onCommit: (event: CommitEvent) => {
        for (const listener of this.commitListeners) {
          try {
            listener(event);
          } catch (error) {
            this.options.logger.error({ err: error }, 'a commit listener failed');
          }
        }
      },
    };
  }

  private startRetention(intervalMs: number): void {
    if (intervalMs <= 0) return;
    // A run that takes longer than the interval (a big compaction) is not stacked up behind:
    // the next tick is skipped while one runs. Both steps log their own failures per shard; the
    // catch is for anything else (never unhandled).
    let running = false;
    this.retentionTimer = setInterval(() => {
      if (running) return;
      running = true;
      this.enforceRetention()
        .then(() => this.compactDue())
        .catch((error: unknown) => this.options.logger.error({ err: error }, 'housekeeping failed'))
        .finally(() => (running = false));
    }, intervalMs);
    this.retentionTimer.unref();
  }

  async enforceRetention(): Promise<number> {
    let deleted = 0;
    for (const shard of this.shards.values()) {
      deleted += await shard.enforceRetention().catch((error: unknown) => {
        this.options.logger.error({ shard: shard.name, err: error }, 'retention failed');
        return 0;
      });
    }
    return deleted;
  }

  /**
   * Compacts every compacted shard that has sealed segments (housekeeping, on the retention
   * timer): system shards keyed by state, such as `$sessions`, would otherwise keep every
   * superseded value. Returns the number of records removed.
   */
  async compactDue(): Promise<number> {
    let removed = 0;
    for (const shard of [...this.shards.values()]) {
      if (this.closed) break;
      try {
        if (!shard.config.compacted || shard.info().segmentCount < 2) continue;
        removed += (await shard.compact()).recordsRemoved;
      } catch (error) {
        // A shard deleted or closed meanwhile, or damage (logged by compact itself): next round.
        this.options.logger.error({ shard: shard.name, err: error }, 'compaction failed');
      }
    }
    return removed;
  }

  async createShard(name: string, config: Partial<ShardConfig> = {}): Promise<ShardInfo> {
    this.assertOpen();
    validateShardName(name);
    const requested = resolveShardConfig({ ...this.options.shardDefaults, ...config });
    const resolved = resolveShardConfig({ ...requested, ...this.options.shardPolicy?.(name, requested) });
    if (this.shards.has(name) || this.opening.has(name)) throw JournalErrors.shardExists.create({ shard: name }, name);
    const creation = this.materialiseShard(name, resolved);
    this.opening.set(name, creation);
    try {
      const shard = await creation;
      if (this.closed) {
        // The journal closed while the shard was being created: do not leave its files open.
        await shard.close();
        throw JournalErrors.closed.create({ shard: name }, `journal ${this.directory}`);
      }
      this.shards.set(name, shard);
      return shard.info();
    } finally {
      this.opening.delete(name);
    }
  }

  private async materialiseShard(name: string, config: ShardConfig): Promise<Shard> {
    const staging = join(this.shardsDirectory, `${HOUSEKEEPING_PREFIX}creating-${name}`);
    const final = join(this.shardsDirectory, name);
    try {
      await this.fs.rm(staging, { recursive: true, force: true });
      await this.fs.mkdir(staging);
      await Shard.writeConfig(this.fs, staging, config);
      await syncDirectory(this.fs, staging);
      await this.fs.rename(staging, final);
      await syncDirectory(this.fs, this.shardsDirectory);
    } catch (error) {
      throw ioError('create shard', final, error, { shard: name });
    }
    return Shard.open(name, final, this.shardContext());
  }

  async deleteShard(name: string): Promise<void> {
    const shard = this.shard(name);
    this.shards.delete(name);
    await shard.destroy();
    const doomed = join(this.shardsDirectory, `${HOUSEKEEPING_PREFIX}deleting-${name}-${process.pid}-${this.options.clock()}`);
    try {
      await this.fs.rename(shard.directory, doomed);
      await syncDirectory(this.fs, this.shardsDirectory);
      await this.fs.rm(doomed, { recursive: true, force: true });
    } catch (error) {
      throw ioError('delete shard', shard.directory, error, { shard: name });
    }
  }

  hasShard(name: string): boolean {
    return this.shards.has(name);
  }

  /** The shard, or SL_JOURNAL_SHARD_NOT_FOUND (after the name check). */
  shard(name: string): Shard {
    this.assertOpen();
    validateShardName(name);
    const shard = this.shards.get(name);
    if (shard === undefined) throw JournalErrors.shardNotFound.create({ shard: name }, name);
    return shard;
  }

  listShards(): ShardInfo[] {
    this.assertOpen();
    return [...this.shards.values()].map((shard) => shard.info()).sort((a, b) => a.name.localeCompare(b.name));
  }

  append(name: string, records: readonly RecordInput[], options?: AppendOptions): Promise<AppendResult> {
    return this.shard(name).append(records, options);
  }

  read(name: string, fromOffset: number, options?: ReadOptions): Promise<JournalRecord[]> {
    return this.shard(name).read(fromOffset, options);
  }

  readBatches(name: string, fromOffset: number, options?: { maxBytes?: number }): Promise<{ batches: Buffer[]; next: number }> {
    return this.shard(name).readBatches(fromOffset, options);
  }

  readByTime(name: string, timestamp: number, options?: ReadOptions): Promise<JournalRecord[]> {
    return this.shard(name).readByTime(timestamp, options);
  }

  tail(name: string, fromOffset: number, options?: TailOptions): AsyncGenerator<JournalRecord> {
    return this.shard(name).tail(fromOffset, options);
  }

  truncateAfter(name: string, offset: number): Promise<void> {
    return this.shard(name).truncateAfter(offset);
  }

  compact(name: string): Promise<CompactionReport> {
    return this.shard(name).compact();
  }

  info(name: string): ShardInfo {
    return this.shard(name).info();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retentionTimer !== null) clearInterval(this.retentionTimer);
    await this.closeShards();
    await releaseDirectoryLock(this.directory, this.fs);
    openDirectoriesOf(this.fs).delete(this.directory);
  }

  private async closeShards(): Promise<void> {
    for (const shard of this.shards.values()) await shard.close();
    this.shards.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw JournalErrors.closed.create({}, `journal ${this.directory}`);
  }
}

/** True when `directory` exists and holds a journal marker (for audit tools). */
export async function isJournalDirectory(directory: string): Promise<boolean> {
  try {
    return (await nodeFileSystem.stat(join(directory, JOURNAL_MARKER_FILE))).isFile();
  } catch {
    return false;
  }
}
