// Whether a broker-only node can reach its journal, kept in the broker's write gate as the
// 'journal-unavailable' condition.
//
// Two signals close the gate: any store call that fails as unreachable (SL_REMOTE_UNAVAILABLE,
// SL_REMOTE_TIMEOUT; seen through `store`, the wrapped store every part of the node uses), and
// a probe (a shard list) that fails. Only a probe that succeeds opens it again, so one lucky
// call in a flapping connection does not reopen it. Probes run every probeIntervalMs while the
// journal answers, and with a doubling backoff (retryFirstMs .. retryMaxMs) while it does not;
// the gRPC channel below reconnects with its own backoff, capped at the same maximum
// (RemoteShardStore's reconnectBackoffMaxMs), so a journal that is back is seen within about
// one retryMaxMs.
//
// Must not run concurrently with itself: one probe at a time (#probing).
import type { Logger } from 'pino';
import type { AppendOptions, AppendResult, CompactionReport, JournalRecord, ReadOptions, RecordInput, ShardConfig, ShardInfo } from '../../journal/index.js';
import { isStoreUnreachable, type BatchRead, type BatchReadOptions, type ShardStore, type TailOptions } from '../../shard-model/index.js';
import type { Clock } from '../../base/index.js';
import type { WriteGate } from './write-gate.js';

export const JOURNAL_PROBE_INTERVAL_MS = 1_000;
export const JOURNAL_RETRY_FIRST_MS = 100;
export const JOURNAL_RETRY_MAX_MS = 2_000;
/** A probe that gets no answer within this counts as a failure (the store's own call deadline is much longer). */
export const JOURNAL_PROBE_TIMEOUT_MS = 3_000;

export interface JournalWatchOptions {
  /** The remote store; the watch hands out a wrapped one in `store`. */
  store: ShardStore;
  gate: WriteGate;
  clock: Clock;
  logger: Logger;
  /** host:port of the journal, for log lines and /readyz. */
  address: string;
  probeIntervalMs?: number;
  retryFirstMs?: number;
  retryMaxMs?: number;
  probeTimeoutMs?: number;
}

export class JournalWatch {
  /** The store to use everywhere on this node: calls go through, unreachable failures close the gate. */
  readonly store: ShardStore;
  readonly #options: Required<Omit<JournalWatchOptions, 'store'>> & { inner: ShardStore };
  #failures = 0;
  #timer: unknown;
  #probing = false;
  #stopped = false;

  private constructor(options: JournalWatchOptions) {
    this.#options = {
      inner: options.store,
      gate: options.gate,
      clock: options.clock,
      logger: options.logger,
      address: options.address,
      probeIntervalMs: options.probeIntervalMs ?? JOURNAL_PROBE_INTERVAL_MS,
      retryFirstMs: options.retryFirstMs ?? JOURNAL_RETRY_FIRST_MS,
      retryMaxMs: options.retryMaxMs ?? JOURNAL_RETRY_MAX_MS,
      probeTimeoutMs: options.probeTimeoutMs ?? JOURNAL_PROBE_TIMEOUT_MS,
    };
    this.store = new ObservedShardStore(options.store, (error) => this.#callFailed(error));
  }

  /** Starts probing (the first probe after one interval). */
  static start(options: JournalWatchOptions): JournalWatch {
    const watch = new JournalWatch(options);
    watch.#schedule(watch.#options.probeIntervalMs);
    return watch;
  }

  get reachable(): boolean {
    return !this.#options.gate.blocks.some((block) => block.reason === 'journal-unavailable');
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #callFailed(error: unknown): void {
    if (this.#stopped || !isStoreUnreachable(error)) return;
    const wasReachable = this.reachable;
    this.#markUnreachable(error);
    // Probe soon rather than at the healthy interval: the backoff starts now.
    if (wasReachable) this.#schedule(this.#options.retryFirstMs);
  }

  #markUnreachable(error: unknown): void {
    const { gate, clock, logger, address } = this.#options;
    const detail = `the journal at ${address} does not answer (${(error as { code?: string }).code ?? 'error'}); reconnecting`;
    if (this.reachable) logger.error({ err: error, journal: address }, `journal unreachable: refusing publishes until it answers again (${address})`);
    gate.block('journal-unavailable', detail, clock.now());
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = this.#options.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#probe().catch((error: unknown) => this.#options.logger.error({ err: error }, 'journal probe failed unexpectedly'));
    }, delayMs);
  }

  async #probe(): Promise<void> {
    if (this.#probing || this.#stopped) return;
    this.#probing = true;
    const { inner, gate, clock, logger, address, probeTimeoutMs, probeIntervalMs, retryFirstMs, retryMaxMs } = this.#options;
    let timeout: unknown;
    try {
      await Promise.race([
        inner.list(),
        new Promise<never>((_, reject) => {
          timeout = clock.setTimeout(() => reject(Object.assign(new Error(`no answer within ${probeTimeoutMs} ms`), { code: 'SL_REMOTE_TIMEOUT' })), probeTimeoutMs);
        }),
      ]);
      if (!this.reachable) {
        const since = gate.blocks.find((block) => block.reason === 'journal-unavailable')?.since ?? clock.now();
        logger.info({ journal: address, unreachableMs: clock.now() - since }, `journal reachable again (${address}): accepting publishes`);
      }
      this.#failures = 0;
      gate.unblock('journal-unavailable');
      this.#probing = false;
      this.#schedule(probeIntervalMs);
    } catch (error) {
      this.#probing = false;
      if (this.#stopped) return;
      // Any probe failure counts: a journal that answers with errors cannot take writes either.
      this.#markUnreachable(isStoreUnreachable(error) ? error : Object.assign(new Error(String(error)), { code: (error as { code?: string }).code ?? 'SL_REMOTE_UNAVAILABLE', cause: error }));
      this.#failures += 1;
      this.#schedule(Math.min(retryMaxMs, retryFirstMs * 2 ** (this.#failures - 1)));
    } finally {
      clock.clearTimeout(timeout);
    }
  }
}

/** A ShardStore that reports every failed call (then rethrows it unchanged). */
class ObservedShardStore implements ShardStore {
  constructor(
    private readonly inner: ShardStore,
    private readonly failed: (error: unknown) => void,
  ) {}

  get orderedAppends(): boolean | undefined {
    return this.inner.orderedAppends;
  }

  #watch<T>(call: Promise<T>): Promise<T> {
    return call.catch((error: unknown) => {
      this.failed(error);
      throw error;
    });
  }

  create(name: string, config?: Partial<ShardConfig>): Promise<ShardInfo> {
    return this.#watch(this.inner.create(name, config));
  }

  delete(name: string): Promise<void> {
    return this.#watch(this.inner.delete(name));
  }

  list(): Promise<ShardInfo[]> {
    return this.#watch(this.inner.list());
  }

  append(name: string, records: readonly RecordInput[], options?: AppendOptions): Promise<AppendResult> {
    return this.#watch(this.inner.append(name, records, options));
  }

  read(name: string, fromOffset: number, options?: ReadOptions): Promise<JournalRecord[]> {
    return this.#watch(this.inner.read(name, fromOffset, options));
  }

  readBatches(name: string, fromOffset: number, options?: BatchReadOptions): Promise<BatchRead> {
    return this.#watch(this.inner.readBatches(name, fromOffset, options));
  }

  highWatermark(name: string): Promise<number> {
    return this.#watch(this.inner.highWatermark(name));
  }

  readByTime(name: string, timestamp: number, options?: ReadOptions): Promise<JournalRecord[]> {
    return this.#watch(this.inner.readByTime(name, timestamp, options));
  }

  async *tail(name: string, fromOffset: number, options?: TailOptions): AsyncGenerator<JournalRecord> {
    try {
      yield* this.inner.tail(name, fromOffset, options);
    } catch (error) {
      this.failed(error);
      throw error;
    }
  }

  compact(name: string): Promise<CompactionReport> {
    return this.#watch(this.inner.compact(name));
  }

  truncateAfter(name: string, offset: number): Promise<void> {
    return this.#watch(this.inner.truncateAfter(name, offset));
  }

  info(name: string): Promise<ShardInfo> {
    return this.#watch(this.inner.info(name));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
