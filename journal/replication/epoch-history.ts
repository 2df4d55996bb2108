// A replica's leader-epoch history (Kafka's leader-epoch checkpoint): for each epoch that wrote
// records into this log, the offset of its first record. A batch carries its epoch, so the
// history could be rebuilt by scanning the log; keeping it beside the log makes the epoch-end
// query (the truncation protocol's question) a lookup instead of a scan.

export interface EpochEntry {
  epoch: number;
  startOffset: number;
}

/** The answer to "where does epoch E end in your log?" (Kafka's OffsetsForLeaderEpoch). */
export interface EpochEnd {
  /** The largest epoch in the history that is <= the one asked for, or -1 if there is none. */
  epoch: number;
  /**
   * The first offset after that epoch's records: the next epoch's start offset, or the log end
   * when it is the latest epoch. 0 (nothing in common) when epoch is -1.
   */
  endOffset: number;
}

export class EpochHistory {
  private readonly entries: EpochEntry[] = [];

  static from(entries: readonly EpochEntry[]): EpochHistory {
    const history = new EpochHistory();
    for (const entry of entries) history.assign(entry.epoch, entry.startOffset);
    return history;
  }

  get latestEpoch(): number {
    return this.entries.at(-1)?.epoch ?? -1;
  }

  list(): EpochEntry[] {
    return this.entries.map((entry) => ({ ...entry }));
  }

  /**
   * Records that a batch of `epoch` starts at `startOffset`. Only the first batch of a new epoch
   * adds an entry; an epoch older than the latest is a caller bug (a log never goes back in
   * epoch), so it throws rather than leaving a history that answers queries wrongly.
   */
  assign(epoch: number, startOffset: number): void {
    const latest = this.entries.at(-1);
    if (latest !== undefined) {
      if (epoch === latest.epoch) return;
      if (epoch < latest.epoch) throw new RangeError(`epoch ${epoch} appended after epoch ${latest.epoch}`);
      if (startOffset < latest.startOffset) throw new RangeError(`epoch ${epoch} starts at ${startOffset}, before epoch ${latest.epoch} (${latest.startOffset})`);
    }
    this.entries.push({ epoch, startOffset });
  }

  /** The log was cut at `offset` (records >= offset are gone): epochs starting there go too. */
  truncateFrom(offset: number): void {
    while (this.entries.length > 0 && (this.entries.at(-1) as EpochEntry).startOffset >= offset) this.entries.pop();
  }

  /**
   * The epoch of the batch that holds `offset`, for an offset inside the log (below its end):
   * the latest entry starting at or before it; -1 when the history has none there.
   */
  epochAt(offset: number): number {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const entry = this.entries[i] as EpochEntry;
      if (entry.startOffset <= offset) return entry.epoch;
    }
    return -1;
  }

  /** The epoch-end query, answered against a log whose end is `logEnd`. */
  endOf(epoch: number, logEnd: number): EpochEnd {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const entry = this.entries[i] as EpochEntry;
      if (entry.epoch <= epoch) {
        const next = this.entries[i + 1];
        return { epoch: entry.epoch, endOffset: next === undefined ? logEnd : next.startOffset };
      }
    }
    return { epoch: -1, endOffset: 0 };
  }
}
