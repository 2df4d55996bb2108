// Loads journal.proto (the journal gRPC service) and names its limits. The .proto file sits next
// to this module and is read at run time from a path relative to the module, so it is found both
// from the sources (tsx) and from dist/ (`npm run build` copies it there, scripts/copy-assets.mjs).
import { fileURLToPath } from 'node:url';
import type { ChannelOptions, MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import type * as wire from './wire.js';

export const JOURNAL_PROTO_PATH = fileURLToPath(new URL('./journal.proto', import.meta.url));
export const JOURNAL_SERVICE_NAME = 'shardline.journal.v1.Journal';
export const DEFAULT_JOURNAL_GRPC_PORT = 1771;

const MiB = 1024 * 1024;
/**
 * Largest gRPC message either side sends or accepts, in bytes: a shard's default largest batch
 * (maxBatchBytes, 64 MiB) plus 1 MiB for the protobuf framing of its records. A larger message
 * fails with RESOURCE_EXHAUSTED (SL_REMOTE_MESSAGE_TOO_LARGE at the client), so shards served
 * remotely should keep maxBatchBytes and maxRecordBytes at or below 64 MiB.
 */
export const GRPC_MESSAGE_MAX_BYTES = 64 * MiB + 1 * MiB;

/** Both ends pass the size limits explicitly rather than leaning on grpc-js defaults (4 MiB receive). */
export const JOURNAL_GRPC_CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.max_receive_message_length': GRPC_MESSAGE_MAX_BYTES,
  'grpc.max_send_message_length': GRPC_MESSAGE_MAX_BYTES,
};

// longs: Number is safe because offsets, timestamps and sizes stay below 2^53. defaults: true
// fills absent plain fields ('' / 0 / []), while proto3 `optional` fields stay absent
// (undefined) when unset, which is how null keys and values and "no limit given" travel.
const LOADER_OPTIONS: Options = { keepCase: false, longs: Number, enums: String, bytes: Buffer, defaults: true, oneofs: false };

/** The service's methods with the types of their decoded messages (see wire.ts). */
export interface JournalMethods {
  createShard: MethodDefinition<wire.CreateShardRequest, wire.ShardInfoMessage>;
  deleteShard: MethodDefinition<wire.NameRequest, wire.Empty>;
  listShards: MethodDefinition<wire.Empty, wire.ListShardsResponse>;
  append: MethodDefinition<wire.AppendRequest, wire.AppendResponse>;
  read: MethodDefinition<wire.ReadRequest, wire.ReadResponse>;
  readByTime: MethodDefinition<wire.ReadByTimeRequest, wire.ReadResponse>;
  tail: MethodDefinition<wire.TailRequest, wire.RecordMessage>;
  truncateAfter: MethodDefinition<wire.TruncateAfterRequest, wire.Empty>;
  info: MethodDefinition<wire.NameRequest, wire.ShardInfoMessage>;
  readBatches: MethodDefinition<wire.ReadBatchesRequest, wire.ReadBatchesResponse>;
  highWatermark: MethodDefinition<wire.HighWatermarkRequest, wire.HighWatermarkResponse>;
  replicaFetch: MethodDefinition<wire.ReplicaFetchRequest, wire.ReplicaFetchResponse>;
  replicaEpochEnd: MethodDefinition<wire.ReplicaEpochEndRequest, wire.ReplicaEpochEndResponse>;
  replicaAnnounce: MethodDefinition<wire.ReplicaAnnounceRequest, wire.ReplicaAnnounceResponse>;
  replicaLead: MethodDefinition<wire.ReplicaLeadRequest, wire.Empty>;
  replicaStatus: MethodDefinition<wire.ReplicaStatusRequest, wire.ReplicaStatusResponse>;
  replicaStatuses: MethodDefinition<wire.ReplicaStatusesRequest, wire.ReplicaStatusesResponse>;
}

let loaded: { service: ServiceDefinition; methods: JournalMethods } | null = null;

/** The service definition (for Server.addService) and its typed methods (for clients); loaded once. */
export function journalService(): { service: ServiceDefinition; methods: JournalMethods } {
  if (loaded !== null) return loaded;
  const service = loadSync(JOURNAL_PROTO_PATH, LOADER_OPTIONS)[JOURNAL_SERVICE_NAME] as unknown as ServiceDefinition;
  const method = (name: string): MethodDefinition<unknown, unknown> => {
    const definition = service[name];
    if (definition === undefined) throw new Error(`${JOURNAL_PROTO_PATH} has no method ${JOURNAL_SERVICE_NAME}.${name}`);
    return definition;
  };
  // The message types of JournalMethods are wire.ts's hand-written mirror of journal.proto;
  // the round-trip tests in wire.test.ts keep the two in step.
  const methods: Record<keyof JournalMethods, MethodDefinition<unknown, unknown>> = {
    createShard: method('CreateShard'),
    deleteShard: method('DeleteShard'),
    listShards: method('ListShards'),
    append: method('Append'),
    read: method('Read'),
    readByTime: method('ReadByTime'),
    tail: method('Tail'),
    truncateAfter: method('TruncateAfter'),
    info: method('Info'),
    readBatches: method('ReadBatches'),
    highWatermark: method('HighWatermark'),
    replicaFetch: method('ReplicaFetch'),
    replicaEpochEnd: method('ReplicaEpochEnd'),
    replicaAnnounce: method('ReplicaAnnounce'),
    replicaLead: method('ReplicaLead'),
    replicaStatus: method('ReplicaStatus'),
    replicaStatuses: method('ReplicaStatuses'),
  };
  loaded = { service, methods: methods as unknown as JournalMethods };
  return loaded;
}

/** host:port, with IPv6 hosts in brackets. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
