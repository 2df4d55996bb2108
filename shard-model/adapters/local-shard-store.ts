// The journal in this process, behind the ShardStore interface.
import { Journal, type AppendOptions, type AppendResult, type CompactionReport, type JournalOptions, type JournalRecord, type ReadOptions, type RecordInput, type ShardConfig, type ShardInfo } from '../../journal/index.js';
import type { BatchRead, BatchReadOptions, ShardStore, TailOptions } from '../shard-store.js';

export class LocalShardStore implements ShardStore {
  /** The journal's writer queues an append in the call itself, so offsets follow the call order. */
  readonly orderedAppends = true;

  private constructor(readonly journal: Journal) {}

  /** Wraps a journal this process already opened (shared with the journal gRPC server). */
  static over(journal: Journal): LocalShardStore {
    return new LocalShardStore(journal);
  }

  static async open(directory: string, options?: JournalOptions): Promise<LocalShardStore> {
    return new LocalShardStore(await Journal.open(directory, options));
  }

  async create(name: string, config?: Partial<ShardConfig>): Promise<ShardInfo> {
    return this.journal.createShard(name, config);
  }

  async delete(name: string): Promise<void> {
    await this.journal.deleteShard(name);
  }

  async list(): Promise<ShardInfo[]> {
    return this.journal.listShards();
  }

  async append(name: string, records: readonly RecordInput[], options?: AppendOptions): Promise<AppendResult> {
    return this.journal.append(name, records, options);
  }

  async read(name: string, fromOffset: number, options?: ReadOptions): Promise<JournalRecord[]> {
    return this.journal.read(name, fromOffset, options);
  }

  async readBatches(name: string, fromOffset: number, options?: BatchReadOptions): Promise<BatchRead> {
    return this.journal.readBatches(name, fromOffset, options);
  }

  /** The shard's visible end: a single journal commits an append when it acknowledges it. */
  async highWatermark(name: string): Promise<number> {
    return this.journal.info(name).nextOffset;
  }

  async readByTime(name: string, timestamp: number, options?: ReadOptions): Promise<JournalRecord[]> {
    return this.journal.readByTime(name, timestamp, options);
  }

  tail(name: string, fromOffset: number, options?: TailOptions): AsyncIterable<JournalRecord> {
    return this.journal.tail(name, fromOffset, options);
  }

  /** The journal compacts only sealed segments: records in the active segment stay until it rolls. */
  async compact(name: string): Promise<CompactionReport> {
    return this.journal.compact(name);
  }

  async truncateAfter(name: string, offset: number): Promise<void> {
    await this.journal.truncateAfter(name, offset);
  }

  async info(name: string): Promise<ShardInfo> {
    return this.journal.info(name);
  }

  async close(): Promise<void> {
    await this.journal.close();
  }
}
