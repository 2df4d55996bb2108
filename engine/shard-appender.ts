// Batches appends to one shard: messages published while an append is in flight wait and go
// out together in the next one, so throughput grows with load (one fsync per batch, like
// Kafka's linger but adaptive: an idle shard appends at once). Acknowledgements and dispatch go
// in offset order.
//
// With `pipelined` (a store whose appends to one shard take offsets in the order they are
// called, ShardStore.orderedAppends), more appends may start while the first is in flight (a
// few): the journal writes them during its fdatasync and syncs them next (its own pipeline).
// With one append in flight, a message that arrived during a sync waited for that sync, then
// for its own write and sync: the broker's largest latency stage (docs/benchmarks.md, issue 16).
// Completions are handled strictly in the order the appends were made, whatever order their
// promises settle in.
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
// the shard's order, so a persist() appender is never pipelined); add() callers still get the
// failure once their own batch fails.
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
  /**
   * An append of this appender starts; the id comes back in appendSettled once it is handled
   * (after durable() or failed()). For a broker that tells its own records apart from other
   * brokers' in the shard (engine/peers/own-appends.ts).
   */
  appendStarted?(): number;
  appendSettled?(id: number): void;
}

/**
 * Appends in flight at most when pipelined. The journal writes an append at once while a sync
 * runs, and every append written by the time that sync ends shares the next one; a bound of 2
 * made a third message wait for the first sync and then miss the second. Past the bound what
 * waits is batched, so a busy shard still makes few, large batches.
 */
const PIPELINED_IN_FLIGHT = 4;

interface Waiting<T, R> {
  record: RecordInput;
  item: T;
  bytes: number;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
  /** Kept and retried when the store is unreachable (persist()). */
  persist: boolean;
}

/** An append made and not yet handled, in the order made. */
interface InFlight<T, R> {
  batch: Array<Waiting<T, R>>;
  settled: boolean;
  baseOffset: number;
  error: unknown;
  failed: boolean;
  /** The observer's id of this append (appendStarted). */
  track: number | undefined;
}

export class ShardAppender<T, R> {
  #waiting: Array<Waiting<T, R>> = [];
  #waitingBytes = 0;
  /** Appends made and not yet handled, oldest first. */
  #inFlight: Array<InFlight<T, R>> = [];
  #flushQueued = false;
  /** Set while persist() records wait for a retry: nothing else is appended meanwhile. */
  #held = false;
  readonly #maxInFlight: number;
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
    /** Lets a second append start while one is in flight (only for stores with ShardStore.orderedAppends). */
    pipelined = false,
  ) {
    // A persist() appender keeps one in flight: a retried write must not land after a later one.
    this.#maxInFlight = pipelined && timers === undefined ? PIPELINED_IN_FLIGHT : 1;
  }

  /** Nothing waiting and nothing in flight: every record added so far is durable or failed. */
  get idle(): boolean {
    return this.#inFlight.length === 0 && !this.#held && this.#waiting.length === 0;
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
      if (this.#inFlight.length === 0) {
        if (!this.#held) this.#flush();
      } else if (!this.#flushQueued && this.#canAppend()) {
        // Behind an append in flight, the publishes handled in this same turn (one socket read
        // holds many) go out together, not one append each: a microtask, not a timer, so no
        // event-loop turn is added.
        this.#flushQueued = true;
        queueMicrotask(() => {
          this.#flushQueued = false;
          if (this.#canAppend()) this.#flush();
        });
      }
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
    this.#held = false;
    this.#flush();
  }

  /** Resolves when nothing is waiting or in flight. */
  drained(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #canAppend(): boolean {
    return !this.#held && this.#inFlight.length < this.#maxInFlight;
  }

  #flush(): void {
    if (this.#waiting.length === 0) {
      if (this.#inFlight.length === 0 && !this.#held) for (const resolve of this.#idle.splice(0)) resolve();
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
    const entry: InFlight<T, R> = { batch, settled: false, baseOffset: 0, error: undefined, failed: false, track: this.observer?.appendStarted?.() };
    this.#inFlight.push(entry);
    this.store.append(this.shard, batch.map((waiting) => waiting.record)).then(
      ({ baseOffset }) => {
        entry.baseOffset = baseOffset;
        entry.settled = true;
        this.#settle();
      },
      (error: unknown) => {
        entry.error = error;
        entry.failed = true;
        entry.settled = true;
        this.#settle();
      },
    );
  }

  /** Handles settled appends from the oldest, stopping at the first still in flight. */
  #settle(): void {
    while (this.#inFlight.length > 0 && (this.#inFlight[0] as InFlight<T, R>).settled) {
      const entry = this.#inFlight.shift() as InFlight<T, R>;
      if (entry.failed) {
        const held = this.#failed(entry.batch, entry.error);
        if (entry.track !== undefined) this.observer?.appendSettled?.(entry.track);
        if (held) return;
      } else {
        this.#durable(entry.batch, entry.baseOffset);
        if (entry.track !== undefined) this.observer?.appendSettled?.(entry.track);
      }
    }
    if (this.#canAppend()) this.#flush();
  }

  #durable(batch: Array<Waiting<T, R>>, baseOffset: number): void {
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
  }

  /** Fails a batch, or keeps its persist() records for a retry (then returns true: appending waits). */
  #failed(batch: Array<Waiting<T, R>>, error: unknown): boolean {
    const kept = this.#retrying && this.timers !== undefined && isStoreUnreachable(error) ? batch.filter((entry) => entry.persist) : [];
    const failed = batch.filter((entry) => !kept.includes(entry));
    if (failed.length > 0) this.observer?.failed(failed.map((entry) => entry.record));
    for (const entry of failed) entry.reject(error);
    if (kept.length === 0) return false;
    this.#retryLater(kept);
    return true;
  }

  /** Puts persist() records back at the head; #held is set, so later ones queue behind them. */
  #retryLater(kept: Array<Waiting<T, R>>): void {
    this.#held = true;
    this.#waiting = [...kept, ...this.#waiting];
    for (const entry of kept) this.#waitingBytes += entry.bytes;
    this.#failures += 1;
    const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (this.#failures - 1));
    this.#retryTimer = (this.timers as RetryTimers).setTimeout(() => {
      this.#retryTimer = undefined;
      this.#held = false;
      this.#flush();
    }, delay);
  }
}
