// Delayed publish: a message published to `$delayed/{seconds}/{topic}` is kept in the compacted
// `$delayed` system shard and published to {topic} when it falls due. The schedule in memory is
// a projection of that shard (rebuilt at start from its latest snapshot and the records after
// it, engine/projection), so it survives a crash: a publish to
// `$delayed/...` is acknowledged only once its record is durable, and a message whose due time
// passed while the broker was down is published right after the next start.
//
// Record layout (key = an id unique to the message; compaction keeps its latest record):
//   value   = 0x01 followed by the payload (never empty, so an empty payload is never mistaken
//             for a tombstone, whichever store carries it), null once the message was published;
//   headers = the data-shard message headers (flags, publisher, 5.0 properties) plus `topic`
//             (the target) and `due` (epoch ms, decimal).
// Delivery is at least once: the tombstone is appended after the target publish is durable, so
// a crash between the two publishes the message again after the restart.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { JournalRecord, RecordInput } from '../../journal/index.js';
import { createShardIfMissing, type ShardStore } from '../../shard-model/index.js';
import type { Clock } from '../../base/index.js';
import { MESSAGE_SHARD_LIMITS, messageToRecord, recordToMessage, type Message } from '../messages/message.js';
import { Projection, type ProjectionCodec } from '../projection/projection.js';
import { decodeRecordList, encodeRecordList } from '../projection/record-list.js';
import { ShardAppender } from '../shard-appender.js';
import { DelayedErrors } from './delayed-errors.js';
import { parseDelayedTopic } from './delayed-topic.js';
import { DueQueue, type DueEntry } from './due-queue.js';

export const DELAYED_SHARD = '$delayed';
const MAX_TIMER_MS = 2 ** 31 - 1;
/** After a failed release (the journal refused the target publish), the next try. */
const RETRY_MS = 1000;
const VALUE_MARK = Buffer.from([1]);
const TOPIC_HEADER = 'topic';
const DUE_HEADER = 'due';

/** What the scheduler needs from the broker. */
export interface DelayedHost {
  /** The normal publish path (durable, dispatched, access checks on delivery). */
  publish(message: Message): Promise<unknown>;
  /** Whether this publisher may publish to the target topic (checked when the message is accepted). */
  mayPublish(publisherId: string, topic: string): boolean;
}

export interface DelayedOptions {
  store: ShardStore;
  host: DelayedHost;
  clock: Clock;
  logger: Logger;
  /** Longest delay accepted, seconds. */
  maxDelaySeconds: number;
  /** Most messages held (accepted, not yet published). */
  maxMessages: number;
}

interface Pending extends DueEntry {
  id: string;
  /** The message as it goes to the target topic (its timestamp is set when it is released). */
  message: Message;
}

/** The projection of `$delayed`: the messages held (accepted, not yet tombstoned) by id. */
type HeldMessages = Map<string, Pending>;

/** Snapshot form: each held message as the `$delayed` record it was written as, with its offset (the sequence). */
const heldCodec: ProjectionCodec<HeldMessages> = {
  // 2: records in the record envelope (version 1 of engine/messages/envelope.ts).
  version: 2,
  encode: (held) =>
    encodeRecordList(
      [...held.values()].map((pending) => {
        const record = encode(pending.id, pending.message, pending.due, pending.message.timestamp);
        return { offset: pending.sequence, timestamp: pending.message.timestamp, key: record.key ?? null, value: record.value, headers: record.headers ?? [] };
      }),
    ),
  decode: (bytes) => {
    const held: HeldMessages = new Map();
    for (const record of decodeRecordList(bytes)) applyDelayedRecord(held, { ...record, epoch: 0 });
    return held;
  },
};

function applyDelayedRecord(held: HeldMessages, record: JournalRecord): HeldMessages {
  if (record.key === null) return held;
  const id = record.key.toString('utf8');
  const pending = decode(id, record);
  if (pending === undefined) held.delete(id);
  else held.set(id, pending);
  return held;
}

export class DelayedPublisher {
  readonly #queue = new DueQueue<Pending>();
  /** Ids held: scheduled, being written, or being released. Its size is what the bound counts. */
  readonly #held = new Set<string>();
  readonly #releasing = new Set<Promise<void>>();
  readonly #appender: ShardAppender<string, number>;
  /** Fed with this publisher's durable `$delayed` records (the only writer), for snapshots. */
  #projection!: Projection<HeldMessages>;
  #timer: unknown;
  #timerDue = Number.POSITIVE_INFINITY;
  #closed = false;

  private constructor(private readonly options: DelayedOptions) {
    // The clock as retry timers: a tombstone written during a journal outage waits for it (persist).
    this.#appender = new ShardAppender<string, number>(options.store, DELAYED_SHARD, (_id, offset) => offset, undefined, options.clock, {
      durable: (baseOffset, records) => this.#projection.appended(baseOffset, records),
      // The projection holds durable records only: a failed append changes nothing in it.
      failed: () => undefined,
    });
  }

  /** Creates the `$delayed` shard when missing, replays it and arms the timer. */
  static async open(options: DelayedOptions): Promise<DelayedPublisher> {
    const existing = (await options.store.list()).some((info) => info.name === DELAYED_SHARD);
    if (!existing) await createShardIfMissing(options.store, DELAYED_SHARD, { compacted: true, segmentBytes: 8 * 1024 * 1024, ...MESSAGE_SHARD_LIMITS });
    const publisher = new DelayedPublisher(options);
    publisher.#projection = await Projection.open<HeldMessages>({ store: options.store, shard: DELAYED_SHARD, logger: options.logger, clock: options.clock, initial: () => new Map(), apply: applyDelayedRecord, codec: heldCodec });
    for (const pending of publisher.#projection.state.values()) {
      publisher.#held.add(pending.id);
      publisher.#queue.push(pending);
    }
    options.logger.info({ delayedRecords: publisher.#projection.opening.replayedRecords, snapshotOffset: publisher.#projection.opening.snapshotOffset, delayed: publisher.#queue.size }, 'delayed messages rebuilt from the journal');
    publisher.#arm();
    return publisher;
  }

  /** Messages held: accepted and not yet published. */
  get size(): number {
    return this.#held.size;
  }

  /**
   * Accepts a publish to `$delayed/{seconds}/{topic}`: checks it, writes it to `$delayed` and
   * resolves once that is durable. Throws a coded error (DelayedErrors) when refused.
   */
  async schedule(message: Message): Promise<{ matched: boolean }> {
    const { maxDelaySeconds, maxMessages, clock, host } = this.options;
    const parsed = parseDelayedTopic(message.topic);
    if (!parsed.ok) throw DelayedErrors.invalidTopic.create({ topic: message.topic }, parsed.detail);
    if (parsed.delaySeconds > maxDelaySeconds) throw DelayedErrors.delayTooLong.create({ topic: message.topic }, parsed.delaySeconds, maxDelaySeconds);
    if (!host.mayPublish(message.publisherId, parsed.topic)) throw DelayedErrors.notAuthorized.create({ topic: message.topic }, parsed.topic);
    if (this.#held.size >= maxMessages) throw DelayedErrors.full.create({ topic: message.topic }, maxMessages);
    const due = clock.now() + parsed.delaySeconds * 1000;
    const id = `${due.toString(36)}.${randomBytes(8).toString('hex')}`;
    const target: Message = { ...message, topic: parsed.topic };
    this.#held.add(id);
    let sequence: number;
    try {
      sequence = await this.#appender.add(encode(id, target, due, clock.now()), id);
    } catch (error) {
      this.#held.delete(id);
      throw error;
    }
    // The target publish reports matching subscribers only when it happens; acknowledging the
    // delayed publish as accepted is what the publisher can act on now.
    if (this.#closed) return { matched: true };
    this.#queue.push({ id, due, sequence, message: target });
    if (due < this.#timerDue) this.#arm();
    return { matched: true };
  }

  #arm(): void {
    if (this.#timer !== undefined) this.options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = Number.POSITIVE_INFINITY;
    const next = this.#queue.peek();
    if (next === undefined || this.#closed) return;
    const { clock } = this.options;
    this.#timerDue = next.due;
    this.#timer = clock.setTimeout(() => this.#fire(), Math.min(MAX_TIMER_MS, Math.max(0, next.due - clock.now())));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerDue = Number.POSITIVE_INFINITY;
    if (this.#closed) return;
    const now = this.options.clock.now();
    // Releases start in due order on one turn, so the data shards' appenders see them in that
    // order: messages due together keep their order on a topic.
    for (let next = this.#queue.peek(); next !== undefined && next.due <= now; next = this.#queue.peek()) {
      this.#queue.pop();
      this.#release(next);
    }
    this.#arm();
  }

  #release(pending: Pending): void {
    const { host, clock, logger } = this.options;
    if (!host.mayPublish(pending.message.publisherId, pending.message.topic)) {
      // Rules changed while it waited: its client may no longer publish there.
      logger.warn({ topic: pending.message.topic, publisherId: pending.message.publisherId }, 'delayed message dropped when due: the access policy no longer lets its client publish to its topic');
      this.#appender
        .add({ key: Buffer.from(pending.id), value: null, timestamp: clock.now() }, pending.id)
        .catch((error: unknown) => logger.error({ err: error, topic: pending.message.topic }, 'recording a dropped delayed message failed; it is checked again after a restart'))
        .finally(() => this.#held.delete(pending.id));
      return;
    }
    const message: Message = { ...pending.message, timestamp: clock.now() };
    const release = host.publish(message).then(
      async () => {
        try {
          // persist: the journal may have gone away since the publish; the tombstone waits for it.
          await this.#appender.persist([{ key: Buffer.from(pending.id), value: null, timestamp: clock.now() }], pending.id);
        } catch (error) {
          // Published already: not again in this run; the next start publishes it once more
          // (at least once), since its record is still live.
          logger.error({ err: error, topic: message.topic }, 'recording a published delayed message failed; it is published again after a restart');
        }
        this.#held.delete(pending.id);
      },
      (error: unknown) => {
        if (this.#closed) return;
        logger.error({ err: error, topic: message.topic, retryInMs: RETRY_MS }, 'publishing a delayed message failed; retrying');
        this.#queue.push({ ...pending, due: clock.now() + RETRY_MS });
        this.#arm();
      },
    );
    this.#releasing.add(release);
    // `release` handles its own failure above; this only forgets it once settled.
    release.then(
      () => this.#releasing.delete(release),
      () => this.#releasing.delete(release),
    );
  }

  /** Stops the timer; resolves when the releases under way are recorded. Held messages stay in `$delayed`. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) this.options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#appender.stopRetrying();
    await Promise.allSettled([...this.#releasing]);
    await this.#appender.drained();
    await this.#projection.close();
  }
}

function encode(id: string, message: Message, due: number, now: number): RecordInput {
  const base = messageToRecord(message);
  return {
    key: Buffer.from(id),
    value: Buffer.concat([VALUE_MARK, message.payload]),
    headers: [...(base.headers ?? []), { key: TOPIC_HEADER, value: Buffer.from(message.topic) }, { key: DUE_HEADER, value: Buffer.from(String(due)) }],
    timestamp: now,
  };
}

/** The held message a record describes; undefined for a tombstone or a record this version cannot read. */
function decode(id: string, record: JournalRecord): Pending | undefined {
  if (record.value === null || record.value.length === 0) return undefined;
  let topic: string | undefined;
  let due: number | undefined;
  for (const header of record.headers) {
    if (header.key === TOPIC_HEADER) topic = header.value.toString('utf8');
    else if (header.key === DUE_HEADER) due = Number(header.value.toString('latin1'));
  }
  if (topic === undefined || due === undefined || !Number.isFinite(due)) return undefined;
  const message = recordToMessage({ ...record, key: Buffer.from(topic), value: record.value.subarray(1) });
  if (message === undefined) return undefined;
  return { id, due, sequence: record.offset, message };
}
