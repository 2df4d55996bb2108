// The ShardStore: what every layer above the journal uses to reach shards, whether the journal
// runs in this process (local), in another process (remote, over gRPC) or nowhere (memory,
// for tests and ephemeral brokers). All adapters pass shard-model/conformance.ts and raise the
// journal's error codes (SL_JOURNAL_*), so callers never care which adapter they hold.
import type { AppendOptions, AppendResult, CompactionReport, JournalRecord, ReadOptions, RecordInput, ShardConfig, ShardInfo } from '../journal/index.js';

export interface TailOptions {
  /** Aborting ends the iteration (the iterator returns). */
  signal?: AbortSignal;
}

export interface BatchReadOptions {
  /** Stop once this many batch bytes are returned; the first batch goes even when larger. Default: read's maxBytes default. */
  maxBytes?: number;
}

export interface BatchRead {
  /**
   * Whole batches, byte for byte as the journal stores them (journal/segment/batch-format.ts:
   * decode with checkBatch + decodeBatchRecords), checksums verified. The first one may start
   * below the offset asked for; the reader skips those records.
   */
  batches: Buffer[];
  /** The offset after the last batch returned, where the next call starts; the end when `batches` is empty. */
  next: number;
}

export interface ShardStore {
  /**
   * True when appends to one shard take their offsets in the order append() is called and a
   * failed one leaves the later ones' order intact (the journal in this process, the memory
   * store): a writer may then start an append while an earlier one is in flight. Absent or
   * false (a remote journal: two calls may reach it in either order): one at a time.
   */
  readonly orderedAppends?: boolean;
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
  /**
   * Verified batches as stored, from the one that holds `fromOffset`: for replication followers
   * and fetches that forward batches without decoding them. Stops at the high watermark like
   * read; { batches: [], next: end } at the end; SL_JOURNAL_OFFSET_OUT_OF_RANGE outside [start, next].
   */
  readBatches(name: string, fromOffset: number, options?: BatchReadOptions): Promise<BatchRead>;
  /**
   * The offset after the last record a reader may read: read, readBatches and tail never return
   * a record at or past it. With one journal node and no replication every acknowledged append
   * is readable, so it equals info().nextOffset. Replication will make it the commit point (the
   * offset a majority of replicas holds durably), which may lag the leader's nextOffset; a
   * reader must then still never see past it, so a consumer that reads only below it never
   * sees a record a failover could take back.
   */
  highWatermark(name: string): Promise<number>;
  /** Records from the first one whose timestamp is >= `timestamp`. */
  readByTime(name: string, timestamp: number, options?: ReadOptions): Promise<JournalRecord[]>;
  /** Records from `fromOffset` on, then new ones as they are appended, until aborted. */
  tail(name: string, fromOffset: number, options?: TailOptions): AsyncIterable<JournalRecord>;
  /**
   * Compacts a compacted shard now, as the journal's background compaction would: a record
   * survives only if it is the latest of its key; a latest tombstone goes once it is older than
   * the shard's tombstoneRetentionMs. Kept records keep their offsets (reads skip the gaps) and
   * the shard's start and next offsets do not move. SL_JOURNAL_INVALID_ARGUMENT for a shard
   * that is not compacted. Adapters that cannot compact on demand (remote: the gRPC API has no
   * such call) fail with SL_REMOTE_UNSUPPORTED.
   */
  compact(name: string): Promise<CompactionReport>;
  /** Removes records after `offset` (replication's divergence cut). */
  truncateAfter(name: string, offset: number): Promise<void>;
  info(name: string): Promise<ShardInfo>;
  close(): Promise<void>;
}
