// A stream queue (x-queue-type=stream) is its shard read without consuming it: publishes append
// records, and each consumer reads the shard on its own from where x-stream-offset put it, then
// tails it (woken by appends, not polling). Nothing is removed by consumers: an acknowledgement
// (or a nack or reject, with requeue or not) only gives back prefetch credit; retention removes
// old segments. One reader per consumer holds at most one page of the shard in memory (the
// tail's page), and takes the next record only when the consumer has room under its prefetch.
import type { Logger } from 'pino';
import { isControlBatch, readBatchHeader, type JournalRecord, type ShardConfig } from '../../../journal/index.js';
import type { ShardStore } from '../../../shard-model/index.js';
import { decodeMessageRecord, MessageQueue, type QueueConsumer, type QueuedMessage } from './queue.js';
import type { StreamOffsetSpec, StreamPolicy } from './stream-arguments.js';

/** A consumer the stream can cancel when its reader fails (consumer cancel notification). */
export interface StreamConsumer extends QueueConsumer {
  cancelledByServer(): void;
}

export interface StreamHost {
  readonly store: ShardStore;
  readonly logger: Logger;
  readonly shard: string;
}

/** The shard settings of a stream: not compacted, its retention and segment size from the declare. */
export function streamShardConfig(policy: StreamPolicy, maxRecordBytes: number): Partial<ShardConfig> {
  return {
    compacted: false,
    maxRecordBytes,
    retentionMs: policy.maxAgeMs ?? null,
    retentionBytes: policy.maxLengthBytes ?? null,
    ...(policy.maxSegmentSizeBytes === undefined ? {} : { segmentBytes: policy.maxSegmentSizeBytes }),
  };
}

/** How many control batches in a row 'last' steps back over before it settles for the end. */
const LAST_CHUNK_CONTROL_STEPS = 16;

/**
 * The offset a consumer starts at: first = the oldest kept record, next = the end, last = the
 * first record of the last batch (one append: a group of publishes that were written together,
 * RabbitMQ's "chunk"), an offset clamped into [first, end], a timestamp = the first record
 * appended at or after it (the end when none is).
 */
export async function resolveStreamStart(store: ShardStore, shard: string, spec: StreamOffsetSpec): Promise<number> {
  const info = await store.info(shard);
  const start = info.startOffset;
  const end = await store.highWatermark(shard);
  switch (spec.kind) {
    case 'first':
      return start;
    case 'next':
      return end;
    case 'offset':
      return Math.min(Math.max(spec.offset, start), end);
    case 'last': {
      // The last batch that holds messages: control batches (replication's epoch starts, one
      // per leader change) are stepped over, a bounded number of them.
      let before = end;
      for (let step = 0; step < LAST_CHUNK_CONTROL_STEPS && before > start; step += 1) {
        const { batches } = await store.readBatches(shard, before - 1, { maxBytes: 1 });
        const batch = batches[0];
        if (batch === undefined) return end;
        const header = readBatchHeader(batch, 0);
        if (!isControlBatch(header)) return Math.max(header.baseOffset, start);
        before = header.baseOffset;
      }
      return end;
    }
    case 'timestamp': {
      const [first] = await store.readByTime(shard, spec.ms, { maxRecords: 1 });
      return first === undefined ? end : Math.min(Math.max(first.offset, start), end);
    }
  }
}

/** Ends a tail (its wait for appends and its page); nothing is left to report if that fails. */
function endIterator(iterator: AsyncIterator<JournalRecord>): void {
  iterator.return?.(undefined).catch(() => undefined);
}

const isOutOfRange = (error: unknown): boolean => (error as { code?: string }).code === 'SL_JOURNAL_OFFSET_OUT_OF_RANGE';

/** One consumer's read of the shard: pulls the next record only when the consumer has room. */
class StreamReader {
  #iterator: AsyncIterator<JournalRecord> | undefined;
  #abort = new AbortController();
  /** A record read while the consumer had room, which it no longer has (a channel-wide limit, a full socket). */
  #held: QueuedMessage | undefined;
  #pulling = false;
  #stopped = false;
  /** The offset after the last record delivered, where a reopened read goes on. */
  #next = 0;

  constructor(
    private readonly host: StreamHost,
    private readonly consumer: StreamConsumer,
    private readonly onFailed: (consumer: StreamConsumer) => void,
  ) {}

  start(spec: StreamOffsetSpec): void {
    resolveStreamStart(this.host.store, this.host.shard, spec).then(
      (offset) => this.#open(offset),
      (error: unknown) => this.#failed(error),
    );
  }

  stop(): void {
    this.#stopped = true;
    this.#abort.abort();
    this.#held = undefined;
    // An iterator waiting in next() ends through the abort; one between pulls ends here.
    if (!this.#pulling && this.#iterator !== undefined) endIterator(this.#iterator);
    this.#iterator = undefined;
  }

  #open(offset: number): void {
    if (this.#stopped) return;
    this.#next = offset;
    this.#abort = new AbortController();
    this.#iterator = this.host.store.tail(this.host.shard, offset, { signal: this.#abort.signal })[Symbol.asyncIterator]();
    this.pump();
  }

  pump(): void {
    if (this.#stopped || this.#pulling || this.#iterator === undefined) return;
    if (this.#held !== undefined) {
      if (!this.consumer.hasRoom()) return;
      const message = this.#held;
      this.#held = undefined;
      this.consumer.deliver(message);
    }
    if (!this.consumer.hasRoom()) return;
    const iterator = this.#iterator;
    this.#pulling = true;
    iterator.next().then(
      (result) => {
        this.#pulling = false;
        if (this.#stopped) {
          endIterator(iterator);
          return;
        }
        if (result.done === true) return;
        this.#next = result.value.offset + 1;
        this.#held = this.#message(result.value);
        this.pump();
      },
      (error: unknown) => {
        this.#pulling = false;
        if (this.#stopped) return;
        this.#failed(error);
      },
    );
  }

  /** A record as a delivery: the message with its offset in the x-stream-offset header. Never stored, so acknowledging it writes nothing. */
  #message(record: JournalRecord): QueuedMessage | undefined {
    try {
      const message = decodeMessageRecord(record.offset, record.value ?? Buffer.alloc(0));
      const headers = new Map(message.properties.headers ?? []);
      headers.set('x-stream-offset', { type: 'int64', value: BigInt(record.offset) });
      return { ...message, properties: { ...message.properties, headers }, stored: false };
    } catch (error) {
      this.host.logger.warn({ err: error, shard: this.host.shard, offset: record.offset }, 'AMQP: a stream record is not a message; skipped');
      return undefined;
    }
  }

  #failed(error: unknown): void {
    if (this.#stopped) return;
    // Retention removed segments the consumer had not read yet: it goes on at the oldest kept record.
    if (isOutOfRange(error)) {
      this.host.logger.warn({ shard: this.host.shard, from: this.#next }, 'AMQP: a stream consumer fell behind retention; it reads on from the oldest kept record');
      this.#iterator = undefined;
      resolveStreamStart(this.host.store, this.host.shard, { kind: 'offset', offset: this.#next }).then(
        (offset) => (offset === this.#next ? this.#failed(new Error(`offset ${offset} stays out of range`)) : this.#open(offset)),
        (again: unknown) => this.#failed(again),
      );
      return;
    }
    this.host.logger.error({ err: error, shard: this.host.shard }, 'AMQP: reading a stream failed; its consumer is cancelled');
    this.stop();
    this.onFailed(this.consumer);
  }
}

/**
 * The queue side of a stream: it never holds ready messages (messageCount is 0, basic.get and
 * purge are refused by the session); its consumers are in the round-robin list of MessageQueue
 * (so counting, cancelling and deleting them work as for a classic queue), each with its reader.
 */
export class StreamQueue extends MessageQueue {
  readonly #readers = new Map<QueueConsumer, StreamReader>();

  constructor(
    name: string,
    private readonly host: StreamHost,
  ) {
    super(name);
  }

  /** A consumer that starts reading at `spec`. */
  consume(consumer: StreamConsumer, spec: StreamOffsetSpec): void {
    const reader = new StreamReader(this.host, consumer, (failed) => {
      this.removeConsumer(failed.tag, (candidate) => candidate === failed);
      failed.cancelledByServer();
    });
    this.#readers.set(consumer, reader);
    super.addConsumer(consumer);
    reader.start(spec);
  }

  override removeConsumer(tag: string, owner: (consumer: QueueConsumer) => boolean): QueueConsumer | undefined {
    const removed = super.removeConsumer(tag, owner);
    if (removed !== undefined) {
      this.#readers.get(removed)?.stop();
      this.#readers.delete(removed);
    }
    return removed;
  }

  /** Room came free somewhere (an ack, a drained socket, a larger prefetch): every reader that waits goes on. */
  override dispatch(): void {
    for (const reader of this.#readers.values()) reader.pump();
  }

  /** Deliveries given back stay where they are in the shard: nothing is requeued or redelivered. */
  override requeue(): void {
    this.dispatch();
  }
}
