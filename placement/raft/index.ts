// placement/raft: a pure Raft consensus core in the shape of etcd-io/raft.
//
// The driver loop (see Ready in types.ts for the obligations, in order):
//
//   const node = new RawNode({ id, storage, electionTick: 10, heartbeatTick: 1, random, ... });
//   every tick interval:   node.tick()
//   on a peer message:     node.step(message)
//   on client requests:    node.propose(data), node.proposeConfChange(change),
//                          node.readIndex(context), node.transferLeader(target)
//   whenever node.hasReady():
//     const rd = node.ready();
//     persist rd.snapshot, rd.entries, rd.hardState (fsync if rd.mustSync);
//     send rd.messages (for each 'snap' message, later node.reportSnapshot(to, failed));
//     apply rd.committedEntries (conf entries: node.applyConfChange(decodeConfChange(e.data)));
//     serve rd.readStates once applied up to their index;
//     node.advance(rd);
//
// Inputs: step(message), tick(), propose(data), proposeConfChange(change), readIndex(context),
// transferLeader(target), campaign(), reportUnreachable(id), reportSnapshot(id, failed),
// applyConfChange(change). Outputs: hasReady(), ready(), advance(ready), status().
//
// Nothing inside reads a clock, a random source, a file or a socket: time is ticks, randomness
// is RaftConfig.random, storage is the Storage interface (MemoryStorage for tests).
//
// Errors: ProposalDroppedError (a local propose/readIndex this node cannot take now; retry,
// maybe elsewhere), CompactedError/UnavailableError (from Storage). A broken invariant throws a
// plain Error starting "raft:" and the node must stop.
//
// Membership: the voter set lives in the log from index 1 (bootstrapEntries). A conf change
// takes effect when its committed entry is applied (etcd's choice): the driver calls
// applyConfChange while applying it. At most one conf change is unapplied at a time; a second
// proposal while one is pending is replaced by an empty normal entry. A leader removed from the
// voter set steps down when it applies its removal.
export { RawNode } from './raw-node.js';
export type { RaftConfig, UnsafeSwitches } from './config.js';
export { MemoryStorage, entrySize, type Storage } from './storage.js';
export { bootstrapEntries, bootstrapHardState } from './bootstrap.js';
export { committedIndex, majority, voteResult, type VoteResult } from './quorum.js';
export { CompactedError, ProposalDroppedError, SnapshotOutOfDateError, UnavailableError } from './errors.js';
export {
  EMPTY_HARD_STATE,
  EMPTY_SNAPSHOT,
  NO_NODE,
  decodeConfChange,
  encodeConfChange,
  isEmptyHardState,
  message,
  type ConfChange,
  type ConfState,
  type Entry,
  type EntryType,
  type HardState,
  type Message,
  type MessageType,
  type ReadState,
  type Ready,
  type Snapshot,
  type SnapshotMetadata,
  type SoftState,
  type StateRole,
} from './types.js';
