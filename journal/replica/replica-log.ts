// A replicated shard's log as the replication cores see it: the real Shard (segments, fsync)
// and its epoch history. The history is loaded on open from the epoch checkpoint (epochs.json,
// epoch-checkpoint.ts: each entry checked against its batch, then only the log past the
// checkpoint scanned), or rebuilt by a scan of every batch header when there is no usable
// checkpoint; it is kept in step with every append and truncation after that, and the
// checkpoint is rewritten before every cut and after every append that starts an epoch.
//
// Durable end: replicated shards run in fsync mode only, where a record is visible (and counted
// in nextOffset) only after the fdatasync that covers it, so the log end the cores see is its
// durable end.
//
// The writer table (idempotent appends, ../replication/writer-table.ts) is kept here too, in
// step with the same appends and cuts: the leader's own appends carry their writer stamp in the
// `sl-writer` header (writer-header.ts), a follower reads it from each batch it copies, and an
// open rebuilds the table from the last WRITER_SCAN_BYTES of the log.
import type { Logger } from 'pino';
import { EpochHistory, WriterTable, type EpochEntry } from '../replication/index.js';
import { lastOffsetOf, readBatchHeader } from '../segment/batch-format.js';
import type { AppendResult, RecordInput } from '../record.js';
import type { Shard } from '../shard/shard.js';
import { readEpochCheckpoint, writeEpochCheckpoint, type EpochCheckpoint } from './epoch-checkpoint.js';
import { RecentBatches } from './recent-batches.js';
import { readWriterStamp, stampRecords, type WriterSequence } from './writer-header.js';

const HISTORY_SCAN_BYTES = 4 * 1024 * 1024;
/** How many bytes of its newest batches a replicated shard keeps in memory for fetches: two full fetch answers. */
const RECENT_BATCH_BYTES = 2 * 1024 * 1024;
/**
 * How much of the log's tail an open reads to rebuild the writer table. A writer resends an
 * append for at most its retry deadline (60 s for a broker), so only recent batches matter; a
 * writer whose batches all lie before the window is treated as new (its stamp's ackedBelow
 * restarts it, in order), and a resend of a batch before the window would be stored again.
 */
export const WRITER_SCAN_BYTES = 16 * 1024 * 1024;

/** Fills `writers` from the stamps of the batches in the last `scanBytes` of the log. */
async function scanWriters(shard: Shard, writers: WriterTable, scanBytes: number): Promise<void> {
  // approximateBytesFrom only shrinks as the offset grows: find the lowest offset within the window.
  let low = shard.startOffset;
  let high = shard.info().nextOffset;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    if (shard.approximateBytesFrom(middle) > scanBytes) low = middle + 1;
    else high = middle;
  }
  let offset = low;
  for (;;) {
    if (offset >= shard.info().nextOffset) break;
    const { batches, next } = await shard.readBatches(offset, { maxBytes: HISTORY_SCAN_BYTES });
    if (batches.length === 0) break;
    for (const batch of batches) observeWriter(writers, batch);
    offset = next;
  }
}

function observeWriter(writers: WriterTable, batch: Buffer): void {
  const stamp = readWriterStamp(batch);
  if (stamp === null) return;
  const header = readBatchHeader(batch, 0);
  writers.observe(stamp.id, stamp.sequence, { baseOffset: header.baseOffset, lastOffset: lastOffsetOf(header) });
}

/** Adds the epochs of the batches from `from` to the log end to `history`. */
async function scanEpochs(shard: Shard, history: EpochHistory, from: number): Promise<void> {
  let offset = from;
  for (;;) {
    const end = shard.info().nextOffset;
    if (offset >= end) break;
    const { batches, next } = await shard.readBatches(offset, { maxBytes: HISTORY_SCAN_BYTES });
    if (batches.length === 0) break;
    for (const batch of batches) {
      const header = readBatchHeader(batch, 0);
      history.assign(header.leaderEpoch, header.baseOffset);
    }
    offset = next;
  }
}

/**
 * The checkpoint's entries as a history of the log as it is now, or null when they do not match
 * it: entries below the log start (retention) are cut back to the one in force there, anchored
 * at the log start, and each entry left must be the epoch of the batch that starts at its offset.
 */
async function checkedHistory(shard: Shard, entries: readonly EpochEntry[], through: number): Promise<EpochHistory | null> {
  const start = shard.startOffset;
  const end = shard.info().nextOffset;
  if (through > end || through < start) return null;
  const kept: EpochEntry[] = [];
  for (const entry of entries) {
    if (entry.startOffset >= through) break;
    if (entry.startOffset <= start) kept.length = 0;
    kept.push({ epoch: entry.epoch, startOffset: Math.max(entry.startOffset, start) });
  }
  const history = new EpochHistory();
  try {
    for (const entry of kept) {
      const { batches } = await shard.readBatches(entry.startOffset, { maxBytes: 1 });
      const first = batches[0];
      if (first === undefined) return null;
      const header = readBatchHeader(first, 0);
      if (header.baseOffset !== entry.startOffset || header.leaderEpoch !== entry.epoch) return null;
      history.assign(entry.epoch, entry.startOffset);
    }
  } catch {
    return null;
  }
  if (kept.length === 0 && start < through) return null;
  return history;
}

export class ReplicaLog {
  /** Checkpoint writes run one at a time, so two never race on the same temporary file. */
  private writing: Promise<void> = Promise.resolve();
  /**
   * The log below this offset is in the history: an append is durable (the log end moves)
   * before its epoch is assigned, and a checkpoint must not claim a batch it has not seen.
   */
  private assignedEnd: number;
  /** Each writer's sequences in this log (and in the leader's appends being written). */
  readonly writers = new WriterTable();
  /** The newest batches written, for answering fetches from memory (recent-batches.ts). */
  readonly recent = new RecentBatches(RECENT_BATCH_BYTES);

  private constructor(
    readonly shard: Shard,
    readonly history: EpochHistory,
    private readonly logger: Logger | undefined,
  ) {
    this.assignedEnd = shard.info().nextOffset;
    shard.observeWrites((batches) => this.recent.add(batches));
  }

  /** `writerScanBytes`: how much of the log's tail rebuilds the writer table (WRITER_SCAN_BYTES). */
  static async open(shard: Shard, logger?: Logger, writerScanBytes = WRITER_SCAN_BYTES): Promise<ReplicaLog> {
    const checkpoint = await readEpochCheckpoint(shard.fs, shard.directory);
    let history = checkpoint === null ? null : await checkedHistory(shard, checkpoint.entries, checkpoint.through);
    if (checkpoint !== null && history !== null) {
      await scanEpochs(shard, history, checkpoint.through);
    } else {
      if (checkpoint !== null) logger?.warn({ shard: shard.name }, 'the epoch checkpoint does not match the log; rebuilding the epoch history from every batch');
      history = new EpochHistory();
      await scanEpochs(shard, history, shard.startOffset);
    }
    const log = new ReplicaLog(shard, history, logger);
    if (writerScanBytes > 0) await scanWriters(shard, log.writers, writerScanBytes);
    if (checkpoint === null || checkpoint.through < log.end) await log.checkpoint();
    return log;
  }

  /** Writes the history as of the log end; a failure only leaves the older checkpoint, which stays true. */
  private async checkpoint(): Promise<void> {
    await this.write(() => ({ entries: this.history.list(), through: Math.min(this.assignedEnd, this.end) })).catch((error: unknown) => {
      this.logger?.warn({ shard: this.shard.name, err: error }, 'could not write the epoch checkpoint; the next open scans more of the log');
    });
  }

  private write(checkpoint: () => EpochCheckpoint): Promise<void> {
    const run = this.writing.then(() => writeEpochCheckpoint(this.shard.fs, this.shard.directory, this.shard.name, checkpoint()));
    this.writing = run.catch(() => undefined);
    return run;
  }

  /** The end of the log; every record below it is durable (fsync mode). */
  get end(): number {
    return this.shard.info().nextOffset;
  }

  /**
   * A leader's own append: written under its epoch; `control` for its epoch-start batch. With
   * `writer` the batch carries its stamp, and the writer's sequence is taken in the table before
   * this returns its promise (so the next sequence is accepted at once), given back if the
   * write fails.
   */
  async append(records: readonly RecordInput[], epoch: number, control = false, writer?: WriterSequence): Promise<AppendResult> {
    if (writer === undefined) return this.appendUnstamped(records, epoch, control);
    this.writers.begin(writer.id, writer.sequence);
    try {
      const result = await this.appendUnstamped(stampRecords(records, writer), epoch, control);
      this.writers.stored(writer.id, writer.sequence, result);
      return result;
    } catch (error) {
      this.writers.failed(writer.id, writer.sequence);
      throw error;
    }
  }

  private async appendUnstamped(records: readonly RecordInput[], epoch: number, control: boolean): Promise<AppendResult> {
    const result = await this.shard.append(records, { epoch, control });
    const latest = this.history.latestEpoch;
    this.history.assign(epoch, result.baseOffset);
    this.assignedEnd = Math.max(this.assignedEnd, result.lastOffset + 1);
    if (epoch !== latest) await this.checkpoint();
    return result;
  }

  /** A follower's copy of its leader's batches, as stored, in order; resolves once all are durable. */
  async appendStored(batches: readonly Buffer[]): Promise<void> {
    const written = batches.map((batch) => this.shard.appendStored(batch));
    const results = await Promise.allSettled(written);
    const latest = this.history.latestEpoch;
    batches.forEach((batch, index) => {
      if (results[index]?.status === 'fulfilled') {
        const header = readBatchHeader(batch, 0);
        this.history.assign(header.leaderEpoch, header.baseOffset);
        this.assignedEnd = Math.max(this.assignedEnd, lastOffsetOf(header) + 1);
        observeWriter(this.writers, batch);
      }
    });
    if (this.history.latestEpoch !== latest) await this.checkpoint();
    for (const result of results) if (result.status === 'rejected') throw result.reason;
  }

  /**
   * Empties the log and starts it at `offset` (the leader's log start, past this log's end):
   * what this replica would copy next is gone from the leader (retention), so it copies what
   * the leader still holds, from there. The epoch history empties with the log.
   */
  async restartAt(offset: number): Promise<void> {
    // The checkpoint goes first (see epoch-checkpoint.ts): it never names a start the log lost.
    await this.write(() => ({ entries: [], through: 0 }));
    await this.shard.restartAt(offset);
    this.recent.clear();
    this.history.truncateFrom(0);
    this.writers.clear();
    this.assignedEnd = offset;
    await this.checkpoint();
  }

  /**
   * Cuts the log so it ends at `offset`. Shard.truncateAfter syncs the cut (the file's
   * truncate, removed segments' directory entries, a shortened batch through its intent file)
   * before it returns, so nothing is appended past a cut that a crash could undo.
   */
  async truncateTo(offset: number): Promise<void> {
    if (offset >= this.end) return;
    // The checkpoint loses the epochs the cut removes before the log does (epoch-checkpoint.ts).
    const kept = EpochHistory.from(this.history.list());
    kept.truncateFrom(offset);
    await this.write(() => ({ entries: kept.list(), through: offset }));
    await this.shard.truncateAfter(offset - 1);
    this.recent.dropFrom(offset);
    this.history.truncateFrom(offset);
    this.writers.truncateFrom(offset);
    this.assignedEnd = Math.min(this.assignedEnd, offset);
  }
}
