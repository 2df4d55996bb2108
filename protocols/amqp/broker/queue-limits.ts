// RabbitMQ's queue bounds that refuse rather than drop: x-overflow reject-publish(-dlx) and
// x-expires. Pure: the broker asks, with its own clock.
import type { QueuePolicy } from './queue-arguments.js';
import type { MessageQueue } from './queue.js';

/** A publish a queue refused (x-overflow reject-publish): nacked under confirms, but no failure of the store. */
export class PublishRejected extends Error {
  constructor(queue: string) {
    super(`queue '${queue}' is full (x-overflow reject-publish)`);
    this.name = 'PublishRejected';
  }
}

/**
 * Whether a message of `bodyBytes` would take the queue past x-max-length or x-max-length-bytes
 * (ready messages only, as RabbitMQ counts them), so reject-publish refuses it.
 */
export function wouldOverflow(policy: QueuePolicy, queue: Pick<MessageQueue, 'messageCount' | 'readyBytes'>, bodyBytes: number): boolean {
  const { maxLength, maxLengthBytes } = policy;
  return (maxLength !== undefined && queue.messageCount + 1 > maxLength) || (maxLengthBytes !== undefined && queue.readyBytes + bodyBytes > maxLengthBytes);
}

/**
 * x-expires: when a queue was last used (declared, read with basic.get, or consumed from) and
 * whether it has gone unused for its x-expires. A queue with consumers is in use all along.
 */
export class QueueUse {
  #lastUsed: number;

  constructor(
    private readonly expires: number | undefined,
    now: number,
  ) {
    this.#lastUsed = now;
  }

  touch(now: number): void {
    this.#lastUsed = now;
  }

  /** Whether the queue is due for deletion at `now`. */
  expired(now: number, consumers: number): boolean {
    if (this.expires === undefined) return false;
    if (consumers > 0) {
      this.#lastUsed = now;
      return false;
    }
    return now - this.#lastUsed >= this.expires;
  }
}
