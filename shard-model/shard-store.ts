// The ShardStore: what every layer above the journal uses to reach shards, whether the journal
// runs in this process (local), in another process (remote, over gRPC) or nowhere (memory,
// for tests and ephemeral brokers). All adapters pass shard-model/conformance.ts and raise the
// journal's error codes (SL_JOURNAL_*), so callers never care which adapter they hold.
import type { AppendOptions, AppendResult, JournalRecord, ReadOptions, RecordInput, ShardConfig, ShardInfo } from '../journal/index.js';

export interface TailOptions {
  /** Aborting ends the iteration (the iterator returns). */
  signal?: AbortSignal;
}

export interface ShardStore {
  /** Creates a shard; SL_JOURNAL_SHARD_EXISTS when the name is taken. */
  create(name: string, config?: Partial<ShardConfig>): Promise<ShardInfo>;
  /** Deletes a shard and its records; tailing readers of it end with SL_JOURNAL_CLOSED. */
  delete(name: string): Promise<void>;
  /** Every shard, sorted by name. */
  list(): Promise<ShardInfo[]>;
  /** Appends records as one batch; resolves once acknowledged under the shard's durability mode. */
  append(name: string, records: readonly RecordInput[], options?: AppendOptions): Promise<AppendResult>;
  /** Records from `fromOffset` (inclusive); [] at the end; SL_JOURNAL_OFFSET_OUT_OF_RANGE outside [start, next]. */
  read(name: string, fromOffset: number, options?: ReadOptions): Promise<JournalRecord[]>;
  /** Records from the first one whose timestamp is >= `timestamp`. */
  readByTime(name: string, timestamp: number, options?: ReadOptions): Promise<JournalRecord[]>;
  /** Records from `fromOffset` on, then new ones as they are appended, until aborted. */
  tail(name: string, fromOffset: number, options?: TailOptions): AsyncIterable<JournalRecord>;
  /** Removes records after `offset` (replication's divergence cut). */
  truncateAfter(name: string, offset: number): Promise<void>;
  info(name: string): Promise<ShardInfo>;
  close(): Promise<void>;
}
