// The placement voter's Raft log on a journal shard: entries, hard state and snapshots, made
// durable one Ready at a time, and read back by the Raft core through `storage`.
//
// Layout: its own journal (data directory `directory`) with one shard, RAFT_LOG_SHARD, in fsync
// durability mode. Record format: raft-log-record.ts; the in-memory view: raft-log-view.ts.
//
// Why append-only records and not the journal's truncateAfter for a conflicting suffix: one save
// is one journal append, one append is one batch, and the journal keeps or drops a batch whole
// after a crash (its checksum covers the batch). An overwrite written as "entries from index i"
// in the same batch as the Ready's hard state is therefore atomic; truncateAfter followed by an
// append would be two steps, with a crash between them leaving the suffix cut and the new
// entries missing, and would need a map from Raft index to journal offset. The cost is disk:
// overwritten entries stay in the shard until the next compaction drops their segment.
//
// Compaction (`compact`) writes a checkpoint: the segment is rolled, then one batch holding the
// compacted prefix's (index, term), every kept entry, the latest snapshot and the hard state,
// then every segment before that batch is deleted. A crash between the checkpoint and the end of
// the deletion leaves old segments (all of them, or the later ones) that replay walks through
// or skips before the checkpoint resets the view; the next open deletes them (see replay).
//
// Ordering: save, createSnapshot and compact run one at a time, in call order (a queue), and the
// view changes only after the journal acknowledged (fdatasync'd) the batch, so `storage` never
// shows what a crash could take back. After a failed save the journal shard refuses appends for
// a while and the view is stale against nothing (it was not changed); the driver must stop the
// node, as the Raft core assumes every save it was told about is durable.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Journal, isShardlineError, type RecordInput } from '../../journal/index.js';
import { type Entry, type HardState, type Snapshot, type Storage } from '../../placement/raft/index.js';
import { checkActiveSegment } from './active-tail.js';
import { PlacementStorageErrors } from './errors.js';
import { RecordDecodeError, decodeRecord, encodeRecord, type RaftLogRecord } from './raft-log-record.js';
import { RaftLogView, ViewViolation } from './raft-log-view.js';

/**
 * The entries, hard state and snapshot of one Ready. (The replica's own shape,
 * placement/replica's RaftLogUpdate, reaches this through durable-placement.ts.)
 */
export interface RaftLogSave {
  hardState?: HardState;
  entries: readonly Entry[];
  snapshot?: Snapshot;
}

export const RAFT_LOG_SHARD = '$placement-raft';
/** Segment size of the Raft log shard: small enough that compaction frees disk soon. */
export const DEFAULT_RAFT_LOG_SEGMENT_BYTES = 16 * 1024 * 1024;
/** A snapshot travels in one record, a checkpoint in one batch: the journal's upper bounds. */
const MAX_RECORD_BYTES = 256 * 1024 * 1024;
const MAX_BATCH_BYTES = 512 * 1024 * 1024;
/** Records per page when replaying the shard at open. */
const REPLAY_PAGE_RECORDS = 10_000;
const REPLAY_PAGE_BYTES = 16 * 1024 * 1024;

export interface JournalRaftLogOptions {
  /** The journal data directory of this log (nothing else lives in it). */
  directory: string;
  /** Segment size of the shard; a new shard only (default DEFAULT_RAFT_LOG_SEGMENT_BYTES). */
  segmentBytes?: number;
  /** How long to wait for a previous owner's directory lock (default 0: fail at once). */
  lockWaitMs?: number;
  logger?: Logger;
}

export class JournalRaftLog {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly journal: Journal,
    private readonly directory: string,
    private readonly view: RaftLogView,
  ) {}

  /** What the Raft core reads; reflects every completed save. */
  get storage(): Storage {
    return this.view;
  }

  /**
   * Opens (or creates) the log and rebuilds its view from the shard. Refuses damaged storage
   * with a coded error (SL_RAFT_LOG_*) and leaves the directory untouched then.
   */
  static async open(options: JournalRaftLogOptions): Promise<JournalRaftLog> {
    // Before the journal's recovery can cut it as a torn write (active-tail.ts).
    const damage = await checkActiveSegment(join(options.directory, 'shards', RAFT_LOG_SHARD), MAX_BATCH_BYTES);
    if (damage !== null) {
      throw PlacementStorageErrors.logCorrupt.create({ segment: damage.segment, position: damage.position }, options.directory, `byte ${damage.position} of segment ${damage.segment}`, damage.reason);
    }
    const journal = await Journal.open(options.directory, {
      retentionCheckMs: 0,
      lockWaitMs: options.lockWaitMs ?? 0,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
    try {
      if (!journal.hasShard(RAFT_LOG_SHARD)) {
        await journal.createShard(RAFT_LOG_SHARD, {
          durability: 'fsync',
          segmentBytes: options.segmentBytes ?? DEFAULT_RAFT_LOG_SEGMENT_BYTES,
          maxRecordBytes: MAX_RECORD_BYTES,
          maxBatchBytes: MAX_BATCH_BYTES,
        });
      }
      const { view, lastCheckpoint } = await replay(journal, options.directory);
      // A compaction that wrote its checkpoint but crashed before deleting what lies before it.
      if (lastCheckpoint !== null && lastCheckpoint > journal.info(RAFT_LOG_SHARD).startOffset) {
        await journal.shard(RAFT_LOG_SHARD).dropSegmentsBelow(lastCheckpoint);
      }
      return new JournalRaftLog(journal, options.directory, view);
    } catch (error) {
      await journal.close();
      throw error;
    }
  }

  /** Makes one Ready durable; resolves only when fsynced. Entries may overwrite a suffix (conflict truncation). */
  save(update: RaftLogSave): Promise<void> {
    return this.enqueue(async () => {
      const records = planSave(this.view, update);
      if (records.length === 0) return;
      await this.append(records);
      for (const record of records) this.view.apply(record);
    });
  }

  /**
   * Records a snapshot of this voter's own applied state at `snapshot.metadata.index` (at most
   * the last index, with the term of the entry there), keeping the entries: it is what
   * `storage.snapshot()` then hands to lagging followers, and what `compact` needs first.
   * A snapshot in `save`, by contrast, is one received from the leader, which replaces the log.
   */
  createSnapshot(snapshot: Snapshot): Promise<void> {
    return this.enqueue(async () => {
      const { index, term } = snapshot.metadata;
      const current = this.view.latestSnapshot.metadata.index;
      if (index <= current) throw new Error(`raft-log: snapshot at ${index} is not newer than the stored one at ${current}`);
      if (index < this.view.prefixIndex || index > this.view.lastIndex()) throw new Error(`raft-log: snapshot at ${index} outside the log [${this.view.prefixIndex}, ${this.view.lastIndex()}]`);
      if (this.view.term(index) !== term) throw new Error(`raft-log: snapshot at ${index} has term ${term}, the entry there ${this.view.term(index)}`);
      const record: RaftLogRecord = { kind: 'snapshotLocal', snapshot: sortedVoters(snapshot) };
      await this.append([record]);
      this.view.apply(record);
    });
  }

  /** Forgets entries up to and including index; a snapshot at or past it must be recorded. */
  compact(index: number): Promise<void> {
    return this.enqueue(async () => {
      // Already compacted (a driver repeating itself after a restart): nothing to do.
      if (index <= this.view.prefixIndex) return;
      const snapshotIndex = this.view.latestSnapshot.metadata.index;
      if (index > snapshotIndex) throw new Error(`raft-log: compact(${index}) needs a snapshot at or past it; the latest is at ${snapshotIndex} (createSnapshot first)`);
      const records: RaftLogRecord[] = [
        { kind: 'checkpoint', index, term: this.view.term(index) },
        ...this.view.stored.filter((entry) => entry.index > index).map((entry): RaftLogRecord => ({ kind: 'entry', entry })),
        { kind: 'snapshotLocal', snapshot: this.view.latestSnapshot },
        { kind: 'hardState', hardState: this.view.hardState },
      ];
      const shard = this.journal.shard(RAFT_LOG_SHARD);
      // The checkpoint opens a segment of its own, so everything before it can go whole.
      await shard.rollNow();
      const { baseOffset } = await this.append(records);
      for (const record of records) this.view.apply(record);
      await shard.dropSegmentsBelow(baseOffset);
    });
  }

  /** Journal offsets the shard spans (for tests and diagnostics). */
  shardInfo(): { startOffset: number; nextOffset: number; segmentCount: number; sizeBytes: number } {
    const info = this.journal.info(RAFT_LOG_SHARD);
    return { startOffset: info.startOffset, nextOffset: info.nextOffset, segmentCount: info.segmentCount, sizeBytes: info.sizeBytes };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.catch(() => undefined);
    await this.journal.close();
  }

  private append(records: readonly RaftLogRecord[]): Promise<{ baseOffset: number }> {
    const inputs: RecordInput[] = records.map((record) => ({ value: encodeRecord(record) }));
    return this.journal.append(RAFT_LOG_SHARD, inputs);
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`raft-log: ${this.directory} is closed`));
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/**
 * The records of one Ready, checked against the view first: a Ready that does not fit the log
 * (a gap, terms going down, a commit past the end) is the driver's or the core's bug and is
 * refused before anything reaches the disk.
 */
export function planSave(view: RaftLogView, update: RaftLogSave): RaftLogRecord[] {
  const records: RaftLogRecord[] = [];
  let prefixIndex = view.prefixIndex;
  let prefixTerm = view.prefixTerm;
  let lastIndex = view.lastIndex();
  if (update.snapshot !== undefined) {
    const { index, term } = update.snapshot.metadata;
    const current = view.latestSnapshot.metadata.index;
    if (index <= current) throw new Error(`raft-log: snapshot at ${index} is not newer than the stored one at ${current}`);
    records.push({ kind: 'snapshotInstall', snapshot: sortedVoters(update.snapshot) });
    prefixIndex = index;
    prefixTerm = term;
    lastIndex = index;
  }
  // Entries the snapshot (or an earlier compaction) covers are skipped, as MemoryStorage.append does.
  const fresh = update.entries.filter((entry) => entry.index > prefixIndex);
  if (fresh.length > 0) {
    const first = fresh[0]!.index;
    if (first > lastIndex + 1) throw new Error(`raft-log: entries from ${first} would leave a gap after ${lastIndex}`);
    let previousTerm = first - 1 === prefixIndex ? prefixTerm : view.term(first - 1);
    fresh.forEach((entry, i) => {
      if (entry.index !== first + i) throw new Error(`raft-log: entries are not consecutive at ${entry.index}`);
      if (entry.term < previousTerm) throw new Error(`raft-log: entry ${entry.index} has term ${entry.term}, below ${previousTerm} before it`);
      previousTerm = entry.term;
      records.push({ kind: 'entry', entry });
    });
    lastIndex = fresh.at(-1)!.index;
  }
  if (update.hardState !== undefined) {
    if (update.hardState.commit > lastIndex) throw new Error(`raft-log: hard state commit ${update.hardState.commit} past the last index ${lastIndex}`);
    records.push({ kind: 'hardState', hardState: update.hardState });
  }
  return records;
}

function sortedVoters(snapshot: Snapshot): Snapshot {
  const voters = [...snapshot.metadata.confState.voters].sort((a, b) => a - b);
  return { metadata: { ...snapshot.metadata, confState: { voters } }, data: snapshot.data };
}

/**
 * Reads the whole shard into a fresh view; any damage is a coded error.
 *
 * Compaction deletes the segments before its checkpoint oldest first, so a crash in the middle
 * leaves the shard starting inside history the checkpoint supersedes (and a power cut, which
 * may keep some of those unlinks and not others, can leave a hole between segments). After
 * such a discontinuity (a start above 0, or offsets that jump) records are checked but not
 * applied until a checkpoint comes; without one the missing part was still needed and the
 * open fails with SL_RAFT_LOG_GAP.
 */
async function replay(journal: Journal, directory: string): Promise<{ view: RaftLogView; lastCheckpoint: number | null }> {
  const view = new RaftLogView();
  const shard = journal.shard(RAFT_LOG_SHARD);
  const segmentBases = shard.segmentPaths().map((segment) => segment.baseOffset);
  const { startOffset, nextOffset } = journal.info(RAFT_LOG_SHARD);
  let offset = startOffset;
  let lastCheckpoint: number | null = null;
  let missingFrom: number | null = startOffset > 0 ? 0 : null;
  while (offset < nextOffset) {
    let page;
    try {
      page = await journal.read(RAFT_LOG_SHARD, offset, { maxRecords: REPLAY_PAGE_RECORDS, maxBytes: REPLAY_PAGE_BYTES });
    } catch (error) {
      if (isShardlineError(error, 'SL_JOURNAL_CORRUPT_BATCH')) throw PlacementStorageErrors.logCorrupt.withCause(error, { offset }, directory, `journal offset ${offset}`, error.message);
      throw error;
    }
    if (page.length === 0) {
      // Offsets in no segment: go on at the next segment.
      const nextBase = segmentBases.find((base) => base > offset);
      if (nextBase === undefined) throw PlacementStorageErrors.logCorrupt.create({ offset }, directory, `journal offset ${offset}`, `the shard ends at ${nextOffset}, but nothing could be read from ${offset}`);
      missingFrom ??= offset;
      offset = nextBase;
      continue;
    }
    for (const stored of page) {
      if (stored.offset !== offset) {
        missingFrom ??= offset;
        offset = stored.offset;
      }
      let record: RaftLogRecord;
      try {
        record = decodeRecord(stored.value);
      } catch (error) {
        if (!(error instanceof RecordDecodeError)) throw error;
        if (error.unsupported !== undefined) throw PlacementStorageErrors.logUnsupportedFormat.create({ offset }, directory, offset, error.unsupported.version, error.unsupported.kind);
        throw PlacementStorageErrors.logCorrupt.create({ offset }, directory, `journal offset ${offset}`, error.why);
      }
      if (record.kind === 'checkpoint') {
        lastCheckpoint = offset;
        missingFrom = null;
      }
      if (missingFrom === null) applyCoded(view, record, directory, offset);
      offset += 1;
    }
  }
  if (missingFrom !== null) {
    throw PlacementStorageErrors.logGap.create({ offset: missingFrom }, directory, missingFrom, `journal offsets from ${missingFrom} are missing (deleted segments) and no checkpoint after them says they were no longer needed`);
  }
  try {
    view.finish();
  } catch (error) {
    throw codeViolation(error, view, directory, offset);
  }
  return { view, lastCheckpoint };
}

function applyCoded(view: RaftLogView, record: RaftLogRecord, directory: string, offset: number): void {
  try {
    view.apply(record);
  } catch (error) {
    throw codeViolation(error, view, directory, offset);
  }
}

function codeViolation(error: unknown, view: RaftLogView, directory: string, offset: number): unknown {
  if (!(error instanceof ViewViolation)) return error;
  switch (error.kind) {
    case 'gap':
      return PlacementStorageErrors.logGap.create({ offset }, directory, offset, error.why);
    case 'snapshot':
      return PlacementStorageErrors.logSnapshotMismatch.create({ offset }, directory, offset, error.why);
    case 'commit':
      return PlacementStorageErrors.commitBeyondLog.create({ offset }, directory, view.hardState.commit, view.lastIndex());
  }
}
