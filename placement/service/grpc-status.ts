// How a placement error travels over gRPC: the codec shared by every service
// (base/grpc-status.ts: closest gRPC status, message as details, trailers `sl-code` and
// `sl-context`, so NOT_LEADER's leader hint reaches the client in the context) with the
// placement service's own table of gRPC statuses.
import { status as GrpcStatus, type StatusObject } from '@grpc/grpc-js';
import { errorToGrpcStatus, type GrpcStatusTable, type ShardlineError } from '../../base/index.js';

export { statusToShardlineError } from '../../base/index.js';

/** The placement service's codes → gRPC status codes; others go as INTERNAL. */
export const PLACEMENT_GRPC_STATUS_BY_CODE: GrpcStatusTable = {
  SL_PLACEMENT_UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  // Another cluster or an unknown node: retrying the same call here cannot succeed.
  SL_PLACEMENT_WRONG_CLUSTER: GrpcStatus.FAILED_PRECONDITION,
  SL_PLACEMENT_UNKNOWN_NODE: GrpcStatus.PERMISSION_DENIED,
  SL_PLACEMENT_BAD_MESSAGE: GrpcStatus.INVALID_ARGUMENT,
  SL_PLACEMENT_MALFORMED_COMMAND: GrpcStatus.INVALID_ARGUMENT,
  SL_PLACEMENT_NOT_LEADER: GrpcStatus.FAILED_PRECONDITION,
  // The caller decides when to retry a membership change (after the other one is done).
  SL_PLACEMENT_CHANGE_IN_PROGRESS: GrpcStatus.ABORTED,
  SL_PLACEMENT_JOIN_CONFLICT: GrpcStatus.ALREADY_EXISTS,
  SL_PLACEMENT_QUORUM_AT_RISK: GrpcStatus.FAILED_PRECONDITION,
  SL_PLACEMENT_NOT_MEMBER: GrpcStatus.PERMISSION_DENIED,
  // Outcome unknown: a retry (same client id and sequence) elsewhere or later may succeed.
  SL_PLACEMENT_DROPPED: GrpcStatus.UNAVAILABLE,
  SL_PLACEMENT_STOPPING: GrpcStatus.UNAVAILABLE,
  SL_PLACEMENT_TIMEOUT: GrpcStatus.DEADLINE_EXCEEDED,
  SL_PLACEMENT_REVISION_COMPACTED: GrpcStatus.OUT_OF_RANGE,
  SL_PLACEMENT_WATCH_TOO_SLOW: GrpcStatus.RESOURCE_EXHAUSTED,
};

/** The status a ShardlineError ends a placement call with. */
export function shardlineErrorToStatus(error: ShardlineError): StatusObject {
  return errorToGrpcStatus(error, PLACEMENT_GRPC_STATUS_BY_CODE);
}
