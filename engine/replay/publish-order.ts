// Publish order across data shards, for time-range replay.
//
// Each data shard is already in publish order for its own topics (offset order). Across shards
// there is no common offset, so a replay merges the shards by the record timestamp, which is the
// time the broker accepted the publish. Ties (same millisecond on two shards) go to the lower
// shard index, so two replays of the same range give the same sequence. Within one shard the
// offset order is never changed, even when the clock stepped back and a later record carries an
// earlier timestamp: per-topic order is the guarantee MQTT gives, the cross-shard order is the
// best the timestamps can tell.
//
// The merge is fed in pages: it can only decide the next item while every shard that may still
// have items has at least one buffered (otherwise that shard's next record might be earlier).
// `starved()` says which shards need another page before the merge can go on.

export interface Stamped {
  timestamp: number;
  offset: number;
}

interface Lane<T> {
  items: T[];
  head: number;
  /** More items may come for this shard (the reader has not reached its end of range). */
  more: boolean;
}

export class PublishOrderMerge<T extends Stamped> {
  readonly #lanes = new Map<number, Lane<T>>();

  /** `shards`: the shard indexes taking part, each starting with more = true. */
  constructor(shards: Iterable<number>) {
    for (const shard of [...shards].sort((a, b) => a - b)) this.#lanes.set(shard, { items: [], head: 0, more: true });
  }

  /** Appends a page of one shard's items (in offset order, after what was added before). */
  add(shard: number, items: readonly T[]): void {
    const lane = this.#lane(shard);
    if (lane.head > 0 && lane.head === lane.items.length) {
      lane.items = [];
      lane.head = 0;
    }
    for (const item of items) lane.items.push(item);
  }

  /** Whether more items may still be added for a shard (false: its range is read to the end). */
  setMore(shard: number, more: boolean): void {
    this.#lane(shard).more = more;
  }

  hasMore(shard: number): boolean {
    return this.#lane(shard).more;
  }

  /** Shards whose buffer is empty while more may come: the merge waits for them. */
  starved(): number[] {
    const out: number[] = [];
    for (const [shard, lane] of this.#lanes) if (lane.more && lane.head === lane.items.length) out.push(shard);
    return out;
  }

  /** Nothing buffered and nothing more to come. */
  get done(): boolean {
    for (const lane of this.#lanes.values()) if (lane.more || lane.head < lane.items.length) return false;
    return true;
  }

  /** Items buffered and not yet taken. */
  get buffered(): number {
    let count = 0;
    for (const lane of this.#lanes.values()) count += lane.items.length - lane.head;
    return count;
  }

  /**
   * The next item in publish order with its shard, or undefined when the merge cannot decide
   * (a shard is starved) or is done.
   */
  take(): { shard: number; item: T } | undefined {
    let best: Lane<T> | undefined;
    let bestShard = -1;
    let bestItem: T | undefined;
    for (const [shard, lane] of this.#lanes) {
      if (lane.head === lane.items.length) {
        if (lane.more) return undefined;
        continue;
      }
      const item = lane.items[lane.head] as T;
      // Lanes are visited in shard order, so a strict comparison keeps the lower shard on ties.
      if (bestItem === undefined || item.timestamp < bestItem.timestamp) {
        best = lane;
        bestShard = shard;
        bestItem = item;
      }
    }
    if (best === undefined || bestItem === undefined) return undefined;
    best.head += 1;
    if (best.head === best.items.length) {
      best.items = [];
      best.head = 0;
    }
    return { shard: bestShard, item: bestItem };
  }

  #lane(shard: number): Lane<T> {
    const lane = this.#lanes.get(shard);
    if (lane === undefined) throw new Error(`shard ${shard} is not part of this merge`);
    return lane;
  }
}
