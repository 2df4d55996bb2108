// A simulated disk for one node's Raft state (hard state, log entries, snapshot).
//
// Two copies: `cache` is the page cache, a MemoryStorage the Raft core reads through; `durable`
// is what survives a crash. Every write (a received snapshot, an append, a hard state, a local
// snapshot with compaction) goes to the cache at once and is queued; sync() is the fsync that
// makes the queue durable. crash() loses the queue, except that the disk may have written back
// a prefix of it on its own, in order, and the last of those writes may be torn (an append
// keeps only some of its entries): what a kernel that flushes dirty pages in order may leave.
// Keeping more than was synced is allowed by the Ready contract; keeping less than was synced
// never happens here, so a lost acknowledged write is the driver's or the core's fault.
//
// recover() builds a fresh page cache from the durable copy, as a restarted process would read
// its files.
import { MemoryStorage, type Entry, type HardState, type Snapshot } from '../raft/index.js';
import type { Random } from './random.js';

type Write =
  | { kind: 'snapshot'; snapshot: Snapshot }
  | { kind: 'append'; entries: readonly Entry[] }
  | { kind: 'hardState'; hardState: HardState }
  | { kind: 'compact'; snapshot: Snapshot; compactIndex: number };

interface DurableState {
  hardState: HardState;
  snapshot: Snapshot | null;
  /** Entries after the snapshot (or from index 1), in index order. */
  entries: Entry[];
}

export class RaftDisk {
  cache = new MemoryStorage();
  private durable: DurableState = { hardState: { term: 0, vote: 0, commit: 0 }, snapshot: null, entries: [] };
  private queue: Write[] = [];

  /** The initial state of a bootstrapped voter, already durable. */
  bootstrap(entries: readonly Entry[], hardState: HardState): void {
    this.write({ kind: 'append', entries });
    this.write({ kind: 'hardState', hardState });
    this.sync();
  }

  get unsyncedWrites(): number {
    return this.queue.length;
  }

  applySnapshot(snapshot: Snapshot): void {
    this.write({ kind: 'snapshot', snapshot });
  }

  append(entries: readonly Entry[]): void {
    if (entries.length > 0) this.write({ kind: 'append', entries });
  }

  setHardState(hardState: HardState): void {
    this.write({ kind: 'hardState', hardState });
  }

  /** A snapshot of the local state machine at `index`, then the log compacted up to compactIndex. */
  snapshotAndCompact(index: number, voters: readonly number[], data: Uint8Array, compactIndex: number): void {
    const snapshot = this.cache.createSnapshot(index, { voters }, data);
    this.cache.compact(compactIndex);
    this.queue.push({ kind: 'compact', snapshot, compactIndex });
  }

  sync(): void {
    for (const write of this.queue) applyDurable(this.durable, write);
    this.queue = [];
  }

  /** Power loss: a random in-order prefix of the unsynced writes reaches the disk, the last one maybe torn. */
  crash(random: Random): { kept: number; lost: number; torn: boolean } {
    const kept = random.int(this.queue.length + 1);
    let torn = false;
    for (let i = 0; i < kept; i++) {
      let write = this.queue[i] as Write;
      if (i === kept - 1 && write.kind === 'append' && write.entries.length > 1 && random.chance(0.5)) {
        write = { kind: 'append', entries: write.entries.slice(0, random.intBetween(1, write.entries.length - 1)) };
        torn = true;
      }
      applyDurable(this.durable, write);
    }
    const lost = this.queue.length - kept;
    this.queue = [];
    return { kept, lost, torn };
  }

  /** The page cache a restarted node reads: exactly the durable state. */
  recover(): MemoryStorage {
    const storage = new MemoryStorage();
    const { snapshot, entries, hardState } = this.durable;
    if (snapshot !== null) storage.applySnapshot(snapshot);
    storage.append(entries);
    storage.setHardState(hardState);
    this.cache = storage;
    return storage;
  }

  /** The durable snapshot (null before the first), for rebuilding the state machine at restart. */
  durableSnapshot(): Snapshot | null {
    return this.durable.snapshot;
  }

  private write(write: Write): void {
    switch (write.kind) {
      case 'snapshot':
        this.cache.applySnapshot(write.snapshot);
        break;
      case 'append':
        this.cache.append(write.entries);
        break;
      case 'hardState':
        this.cache.setHardState(write.hardState);
        break;
      case 'compact':
        throw new Error('compaction goes through snapshotAndCompact');
    }
    this.queue.push(write);
  }
}

function applyDurable(state: DurableState, write: Write): void {
  switch (write.kind) {
    case 'snapshot':
      state.snapshot = write.snapshot;
      state.entries = [];
      return;
    case 'hardState':
      state.hardState = write.hardState;
      return;
    case 'compact':
      state.snapshot = write.snapshot;
      state.entries = state.entries.filter((entry) => entry.index > write.compactIndex);
      return;
    case 'append': {
      const first = write.entries[0];
      if (first === undefined) return;
      const floor = state.snapshot?.metadata.index ?? 0;
      // Same rule as MemoryStorage.append: replace everything from the first new index on.
      const kept = state.entries.filter((entry) => entry.index < first.index);
      state.entries = [...kept, ...write.entries.filter((entry) => entry.index > floor)];
      return;
    }
  }
}
