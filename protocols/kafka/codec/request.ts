// Request headers, request dispatch decisions and response encoding.
//
// Request header (Kafka's RequestHeader): v1 = api key int16, api version int16, correlation id
// int32, client id as a classic nullable STRING (int16 length, even in flexible versions);
// v2 adds a tagged-field section. Response header: v0 = correlation id; v1 adds tagged fields.
//
// parseRequest decides what a server must do with one frame:
// - a supported API and version: the decoded body;
// - ApiVersions at a version we do not support: Kafka (KIP-511) answers it anyway, as an
//   ApiVersions v0 response with UNSUPPORTED_VERSION (35) listing ApiVersions' own range, so the
//   client retries with a version both know; unsupportedApiVersionsResponse builds that answer;
// - any other unknown key or unsupported version: Kafka closes the connection (it cannot parse
//   the body and a client only sends versions the broker advertised), so the result says close.
import { KafkaErrors } from './errors.js';
import { frame } from './framing.js';
import { Reader, Writer } from './primitives.js';
import { decodeMessage, encodeMessage, type KafkaStruct } from './schema.js';
import { ApiKey } from './apis.js';
import { KafkaErrorCode } from './error-codes.js';
import { apiSpec, isSupported, requestHeaderVersion, responseHeaderVersion, SUPPORTED_APIS } from './versions.js';
import { isShardlineError, type ShardlineError } from '../../../base/index.js';

export interface RequestHeader {
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly correlationId: number;
  readonly clientId: string | null;
  readonly headerVersion: 1 | 2;
}

/** Decodes a request header; `reader` is left at the start of the body. */
export function decodeRequestHeader(reader: Reader): RequestHeader {
  const apiKey = reader.int16('request header api key');
  const apiVersion = reader.int16('request header api version');
  const correlationId = reader.int32('request header correlation id');
  const clientId = reader.string('request header client id', true);
  const headerVersion = requestHeaderVersion(apiKey, apiVersion);
  if (headerVersion === 2) skipTaggedFields(reader, 'request header');
  return { apiKey, apiVersion, correlationId, clientId, headerVersion };
}

/** The request header defines no tags yet: every one is skipped, each checked for length. */
function skipTaggedFields(reader: Reader, what: string): void {
  const count = reader.uvarint(`${what} tagged fields`);
  for (let i = 0; i < count; i++) {
    reader.uvarint(`${what} tag`);
    reader.raw(reader.uvarint(`${what} tag size`), `${what} tag`);
  }
}

export type ParsedRequest =
  /** `trailingBytes`: bytes after the body, ignored as Kafka's broker ignores them (see below). */
  | { kind: 'request'; header: RequestHeader; body: KafkaStruct; trailingBytes: number }
  /** ApiVersions at a version we lack: answer with unsupportedApiVersionsResponse(). */
  | { kind: 'unsupported-api-versions'; header: RequestHeader }
  /** Unknown API or version, or bytes that do not parse: close the connection. */
  | { kind: 'close'; apiKey?: number; apiVersion?: number; correlationId?: number; error: ShardlineError };

/** Decides what one request frame (without its size prefix) is. Never throws. */
export function parseRequest(frameBody: Buffer): ParsedRequest {
  const reader = new Reader(frameBody);
  let header: RequestHeader;
  try {
    header = decodeRequestHeader(reader);
  } catch (error) {
    return { kind: 'close', error: asDecodeError(error, 'request header') };
  }
  const { apiKey, apiVersion, correlationId } = header;
  if (!isSupported(apiKey, apiVersion)) {
    if (apiKey === ApiKey.ApiVersions) return { kind: 'unsupported-api-versions', header };
    const detail = SUPPORTED_APIS.has(apiKey) ? `version ${apiVersion} of API ${apiKey} is not supported` : `API key ${apiKey} is unknown`;
    return { kind: 'close', apiKey, apiVersion, correlationId, error: KafkaErrors.decode.create({ apiKey, apiVersion }, 'request', detail) };
  }
  const spec = apiSpec(apiKey)!;
  try {
    const body = decodeMessage(spec.request, apiVersion, reader);
    // Kafka's broker reads what the version defines and does not check for bytes after it;
    // refusing them would close connections a Kafka broker keeps. They are counted instead.
    return { kind: 'request', header, body, trailingBytes: reader.remaining };
  } catch (error) {
    return { kind: 'close', apiKey, apiVersion, correlationId, error: asDecodeError(error, spec.request.name) };
  }
}

function asDecodeError(error: unknown, what: string): ShardlineError {
  if (isShardlineError(error)) return error;
  // Not expected (every read is bounds-checked); kept typed so a bug cannot crash a listener.
  return KafkaErrors.decode.withCause(error, {}, what, String(error));
}

/** A whole response frame (size prefix, header, body) for `apiKey` at `apiVersion`. */
export function encodeResponse(apiKey: number, apiVersion: number, correlationId: number, body: KafkaStruct): Buffer {
  return Buffer.concat(encodeResponseChunks(apiKey, apiVersion, correlationId, body));
}

/** Byte arrays of at least this size (record batches) go out by reference, not copied into the response. */
const SHARED_BYTES_MIN = 32 * 1024;

/**
 * The same frame as encodeResponse, as chunks to write one after the other: large byte fields
 * (a Fetch's records) are the caller's own buffers, not copies.
 */
export function encodeResponseChunks(apiKey: number, apiVersion: number, correlationId: number, body: KafkaStruct): Buffer[] {
  const spec = apiSpec(apiKey);
  if (spec === undefined) throw KafkaErrors.encode.create({ apiKey }, 'response', `API key ${apiKey} is unknown`);
  const w = new Writer(256, SHARED_BYTES_MIN);
  w.int32(0); // the frame's size, set below
  w.int32(correlationId);
  if (responseHeaderVersion(apiKey, apiVersion) === 1) w.uvarint(0);
  encodeMessage(spec.response, apiVersion, body, w);
  const chunks = w.finishChunks();
  let size = -4;
  for (const chunk of chunks) size += chunk.length;
  chunks[0]!.writeInt32BE(size, 0);
  return chunks;
}

/** A whole request frame; the client side of the codec (tests, tools, a future proxy). */
export function encodeRequest(apiKey: number, apiVersion: number, correlationId: number, clientId: string | null, body: KafkaStruct): Buffer {
  const spec = apiSpec(apiKey);
  if (spec === undefined) throw KafkaErrors.encode.create({ apiKey }, 'request', `API key ${apiKey} is unknown`);
  const w = new Writer();
  w.int16(apiKey);
  w.int16(apiVersion);
  w.int32(correlationId);
  w.string(clientId, 'client id', true);
  if (requestHeaderVersion(apiKey, apiVersion) === 2) w.uvarint(0);
  encodeMessage(spec.request, apiVersion, body, w);
  return frame(w.finish());
}

/** Decodes a whole response frame body (after the size prefix), given what was asked. */
export function decodeResponse(apiKey: number, apiVersion: number, frameBody: Buffer): { correlationId: number; body: KafkaStruct } {
  const spec = apiSpec(apiKey);
  if (spec === undefined) throw KafkaErrors.decode.create({ apiKey }, 'response', `API key ${apiKey} is unknown`);
  const reader = new Reader(frameBody);
  const correlationId = reader.int32('response header correlation id');
  if (responseHeaderVersion(apiKey, apiVersion) === 1) skipTaggedFields(reader, 'response header');
  const body = decodeMessage(spec.response, apiVersion, reader);
  reader.expectEnd(spec.response.name);
  return { correlationId, body };
}

/** The ApiVersions v0 answer to an ApiVersions request at a version we do not support. */
export function unsupportedApiVersionsResponse(correlationId: number): Buffer {
  const own = SUPPORTED_APIS.get(ApiKey.ApiVersions)!;
  return encodeResponse(ApiKey.ApiVersions, 0, correlationId, {
    errorCode: KafkaErrorCode.UNSUPPORTED_VERSION,
    apiKeys: [{ apiKey: own.key, minVersion: own.min, maxVersion: own.max }],
  });
}

/** The api_keys list of an ApiVersions response: every supported API's range. */
export function supportedApiVersionsList(): KafkaStruct[] {
  return [...SUPPORTED_APIS.values()].map((api) => ({ apiKey: api.key, minVersion: api.min, maxVersion: api.max }));
}
