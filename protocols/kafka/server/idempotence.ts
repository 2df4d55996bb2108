// Idempotent producers over the shards: producer ids (InitProducerId) and per-partition
// sequence checks around the append (producer-state.ts holds the rules).
//
// Durability: the producer id, epoch, base sequence and record count of every idempotent batch
// travel with the batch itself, as a journal header `kafka.p` on its first record, in the same
// append. So the state can never disagree with the log after a crash (no second write to lose):
// after a restart a partition's state is rebuilt, at its first idempotent produce, by reading
// the headers of its last `rebuildRecords` records. A producer that has not produced within
// that window is forgotten, as Kafka forgets one after producer.id.expiration.ms, and may then
// start at any sequence (producer-state.ts).
//
// Producer ids come from a counter in the compacted system shard `$kafka.producer-ids` (one
// record, key "next"): each InitProducerId appends the next free id before answering, so an id
// is never handed out twice, across restarts too.
import { KAFKA_PRODUCER_IDS_SHARD } from '../../../base/index.js';
import type { RecordInput } from '../../../journal/index.js';
import { createShardIfMissing, readWholeShard, type ShardStore } from '../../../shard-model/index.js';
import { KafkaErrorCode, type KafkaStruct } from '../codec/index.js';
import { PartitionProducers, type ProducerBatch } from './producer-state.js';

export const PRODUCER_HEADER = 'kafka.p';
const HEADER_BYTES = 18;
const NEXT_KEY = Buffer.from('next');
/** Kafka's producer ids are int64 but clients keep them in signed longs; epochs are int16. */
const MAX_EPOCH = 32_767;

export interface IdempotenceOptions {
  /** Producers remembered per partition; the least recently appending one is forgotten past it. */
  maxProducersPerPartition?: number;
  /** Records read back from a partition's end to rebuild its producer state after a restart. */
  rebuildRecords?: number;
}

export type IdempotentAppend = { errorCode: 0; baseOffset: number; duplicate: boolean } | { errorCode: number; message: string };

function encodeHeader(batch: ProducerBatch): Buffer {
  const bytes = Buffer.alloc(HEADER_BYTES);
  bytes.writeBigInt64BE(batch.producerId, 0);
  bytes.writeInt16BE(batch.producerEpoch, 8);
  bytes.writeInt32BE(batch.baseSequence, 10);
  bytes.writeInt32BE(batch.count, 14);
  return bytes;
}

function decodeHeader(bytes: Buffer): ProducerBatch | undefined {
  if (bytes.length !== HEADER_BYTES) return undefined;
  return { producerId: bytes.readBigInt64BE(0), producerEpoch: bytes.readInt16BE(8), baseSequence: bytes.readInt32BE(10), count: bytes.readInt32BE(14) };
}

export class Idempotence {
  readonly #partitions = new Map<string, Promise<PartitionProducers>>();
  /** Per shard, the tail of the chain that runs check-append-record one batch at a time. */
  readonly #locks = new Map<string, Promise<unknown>>();
  #idChain: Promise<unknown> = Promise.resolve();
  readonly #maxProducers: number;
  readonly #rebuildRecords: number;

  private constructor(private readonly store: ShardStore, private nextProducerId: bigint, options: IdempotenceOptions) {
    this.#maxProducers = options.maxProducersPerPartition ?? 1000;
    this.#rebuildRecords = options.rebuildRecords ?? 50_000;
  }

  static async open(store: ShardStore, options: IdempotenceOptions = {}): Promise<Idempotence> {
    await createShardIfMissing(store, KAFKA_PRODUCER_IDS_SHARD, { compacted: true });
    let next = 0n;
    await readWholeShard(store, KAFKA_PRODUCER_IDS_SHARD, (record) => {
      if (record.value !== null && record.key?.equals(NEXT_KEY)) next = BigInt(record.value.toString('utf8'));
    });
    return new Idempotence(store, next, options);
  }

  /** InitProducerId: a new producer id (epoch 0), or the same id with the next epoch (KIP-360 bump). Transactions are refused. */
  initProducerId(body: KafkaStruct): Promise<KafkaStruct> {
    const answer = (errorCode: number, producerId = -1n, producerEpoch = -1): KafkaStruct => ({ throttleTimeMs: 0, errorCode, producerId, producerEpoch });
    if (body.transactionalId !== null && body.transactionalId !== undefined) return Promise.resolve(answer(KafkaErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED));
    const producerId = (body.producerId as bigint | undefined) ?? -1n;
    const epoch = (body.producerEpoch as number | undefined) ?? -1;
    const run = async (): Promise<KafkaStruct> => {
      if (producerId >= 0n && epoch >= 0) {
        if (producerId >= this.nextProducerId) return answer(KafkaErrorCode.INVALID_PRODUCER_ID_MAPPING);
        if (epoch < MAX_EPOCH) return answer(0, producerId, epoch + 1);
      } else if (producerId !== -1n || epoch !== -1) return answer(KafkaErrorCode.INVALID_REQUEST);
      const id = this.nextProducerId;
      await this.store.append(KAFKA_PRODUCER_IDS_SHARD, [{ key: NEXT_KEY, value: Buffer.from(String(id + 1n)) }]);
      this.nextProducerId = id + 1n;
      return answer(0, id, 0);
    };
    const result = this.#idChain.then(run, run);
    this.#idChain = result.catch(() => undefined);
    return result;
  }

  /**
   * Checks an idempotent batch against its partition's producer state and appends it (with its
   * producer header) unless it is a duplicate or refused; one batch at a time per partition, so
   * a retry racing its original sees the original's outcome.
   */
  append(shard: string, batch: ProducerBatch, records: RecordInput[]): Promise<IdempotentAppend> {
    const run = async (): Promise<IdempotentAppend> => {
      const producers = await this.#producersOf(shard);
      const decision = producers.check(batch);
      if (decision.kind === 'duplicate') return { errorCode: 0, baseOffset: decision.baseOffset, duplicate: true };
      if (decision.kind === 'refuse') return { errorCode: decision.errorCode, message: decision.message };
      const [first, ...rest] = records;
      const tagged = first === undefined ? records : [{ ...first, headers: [...(first.headers ?? []), { key: PRODUCER_HEADER, value: encodeHeader(batch) }] }, ...rest];
      const appended = await this.store.append(shard, tagged);
      producers.appended(batch, appended.baseOffset);
      return { errorCode: 0, baseOffset: appended.baseOffset, duplicate: false };
    };
    const previous = this.#locks.get(shard) ?? Promise.resolve();
    const result = previous.then(run, run);
    const settled = result.catch(() => undefined);
    this.#locks.set(shard, settled);
    settled.then(() => {
      if (this.#locks.get(shard) === settled) this.#locks.delete(shard);
    }, () => undefined);
    return result;
  }

  /** Drops a partition's state (its topic was deleted). */
  forget(shard: string): void {
    this.#partitions.delete(shard);
  }

  #producersOf(shard: string): Promise<PartitionProducers> {
    let producers = this.#partitions.get(shard);
    if (producers === undefined) {
      producers = this.#rebuild(shard);
      this.#partitions.set(shard, producers);
      // A failed rebuild (a read error) is retried by the next batch rather than remembered.
      producers.catch(() => this.#partitions.delete(shard));
    }
    return producers;
  }

  async #rebuild(shard: string): Promise<PartitionProducers> {
    const producers = new PartitionProducers(this.#maxProducers);
    const [info, end] = await Promise.all([this.store.info(shard), this.store.highWatermark(shard)]);
    let offset = Math.max(info.startOffset, end - this.#rebuildRecords);
    while (offset < end) {
      const records = await this.store.read(shard, offset, { maxRecords: 1000 });
      if (records.length === 0) break;
      for (const record of records) {
        offset = record.offset + 1;
        const header = record.headers.find((h) => h.key === PRODUCER_HEADER);
        const batch = header === undefined ? undefined : decodeHeader(header.value);
        if (batch !== undefined) producers.appended(batch, record.offset);
      }
    }
    return producers;
  }
}
