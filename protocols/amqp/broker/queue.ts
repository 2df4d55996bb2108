// One queue's messages and consumers, pure: the ready messages in order, the consumers in
// round-robin, and the rule for who gets the next message (the first consumer after the last
// one served that has room under its prefetch). Unacknowledged messages live with the channel
// that received them (channel.ts) and come back here when requeued. Also the message record of
// a durable queue's shard.
import { Reader, Writer } from '../codec/bytes.js';
import { decodeContentHeaderPayload, encodeContentHeaderPayload, type BasicProperties } from '../codec/content.js';

export interface QueuedMessage {
  /** Unique in its queue, ascending in arrival order; the record key in the queue's shard. */
  readonly id: number;
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: BasicProperties;
  readonly body: Buffer;
  /** Written to the queue's shard (a persistent message in a durable queue): settling it writes a tombstone. */
  readonly stored: boolean;
  redelivered: boolean;
  /** When it expires (x-message-ttl or its expiration property), ms since the epoch; kept through requeues. */
  readonly expiresAt?: number | undefined;
}

export interface MessageQueueOptions {
  now?: () => number;
  /** A message that expired at the head of the queue, removed (dead-lettered or dropped by the caller). */
  onExpired?: (message: QueuedMessage) => void;
}

export interface QueueConsumer {
  readonly tag: string;
  readonly noAck: boolean;
  readonly exclusive: boolean;
  /** Whether one more delivery fits its prefetch (and its channel's). */
  hasRoom(): boolean;
  deliver(message: QueuedMessage): void;
}

export class MessageQueue {
  /** Ready messages that arrived, in id order (from #head on). */
  #ready: QueuedMessage[] = [];
  #head = 0;
  /**
   * Requeued messages, in descending id order (the next one last, so taking it is a pop): each
   * is taken when its id is below the next arrival's, so it is back in its place without the
   * arrivals being copied.
   */
  #returned: QueuedMessage[] = [];
  #bytes = 0;
  readonly #consumers: QueueConsumer[] = [];
  #next = 0;
  #dispatching = false;

  readonly #now: () => number;
  readonly #onExpired: (message: QueuedMessage) => void;

  constructor(
    readonly name: string,
    options: MessageQueueOptions = {},
  ) {
    this.#now = options.now ?? Date.now;
    this.#onExpired = options.onExpired ?? (() => undefined);
  }

  get messageCount(): number {
    return this.#ready.length - this.#head + this.#returned.length;
  }

  /** Body bytes of the ready messages. */
  get readyBytes(): number {
    return this.#bytes;
  }

  get consumerCount(): number {
    return this.#consumers.length;
  }

  get consumers(): readonly QueueConsumer[] {
    return this.#consumers;
  }

  /** A message that arrived (durable already when the queue is): at the end, then dispatched. */
  enqueue(message: QueuedMessage): void {
    this.#ready.push(message);
    this.#bytes += message.body.length;
    this.dispatch();
  }

  /**
   * Messages given back (nack/reject with requeue, recover, a channel that closed): each goes
   * back to its place by id, marked redelivered, as RabbitMQ puts a requeued message back
   * where it was rather than at the tail.
   */
  requeue(messages: readonly QueuedMessage[]): void {
    if (messages.length === 0) return;
    for (const message of messages) {
      message.redelivered = true;
      this.#bytes += message.body.length;
    }
    const added = [...messages].sort((a, b) => a.id - b.id);
    const merged: QueuedMessage[] = [];
    let i = 0;
    for (const message of [...this.#returned].reverse()) {
      while (i < added.length && (added[i] as QueuedMessage).id < message.id) merged.push(added[i++] as QueuedMessage);
      merged.push(message);
    }
    while (i < added.length) merged.push(added[i++] as QueuedMessage);
    this.#returned = merged.reverse();
    this.dispatch();
  }

  /** The next ready message (basic.get), or undefined; expired ones at the head go first. */
  take(): QueuedMessage | undefined {
    this.expire();
    return this.#shift();
  }

  /**
   * Removes the expired messages at the head, as RabbitMQ does: one behind a message that
   * lives longer waits until it reaches the head (a queue's own TTL is the same for all, so
   * then the head is the oldest).
   */
  expire(): void {
    const now = this.#now();
    for (;;) {
      const head = this.#peek();
      if (head === undefined || head.expiresAt === undefined || head.expiresAt > now) return;
      this.#onExpired(this.#shift() as QueuedMessage);
    }
  }

  /** The next message in id order: the first returned one or the first arrival. */
  #peek(): QueuedMessage | undefined {
    const arrival = this.#ready[this.#head];
    const returned = this.#returned.at(-1);
    if (returned !== undefined && (arrival === undefined || returned.id < arrival.id)) return returned;
    return arrival;
  }

  #shift(): QueuedMessage | undefined {
    const returned = this.#returned.at(-1);
    if (returned !== undefined && this.#peek() === returned) {
      this.#returned.pop();
      this.#bytes -= returned.body.length;
      return returned;
    }
    if (this.#head >= this.#ready.length) return undefined;
    const message = this.#ready[this.#head] as QueuedMessage;
    this.#ready[this.#head] = undefined as unknown as QueuedMessage;
    this.#head += 1;
    this.#bytes -= message.body.length;
    if (this.#head > 1024 && this.#head * 2 > this.#ready.length) this.#compact();
    return message;
  }

  /** Removes every ready message (purge, delete); returns them. */
  drain(): QueuedMessage[] {
    const removed = [...this.#returned, ...this.#ready.slice(this.#head)].sort((a, b) => a.id - b.id);
    this.#returned = [];
    this.#ready = [];
    this.#head = 0;
    this.#bytes = 0;
    return removed;
  }

  addConsumer(consumer: QueueConsumer): void {
    this.#consumers.push(consumer);
    this.dispatch();
  }

  removeConsumer(tag: string, owner: (consumer: QueueConsumer) => boolean): QueueConsumer | undefined {
    const at = this.#consumers.findIndex((consumer) => consumer.tag === tag && owner(consumer));
    if (at < 0) return undefined;
    const [removed] = this.#consumers.splice(at, 1);
    if (this.#next > at) this.#next -= 1;
    return removed;
  }

  /**
   * Gives ready messages to consumers with room, round-robin, until none is ready or none has
   * room. Not re-entered: a delivery that frees room (a no-ack consumer) is served by the loop.
   */
  dispatch(): void {
    if (this.#dispatching) return;
    this.#dispatching = true;
    try {
      while (this.messageCount > 0 && this.#consumers.length > 0) {
        const consumer = this.#nextWithRoom();
        if (consumer === undefined) break;
        const message = this.take();
        if (message === undefined) break;
        consumer.deliver(message);
      }
    } finally {
      this.#dispatching = false;
    }
  }

  #nextWithRoom(): QueueConsumer | undefined {
    const count = this.#consumers.length;
    for (let step = 0; step < count; step += 1) {
      const at = (this.#next + step) % count;
      const consumer = this.#consumers[at] as QueueConsumer;
      if (consumer.hasRoom()) {
        this.#next = (at + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  #compact(): void {
    if (this.#head === 0) return;
    this.#ready = this.#ready.slice(this.#head);
    this.#head = 0;
  }
}

// A durable queue's shard holds one record per persistent message: key = the message id (8
// bytes, big-endian), value = exchange (short string), routing key (short string), the content
// header as on the wire (32-bit length first) and the body. Settling a message (ack, reject,
// purge) appends a tombstone under its key; the shard is compacted, so settled messages go.

export function messageRecordKey(id: number): Buffer {
  const key = Buffer.alloc(8);
  key.writeBigUInt64BE(BigInt(id));
  return key;
}

export function messageIdOf(key: Buffer): number {
  return Number(key.readBigUInt64BE(0));
}

export function encodeMessageRecord(message: Pick<QueuedMessage, 'exchange' | 'routingKey' | 'properties' | 'body'>): Buffer {
  const header = encodeContentHeaderPayload(60, BigInt(message.body.length), message.properties);
  const writer = new Writer(header.length + message.body.length + 600);
  writer.shortstr(message.exchange);
  writer.shortstr(message.routingKey);
  writer.u32(header.length);
  writer.bytes(header);
  writer.bytes(message.body);
  return writer.finish();
}

export function decodeMessageRecord(id: number, value: Buffer, expiresAt?: number): QueuedMessage {
  const reader = new Reader(value);
  const exchange = reader.shortstr();
  const routingKey = reader.shortstr();
  const header = decodeContentHeaderPayload(reader.take(reader.u32(), 'content header'));
  const body = Buffer.from(reader.take(reader.remaining, 'body'));
  return { id, exchange, routingKey, properties: header.properties, body, stored: true, redelivered: false, ...(expiresAt === undefined ? {} : { expiresAt }) };
}
