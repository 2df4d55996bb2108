// In-memory RaftPersistence and AppliedStatePersistence, for tests and single-process use.
// Everything written is "durable" at once (nothing survives the process anyway); the simulator
// models crashes with its own disk (placement/sim/raft-disk.ts) instead.
import { MemoryStorage, SnapshotOutOfDateError, type Snapshot } from '../raft/index.js';
import { emptyState } from '../metadata/index.js';
import type { AppliedState, AppliedStatePersistence, AppliedUpdate, RaftLogUpdate, RaftPersistence } from './persistence.js';

export class MemoryRaftPersistence implements RaftPersistence {
  readonly storage = new MemoryStorage();

  save(update: RaftLogUpdate): Promise<void> {
    this.saveNow(update);
    return Promise.resolve();
  }

  /** The synchronous body of save, for drivers that run a whole cycle in one turn (tests). */
  saveNow(update: RaftLogUpdate): void {
    if (update.snapshot !== null) this.storage.applySnapshot(update.snapshot);
    this.storage.append(update.entries);
    if (update.hardState !== null) this.storage.setHardState(update.hardState);
  }

  compact(snapshot: Snapshot, compactIndex: number): Promise<void> {
    this.compactNow(snapshot, compactIndex);
    return Promise.resolve();
  }

  compactNow(snapshot: Snapshot, compactIndex: number): void {
    const { index } = snapshot.metadata;
    // A snapshot received from the leader since the replica asked makes this one moot.
    if (index <= this.storage.firstIndex() - 1 || index > this.storage.lastIndex()) return;
    try {
      this.storage.createSnapshot(index, snapshot.metadata.confState, snapshot.data);
    } catch (error) {
      if (error instanceof SnapshotOutOfDateError) return;
      throw error;
    }
    if (compactIndex > this.storage.firstIndex() - 1) this.storage.compact(Math.min(compactIndex, index));
  }
}

export class MemoryAppliedStatePersistence implements AppliedStatePersistence {
  private stored: AppliedState = { appliedIndex: 0, appliedTerm: 0, confState: { voters: [] }, state: emptyState() };

  load(): AppliedState {
    return this.stored;
  }

  saveApplied(update: AppliedUpdate): Promise<void> {
    this.saveNow(update);
    return Promise.resolve();
  }

  saveNow(update: AppliedUpdate): void {
    if (update.appliedIndex < this.stored.appliedIndex) throw new Error(`placement: applied index went back from ${this.stored.appliedIndex} to ${update.appliedIndex}`);
    // The state is immutable, so keeping the object is an atomic copy of state and index.
    this.stored = { appliedIndex: update.appliedIndex, appliedTerm: update.appliedTerm, confState: update.confState, state: update.state };
  }
}
