// The cluster's replicated shards behind the ShardStore interface, for a broker started with
// --placement and no --journal (docs/replication.md, "Brokers follow leaders"). It keeps a copy
// of placement's node and shard records (PlacementView: the watch stream plus a poll) and sends
// each shard's calls to its leader's journal node, one RemoteShardStore per journal address.
//
// Failover: a call the leader refuses because it no longer leads (SL_REPL_NOT_LEADER,
// SL_REPL_STALE_EPOCH, SL_REPL_NOT_REPLICATED while an election reaches it) or that cannot reach
// it (SL_REMOTE_UNAVAILABLE, SL_REMOTE_TIMEOUT) is retried after re-reading placement, with a
// growing pause, until retryDeadlineMs; so an MQTT publisher whose shard fails over sees its
// PUBACK late, not an error. Past the deadline the call fails with the last error, or
// SL_REMOTE_NO_LEADER. Tails re-open at the next offset on the new leader. Reads and tails leave
// out the epoch-start record each new leader writes (it is replication's, not the shard's).
//
// Appends are idempotent and pipelined (docs/replication.md, "Idempotent appends"): per shard
// the store is a writer with a random id and numbers its appends 0, 1, 2, ... in the order
// append() is called; every try of an append carries the same (id, sequence) and the lowest
// sequence not yet answered, and the leader stores each sequence once, in order. So an append
// retried after an unknown outcome (the leader died or was deposed while it waited for the
// quorum) is answered with the offsets of its first copy, several appends may be in flight per
// shard (orderedAppends: a later one never lands before an earlier one, whatever order the
// calls or their retries arrive in), and an out-of-sequence refusal is retried like a failover.
// An append that fails for good (past the deadline, or a refusal that is not retried) ends its
// writer for that shard: the appends behind it that are not answered yet fail with the same
// error (the leader would wait for the failed sequence forever), and the next append starts a
// new writer id once those have settled, so the new writer's appends cannot overtake them.
//
// Creating a shard goes through placement: create-shard with a replica set the controller's
// rule picks (controller-core.ts assignReplicas), the shard created with the caller's config on
// each replica (durability fsync, which replication needs), then a wait for the controller to
// elect its leader. Two brokers creating one shard at once: one wins create-shard, the other is
// refused shard-exists; both create it on the replicas (idempotent), wait for the leader and
// succeed (a broker's start lists the shards, then creates those missing: both find it missing).
// A shard placement held already when create() started is SL_JOURNAL_SHARD_EXISTS, as a journal
// answers.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { isShardlineError, ShardlineError } from '../../base/index.js';
import { EPOCH_START_HEADER, JournalErrors, type AppendOptions, type AppendResult, type CompactionReport, type JournalRecord, type ReadOptions, type RecordInput, type ShardConfig, type ShardInfo } from '../../journal/index.js';
import type { PlacementClient } from '../../placement/service/index.js';
import { assignReplicas, liveJournalNodes, replicationFactor, REPLICATION_FACTOR_SETTING } from '../controller/controller-core.js';
import { PlacementView } from '../controller/placement-view.js';
import { ShardModelErrors } from '../errors.js';
import type { BatchRead, BatchReadOptions, ShardStore, TailOptions } from '../shard-store.js';
import { RemoteShardStore, type RemoteShardStoreOptions } from './remote-shard-store.js';
import { IdempotentWriter, type WriterTurn } from './idempotent-writer.js';

export const DEFAULT_PLACED_RETRY_DEADLINE_MS = 60_000;
const FIRST_READ_WAIT_MS = 30_000;
/** How long a create waits for the replication factor's worth of journal nodes to register before it takes fewer. */
const CREATE_JOURNALS_WAIT_MS = 15_000;
const BACKOFF_MIN_MS = 50;
const BACKOFF_MAX_MS = 1_000;

// SL_REPL_OUT_OF_SEQUENCE: an earlier append of this writer has not reached the leader yet.
const RETRYABLE = new Set(['SL_REPL_NOT_LEADER', 'SL_REPL_STALE_EPOCH', 'SL_REPL_NOT_REPLICATED', 'SL_REMOTE_UNAVAILABLE', 'SL_REMOTE_TIMEOUT', 'SL_JOURNAL_CLOSED', 'SL_JOURNAL_SHARD_NOT_FOUND', 'SL_REPL_OUT_OF_SEQUENCE']);

export interface PlacedShardStoreOptions {
  readonly client: PlacementClient;
  readonly logger: Logger;
  /** Options of each journal node's RemoteShardStore (credentials go here), over short connect and backoff defaults. */
  readonly remote?: RemoteShardStoreOptions;
  /** How long one call keeps retrying through a failover, ms (default 60 000). */
  readonly retryDeadlineMs?: number;
}

export class PlacedShardStore implements ShardStore {
  readonly orderedAppends = true;
  readonly #stores = new Map<string, Promise<RemoteShardStore>>();
  /** Per shard, this store as an idempotent writer. */
  readonly #writers = new Map<string, IdempotentWriter>();
  #closed = false;
  readonly #tails = new Set<AbortController>();

  private constructor(
    private readonly options: PlacedShardStoreOptions,
    readonly view: PlacementView,
  ) {}

  /** Starts following placement; resolves after the first read of it (SL_REMOTE_NO_LEADER if none within 30 s). */
  static async open(options: PlacedShardStoreOptions): Promise<PlacedShardStore> {
    const view = PlacementView.start({ client: options.client, logger: options.logger });
    const started = Date.now();
    while (view.reads === 0) {
      if (Date.now() - started > FIRST_READ_WAIT_MS) {
        view.stop();
        throw ShardModelErrors.noLeader.create({}, '*', FIRST_READ_WAIT_MS, 'the placement group could not be read');
      }
      await view.changed(500);
    }
    return new PlacedShardStore(options, view);
  }

  async create(name: string, config?: Partial<ShardConfig>): Promise<ShardInfo> {
    const { client, logger } = this.options;
    const started = Date.now();
    let existed = false;
    for (let backoff = BACKOFF_MIN_MS; ; backoff = Math.min(backoff * 2, BACKOFF_MAX_MS)) {
      this.#assertOpen(name);
      await this.view.refresh();
      if (this.view.shards.has(name)) {
        existed = true;
        break;
      }
      const factor = replicationFactor(this.view.settings.get(REPLICATION_FACTOR_SETTING));
      const live = liveJournalNodes(this.view.nodes, Date.now()).length;
      // A cluster still starting: wait a little for its journal nodes rather than replicating less.
      if (live === 0 || (live < factor && Date.now() - started < CREATE_JOURNALS_WAIT_MS)) {
        if (Date.now() - started > this.#deadline) throw ShardModelErrors.noLeader.create({ shard: name }, name, this.#deadline, 'no live journal node is registered');
        await sleep(backoff);
        continue;
      }
      const replicas = assignReplicas(this.view, Date.now(), factor);
      const { result } = await client.propose({ type: 'create-shard', shard: name, replicas });
      if (result.status === 'ok') {
        logger.info({ shard: name, replicas }, 'created a replicated shard in placement');
        break;
      }
      // Another broker created it since the read above: the same create, so it succeeds here too.
      if (result.code === 'shard-exists') break;
      // A node expired between the read and the proposal: pick again.
      if (result.code !== 'unknown-node') throw ShardModelErrors.remoteServerError.create({ shard: name }, 'the placement group', 'create-shard', result.code, result.detail);
    }
    await this.view.refresh();
    const record = this.view.shards.get(name);
    if (record !== undefined) {
      // Idempotent: every creator makes sure the replicas hold the shard, in case the winner died before.
      await Promise.all(record.replicas.map((id) => this.#createOn(id, name, config)));
    }
    const info = await this.#withLeader(name, (store) => store.info(name));
    if (existed) throw JournalErrors.shardExists.create({ shard: name }, name);
    return info;
  }

  /** Shards are never deleted in placement (their epochs must not restart). */
  async delete(name: string): Promise<void> {
    throw ShardModelErrors.remoteUnsupported.create({ shard: name }, 'the placement group', 'delete', 'replicated shards are never deleted (their leader epochs must not start over)');
  }

  async list(): Promise<ShardInfo[]> {
    await this.view.refresh();
    const names = [...this.view.shards.keys()].sort();
    return Promise.all(names.map((name) => this.#withLeader(name, (store) => store.info(name))));
  }

  /** Takes its sequence at once (so offsets follow the order of calls), then sends it until answered. */
  append(name: string, records: readonly RecordInput[], options?: AppendOptions): Promise<AppendResult> {
    let writer = this.#writers.get(name);
    if (writer === undefined) {
      writer = new IdempotentWriter(newWriterId);
      this.#writers.set(name, writer);
    }
    const idempotentWriter = writer;
    return idempotentWriter.turn().then((turn) => this.#appendAs(name, records, options, idempotentWriter, turn));
  }

  async #appendAs(name: string, records: readonly RecordInput[], options: AppendOptions | undefined, writer: IdempotentWriter, turn: WriterTurn): Promise<AppendResult> {
    try {
      const result = await this.#withLeader(
        name,
        (store) => store.append(name, records, { ...options, writer: writer.stamp(turn) }),
        () => writer.abandoned(turn),
      );
      writer.answered(turn);
      return result;
    } catch (error) {
      writer.failed(turn, error);
      throw error;
    }
  }

  read(name: string, fromOffset: number, options?: ReadOptions): Promise<JournalRecord[]> {
    return this.#records(name, fromOffset, (store) => store.read(name, fromOffset, options), options);
  }

  readBatches(name: string, fromOffset: number, options?: BatchReadOptions): Promise<BatchRead> {
    return this.#withLeader(name, (store) => store.readBatches(name, fromOffset, options));
  }

  highWatermark(name: string): Promise<number> {
    return this.#withLeader(name, (store) => store.highWatermark(name));
  }

  readByTime(name: string, timestamp: number, options?: ReadOptions): Promise<JournalRecord[]> {
    return this.#records(name, 0, (store) => store.readByTime(name, timestamp, options), options);
  }

  /** Follows the leader: a tail cut off by a failover re-opens at the next offset on the new leader. */
  async *tail(name: string, fromOffset: number, options: TailOptions = {}): AsyncGenerator<JournalRecord> {
    const own = new AbortController();
    const signal = options.signal === undefined ? own.signal : AbortSignal.any([options.signal, own.signal]);
    this.#tails.add(own);
    let next = fromOffset;
    try {
      for (let backoff = BACKOFF_MIN_MS; !signal.aborted; backoff = Math.min(backoff * 2, BACKOFF_MAX_MS)) {
        const store = await this.#withLeader(name, async (leader) => leader);
        try {
          for await (const record of store.tail(name, next, { signal })) {
            next = record.offset + 1;
            backoff = BACKOFF_MIN_MS;
            if (!isEpochStart(record)) yield record;
          }
          return;
        } catch (error) {
          if (signal.aborted || !retryable(error)) throw error;
          this.options.logger.debug({ shard: name, next, err: error }, 'tail cut off; re-opening on the leader');
        }
        await Promise.all([sleep(backoff), this.view.refresh()]);
      }
    } finally {
      this.#tails.delete(own);
    }
  }

  async compact(name: string): Promise<CompactionReport> {
    throw ShardModelErrors.remoteUnsupported.create({ shard: name }, 'the placement group', 'compact', 'the journal servers compact in the background on their own schedule');
  }

  truncateAfter(name: string, offset: number): Promise<void> {
    return this.#withLeader(name, (store) => store.truncateAfter(name, offset));
  }

  info(name: string): Promise<ShardInfo> {
    return this.#withLeader(name, (store) => store.info(name));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const tail of this.#tails) tail.abort();
    this.view.stop();
    for (const store of this.#stores.values()) await store.then((opened) => opened.close(), () => undefined);
    this.#stores.clear();
  }

  get #deadline(): number {
    return this.options.retryDeadlineMs ?? DEFAULT_PLACED_RETRY_DEADLINE_MS;
  }

  async #createOn(nodeId: string, name: string, config: Partial<ShardConfig> | undefined): Promise<void> {
    const address = this.view.nodes.get(nodeId)?.addresses.journal;
    if (address === undefined) return;
    try {
      await (await this.#store(address)).create(name, { ...config, durability: 'fsync' });
    } catch (error) {
      // Down or there already: the controller creates it on a replica still lacking it later.
      if (!isShardlineError(error, 'SL_JOURNAL_SHARD_EXISTS')) this.options.logger.warn({ shard: name, node: nodeId, err: error }, 'could not create the shard on a replica');
    }
  }

  /**
   * A read without the leaders' epoch-start records (replication's own, one per failover, not
   * the shard's data). A page of nothing but one is read past, so an empty page still means
   * the end.
   */
  async #records(name: string, fromOffset: number, first: (store: RemoteShardStore) => Promise<JournalRecord[]>, options: ReadOptions | undefined): Promise<JournalRecord[]> {
    let records = await this.#withLeader(name, first);
    for (;;) {
      const kept = records.filter((record) => !isEpochStart(record));
      const last = records.at(-1);
      if (kept.length > 0 || last === undefined) return kept;
      const from = Math.max(fromOffset, last.offset + 1);
      records = await this.#withLeader(name, (store) => store.read(name, from, options));
    }
  }

  /**
   * Runs `call` against the shard's leader, following failovers until the deadline; `abandon`,
   * asked before each try, ends the retries with the error it returns.
   */
  async #withLeader<T>(name: string, call: (store: RemoteShardStore) => Promise<T>, abandon?: () => unknown): Promise<T> {
    const started = Date.now();
    let last: unknown;
    let refreshed = false;
    for (let backoff = BACKOFF_MIN_MS; ; backoff = Math.min(backoff * 2, BACKOFF_MAX_MS)) {
      this.#assertOpen(name);
      const abandoned = abandon?.();
      if (abandoned !== undefined) throw abandoned;
      const shard = this.view.shards.get(name);
      if (shard === undefined) {
        // Perhaps created a moment ago by another broker: read once more before saying so.
        if (refreshed) throw JournalErrors.shardNotFound.create({ shard: name }, name);
        refreshed = true;
        await this.view.refresh();
        continue;
      }
      const tried = shard.leader;
      const address = tried === null ? undefined : this.view.nodes.get(tried)?.addresses.journal;
      if (address === undefined) {
        last = shard.leader === null ? `no leader elected yet (epoch ${shard.leaderEpoch})` : `leader ${shard.leader} has no registered journal address`;
      } else {
        try {
          return await call(await this.#store(address));
        } catch (error) {
          if (!retryable(error)) throw error;
          last = error;
        }
      }
      if (Date.now() - started >= this.#deadline) {
        if (last instanceof ShardlineError) throw last;
        throw ShardModelErrors.noLeader.create({ shard: name }, name, this.#deadline, String(last));
      }
      // Placement may already name another leader (a failover): read it and try that one now.
      // Otherwise wait for the next read of placement, which the watch stream starts as soon as
      // the controller records a leader, or the backoff, whichever comes first.
      if (address !== undefined) await this.view.refresh();
      if (this.view.shards.get(name)?.leader !== tried && this.view.shards.get(name)?.leader !== null) continue;
      const reads = this.view.reads;
      await this.view.changed(backoff);
      if (this.view.reads === reads) await this.view.refresh();
    }
  }

  #store(address: string): Promise<RemoteShardStore> {
    let store = this.#stores.get(address);
    if (store === undefined) {
      // Short connect and backoff: a leader that is down must be given up on quickly, for the next one.
      store = RemoteShardStore.connect(address, { connectTimeoutMs: 2_000, reconnectBackoffMaxMs: 500, callTimeoutMs: 15_000, ...this.options.remote });
      this.#stores.set(address, store);
      // A node that is down now may be back later: connect again at the next call.
      store.catch(() => this.#stores.delete(address));
    }
    return store;
  }

  #assertOpen(shard: string): void {
    if (this.#closed) throw JournalErrors.closed.create({ shard }, 'the placed shard store');
  }
}

/**
 * A writer id no other writer of the cluster uses: 53 random bits from the OS's CSPRNG, drawn
 * per shard writer (a broker start, or a writer ended by a failed append). With W writers ever
 * drawn in a cluster the chance that two share an id is about W²/2^54 (one in 18 million for a
 * million writers); and two writers with one id collide only if they write the same shard while
 * the leader remembers both.
 */
function newWriterId(): number {
  const bytes = randomBytes(8);
  return (bytes.readUInt32BE(0) & 0x1f_ffff) * 2 ** 32 + bytes.readUInt32BE(4);
}

function isEpochStart(record: JournalRecord): boolean {
  return record.headers.some((header) => header.key === EPOCH_START_HEADER);
}

function retryable(error: unknown): boolean {
  return isShardlineError(error) && RETRYABLE.has(error.code);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
