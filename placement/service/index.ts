// placement/service: the placement group on the network. PlacementServer runs one voter
// (a PlacementReplica over the persistence it is given) behind the gRPC service of
// placement.proto; PlacementClient finds the leader, retries safely and follows the watch
// stream. docs/placement.md ("The service") describes both.
export { PlacementServer, DEFAULT_REPLICA_TUNING, type PlacementServerOptions } from './server.js';
export { PlacementClient, type ClientCommand, type PlacementClientOptions, type ProposeResult, type WatchEvent, type WatchSubscription } from './client.js';
export { PlacementErrors } from './errors.js';
export type { PlacementTls } from './credentials.js';
export { DEFAULT_PLACEMENT_GRPC_PORT, type StatusResponse, type MembersResponse } from './placement-proto.js';
export { READ_PARTS, type ReadPart, type ReadResult, type MapEntry, type SettingEntry } from './read-parts.js';
export { freeLoopbackPorts } from './free-ports.js';
