// Idempotent appends (docs/replication.md, "Idempotent appends"): which sequence of each writer
// a replicated shard's log holds, so a leader stores a retried append once and keeps each
// writer's appends in the order it made them, whatever order the calls arrive in.
//
// A writer (a broker's PlacedShardStore) numbers its appends to a shard 0, 1, 2, ... under a
// writer id unique in the cluster, in the manner of Kafka's idempotent producer (KIP-98). Each
// append also says `ackedBelow`: every sequence below it has been answered to the writer (so it
// is committed, or the writer gave up on it and uses a new id from then on). The rule, for an
// append of sequence s:
//
//   expected = max(last + 1, ackedBelow) for a writer the table knows, ackedBelow otherwise;
//   s == expected              -> append (and remember s as the writer's last);
//   s <  expected, remembered  -> a duplicate: answer with the offsets of the stored batch
//                                 ('in-progress' while its local write has not finished);
//   s >  expected              -> out of sequence: an earlier append of the writer is missing,
//                                 the writer sends this one again later;
//   s <  expected, forgotten   -> out of sequence too (the writer only resends unanswered appends,
//                                 which the table remembers while it remembers the writer).
//
// Why ackedBelow: a leader that does not know the writer (new, forgotten, or whose batches a
// truncation removed) must not take a later append of a pipeline before an earlier one it has
// not seen; the earliest unanswered append is the only one it may start from. And a table that
// knows less than the writer (compaction removed the header of a batch) is brought forward.
//
// The table mirrors the log: every batch appended (by the leader, or copied by a follower)
// passes through `begin`/`stored` or `observe`, every truncation through `truncateFrom`, so a
// replica that becomes leader already holds the table of its log. Bounded: `maxWriters` writers
// per shard (the one that appended least recently is forgotten first) and `recentPerWriter`
// sequences per writer, which must be at least the appends a writer keeps in flight per shard.
//
// Pure: no clock, no I/O; the caller orders begin → the log write → stored/failed.

/** Where a batch is in the log. */
export interface StoredExtent {
  readonly baseOffset: number;
  readonly lastOffset: number;
}

/** What an idempotent append carries. */
export interface WriterStamp {
  /** The writer's id, unique in the cluster, 0 ≤ id < 2^53. */
  readonly id: number;
  /** The append's place in the writer's appends to this shard, 0 ≤ sequence < 2^32. */
  readonly sequence: number;
  /** Every sequence below this has been answered to the writer. */
  readonly ackedBelow: number;
}

export type SequenceDecision =
  | { readonly kind: 'append' }
  | { readonly kind: 'duplicate'; readonly extent: StoredExtent }
  | { readonly kind: 'in-progress' }
  | { readonly kind: 'out-of-sequence'; readonly expected: number };

export const DEFAULT_MAX_WRITERS = 1024;
export const DEFAULT_RECENT_PER_WRITER = 16;

interface Entry {
  readonly sequence: number;
  /** null while the local write of the batch has not finished. */
  extent: StoredExtent | null;
}

interface Writer {
  last: number;
  /** The newest sequences, oldest first, at most recentPerWriter. */
  recent: Entry[];
}

export class WriterTable {
  /** Map order is recency order: a writer is moved to the end when it appends. */
  readonly #writers = new Map<number, Writer>();

  constructor(
    readonly maxWriters = DEFAULT_MAX_WRITERS,
    readonly recentPerWriter = DEFAULT_RECENT_PER_WRITER,
  ) {}

  get size(): number {
    return this.#writers.size;
  }

  /** The last sequence of the writer the log holds (or is writing), undefined when not known. */
  lastSequence(id: number): number | undefined {
    return this.#writers.get(id)?.last;
  }

  decide(stamp: WriterStamp): SequenceDecision {
    const writer = this.#writers.get(stamp.id);
    const expected = writer === undefined ? stamp.ackedBelow : Math.max(writer.last + 1, stamp.ackedBelow);
    if (stamp.sequence === expected) return { kind: 'append' };
    if (stamp.sequence < expected) {
      const entry = writer?.recent.find((candidate) => candidate.sequence === stamp.sequence);
      if (entry !== undefined) return entry.extent === null ? { kind: 'in-progress' } : { kind: 'duplicate', extent: entry.extent };
    }
    return { kind: 'out-of-sequence', expected };
  }

  /** The leader is about to write this append (decide said 'append'): its sequence is taken. */
  begin(id: number, sequence: number): void {
    this.#put(id, sequence, null);
  }

  /** The append begun with this sequence is in the log at `extent`. */
  stored(id: number, sequence: number, extent: StoredExtent): void {
    const entry = this.#writers.get(id)?.recent.find((candidate) => candidate.sequence === sequence);
    if (entry !== undefined && entry.extent === null) entry.extent = extent;
  }

  /**
   * The local write of this sequence failed, so it is not in the log, nor anything the writer
   * appended after it (a failed write fails every append queued behind it).
   */
  failed(id: number, sequence: number): void {
    const writer = this.#writers.get(id);
    const entry = writer?.recent.find((candidate) => candidate.sequence === sequence);
    if (writer === undefined || entry === undefined || entry.extent !== null) return;
    this.#cut(id, writer, (candidate) => candidate.sequence >= sequence);
  }

  /** A batch of the writer found in the log (a follower's copy, or a scan on open). */
  observe(id: number, sequence: number, extent: StoredExtent): void {
    this.#put(id, sequence, extent);
  }

  /** The log now ends at `offset`: batches from there on are gone, and appends still being written. */
  truncateFrom(offset: number): void {
    for (const [id, writer] of [...this.#writers]) this.#cut(id, writer, (entry) => entry.extent === null || entry.extent.baseOffset >= offset);
  }

  /** Forgets every writer (the log was emptied). */
  clear(): void {
    this.#writers.clear();
  }

  #put(id: number, sequence: number, extent: StoredExtent | null): void {
    const writer = this.#writers.get(id) ?? { last: -1, recent: [] };
    this.#writers.delete(id);
    // A sequence at or below one remembered can only come from a log that went back (a new
    // writer history after a truncation the table did not see): what follows it is not there.
    writer.recent = writer.recent.filter((entry) => entry.sequence < sequence);
    writer.recent.push({ sequence, extent });
    if (writer.recent.length > this.recentPerWriter) writer.recent.shift();
    writer.last = sequence;
    this.#writers.set(id, writer);
    if (this.#writers.size > this.maxWriters) {
      const oldest = this.#writers.keys().next().value as number;
      this.#writers.delete(oldest);
    }
  }

  /**
   * Removes the entries `gone` selects. A writer left with none is forgotten: its remaining
   * batches are older than every append it can still resend, and ackedBelow restarts it.
   */
  #cut(id: number, writer: Writer, gone: (entry: Entry) => boolean): void {
    const kept = writer.recent.filter((entry) => !gone(entry));
    if (kept.length === writer.recent.length) return;
    const newest = kept.at(-1);
    if (newest === undefined) {
      this.#writers.delete(id);
      return;
    }
    writer.recent = kept;
    writer.last = newest.sequence;
  }
}
