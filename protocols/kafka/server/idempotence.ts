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
//
// In a cluster every broker appends to the same shards. Each broker then counts under its own
// key ("next.<broker id>") in its own range of ids, ((broker id + 1) << 31) + n, so two brokers
// never hand out the same id and no id of a cluster broker is one a single node handed out
// (those are below 2^31). And a partition's leader may change (cluster.ts): before each check,
// a broker reads the records appended to the partition since the last one it knows of, so a
// batch another broker appended is known here too.
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
  /** In a cluster, this broker's Kafka id: its producer-id range, and partitions shared with other brokers. */
  brokerId?: number;
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

/** Ids per cluster broker: the low 31 bits count, the bits above are the broker id + 1. */
const RANGE_BITS = 31n;
const RANGE_SIZE = 1n << RANGE_BITS;

/** A partition's producer state and the offset after the last record it has read or appended. */
interface PartitionState {
  producers: PartitionProducers;
  end: number;
}

export class Idempotence {
  readonly #partitions = new Map<string, Promise<PartitionState>>();
  /** Per shard, the tail of the chain that runs check-append-record one batch at a time. */
  readonly #locks = new Map<string, Promise<unknown>>();
  #idChain: Promise<unknown> = Promise.resolve();
  readonly #maxProducers: number;
  readonly #rebuildRecords: number;

  readonly #brokerId: number | undefined;
  /** This broker's counter key in `$kafka.producer-ids`. */
  readonly #nextKey: Buffer;
  /** The first id of this broker's range (0 outside a cluster). */
  readonly #firstId: bigint;

  private constructor(private readonly store: ShardStore, private nextProducerId: bigint, options: IdempotenceOptions) {
    this.#maxProducers = options.maxProducersPerPartition ?? 1000;
    this.#rebuildRecords = options.rebuildRecords ?? 50_000;
    this.#brokerId = options.brokerId;
    this.#nextKey = counterKey(options.brokerId);
    this.#firstId = rangeStart(options.brokerId);
  }

  static async open(store: ShardStore, options: IdempotenceOptions = {}): Promise<Idempotence> {
    await createShardIfMissing(store, KAFKA_PRODUCER_IDS_SHARD, { compacted: true });
    const next = await readCounter(store, counterKey(options.brokerId));
    return new Idempotence(store, next ?? rangeStart(options.brokerId), options);
  }

  /** InitProducerId: a new producer id (epoch 0), or the same id with the next epoch (KIP-360 bump). Transactions are refused. */
  initProducerId(body: KafkaStruct): Promise<KafkaStruct> {
    const answer = (errorCode: number, producerId = -1n, producerEpoch = -1): KafkaStruct => ({ throttleTimeMs: 0, errorCode, producerId, producerEpoch });
    if (body.transactionalId !== null && body.transactionalId !== undefined) return Promise.resolve(answer(KafkaErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED));
    const producerId = (body.producerId as bigint | undefined) ?? -1n;
    const epoch = (body.producerEpoch as number | undefined) ?? -1;
    const run = async (): Promise<KafkaStruct> => {
      if (producerId >= 0n && epoch >= 0) {
        if (!(await this.#handedOut(producerId))) return answer(KafkaErrorCode.INVALID_PRODUCER_ID_MAPPING);
        if (epoch < MAX_EPOCH) return answer(0, producerId, epoch + 1);
      } else if (producerId !== -1n || epoch !== -1) return answer(KafkaErrorCode.INVALID_REQUEST);
      const id = this.nextProducerId;
      // A cluster broker that used up its 2^31 ids would step into the next broker's range.
      if (this.#brokerId !== undefined && id - this.#firstId >= RANGE_SIZE) return answer(KafkaErrorCode.UNKNOWN_SERVER_ERROR);
      await this.store.append(KAFKA_PRODUCER_IDS_SHARD, [{ key: this.#nextKey, value: Buffer.from(String(id + 1n)) }]);
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
      const state = await this.#producersOf(shard);
      if (this.#brokerId !== undefined) await this.#readFrom(shard, state, await this.store.highWatermark(shard));
      const { producers } = state;
      const decision = producers.check(batch);
      if (decision.kind === 'duplicate') return { errorCode: 0, baseOffset: decision.baseOffset, duplicate: true };
      if (decision.kind === 'refuse') return { errorCode: decision.errorCode, message: decision.message };
      const [first, ...rest] = records;
      const tagged = first === undefined ? records : [{ ...first, headers: [...(first.headers ?? []), { key: PRODUCER_HEADER, value: encodeHeader(batch) }] }, ...rest];
      const appended = await this.store.append(shard, tagged);
      producers.appended(batch, appended.baseOffset);
      state.end = Math.max(state.end, appended.baseOffset + tagged.length);
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

  /** Whether an id was handed out: by this broker (or node), or by the cluster broker whose range holds it. */
  async #handedOut(producerId: bigint): Promise<boolean> {
    if (this.#brokerId === undefined || (producerId >= this.#firstId && producerId < this.#firstId + RANGE_SIZE)) return producerId >= this.#firstId && producerId < this.nextProducerId;
    if (producerId < RANGE_SIZE) return producerId < ((await readCounter(this.store, NEXT_KEY)) ?? 0n);
    const owner = Number(producerId >> RANGE_BITS) - 1;
    return producerId < ((await readCounter(this.store, counterKey(owner))) ?? rangeStart(owner));
  }

  #producersOf(shard: string): Promise<PartitionState> {
    let producers = this.#partitions.get(shard);
    if (producers === undefined) {
      producers = this.#rebuild(shard);
      this.#partitions.set(shard, producers);
      // A failed rebuild (a read error) is retried by the next batch rather than remembered.
      producers.catch(() => this.#partitions.delete(shard));
    }
    return producers;
  }

  async #rebuild(shard: string): Promise<PartitionState> {
    const [info, end] = await Promise.all([this.store.info(shard), this.store.highWatermark(shard)]);
    const state: PartitionState = { producers: new PartitionProducers(this.#maxProducers), end: Math.max(info.startOffset, end - this.#rebuildRecords) };
    await this.#readFrom(shard, state, end);
    return state;
  }

  /** Applies the producer headers of the partition's records from state.end up to `end`. */
  async #readFrom(shard: string, state: PartitionState, end: number): Promise<void> {
    if (state.end >= end) return;
    // Retention may have removed what this broker last read; what is gone cannot be a duplicate's original.
    state.end = Math.max(state.end, (await this.store.info(shard)).startOffset);
    while (state.end < end) {
      const records = await this.store.read(shard, state.end, { maxRecords: 1000 });
      if (records.length === 0) break;
      for (const record of records) {
        state.end = record.offset + 1;
        const header = record.headers.find((h) => h.key === PRODUCER_HEADER);
        const batch = header === undefined ? undefined : decodeHeader(header.value);
        if (batch !== undefined) state.producers.appended(batch, record.offset);
      }
    }
  }
}

function counterKey(brokerId: number | undefined): Buffer {
  return brokerId === undefined ? NEXT_KEY : Buffer.from(`next.${brokerId}`);
}

function rangeStart(brokerId: number | undefined): bigint {
  return brokerId === undefined ? 0n : (BigInt(brokerId) + 1n) << RANGE_BITS;
}

/** The latest value of one counter key in `$kafka.producer-ids`; undefined: never written. */
async function readCounter(store: ShardStore, key: Buffer): Promise<bigint | undefined> {
  let next: bigint | undefined;
  await readWholeShard(store, KAFKA_PRODUCER_IDS_SHARD, (record) => {
    if (record.value !== null && record.key?.equals(key)) next = BigInt(record.value.toString('utf8'));
  });
  return next;
}
