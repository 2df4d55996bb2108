// The Raft log as the core sees it: a stable prefix in Storage followed by an unstable suffix
// (entries and possibly a snapshot) not yet persisted by the driver.
//
// Invariants: applied <= committed <= lastIndex; committed entries are never truncated (a
// conflict at or below the commit index throws: it means a broken leader or a lost disk);
// entries below `unstable.offset` are in storage.
import { CompactedError, UnavailableError } from './errors.js';
import { limitSize, type Storage } from './storage.js';
import type { Entry, Snapshot } from './types.js';

class UnstableLog {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];
  /** Index of entries[0]; everything below it is in storage (or in the unstable snapshot). */
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot === null ? undefined : this.snapshot.metadata.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === null ? undefined : this.snapshot.metadata.index;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      return this.snapshot !== null && this.snapshot.metadata.index === i ? this.snapshot.metadata.term : undefined;
    }
    return this.entries[i - this.offset]?.term;
  }

  /** The driver persisted entries up to (index, term); a term mismatch means they were replaced since. */
  stableTo(index: number, term: number): void {
    if (this.maybeTerm(index) !== term || index < this.offset) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapTo(index: number): void {
    if (this.snapshot !== null && this.snapshot.metadata.index === index) this.snapshot = null;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }

  truncateAndAppend(entries: readonly Entry[]): void {
    const from = entries[0]!.index;
    if (from === this.offset + this.entries.length) {
      this.entries.push(...entries);
    } else if (from <= this.offset) {
      // Replaces the whole unstable suffix; the storage tail past `from` is overwritten when the driver appends.
      this.offset = from;
      this.entries = [...entries];
    } else {
      this.entries = [...this.entries.slice(0, from - this.offset), ...entries];
    }
  }

  slice(lo: number, hi: number): Entry[] {
    if (lo < this.offset || hi > this.offset + this.entries.length || lo > hi) {
      throw new Error(`raft: unstable slice [${lo}, ${hi}) outside [${this.offset}, ${this.offset + this.entries.length})`);
    }
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  readonly unstable: UnstableLog;
  committed: number;
  applied: number;

  constructor(readonly storage: Storage) {
    const firstIndex = storage.firstIndex();
    this.unstable = new UnstableLog(storage.lastIndex() + 1);
    this.committed = firstIndex - 1;
    this.applied = firstIndex - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** The last index the driver has made durable (used as the leader's own match index). */
  stableLastIndex(): number {
    return this.unstable.snapshot === null ? this.unstable.offset - 1 : 0;
  }

  /** Term of entry i; 0 past the end; throws CompactedError below the first retained index. */
  term(i: number): number {
    const dummyIndex = this.firstIndex() - 1;
    if (i < dummyIndex) throw new CompactedError(i);
    if (i > this.lastIndex()) return 0;
    const unstableTerm = this.unstable.maybeTerm(i);
    if (unstableTerm !== undefined) return unstableTerm;
    try {
      return this.storage.term(i);
    } catch (error) {
      if (error instanceof UnavailableError) return 0;
      throw error;
    }
  }

  termOrZero(i: number): number {
    try {
      return this.term(i);
    } catch (error) {
      if (error instanceof CompactedError) return 0;
      throw error;
    }
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  matchTerm(i: number, term: number): boolean {
    try {
      return this.term(i) === term;
    } catch (error) {
      if (error instanceof CompactedError) return false;
      throw error;
    }
  }

  /** Raft §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Appends a leader's entries that follow (index, logTerm), truncating a conflicting suffix.
   * Returns the last index the leader's message vouches for, or undefined when our log does
   * not contain (index, logTerm) and the leader must back up.
   */
  maybeAppend(index: number, logTerm: number, committed: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNewIndex = index + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      if (conflict <= this.committed) throw new Error(`raft: entry ${conflict} conflicts with committed entry (committed ${this.committed})`);
      this.append(entries.slice(conflict - (index + 1)));
    }
    // Only what this message proved matches may be committed: entries past lastNewIndex may be stale.
    this.commitTo(Math.min(committed, lastNewIndex));
    return lastNewIndex;
  }

  append(entries: readonly Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const after = entries[0]!.index - 1;
    if (after < this.committed) throw new Error(`raft: append after ${after} is below committed ${this.committed}`);
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /** The index of the first entry whose term differs from ours (or that we lack), 0 if none. */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with its term. Used on a rejected
   * append to skip a whole run of entries of a term in one round trip (thesis §5.3's
   * optimisation, as etcd does it) instead of backing up one entry at a time.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (; index > 0; index--) {
      let ourTerm: number;
      try {
        ourTerm = this.term(index);
      } catch (error) {
        if (error instanceof CompactedError) return { index, term: 0 };
        throw error;
      }
      if (ourTerm <= term) return { index, term: ourTerm };
    }
    return { index: 0, term: 0 };
  }

  commitTo(toCommit: number): void {
    if (toCommit <= this.committed) return;
    if (toCommit > this.lastIndex()) throw new Error(`raft: commit ${toCommit} is past the last index ${this.lastIndex()}`);
    this.committed = toCommit;
  }

  /** Commits up to maxIndex only if that entry is of the leader's current term (Raft §5.4.2). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    if (index > this.committed || index < this.applied) {
      throw new Error(`raft: applied ${index} outside [${this.applied}, ${this.committed}]`);
    }
    this.applied = index;
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }

  unstableEntries(): Entry[] {
    return [...this.unstable.entries];
  }

  hasNextCommittedEntries(): boolean {
    const from = Math.max(this.applied + 1, this.firstIndex());
    return this.committed + 1 > from;
  }

  nextCommittedEntries(): Entry[] {
    const from = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 <= from) return [];
    return this.slice(from, this.committed + 1, Number.MAX_SAFE_INTEGER);
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== null;
  }

  /** Entries from lo to the end, limited to maxBytes (but at least one). */
  entries(lo: number, maxBytes: number): Entry[] {
    if (lo > this.lastIndex()) return [];
    return this.slice(lo, this.lastIndex() + 1, maxBytes);
  }

  /** Entries [lo, hi) from storage then the unstable suffix; throws CompactedError below firstIndex. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo > hi) throw new Error(`raft: invalid slice ${lo} > ${hi}`);
    if (lo < this.firstIndex()) throw new CompactedError(lo);
    if (hi > this.lastIndex() + 1) throw new Error(`raft: slice [${lo}, ${hi}) past last index ${this.lastIndex()}`);
    if (lo === hi) return [];
    let result: Entry[] = [];
    const offset = this.unstable.offset;
    if (lo < offset) {
      const storedHi = Math.min(hi, offset);
      const stored = this.storage.entries(lo, storedHi, maxBytes);
      if (stored.length < storedHi - lo) return stored;
      result = stored;
    }
    if (hi > offset) {
      result = [...result, ...this.unstable.slice(Math.max(lo, offset), hi)];
    }
    return limitSize(result, maxBytes);
  }

  restore(snapshot: Snapshot): void {
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }
}
