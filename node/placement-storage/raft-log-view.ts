// The in-memory view of the placement Raft log: what the Raft core reads (the Storage
// interface, with MemoryStorage's semantics) and what replaying the journal shard rebuilds.
// Pure: records in, state out. The same `apply` serves replay at open and every completed save,
// so what a running voter serves is exactly what a restart would rebuild from its files.
//
// State: the hard state, the latest snapshot (metadata and data: the data is what a lagging
// follower is sent), the compacted prefix's last (index, term), and the entries after it.
// Invariants after every whole batch (checked by `finish` at open): indices are dense from
// firstIndex to lastIndex, terms never go down along the log, the snapshot covers the compacted
// prefix (snapshot index ≥ firstIndex - 1), and the hard state commits nothing past lastIndex.
import {
  CompactedError,
  EMPTY_HARD_STATE,
  EMPTY_SNAPSHOT,
  UnavailableError,
  entrySize,
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
  type Storage,
} from '../../placement/raft/index.js';
import type { RaftLogRecord } from './raft-log-record.js';

/** A record that does not fit the log; the caller codes it with the record's journal offset. */
export class ViewViolation extends Error {
  constructor(
    readonly kind: 'gap' | 'snapshot' | 'commit',
    readonly why: string,
  ) {
    super(why);
    this.name = 'ViewViolation';
  }
}

export class RaftLogView implements Storage {
  hardState: HardState = EMPTY_HARD_STATE;
  latestSnapshot: Snapshot = EMPTY_SNAPSHOT;
  /** Index and term of the last compacted entry (0, 0 for a log that starts at index 1). */
  prefixIndex = 0;
  prefixTerm = 0;
  /** entries[i].index === prefixIndex + 1 + i. */
  stored: Entry[] = [];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.latestSnapshot.metadata.confState };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo <= this.prefixIndex) throw new CompactedError(lo);
    if (hi > this.lastIndex() + 1) throw new Error(`raft: entries(${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    if (this.stored.length === 0) throw new UnavailableError(lo);
    const slice = this.stored.slice(lo - this.prefixIndex - 1, hi - this.prefixIndex - 1);
    let size = 0;
    let count = 0;
    // At least one entry, then as many as fit in maxBytes (MemoryStorage's limitSize).
    while (count < slice.length) {
      size += entrySize(slice[count]!);
      if (count > 0 && size > maxBytes) break;
      count += 1;
    }
    return slice.slice(0, count);
  }

  term(i: number): number {
    if (i < this.prefixIndex) throw new CompactedError(i);
    if (i === this.prefixIndex) return this.prefixTerm;
    const entry = this.stored[i - this.prefixIndex - 1];
    if (entry === undefined) throw new UnavailableError(i);
    return entry.term;
  }

  firstIndex(): number {
    return this.prefixIndex + 1;
  }

  lastIndex(): number {
    return this.prefixIndex + this.stored.length;
  }

  snapshot(): Snapshot {
    return this.latestSnapshot;
  }

  /** Applies one record; throws ViewViolation when it does not fit (damage or a writer's bug). */
  apply(record: RaftLogRecord): void {
    switch (record.kind) {
      case 'entry':
        this.applyEntry(record.entry);
        return;
      case 'hardState':
        this.hardState = record.hardState;
        return;
      case 'snapshotInstall': {
        const { index, term } = record.snapshot.metadata;
        this.checkNewer(index);
        this.latestSnapshot = record.snapshot;
        this.prefixIndex = index;
        this.prefixTerm = term;
        this.stored = [];
        return;
      }
      case 'snapshotLocal': {
        const { index, term } = record.snapshot.metadata;
        this.checkNewer(index);
        if (index < this.prefixIndex || index > this.lastIndex()) {
          throw new ViewViolation('snapshot', `local snapshot at ${index} lies outside the stored log [${this.prefixIndex}, ${this.lastIndex()}]`);
        }
        if (this.term(index) !== term) throw new ViewViolation('snapshot', `local snapshot at ${index} has term ${term}, the entry there has term ${this.term(index)}`);
        this.latestSnapshot = record.snapshot;
        return;
      }
      case 'checkpoint':
        this.hardState = EMPTY_HARD_STATE;
        this.latestSnapshot = EMPTY_SNAPSHOT;
        this.prefixIndex = record.index;
        this.prefixTerm = record.term;
        this.stored = [];
        return;
    }
  }

  /** The checks that hold only between batches (a checkpoint's batch fixes them up at its end). */
  finish(): void {
    if (this.prefixIndex > 0 && this.latestSnapshot.metadata.index < this.prefixIndex) {
      throw new ViewViolation('gap', `entries up to ${this.prefixIndex} are compacted, but the latest snapshot is at ${this.latestSnapshot.metadata.index}`);
    }
    if (this.hardState.commit > this.lastIndex()) {
      throw new ViewViolation('commit', `hard state commit ${this.hardState.commit} is past the last entry ${this.lastIndex()}`);
    }
  }

  private applyEntry(entry: Entry): void {
    if (entry.index <= this.prefixIndex) throw new ViewViolation('gap', `entry ${entry.index} lies in the compacted prefix (up to ${this.prefixIndex})`);
    if (entry.index > this.lastIndex() + 1) throw new ViewViolation('gap', `entry ${entry.index} follows the last entry ${this.lastIndex()}: indices ${this.lastIndex() + 1}..${entry.index - 1} are missing`);
    const previousTerm = this.term(entry.index - 1);
    if (entry.term < previousTerm) throw new ViewViolation('gap', `entry ${entry.index} has term ${entry.term}, below the term ${previousTerm} of the entry before it`);
    // Appending at an index already held drops that entry and every later one: the overwrite
    // of a conflicting suffix.
    this.stored.length = entry.index - this.prefixIndex - 1;
    this.stored.push(entry);
  }

  private checkNewer(index: number): void {
    const current = this.latestSnapshot.metadata.index;
    if (index <= current) throw new ViewViolation('snapshot', `snapshot at ${index} is not newer than the stored one at ${current}`);
  }
}
