// Deliveries waiting for room in a subscriber's in-flight window or its transport, counted in
// bytes: the stream that owns the queue compares `bytes` with its bound to decide whether to
// take more from the live feed or to fall back to reading the shard later.

/**
 * Queues share it until their first item (an idle session's queue stays empty). Frozen: a push
 * that missed the swap throws instead of leaking items from one queue into every other.
 */
const NO_ITEMS = Object.freeze([]) as unknown as unknown[];

export class DeliveryQueue<T> {
  #items = NO_ITEMS as T[];
  #head = 0;
  #bytes = 0;

  constructor(private readonly sizeOf: (item: T) => number) {}

  get length(): number {
    return this.#items.length - this.#head;
  }

  get bytes(): number {
    return this.#bytes;
  }

  push(item: T): void {
    if (this.#items === (NO_ITEMS as T[])) this.#items = [];
    this.#items.push(item);
    this.#bytes += this.sizeOf(item);
  }

  /** Puts an item back in front (a requeued delivery goes out before what waited behind it). */
  unshift(item: T): void {
    if (this.#head > 0) {
      this.#head -= 1;
      this.#items[this.#head] = item;
    } else {
      if (this.#items === (NO_ITEMS as T[])) this.#items = [];
      this.#items.unshift(item);
    }
    this.#bytes += this.sizeOf(item);
  }

  peek(): T | undefined {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head] as T;
    this.#head += 1;
    this.#bytes -= this.sizeOf(item);
    // Taking from the front by index is O(1); the array is cut back now and then so a long-lived
    // queue does not keep every item it ever held.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.#head; i < this.#items.length; i += 1) yield this.#items[i] as T;
  }

  clear(): void {
    this.#items = NO_ITEMS as T[];
    this.#head = 0;
    this.#bytes = 0;
  }
}
