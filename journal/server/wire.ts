// The journal service's messages as proto-loader decodes them (journal.proto, camelCase
// fields, int64 as number, bytes as Buffer, `optional` fields absent when unset), and the
// conversions between them and the journal's types. Both ends use these: the server
// (journal-grpc-service.ts) and RemoteShardStore (shard-model/adapters/remote-shard-store.ts).
//
// The client checks only what the wire cannot carry faithfully (a non-integer number would be
// truncated, a non-Buffer value converted); everything else (ranges, sizes, names, settings)
// is left to the journal, so a remote store refuses the same input with the same codes as a
// local one. Those client checks raise the journal's own SL_JOURNAL_INVALID_ARGUMENT.
import { JournalErrors } from '../errors.js';
import type { AppendResult, JournalRecord, RecordHeader, RecordInput } from '../record.js';
import type { ReadOptions } from '../shard/read-limits.js';
import type { ShardConfig } from '../shard/shard-config.js';
import type { ShardInfo } from '../shard/shard.js';

// ---- messages --------------------------------------------------------------------------

export type Empty = Record<string, never>;

export interface HeaderMessage {
  key: string;
  value: Buffer;
}

export interface RecordInputMessage {
  key?: Buffer;
  value?: Buffer;
  headers: HeaderMessage[];
  timestamp?: number;
}

export interface RecordMessage {
  offset: number;
  timestamp: number;
  key?: Buffer;
  value?: Buffer;
  headers: HeaderMessage[];
  epoch: number;
}

export interface ShardInfoMessage {
  name: string;
  configJson: string;
  startOffset: number;
  nextOffset: number;
  epoch: number;
  sizeBytes: number;
  segmentCount: number;
  maxTimestamp: number;
}

export interface CreateShardRequest {
  name: string;
  configJson: string;
}

export interface NameRequest {
  name: string;
}

export interface ListShardsResponse {
  shards: ShardInfoMessage[];
}

export interface AppendRequest {
  shard: string;
  records: RecordInputMessage[];
  epoch?: number;
  acks?: string;
  writerId?: number;
  writerSequence?: number;
  writerAckedBelow?: number;
}

export type AppendResponse = AppendResult;

export interface ReadRequest {
  shard: string;
  fromOffset: number;
  maxRecords?: number;
  maxBytes?: number;
}

export interface ReadByTimeRequest {
  shard: string;
  timestamp: number;
  maxRecords?: number;
  maxBytes?: number;
}

export interface ReadResponse {
  records: RecordMessage[];
}

export interface TailRequest {
  shard: string;
  fromOffset: number;
}

export interface TruncateAfterRequest {
  shard: string;
  offset: number;
}

export interface ReadBatchesRequest {
  shard: string;
  fromOffset: number;
  maxBytes?: number;
}

export interface ReadBatchesResponse {
  batches: Buffer[];
  next: number;
}

export interface HighWatermarkRequest {
  shard: string;
}

export interface HighWatermarkResponse {
  highWatermark: number;
}

export interface ReplicaFetchRequest {
  shard: string;
  fromNode: string;
  leaderEpoch: number;
  fetchOffset: number;
  durableOffset: number;
}

export interface ReplicaFetchResponse {
  leaderEpoch: number;
  fetchOffset: number;
  batches: Buffer[];
  highWatermark: number;
}

export interface ReplicaEpochEndRequest {
  shard: string;
  fromNode: string;
  leaderEpoch: number;
  epoch: number;
}

export interface ReplicaEpochEndResponse {
  leaderEpoch: number;
  askedEpoch: number;
  epoch: number;
  endOffset: number;
}

export interface ReplicaAnnounceRequest {
  shard: string;
  epoch: number;
  replicas: string[];
  /** Some replica has been led before: a node without replica state for the shard does not vote. */
  ledBefore?: boolean;
  /** The node joins as a learner of a replica-set change: it does not vote until it has copied the shard as a member. */
  learner?: boolean;
}

export interface ReplicaAnnounceResponse {
  node: string;
  lastEpoch: number;
  durableEnd: number;
}

export interface ReplicaLeadRequest {
  shard: string;
  epoch: number;
  leader: string;
  replicas: string[];
  /** learners of a replica-set change: served by the leader, never counted */
  learners?: string[];
}

export interface ReplicaStatusRequest {
  shard: string;
}

export interface ReplicaStatusResponse {
  node: string;
  role: string;
  epoch: number;
  leader: string;
  replicas: string[];
  highWatermark: number;
  logEnd: number;
  lastEpoch: number;
  /** false while the node rejoins without the state it lost (it does not vote) */
  voter: boolean;
  logStart: number;
  /** on the leader: each follower's reported log end (fetched) and durable end in this epoch */
  followers: ReplicaProgress[];
  /** on the leader: the offset of its epoch-start batch (0 otherwise); the HW is complete once past it */
  epochStartOffset?: number;
}

export interface ReplicaStatusesRequest {
  shards: string[];
}

export interface ReplicaStatusesResponse {
  entries: ReplicaStatusEntry[];
}

/** One shard of a ReplicaStatuses answer: its status, or the error a ReplicaStatus call of it gets. */
export interface ReplicaStatusEntry {
  shard: string;
  /** set when errorCode is '' (the decoder gives null for an absent message) */
  status?: ReplicaStatusResponse | null;
  errorCode: string;
  errorMessage: string;
}

export interface ReplicaProgress {
  node: string;
  fetched: number;
  durable: number;
  /** the leader's log end minus `fetched` (offsets, epoch starts included) */
  recordsBehind: number;
  /** about how many bytes of the leader's log lie past `fetched` */
  bytesBehind: number;
  /** a learner of a replica-set change (fetched and durable -1 until its first fetch) */
  learner?: boolean;
}

// ---- client side: journal types → messages ---------------------------------------------

/** A number argument as it goes on the wire; a non-integer would be silently truncated there. */
export function wireInteger(argument: string, value: unknown, shard: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw JournalErrors.invalidArgument.create({ shard }, argument, value, 'must be an integer');
  }
  return value;
}

function optionalWireInteger(argument: string, value: unknown, shard: string): number | undefined {
  return value === undefined ? undefined : wireInteger(argument, value, shard);
}

export function readLimitsToWire(options: ReadOptions | undefined, shard: string): { maxRecords?: number; maxBytes?: number } {
  return {
    maxRecords: optionalWireInteger('maxRecords', options?.maxRecords, shard),
    maxBytes: optionalWireInteger('maxBytes', options?.maxBytes, shard),
  };
}

function optionalBytes(argument: string, value: unknown, context: { shard: string; record: number }): Buffer | undefined {
  if (value === null || value === undefined) return undefined;
  if (!Buffer.isBuffer(value)) throw JournalErrors.invalidArgument.create(context, argument, typeof value, 'must be a Buffer or null');
  return value;
}

function headersToWire(headers: unknown, index: number, context: { shard: string; record: number }): HeaderMessage[] {
  if (headers === undefined) return [];
  const argument = `records[${index}].headers`;
  if (!Array.isArray(headers)) throw JournalErrors.invalidArgument.create(context, argument, typeof headers, 'must be an array of headers');
  return headers.map((header: Partial<RecordHeader> | null) => {
    // Protobuf would turn a lone surrogate into U+FFFD on the wire; refuse it here as the journal does.
    if (typeof header?.key !== 'string' || !header.key.isWellFormed() || !Buffer.isBuffer(header.value)) {
      throw JournalErrors.invalidArgument.create(context, argument, header?.key, 'each header needs a well-formed string key and a Buffer value');
    }
    return { key: header.key, value: header.value };
  });
}

export function recordsToWire(records: readonly RecordInput[], shard: string): RecordInputMessage[] {
  if (!Array.isArray(records)) throw JournalErrors.invalidArgument.create({ shard }, 'records', typeof records, 'must be a non-empty array of records');
  return records.map((record: RecordInput | null, index) => {
    const context = { shard, record: index };
    if (record === null || typeof record !== 'object') throw JournalErrors.invalidArgument.create(context, `records[${index}]`, typeof record, 'must be an object');
    return {
      key: optionalBytes(`records[${index}].key`, record.key, context),
      value: optionalBytes(`records[${index}].value`, record.value, context),
      headers: headersToWire(record.headers, index, context),
      timestamp: optionalWireInteger(`records[${index}].timestamp`, record.timestamp, shard),
    };
  });
}

/** Settings as JSON. JSON has no undefined (dropped, like the journal drops it) and no NaN (null, refused by the journal). */
export function configToWire(config: Partial<ShardConfig> | undefined): string {
  return config === undefined ? '' : JSON.stringify(config);
}

// ---- server side: messages → journal types ---------------------------------------------

export function recordsFromWire(records: readonly RecordInputMessage[]): RecordInput[] {
  return records.map((record) => ({
    key: record.key ?? null,
    value: record.value ?? null,
    headers: record.headers,
    ...(record.timestamp === undefined ? {} : { timestamp: record.timestamp }),
  }));
}

export function readLimitsFromWire(request: { maxRecords?: number; maxBytes?: number }): ReadOptions {
  return {
    ...(request.maxRecords === undefined ? {} : { maxRecords: request.maxRecords }),
    ...(request.maxBytes === undefined ? {} : { maxBytes: request.maxBytes }),
  };
}

export function configFromWire(configJson: string, shard: string): Partial<ShardConfig> {
  if (configJson === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(configJson);
  } catch {
    throw JournalErrors.invalidConfig.create({ shard }, 'config', configJson.slice(0, 200), 'must be a JSON object');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw JournalErrors.invalidConfig.create({ shard }, 'config', parsed, 'must be a JSON object');
  }
  return parsed as Partial<ShardConfig>;
}

export function recordToWire(record: JournalRecord): RecordMessage {
  return {
    offset: record.offset,
    timestamp: record.timestamp,
    headers: record.headers,
    epoch: record.epoch,
    ...(record.key === null ? {} : { key: record.key }),
    ...(record.value === null ? {} : { value: record.value }),
  };
}

export function shardInfoToWire(info: ShardInfo): ShardInfoMessage {
  const { config, ...rest } = info;
  return { ...rest, configJson: JSON.stringify(config) };
}

/** Protobuf size of a record, give or take a few bytes of tags: what it costs in a response. */
export function recordWireBytes(record: JournalRecord): number {
  let bytes = 40 + (record.key?.length ?? 0) + (record.value?.length ?? 0);
  for (const header of record.headers) bytes += 12 + Buffer.byteLength(header.key) + header.value.length;
  return bytes;
}

// ---- client side: messages → journal types ---------------------------------------------

export function recordFromWire(message: RecordMessage): JournalRecord {
  return {
    offset: message.offset,
    timestamp: message.timestamp,
    key: message.key ?? null,
    value: message.value ?? null,
    headers: message.headers.map((header) => ({ key: header.key, value: header.value })),
    epoch: message.epoch,
  };
}

export function shardInfoFromWire(message: ShardInfoMessage): ShardInfo {
  return {
    name: message.name,
    config: JSON.parse(message.configJson) as ShardConfig,
    startOffset: message.startOffset,
    nextOffset: message.nextOffset,
    epoch: message.epoch,
    sizeBytes: message.sizeBytes,
    segmentCount: message.segmentCount,
    maxTimestamp: message.maxTimestamp,
  };
}
