// placement/metadata: the placement state machine, a pure function over plain data.
//
//   let state = emptyState();                       // or restore(snapshotBytes)
//   for each committed normal entry:
//     const { state: next, result, changes } = apply(state, decodeCommand(entry.data));
//     state = next; answer the proposer with result; publish changes to watchers;
//   on compaction: snapshot(state) → bytes for the Raft snapshot.
//   leader, on its own timer: for id of expiredNodes(state, now) propose expire-node {nodeId: id, at: now}.
//
// placement/replica wires it to the Raft core (PlacementReplica); durable storage and gRPC are
// not built yet. See docs/placement.md "Metadata state machine" and "The placement replica".
export {
  ROLES,
  SHARD_STATES,
  REFUSAL_CODES,
  MQTT_NAMESPACE,
  mqttDataShardNames,
  emptyState,
  type Change,
  type ChangeKind,
  type CommandResult,
  type JsonValue,
  type NodeRecord,
  type PlacementState,
  type RefusalCode,
  type Role,
  type Session,
  type Setting,
  type ShardMap,
  type ShardRecord,
  type ShardState,
} from './types.js';
export { MAX_COMMAND_BYTES, MAX_LIST_LENGTH, MAX_NAME_LENGTH, MalformedCommandError, decodeCommand, encodeCommand, type CommandType, type PlacementCommand } from './command.js';
export { apply, expiredNodes, type ApplyOutput } from './state-machine.js';
export { SNAPSHOT_VERSION, SnapshotFormatError, restore, snapshot } from './snapshot.js';
