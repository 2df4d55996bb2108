// How a journal error travels over gRPC: the codec shared by every service
// (base/grpc-status.ts: closest gRPC status, message as details, trailers `sl-code` and
// `sl-context`) with the journal's own table of gRPC statuses.
import { status as GrpcStatus, type StatusObject } from '@grpc/grpc-js';
import { errorToGrpcStatus, grpcStatusFor, type GrpcStatusTable, type ShardlineError } from '../../base/index.js';

export { statusToShardlineError } from '../../base/index.js';

/** The journal's codes → gRPC status codes; others go as INTERNAL. */
export const GRPC_STATUS_BY_CODE: GrpcStatusTable = {
  SL_JOURNAL_SHARD_NOT_FOUND: GrpcStatus.NOT_FOUND,
  SL_JOURNAL_SHARD_EXISTS: GrpcStatus.ALREADY_EXISTS,
  SL_JOURNAL_INVALID_SHARD_NAME: GrpcStatus.INVALID_ARGUMENT,
  SL_JOURNAL_INVALID_CONFIG: GrpcStatus.INVALID_ARGUMENT,
  SL_JOURNAL_INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  SL_JOURNAL_RECORD_TOO_LARGE: GrpcStatus.INVALID_ARGUMENT,
  SL_JOURNAL_KEY_REQUIRED: GrpcStatus.INVALID_ARGUMENT,
  SL_JOURNAL_OFFSET_OUT_OF_RANGE: GrpcStatus.OUT_OF_RANGE,
  // The writer was deposed: retrying the same call cannot succeed until it learns the new epoch.
  SL_JOURNAL_STALE_EPOCH: GrpcStatus.FAILED_PRECONDITION,
  // The journal is behind the disk: a retry after outstanding appends finish can succeed.
  SL_JOURNAL_OVERLOADED: GrpcStatus.RESOURCE_EXHAUSTED,
  SL_JOURNAL_DISK_FULL: GrpcStatus.RESOURCE_EXHAUSTED,
  SL_JOURNAL_NOT_A_JOURNAL: GrpcStatus.FAILED_PRECONDITION,
  SL_JOURNAL_UNSUPPORTED_FORMAT: GrpcStatus.FAILED_PRECONDITION,
  SL_JOURNAL_LOCKED: GrpcStatus.FAILED_PRECONDITION,
  // The journal is closing or the shard was deleted under the call: a retry gets a fresh answer
  // (SL_JOURNAL_SHARD_NOT_FOUND for a deleted shard).
  SL_JOURNAL_CLOSED: GrpcStatus.UNAVAILABLE,
  SL_JOURNAL_SERVER_STOPPING: GrpcStatus.UNAVAILABLE,
  SL_JOURNAL_UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  SL_JOURNAL_CORRUPT_BATCH: GrpcStatus.DATA_LOSS,
  SL_JOURNAL_IO: GrpcStatus.INTERNAL,
  // Replication (journal/replica/): the caller must go elsewhere or wait for an election.
  SL_REPL_NOT_LEADER: GrpcStatus.FAILED_PRECONDITION,
  SL_REPL_STALE_EPOCH: GrpcStatus.FAILED_PRECONDITION,
  SL_REPL_FETCH_OUT_OF_RANGE: GrpcStatus.OUT_OF_RANGE,
  SL_REPL_NOT_REPLICATED: GrpcStatus.FAILED_PRECONDITION,
  SL_REPL_NEEDS_FSYNC: GrpcStatus.FAILED_PRECONDITION,
  SL_REPL_REPLICATED_SHARD: GrpcStatus.FAILED_PRECONDITION,
};

export function grpcStatusForCode(code: string): GrpcStatus {
  return grpcStatusFor(GRPC_STATUS_BY_CODE, code);
}

/** The status a ShardlineError ends a journal call with. */
export function shardlineErrorToStatus(error: ShardlineError): StatusObject {
  return errorToGrpcStatus(error, GRPC_STATUS_BY_CODE);
}
