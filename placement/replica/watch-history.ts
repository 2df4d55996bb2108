// The bounded in-memory history of changes a replica keeps for watchers.
//
// Invariant: the history holds every change with a revision above `floor`, in revision order,
// and nothing at or below it. `floor` rises when old changes are dropped to stay within
// `capacity`, and jumps when the whole state is replaced (a snapshot installed, a restart from
// the applied state): the changes before that are unknown here. A watcher asking from a
// revision at or below the floor might miss a change, so it is told `revision-compacted` and
// must re-read the whole state, then watch from that state's revision + 1.
import type { Change } from '../metadata/index.js';

export type WatchAnswer =
  /** Every change with a revision in [fromRevision, revision], in order; revision is the replica's current one. */
  | { readonly status: 'ok'; readonly changes: readonly Change[]; readonly revision: number }
  /** Changes from `fromRevision` on are no longer all kept: re-read the state, then watch from its revision + 1. */
  | { readonly status: 'revision-compacted'; readonly fromRevision: number; readonly oldestRevision: number };

export class WatchHistory {
  private changes: Change[] = [];
  private floor: number;
  private revision: number;

  /** `revision`: the state's revision when the history starts (nothing before it is known). */
  constructor(
    readonly capacity: number,
    revision: number,
  ) {
    if (!Number.isInteger(capacity) || capacity <= 0) throw new Error(`placement: watch history capacity must be a positive integer, got ${capacity}`);
    this.floor = revision;
    this.revision = revision;
  }

  /** The changes of one applied command; `revision` is the state's revision after it (it rises for refusals too). */
  record(changes: readonly Change[], revision: number): void {
    if (revision < this.revision) throw new Error(`placement: revision went back from ${this.revision} to ${revision}`);
    for (const change of changes) {
      if (change.revision <= this.floor || change.revision > revision) throw new Error(`placement: change at revision ${change.revision} outside (${this.floor}, ${revision}]`);
      this.changes.push(change);
    }
    this.revision = revision;
    if (this.changes.length > this.capacity) {
      // Drop whole revisions only: a watcher must never get half of one command's changes.
      const cut = this.changes.length - this.capacity;
      let keepFrom = cut;
      const lastDropped = this.changes[cut - 1]!.revision;
      while (keepFrom < this.changes.length && this.changes[keepFrom]!.revision === lastDropped) keepFrom++;
      this.floor = lastDropped;
      this.changes = this.changes.slice(keepFrom);
    }
  }

  /** The state was replaced wholesale at `revision`: earlier changes are unknown. */
  reset(revision: number): void {
    this.changes = [];
    this.floor = revision;
    this.revision = revision;
  }

  since(fromRevision: number): WatchAnswer {
    // Revision 0 holds no change, so watching from 0 on a history that starts at 0 misses nothing.
    if (Math.max(fromRevision, 1) <= this.floor) return { status: 'revision-compacted', fromRevision, oldestRevision: this.floor + 1 };
    let low = 0;
    let high = this.changes.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.changes[middle]!.revision < fromRevision) low = middle + 1;
      else high = middle;
    }
    return { status: 'ok', changes: this.changes.slice(low), revision: this.revision };
  }
}
