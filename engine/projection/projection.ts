// Projection<T>: the state a shard's records fold into, rebuilt at start from the newest usable
// snapshot plus the records after it, kept up to date, and snapshotted now and then so the next
// start reads little of the shard. Snapshots live in `$snapshots` and `$snapshots.data`
// (snapshot-store.ts).
//
// Invariant: `state` is the fold of every record of the shard below `offset` (from offset 0, or
// from a snapshot that was such a fold), applied in offset order. A snapshot is written only
// while that holds, so a snapshot at offset X plus the records from X on gives what a replay
// from 0 gives (property-tests/projection-snapshot.test.ts checks it).
//
// Three ways the state moves on, chosen by the owner:
// - apply(record): a record read from the shard (follow() tails it; ACL rules);
// - appended(baseOffset, records): records the owner appended, once durable, applied here
//   (delayed messages, shared-group cursors, users);
// - advanced(baseOffset, count): records the owner appended and had applied to the state itself
//   before they were durable (the session table, the retained set, which must change at once).
//   Such an owner passes `settled`, true only while every record it applied is durable; a
//   snapshot waits for a settled moment, so it never holds a record that is not below `offset`.
// appended() and advanced() need the owner's appends to be contiguous: a batch that does not
// start at `offset` (another writer's records came between, which this state never saw) or a
// failed append after the owner applied its records (diverged()) stops snapshots for the rest
// of the run. Nothing else changes: the next start replays from the last good snapshot.
//
// When snapshots are written: once at least snapshotEveryRecords records or snapshotEveryBytes
// bytes were applied since the last one (checked after each apply and by maybeSnapshot()), and
// at close(). One write at a time; encoding is synchronous, so the state is captured at one
// record boundary, and the write goes on in the background.
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../../base/index.js';
import type { JournalRecord, RecordInput } from '../../journal/index.js';
import type { ShardStore } from '../../shard-model/index.js';
import { ensureSnapshotShards, SnapshotStore } from './snapshot-store.js';

/** Records per read while replaying. */
const REPLAY_MAX_RECORDS = 10_000;
export const DEFAULT_SNAPSHOT_EVERY_RECORDS = 100_000;
export const DEFAULT_SNAPSHOT_EVERY_BYTES = 64 * 1024 * 1024;
/** After a failed read while following the shard, the next try. */
const FOLLOW_RETRY_MS = 1_000;

/** How a state becomes snapshot bytes and back. */
export interface ProjectionCodec<T> {
  /** The encoding's version: a snapshot of any other version is ignored (replay from 0). Bump it on every change of encode. */
  readonly version: number;
  encode(state: T): Buffer;
  /** Throws on bytes it cannot read; the snapshot is then ignored. */
  decode(bytes: Buffer): T;
}

export interface ProjectionOptions<T> {
  store: ShardStore;
  shard: string;
  /** The snapshots' name in `$snapshots` (default: the shard's name). */
  name?: string;
  logger: Logger;
  clock?: Clock;
  /** The state of an empty shard. */
  initial(): T;
  /** Folds one record into the state (may change it in place and return it). Deterministic. */
  apply(state: T, record: JournalRecord): T;
  codec: ProjectionCodec<T>;
  /** For owners that apply before their records are durable: whether every record they applied is. */
  settled?: () => boolean;
  snapshotEveryRecords?: number;
  snapshotEveryBytes?: number;
}

/** What open() found: for the start-up log line and the tests. */
export interface ProjectionOpening {
  /** Offset of the snapshot used; undefined when it replayed from the start of the shard. */
  snapshotOffset: number | undefined;
  snapshotBytes: number;
  /** Records read from the shard after the snapshot. */
  replayedRecords: number;
  /** Snapshots passed over, with why (also logged). */
  skipped: string[];
}

function recordBytes(record: Pick<JournalRecord, 'key' | 'value'>): number {
  return (record.key?.length ?? 0) + (record.value?.length ?? 0);
}

export class Projection<T> {
  state: T;
  readonly opening: ProjectionOpening;
  readonly #options: ProjectionOptions<T>;
  readonly #snapshots: SnapshotStore;
  readonly #clock: Clock;
  #offset: number;
  /** Offset of the newest snapshot written or read; nothing to write while it equals #offset. */
  #snapshotOffset: number | undefined;
  #recordsSince = 0;
  #bytesSince = 0;
  /** Why the state is no longer a fold of a shard prefix; snapshots stop. */
  #unsnapshotable: string | undefined;
  #writing: Promise<void> | undefined;
  #closed = false;

  private constructor(options: ProjectionOptions<T>, snapshots: SnapshotStore, state: T, offset: number, opening: ProjectionOpening) {
    this.#options = options;
    this.#snapshots = snapshots;
    this.#clock = options.clock ?? systemClock;
    this.state = state;
    this.#offset = offset;
    this.#snapshotOffset = opening.snapshotOffset;
    this.opening = opening;
  }

  /** Rebuilds the state: the newest usable snapshot, then every record after it, to the end of the shard. */
  static async open<T>(options: ProjectionOptions<T>): Promise<Projection<T>> {
    const { store, shard, codec, logger } = options;
    const name = options.name ?? shard;
    await ensureSnapshotShards(store);
    const snapshots = new SnapshotStore(store, name);
    const info = await store.info(shard);
    const skipped: string[] = [];
    let state: T | undefined;
    let offset = info.startOffset;
    let snapshotOffset: number | undefined;
    let snapshotBytes = 0;
    // Newest first; an older one is read only when every newer one proved unusable.
    for (const manifest of await snapshots.manifests()) {
      const why =
        manifest.shard !== shard
          ? `it is of shard ${manifest.shard}`
          : manifest.version !== codec.version
            ? `encoding version ${manifest.version}, this build reads ${codec.version}`
            : manifest.offset < info.startOffset || manifest.offset > info.nextOffset
              ? `offset ${manifest.offset} is outside the shard (${info.startOffset}..${info.nextOffset})`
              : undefined;
      if (why !== undefined) {
        skipped.push(`snapshot ${manifest.id}: ${why}`);
        continue;
      }
      const bytes = await snapshots.load(manifest);
      if (typeof bytes === 'string') {
        skipped.push(`snapshot ${manifest.id}: ${bytes}`);
        continue;
      }
      try {
        state = codec.decode(bytes);
      } catch (error) {
        skipped.push(`snapshot ${manifest.id}: ${(error as Error).message}`);
        continue;
      }
      offset = manifest.offset;
      snapshotOffset = manifest.offset;
      snapshotBytes = bytes.length;
      break;
    }
    if (skipped.length > 0) logger.warn({ shard, skipped }, `snapshots of ${shard} passed over; ${snapshotOffset === undefined ? 'replaying it from its start' : `using the one at offset ${snapshotOffset}`}`);
    const opening: ProjectionOpening = { snapshotOffset, snapshotBytes, replayedRecords: 0, skipped };
    const projection = new Projection(options, snapshots, state ?? options.initial(), offset, opening);
    opening.replayedRecords = await projection.#catchUp();
    // What was just replayed counts towards the next snapshot: a long tail is worth one soon.
    return projection;
  }

  /** Every record of the shard below this offset is in the state. */
  get offset(): number {
    return this.#offset;
  }

  /** Reads from `offset` to the end of the shard; returns the records applied. */
  async #catchUp(): Promise<number> {
    const { store, shard } = this.#options;
    let count = 0;
    for (;;) {
      const records = await store.read(shard, this.#offset, { maxRecords: REPLAY_MAX_RECORDS });
      if (records.length > 0) {
        for (const record of records) this.#fold(record);
        count += records.length;
        continue;
      }
      // Compaction may have removed the last records (expired tombstones): the end is the
      // shard's next offset, not the last record read. Read again past `info` in case records
      // came meanwhile; empty then means none is left below that end.
      const end = (await store.info(shard)).nextOffset;
      if (end <= this.#offset) return count;
      const more = await store.read(shard, this.#offset, { maxRecords: REPLAY_MAX_RECORDS });
      if (more.length === 0) {
        this.#offset = end;
        return count;
      }
      for (const record of more) this.#fold(record);
      count += more.length;
    }
  }

  #fold(record: JournalRecord): void {
    this.state = this.#options.apply(this.state, record);
    this.#offset = record.offset + 1;
    this.#recordsSince += 1;
    this.#bytesSince += recordBytes(record);
  }

  /** A record read from the shard (by follow() or the owner's own reads); one already applied is ignored. */
  apply(record: JournalRecord): void {
    if (record.offset < this.#offset) return;
    this.#fold(record);
    this.maybeSnapshot();
  }

  /** Records the owner appended, now durable at baseOffset.., to be applied here. */
  appended(baseOffset: number, records: readonly RecordInput[]): void {
    if (!this.#contiguous(baseOffset, records.length)) return;
    for (let i = 0; i < records.length; i += 1) {
      const input = records[i] as RecordInput;
      // The owner's timestamp, or 0 where it let the journal choose: reducers fed this way must not read it.
      this.#fold({ offset: baseOffset + i, timestamp: input.timestamp ?? 0, key: input.key ?? null, value: input.value, headers: input.headers ?? [], epoch: 0 });
    }
    this.maybeSnapshot();
  }

  /** Records the owner appended and had already applied to the state, now durable at baseOffset... */
  advanced(baseOffset: number, records: readonly RecordInput[]): void {
    if (!this.#contiguous(baseOffset, records.length)) return;
    this.#offset = baseOffset + records.length;
    this.#recordsSince += records.length;
    for (const record of records) this.#bytesSince += (record.key?.length ?? 0) + (record.value?.length ?? 0);
    this.maybeSnapshot();
  }

  /** The owner's state now holds what the shard does not (an append failed after it applied): no more snapshots this run. */
  diverged(reason: string): void {
    this.#stopSnapshots(reason);
  }

  #contiguous(baseOffset: number, count: number): boolean {
    if (this.#unsnapshotable !== undefined) return false;
    if (baseOffset === this.#offset) return true;
    this.#stopSnapshots(`records ${this.#offset}..${baseOffset - 1} were written by someone else (this state never saw them)`);
    // The offset still moves on, so `offset` keeps meaning "the owner's appends reached here".
    this.#offset = Math.max(this.#offset, baseOffset + count);
    return false;
  }

  #stopSnapshots(reason: string): void {
    if (this.#unsnapshotable !== undefined) return;
    this.#unsnapshotable = reason;
    this.#options.logger.info({ shard: this.#options.shard, reason }, `no more snapshots of ${this.#options.shard} in this run; the next start replays from the last one`);
  }

  /** Whether enough was applied since the last snapshot for a new one. */
  get snapshotDue(): boolean {
    return this.#recordsSince >= (this.#options.snapshotEveryRecords ?? DEFAULT_SNAPSHOT_EVERY_RECORDS) || this.#bytesSince >= (this.#options.snapshotEveryBytes ?? DEFAULT_SNAPSHOT_EVERY_BYTES);
  }

  /** Starts a snapshot in the background when one is due and the state allows it (a failure is logged). */
  maybeSnapshot(): void {
    if (!this.snapshotDue || this.#writing !== undefined || this.#closed) return;
    this.#startSnapshot();
  }

  /** Whether a snapshot now would be a fold of a shard prefix with something new in it. */
  #mayWrite(): boolean {
    return this.#unsnapshotable === undefined && this.#snapshotOffset !== this.#offset && (this.#options.settled?.() ?? true);
  }

  #startSnapshot(): void {
    if (!this.#mayWrite()) return;
    const { codec, shard, logger } = this.#options;
    let bytes: Buffer;
    const offset = this.#offset;
    try {
      bytes = codec.encode(this.state);
    } catch (error) {
      this.#stopSnapshots(`encoding the state failed: ${(error as Error).message}`);
      return;
    }
    this.#recordsSince = 0;
    this.#bytesSince = 0;
    this.#writing = this.#snapshots
      .write({ shard, offset, version: codec.version }, bytes, this.#clock.now())
      .then(
        () => {
          this.#snapshotOffset = offset;
          logger.debug({ shard, offset, bytes: bytes.length }, 'snapshot written');
        },
        (error: unknown) => logger.warn({ err: error, shard, offset }, `writing a snapshot of ${shard} failed; the next start replays more of it`),
      )
      .finally(() => {
        this.#writing = undefined;
      });
  }

  /**
   * Follows the shard from `offset`: applies each record as it is appended and calls onRecord
   * after it, until the signal aborts. A failed read is logged and tried again.
   */
  async follow(signal: AbortSignal, onRecord: (record: JournalRecord) => void): Promise<void> {
    const { store, shard, logger } = this.#options;
    // Failures in a row: a journal outage is logged once at error, its retries at debug.
    let failures = 0;
    while (!signal.aborted) {
      try {
        for await (const record of store.tail(shard, this.#offset, { signal })) {
          if (failures > 0) logger.info({ failures }, `following ${shard} again`);
          failures = 0;
          if (record.offset < this.#offset) continue;
          this.apply(record);
          onRecord(record);
        }
        return;
      } catch (error) {
        if (signal.aborted) return;
        failures += 1;
        logger[failures === 1 ? 'error' : 'debug']({ err: error, failures }, `following ${shard} failed; retrying`);
        await retryPause(signal);
      }
    }
  }

  /** Waits for a snapshot being written, then writes one of the state as it is now if it has anything new and may. */
  async snapshotNow(): Promise<void> {
    await this.#writing;
    this.#startSnapshot();
    await this.#writing;
  }

  /** Clean shutdown: a last snapshot (when the state allows one), then no more. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.snapshotNow();
    this.#closed = true;
  }
}

/**
 * The pause before following again after a failed read. It ends early when the signal aborts:
 * close() awaits the follower, and an unref'd timer alone would let the process run out of
 * work and exit (code 13) in the middle of a clean shutdown.
 */
function retryPause(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, FOLLOW_RETRY_MS);
    // A follower waiting to retry must not keep the process alive by itself.
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
  });
}
