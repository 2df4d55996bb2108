// Batches appends to one shard: messages published while an append is in flight wait and go
// out together in the next one, so throughput grows with load (one fsync per batch, like
// Kafka's linger but adaptive: an idle shard appends at once). One append in flight per shard
// also keeps acknowledgements and dispatch in offset order.
//
// A durable batch is handed on in two steps, in one synchronous turn: first onAppended for each
// record (the broker decides what the publisher is told and tells it), then afterBatch for the
// whole batch (the fan-out). So a publisher's acknowledgement never waits for the fan-out of its
// batch, and add()'s promise callbacks run after both steps.
//
// Writes that must outlive a journal outage (session records, cursors: nobody waits to be told
// they failed) go through persist(): when the store is unreachable they stay at the head of the
// queue and are tried again after a backoff, so they are written once the journal is back, in
// the order they were made. Everything queued behind them waits too (one append in flight keeps
// the shard's order); add() callers still get the failure once their own batch fails.
import type { RecordInput } from '../journal/index.js';
import { isStoreUnreachable, type ShardStore } from '../shard-model/index.js';

/** Soft cap on one batch, well under the journal's default maxBatchBytes. */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
const ALONE_BYTES = 1024 * 1024;
/** Backoff of persist() writes while the store is unreachable: doubles from the first to the max. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 2_000;

/** The timers persist() waits on (the broker's clock, so tests can drive them). */
export interface RetryTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Told about every batch this appender writes, for a projection of the shard kept by the
 * appender's owner (engine/projection): which records are durable at which offsets, and which
 * failed (the store may not hold them, though the owner may have applied them already).
 */
export interface AppendObserver {
  /** A batch is durable, record i at baseOffset + i; called before onAppended of its records. */
  durable(baseOffset: number, records: readonly RecordInput[]): void;
  /** These records' append failed and will not be retried. */
  failed(records: readonly RecordInput[]): void;
}

interface Waiting<T, R> {
  record: RecordInput;
  item: T;
  bytes: number;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
  /** Kept and retried when the store is unreachable (persist()). */
  persist: boolean;
}

export class ShardAppender<T, R> {
  #waiting: Array<Waiting<T, R>> = [];
  #waitingBytes = 0;
  #inFlight = false;
  #idle: Array<() => void> = [];
  #failures = 0;
  #retryTimer: unknown;
  #retrying = true;

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
    /** Needed by persist(); without it persist() behaves like addAll(). */
    private readonly timers?: RetryTimers,
    private readonly observer?: AppendObserver,
  ) {}

  /** Nothing waiting and nothing in flight: every record added so far is durable or failed. */
  get idle(): boolean {
    return !this.#inFlight && this.#waiting.length === 0;
  }

  /** Bytes waiting for the next batch (for publisher backpressure). */
  get backlogBytes(): number {
    return this.#waitingBytes;
  }

  /** Resolves with onAppended's result once the record is durable. */
  add(record: RecordInput, item: T, persist = false): Promise<R> {
    const bytes = (record.value?.length ?? 0) + (record.key?.length ?? 0) + 32;
    return new Promise((resolve, reject) => {
      this.#waiting.push({ record, item, bytes, resolve, reject, persist });
      this.#waitingBytes += bytes;
      if (!this.#inFlight) this.#flush();
    });
  }

  /** Appends records that have nothing to dispatch (system-shard writes) in the next batch. */
  async addAll(records: readonly RecordInput[], item: T): Promise<void> {
    await Promise.all(records.map((record) => this.add(record, item)));
  }

  /**
   * Like addAll, but an unreachable store does not fail it: the records are retried with
   * backoff until written (or until stopRetrying(), after which a failure rejects as usual).
   */
  async persist(records: readonly RecordInput[], item: T): Promise<void> {
    await Promise.all(records.map((record) => this.add(record, item, this.timers !== undefined)));
  }

  /** Shutdown: writes waiting for a retry are tried once more now, and fail if that fails. */
  stopRetrying(): void {
    this.#retrying = false;
    if (this.#retryTimer === undefined) return;
    this.timers?.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#inFlight = false;
    this.#flush();
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
        this.observer?.durable(
          baseOffset,
          batch.map((entry) => entry.record),
        );
        for (let i = 0; i < batch.length; i += 1) {
          const entry = batch[i] as Waiting<T, R>;
          try {
            entry.resolve(this.onAppended(entry.item, baseOffset + i));
          } catch (error) {
            entry.reject(error);
          }
        }
        this.#failures = 0;
        this.afterBatch?.(
          batch.map((entry) => entry.item),
          baseOffset,
        );
        this.#inFlight = false;
        this.#flush();
      },
      (error: unknown) => {
        const kept = this.#retrying && this.timers !== undefined && isStoreUnreachable(error) ? batch.filter((entry) => entry.persist) : [];
        const failed = batch.filter((entry) => !kept.includes(entry));
        if (failed.length > 0) this.observer?.failed(failed.map((entry) => entry.record));
        for (const entry of failed) entry.reject(error);
        if (kept.length === 0) {
          this.#inFlight = false;
          this.#flush();
          return;
        }
        this.#retryLater(kept);
      },
    );
  }

  /** Puts persist() records back at the head; #inFlight stays set, so later ones queue behind them. */
  #retryLater(kept: Array<Waiting<T, R>>): void {
    this.#waiting = [...kept, ...this.#waiting];
    for (const entry of kept) this.#waitingBytes += entry.bytes;
    this.#failures += 1;
    const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (this.#failures - 1));
    this.#retryTimer = (this.timers as RetryTimers).setTimeout(() => {
      this.#retryTimer = undefined;
      this.#inFlight = false;
      this.#flush();
    }, delay);
  }
}
