// How a placement error travels over gRPC: the journal service's convention
// (journal/server/grpc-status.ts, which placement/ may not import): a status with the closest
// gRPC code, the message as details, trailing metadata `sl-code` and `sl-context` (JSON). The
// client rebuilds the same ShardlineError, so NOT_LEADER's leader hint reaches it in context.
import { Metadata, status as GrpcStatus, type StatusObject } from '@grpc/grpc-js';
import { ShardlineError, type ErrorContext } from '../../base/index.js';

export const CODE_METADATA_KEY = 'sl-code';
export const CONTEXT_METADATA_KEY = 'sl-context';
const MESSAGE_MAX_CHARS = 2048;
const CONTEXT_MAX_CHARS = 2048;

const STATUS_BY_CODE: Readonly<Record<string, GrpcStatus>> = {
  SL_PLACEMENT_UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  // Another cluster or an unknown node: retrying the same call here cannot succeed.
  SL_PLACEMENT_WRONG_CLUSTER: GrpcStatus.FAILED_PRECONDITION,
  SL_PLACEMENT_UNKNOWN_NODE: GrpcStatus.PERMISSION_DENIED,
  SL_PLACEMENT_BAD_MESSAGE: GrpcStatus.INVALID_ARGUMENT,
  SL_PLACEMENT_MALFORMED_COMMAND: GrpcStatus.INVALID_ARGUMENT,
  SL_PLACEMENT_NOT_LEADER: GrpcStatus.FAILED_PRECONDITION,
  // Outcome unknown: a retry (same client id and sequence) elsewhere or later may succeed.
  SL_PLACEMENT_DROPPED: GrpcStatus.UNAVAILABLE,
  SL_PLACEMENT_STOPPING: GrpcStatus.UNAVAILABLE,
  SL_PLACEMENT_TIMEOUT: GrpcStatus.DEADLINE_EXCEEDED,
  SL_PLACEMENT_REVISION_COMPACTED: GrpcStatus.OUT_OF_RANGE,
  SL_PLACEMENT_WATCH_TOO_SLOW: GrpcStatus.RESOURCE_EXHAUSTED,
};

export function shardlineErrorToStatus(error: ShardlineError): StatusObject {
  const metadata = new Metadata();
  metadata.set(CODE_METADATA_KEY, error.code);
  metadata.set(CONTEXT_METADATA_KEY, contextToHeader(error.context));
  const details = error.message.length > MESSAGE_MAX_CHARS ? `${error.message.slice(0, MESSAGE_MAX_CHARS)}…` : error.message;
  return { code: STATUS_BY_CODE[error.code] ?? GrpcStatus.INTERNAL, details, metadata };
}

/** The ShardlineError a failed call carried, or null for a transport failure or server fault. */
export function statusToShardlineError(error: Partial<StatusObject> & { message?: string }): ShardlineError | null {
  const value = error.metadata?.get(CODE_METADATA_KEY)[0];
  if (typeof value !== 'string' || value === '') return null;
  let context: ErrorContext = {};
  const header = error.metadata?.get(CONTEXT_METADATA_KEY)[0];
  if (typeof header === 'string') {
    try {
      const parsed: unknown = JSON.parse(header);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) context = parsed as ErrorContext;
    } catch {
      // A damaged context loses the hints, not the code.
    }
  }
  return new ShardlineError(value, error.details ?? error.message ?? value, context, { cause: error });
}

/** JSON with everything outside printable ASCII escaped (metadata values are ASCII). */
function contextToHeader(context: ErrorContext): string {
  let json: string;
  try {
    json = JSON.stringify(context) ?? '{}';
  } catch {
    json = '{"unserialisable":true}';
  }
  json = json.replace(/[^\x20-\x7e]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return json.length > CONTEXT_MAX_CHARS ? '{"truncated":true}' : json;
}
