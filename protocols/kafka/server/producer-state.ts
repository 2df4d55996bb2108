// Idempotent producers on one partition: a pure state machine (no I/O). For each producer id it
// remembers the epoch and the last few batches appended (sequence range and base offset), as a
// Kafka partition leader does, and decides for an incoming batch whether to append it, answer it
// as a duplicate (a retry of a batch already appended: its original base offset, nothing
// appended twice), or refuse it (a stale epoch, a gap in the sequence).
//
// The rules are Kafka's (ProducerStateManager): a new epoch must start at sequence 0; in the
// same epoch a batch must start right after the last one (sequences wrap from 2^31-1 to 0); a
// producer with no state here (never seen, or evicted) may start at any sequence, so a producer
// whose state expired carries on instead of failing forever. State is bounded: at most
// `maxProducers` producers per partition, the one that appended least recently evicted first
// (Kafka expires producer state after producer.id.expiration.ms; this is the same forgetting,
// by count instead of time).
import { KafkaErrorCode } from '../codec/index.js';

/** Batches remembered per producer for duplicate detection: a Kafka producer has at most 5 in flight. */
export const BATCHES_PER_PRODUCER = 5;
const MAX_SEQUENCE = 2 ** 31 - 1;

export interface ProducerBatch {
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  /** Records in the batch (lastOffsetDelta + 1). */
  count: number;
}

interface AppendedBatch {
  baseSequence: number;
  lastSequence: number;
  baseOffset: number;
}

interface ProducerEntry {
  epoch: number;
  /** Oldest first, at most BATCHES_PER_PRODUCER. */
  batches: AppendedBatch[];
}

export type SequenceDecision =
  | { kind: 'append' }
  | { kind: 'duplicate'; baseOffset: number }
  | { kind: 'refuse'; errorCode: number; message: string };

export function lastSequenceOf(batch: ProducerBatch): number {
  return (batch.baseSequence + batch.count - 1) % (MAX_SEQUENCE + 1);
}

function follows(last: number, next: number): boolean {
  return next === (last === MAX_SEQUENCE ? 0 : last + 1);
}

export class PartitionProducers {
  /** In least-recently-appended order (Map iteration order; an append moves its producer last). */
  readonly #producers = new Map<bigint, ProducerEntry>();

  constructor(private readonly maxProducers: number) {}

  get size(): number {
    return this.#producers.size;
  }

  check(batch: ProducerBatch): SequenceDecision {
    if (batch.producerEpoch < 0 || batch.baseSequence < 0) return { kind: 'refuse', errorCode: KafkaErrorCode.INVALID_RECORD, message: `producer ${batch.producerId}: epoch ${batch.producerEpoch} and base sequence ${batch.baseSequence} must be >= 0` };
    const entry = this.#producers.get(batch.producerId);
    if (entry === undefined) return { kind: 'append' };
    if (batch.producerEpoch < entry.epoch) return { kind: 'refuse', errorCode: KafkaErrorCode.INVALID_PRODUCER_EPOCH, message: `producer ${batch.producerId}: epoch ${batch.producerEpoch} is older than ${entry.epoch}` };
    if (batch.producerEpoch > entry.epoch) {
      if (batch.baseSequence === 0) return { kind: 'append' };
      return { kind: 'refuse', errorCode: KafkaErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, message: `producer ${batch.producerId}: a new epoch ${batch.producerEpoch} must start at sequence 0, not ${batch.baseSequence}` };
    }
    const lastSequence = lastSequenceOf(batch);
    const duplicate = entry.batches.find((seen) => seen.baseSequence === batch.baseSequence && seen.lastSequence === lastSequence);
    if (duplicate !== undefined) return { kind: 'duplicate', baseOffset: duplicate.baseOffset };
    const last = entry.batches[entry.batches.length - 1];
    if (last === undefined || follows(last.lastSequence, batch.baseSequence)) return { kind: 'append' };
    return { kind: 'refuse', errorCode: KafkaErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, message: `producer ${batch.producerId}: sequence ${batch.baseSequence} does not follow ${last.lastSequence}` };
  }

  /** Records an appended batch (after check said append, or while rebuilding from the shard). */
  appended(batch: ProducerBatch, baseOffset: number): void {
    const previous = this.#producers.get(batch.producerId);
    const entry: ProducerEntry = previous !== undefined && previous.epoch === batch.producerEpoch ? previous : { epoch: batch.producerEpoch, batches: [] };
    entry.batches.push({ baseSequence: batch.baseSequence, lastSequence: lastSequenceOf(batch), baseOffset });
    if (entry.batches.length > BATCHES_PER_PRODUCER) entry.batches.shift();
    this.#producers.delete(batch.producerId);
    this.#producers.set(batch.producerId, entry);
    while (this.#producers.size > this.maxProducers) {
      const oldest = this.#producers.keys().next().value as bigint;
      this.#producers.delete(oldest);
    }
  }
}
