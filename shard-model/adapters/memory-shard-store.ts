// Shards held in memory only: for tests and for brokers that need no durability. Same
// validation, limits and error codes as the journal (it reuses the journal's checks).
//
// Each append is also kept as a real sealed batch (the journal's byte format, checksum
// included), so readBatches hands out what a journal would and a follower or fetch path
// decodes both the same way; the decoded records stay beside it for read().
import {
  JournalErrors,
  checkEpochArgument,
  checkOffsetArgument,
  checkTimestampArgument,
  encodeBatch,
  encodedRecordBytes,
  prepareRecords,
  readCost,
  resolveReadLimits,
  resolveShardConfig,
  sealBatch,
  validateShardName,
  type BatchRecordInput,
  type AppendOptions,
  type AppendResult,
  type CompactionReport,
  type JournalRecord,
  type ReadOptions,
  type RecordInput,
  type ShardConfig,
  type ShardInfo,
} from '../../journal/index.js';
import type { BatchRead, BatchReadOptions, ShardStore, TailOptions } from '../shard-store.js';

const BATCH_OVERHEAD_BYTES = 56;

interface MemoryBatch {
  baseOffset: number;
  lastOffset: number;
  bytes: Buffer;
}

interface MemoryShard {
  name: string;
  config: ShardConfig;
  records: JournalRecord[];
  /** The same records as sealed batches, in offset order. */
  batches: MemoryBatch[];
  startOffset: number;
  nextOffset: number;
  epoch: number;
  sizeBytes: number;
  waiters: Set<{ resolve: () => void; reject: (error: Error) => void }>;
  deleted: boolean;
}

export interface MemoryShardStoreOptions {
  shardDefaults?: Partial<ShardConfig>;
  clock?: () => number;
}

export class MemoryShardStore implements ShardStore {
  /** An append takes its offsets synchronously, in the call. */
  readonly orderedAppends = true;

  private readonly shards = new Map<string, MemoryShard>();
  private closed = false;
  private readonly clock: () => number;

  constructor(private readonly options: MemoryShardStoreOptions = {}) {
    this.clock = options.clock ?? Date.now;
  }

  async create(name: string, config: Partial<ShardConfig> = {}): Promise<ShardInfo> {
    this.assertOpen();
    validateShardName(name);
    const resolved = resolveShardConfig({ ...this.options.shardDefaults, ...config });
    if (this.shards.has(name)) throw JournalErrors.shardExists.create({ shard: name }, name);
    const shard: MemoryShard = { name, config: resolved, records: [], batches: [], startOffset: 0, nextOffset: 0, epoch: 0, sizeBytes: 0, waiters: new Set(), deleted: false };
    this.shards.set(name, shard);
    return this.describe(shard);
  }

  async delete(name: string): Promise<void> {
    const shard = this.shard(name);
    this.shards.delete(name);
    shard.deleted = true;
    const error = JournalErrors.closed.create({ shard: name }, `shard ${name}`);
    for (const waiter of shard.waiters) waiter.reject(error);
    shard.waiters.clear();
  }

  async list(): Promise<ShardInfo[]> {
    this.assertOpen();
    return [...this.shards.values()].map((shard) => this.describe(shard)).sort((a, b) => a.name.localeCompare(b.name));
  }

  async append(name: string, records: readonly RecordInput[], options: AppendOptions = {}): Promise<AppendResult> {
    const shard = this.shard(name);
    checkEpochArgument(options.epoch, name);
    const inputs = prepareRecords(records, shard.config, name, this.clock());
    const epoch = options.epoch ?? shard.epoch;
    if (epoch < shard.epoch) throw JournalErrors.staleEpoch.create({ shard: name }, epoch, shard.epoch);
    const baseOffset = shard.nextOffset;
    shard.sizeBytes += BATCH_OVERHEAD_BYTES;
    for (const input of inputs) {
      shard.records.push({
        offset: baseOffset + input.offsetDelta,
        timestamp: input.timestamp,
        key: input.key === null ? null : Buffer.from(input.key),
        value: input.value === null ? null : Buffer.from(input.value),
        headers: input.headers.map((header) => ({ key: header.key, value: Buffer.from(header.value) })),
        epoch,
      });
      shard.sizeBytes += encodedRecordBytes(input);
    }
    shard.batches.push(sealedBatch(inputs, baseOffset, epoch));
    shard.nextOffset = baseOffset + inputs.length;
    shard.epoch = epoch;
    for (const waiter of shard.waiters) waiter.resolve();
    shard.waiters.clear();
    return { baseOffset, lastOffset: shard.nextOffset - 1 };
  }

  async read(name: string, fromOffset: number, options: ReadOptions = {}): Promise<JournalRecord[]> {
    const shard = this.shard(name);
    const { maxRecords, maxBytes } = resolveReadLimits(options, name);
    checkOffsetArgument(fromOffset, 'fromOffset', name);
    if (fromOffset < shard.startOffset || fromOffset > shard.nextOffset) {
      throw JournalErrors.offsetOutOfRange.create({ shard: name, offset: fromOffset }, fromOffset, shard.startOffset, shard.nextOffset);
    }
    const out: JournalRecord[] = [];
    let bytes = maxBytes;
    for (let i = this.indexOf(shard, fromOffset); i < shard.records.length && out.length < maxRecords && bytes > 0; i += 1) {
      const record = shard.records[i];
      if (record === undefined) break;
      out.push(record);
      bytes -= readCost(record);
    }
    return out;
  }

  async readBatches(name: string, fromOffset: number, options: BatchReadOptions = {}): Promise<BatchRead> {
    const shard = this.shard(name);
    const { maxBytes } = resolveReadLimits({ maxBytes: options.maxBytes }, name);
    checkOffsetArgument(fromOffset, 'fromOffset', name);
    if (fromOffset < shard.startOffset || fromOffset > shard.nextOffset) {
      throw JournalErrors.offsetOutOfRange.create({ shard: name, offset: fromOffset }, fromOffset, shard.startOffset, shard.nextOffset);
    }
    const batches: Buffer[] = [];
    let next = shard.nextOffset;
    let budget = maxBytes;
    for (let i = this.batchIndexOf(shard, fromOffset); i < shard.batches.length && budget > 0; i += 1) {
      const batch = shard.batches[i];
      if (batch === undefined) break;
      // A copy: a caller that writes into a returned buffer must not change the shard.
      batches.push(Buffer.from(batch.bytes));
      budget -= batch.bytes.length;
      next = batch.lastOffset + 1;
    }
    return { batches, next };
  }

  /** A single node commits an append when it acknowledges it: everything appended is readable. */
  async highWatermark(name: string): Promise<number> {
    return this.shard(name).nextOffset;
  }

  /** Index of the first batch whose last offset is >= `offset`. */
  private batchIndexOf(shard: MemoryShard, offset: number): number {
    let low = 0;
    let high = shard.batches.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((shard.batches[middle]?.lastOffset ?? Infinity) < offset) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  private indexOf(shard: MemoryShard, offset: number): number {
    let low = 0;
    let high = shard.records.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((shard.records[middle]?.offset ?? Infinity) < offset) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  async readByTime(name: string, timestamp: number, options: ReadOptions = {}): Promise<JournalRecord[]> {
    const shard = this.shard(name);
    checkTimestampArgument(timestamp, name);
    const first = shard.records.find((record) => record.timestamp >= timestamp);
    return first === undefined ? [] : this.read(name, first.offset, options);
  }

  async *tail(name: string, fromOffset: number, options: TailOptions = {}): AsyncGenerator<JournalRecord> {
    const shard = this.shard(name);
    const signal = options.signal;
    let next = fromOffset;
    while (signal?.aborted !== true) {
      const records = await this.read(name, next, { maxRecords: 500 });
      for (const record of records) {
        yield record;
        next = record.offset + 1;
        if (isAborted(signal)) return;
      }
      if (records.length > 0) continue;
      if (shard.deleted) throw JournalErrors.closed.create({ shard: name }, `shard ${name}`);
      const woke = await new Promise<boolean>((resolve, reject) => {
        // An append that landed between the empty read and now woke nobody: look again at once
        // rather than wait for the next append (a lost wake-up).
        if (shard.nextOffset > next) {
          resolve(true);
          return;
        }
        const waiter = { resolve: () => resolve(true), reject };
        shard.waiters.add(waiter);
        signal?.addEventListener('abort', () => {
          shard.waiters.delete(waiter);
          resolve(false);
        }, { once: true });
      });
      if (!woke) return;
    }
  }

  /**
   * The journal's compaction rule (journal/shard/shard.ts compact, journal/shard/compaction.ts)
   * over the whole shard: a memory shard has no active segment, so every record counts as
   * sealed, which is the most a journal compaction can ever remove and so the hardest case for
   * a reader. Kept batches keep their offsets and leader epoch; a batch that loses records is
   * re-encoded from its first kept record, one that loses all of them is gone.
   */
  async compact(name: string): Promise<CompactionReport> {
    const shard = this.shard(name);
    if (!shard.config.compacted) throw JournalErrors.invalidArgument.create({ shard: name }, 'shard', name, 'is not a compacted shard (compacted: false)');
    const latest = new Map<string, number>();
    for (const record of shard.records) if (record.key !== null) latest.set(record.key.toString('latin1'), record.offset);
    const tombstoneCutoff = this.clock() - shard.config.tombstoneRetentionMs;
    // Keyless records cannot occur in a compacted shard (appends require a key), but the
    // journal's predicate drops them and so does this one.
    const keep = (record: JournalRecord): boolean =>
      record.key !== null && latest.get(record.key.toString('latin1')) === record.offset && !(record.value === null && record.timestamp < tombstoneCutoff);
    const report: CompactionReport = { segmentsRewritten: 0, segmentsSkipped: 0, recordsRemoved: 0, bytesBefore: 0, bytesAfter: 0 };
    const batches: MemoryBatch[] = [];
    const records: JournalRecord[] = [];
    for (const batch of shard.batches) {
      const inBatch = shard.records.slice(this.indexOf(shard, batch.baseOffset), this.indexOf(shard, batch.lastOffset + 1));
      const kept = inBatch.filter(keep);
      records.push(...kept);
      report.recordsRemoved += inBatch.length - kept.length;
      report.bytesBefore += batch.bytes.length;
      const first = kept[0];
      if (first === undefined) continue;
      const rewritten = kept.length === inBatch.length
        ? batch
        : sealedBatch(kept.map((record) => ({ offsetDelta: record.offset - first.offset, timestamp: record.timestamp, key: record.key, value: record.value, headers: record.headers })), first.offset, first.epoch);
      batches.push(rewritten);
      report.bytesAfter += rewritten.bytes.length;
    }
    if (report.recordsRemoved === 0) return { ...report, bytesBefore: 0, bytesAfter: 0 };
    report.segmentsRewritten = 1;
    shard.records = records;
    shard.batches = batches;
    shard.sizeBytes = batches.reduce((total, batch) => total + batch.bytes.length, 0);
    return report;
  }

  async truncateAfter(name: string, offset: number): Promise<void> {
    const shard = this.shard(name);
    checkOffsetArgument(offset, 'offset', name);
    if (offset < shard.startOffset - 1 || offset >= shard.nextOffset) {
      throw JournalErrors.offsetOutOfRange.create({ shard: name, offset }, offset, shard.startOffset - 1, shard.nextOffset - 1);
    }
    shard.records.length = this.indexOf(shard, offset + 1);
    const holding = this.batchIndexOf(shard, offset);
    shard.batches.length = holding + ((shard.batches[holding]?.baseOffset ?? Infinity) <= offset ? 1 : 0);
    // The batch that straddles the cut is re-encoded with the records it keeps, as the
    // journal's truncation does, so every stored batch still verifies and decodes.
    const straddling = shard.batches[shard.batches.length - 1];
    if (straddling !== undefined && straddling.lastOffset > offset) {
      const kept = shard.records.slice(this.indexOf(shard, straddling.baseOffset));
      const inputs = kept.map((record) => ({ offsetDelta: record.offset - straddling.baseOffset, timestamp: record.timestamp, key: record.key, value: record.value, headers: record.headers }));
      shard.batches[shard.batches.length - 1] = sealedBatch(inputs, straddling.baseOffset, kept[0]?.epoch ?? 0);
    }
    shard.nextOffset = offset + 1;
    shard.epoch = shard.records.reduce((highest, record) => Math.max(highest, record.epoch), 0);
  }

  async info(name: string): Promise<ShardInfo> {
    return this.describe(this.shard(name));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const name of [...this.shards.keys()]) await this.delete(name);
    this.closed = true;
  }

  private describe(shard: MemoryShard): ShardInfo {
    return {
      name: shard.name,
      config: shard.config,
      startOffset: shard.startOffset,
      nextOffset: shard.nextOffset,
      epoch: shard.epoch,
      sizeBytes: shard.sizeBytes,
      segmentCount: 1,
      maxTimestamp: shard.records.reduce((highest, record) => Math.max(highest, record.timestamp), 0),
    };
  }

  private shard(name: string): MemoryShard {
    this.assertOpen();
    validateShardName(name);
    const shard = this.shards.get(name);
    if (shard === undefined) throw JournalErrors.shardNotFound.create({ shard: name }, name);
    return shard;
  }

  private assertOpen(): void {
    if (this.closed) throw JournalErrors.closed.create({}, 'memory shard store');
  }
}

function sealedBatch(inputs: readonly BatchRecordInput[], baseOffset: number, epoch: number): MemoryBatch {
  const bytes = encodeBatch(inputs);
  sealBatch(bytes, baseOffset, epoch);
  const last = inputs[inputs.length - 1];
  return { baseOffset, lastOffset: baseOffset + (last?.offsetDelta ?? 0), bytes };
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}
