// How a Shardline error travels over gRPC, both ways. The server ends a failed call with a
// status whose code is the closest gRPC status (table below), whose details are the error's
// message, and with trailing metadata `sl-code` (our code) and `sl-context` (the context as
// JSON). A client rebuilds the same ShardlineError from those, so callers and tests see the
// journal's codes whether the journal runs in-process or behind a server.
//
// Bounds: trailers count against the peer's metadata limit (grpc-js: 8 KiB by default), so
// the message and the context JSON are each cut to 2 KiB; a cut context is replaced by
// {"truncated": true} rather than sent as broken JSON.
import { Metadata, status as GrpcStatus, type StatusObject } from '@grpc/grpc-js';
import { ShardlineError, type ErrorContext } from '../../base/index.js';

export const CODE_METADATA_KEY = 'sl-code';
export const CONTEXT_METADATA_KEY = 'sl-context';
const MESSAGE_MAX_CHARS = 2048;
const CONTEXT_MAX_CHARS = 2048;

/** Our codes → gRPC status codes. A code not listed (an unexpected or newer one) goes as INTERNAL. */
export const GRPC_STATUS_BY_CODE: Readonly<Record<string, GrpcStatus>> = {
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
  SL_JOURNAL_CORRUPT_BATCH: GrpcStatus.DATA_LOSS,
  SL_JOURNAL_IO: GrpcStatus.INTERNAL,
};

export function grpcStatusForCode(code: string): GrpcStatus {
  return GRPC_STATUS_BY_CODE[code] ?? GrpcStatus.INTERNAL;
}

/** The status a ShardlineError ends a call with. */
export function shardlineErrorToStatus(error: ShardlineError): StatusObject {
  const metadata = new Metadata();
  metadata.set(CODE_METADATA_KEY, error.code);
  metadata.set(CONTEXT_METADATA_KEY, contextToHeader(error.context));
  return { code: grpcStatusForCode(error.code), details: clip(error.message, MESSAGE_MAX_CHARS), metadata };
}

/**
 * The ShardlineError a failed call carried, or null when its status has no `sl-code`: a
 * transport failure or a server fault, which the caller maps to its own codes.
 */
export function statusToShardlineError(error: Partial<StatusObject> & { message?: string }): ShardlineError | null {
  const code = headerText(error.metadata, CODE_METADATA_KEY);
  if (code === undefined) return null;
  const context = contextFromHeader(headerText(error.metadata, CONTEXT_METADATA_KEY));
  return new ShardlineError(code, error.details ?? error.message ?? code, context, { cause: error });
}

function headerText(metadata: Metadata | undefined, key: string): string | undefined {
  const value = metadata?.get(key)[0];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * JSON with everything outside printable ASCII escaped as \uXXXX: gRPC ASCII metadata values
 * may only hold printable ASCII, and the escaped text is still the same JSON.
 */
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

function contextFromHeader(header: string | undefined): ErrorContext {
  if (header === undefined) return {};
  try {
    const parsed: unknown = JSON.parse(header);
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as ErrorContext) : {};
  } catch {
    return {};
  }
}

function clip(text: string, maxChars: number): string {
  return text.length > maxChars ? `${text.slice(0, maxChars)}… (${text.length - maxChars} more characters)` : text;
}
