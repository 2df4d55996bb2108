// How a Shardline error travels over gRPC, both ways, for every service (the journal's, the
// placement's). The server ends a failed call with a status whose code is the closest gRPC
// status (each service's own table, passed in: the codes belong to the layers above), whose
// details are the error's message, and with trailing metadata `sl-code` (our code) and
// `sl-context` (the context as JSON). A client rebuilds the same ShardlineError from those, so
// callers and tests see the same codes whether the service runs in-process or behind a server
// (a placement client gets NOT_LEADER's leader hint from the context).
//
// Bounds: trailers count against the peer's metadata limit (grpc-js: 8 KiB by default), so
// the message and the context JSON are each cut to 2 KiB; a cut context is replaced by
// {"truncated": true} rather than sent as broken JSON.
import { Metadata, status as GrpcStatus, type StatusObject } from '@grpc/grpc-js';
import { ShardlineError, type ErrorContext } from './errors.js';

export const CODE_METADATA_KEY = 'sl-code';
export const CONTEXT_METADATA_KEY = 'sl-context';
const MESSAGE_MAX_CHARS = 2048;
const CONTEXT_MAX_CHARS = 2048;

/** A service's codes → gRPC status codes. A code not listed (an unexpected or newer one) goes as INTERNAL. */
export type GrpcStatusTable = Readonly<Record<string, GrpcStatus>>;

export function grpcStatusFor(table: GrpcStatusTable, code: string): GrpcStatus {
  return table[code] ?? GrpcStatus.INTERNAL;
}

/** The status a ShardlineError ends a call with, its gRPC code from `table`. */
export function errorToGrpcStatus(error: ShardlineError, table: GrpcStatusTable): StatusObject {
  const metadata = new Metadata();
  metadata.set(CODE_METADATA_KEY, error.code);
  metadata.set(CONTEXT_METADATA_KEY, contextToHeader(error.context));
  return { code: grpcStatusFor(table, error.code), details: clip(error.message, MESSAGE_MAX_CHARS), metadata };
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

/** A damaged context loses the hints, not the code. */
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
