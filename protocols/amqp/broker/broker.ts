// The node's AMQP broker: the topology (exchanges, queues, bindings) with its durable part in
// `$amqp.topology`, and each queue's messages, a durable queue's persistent ones also in its
// own shard `amqp.q.<id>` (base/shard-names.ts, docs/amqp.md "Where things live"). Connections
// reach it through sessions (session.ts); this file holds the shared state and its storage.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { AMQP_TOPOLOGY_SHARD, amqpQueueShardName, isShardlineError } from '../../../base/index.js';
import type { RecordInput } from '../../../journal/index.js';
import type { ShardStore } from '../../../shard-model/index.js';
import { decodeMessageRecord, encodeMessageRecord, MessageQueue, messageIdOf, messageRecordKey, type QueueConsumer, type QueuedMessage } from './queue.js';
import { applyTopologyRecord, Topology, topologyRecordKey, topologyRecordValue, type QueueDef, type TopologyEntry } from './topology.js';

/** The largest message body accepted (RabbitMQ 4's default max_message_size). */
export const MAX_BODY_SIZE = 16 * 1024 * 1024;
/** A queue shard's record holds a body plus its header, exchange and routing key. */
const QUEUE_SHARD_MAX_RECORD = MAX_BODY_SIZE + 1024 * 1024;
/** One append to a queue shard carries at most this many records / bytes. */
const BATCH_RECORDS = 4096;
const BATCH_BYTES = 32 * 1024 * 1024;

/** A consumer the broker can tell that its queue went away (consumer cancel notification). */
export interface BrokerConsumer extends QueueConsumer {
  cancelledByServer(): void;
}

interface LogEntry {
  record: RecordInput;
  done?: (error: Error | undefined) => void;
}

/**
 * A durable queue's shard writer: its message records and settlement tombstones in the order
 * they happen, one append in flight, the ones that arrive meanwhile batched into the next (group
 * commit). A tombstone never overtakes the record it settles, so replaying the shard gives the
 * queue's contents.
 */
class QueueLog {
  #pending: LogEntry[] = [];
  #inFlight = false;
  #closed = false;
  #idle: Array<() => void> = [];

  constructor(
    private readonly store: ShardStore,
    readonly shard: string,
    private readonly logger: Logger,
  ) {}

  write(message: QueuedMessage, done: (error: Error | undefined) => void): void {
    this.#pending.push({ record: { key: messageRecordKey(message.id), value: encodeMessageRecord(message) }, done });
    this.#pump();
  }

  settle(id: number): void {
    if (this.#closed) return;
    this.#pending.push({ record: { key: messageRecordKey(id), value: null } });
    this.#pump();
  }

  /** Nothing more is written; resolves once the append in flight ended. */
  close(): Promise<void> {
    this.#closed = true;
    if (!this.#inFlight) this.#dropPending();
    if (!this.#inFlight) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #pump(): void {
    if (this.#inFlight || this.#pending.length === 0 || this.#closed) return;
    this.#inFlight = true;
    let bytes = 0;
    let count = 0;
    while (count < this.#pending.length && count < BATCH_RECORDS && bytes < BATCH_BYTES) {
      bytes += this.#pending[count]?.record.value?.length ?? 0;
      count += 1;
    }
    const batch = this.#pending.splice(0, count);
    this.store.append(this.shard, batch.map((entry) => entry.record)).then(
      () => this.#finish(batch, undefined),
      (error: unknown) => {
        this.logger.error({ err: error, shard: this.shard }, 'AMQP: appending to a queue shard failed');
        this.#finish(batch, error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  #finish(batch: LogEntry[], error: Error | undefined): void {
    for (const entry of batch) entry.done?.(error);
    this.#inFlight = false;
    if (this.#closed) {
      this.#dropPending();
      for (const resolve of this.#idle.splice(0)) resolve();
      return;
    }
    this.#pump();
  }

  /** The queue is gone: what waited is not written, and its publishers are not told it failed. */
  #dropPending(): void {
    for (const entry of this.#pending.splice(0)) entry.done?.(undefined);
  }
}

export class QueueRuntime {
  readonly queue: MessageQueue;
  readonly log: QueueLog | undefined;
  #nextId = 1;
  /** Whether a consumer ever came: auto-delete waits for the first one to go. */
  hadConsumer = false;
  deleted = false;

  constructor(
    readonly def: QueueDef,
    store: ShardStore,
    logger: Logger,
  ) {
    this.queue = new MessageQueue(def.name);
    this.log = def.shard === undefined ? undefined : new QueueLog(store, def.shard, logger);
  }

  get name(): string {
    return this.def.name;
  }

  nextId(): number {
    const id = this.#nextId;
    this.#nextId += 1;
    return id;
  }

  restoreIds(after: number): void {
    this.#nextId = Math.max(this.#nextId, after + 1);
  }

  /**
   * A published message into this queue: ready at once (as in RabbitMQ, a consumer may get it
   * before it is on disk); `done` is called once it is durable (at once when it is not to be
   * stored), with an error when its append failed.
   */
  accept(message: QueuedMessage, done: (error: Error | undefined) => void): void {
    if (this.deleted) {
      done(undefined);
      return;
    }
    this.queue.enqueue(message);
    if (message.stored && this.log !== undefined) this.log.write(message, done);
    else done(undefined);
  }

  /** A message acknowledged, rejected or purged: gone from the shard once compacted. */
  settle(message: QueuedMessage): void {
    if (message.stored && !this.deleted) this.log?.settle(message.id);
  }

  /** Messages given back by a channel: ready again unless the queue was deleted. */
  requeue(messages: readonly QueuedMessage[]): void {
    if (!this.deleted) this.queue.requeue(messages);
  }
}

export interface AmqpBrokerOptions {
  store: ShardStore;
  logger: Logger;
}

export class AmqpBroker {
  readonly topology = new Topology();
  readonly #queues = new Map<string, QueueRuntime>();
  /** Topology changes run one at a time, so a check and the change it allows see the same state. */
  #chain: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly store: ShardStore,
    readonly logger: Logger,
  ) {}

  /** Opens the broker: `$amqp.topology` read back, each durable queue's messages recovered. */
  static async open(options: AmqpBrokerOptions): Promise<AmqpBroker> {
    const broker = new AmqpBroker(options.store, options.logger);
    const { store } = options;
    await createIfMissing(store, AMQP_TOPOLOGY_SHARD, { compacted: true });
    await readAll(store, AMQP_TOPOLOGY_SHARD, (key, value) => applyTopologyRecord(broker.topology, key, value));
    for (const def of broker.topology.queues.values()) {
      const runtime = new QueueRuntime(def, store, options.logger);
      broker.#queues.set(def.name, runtime);
      if (def.shard === undefined) continue;
      await createIfMissing(store, def.shard, queueShardConfig());
      const live = new Map<number, QueuedMessage>();
      let highest = 0;
      await readAll(store, def.shard, (key, value) => {
        const id = messageIdOf(key);
        highest = Math.max(highest, id);
        if (value === null) live.delete(id);
        else live.set(id, decodeMessageRecord(id, value));
      });
      runtime.restoreIds(highest);
      // Whether a message was delivered before the restart is not recorded, so each recovered
      // message is marked redelivered: the flag's meaning is "may have been delivered before".
      for (const message of [...live.values()].sort((a, b) => a.id - b.id)) {
        message.redelivered = true;
        runtime.queue.enqueue(message);
      }
      if (live.size > 0) options.logger.info({ queue: def.name, messages: live.size }, 'AMQP: queue recovered');
    }
    return broker;
  }

  queue(name: string): QueueRuntime | undefined {
    return this.#queues.get(name);
  }

  /** Runs topology changes one at a time. */
  serialized<T>(run: () => Promise<T> | T): Promise<T> {
    const result = this.#chain.then(run, run);
    this.#chain = result.catch(() => undefined);
    return result;
  }

  /** Makes topology entries durable (tombstones for `removed`); entries of non-durable things are skipped by the caller. */
  async persist(entries: readonly TopologyEntry[], removed: readonly TopologyEntry[] = []): Promise<void> {
    const records: RecordInput[] = [...entries.map((entry) => ({ key: topologyRecordKey(entry), value: topologyRecordValue(entry) })), ...removed.map((entry) => ({ key: topologyRecordKey(entry), value: null }))];
    if (records.length > 0) await this.store.append(AMQP_TOPOLOGY_SHARD, records);
  }

  /** Creates a queue: its shard first when it keeps messages, then its topology record. */
  async createQueue(def: Omit<QueueDef, 'shard'>, persistent: boolean): Promise<QueueRuntime> {
    const full: QueueDef = { ...def, shard: persistent ? amqpQueueShardName(randomBytes(8).toString('hex')) : undefined };
    if (full.shard !== undefined) {
      await this.store.create(full.shard, queueShardConfig());
      await this.persist([{ kind: 'queue', queue: full }]);
    }
    this.topology.putQueue(full);
    const runtime = new QueueRuntime(full, this.store, this.logger);
    this.#queues.set(full.name, runtime);
    return runtime;
  }

  /**
   * Deletes a queue: its consumers are told (basic.cancel), its bindings and record go, its
   * shard is deleted once the append in flight ended. Returns the ready messages it held.
   */
  async deleteQueue(runtime: QueueRuntime): Promise<number> {
    if (runtime.deleted) return 0;
    runtime.deleted = true;
    this.#queues.delete(runtime.name);
    const bindings = this.topology.removeQueue(runtime.name);
    const count = runtime.queue.messageCount;
    runtime.queue.drain();
    for (const consumer of [...runtime.queue.consumers]) {
      runtime.queue.removeConsumer(consumer.tag, (candidate) => candidate === consumer);
      (consumer as BrokerConsumer).cancelledByServer();
    }
    const { shard } = runtime.def;
    if (shard !== undefined) {
      await this.persist([], [{ kind: 'queue', queue: runtime.def }, ...bindings.map((binding) => ({ kind: 'binding', binding }) as const)]);
      await runtime.log?.close();
      await this.store.delete(shard).catch((error: unknown) => this.logger.warn({ err: error, shard }, 'AMQP: deleting a queue shard failed'));
    }
    await this.#autoDeleteExchanges(bindings.map((binding) => binding.source));
    return count;
  }

  /** Removes auto-delete exchanges left without bindings. */
  async #autoDeleteExchanges(sources: readonly string[]): Promise<void> {
    for (const source of new Set(sources)) {
      const exchange = this.topology.exchanges.get(source);
      if (exchange === undefined || !exchange.autoDelete || this.topology.bindingsFrom(source).length > 0) continue;
      this.topology.removeExchange(source);
      if (exchange.durable) await this.persist([], [{ kind: 'exchange', exchange }]);
    }
  }

  /** After an unbind: the source exchange goes if it is auto-delete and now unbound. */
  afterUnbind(source: string): Promise<void> {
    return this.#autoDeleteExchanges([source]);
  }
}

function queueShardConfig(): { compacted: boolean; maxRecordBytes: number } {
  return { compacted: true, maxRecordBytes: QUEUE_SHARD_MAX_RECORD };
}

async function createIfMissing(store: ShardStore, name: string, config: { compacted?: boolean; maxRecordBytes?: number }): Promise<void> {
  try {
    await store.create(name, config);
  } catch (error) {
    if (!isShardlineError(error, 'SL_JOURNAL_SHARD_EXISTS')) throw error;
  }
}

async function readAll(store: ShardStore, shard: string, apply: (key: Buffer, value: Buffer | null) => void): Promise<void> {
  let offset = (await store.info(shard)).startOffset;
  for (;;) {
    const records = await store.read(shard, offset, { maxRecords: 1000 });
    if (records.length === 0) return;
    for (const record of records) {
      offset = record.offset + 1;
      if (record.key !== null) apply(record.key, record.value);
    }
  }
}
