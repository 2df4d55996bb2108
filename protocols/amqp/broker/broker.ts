// The node's AMQP broker: the topology (exchanges, queues, bindings) with its durable part in
// `$amqp.topology`, and each queue's messages, a durable queue's persistent ones also in its
// own shard `amqp.q.<id>` (base/shard-names.ts, docs/amqp.md "Where things live"). Connections
// reach it through sessions (session.ts); this file holds the shared state and its storage.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { AMQP_TOPOLOGY_SHARD, amqpQueueShardName, amqpStreamShardName } from '../../../base/index.js';
import type { RecordInput } from '../../../journal/index.js';
import { createShardIfMissing, readWholeShard, type ShardStore } from '../../../shard-model/index.js';
import { decodeMessageRecord, encodeMessageRecord, MessageQueue, messageIdOf, messageRecordKey, type QueueConsumer, type QueuedMessage } from './queue.js';
import type { BasicProperties } from '../codec/content.js';
import type { FieldValue } from '../codec/field-table.js';
import { routeWithAlternates } from './alternate-exchange.js';
import { MqttBridge, type MqttEngine } from './mqtt-bridge.js';
import { messageExpiration, queuePolicy, type QueuePolicy } from './queue-arguments.js';
import { isStreamDeclare, streamPolicy, type StreamPolicy } from './stream-arguments.js';
import { StreamQueue, streamShardConfig } from './stream-queue.js';
import { PublishRejected, QueueUse, wouldOverflow } from './queue-limits.js';
import { DEFAULT_AMQP_RESOURCE_LIMITS, type AmqpResourceLimits } from './limits.js';
import { AmqpStats, newQueueCounters, type QueueCounters } from './stats.js';
import { applyTopologyRecord, Topology, topologyRecordKey, topologyRecordValue, type ExchangeDef, type QueueDef, type TopologyEntry } from './topology.js';

/** The largest message body accepted (RabbitMQ 4's default max_message_size). */
export const MAX_BODY_SIZE = 16 * 1024 * 1024;
/** A queue shard's record holds a body plus its header, exchange and routing key. */
const QUEUE_SHARD_MAX_RECORD = MAX_BODY_SIZE + 1024 * 1024;
/** One append to a queue shard carries at most this many records / bytes. */
const BATCH_RECORDS = 4096;
const BATCH_BYTES = 32 * 1024 * 1024;

/** Why a message left its queue without being acknowledged (the x-death reason). */
export type DeathReason = 'rejected' | 'expired' | 'maxlen';

/** How often expired messages are looked for at the heads of queues with consumers that do not take them. */
const EXPIRY_SWEEP_MS = 1000;

/** A consumer the broker can tell that its queue went away (consumer cancel notification). */
export interface BrokerConsumer extends QueueConsumer {
  cancelledByServer(): void;
}

interface LogEntry {
  /** A message's record, encoded when its append starts (it may be settled and skipped before). */
  message?: QueuedMessage;
  /** Any other record, written as it is (a settlement's tombstone). */
  record?: RecordInput;
  done?: (error: Error | undefined) => void;
  /** Settled before it was written: left out of the append, and its tombstone with it. */
  skipped?: boolean;
}

/**
 * A durable queue's shard writer: its message records and settlement tombstones in the order
 * they happen, one append in flight, the ones that arrive meanwhile batched into the next (group
 * commit). A tombstone never overtakes the record it settles, so replaying the shard gives the
 * queue's contents. A message settled (acknowledged, say) while its record still waits for the
 * next append is written neither as a record nor as a tombstone, and its publisher's confirm
 * goes at once: the broker is no longer responsible for it (RabbitMQ's classic queues confirm
 * a message consumed and acknowledged before it was written the same way). With consumers that
 * keep up, most messages then never reach the disk.
 */
class QueueLog {
  #pending: LogEntry[] = [];
  /** Records waiting in #pending (not yet in an append), by message id. */
  readonly #unwritten = new Map<number, LogEntry>();
  #inFlight = false;
  #closed = false;
  #idle: Array<() => void> = [];

  constructor(
    private readonly store: ShardStore,
    readonly shard: string,
    private readonly logger: Logger,
  ) {}

  write(message: QueuedMessage, done: (error: Error | undefined) => void): void {
    const entry: LogEntry = { message, done };
    this.#pending.push(entry);
    this.#unwritten.set(message.id, entry);
    this.#pump();
  }

  /** Any record, written as it is: a stream's messages are keyless records (docs/amqp.md "Stream queues"). */
  append(record: RecordInput, done: (error: Error | undefined) => void): void {
    this.#pending.push({ record, done });
    this.#pump();
  }

  settle(id: number): void {
    if (this.#closed) return;
    const unwritten = this.#unwritten.get(id);
    if (unwritten !== undefined) {
      this.#unwritten.delete(id);
      unwritten.skipped = true;
      unwritten.done?.(undefined);
      return;
    }
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
    let bytes = 0;
    let count = 0;
    let taken = 0;
    const batch: LogEntry[] = [];
    const records: RecordInput[] = [];
    while (taken < this.#pending.length && count < BATCH_RECORDS && bytes < BATCH_BYTES) {
      const entry = this.#pending[taken]!;
      taken += 1;
      if (entry.skipped === true) continue;
      if (entry.message !== undefined) this.#unwritten.delete(entry.message.id);
      const record = entry.message !== undefined ? { key: messageRecordKey(entry.message.id), value: encodeMessageRecord(entry.message) } : (entry.record as RecordInput);
      records.push(record);
      batch.push(entry);
      bytes += record.value?.length ?? 0;
      count += 1;
    }
    this.#pending.splice(0, taken);
    if (records.length === 0) return;
    this.#inFlight = true;
    this.store.append(this.shard, records).then(
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
    this.#unwritten.clear();
    for (const entry of this.#pending.splice(0)) if (entry.skipped !== true) entry.done?.(undefined);
  }
}

export class QueueRuntime {
  readonly queue: MessageQueue;
  readonly log: QueueLog | undefined;
  readonly policy: QueuePolicy;
  /** A stream queue's policy (x-queue-type=stream); its messages are appended to its shard, never held. */
  readonly streamPolicy: StreamPolicy | undefined;
  /** x-expires: when the queue was last used. */
  readonly use: QueueUse;
  readonly counters: QueueCounters = newQueueCounters();
  #nextId = 1;
  /** Whether a consumer ever came: auto-delete waits for the first one to go. */
  hadConsumer = false;
  deleted = false;

  constructor(
    readonly def: QueueDef,
    private readonly broker: AmqpBroker,
  ) {
    this.streamPolicy = isStreamDeclare(def.arguments) ? streamPolicy(def.name, def.arguments) : undefined;
    this.policy = this.streamPolicy === undefined ? queuePolicy(def.name, def.arguments) : {};
    this.use = new QueueUse(this.policy.expires, broker.now());
    this.log = def.shard === undefined ? undefined : new QueueLog(broker.store, def.shard, broker.logger);
    this.queue =
      this.streamPolicy !== undefined && def.shard !== undefined
        ? new StreamQueue(def.name, { store: broker.store, logger: broker.logger, shard: def.shard })
        : new MessageQueue(def.name, { now: broker.now, onExpired: (message) => this.discard(message, 'expired') });
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

  /** When a message arriving at `at` expires here: the queue's TTL or its own, the sooner. */
  expiryOf(properties: BasicProperties, at: number): number | undefined {
    const own = messageExpiration(properties.expiration);
    const ttl = own === undefined ? this.policy.messageTtl : this.policy.messageTtl === undefined ? own : Math.min(own, this.policy.messageTtl);
    return ttl === undefined ? undefined : at + ttl;
  }

  /**
   * A published message into this queue: ready at once (as in RabbitMQ, a consumer may get it
   * before it is on disk); `done` is called once it is durable (at once when it is not to be
   * stored), with an error when its append failed. Past x-max-length the oldest ready messages go.
   */
  accept(message: QueuedMessage, done: (error: Error | undefined) => void): void {
    if (this.deleted) {
      done(undefined);
      return;
    }
    // Every message a stream gets is appended, persistent or not (RabbitMQ's streams too); its
    // consumers read it from the shard.
    if (this.queue instanceof StreamQueue && this.log !== undefined) {
      this.log.append({ value: encodeMessageRecord(message) }, done);
      return;
    }
    if (this.policy.overflow !== undefined && wouldOverflow(this.policy, this.queue, message.body.length)) {
      done(new PublishRejected(this.name));
      if (this.policy.overflow === 'reject-publish-dlx') this.broker.deadLetter(this, message, 'maxlen');
      return;
    }
    const expiresAt = this.expiryOf(message.properties, this.broker.now());
    const queued = expiresAt === undefined ? message : { ...message, expiresAt };
    if (queued.stored && this.log !== undefined) this.log.write(queued, done);
    else done(undefined);
    this.queue.enqueue(queued);
    this.#trim();
  }

  #trim(): void {
    const { maxLength, maxLengthBytes } = this.policy;
    if (maxLength === undefined && maxLengthBytes === undefined) return;
    while ((maxLength !== undefined && this.queue.messageCount > maxLength) || (maxLengthBytes !== undefined && this.queue.readyBytes > maxLengthBytes)) {
      const dropped = this.queue.take();
      if (dropped === undefined) return;
      this.discard(dropped, 'maxlen');
    }
  }

  /** A message acknowledged, or purged: gone from the shard once compacted. */
  settle(message: QueuedMessage): void {
    if (message.stored && !this.deleted) this.log?.settle(message.id);
  }

  /** A message rejected, expired or dropped: settled here, and dead-lettered when the queue says where. */
  discard(message: QueuedMessage, reason: DeathReason): void {
    this.settle(message);
    this.broker.deadLetter(this, message, reason);
  }

  /** Messages given back by a channel: ready again unless the queue was deleted. */
  requeue(messages: readonly QueuedMessage[]): void {
    if (!this.deleted) this.queue.requeue(messages);
  }
}

export interface AmqpBrokerOptions {
  store: ShardStore;
  logger: Logger;
  /** The clock of message TTLs; Date.now by default. */
  now?: () => number;
  /** The node's MQTT broker: MQTT traffic is routed on amq.topic both ways, under its access policy. */
  mqtt?: MqttEngine;
  /** Bounds on queues, exchanges, bindings and consumers per channel; the defaults when absent. */
  limits?: AmqpResourceLimits;
}

export class AmqpBroker {
  readonly topology = new Topology();
  readonly #queues = new Map<string, QueueRuntime>();
  /** Topology changes run one at a time, so a check and the change it allows see the same state. */
  #chain: Promise<unknown> = Promise.resolve();
  #sweep: NodeJS.Timeout | undefined;
  /** MQTT ↔ amq.topic, when the node runs an MQTT broker. */
  mqtt: MqttBridge | undefined;
  readonly stats = new AmqpStats();

  private constructor(
    readonly store: ShardStore,
    readonly logger: Logger,
    readonly now: () => number,
    readonly limits: AmqpResourceLimits,
  ) {}

  /** Every queue, in declaration order (recovered ones first). */
  queues(): QueueRuntime[] {
    return [...this.#queues.values()];
  }

  /** Body bytes the queues hold in memory: ready messages and deliveries not yet acknowledged. */
  heldBytes(): number {
    let bytes = 0;
    for (const runtime of this.#queues.values()) bytes += runtime.queue.readyBytes + runtime.counters.unackedBytes;
    return bytes;
  }

  /** Stops the expiry sweep and the routing of MQTT traffic. */
  close(): void {
    this.mqtt?.close();
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
  }

  /** Opens the broker: `$amqp.topology` read back, each durable queue's messages recovered. */
  static async open(options: AmqpBrokerOptions): Promise<AmqpBroker> {
    const broker = new AmqpBroker(options.store, options.logger, options.now ?? Date.now, options.limits ?? DEFAULT_AMQP_RESOURCE_LIMITS);
    const { store } = options;
    await createShardIfMissing(store, AMQP_TOPOLOGY_SHARD, { compacted: true });
    await readAll(store, AMQP_TOPOLOGY_SHARD, (key, value) => applyTopologyRecord(broker.topology, key, value));
    for (const def of broker.topology.queues.values()) {
      const runtime = new QueueRuntime(def, broker);
      broker.#queues.set(def.name, runtime);
      if (def.shard === undefined) continue;
      if (runtime.streamPolicy !== undefined) {
        await createShardIfMissing(store, def.shard, streamShardConfig(runtime.streamPolicy, QUEUE_SHARD_MAX_RECORD));
        continue;
      }
      await createShardIfMissing(store, def.shard, queueShardConfig());
      const live = new Map<number, QueuedMessage>();
      let highest = 0;
      await readAll(store, def.shard, (key, value, timestamp) => {
        const id = messageIdOf(key);
        highest = Math.max(highest, id);
        if (value === null) live.delete(id);
        else {
          const message = decodeMessageRecord(id, value);
          // A TTL counts from when the message was stored, so a restart does not extend it.
          const expiresAt = runtime.expiryOf(message.properties, timestamp);
          live.set(id, expiresAt === undefined ? message : { ...message, expiresAt });
        }
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
    if (options.mqtt !== undefined) broker.mqtt = new MqttBridge(options.mqtt, broker);
    broker.#sweep = setInterval(() => broker.sweep(), EXPIRY_SWEEP_MS);
    broker.#sweep.unref();
    return broker;
  }

  /** Expires messages at the heads of queues, and deletes queues unused for their x-expires. */
  sweep(): void {
    const now = this.now();
    for (const runtime of this.#queues.values()) {
      runtime.queue.expire();
      if (!runtime.use.expired(now, runtime.queue.consumerCount)) continue;
      // Checked again when its turn comes: a declare meanwhile uses the queue.
      void this.serialized(() => (runtime.deleted || !runtime.use.expired(this.now(), runtime.queue.consumerCount) ? 0 : this.deleteQueue(runtime))).catch((error: unknown) => this.logger.error({ err: error, queue: runtime.name }, 'AMQP: deleting an expired queue failed'));
    }
  }

  /**
   * Routes a message through `exchange` into its queues (each gets its own copy and id).
   * `track` is called for each target queue before it is given the message and returns the
   * callback the queue calls when it has it (durably when stored). Returns how many queues it reached.
   */
  publish(exchange: ExchangeDef, routingKey: string, properties: BasicProperties, body: Buffer, track: () => (error: Error | undefined) => void, skip?: QueueRuntime): number {
    const targets = routeWithAlternates(this.topology, exchange, routingKey, properties.headers);
    const persistent = properties.deliveryMode === 2;
    let reached = 0;
    for (const name of targets) {
      const runtime = this.#queues.get(name);
      if (runtime === undefined || runtime === skip) continue;
      reached += 1;
      runtime.counters.published += 1;
      runtime.accept({ id: runtime.nextId(), exchange: exchange.name, routingKey, properties, body, stored: persistent && runtime.log !== undefined, redelivered: false }, track());
    }
    return reached;
  }

  /**
   * Dead-lettering (RabbitMQ's rules): a message rejected without requeue, expired or dropped
   * by max-length is published to the queue's x-dead-letter-exchange, with its
   * x-dead-letter-routing-key or its own, and an x-death entry (queue, reason, count, time,
   * exchange, routing keys). A missing exchange drops it. An expired or dropped message is not
   * sent back into the queue it left (a cycle without a consumer's rejection would never end).
   */
  deadLetter(source: QueueRuntime, message: QueuedMessage, reason: DeathReason): void {
    const { deadLetterExchange, deadLetterRoutingKey } = source.policy;
    if (deadLetterExchange === undefined) return;
    const exchange = this.topology.exchanges.get(deadLetterExchange);
    if (exchange === undefined) return;
    const properties: BasicProperties = { ...message.properties, headers: withDeath(message, source.name, reason, this.now()) };
    delete (properties as { expiration?: string }).expiration;
    const stored = (error: Error | undefined): void => {
      if (error !== undefined) this.logger.warn({ err: error, queue: source.name }, 'AMQP: a dead-lettered message could not be stored');
    };
    this.publish(exchange, deadLetterRoutingKey ?? message.routingKey, properties, message.body, () => stored, reason === 'rejected' ? undefined : source);
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
    const stream = isStreamDeclare(def.arguments) ? streamPolicy(def.name, def.arguments) : undefined;
    const id = randomBytes(8).toString('hex');
    const full: QueueDef = { ...def, shard: persistent ? (stream === undefined ? amqpQueueShardName(id) : amqpStreamShardName(id)) : undefined };
    if (full.shard !== undefined) {
      await this.store.create(full.shard, stream === undefined ? queueShardConfig() : streamShardConfig(stream, QUEUE_SHARD_MAX_RECORD));
      await this.persist([{ kind: 'queue', queue: full }]);
    }
    this.topology.putQueue(full);
    const runtime = new QueueRuntime(full, this);
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
      const removed = this.topology.removeExchange(source);
      if (exchange.durable) await this.persist([], [{ kind: 'exchange', exchange }, ...removed.map((binding) => ({ kind: 'binding', binding }) as const)]);
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


/** Every keyed record of a shard, in order. */
function readAll(store: ShardStore, shard: string, apply: (key: Buffer, value: Buffer | null, timestamp: number) => void): Promise<void> {
  return readWholeShard(store, shard, (record) => {
    if (record.key !== null) apply(record.key, record.value, record.timestamp);
  });
}

const text = (value: string): FieldValue => ({ type: 'longstr', value: Buffer.from(value) });

/** The message's headers with its x-death entry for (queue, reason) counted up, newest first, and the x-first-death-* ones. */
function withDeath(message: QueuedMessage, queue: string, reason: DeathReason, now: number): Map<string, FieldValue> {
  const headers = new Map(message.properties.headers ?? []);
  const previous = headers.get('x-death');
  const deaths = previous?.type === 'array' ? [...previous.value] : [];
  const textOf = (value: FieldValue | undefined): string | undefined => (value?.type === 'longstr' ? Buffer.from(value.value).toString() : undefined);
  let count = 1n;
  const at = deaths.findIndex((entry) => entry.type === 'table' && textOf(entry.value.get('queue')) === queue && textOf(entry.value.get('reason')) === reason);
  if (at >= 0) {
    const entry = deaths[at] as Extract<FieldValue, { type: 'table' }>;
    const old = entry.value.get('count');
    count = (old?.type === 'int64' ? old.value : 0n) + 1n;
    deaths.splice(at, 1);
  }
  const entry = new Map<string, FieldValue>([
    ['count', { type: 'int64', value: count }],
    ['reason', text(reason)],
    ['queue', text(queue)],
    ['time', { type: 'timestamp', value: BigInt(Math.floor(now / 1000)) }],
    ['exchange', text(message.exchange)],
    ['routing-keys', { type: 'array', value: [text(message.routingKey)] }],
  ]);
  deaths.unshift({ type: 'table', value: entry });
  headers.set('x-death', { type: 'array', value: deaths });
  if (!headers.has('x-first-death-reason')) {
    headers.set('x-first-death-reason', text(reason));
    headers.set('x-first-death-queue', text(queue));
    headers.set('x-first-death-exchange', text(message.exchange));
  }
  return headers;
}
