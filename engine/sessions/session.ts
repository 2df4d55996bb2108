// A session in memory: its subscriptions, the deliveries queued for its connection, the ones in
// flight (sent, not yet acknowledged), and, per data shard, where its delivery stands. It is the
// engine's subscriber stream, in no protocol's terms: the queue and the in-flight window are
// engine/delivery's, the tags in the window are the front end's (DeliverySink.assignTag), and
// ack / hold / nack take a tag back (MQTT PUBACK, PUBREC, PUBCOMP; AMQP basic.ack, basic.nack),
// ackThrough / nackThrough every outstanding tag up to one (AMQP multiple=true).
//
// Delivery model. Messages reach a session two ways:
// - live: the broker hands it each matching message right after the append is durable;
// - read-back: when a shard stream is "lagging", the session reads that shard from its own
//   position and filters by its subscriptions. A stream lags when the session was offline
//   (durable session reconnecting), or when its queue passed maxQueuedBytes (slow consumer):
//   instead of buffering without bound, the session lets go of the live feed and reads the
//   journal later at its own pace. So QoS 1/2 messages are never dropped for a slow consumer and
//   never copied per session; QoS 0 messages past the bound are dropped and counted.
// A lagging stream rejoins the live feed when its read position reaches the broker's dispatch
// frontier for the shard (checked synchronously, so no message falls between the two).
//
// Cursor (what `$sessions` keeps, per shard): the lowest offset not yet acknowledged = the
// smallest offset of a queued or in-flight QoS 1/2 delivery, else the stream's position (read
// position when lagging, the dispatch frontier when live). After a crash the session resumes
// from it: at-least-once, never a gap. A cursor alone would also resend what was acknowledged
// above it: a client may acknowledge a later delivery before an earlier one (MQTT 4.6 orders
// PUBACKs among QoS 1 deliveries and PUBRECs among QoS 2 ones, not one kind against the other;
// a shared group's members acknowledge independently). After a restart that later delivery would be read
// back and sent again, for QoS 2 as a new PUBLISH under an id the client has already completed,
// so a second copy. So the cursor carries, per shard, the offsets acknowledged at or above it
// (`ackedAbove`), and a read-back skips them.
import { SendResult, type Delivery, type DeliverySink, type SharedTicket } from '../delivery/delivery.js';
import { DeliveryQueue } from '../delivery/delivery-queue.js';
import { InFlightWindow, type DeliveryTag } from '../delivery/in-flight-window.js';
import type { Message, QoS } from '../messages/message.js';
import { expiresAt, messageSize } from '../messages/message.js';
import { TopicTrie } from '../routing/topic-trie.js';
import type { ClientIdentity } from '../security/access.js';
import { routingFilter } from '../shared/shared-filter.js';
import type { DeliveryCursors, SubscriptionOptions } from './session-events.js';

interface ShardStream {
  /** While a read failed: no new read before this time. */
  retryAt?: number;
  lagging: boolean;
  /** While lagging: the next offset to read. */
  readFrom: number;
  reading: boolean;
}

/** What a session needs from the broker: reading a shard back, the dispatch frontier, counters. */
export interface SessionHost {
  readonly shardCount: number;
  dispatchFrontier(shard: number): number;
  /** A page of the shard from `fromOffset`, or from its start when retention removed `fromOffset` (the host counts that gap against `session`). */
  readBack(shard: number, fromOffset: number, session: Session): Promise<Array<{ offset: number; message: Message }>>;
  now(): number;
  maxQueuedBytes: number;
  /** A session's cursors moved (durable sessions persist them soon). */
  cursorsMoved(session: Session): void;
  dropped(reason: 'queue-full' | 'expired' | 'too-large', count: number): void;
  readFailed(session: Session, shard: number, error: unknown, retryInMs: number): void;
  /** Calls back after `ms` (the broker's clock). */
  later(callback: () => void, ms: number): void;
  /** The access policy's read check for this session's client. */
  mayRead(session: Session, topic: string): boolean;
}

/**
 * The message of a delivery restored in the held state: only the front end's completion step is
 * ever taken up again (DeliverySink.resumeHeld), so its content is not needed (and not read back).
 */
const HELD_PLACEHOLDER: Message = { topic: '', payload: Buffer.alloc(0), qos: 2, retain: false, publisherId: '', timestamp: 0, properties: undefined };

/** One function for every session's queue, not a closure each. */
function deliverySize(delivery: Delivery): number {
  return messageSize(delivery.message);
}

const NO_SUBSCRIPTIONS: ReadonlyMap<string, SubscriptionOptions> = new Map();

/** An added delivery on a session's shared empty queue or window would show up in every session. */
function sharedEmptyAddedTo(what: string): never {
  throw new Error(`internal: a delivery was added to the shared empty ${what} (use #queueToFill / #windowToFill)`);
}

/** What every session without a queued delivery reads. Adding to it is a programmer error. */
const EMPTY_QUEUE = new (class extends DeliveryQueue<Delivery> {
  override push(): void {
    sharedEmptyAddedTo('queue');
  }
  override unshift(): void {
    sharedEmptyAddedTo('queue');
  }
})(deliverySize);

/** What every session without an in-flight delivery reads. Adding to it is a programmer error. */
const EMPTY_WINDOW = new (class extends InFlightWindow<Delivery> {
  override add(): void {
    sharedEmptyAddedTo('window');
  }
})();

const READ_RETRY_FIRST_MS = 100;
const READ_RETRY_MAX_MS = 5000;

/** Never added to: shards without pending deliveries share it. */
const NONE_PENDING = new Set<number>();

/**
 * Per shard, at most this many acknowledged offsets above the cursor are kept. The set holds the
 * acknowledgements since the shard's oldest unacknowledged delivery, so it grows past an
 * in-flight window (a Receive Maximum is at most 65,535, a group's window at most 60,000) only
 * while that one delivery stays unacknowledged and later ones keep being acknowledged. The
 * cursor's record must not grow without bound then: offsets past the limit are not kept, and
 * those messages may be delivered once more after a restart (at-least-once, as before the set).
 */
export const ACKED_ABOVE_MAX = 65_536;

/** The fewest acks between two prunes of a shard's set. */
const ACKED_ABOVE_PRUNE_EVERY = 64;

interface AckedAbove {
  offsets: Set<number>;
  /**
   * Acks before the next prune. A prune passes over the set and the pending offsets, so it
   * comes once per as many acks as those hold: O(1) per ack, and the set at most about twice
   * its true size (or the pending count) between prunes.
   */
  untilPrune: number;
}

export class Session {
  /** The session's subscriptions by filter (read-only view; change them through the broker). */
  get subscriptions(): ReadonlyMap<string, SubscriptionOptions> {
    return this.#subscriptions ?? NO_SUBSCRIPTIONS;
  }

  #subscriptions: Map<string, SubscriptionOptions> | undefined;
  /**
   * Per filter made while this session was in memory: the dispatch frontier of each shard when
   * it was made. Read-back must not deliver what was published before the subscription existed;
   * filters restored from the journal have no entry (their session's cursors bound them).
   */
  #subscribedAt: Map<string, number[]> | undefined;
  /** The session's own filters, for read-back filtering; made on the first subscription. */
  #filters: TopicTrie<SubscriptionOptions> | undefined;
  sink: DeliverySink | undefined;
  /**
   * Who its latest connection authenticated as (the access policy checks it); undefined for a
   * session restored from the journal that has not connected since the start. Kept here rather
   * than in a map by client id: one field, not a map entry, per connected client.
   */
  identity: ClientIdentity | undefined;
  /**
   * The publish keys of this session's producer not yet released (MQTT: QoS 2 packet ids
   * before PUBREL): true once the message is stored, or the store in progress (resolves with
   * whether it succeeded). Kept across reconnects so a publish sent again is not stored twice;
   * a persistent session's keys are also in `$sessions`, so a restart keeps them
   * (publish-keys.ts). The front end owns the keys' meaning and keeps this table.
   */
  get publishKeys(): Map<number, true | Promise<boolean>> {
    return (this.#publishKeys ??= new Map());
  }

  /** How many publish keys await their release (without allocating the table). */
  get publishKeyCount(): number {
    return this.#publishKeys?.size ?? 0;
  }

  #publishKeys: Map<number, true | Promise<boolean>> | undefined;

  /** The publish key table's entries (without allocating it). */
  publishKeyEntries(): Iterable<[number, true | Promise<boolean>]> {
    return this.#publishKeys?.entries() ?? [];
  }

  /**
   * Keys whose release is being recorded (Broker.releasePublishKey): a front end answering the
   * release (MQTT PUBCOMP) waits for it, also when the producer asks again on a later connection.
   */
  get releasingKeys(): Map<number, Promise<boolean>> {
    return (this.#releasingKeys ??= new Map());
  }

  #releasingKeys: Map<number, Promise<boolean>> | undefined;
  /** Made with the first queued delivery; until then #queue reads the shared empty one. */
  #queueMade: DeliveryQueue<Delivery> | undefined;
  /** Made with the first in-flight delivery; until then #window reads the shared empty one. */
  #windowMade: InFlightWindow<Delivery> | undefined;

  // Reading the queue or the window (sizes, peeks, takes) allocates nothing: an idle session is
  // asked for them (stats, the pump at attach) without ever holding a delivery.
  get #queue(): DeliveryQueue<Delivery> {
    return this.#queueMade ?? EMPTY_QUEUE;
  }

  get #window(): InFlightWindow<Delivery> {
    return this.#windowMade ?? EMPTY_WINDOW;
  }

  /** The queue to add to (push, unshift). */
  get #queueToFill(): DeliveryQueue<Delivery> {
    return (this.#queueMade ??= new DeliveryQueue<Delivery>(deliverySize));
  }

  /** The window to add to. */
  get #windowToFill(): InFlightWindow<Delivery> {
    return (this.#windowMade ??= new InFlightWindow<Delivery>());
  }
  /** Made on the first QoS 1/2 delivery: a session that never gets one does not pay for the closure. */
  #inUseCheck: ((tag: DeliveryTag) => boolean) | undefined;

  get #inUse(): (tag: DeliveryTag) => boolean {
    return (this.#inUseCheck ??= (tag) => this.#window.has(tag));
  }
  /**
   * Per shard, offsets of QoS 1/2 deliveries queued or in flight (not yet acknowledged). Shared
   * empty set until a shard has one: idle connections should cost little memory.
   */
  #pendingArray: Array<Set<number>> | undefined;
  /**
   * Per shard, offsets of QoS 1/2 deliveries settled while the shard's cursor stayed at or below
   * them (see the header); undefined until one is. May hold offsets the cursor has since passed
   * (they are pruned in batches): skipping a settled offset is always right.
   */
  #ackedAboveArray: Array<AckedAbove | undefined> | undefined;
  /** Per shard; undefined while every stream is live from the start (the idle case). */
  #streamsArray: ShardStream[] | undefined;
  #sentBelowArray: number[] | undefined;
  #pumping = false;
  #readFailures = 0;
  #blocked = false;
  /** Bumped by detach(): a read-back started before it must not move the streams after it. */
  #generation = 0;
  ended = false;
  /** Replays (engine/replay) waiting for room in the queue; told false when the connection goes. */
  #roomWaiters: Array<(ok: boolean) => void> | undefined;

  constructor(
    readonly clientId: string,
    readonly host: SessionHost,
    /** Where each shard stream starts: undefined = live from now; a number = read back from there. */
    startOffsets: ReadonlyArray<number | undefined>,
    /** Per shard, offsets below this were sent before (a restart's resends carry DUP). */
    sentBelow: readonly number[] = [],
    /** Deliveries held (the client had taken them over: MQTT PUBREC) when the session was last saved. */
    held: ReadonlyArray<readonly [tag: DeliveryTag, shard: number, offset: number]> = [],
    /** Per shard, offsets at or above the start that were acknowledged when the session was last saved. */
    ackedAbove: ReadonlyArray<readonly number[] | undefined> = [],
  ) {
    ackedAbove.forEach((offsets, shard) => {
      if (offsets === undefined || offsets.length === 0 || shard >= host.shardCount) return;
      (this.#ackedAboveArray ??= [])[shard] = { offsets: new Set(offsets.slice(0, ACKED_ABOVE_MAX)), untilPrune: Math.max(ACKED_ABOVE_PRUNE_EVERY, offsets.length) };
    });
    for (const [tag, shard, offset] of held) {
      this.#windowToFill.add(tag, { tag, message: HELD_PLACEHOLDER, qos: 2, retain: false, redelivered: true, subscriptionIds: undefined, shard, offset }, true);
    }
    if (sentBelow.length > 0) this.#sentBelowArray = Array.from({ length: host.shardCount }, (_, shard) => sentBelow[shard] ?? 0);
    if (startOffsets.some((from, shard) => from !== undefined && from < host.dispatchFrontier(shard))) {
      this.#streamsArray = Array.from({ length: host.shardCount }, (_, shard) => {
        const from = startOffsets[shard];
        return from === undefined || from >= host.dispatchFrontier(shard) ? { lagging: false, readFrom: 0, reading: false } : { lagging: true, readFrom: from, reading: false };
      });
    }
  }

  // Per-shard state is made on first use: most sessions are idle most of the time.
  get #streams(): ShardStream[] {
    return (this.#streamsArray ??= Array.from({ length: this.host.shardCount }, () => ({ lagging: false, readFrom: 0, reading: false })));
  }

  get #pending(): Array<Set<number>> {
    return (this.#pendingArray ??= Array.from({ length: this.host.shardCount }, () => NONE_PENDING));
  }

  get #sentBelow(): number[] {
    return (this.#sentBelowArray ??= Array.from({ length: this.host.shardCount }, () => 0));
  }

  get online(): boolean {
    return this.sink !== undefined;
  }

  /** Offsets kept as acknowledged above the cursor, over all shards (tests: the set stays bounded). */
  get ackedAboveCount(): number {
    let count = 0;
    for (const kept of this.#ackedAboveArray ?? []) count += kept?.offsets.size ?? 0;
    return count;
  }

  get inflightCount(): number {
    return this.#window.size;
  }

  get queuedCount(): number {
    return this.#queue.length;
  }

  /**
   * Whether a replay may queue more now: connected, and the queue below half its bound (the
   * same threshold read-backs use, so a replay is paced by what the client takes).
   */
  get hasRoom(): boolean {
    return this.sink !== undefined && !this.ended && this.#queue.bytes < this.host.maxQueuedBytes / 2;
  }

  /** Calls back once: true when the queue has room again, false when the connection is gone. */
  whenRoom(callback: (ok: boolean) => void): void {
    (this.#roomWaiters ??= []).push(callback);
  }

  #wakeRoomWaiters(ok: boolean): void {
    const waiters = this.#roomWaiters;
    if (waiters === undefined) return;
    this.#roomWaiters = undefined;
    for (const waiter of waiters) waiter(ok);
  }

  /**
   * Queues a replayed message. Not tied to a shard position: the session's cursors do not
   * move for it, and a replay is not resumed after the connection ends.
   */
  offerReplayed(delivery: Delivery): void {
    delivery.shard = -1;
    delivery.offset = -1;
    this.#enqueue(delivery);
    this.pump();
  }

  setSubscription(filter: string, options: SubscriptionOptions, restored = false): boolean {
    const isNew = this.#subscriptions?.has(filter) !== true;
    (this.#subscriptions ??= new Map()).set(filter, options);
    // A shared subscription's messages come from its group, never from this session's read-back.
    const routed = routingFilter(filter);
    if (routed === undefined) return isNew;
    if (isNew && !restored) (this.#subscribedAt ??= new Map()).set(routed, Array.from({ length: this.host.shardCount }, (_, shard) => this.host.dispatchFrontier(shard)));
    (this.#filters ??= new TopicTrie()).add(routed, this.clientId, options);
    return isNew;
  }

  removeSubscription(filter: string): boolean {
    const routed = routingFilter(filter);
    if (routed !== undefined) {
      this.#filters?.remove(routed, this.clientId);
      this.#subscribedAt?.delete(routed);
    }
    return this.#subscriptions?.delete(filter) === true;
  }

  /**
   * Per shard, the offset below which everything is acknowledged (see the header), and the one
   * below which everything was sent at least once.
   */
  cursors(): DeliveryCursors {
    const acked = this.#streams.map((_, shard) => this.#lowWatermark(shard));
    // Kept under the name `released` (MQTT's word for its held QoS 2 deliveries) so sessions
    // saved by earlier versions read back unchanged.
    const released: Array<[number, number, number]> = [];
    for (const [tag, entry, held] of this.#window.entries()) if (held && entry.shard >= 0) released.push([tag, entry.shard, entry.offset]);
    const cursors: DeliveryCursors = released.length === 0 ? { acked, sent: [...this.#sentBelow] } : { acked, sent: [...this.#sentBelow], released };
    if (this.#ackedAboveArray !== undefined) {
      const above = acked.map((low, shard) => {
        this.#pruneAckedAbove(shard, low);
        return [...(this.#ackedAboveArray?.[shard]?.offsets ?? [])].sort((a, b) => a - b);
      });
      if (above.some((offsets) => offsets.length > 0)) cursors.ackedAbove = above;
    }
    return cursors;
  }

  /** The shard's cursor: its lowest unacknowledged offset (see the header). */
  #lowWatermark(shard: number): number {
    const stream = this.#streams[shard] as ShardStream;
    let low = stream.lagging ? stream.readFrom : this.host.dispatchFrontier(shard);
    for (const offset of this.#pending[shard] as Set<number>) if (offset < low) low = offset;
    return low;
  }

  #pruneAckedAbove(shard: number, low: number): void {
    const kept = this.#ackedAboveArray?.[shard];
    if (kept === undefined) return;
    for (const offset of kept.offsets) if (offset < low) kept.offsets.delete(offset);
    kept.untilPrune = Math.max(ACKED_ABOVE_PRUNE_EVERY, kept.offsets.size, (this.#pending[shard] as Set<number>).size);
  }

  /**
   * A QoS 1/2 delivery of the shard was settled (its offset already out of the pending set):
   * kept when the cursor may stay at or below it. The test is cheap and errs on keeping (the
   * exact cursor costs a pass over the pending offsets): an offset the cursor has passed is
   * pruned later, in a pass every so many acks (AckedAbove.untilPrune) or when the cursors are read.
   */
  #settledAbove(shard: number, offset: number): void {
    const stream = this.#streamsArray?.[shard];
    // Nothing outstanding below it and the stream past it: the cursor moves past it at once.
    if ((this.#pending[shard] as Set<number>).size === 0 && !(stream !== undefined && stream.lagging && stream.readFrom <= offset)) return;
    const all = (this.#ackedAboveArray ??= []);
    const kept = (all[shard] ??= { offsets: new Set(), untilPrune: ACKED_ABOVE_PRUNE_EVERY });
    kept.untilPrune -= 1;
    if (kept.untilPrune <= 0) this.#pruneAckedAbove(shard, this.#lowWatermark(shard));
    if (kept.offsets.size < ACKED_ABOVE_MAX) kept.offsets.add(offset);
  }

  /**
   * Takes the session for a connection that is still being set up: live messages queue for it
   * from now on, but nothing is sent until attach() (after the connection acknowledgement).
   */
  claim(sink: DeliverySink): void {
    this.sink = sink;
    this.#blocked = true;
  }

  /** Starts sending to the claiming connection: what was in flight first (DUP), then the rest. */
  attach(sink: DeliverySink): void {
    if (this.sink !== sink) return;
    this.#blocked = false;
    for (const [tag, entry, held] of this.#window.entries()) {
      if (held) sink.resumeHeld(tag);
      else if (!this.host.mayRead(this, entry.message.topic)) {
        // The session was resumed by a client that may not read this message (another user
        // taking over the client id, or rules changed): it is not resent to it. A shared
        // group's delivery goes back to the group for another member; the rest counts as done,
        // as a message the policy skips on any other path.
        this.#window.take(tag);
        const ticket = entry.shared;
        entry.shared = undefined;
        ticket?.returned();
        this.#settle(entry);
      } else {
        entry.redelivered = true;
        if (sink.send(entry) !== SendResult.Skipped) continue;
        // Too large for this connection (a smaller Maximum Packet Size than the one it was
        // sent under): discarded for this client like any other, so it holds nothing back.
        this.#window.take(tag);
        this.host.dropped('too-large', 1);
        this.#settle(entry);
      }
    }
    this.pump();
  }

  /**
   * Detaches the connection. Queued deliveries are let go: QoS 1/2 ones are read back from the
   * journal on reconnect (the streams they came from go back to lagging at their offsets), QoS 0
   * ones are gone (MQTT does not keep QoS 0 for offline sessions by default). In-flight ones are
   * kept for the DUP resend.
   */
  detach(): void {
    this.sink = undefined;
    this.#generation += 1;
    const returned = this.#takeShared();
    const inflightOffsets = this.#pending.map(() => NONE_PENDING);
    for (const [, entry, held] of this.#window.entries()) {
      // Held deliveries are settled for the cursor (only the front end's last step is resumed).
      if (entry.shard < 0 || held) continue;
      if (inflightOffsets[entry.shard] === NONE_PENDING) inflightOffsets[entry.shard] = new Set();
      (inflightOffsets[entry.shard] as Set<number>).add(entry.offset);
    }
    for (let shard = 0; shard < this.#streams.length; shard += 1) {
      const stream = this.#streams[shard] as ShardStream;
      let resumeAt = stream.lagging ? stream.readFrom : this.host.dispatchFrontier(shard);
      for (const offset of this.#pending[shard] as Set<number>) {
        if (!(inflightOffsets[shard] as Set<number>).has(offset) && offset < resumeAt) resumeAt = offset;
      }
      stream.lagging = true;
      stream.readFrom = resumeAt;
      this.#pending[shard] = inflightOffsets[shard] as Set<number>;
    }
    this.#queue.clear();
    this.#wakeRoomWaiters(false);
    for (const ticket of returned) ticket.returned();
  }

  /**
   * Takes the unacknowledged shared-group deliveries out of the queue and the in-flight window:
   * their group redelivers them to another member rather than wait for this client to return.
   */
  #takeShared(): SharedTicket[] {
    const tickets: SharedTicket[] = [];
    for (const [tag, entry] of this.#window.entries()) {
      if (entry.shared === undefined) continue;
      tickets.push(entry.shared);
      entry.shared = undefined;
      this.#window.take(tag);
    }
    for (const queued of this.#queue) {
      if (queued.shared === undefined) continue;
      tickets.push(queued.shared);
      queued.shared = undefined;
    }
    return tickets;
  }

  /** A live message from the broker's dispatch; ignored for streams that are lagging. */
  offerLive(delivery: Delivery): void {
    if (delivery.shard >= 0) {
      const stream = this.#streams[delivery.shard] as ShardStream;
      // A lagging stream reads this offset back later (and counts a QoS 0 drop then).
      if (stream.lagging) return;
      if (this.#queue.bytes >= this.host.maxQueuedBytes) {
        if (delivery.qos === 0) {
          this.host.dropped('queue-full', 1);
          return;
        }
        // Slow consumer: let go of the live feed for this shard, read it back later.
        stream.lagging = true;
        stream.readFrom = delivery.offset;
        return;
      }
    }
    this.#enqueue(delivery);
    this.pump();
  }

  /** Queues a retained message (not tied to a shard position). */
  offerRetained(delivery: Delivery): void {
    // Retained messages are not in a stream that could be read back later: past the bound
    // they are dropped and counted, so a subscriber that does not read cannot grow the queue.
    if (this.#queue.bytes >= this.host.maxQueuedBytes) {
      this.host.dropped('queue-full', 1);
      return;
    }
    delivery.shard = -1;
    delivery.offset = -1;
    this.#enqueue(delivery);
    this.pump();
  }

  /**
   * Queues a delivery from a shared subscription group. Not tied to this session's shard
   * positions (the group keeps those) and never dropped for the queue bound: the group hands a
   * member no more than its Receive Maximum at a time.
   */
  offerShared(delivery: Delivery): void {
    delivery.shard = -1;
    delivery.offset = -1;
    this.#enqueue(delivery);
    this.pump();
  }

  #enqueue(delivery: Delivery): void {
    if (delivery.qos > 0 && delivery.shard >= 0) {
      let pending = this.#pending[delivery.shard] as Set<number>;
      if (pending === NONE_PENDING) this.#pending[delivery.shard] = pending = new Set();
      pending.add(delivery.offset);
    }
    this.#queueToFill.push(delivery);
  }

  /**
   * Sends nothing until releaseDeliveries() (calls nest): deliveries queue meanwhile, under the
   * usual bound. A front end holds them while it must write an answer before them.
   */
  holdDeliveries(): void {
    this.#holds += 1;
  }

  releaseDeliveries(): void {
    if (this.#holds > 0) this.#holds -= 1;
    if (this.#holds === 0) this.pump();
  }

  #holds = 0;

  /** The transport drained: go on sending. */
  resume(): void {
    this.#blocked = false;
    this.pump();
  }

  /** Sends what the client can take now, then starts read-backs if the queue has room. */
  pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      this.#sendQueued();
      this.#startReadBacks();
    } finally {
      this.#pumping = false;
    }
    if (this.#roomWaiters !== undefined && this.hasRoom) this.#wakeRoomWaiters(true);
  }

  #sendQueued(): void {
    const sink = this.sink;
    if (sink === undefined) return;
    const now = this.host.now();
    while (!this.#blocked && this.#holds === 0) {
      const next = this.#queue.peek();
      if (next === undefined || (next.qos > 0 && this.#window.size >= sink.inFlightMaximum)) break;
      this.#queue.shift();
      if (expiresAt(next.message) <= now) {
        this.host.dropped('expired', 1);
        this.#settle(next);
        continue;
      }
      if (next.shard >= 0 && next.offset < (this.#sentBelow[next.shard] as number)) next.redelivered = true;
      if (next.qos > 0) next.tag = sink.assignTag(next, this.#inUse);
      const result = sink.send(next);
      if (next.shard >= 0 && next.offset >= (this.#sentBelow[next.shard] as number)) {
        this.#sentBelow[next.shard] = next.offset + 1;
        if (next.qos > 0) this.host.cursorsMoved(this);
      }
      if (result === SendResult.Skipped) {
        this.host.dropped('too-large', 1);
        this.#settle(next);
        continue;
      }
      if (next.qos > 0) this.#windowToFill.add(next.tag, next);
      if (result === SendResult.SentFull) this.#blocked = true;
    }
  }

  #settle(delivery: Delivery): void {
    const ticket = delivery.shared;
    if (ticket !== undefined) {
      delivery.shared = undefined;
      ticket.settled();
    }
    if (delivery.qos > 0 && delivery.shard >= 0) {
      (this.#pending[delivery.shard] as Set<number>).delete(delivery.offset);
      this.#settledAbove(delivery.shard, delivery.offset);
      this.host.cursorsMoved(this);
    }
  }

  /**
   * The subscriber is done with a delivery (MQTT PUBACK, PUBCOMP, or a PUBREC refusing it; AMQP
   * basic.ack). False for a tag the window does not hold.
   */
  ack(tag: DeliveryTag): boolean {
    const entry = this.#window.take(tag);
    if (entry === undefined) return false;
    this.#settle(entry);
    this.pump();
    return true;
  }

  /**
   * Acks every outstanding delivery sent no later than `tag` (AMQP basic.ack with multiple=true;
   * its tags only grow, so "sent no later" is "tag at most"). False for a tag the window does not hold.
   */
  ackThrough(tag: DeliveryTag): boolean {
    const taken = this.#window.takeThrough(tag);
    if (taken === undefined) return false;
    for (const entry of taken) this.#settle(entry);
    this.pump();
    return true;
  }

  /**
   * The subscriber gives a delivery back (AMQP basic.nack, basic.reject). Requeued, it goes out
   * again before anything queued, marked redelivered, under the tag the front end assigns then;
   * not requeued, it is done with, as an ack is. False for a tag the window does not hold, or holds as taken over.
   */
  nack(tag: DeliveryTag, requeue: boolean): boolean {
    if (this.#window.isHeld(tag)) return false;
    const entry = this.#window.take(tag);
    if (entry === undefined) return false;
    this.#giveBack([entry], requeue);
    return true;
  }

  /**
   * Gives back every outstanding delivery sent no later than `tag` (AMQP basic.nack with
   * multiple=true), as nack() gives back one; requeued, they go out again in the order they
   * were first sent. Held deliveries stay, as ackThrough() leaves them. False for a tag the
   * window does not hold.
   */
  nackThrough(tag: DeliveryTag, requeue: boolean): boolean {
    const taken = this.#window.takeThrough(tag);
    if (taken === undefined) return false;
    this.#giveBack(taken, requeue);
    return true;
  }

  /** Deliveries taken out of the window, in the order they were sent: requeued in front of the queue, or settled. */
  #giveBack(entries: readonly Delivery[], requeue: boolean): void {
    if (requeue) {
      // Put back last first, so the earliest is at the front again.
      for (let i = entries.length - 1; i >= 0; i -= 1) {
        const entry = entries[i] as Delivery;
        entry.redelivered = true;
        entry.tag = 0;
        this.#queueToFill.unshift(entry);
      }
    } else for (const entry of entries) this.#settle(entry);
    this.pump();
  }

  /**
   * The client took an exactly-once delivery over (MQTT PUBREC): its position is settled, the
   * tag stays in the window, held, until ack() (PUBCOMP). False for an unknown tag or a delivery
   * of another class.
   */
  hold(tag: DeliveryTag): boolean {
    const entry = this.#window.get(tag);
    if (entry === undefined || entry.qos !== 2) return false;
    if (this.#window.hold(tag) === 'already') return true;
    // The client owns the message from here on: for its group, the delivery is done.
    const ticket = entry.shared;
    if (ticket !== undefined) {
      entry.shared = undefined;
      ticket.settled();
    }
    // From now on only the front end's last step may be taken again, never the send: the cursor
    // moves past it, and the held list (saved before the front end answers) keeps the tag.
    if (entry.shard >= 0) {
      (this.#pending[entry.shard] as Set<number>).delete(entry.offset);
      this.host.cursorsMoved(this);
    }
    return true;
  }

  #startReadBacks(): void {
    if (this.sink === undefined || this.ended || this.#streamsArray === undefined) return;
    if (this.#queue.bytes >= this.host.maxQueuedBytes / 2) return;
    for (let shard = 0; shard < this.#streams.length; shard += 1) {
      const stream = this.#streams[shard] as ShardStream;
      if (!stream.lagging || stream.reading || (stream.retryAt !== undefined && stream.retryAt > this.host.now())) continue;
      if (stream.readFrom >= this.host.dispatchFrontier(shard)) {
        stream.lagging = false;
        continue;
      }
      stream.reading = true;
      // #readBack handles read failures itself (backoff, retry); anything else is reported the same way.
      this.#readBack(shard, stream).catch((error: unknown) => this.host.readFailed(this, shard, error, 0));
    }
  }

  async #readBack(shard: number, stream: ShardStream): Promise<void> {
    const generation = this.#generation;
    try {
      const records = await this.host.readBack(shard, stream.readFrom, this);
      if (this.ended || !stream.lagging || generation !== this.#generation) return;
      const frontier = this.host.dispatchFrontier(shard);
      const now = this.host.now();
      let next = stream.readFrom;
      for (const { offset, message } of records) {
        // Past the frontier the live feed will deliver it; taking it here would duplicate it.
        if (offset >= frontier) break;
        next = offset + 1;
        // A record that is not a valid message topic (written by a faulty writer) is skipped,
        // never retried: it must not stop the stream.
        if (message.topic === '' || message.topic.includes('+') || message.topic.includes('#')) continue;
        if ((this.#pending[shard] as Set<number>).has(offset) || this.#isHeld(shard, offset) || this.#ackedAboveArray?.[shard]?.offsets.has(offset) === true) continue;
        const delivery = this.#match(message, shard, offset);
        if (delivery === undefined) continue;
        if (delivery.qos === 0) {
          this.host.dropped('queue-full', 1);
          continue;
        }
        if (expiresAt(message) <= now) continue;
        this.#enqueue(delivery);
      }
      // Nothing left to read below the frontier (an empty read means the journal's end).
      if (records.length === 0) next = Math.max(next, frontier);
      stream.readFrom = next;
      if (stream.readFrom >= this.host.dispatchFrontier(shard)) stream.lagging = false;
      this.host.cursorsMoved(this);
      this.#readFailures = 0;
      stream.retryAt = undefined;
    } catch (error) {
      // Back off (a journal that is down must not be hammered), then try again.
      this.#readFailures += 1;
      const delay = Math.min(READ_RETRY_MAX_MS, READ_RETRY_FIRST_MS * 2 ** (this.#readFailures - 1));
      stream.retryAt = this.host.now() + delay;
      this.host.readFailed(this, shard, error, delay);
      this.host.later(() => this.pump(), delay);
    } finally {
      stream.reading = false;
    }
    this.pump();
  }

  /** A held delivery of this shard position awaits its last step (it must not be sent again). */
  #isHeld(shard: number, offset: number): boolean {
    for (const [, entry, held] of this.#window.entries()) if (held && entry.shard === shard && entry.offset === offset) return true;
    return false;
  }

  /** The delivery this session makes of a message by its own subscriptions, if any match. */
  #match(message: Message, shard: number, offset: number): Delivery | undefined {
    if (this.#filters === undefined) return undefined;
    if (!this.host.mayRead(this, message.topic)) return undefined;
    const options: SubscriptionOptions[] = [];
    for (const match of this.#filters.match(message.topic)) {
      const since = this.#subscribedAt?.get(match.filter);
      if (since === undefined || offset >= (since[shard] ?? 0)) options.push(match.value);
    }
    return options.length === 0 ? undefined : deliveryFor(message, options, this.clientId, shard, offset);
  }

  /** Ends the session: nothing more is delivered or read. */
  end(): void {
    this.ended = true;
    this.sink = undefined;
    const returned = this.#takeShared();
    this.#queue.clear();
    this.#window.clear();
    this.#wakeRoomWaiters(false);
    for (const ticket of returned) ticket.returned();
  }
}

/**
 * How one subscriber receives a message given all its matching subscriptions (MQTT-3.3.5-1):
 * one delivery at the highest granted QoS, with every matching subscription identifier (5.0),
 * minus subscriptions with No Local set when the subscriber published it (MQTT-3.8.3-3).
 */
export function deliveryFor(message: Message, options: readonly SubscriptionOptions[], subscriberId: string, shard = -1, offset = -1): Delivery | undefined {
  let maxQos = -1;
  let retain = false;
  let subscriptionIds: number[] | undefined;
  for (const subscription of options) {
    if (subscription.noLocal && message.publisherId === subscriberId) continue;
    if (subscription.qos > maxQos) maxQos = subscription.qos;
    if (subscription.keepRetainFlag && message.retain) retain = true;
    if (subscription.subscriptionId !== undefined) (subscriptionIds ??= []).push(subscription.subscriptionId);
  }
  if (maxQos < 0) return undefined;
  return { tag: 0, message, qos: (maxQos < message.qos ? maxQos : message.qos) as QoS, retain, redelivered: false, subscriptionIds, shard, offset };
}
