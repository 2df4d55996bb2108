// A replicated shard's log as the replication cores see it: the real Shard (segments, fsync)
// and its epoch history. The history is rebuilt from the batches' epochs on open (one pass over
// the batch headers, O(log size)) and kept in step with every append and truncation after that;
// rebuilding rather than checkpointing means a crash can never leave the two disagreeing.
//
// Durable end: replicated shards run in fsync mode only, where a record is visible (and counted
// in nextOffset) only after the fdatasync that covers it, so the log end the cores see is its
// durable end.
import { EpochHistory } from '../replication/index.js';
import { readBatchHeader } from '../segment/batch-format.js';
import type { AppendResult, RecordInput } from '../record.js';
import type { Shard } from '../shard/shard.js';

const HISTORY_SCAN_BYTES = 4 * 1024 * 1024;

export class ReplicaLog {
  private constructor(
    readonly shard: Shard,
    readonly history: EpochHistory,
  ) {}

  static async open(shard: Shard): Promise<ReplicaLog> {
    const history = new EpochHistory();
    let offset = shard.startOffset;
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
    return new ReplicaLog(shard, history);
  }

  /** The end of the log; every record below it is durable (fsync mode). */
  get end(): number {
    return this.shard.info().nextOffset;
  }

  /** A leader's own append: written under its epoch; `control` for its epoch-start batch. */
  async append(records: readonly RecordInput[], epoch: number, control = false): Promise<AppendResult> {
    const result = await this.shard.append(records, { epoch, control });
    this.history.assign(epoch, result.baseOffset);
    return result;
  }

  /** A follower's copy of its leader's batches, as stored, in order; resolves once all are durable. */
  async appendStored(batches: readonly Buffer[]): Promise<void> {
    const written = batches.map((batch) => this.shard.appendStored(batch));
    const results = await Promise.allSettled(written);
    batches.forEach((batch, index) => {
      if (results[index]?.status === 'fulfilled') {
        const header = readBatchHeader(batch, 0);
        this.history.assign(header.leaderEpoch, header.baseOffset);
      }
    });
    for (const result of results) if (result.status === 'rejected') throw result.reason;
  }

  /**
   * Empties the log and starts it at `offset` (the leader's log start, past this log's end):
   * what this replica would copy next is gone from the leader (retention), so it copies what
   * the leader still holds, from there. The epoch history empties with the log.
   */
  async restartAt(offset: number): Promise<void> {
    await this.shard.restartAt(offset);
    this.history.truncateFrom(0);
  }

  /**
   * Cuts the log so it ends at `offset`. Shard.truncateAfter syncs the cut (the file's
   * truncate, removed segments' directory entries, a shortened batch through its intent file)
   * before it returns, so nothing is appended past a cut that a crash could undo.
   */
  async truncateTo(offset: number): Promise<void> {
    if (offset >= this.end) return;
    await this.shard.truncateAfter(offset - 1);
    this.history.truncateFrom(offset);
  }
}
