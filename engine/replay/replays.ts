// Time-range replay: a session receives the stored messages of a filter published in
// [from, to), read from the data shards through their time index (ShardStore.readByTime for
// the start, then reads by offset), merged across shards in publish order (publish-order.ts);
// with `to` = live it then becomes an ordinary subscription to the filter, without a gap or a
// duplicate at the switch.
//
// How the switch is exact. A replay job fixes, per shard, a target offset: the broker's
// dispatch frontier when it starts. Journal reads cover [start of range, target); nothing at or
// past the target is taken from the journal (it may be appended but not dispatched yet). A live
// replay also taps the broker's dispatch from that same tick on, and buffers the dispatched
// messages matching its filter: the buffer holds exactly the matching messages at offsets
// >= target. When the reads reach every target, the job, in one synchronous step, queues the
// buffer (in publish order) and subscribes the session to the filter: the subscription's
// dispatch-frontier mark (Session.setSubscription) is the frontier of that tick, so the live
// feed starts exactly where the buffer ends. The buffer is bounded: past its bound it is
// dropped and the targets move up to the current frontier (those messages are then read from
// the journal), so a replay costs bounded memory however fast others publish.
//
// Memory and flow. Reads are pages (REPLAY_PAGE_RECORDS / REPLAY_PAGE_BYTES per shard); the
// job queues deliveries only while the session's queue is below half of its bound
// (--max-queued-bytes) and waits for the session to drain otherwise, so the receive maximum
// and the socket's backpressure pace the replay like any other delivery. Replayed deliveries
// are not tied to the session's shard cursors (they are not resumed after a disconnect: the
// replay ends with the connection; a live replay that had not switched yet has made no
// subscription). Every replayed message is checked with the access policy (mayRead) when it is
// queued.
import type { JournalRecord } from '../../journal/index.js';
import { expiresAt, messageSize, recordToMessage, type Message } from '../messages/message.js';
import { filterMatches } from '../routing/filter-match.js';
import type { SubscriptionOptions } from '../sessions/session-events.js';
import type { DeliverySink } from '../delivery/delivery.js';
import { deliveryFor, type Session } from '../sessions/session.js';
import { PublishOrderMerge } from './publish-order.js';
import type { ReplayRequest } from './replay-request.js';

export const REPLAY_PAGE_RECORDS = 256;
export const REPLAY_PAGE_BYTES = 256 * 1024;
/** Replays running at once per session (each holds up to a page per shard). */
export const REPLAYS_PER_SESSION_MAX = 8;

/** What replays need from the broker. */
export interface ReplayHost {
  readonly shardCount: number;
  shardOf(topic: string): number;
  dispatchFrontier(shard: number): number;
  /** A page of a data shard from its first record stamped >= `timestamp`. */
  readByTime(shard: number, timestamp: number, limits: { maxRecords: number; maxBytes: number }): Promise<JournalRecord[]>;
  /** A page of a data shard from `offset` (from the shard start when retention removed it). */
  read(shard: number, offset: number, limits: { maxRecords: number; maxBytes: number }): Promise<JournalRecord[]>;
  mayRead(clientId: string, topic: string): boolean;
  now(): number;
  readonly maxQueuedBytes: number;
  /** The live part: subscribes the session (the synchronous part must be done on return). */
  subscribe(session: Session, filter: string, options: SubscriptionOptions): void;
  delivered(count: number): void;
  failed(session: Session, filter: string, error: unknown): void;
}

interface Item {
  timestamp: number;
  offset: number;
  message: Message;
}

export type ReplayStart = 'started' | 'too-many';

/** The replays of every session; the broker's dispatch feeds the live ones' taps. */
export class Replays {
  readonly #bySession = new Map<Session, Map<string, ReplayJob>>();
  readonly #taps = new Set<ReplayJob>();

  constructor(readonly host: ReplayHost) {}

  /**
   * Starts a replay for a session's connection. `key` names it for cancel() (the subscription
   * text the client used); a replay with the same key is replaced.
   */
  start(session: Session, key: string, request: ReplayRequest, options: SubscriptionOptions): ReplayStart {
    const sink = session.sink;
    if (sink === undefined || session.ended) return 'started';
    let jobs = this.#bySession.get(session);
    jobs?.get(key)?.cancel();
    jobs = this.#bySession.get(session);
    if (jobs !== undefined && jobs.size >= REPLAYS_PER_SESSION_MAX) return 'too-many';
    if (jobs === undefined) this.#bySession.set(session, (jobs = new Map()));
    const job = new ReplayJob(this, session, sink, key, request, options);
    jobs.set(key, job);
    if (request.to === 'live') this.#taps.add(job);
    // run() reports its own failures (host.failed); the catch covers one thrown from finally.
    job.run().catch((error: unknown) => this.host.failed(session, request.filter, error));
    return 'started';
  }

  /** Stops a running replay; false when there is none under that key. */
  cancel(session: Session, key: string): boolean {
    const job = this.#bySession.get(session)?.get(key);
    if (job === undefined) return false;
    job.cancel();
    return true;
  }

  /** Replays running for a session. */
  running(session: Session): number {
    return this.#bySession.get(session)?.size ?? 0;
  }

  /** Called by the broker's dispatch for every durable message, in offset order per shard. */
  dispatched(message: Message, shard: number, offset: number): void {
    if (this.#taps.size === 0) return;
    for (const job of this.#taps) job.tap(message, shard, offset);
  }

  /** @internal */
  untap(job: ReplayJob): void {
    this.#taps.delete(job);
  }

  /** @internal */
  finished(job: ReplayJob): void {
    this.#taps.delete(job);
    const jobs = this.#bySession.get(job.session);
    if (jobs?.get(job.key) !== job) return;
    jobs.delete(job.key);
    if (jobs.size === 0) this.#bySession.delete(job.session);
  }
}

class ReplayJob {
  readonly #host: ReplayHost;
  /** Data shards that can hold the filter's topics (one when it has no wildcard). */
  readonly #shards: number[];
  readonly #target: number[] = [];
  /** Next offset to read per shard; undefined until the time index placed it. */
  readonly #position: Array<number | undefined> = [];
  readonly #merge: PublishOrderMerge<Item>;
  /** Live replays: dispatched matching messages at offsets >= target, per shard. */
  #buffer: Map<number, Item[]> | undefined;
  #bufferBytes = 0;
  #stopped = false;

  constructor(
    readonly manager: Replays,
    readonly session: Session,
    readonly sink: DeliverySink,
    readonly key: string,
    readonly request: ReplayRequest,
    readonly options: SubscriptionOptions,
  ) {
    this.#host = manager.host;
    const { filter } = request;
    const wildcard = filter.includes('+') || filter.includes('#');
    this.#shards = wildcard ? Array.from({ length: this.#host.shardCount }, (_, shard) => shard) : [this.#host.shardOf(filter)];
    for (const shard of this.#shards) this.#target[shard] = this.#host.dispatchFrontier(shard);
    this.#merge = new PublishOrderMerge<Item>(this.#shards);
    if (request.to === 'live') this.#buffer = new Map(this.#shards.map((shard) => [shard, []]));
  }

  cancel(): void {
    this.#stopped = true;
    this.manager.finished(this);
  }

  get #gone(): boolean {
    return this.#stopped || this.session.ended || this.session.sink !== this.sink;
  }

  tap(message: Message, shard: number, offset: number): void {
    const buffer = this.#buffer?.get(shard);
    if (buffer === undefined || this.#stopped || offset < (this.#target[shard] as number)) return;
    if (!filterMatches(this.request.filter, message.topic)) return;
    buffer.push({ timestamp: message.timestamp, offset, message });
    this.#bufferBytes += messageSize(message);
    if (this.#bufferBytes <= this.#host.maxQueuedBytes / 4) return;
    // Too much arrived while the journal part is still being read: let the journal hold it.
    for (const lane of (this.#buffer as Map<number, Item[]>).values()) lane.length = 0;
    this.#bufferBytes = 0;
    for (const target of this.#shards) {
      this.#target[target] = this.#host.dispatchFrontier(target);
      const position = this.#position[target];
      if (position === undefined || position < (this.#target[target] as number)) this.#merge.setMore(target, true);
    }
  }

  async run(): Promise<void> {
    try {
      for (;;) {
        if (!(await this.#room())) return;
        this.#emit();
        if (this.#gone) return;
        if (this.#merge.done) {
          if (this.request.to !== 'live') return;
          if (!(await this.#room())) return;
          // The buffer may have overflowed while waiting (the merge is then open again).
          if (this.#merge.done) {
            this.#goLive();
            return;
          }
          continue;
        }
        const starved = this.#merge.starved();
        if (starved.length > 0) await Promise.all(starved.map((shard) => this.#read(shard)));
      }
    } catch (error) {
      if (!this.#gone) this.#host.failed(this.session, this.request.filter, error);
    } finally {
      this.#stopped = true;
      this.manager.finished(this);
    }
  }

  /** Resolves true once the session can take more, false when the replay is over for it. */
  async #room(): Promise<boolean> {
    for (;;) {
      if (this.#gone) return false;
      if (this.session.hasRoom) return true;
      if (!(await new Promise<boolean>((resolve) => this.session.whenRoom(resolve)))) return false;
    }
  }

  /** Queues merged messages while the session has room. */
  #emit(): void {
    while (!this.#gone && this.session.hasRoom) {
      const next = this.#merge.take();
      if (next === undefined) return;
      this.#deliver(next.item.message);
    }
  }

  #deliver(message: Message): void {
    if (expiresAt(message) <= this.#host.now()) return;
    // Checked now, not when the replay started: rules changed since apply at once.
    if (!this.#host.mayRead(this.session.clientId, message.topic)) return;
    const delivery = deliveryFor(message, [this.options], this.session.clientId);
    if (delivery === undefined) return;
    this.#host.delivered(1);
    this.session.offerReplayed(delivery);
  }

  async #read(shard: number): Promise<void> {
    const limits = { maxRecords: REPLAY_PAGE_RECORDS, maxBytes: REPLAY_PAGE_BYTES };
    const position = this.#position[shard];
    const targetAtStart = this.#target[shard] as number;
    const records = position === undefined ? await this.#host.readByTime(shard, this.request.from, limits) : await this.#host.read(shard, position, limits);
    if (this.#gone) return;
    const { from, to, filter } = this.request;
    const items: Item[] = [];
    const target = this.#target[shard] as number;
    let next = position ?? (records[0]?.offset ?? targetAtStart);
    let ended = false;
    // Nothing from here to the end of the shard when the read began (which covered the target then).
    if (records.length === 0) next = Math.max(next, targetAtStart);
    for (const record of records) {
      if (record.offset < next) continue;
      if (record.offset >= target) break;
      if (to !== 'live' && record.timestamp >= to) {
        ended = true;
        break;
      }
      next = record.offset + 1;
      if (record.timestamp < from) continue;
      const message = recordToMessage(record);
      // Not a message, or a record no client could have published (a faulty writer): skipped.
      if (message === undefined || message.topic === '' || message.topic.includes('+') || message.topic.includes('#')) continue;
      if (filterMatches(filter, message.topic)) items.push({ timestamp: record.timestamp, offset: record.offset, message });
    }
    this.#position[shard] = next;
    this.#merge.add(shard, items);
    this.#merge.setMore(shard, !ended && next < (this.#target[shard] as number));
  }

  /** The live switch: the buffer, then the subscription, in one synchronous step. */
  #goLive(): void {
    this.manager.untap(this);
    const buffer = this.#buffer as Map<number, Item[]>;
    const merge = new PublishOrderMerge<Item>(buffer.keys());
    for (const [shard, items] of buffer) {
      merge.add(shard, items);
      merge.setMore(shard, false);
    }
    this.#buffer = undefined;
    for (let next = merge.take(); next !== undefined; next = merge.take()) this.#deliver(next.item.message);
    this.#host.subscribe(this.session, this.request.filter, this.options);
  }
}
