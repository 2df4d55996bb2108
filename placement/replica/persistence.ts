// The persistence boundary of a placement replica: what the I/O wrapper above a
// PlacementReplica writes, and what a durable implementation (node/: the Raft log on a journal
// shard, the applied state in LevelDB) must guarantee. The replica itself never calls these:
// it is pure, and hands the wrapper the work (see ReplicaReady in replica.ts); the wrapper calls
// them in the documented order.
import type { ConfState, Entry, HardState, Snapshot, Storage } from '../raft/index.js';
import type { Change, PlacementState } from '../metadata/index.js';

/** One Ready's worth of Raft state to make durable. */
export interface RaftLogUpdate {
  /** A snapshot received from the leader: replaces the whole log (written before `entries`). */
  readonly snapshot: Snapshot | null;
  /** Appended in order; any stored entry at or after the first one's index is replaced. */
  readonly entries: readonly Entry[];
  /** Written after the entries; null when unchanged. */
  readonly hardState: HardState | null;
  /** False when only the commit index moved: the write may be lazy (no fsync needed). */
  readonly mustSync: boolean;
}

/**
 * The Raft log, hard state and log snapshot of one replica.
 *
 * A durable implementation must guarantee:
 * - `storage` answers, as soon as `save` or `compact` returns (before its promise settles),
 *   what they wrote: the core reads its own log back through it in the same turn.
 * - `save(update)` resolves only once the update is durable (fsync when `mustSync`). The
 *   wrapper sends a Ready's messages only after that: a granted vote or an acknowledged append
 *   that a crash forgets allows two leaders in one term or loses a committed entry.
 * - Writes are applied in call order, and a crash keeps a prefix of them: the snapshot, then
 *   entries in index order (a torn last entry is dropped on recovery, never served), then the
 *   hard state. Nothing written by a `save` that resolved is ever lost.
 * - A damaged log (bad checksum before the tail) refuses to open rather than serve.
 * - `compact(snapshot, compactIndex)` is called only once the applied state at
 *   `snapshot.metadata.index` is durable (AppliedStatePersistence), so an implementation may
 *   serve `storage.snapshot()` from the applied state (LevelDB) instead of keeping the bytes;
 *   it records `snapshot` as the latest (what a lagging follower is sent) and may drop the
 *   entries up to `compactIndex` (<= the snapshot's index). A compaction lost in a crash is
 *   harmless. On restart the replica takes its state from `storage.snapshot()` when that is
 *   newer than the applied state, so the snapshot's data must be the state at its index.
 */
export interface RaftPersistence {
  /** What the Raft core reads: hard state, entries, the latest snapshot. */
  readonly storage: Storage;
  save(update: RaftLogUpdate): Promise<void>;
  compact(snapshot: Snapshot, compactIndex: number): Promise<void>;
}

/** The applied metadata as a restarted replica finds it. */
export interface AppliedState {
  /** The last Raft index reflected in `state` (0 before anything was applied). */
  readonly appliedIndex: number;
  readonly appliedTerm: number;
  /** The voter set as of appliedIndex (empty before the bootstrap entries are applied). */
  readonly confState: ConfState;
  readonly state: PlacementState;
}

/** What one apply step changed; the implementation may write `state` whole or only what changed. */
export interface AppliedUpdate extends AppliedState {
  /** True when `state` replaced the previous one wholesale (a snapshot was installed): rewrite everything. */
  readonly replaced: boolean;
  /** The records written since the previous update (node, shard, map, setting keys), in order. */
  readonly changes: readonly Change[];
  /** Client ids whose session (last sequence and result) changed since the previous update. */
  readonly sessions: readonly string[];
}

/**
 * The applied placement state of one replica (LevelDB in node/).
 *
 * A durable implementation must guarantee:
 * - `saveApplied` writes the state and its applied index (and term and voter set) in one
 *   atomic batch: after a crash the stored state is exactly the state as of the stored index,
 *   never a mix. The replica then replays the log from that index, and since applying is
 *   deterministic and idempotent per client session, the state comes out the same.
 * - Updates are applied in call order; a resolved `saveApplied` is durable. An unresolved one
 *   may be lost whole (the log replays it), never in part.
 * - `load` returns the last durable update (or the empty state at index 0 on a fresh disk).
 * - The applied index never runs ahead of the durable Raft log: the wrapper saves the Ready's
 *   log update before it applies, and the replica applies only committed entries.
 */
export interface AppliedStatePersistence {
  load(): AppliedState;
  saveApplied(update: AppliedUpdate): Promise<void>;
}
