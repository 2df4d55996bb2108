// The stable storage the Raft core reads from. The core never writes to it: the driver persists
// each Ready (entries, hard state, snapshot) and the core reads them back through this
// interface. MemoryStorage is the implementation for tests and the simulator; the durable one
// (a journal shard plus LevelDB) sits in a driver above.
//
// Invariant of MemoryStorage: `entries[0]` is a dummy holding the index and term of the last
// compacted entry (the snapshot's), so term(firstIndex - 1) is always answerable; this is what
// the leader needs to build the append that follows a snapshot.
import { CompactedError, SnapshotOutOfDateError, UnavailableError } from './errors.js';
import { EMPTY_HARD_STATE, EMPTY_SNAPSHOT, type ConfState, type Entry, type HardState, type Snapshot } from './types.js';

export interface Storage {
  /** The persisted hard state and the voter set of the latest snapshot. */
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries [lo, hi), at least one if any exist, then up to maxBytes (see entrySize). Throws CompactedError or UnavailableError. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry i, for i in [firstIndex - 1, lastIndex]. Throws CompactedError or UnavailableError. */
  term(i: number): number;
  firstIndex(): number;
  lastIndex(): number;
  /** The latest snapshot (its index is firstIndex - 1). */
  snapshot(): Snapshot;
}

/** The bytes an entry counts for in size limits: its payload plus a fixed header estimate. */
export function entrySize(entry: Entry): number {
  return entry.data.byteLength + 16;
}

/** The longest prefix within maxBytes, but never empty: one entry always makes progress. */
export function limitSize<T extends Entry>(entries: T[], maxBytes: number): T[] {
  if (entries.length === 0) return entries;
  let size = entrySize(entries[0]!);
  let count = 1;
  while (count < entries.length) {
    size += entrySize(entries[count]!);
    if (size > maxBytes) break;
    count++;
  }
  return count === entries.length ? entries : entries.slice(0, count);
}

export class MemoryStorage implements Storage {
  private hardState: HardState = EMPTY_HARD_STATE;
  private latestSnapshot: Snapshot = EMPTY_SNAPSHOT;
  private log: Entry[] = [{ term: 0, index: 0, type: 'normal', data: new Uint8Array(0) }];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.latestSnapshot.metadata.confState };
  }

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.dummy().index;
    if (lo <= offset) throw new CompactedError(lo);
    if (hi > this.lastIndex() + 1) throw new Error(`raft: entries(${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    if (this.log.length === 1) throw new UnavailableError(lo);
    return limitSize(this.log.slice(lo - offset, hi - offset), maxBytes);
  }

  term(i: number): number {
    const offset = this.dummy().index;
    if (i < offset) throw new CompactedError(i);
    const entry = this.log[i - offset];
    if (entry === undefined) throw new UnavailableError(i);
    return entry.term;
  }

  firstIndex(): number {
    return this.dummy().index + 1;
  }

  lastIndex(): number {
    return this.dummy().index + this.log.length - 1;
  }

  snapshot(): Snapshot {
    return this.latestSnapshot;
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    const current = this.latestSnapshot.metadata.index;
    if (snapshot.metadata.index <= current) throw new SnapshotOutOfDateError(snapshot.metadata.index, current);
    this.latestSnapshot = snapshot;
    this.log = [{ term: snapshot.metadata.term, index: snapshot.metadata.index, type: 'normal', data: new Uint8Array(0) }];
  }

  /**
   * Records a snapshot of the state machine as of applied index `index`. The entries stay until
   * compact(), so that slow followers can still be caught up from the log.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    const current = this.latestSnapshot.metadata.index;
    if (index <= current) throw new SnapshotOutOfDateError(index, current);
    if (index > this.lastIndex()) throw new Error(`raft: snapshot index ${index} beyond last index ${this.lastIndex()}`);
    const term = this.term(index);
    this.latestSnapshot = { metadata: { index, term, confState: { voters: [...confState.voters].sort((a, b) => a - b) } }, data };
    return this.latestSnapshot;
  }

  /** Drops the entries up to and including `compactIndex`, which must be covered by a snapshot. */
  compact(compactIndex: number): void {
    const offset = this.dummy().index;
    if (compactIndex <= offset) throw new CompactedError(compactIndex);
    if (compactIndex > this.lastIndex()) throw new Error(`raft: compact ${compactIndex} beyond last index ${this.lastIndex()}`);
    const term = this.term(compactIndex);
    this.log = [{ term, index: compactIndex, type: 'normal', data: new Uint8Array(0) }, ...this.log.slice(compactIndex - offset + 1)];
  }

  /** Appends entries, first truncating any stored entries from the first new index on. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return;
    const fresh = first > entries[0]!.index ? entries.slice(first - entries[0]!.index) : entries;
    const at = fresh[0]!.index - this.dummy().index;
    if (at > this.log.length) throw new Error(`raft: append at ${fresh[0]!.index} leaves a gap after ${this.lastIndex()}`);
    this.log = [...this.log.slice(0, at), ...fresh];
  }

  private dummy(): Entry {
    return this.log[0]!;
  }
}
