// The node runtime's disk parts: the data shards' retention settings (a shard policy the
// journal applies at open, at create and live) and the disk watch, which measures the data
// directory's file system on a timer (statfs) and, through the pure decision in
// engine/availability/disk-watermark.ts, sets or clears the broker write gate's 'disk-low'
// block. Below the watermark the node refuses publishes (SL_BROKER_WRITES_BLOCKED), keeps
// delivering and taking acknowledgements, reports not-ready, logs one warning and resumes by
// itself when space returns.
import { statfs } from 'node:fs/promises';
import type { Logger } from 'pino';
import { DATA_SHARD_PREFIX, diskIsLow, lowWatermarkBytes, type Broker, type DiskStatus, type DiskWatermarkSettings } from '../engine/index.js';
import type { Journal, ShardPolicy } from '../journal/index.js';
import type { NodeSettings } from './settings.js';

/** The data shards' settings from the node's: retention by age and size, segment size. */
export function dataShardPolicy(settings: Pick<NodeSettings, 'dataRetention' | 'dataRetentionBytes' | 'dataSegmentBytes'>): ShardPolicy {
  return (name, config) => {
    // Only the MQTT data shards: system shards ($sessions, $retained, $users, $acl, $delayed,
    // $shared, $snapshots, $snapshots.data) are compacted and keep their own rules; retention must never delete their state.
    if (config.compacted || !name.startsWith(DATA_SHARD_PREFIX) || !/^\d+$/.test(name.slice(DATA_SHARD_PREFIX.length))) return undefined;
    return {
      retentionMs: settings.dataRetention === 0 ? null : settings.dataRetention * 1000,
      retentionBytes: settings.dataRetentionBytes === 0 ? null : settings.dataRetentionBytes,
      segmentBytes: settings.dataSegmentBytes,
    };
  };
}

export interface DiskWatchOptions {
  journal: Journal;
  /** Read at every check, so live changes apply at the next one. */
  settings: () => DiskWatermarkSettings;
  intervalMs: number;
  logger: Logger;
  /** The broker in this process, whose write gate the watch drives; none on a journal-only node. */
  broker?: Broker;
  clock?: () => number;
}

export class DiskWatch {
  #status: DiskStatus | undefined;
  #low = false;
  #ranOutOfSpace = false;
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  readonly #clock: () => number;

  private constructor(private readonly options: DiskWatchOptions) {
    this.#clock = options.clock ?? Date.now;
  }

  /** Measures once (so the first status and block are in place before clients come), then on the timer. */
  static async start(options: DiskWatchOptions): Promise<DiskWatch> {
    const watch = new DiskWatch(options);
    await watch.check();
    watch.#timer = setInterval(() => watch.#checkLogged(), options.intervalMs);
    watch.#timer.unref();
    if (options.broker !== undefined) options.broker.onDiskFull = () => watch.ranOutOfSpace();
    return watch;
  }

  /** The latest measurement; undefined before the first one succeeded. */
  get status(): DiskStatus | undefined {
    return this.#status;
  }

  /** An append failed with ENOSPC: block now (the next checks clear it once space is back). */
  ranOutOfSpace(): void {
    this.#ranOutOfSpace = true;
    if (!this.#low) this.#setLow(true, this.#status?.freeBytes ?? 0, this.#status?.thresholdBytes ?? 0, 'an append ran out of disk space (ENOSPC)');
    this.#checkLogged();
  }

  /** A check nobody awaits: its failure is logged, never left unhandled. */
  #checkLogged(): void {
    this.check().catch((error: unknown) => this.options.logger.error({ err: error }, 'measuring the data directory\'s free space failed'));
  }

  /** One measurement and decision; concurrent calls share it. */
  check(): Promise<void> {
    this.#checking ??= this.#measure().finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  async #measure(): Promise<void> {
    const { journal, logger } = this.options;
    let totalBytes: number;
    let freeBytes: number;
    let usedBytes: number;
    try {
      const stats = await statfs(journal.directory);
      totalBytes = stats.blocks * stats.bsize;
      freeBytes = stats.bavail * stats.bsize;
      usedBytes = (stats.blocks - stats.bfree) * stats.bsize;
    } catch (error) {
      logger.error({ err: error, path: journal.directory }, 'measuring the free space of the data directory failed');
      return;
    }
    let journalBytes = 0;
    try {
      for (const shard of journal.listShards()) journalBytes += shard.sizeBytes;
    } catch {
      // The journal is closing: the last figure stays.
      journalBytes = this.#status?.journalBytes ?? 0;
    }
    const settings = this.options.settings();
    const thresholdBytes = lowWatermarkBytes(totalBytes, settings);
    const low = diskIsLow({ totalBytes, freeBytes }, settings, this.#low, this.#ranOutOfSpace);
    this.#status = { path: journal.directory, totalBytes, freeBytes, usedBytes, journalBytes, thresholdBytes, low, checkedAt: this.#clock() };
    if (low !== this.#low) this.#setLow(low, freeBytes, thresholdBytes, this.#ranOutOfSpace ? 'an append ran out of disk space (ENOSPC)' : 'below the watermark');
  }

  #setLow(low: boolean, freeBytes: number, thresholdBytes: number, why: string): void {
    const { logger, broker, journal } = this.options;
    this.#low = low;
    if (this.#status !== undefined) this.#status.low = low;
    if (low) {
      const detail = `${freeBytes} bytes free on ${journal.directory}, ${why} (${thresholdBytes} bytes: the smaller of disk-free-min-percent and disk-free-min-bytes); free space or lower data-retention`;
      broker?.writeGate.block('disk-low', detail, this.#clock());
      // One warning per episode, not one per check.
      logger.warn({ path: journal.directory, freeBytes, thresholdBytes }, `disk space low: publishes are refused until space is freed: ${detail}`);
      return;
    }
    this.#ranOutOfSpace = false;
    broker?.writeGate.unblock('disk-low');
    logger.info({ path: journal.directory, freeBytes, thresholdBytes }, 'disk space is back above the watermark: publishes are accepted again');
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.options.broker !== undefined) this.options.broker.onDiskFull = undefined;
  }
}
