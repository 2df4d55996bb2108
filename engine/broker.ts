// The publish/subscribe broker core, protocol-independent: topics map onto data shards, every
// message is appended before anyone sees it, sessions and retained messages are projections of
// the `$sessions` and `$retained` system shards, and delivery to online subscribers is driven
// by appends (no polling). Front ends (protocols/mqtt today) translate packets into these calls.
//
// Guarantees:
// - publish() tells its caller (the `stored` callback) once the message is durable under the
//   data shard's durability mode, before the fan-out to subscribers, so a publisher's ack never
//   waits for the fan-out; the promise resolves after the message has been handed to every
//   online matching session. An acknowledged message is in the journal, and a crash after the
//   ack loses nothing (offline and lagging sessions read it back from there).
// - a durable session's state (meta, subscriptions) is durable before connect()/subscribe()
//   resolve; its delivery cursors are persisted every cursorFlushMs, so after a crash at most
//   that window is delivered again (at-least-once, never a gap).
// - a durable session's publish keys (a keyed publish stored, not yet released: MQTT's inbound
//   QoS 2 packet ids) are in `$sessions` before their message is appended and until their
//   release resolves, so a crash never makes a resent publish a second message
//   (sessions/publish-keys.ts).
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../base/index.js';
import type { JournalRecord, RecordInput } from '../journal/index.js';
import { isStoreUnreachable, MqttShardMap, type ShardStore } from '../shard-model/index.js';
import { messageToRecord, recordToMessage, type Message } from './messages/message.js';
import { DataFollower } from './peers/data-follower.js';
import { OwnAppends } from './peers/own-appends.js';
import { OtherBrokersFollower } from './peers/shard-follower.js';
import type { ReplayRequest } from './replay/replay-request.js';
import { Replays, type ReplayStart } from './replay/replays.js';
import type { Projection } from './projection/projection.js';
import { RetainedOrder } from './retained/retained-order.js';
import { RETAINED_SHARD, type RetainedStore } from './retained/retained-store.js';
import { MatchCache } from './routing/match-cache.js';
import { TopicTrie } from './routing/topic-trie.js';
import { allowEverything, type AccessPolicy, type ClientIdentity } from './security/access.js';
import { DELAYED_PREFIX } from './delayed/delayed-topic.js';
import type { BrokerExtras } from './extras.js';
import { WriteGate, WriteGateErrors } from './availability/write-gate.js';
import { ShardAppender, type AppendObserver } from './shard-appender.js';
import { openStateProjections, prepareShards } from './broker-start.js';
import type { BrokerOptions, ClientInfo, ConnectRequest, DisconnectRequest, SessionInfo, SubscriptionInfo, UnsafeBrokerSwitches } from './broker-types.js';
import { Statistics, type BrokerStats } from './statistics.js';
import { SessionView } from './session-view.js';
import { ShardReads } from './shard-reads.js';
import { routingFilter } from './shared/shared-filter.js';
import { SharedSubscriptions } from './shared/shared-subscriptions.js';
import { SESSIONS_SHARD, subscriptionRecord, type SessionTable, type SubscriptionOptions } from './sessions/session-events.js';
import { SessionLifecycle, type PeerSettings } from './sessions/session-lifecycle.js';
import { sendsRetained } from './sessions/subscription-options.js';
import { Wills } from './sessions/wills.js';
import { PublishKeyStore } from './sessions/publish-keys.js';
import type { DeliverySink } from './delivery/delivery.js';
import { deliveryFor, type Session, type SessionHost } from './sessions/session.js';

export { MQTT_SHARD_PREFIX as DATA_SHARD_PREFIX } from '../shard-model/index.js';
export type { BrokerOptions, ClientInfo, ConnectRequest, DisconnectRequest, SessionInfo, SubscriptionInfo, UnsafeBrokerSwitches } from './broker-types.js';
export type { BrokerStats } from './statistics.js';

/** A message waiting for its data shard's append, with whom to tell once it is durable. */
interface Published {
  message: Message;
  stored?: (matched: boolean) => void;
}



export class Broker {
  readonly #store: ShardStore;
  readonly #logger: Logger;
  readonly #unsafe: UnsafeBrokerSwitches | undefined;
  readonly #clock: Clock;
  /** Every subscription of every session, online or not, behind a match cache. */
  readonly #trie = new MatchCache(new TopicTrie<SubscriptionOptions>());
  /**
   * The projections of `$sessions` and `$retained` (engine/projection). The broker applies its
   * own records to their states before they are durable (a change is in effect at once) and
   * tells the projections when they are, through the appenders' observers; a snapshot waits
   * until every record applied is durable (`settled`).
   */
  #sessionsProjection!: Projection<SessionTable>;
  #retainedProjection!: Projection<RetainedStore>;
  /** Sessions in memory: online ones and durable ones that were online since start. */
  readonly #sessions = new Map<string, Session>();
  readonly #wills: Wills;
  readonly #publishKeys: PublishKeyStore;
  readonly #view: SessionView;
  readonly #reads: ShardReads;
  /** Which retained publish of a topic the retained set holds while both its writes settle (retained/retained-order.ts). */
  readonly #retainedOrder = new RetainedOrder();
  /** Replaced by #start (the count comes from the journal) before anything reads it. */
  #shardMap = new MqttShardMap(1);
  #frontier: number[] = [];
  #appenders: Array<ShardAppender<Published, boolean>> = [];
  #retainedAppender!: ShardAppender<Message, void>;
  #sessionWrites!: ShardAppender<null, void>;
  #closed = false;
  /** Conditions that stop publishes (journal unreachable, disk low); set by the node runtime. */
  readonly writeGate: WriteGate;
  readonly #statistics = new Statistics();
  readonly stats: BrokerStats = this.#statistics.stats;
  /** From the injected clock (wall time in production), so uptime is exact under a test clock. */
  readonly #startedAt: number;
  readonly #host: SessionHost;
  /** Replaceable at run time (users and rules changed by an operator apply at once). */
  access: AccessPolicy;
  /** Shared and exclusive subscriptions (engine/shared). */
  readonly #shared: SharedSubscriptions;
  readonly #replays: Replays;
  readonly #lifecycle: SessionLifecycle;
  /** Optional features (delayed publish, rewrite, auto-subscribe), set by the node after open. */
  extras: BrokerExtras = {};
  /** Told of every durable message this broker dispatches (another protocol's bridge). */
  readonly #dispatchObservers = new Set<(message: Message) => void>();
  /** Set when other brokers share the journal (engine/peers): their writes are followed. */
  readonly #peers: PeerSettings | undefined;
  /** Per data shard, with #peers: the follower that merges other brokers' messages into dispatch. */
  #dataFollowers: Array<DataFollower<Published>> = [];
  /** With #peers: this broker's `$sessions` appends, told apart from other brokers' records. */
  readonly #sessionsOwn = new OwnAppends();
  #sessionsFollower: OtherBrokersFollower | undefined;
  /** With #peers: this broker's `$retained` appends, and the follower that applies other brokers' clears. */
  readonly #retainedOwn = new OwnAppends();
  #retainedFollower: OtherBrokersFollower | undefined;
  #retainedFromOthers = false;

  private constructor(options: BrokerOptions) {
    this.access = options.access ?? allowEverything;
    this.writeGate = options.writeGate ?? new WriteGate();
    this.#store = options.store;
    this.#logger = options.logger;
    this.#unsafe = options.unsafe;
    this.#clock = options.clock ?? systemClock;
    this.#peers = options.peers;
    this.#startedAt = this.#clock.now();
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the host's getters read this broker's private state
    const broker = this;
    this.#reads = new ShardReads({
      store: this.#store,
      logger: this.#logger,
      clock: this.#clock,
      shardNames: () => this.#shardMap.names,
      gapCounted: (skipped) => {
        this.stats.retentionGapMessages += skipped;
      },
    });
    this.#wills = new Wills({
      clock: this.#clock,
      logger: this.#logger,
      writeGate: this.writeGate,
      get closed() {
        return broker.#closed;
      },
      get access() {
        return broker.access;
      },
      get table() {
        return broker.#table;
      },
      publish: (message) => this.publish(message),
      persist: (records) => this.#sessionWrites.persist(records, null),
    });
    this.#publishKeys = new PublishKeyStore({
      get table() {
        return broker.#table;
      },
      logger: this.#logger,
      get shardCount() {
        return broker.#shardMap.names.length;
      },
      marks: (session, message) => this.#isDurable(session.clientId) && !this.#closed && this.writeGate.open && !(this.extras.delayed !== undefined && message.topic.startsWith(DELAYED_PREFIX)),
      isDurable: (clientId) => this.#isDurable(clientId),
      isCurrent: (session) => !session.ended && this.#sessions.get(session.clientId) === session,
      shardOf: (topic) => this.shardOf(topic),
      frontier: (shard) => this.#frontier[shard] as number,
      write: (records) => this.#sessionWrites.addAll(records, null),
      appendNow: (records) => this.#appendSessionsNow(records),
      publish: (message, publishKey, stored) => this.#publish(message, publishKey, stored),
      publishFailure: (error) => this.#publishFailure(error),
      readFrom: (shard, offset, limits) => this.#reads.readFrom(shard, offset, limits),
    });
    this.#view = new SessionView({
      live: this.#sessions,
      get table() {
        return broker.#table;
      },
      expiryOf: (clientId) => this.#lifecycle.expiryOf(clientId),
      retentionGapOf: (clientId) => this.#reads.retentionGapOf(clientId),
    });
    const dataShards = (): number => this.#shardMap.names.length;
    this.#host = {
      get shardCount() {
        return dataShards();
      },
      maxQueuedBytes: options.maxQueuedBytes,
      dispatchFrontier: (shard) => this.#frontier[shard] as number,
      readBack: (shard, from, session) => this.#reads.readBack(shard, from, session.clientId),
      now: () => this.#clock.now(),
      cursorsMoved: (session) => this.#lifecycle.cursorsMoved(session),
      dropped: (reason, count) => {
        this.stats.dropped[reason] += count;
      },
      readFailed: (session, shard, error, retryInMs) => {
        this.#logger.error({ err: error, clientId: session.clientId, shard: this.#shardMap.names[shard], retryInMs }, 'reading messages back for a session failed; retrying');
      },
      later: (callback, ms) => {
        this.#clock.setTimeout(callback, ms);
      },
      mayRead: (session, topic) => this.mayRead(session.clientId, topic),
    };
    const sessionHost = this.#host;
    this.#replays = new Replays({
      get shardCount() {
        return dataShards();
      },
      // The session host's, which an operator may change at run time.
      get maxQueuedBytes() {
        return sessionHost.maxQueuedBytes;
      },
      shardOf: (topic) => this.shardOf(topic),
      dispatchFrontier: (shard) => this.#frontier[shard] as number,
      readByTime: (shard, timestamp, limits) => this.#store.readByTime(this.#shardMap.names[shard] as string, timestamp, limits),
      read: (shard, offset, limits) => this.#reads.readFrom(shard, offset, limits),
      mayRead: (clientId, topic) => this.mayRead(clientId, topic),
      now: () => this.#clock.now(),
      subscribe: (session, filter, subscription) => {
        this.subscribe(session, [{ filter, options: subscription }]).catch((error: unknown) => this.#logger.error({ err: error, clientId: session.clientId, filter }, 'recording the subscription of a live replay failed'));
      },
      delivered: (count) => {
        this.stats.messagesOut += count;
      },
      failed: (session, filter, error) => {
        this.#logger.error({ err: error, clientId: session.clientId, filter }, 'a replay failed reading the journal; it ends here');
      },
    });
    this.#shared = new SharedSubscriptions({
      store: this.#store,
      logger: this.#logger,
      host: this.#host,
      shardNames: () => this.#shardMap.names,
      strategy: options.sharedStrategy ?? 'round-robin',
      ...(options.sharedRandom === undefined ? {} : { random: options.sharedRandom }),
      timers: this.#clock,
      sessionOf: (clientId) => this.#sessions.get(clientId),
      mayRead: (clientId, topic) => this.mayRead(clientId, topic),
      delivered: () => {
        this.stats.messagesOut += 1;
      },
    });
    this.#lifecycle = new SessionLifecycle(
      {
        clock: this.#clock,
        logger: this.#logger,
        get closed() {
          return broker.#closed;
        },
        get table() {
          return broker.#table;
        },
        get shardNames() {
          return broker.#shardMap.names;
        },
        sessions: this.#sessions,
        sessionHost: this.#host,
        wills: this.#wills,
        shared: this.#shared,
        dispatchFrontier: (shard) => this.#frontier[shard] as number,
        route: (filter, clientId, options) => this.#route(filter, clientId, options),
        unroute: (filter, clientId) => this.#unroute(filter, clientId),
        forgetReads: (clientId) => this.#reads.forget(clientId),
        write: (records) => this.#sessionWrites.addAll(records, null),
        persist: (records) => this.#sessionWrites.persist(records, null),
        appendNow: (records) => this.#appendSessionsNow(records),
        beforeCursorFlush: () => {
          this.#statistics.reportDrops(this.#clock.now(), this.#logger);
          // A snapshot that came due while writes were in flight is taken at a quiet moment.
          this.#sessionsProjection.maybeSnapshot();
          this.#retainedProjection.maybeSnapshot();
        },
        peers: this.#peers,
        otherApplied: () => this.#sessionsProjection.diverged('another broker writes to $sessions (brokers sharing the journal)'),
        peerHeard: () => {
          for (const follower of this.#dataFollowers) follower.start();
        },
      },
      options.cursorFlushMs ?? 100,
    );
  }

  /** Shared and exclusive subscriptions: admission checks for front ends, introspection. */
  get shared(): SharedSubscriptions {
    return this.#shared;
  }

  /** Opens the broker over a store: creates missing shards, then rebuilds the projections. */
  static async open(options: BrokerOptions): Promise<Broker> {
    const broker = new Broker(options);
    await broker.#start(options.dataShards);
    return broker;
  }

  /** True once close() began: front ends refuse new connections. */
  get closed(): boolean {
    return this.#closed;
  }

  get dataShardNames(): readonly string[] {
    return this.#shardMap.names;
  }

  get retained(): RetainedStore {
    return this.#retained;
  }

  get sessionTable(): SessionTable {
    return this.#table;
  }

  get #table(): SessionTable {
    return this.#sessionsProjection.state;
  }

  get #retained(): RetainedStore {
    return this.#retainedProjection.state;
  }

  /** Sessions in memory or in `$sessions`, online or not. */
  get sessionCount(): number {
    return this.#view.sessionCount;
  }

  /** Subscriptions of every session, online or not. */
  get subscriptionCount(): number {
    return this.#view.subscriptionCount;
  }

  get onlineCount(): number {
    return this.#view.onlineCount;
  }

  async #start(requestedShards: number): Promise<void> {
    ({ shardMap: this.#shardMap, frontier: this.#frontier } = await prepareShards(this.#store, this.#logger, requestedShards));
    if (this.#peers !== undefined) this.#dataFollowers = this.#shardMap.names.map((name, shard) => this.#dataFollower(name, shard));
    this.#appenders = this.#shardMap.names.map((name, shard) => {
      const follower = this.#dataFollowers[shard];
      // Alone on the journal, a durable batch is dispatched at once; beside other brokers, in offset order with theirs.
      const afterBatch = follower === undefined ? (batch: readonly Published[], baseOffset: number) => this.#dispatchBatch(batch, shard, baseOffset) : (batch: readonly Published[], baseOffset: number) => follower.ownBatch(batch, baseOffset);
      const observer: AppendObserver | undefined =
        follower === undefined ? undefined : { durable: () => undefined, failed: () => undefined, appendStarted: () => follower.own.began(), appendSettled: (id) => follower.own.settled(id) };
      return new ShardAppender<Published, boolean>(this.#store, name, (published) => this.#stored(published), afterBatch, undefined, observer, this.#store.orderedAppends === true);
    });
    this.#retainedAppender = new ShardAppender<Message, void>(this.#store, RETAINED_SHARD, (message) => this.#retainedOrder.apply(message, this.#retained), undefined, undefined, this.#observer(() => this.#retainedProjection, this.#peers === undefined ? undefined : this.#retainedOwn));
    // Session records and cursors are written whatever the journal's state: they wait out an outage.
    this.#sessionWrites = new ShardAppender<null, void>(this.#store, SESSIONS_SHARD, () => undefined, undefined, this.#clock, this.#observer(() => this.#sessionsProjection, this.#peers === undefined ? undefined : this.#sessionsOwn));

    ({ sessions: this.#sessionsProjection, retained: this.#retainedProjection } = await openStateProjections({
      store: this.#store,
      logger: this.#logger,
      clock: this.#clock,
      dataShards: this.#shardMap.names.length,
      sessionsSettled: () => this.#sessionWrites.idle,
      // A retained publish applies on whichever of its two writes is durable first.
      retainedSettled: () => this.#retainedOrder.idle && this.#retainedAppender.idle,
    }));
    if (this.#peers !== undefined) {
      const lifecycle = this.#lifecycle;
      this.#sessionsFollower = new OtherBrokersFollower(this.#store, SESSIONS_SHARD, this.#sessionsOwn, this.#logger, this.#sessionsProjection.offset, (record) => lifecycle.otherBrokerRecord(record));
      this.#retainedFollower = new OtherBrokersFollower(this.#store, RETAINED_SHARD, this.#retainedOwn, this.#logger, this.#retainedProjection.offset, (record) => this.#otherRetained(record));
    }
    await this.#shared.start();
    await this.#publishKeys.settle();
    await this.#lifecycle.recover();
    await this.#shared.recovered();
    this.#sessionsFollower?.start();
    this.#retainedFollower?.start();
    // The data shards are followed once another broker is heard of (engine/peers/data-follower.ts).
    this.#lifecycle.startPeers();
    this.#lifecycle.scheduleCursorFlush();
  }

  /** Follows a data shard for other brokers' messages (engine/peers/data-follower.ts). */
  #dataFollower(name: string, shard: number): DataFollower<Published> {
    return new DataFollower<Published>({
      store: this.#store,
      logger: this.#logger,
      name,
      shard,
      frontier: () => this.#frontier[shard] as number,
      dispatchOwn: (items, baseOffset) => this.#dispatchBatch(items, shard, baseOffset),
      dispatchOther: (record) => this.#dispatchOther(record, shard),
      skipTo: (offset) => {
        this.#frontier[shard] = Math.max(this.#frontier[shard] as number, offset);
      },
    });
  }

  /**
   * Another broker's `$retained` record. Retained publishes reach this broker through the data
   * shards (#dispatchOther); what only `$retained` holds is a clear made through the admin API (a
   * tombstone, nothing published). It removes the topic's retained message unless that one is
   * newer than the clear (a publish that came after it at another broker).
   */
  #otherRetained(record: JournalRecord): void {
    if (record.key === null || (record.value !== null && record.value.length > 0)) return;
    const existing = this.#retained.get(record.key.toString('utf8'));
    if (existing === undefined || existing.timestamp > record.timestamp) return;
    this.#noteRetainedFromOthers();
    this.#retained.apply(record);
  }

  #noteRetainedFromOthers(): void {
    if (this.#retainedFromOthers) return;
    this.#retainedFromOthers = true;
    this.#retainedProjection.diverged('retained messages of other brokers are applied here (brokers sharing the journal)');
  }

  /** Another broker's message, read from the data shard: handed to this broker's sessions like its own. */
  #dispatchOther(record: JournalRecord, shard: number): void {
    let message: Message | undefined;
    try {
      message = recordToMessage(record);
    } catch (error) {
      this.#logger.error({ err: error, shard: this.#shardMap.names[shard], offset: record.offset }, 'another broker\'s record is not a message; passed over');
    }
    if (message === undefined) {
      this.#frontier[shard] = record.offset + 1;
      return;
    }
    if (message.retain) this.#noteRetainedFromOthers();
    this.#dispatchBatch([{ message }], shard, record.offset);
  }

  /** Tells a projection about the durable batches and failures of the broker's own appends to its shard (and `own`, when other brokers write there too). */
  #observer<T>(projection: () => Projection<T>, own?: OwnAppends): AppendObserver {
    const observer: AppendObserver = {
      durable: (baseOffset, records) => {
        own?.durable(baseOffset, records.length);
        projection().advanced(baseOffset, records);
      },
      failed: (records) => projection().diverged(`${records.length} record(s) applied in memory failed to append`),
    };
    if (own !== undefined) {
      observer.appendStarted = () => own.began();
      observer.appendSettled = (id) => own.settled(id);
    }
    return observer;
  }

  /** Appends `$sessions` records at once, outside the batched writer, and tells the projection. */
  async #appendSessionsNow(records: RecordInput[]): Promise<void> {
    const tracked = this.#peers === undefined ? undefined : this.#sessionsOwn.began();
    try {
      const { baseOffset } = await this.#store.append(SESSIONS_SHARD, records);
      if (tracked !== undefined) this.#sessionsOwn.durable(baseOffset, records.length);
      this.#sessionsProjection.advanced(baseOffset, records);
    } finally {
      if (tracked !== undefined) this.#sessionsOwn.settled(tracked);
    }
  }

  #isDurable(clientId: string): boolean {
    return this.#lifecycle.isDurable(clientId);
  }

  /** Per session: bytes queued for a connection before the slow-consumer rule (live-settable). */
  get maxQueuedBytes(): number {
    return this.#host.maxQueuedBytes;
  }

  set maxQueuedBytes(bytes: number) {
    this.#host.maxQueuedBytes = bytes;
  }

  /** Whether a message on this topic may go to this session's client (the access policy). */
  mayRead(clientId: string, topic: string): boolean {
    if (this.access === allowEverything) return true;
    const identity = this.#sessions.get(clientId)?.identity;
    // A session without a connection since start has no identity to check: nothing goes out.
    return identity !== undefined && this.access.mayRead(identity, topic);
  }

  /** Whether this session's client may publish to the topic (the access policy; front ends ask before publish()). */
  mayPublish(clientId: string, topic: string): boolean {
    if (this.access === allowEverything) return true;
    const identity = this.#sessions.get(clientId)?.identity;
    return identity !== undefined && this.access.mayPublish(identity, topic);
  }

  /** Whether this session's client may subscribe to the filter (front ends ask before subscribe()). */
  maySubscribe(clientId: string, filter: string): boolean {
    if (this.access === allowEverything) return true;
    const identity = this.#sessions.get(clientId)?.identity;
    return identity !== undefined && this.access.maySubscribe(identity, filter);
  }

  /** The identity of a session's latest connection (undefined before its first since start). */
  identityOf(clientId: string): ClientIdentity | undefined {
    return this.#sessions.get(clientId)?.identity;
  }

  /** The index of the data shard that holds `topic` (shard-model/shard-map.ts). */
  shardOf(topic: string): number {
    return this.#shardMap.shardOf(topic);
  }

  /** Bytes of publishes waiting for the journal (for front-end backpressure). */
  get publishBacklogBytes(): number {
    let total = 0;
    for (const appender of this.#appenders) total += appender.backlogBytes;
    return total;
  }

  /**
   * An idempotent producer's publish: stored once per key (a protocol's integer, 0 to 65535,
   * MQTT's QoS 2 packet id) until releasePublishKey (engine/sessions/publish-keys.ts).
   */
  publishOnce(session: Session, key: number, message: Message, stored?: (matched: boolean) => void): Promise<{ matched: boolean }> {
    return this.#publishKeys.publishOnce(session, key, message, stored);
  }

  /** The producer is done with a key (MQTT PUBREL): resolves once its marker's tombstone is durable. */
  releasePublishKey(session: Session, key: number): Promise<void> {
    return this.#publishKeys.release(session, key);
  }

  /**
   * Appends a message and delivers it to online matching sessions. `stored`, when given, is
   * called once the message is durable, with whether any subscription (online or not) matched,
   * and before any session is handed the message (for a retained message: once the `$retained`
   * write is durable too, which may be after the fan-out). The promise resolves after the
   * fan-out, with the same answer; it rejects, and `stored` is not called, when the message
   * could not be stored.
   */
  async publish(message: Message, stored?: (matched: boolean) => void): Promise<{ matched: boolean }> {
    return this.#publish(message, undefined, stored);
  }

  async #publish(message: Message, publishKey: number | undefined, stored: ((matched: boolean) => void) | undefined): Promise<{ matched: boolean }> {
    if (this.#closed) throw new Error('broker is closed');
    if (!this.writeGate.open) {
      this.stats.refused += 1;
      throw this.writeGate.refusal();
    }
    // Counted in when it reaches its target topic (the delayed publisher publishes it then).
    if (this.extras.delayed !== undefined && message.topic.startsWith(DELAYED_PREFIX)) {
      const scheduled = await this.extras.delayed.schedule(message);
      stored?.(scheduled.matched);
      return scheduled;
    }
    this.#statistics.countIn(message);
    if (this.#unsafe?.ackBeforeDurable === true && stored !== undefined) {
      stored(this.#trie.match(message.topic).length > 0 || this.#shared.matches(message.topic));
      stored = undefined;
    }
    const appender = this.#appenders[this.shardOf(message.topic)] as ShardAppender<Published, boolean>;
    const record = messageToRecord(message, { publishKey });
    try {
      if (!message.retain) return { matched: await appender.add(record, stored === undefined ? { message } : { message, stored }) };
      // Both writes are durable before the publisher is told; both are awaited, so neither
      // failure goes unhandled.
      const [data, kept] = await this.#retainedOrder.writing(message, () => Promise.allSettled([appender.add(record, { message }), this.#retainedAppender.add(messageToRecord(message, { tombstone: message.payload.length === 0 }), message)]));
      if (data.status === 'rejected') throw data.reason;
      if (kept.status === 'rejected') throw kept.reason;
      stored?.(data.value);
      return { matched: data.value };
    } catch (error) {
      throw this.#publishFailure(error);
    }
  }

  /**
   * Called when an append failed because the journal's disk is full (SL_JOURNAL_DISK_FULL).
   * The node runtime that watches the disk sets the write gate's 'disk-low' block here and
   * clears it when space returns; without one (a broker-only node, tests) nothing is blocked.
   */
  onDiskFull: (() => void) | undefined;

  /**
   * A failed append that means "not now" is refused like a publish made while the gate is closed
   * (SL_BROKER_WRITES_BLOCKED, with the journal's error as the cause), so front ends answer both
   * the same way: an append that ran out of disk space (the node is told, and blocks on
   * 'disk-low'), or one that found the journal unreachable (the node runtime's watch has closed
   * the gate by the time the failure gets here). Other failures pass unchanged.
   */
  #publishFailure(error: unknown): unknown {
    if ((error as { code?: string } | null)?.code === 'SL_JOURNAL_DISK_FULL') {
      this.onDiskFull?.();
      this.stats.refused += 1;
      const reasons = this.writeGate.open ? 'disk-low (an append ran out of disk space)' : this.writeGate.blocks.map((block) => `${block.reason} (${block.detail})`).join('; ');
      return WriteGateErrors.writesBlocked.withCause(error, { reasons: ['disk-low'] }, reasons);
    }
    if (this.writeGate.open || !isStoreUnreachable(error)) return error;
    this.stats.refused += 1;
    return this.writeGate.refusal(error);
  }

  /**
   * A message is durable: decides whether anything matches (the trie, without the fan-out) and
   * tells its publisher, before #dispatchBatch hands the batch to anyone.
   */
  #stored(published: Published): boolean {
    const matched = this.#trie.match(published.message.topic).length > 0 || this.#shared.matches(published.message.topic);
    published.stored?.(matched);
    return matched;
  }

  #dispatchBatch(batch: readonly Published[], shard: number, baseOffset: number): void {
    for (let i = 0; i < batch.length; i += 1) {
      const { message } = batch[i] as Published;
      try {
        this.#dispatch(message, shard, baseOffset + i);
      } catch (error) {
        // A bug in one delivery path must not stop the shard's dispatch (its frontier is set first).
        this.#logger.error({ err: error, topic: message.topic, shard: this.#shardMap.names[shard], offset: baseOffset + i }, 'dispatching a message failed');
      }
    }
  }

  /**
   * `observer` is told of each message once it is durable, as it is dispatched, and in each
   * shard's order (the AMQP front end routes MQTT traffic on amq.topic this way); it is given
   * the very Message object that was published. Returns the function that stops it.
   */
  observeDispatch(observer: (message: Message) => void): () => void {
    this.#dispatchObservers.add(observer);
    return () => this.#dispatchObservers.delete(observer);
  }

  /** Hands a durable message to the online sessions it matches. */
  #dispatch(message: Message, shard: number, offset: number): void {
    this.#frontier[shard] = offset + 1;
    if (message.retain) this.#retainedOrder.apply(message, this.#retained);
    this.#shared.dispatch(message, shard, offset);
    this.#replays.dispatched(message, shard, offset);
    for (const observer of this.#dispatchObservers) observer(message);
    const matches = this.#trie.match(message.topic);
    if (matches.length === 0) return;
    if (matches.length === 1) {
      const only = matches[0] as (typeof matches)[number];
      this.#offer(only.subscriberId, message, [only.value], shard, offset);
      return;
    }
    const bySubscriber = new Map<string, SubscriptionOptions[]>();
    for (const match of matches) {
      const list = bySubscriber.get(match.subscriberId);
      if (list === undefined) bySubscriber.set(match.subscriberId, [match.value]);
      else list.push(match.value);
    }
    for (const [subscriberId, options] of bySubscriber) this.#offer(subscriberId, message, options, shard, offset);
  }

  #offer(subscriberId: string, message: Message, options: SubscriptionOptions[], shard: number, offset: number): void {
    const session = this.#sessions.get(subscriberId);
    if (session === undefined || !session.online) return;
    if (!this.mayRead(subscriberId, message.topic)) return;
    const delivery = deliveryFor(message, options, subscriberId, shard, offset);
    if (delivery === undefined) return;
    this.#statistics.countOut(message);
    session.offerLive(delivery);
  }


  /**
   * Opens or resumes a session for a connection (MQTT CONNECT). The returned session is claimed
   * by the sink but sends nothing until session.attach(sink), which the front end calls after
   * its connection acknowledgement is out.
   */
  connect(request: ConnectRequest): Promise<{ session: Session; sessionPresent: boolean }> {
    return this.#lifecycle.connect(request);
  }

  /** The connection of a session closed. Ignored when the session has moved to another one. */
  disconnect(session: Session, sink: DeliverySink, request: DisconnectRequest): Promise<void> {
    return this.#lifecycle.disconnect(session, sink, request);
  }

  /** Adds or replaces subscriptions; durable before it resolves. Returns which were new. */
  async subscribe(session: Session, entries: ReadonlyArray<{ filter: string; options: SubscriptionOptions }>): Promise<boolean[]> {
    const isNew = entries.map(({ filter, options }) => {
      const isNewHere = session.setSubscription(filter, options);
      this.#route(filter, session.clientId, options);
      return isNewHere;
    });
    if (this.#isDurable(session.clientId)) {
      const writes = entries.map(({ filter, options }) => subscriptionRecord(session.clientId, filter, options));
      for (const record of writes) this.#table.apply(record);
      await this.#sessionWrites.addAll(writes, null);
    }
    // A new shared group's position is durable before the SUBACK.
    if (entries.some(({ filter }) => routingFilter(filter) === undefined)) await this.#shared.flush();
    return isNew;
  }

  /**
   * Adds or replaces subscriptions for a front end that acknowledges them (MQTT SUBACK): the
   * records are durable first (durable sessions), then in one synchronous step the
   * subscriptions are routed, each starting at the dispatch frontier of that step, and
   * `acknowledge(isNew)` runs. So nothing published before that step comes through them, and
   * nothing comes through them before the acknowledgement is written. A new shared group's
   * position is durable before the acknowledgement too; the session holds its deliveries while
   * that write is under way. A session that ended meanwhile gets no routes and no call.
   */
  async subscribeAcknowledged(session: Session, entries: ReadonlyArray<{ filter: string; options: SubscriptionOptions }>, acknowledge: (isNew: boolean[]) => void): Promise<void> {
    if (this.#isDurable(session.clientId)) {
      const writes = entries.map(({ filter, options }) => subscriptionRecord(session.clientId, filter, options));
      for (const record of writes) this.#table.apply(record);
      await this.#sessionWrites.addAll(writes, null);
    }
    if (session.ended) return;
    const isNew = entries.map(({ filter, options }) => {
      const isNewHere = session.setSubscription(filter, options);
      this.#route(filter, session.clientId, options);
      return isNewHere;
    });
    if (!entries.some(({ filter }) => routingFilter(filter) === undefined)) {
      acknowledge(isNew);
      return;
    }
    session.holdDeliveries();
    try {
      await this.#shared.flush();
      acknowledge(isNew);
    } finally {
      session.releaseDeliveries();
    }
  }

  /** Queues the retained messages a subscription just made receives, as its RetainedPolicy says. */
  deliverRetained(session: Session, filter: string, options: SubscriptionOptions, isNew: boolean): void {
    if (!sendsRetained(options, isNew)) return;
    // Retained messages go to new non-shared subscriptions only (MQTT 5.0 3.3.1.3).
    const routed = routingFilter(filter);
    if (routed === undefined) return;
    for (const message of this.#retained.matching(routed)) {
      if (!this.mayRead(session.clientId, message.topic)) continue;
      const delivery = deliveryFor(message, [{ ...options, noLocal: false }], session.clientId);
      if (delivery === undefined) continue;
      this.#statistics.countOut(message);
      delivery.retain = true;
      session.offerRetained(delivery);
    }
  }

  /**
   * Starts a time-range replay for the session's connection (engine/replay/replays.ts); a live
   * one subscribes the session to the filter when it has caught up. `key` names it for
   * cancelReplay (the subscription text the client used).
   */
  /**
   * When a replay's range begins before the oldest message retention kept in a shard it reads,
   * the timestamp (epoch ms) of the oldest kept message of those shards; otherwise undefined.
   * The replay itself then starts at the oldest kept message (the journal's read by time does
   * that); this says so: logged here, and front ends tell the client (MQTT 5.0: SUBACK reason
   * string and user property). Conservative: a shard that lost any segment and whose oldest kept
   * message is newer than `from` counts, even if the deleted messages were all older than `from`
   * (how old they were is not kept).
   */
  async replayOldestKept(clientId: string, request: ReplayRequest): Promise<number | undefined> {
    const { filter } = request;
    const wildcard = filter.includes('+') || filter.includes('#');
    return this.#reads.oldestKeptAfter(clientId, request, wildcard ? this.#shardMap.names.map((_, shard) => shard) : [this.shardOf(filter)]);
  }

  startReplay(session: Session, key: string, request: ReplayRequest, options: SubscriptionOptions): ReplayStart {
    return this.#replays.start(session, key, request, options);
  }

  /** Stops a running replay; false when none runs under that key. */
  cancelReplay(session: Session, key: string): boolean {
    return this.#replays.cancel(session, key);
  }

  /** Removes subscriptions; returns which existed. */
  async unsubscribe(session: Session, filters: readonly string[]): Promise<boolean[]> {
    const existed = filters.map((filter) => {
      // Only a subscription the session holds is unrouted (an exclusive lock is not someone else's to drop).
      if (session.subscriptions.has(filter)) this.#unroute(filter, session.clientId);
      return session.removeSubscription(filter);
    });
    if (this.#isDurable(session.clientId)) {
      const writes = filters.map((filter) => subscriptionRecord(session.clientId, filter, null));
      for (const record of writes) this.#table.apply(record);
      await this.#sessionWrites.addAll(writes, null);
    }
    return existed;
  }

  /** Routes a subscription: the trie for plain and exclusive filters, its group for a shared one. */
  #route(filter: string, clientId: string, options: SubscriptionOptions): void {
    const routed = this.#shared.add(filter, clientId, options);
    if (routed !== undefined) this.#trie.add(routed, clientId, options);
  }

  #unroute(filter: string, clientId: string): void {
    const routed = this.#shared.remove(filter, clientId);
    if (routed !== undefined) this.#trie.remove(routed, clientId);
  }

  /**
   * Resolves once a QoS 2 delivery the client acknowledged with PUBREC is recorded as released
   * (durable sessions), so the PUBREL that follows is never contradicted by a PUBLISH resent
   * after a crash: that is what keeps QoS 2 exactly-once across a restart.
   */
  recordRelease(session: Session): Promise<void> {
    return this.#lifecycle.recordRelease(session);
  }

  /** Writes the cursors of durable sessions that moved since the last flush. */
  flushCursors(): Promise<void> {
    return this.#lifecycle.flushCursors();
  }

  // ---- introspection and operator actions (admin API) ------------------------------------

  get startedAt(): number {
    return this.#startedAt;
  }


  /** Messages clients published per topic since start (the busiest TOPIC_COUNT_MAX topics at most; no $SYS). */
  topicCounts(): Array<{ topic: string; messages: number }> {
    return this.#statistics.topicCounts();
  }

  /** Retained messages held: clients' and the broker's own `$SYS/...` ones. */
  retainedCounts(): { client: number; sys: number } {
    const sys = this.#retained.matching('$SYS/#').length;
    return { client: this.#retained.size - sys, sys };
  }

  /** Online clients, sorted by client id. */
  clients(): ClientInfo[] {
    return this.#view.clients();
  }

  /** Every session: online ones and durable offline ones, sorted by client id. */
  sessions(): SessionInfo[] {
    return this.#view.sessions();
  }

  /** Every subscription of every session, sorted by client id then filter. */
  subscriptions(): SubscriptionInfo[] {
    return this.#view.subscriptions();
  }


  /** Disconnects a client (5.0: DISCONNECT 0x98); its session stays as its expiry says. */
  kick(clientId: string): boolean {
    return this.#lifecycle.kick(clientId);
  }

  /** Clears a retained message (a tombstone in `$retained`, nothing delivered). */
  async clearRetained(topic: string): Promise<boolean> {
    const existing = this.#retained.get(topic);
    if (existing === undefined) return false;
    const clear: Message = { ...existing, payload: Buffer.alloc(0), timestamp: this.#clock.now() };
    await this.#retainedAppender.add(messageToRecord(clear, { tombstone: true }), clear);
    return true;
  }

  /**
   * Shuts down: connections are told the server is going away; sessions stay as they are in
   * the journal (wills of connected clients are not published: the client did nothing wrong);
   * pending appends finish.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Nothing of other brokers is handed on or applied from here on.
    await Promise.all([this.#sessionsFollower?.stop(), this.#retainedFollower?.stop(), ...this.#dataFollowers.map((follower) => follower.stop())]);
    const delayedClosed = this.extras.delayed?.close();
    this.#lifecycle.stopTimers();
    this.#wills.cancelAll();
    const writes = this.#lifecycle.closeConnections();
    // A journal that is down now would hold the shutdown forever: the last writes get one try.
    this.#sessionWrites.stopRetrying();
    await Promise.all([...this.#appenders, this.#retainedAppender].map((appender) => appender.drained()));
    await delayedClosed;
    await this.flushCursors();
    await this.#shared.close();
    // Into the table too, like every `$sessions` write: the snapshot taken below is the table.
    for (const record of writes) this.#table.apply(record);
    if (writes.length > 0) await this.#sessionWrites.addAll(writes, null);
    await this.#sessionWrites.drained();
    // Everything is written: last snapshots, so the next start reads little of either shard.
    await Promise.all([this.#sessionsProjection.close(), this.#retainedProjection.close()]);
  }
}
