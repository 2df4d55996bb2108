// Batches appends to one shard: messages published while an append is in flight wait and go
// out together in the next one, so throughput grows with load (one fsync per batch, like
// Kafka's linger but adaptive: an idle shard appends at once). One append in flight per shard
// also keeps acknowledgements and dispatch in offset order.
//
// A durable batch is handed on in two steps, in one synchronous turn: first onAppended for each
// record (the broker decides what the publisher is told and tells it), then afterBatch for the
// whole batch (the fan-out). So a publisher's acknowledgement never waits for the fan-out of its
// batch, and add()'s promise callbacks run after both steps.
import type { RecordInput } from '../journal/index.js';
import type { ShardStore } from '../shard-model/index.js';

/** Soft cap on one batch, well under the journal's default maxBatchBytes. */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
const ALONE_BYTES = 1024 * 1024;

interface Waiting<T, R> {
  record: RecordInput;
  item: T;
  bytes: number;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

export class ShardAppender<T, R> {
  #waiting: Array<Waiting<T, R>> = [];
  #waitingBytes = 0;
  #inFlight = false;
  #idle: Array<() => void> = [];

  constructor(
    private readonly store: ShardStore,
    readonly shard: string,
    /** Called for each record once its batch is durable, in offset order; add() resolves with its result. */
    private readonly onAppended: (item: T, offset: number) => R,
    /**
     * Called once per durable batch after every onAppended of it, with the batch's items and its
     * base offset (item i is at baseOffset + i). Must not throw.
     */
    private readonly afterBatch?: (items: readonly T[], baseOffset: number) => void,
  ) {}

  /** Bytes waiting for the next batch (for publisher backpressure). */
  get backlogBytes(): number {
    return this.#waitingBytes;
  }

  /** Resolves with onAppended's result once the record is durable. */
  add(record: RecordInput, item: T): Promise<R> {
    const bytes = (record.value?.length ?? 0) + (record.key?.length ?? 0) + 32;
    return new Promise((resolve, reject) => {
      this.#waiting.push({ record, item, bytes, resolve, reject });
      this.#waitingBytes += bytes;
      if (!this.#inFlight) this.#flush();
    });
  }

  /** Appends records that have nothing to dispatch (system-shard writes) in the next batch. */
  async addAll(records: readonly RecordInput[], item: T): Promise<void> {
    await Promise.all(records.map((record) => this.add(record, item)));
  }

  /** Resolves when nothing is waiting or in flight. */
  drained(): Promise<void> {
    if (!this.#inFlight && this.#waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #flush(): void {
    if (this.#waiting.length === 0) {
      for (const resolve of this.#idle.splice(0)) resolve();
      return;
    }
    let count = 0;
    let bytes = 0;
    // A large record goes alone: should the journal refuse it (too large for the shard), only
    // its own append fails, not the messages of others batched with it.
    const alone = (this.#waiting[0] as Waiting<T, R>).bytes > ALONE_BYTES;
    while (count < this.#waiting.length && (count === 0 || (!alone && (this.#waiting[count] as Waiting<T, R>).bytes <= ALONE_BYTES && bytes + (this.#waiting[count] as Waiting<T, R>).bytes <= MAX_BATCH_BYTES))) {
      bytes += (this.#waiting[count] as Waiting<T, R>).bytes;
      count += 1;
    }
    const batch = this.#waiting.slice(0, count);
    this.#waiting = this.#waiting.slice(count);
    this.#waitingBytes -= bytes;
    this.#inFlight = true;
    this.store.append(this.shard, batch.map((entry) => entry.record)).then(
      ({ baseOffset }) => {
        for (let i = 0; i < batch.length; i += 1) {
          const entry = batch[i] as Waiting<T, R>;
          try {
            entry.resolve(this.onAppended(entry.item, baseOffset + i));
          } catch (error) {
            entry.reject(error);
          }
        }
        this.afterBatch?.(
          batch.map((entry) => entry.item),
          baseOffset,
        );
        this.#inFlight = false;
        this.#flush();
      },
      (error: unknown) => {
        for (const entry of batch) entry.reject(error);
        this.#inFlight = false;
        this.#flush();
      },
    );
  }
}
