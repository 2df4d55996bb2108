// The durable storage of one placement voter in the shape PlacementServer takes: the replica's
// persistence interfaces (placement/replica/persistence.ts) over JournalRaftLog and
// LevelAppliedState. An adapter rather than a change to either side: the storage's own shape
// (a leader's snapshot in `save`, a local one through `createSnapshot`, `compact(index)` only
// behind a recorded snapshot, whole-state batches) is what its property and crash tests pin
// down, and the replica's shape is what its simulator checks; this file only translates.
//
// The three differences it bridges:
// - compact(snapshot, compactIndex): the storage compacts only behind a snapshot it recorded,
//   so the replica's snapshot is first recorded with createSnapshot (its data rides in the log,
//   what a lagging follower is sent), then the prefix is dropped. The same guards as
//   MemoryRaftPersistence: a leader's snapshot installed since the replica asked makes it moot.
// - load(): the replica reads the applied state synchronously in its constructor, once; LevelDB
//   reads are asynchronous, so openDurablePlacement reads it before the server is built (the
//   restart point of openPlacementStorage: the newer of the applied state and the log's own
//   snapshot) and load() hands out that copy (then the last state saved).
// - saveApplied(update): the storage writes the state whole (its metadata snapshot bytes) with
//   the applied index, term and voters in one LevelDB batch; `changes` and `sessions` are not
//   needed for that. Writing whole costs one snapshot() per apply cycle, linear in the state's
//   size: fine for metadata of a few thousand shards, and the place to write per key when not.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { SnapshotFormatError, emptyState, restore, snapshot as snapshotState, type PlacementState } from '../../placement/metadata/index.js';
import type { Snapshot, Storage } from '../../placement/raft/index.js';
import type { AppliedState, AppliedStatePersistence, AppliedUpdate, RaftLogUpdate, RaftPersistence } from '../../placement/replica/index.js';
import type { JournalRaftLog } from './journal-raft-log.js';
import type { LevelAppliedState } from './level-applied-state.js';
import { PlacementStorageErrors } from './errors.js';
import { openPlacementStorage, type PlacementStorage } from './placement-storage.js';
import { claimDataDirectory } from './voter-identity.js';

export interface DurablePlacementOptions {
  /** This voter's placement directory: `identity.json`, `raft/` (the Raft log's journal) and `applied/` (LevelDB) go under it; created when missing. */
  readonly dataDir: string;
  /** The voter's Raft id (PlacementServerOptions.nodeId); recorded at the first open and checked at every later one. */
  readonly nodeId: number;
  /** PlacementServerOptions.clusterId; recorded and checked like nodeId. */
  readonly clusterId: string;
  /** How long to wait for a previous owner's lock on the Raft log's journal (default 0: fail at once). */
  readonly lockWaitMs?: number;
  readonly logger?: Logger;
}

export interface DurablePlacement {
  /** PlacementServerOptions.raftPersistence. */
  readonly raftPersistence: RaftPersistence;
  /** PlacementServerOptions.appliedPersistence. */
  readonly appliedPersistence: AppliedStatePersistence;
  /** What the disk held at open (also logged at info): the state machine's restart point and the log's last index and hard state. */
  readonly recovered: { readonly appliedIndex: number; readonly lastIndex: number; readonly commit: number; readonly term: number };
  /** Closes both stores; call after PlacementServer.stop() resolved (no save may be in flight). */
  close(): Promise<void>;
}

/**
 * Opens (or creates) a voter's durable placement storage under `dataDir` and checks it: a
 * directory of another voter or cluster, a damaged Raft log or applied state, or two stores
 * that disagree, is refused with its SL_RAFT_* / SL_APPLIED_STATE_CORRUPT error and nothing is
 * served. Pass the result's persistences to PlacementServer.start and close() it after the
 * server stopped.
 */
export async function openDurablePlacement(options: DurablePlacementOptions): Promise<DurablePlacement> {
  await claimDataDirectory(options.dataDir, { nodeId: options.nodeId, clusterId: options.clusterId });
  const storage = await openPlacementStorage({
    directory: options.dataDir,
    ...(options.lockWaitMs === undefined ? {} : { lockWaitMs: options.lockWaitMs }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  // The restart point: the applied state, or the log's own snapshot when that is newer.
  const { restart } = storage;
  let state: PlacementState;
  try {
    state = restoreApplied(restart.state, options.dataDir);
  } catch (error) {
    await closeStorage(storage);
    throw error;
  }
  const appliedState: AppliedState = { appliedIndex: restart.appliedIndex, appliedTerm: restart.appliedTerm, confState: restart.confState, state };
  const { hardState } = storage.log.storage.initialState();
  const recovered = { appliedIndex: restart.appliedIndex, lastIndex: storage.log.storage.lastIndex(), commit: hardState.commit, term: hardState.term };
  options.logger?.info({ dataDir: options.dataDir, nodeId: options.nodeId, ...recovered }, 'placement storage opened');
  let closed = false;
  return {
    raftPersistence: new DurableRaftPersistence(storage.log),
    appliedPersistence: new DurableAppliedState(storage.applied, appliedState),
    recovered,
    close: async () => {
      if (closed) return;
      closed = true;
      await closeStorage(storage);
    },
  };
}

function restoreApplied(bytes: Uint8Array | undefined, dataDir: string): PlacementState {
  if (bytes === undefined) return emptyState();
  try {
    return restore(bytes);
  } catch (error) {
    if (!(error instanceof SnapshotFormatError)) throw error;
    throw PlacementStorageErrors.appliedStateCorrupt.withCause(error, {}, join(dataDir, 'applied'), `the state at the restart point does not restore: ${error.message}`);
  }
}

async function closeStorage(storage: PlacementStorage): Promise<void> {
  try {
    await storage.applied.close();
  } finally {
    await storage.log.close();
  }
}

class DurableRaftPersistence implements RaftPersistence {
  constructor(private readonly log: JournalRaftLog) {}

  get storage(): Storage {
    return this.log.storage;
  }

  // mustSync is not used: every save is fsynced, the commit-only ones too (on a follower about
  // one per write). The open refuses an applied state past the log's durable commit
  // (SL_RAFT_APPLIED_BEYOND_COMMIT), so the commit that lets an entry be applied must be on
  // disk before the applied state that follows it can be.
  save(update: RaftLogUpdate): Promise<void> {
    return this.log.save({
      entries: update.entries,
      ...(update.hardState === null ? {} : { hardState: update.hardState }),
      ...(update.snapshot === null ? {} : { snapshot: update.snapshot }),
    });
  }

  async compact(snapshot: Snapshot, compactIndex: number): Promise<void> {
    const { index } = snapshot.metadata;
    const storage = this.log.storage;
    // A leader's snapshot installed since the replica asked covers this one (or the log no
    // longer holds its index): nothing to record, and nothing of the log to drop for it.
    if (index <= storage.snapshot().metadata.index || index <= storage.firstIndex() - 1 || index > storage.lastIndex()) return;
    await this.log.createSnapshot(snapshot);
    const upTo = Math.min(compactIndex, index);
    if (upTo > this.log.storage.firstIndex() - 1) await this.log.compact(upTo);
  }
}

class DurableAppliedState implements AppliedStatePersistence {
  constructor(
    private readonly store: LevelAppliedState,
    private last: AppliedState,
  ) {}

  load(): AppliedState {
    return this.last;
  }

  async saveApplied(update: AppliedUpdate): Promise<void> {
    await this.store.saveApplied(update.appliedIndex, update.appliedTerm, update.confState, snapshotState(update.state));
    this.last = { appliedIndex: update.appliedIndex, appliedTerm: update.appliedTerm, confState: update.confState, state: update.state };
  }
}
