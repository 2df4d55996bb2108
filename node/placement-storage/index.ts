// node/placement-storage: a placement voter's durable storage. The Raft log and hard state on
// a journal shard (JournalRaftLog), the applied state machine in LevelDB (LevelAppliedState),
// openPlacementStorage, which opens both and checks them against each other, and
// openDurablePlacement, the same in the shape PlacementServer takes. Design,
// record format and what is fsynced when: docs/placement.md, "Durable storage".
export { JournalRaftLog, RAFT_LOG_SHARD, DEFAULT_RAFT_LOG_SEGMENT_BYTES, type JournalRaftLogOptions, type RaftLogSave } from './journal-raft-log.js';
export { LevelAppliedState, type LevelAppliedStateOptions, type StoredAppliedState } from './level-applied-state.js';
export { openPlacementStorage, checkAppliedAgainstLog, type PlacementStorage, type PlacementStorageOptions } from './placement-storage.js';
export { PlacementStorageErrors } from './errors.js';
export { openDurablePlacement, type DurablePlacement, type DurablePlacementOptions } from './durable-placement.js';
