// placement/replica: one placement voter, the Raft core wired to the metadata state machine.
// replica.ts documents the driver loop; persistence.ts the persistence contract a durable
// implementation must keep (node/: the Raft log on a journal shard, applied state in LevelDB).
export {
  DUTY_CLIENT_PREFIX,
  PlacementReplica,
  type AppliedEntry,
  type ApplyOutcome,
  type Compaction,
  type PlacementReplicaOptions,
  type ProposedCommand,
  type ReplicaReady,
  type ReplicaStatus,
  type ReplicaUnsafeSwitches,
} from './replica.js';
export type { Dropped, MembershipOutcome, NotLeader, ProposalOutcome, ReadOutcome, ReplicaAnswer } from './answers.js';
export type { AppliedState, AppliedStatePersistence, AppliedUpdate, RaftLogUpdate, RaftPersistence } from './persistence.js';
export { MemoryAppliedStatePersistence, MemoryRaftPersistence } from './memory-persistence.js';
export { WatchHistory, type WatchAnswer } from './watch-history.js';
