// Delivery across brokers for one data shard. A broker that shares its journal with other
// brokers follows (tails) each data shard and hands on, in offset order, every record it did not
// append itself; its own appends are still dispatched from memory as the broker's appender reports
// them durable. The two meet here, so dispatch stays in offset order and each offset is dispatched
// once: a session's cursor and the read-back of a lagging subscriber rely on the dispatch frontier
// moving over every offset, never past one not yet handed on.
//
// - an own batch that starts at the frontier is dispatched at once (the single-writer path);
// - one that starts above it waits (held) until the tail has handed on the other brokers'
//   records below it (and starts the tail, if it was not running: the gap shows another writer);
// - a tailed record at the frontier that no held batch covers is another broker's, unless one of
//   this broker's appends in flight holds it: it waits for those to settle (OwnAppends), then
//   either a held batch covers it or it is handed on as another broker's.
//
// The tail runs only once another broker is known (the broker starts it when it hears of one
// in `$sessions`, or a gap shows one): a broker alone reads nothing back. The frontier only ever
// moves over offsets handed on, so a tail started late, from the frontier, misses nothing.
//
// Memory: the tail is read one record at a time and each is handed on synchronously (a slow
// subscriber falls back to reading the shard, as for local publishes), so the reader waits while
// the broker is busy; held batches are appends already made, bounded by the appender's backlog.
import type { Logger } from 'pino';
import { sleepUnlessAborted } from '../../base/index.js';
import type { JournalRecord } from '../../journal/index.js';
import type { ShardStore } from '../../shard-model/index.js';
import { OwnAppends } from './own-appends.js';

/** After a failed tail, the next try. */
const RETRY_MS = 1_000;

export interface DataFollowerHost<T> {
  readonly store: ShardStore;
  readonly logger: Logger;
  /** The shard's name and index. */
  readonly name: string;
  readonly shard: number;
  /** The next offset to dispatch. */
  frontier(): number;
  /** Dispatches a durable own batch (moves the frontier past it). */
  dispatchOwn(items: readonly T[], baseOffset: number): void;
  /** Dispatches a record another broker appended (moves the frontier past it). */
  dispatchOther(record: JournalRecord): void;
  /** Moves the frontier up to `offset` over offsets that hold no record readers see. */
  skipTo(offset: number): void;
}

export class DataFollower<T> {
  /** This broker's appends to the shard (the appender's observer reports them). */
  readonly own = new OwnAppends();
  /** Own durable batches above the frontier, by base offset. */
  readonly #held = new Map<number, readonly T[]>();
  readonly #abort = new AbortController();
  #running: Promise<void> | undefined;

  constructor(private readonly host: DataFollowerHost<T>) {}

  /** An own batch is durable at baseOffset. */
  ownBatch(items: readonly T[], baseOffset: number): void {
    if (baseOffset === this.host.frontier() && this.#held.size === 0) {
      this.host.dispatchOwn(items, baseOffset);
      return;
    }
    if (baseOffset < this.host.frontier()) {
      this.host.logger.error({ shard: this.host.name, baseOffset, frontier: this.host.frontier() }, 'an own batch below the dispatch frontier was already handed on; not dispatched again');
      return;
    }
    this.#held.set(baseOffset, items);
    // Records below it came from another broker: follow the shard from the frontier, if not yet.
    this.start();
    this.#drain();
  }

  /** Own batches waiting, for metrics and tests. */
  get heldBatches(): number {
    return this.#held.size;
  }

  /** Starts following the shard from the frontier (once another broker is heard of, or a gap shows one). */
  start(): void {
    if (this.#abort.signal.aborted) return;
    this.#running ??= this.#follow();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running;
  }

  #drain(): void {
    for (;;) {
      const frontier = this.host.frontier();
      const items = this.#held.get(frontier);
      if (items === undefined) return;
      this.#held.delete(frontier);
      this.host.dispatchOwn(items, frontier);
    }
  }

  #heldCovers(offset: number): boolean {
    for (const [base, items] of this.#held) if (offset >= base && offset < base + items.length) return true;
    return false;
  }

  /** True when the record at `offset` is handed on already or will be with an own batch. */
  #accountedFor(offset: number): boolean {
    this.#drain();
    return offset < this.host.frontier() || this.#heldCovers(offset);
  }

  /**
   * The tail hands on records in offset order, and each one below `offset` has been handed on
   * or is held by now (an own one in flight was waited for). So an offset between the frontier
   * and `offset` where no held batch starts holds no record a reader sees: a leader's
   * epoch-start batch (replicated shards: offset 0 of a new shard, and one per failover), or
   * records compaction removed. The frontier steps over it. Without this an own batch above
   * such a gap was held for good, and so was every later one of the shard: deliveries that
   * never came (a cluster's broker that learned a new shard's next offset before its leader had
   * written the epoch start).
   */
  #passGaps(offset: number): void {
    for (;;) {
      this.#drain();
      const frontier = this.host.frontier();
      if (frontier >= offset) return;
      let next = offset;
      for (const base of this.#held.keys()) if (base > frontier && base < next) next = base;
      this.host.skipTo(next);
    }
  }

  async #follow(): Promise<void> {
    const { store, name, logger } = this.host;
    const { signal } = this.#abort;
    let failures = 0;
    while (!signal.aborted) {
      try {
        for await (const record of store.tail(name, this.host.frontier(), { signal })) {
          failures = 0;
          this.#passGaps(record.offset);
          if (this.#accountedFor(record.offset)) continue;
          if (this.own.busy) {
            await this.own.settledSoFar();
            if (this.#accountedFor(record.offset)) continue;
          }
          this.host.dispatchOther(record);
          this.#drain();
        }
        return;
      } catch (error) {
        if (signal.aborted) return;
        failures += 1;
        logger[failures === 1 ? 'error' : 'debug']({ err: error, shard: name, failures }, 'following a data shard for other brokers\' messages failed; retrying');
        await sleepUnlessAborted(RETRY_MS, signal);
      }
    }
  }
}
