// Which of a shard's records this broker appended itself, for a broker that follows the shard
// because other brokers write to it too (docs/deployment.md, "Scaling brokers"). No origin mark
// is stored: the journal's format and every record stay as they are. Instead the broker counts its
// own appends while they are in flight. A record the follower reads may be the broker's own whose
// acknowledgement has not come back yet; after every append in flight at that moment has settled,
// the broker knows all its own offsets up to that record, so the question has an answer. An append
// made later cannot hold the record: it was already in the journal. Pure: no I/O, no timers.

export class OwnAppends {
  /** Ids of appends begun and not yet settled, in the order begun. */
  readonly #pending = new Set<number>();
  #nextId = 1;
  /** Waiters for every append begun up to `upTo` to settle. */
  #waiters: Array<{ upTo: number; resolve: () => void }> = [];
  /** Offset ranges [start, end) of own durable records a follower has not passed yet. */
  #ranges: Array<[number, number]> = [];

  /** Own records are durable at baseOffset.. (kept until the follower passes them). */
  durable(baseOffset: number, count: number): void {
    if (count > 0) this.#ranges.push([baseOffset, baseOffset + count]);
  }

  /** Whether the record at `offset` is one of the own durable ones; forgets those below it. */
  holds(offset: number): boolean {
    this.#ranges = this.#ranges.filter(([, end]) => end > offset);
    return this.#ranges.some(([start, end]) => offset >= start && offset < end);
  }

  /** An append starts; returns its id for settled(). */
  began(): number {
    const id = this.#nextId;
    this.#nextId += 1;
    this.#pending.add(id);
    return id;
  }

  /** An append ended, durable or failed (what it held is known to its owner by now). */
  settled(id: number): void {
    if (!this.#pending.delete(id)) return;
    if (this.#waiters.length === 0) return;
    const oldest = this.#oldestPending();
    const ready = this.#waiters.filter((waiter) => oldest === undefined || oldest > waiter.upTo);
    if (ready.length === 0) return;
    this.#waiters = this.#waiters.filter((waiter) => !ready.includes(waiter));
    for (const waiter of ready) waiter.resolve();
  }

  /** True while any append is in flight. */
  get busy(): boolean {
    return this.#pending.size > 0;
  }

  /** Resolves once every append begun before this call has settled. */
  settledSoFar(): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve();
    const upTo = this.#nextId - 1;
    return new Promise((resolve) => this.#waiters.push({ upTo, resolve }));
  }

  #oldestPending(): number | undefined {
    // Ids enter in increasing order, so the first left is the oldest.
    for (const id of this.#pending) return id;
    return undefined;
  }
}
