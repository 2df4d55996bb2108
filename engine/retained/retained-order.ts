// The order retained publishes reach the in-memory retained set. A retained publish is two
// writes (its data shard and `$retained`); whichever is durable first applies the message, so a
// subscriber that saw it live finds it retained when it subscribes next, and an older publish
// settling later never replaces a newer one of the same topic. (Applied on the data write alone,
// a message whose `$retained` write then fails is retained in memory until a restart; its
// publisher is told it failed.)
import type { Message } from '../messages/message.js';
import type { RetainedStore } from './retained-store.js';

export class RetainedOrder {
  /** Per topic: retained publishes whose two writes have not both settled, and the newest sequence applied. */
  readonly #inFlight = new Map<string, { count: number; applied: number }>();
  #sequence = 0;
  readonly #sequenceOf = new WeakMap<Message, number>();

  /** No retained publish has a write pending (a `$retained` snapshot may be taken). */
  get idle(): boolean {
    return this.#inFlight.size === 0;
  }

  /** Runs a retained publish's two writes; the message is applied by apply() as each lands. */
  async writing<T>(message: Message, writes: () => Promise<T>): Promise<T> {
    const inFlight = this.#inFlight.get(message.topic) ?? { count: 0, applied: 0 };
    inFlight.count += 1;
    this.#inFlight.set(message.topic, inFlight);
    this.#sequence += 1;
    this.#sequenceOf.set(message, this.#sequence);
    try {
      return await writes();
    } finally {
      inFlight.count -= 1;
      if (inFlight.count === 0) this.#inFlight.delete(message.topic);
    }
  }

  /** One of a retained message's writes is durable: into the set unless a newer publish of its topic is there already. */
  apply(message: Message, retained: RetainedStore): void {
    const sequence = this.#sequenceOf.get(message);
    const inFlight = this.#inFlight.get(message.topic);
    if (sequence !== undefined && inFlight !== undefined) {
      if (sequence <= inFlight.applied) return;
      inFlight.applied = sequence;
    }
    retained.set(message);
  }
}
