// journal/replication/: the replicated journal's pure protocol cores (docs/replication.md).
// Nothing here touches sockets, files or clocks; a driver (today only the simulator in sim/)
// feeds them events and carries out what they decide.
export { EpochHistory, type EpochEnd, type EpochEntry } from './epoch-history.js';
export { chooseLeader, electionQuorum, learnersCaughtUp, type ElectionCandidate } from './election.js';
export { ReplicaFollower, type FollowerAction, type FollowerLogView, type FollowerOptions } from './follower.js';
export { ReplicaLeader, type FetchDecision, type FollowerProgress, type LeaderOptions } from './leader.js';
export type * from './messages.js';
export { WriterTable, DEFAULT_MAX_WRITERS, DEFAULT_RECENT_PER_WRITER, type SequenceDecision, type StoredExtent, type WriterStamp } from './writer-table.js';
