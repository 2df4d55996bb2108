// Loads placement.proto and names the service's limits and wire types. Like the journal's
// loader (journal/server/journal-proto.ts): the .proto sits next to this module and is read at
// run time, so it is found from the sources (tsx) and from dist/ (scripts/copy-assets.mjs).
import { fileURLToPath } from 'node:url';
import type { ChannelOptions, MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';

export const PLACEMENT_PROTO_PATH = fileURLToPath(new URL('./placement.proto', import.meta.url));
export const PLACEMENT_SERVICE_NAME = 'shardline.placement.v1.Placement';
export const DEFAULT_PLACEMENT_GRPC_PORT = 1228;

export const TOKEN_METADATA_KEY = 'sl-cluster-token';
export const CLUSTER_METADATA_KEY = 'sl-cluster-id';

const MiB = 1024 * 1024;
/**
 * Largest gRPC message either side sends or accepts, in bytes. A Step call carries at most
 * one snapshot, and a snapshot larger than the server's maxSnapshotBytes (32 MiB by default)
 * is not sent at all (the leader reports it failed and logs it), so 64 MiB leaves room for
 * the appends beside it.
 */
export const PLACEMENT_GRPC_MESSAGE_MAX_BYTES = 64 * MiB;

export const PLACEMENT_GRPC_CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.max_receive_message_length': PLACEMENT_GRPC_MESSAGE_MAX_BYTES,
  'grpc.max_send_message_length': PLACEMENT_GRPC_MESSAGE_MAX_BYTES,
};

/**
 * The channels that dial a voter (peer links and clients). gRPC's default reconnect backoff
 * starts at 1 s and grows by 1.6x to 120 s while the far side stays down, and a call made
 * during the wait fails at once: a voter restarted after a few seconds down could stay
 * unreachable to its peers for several more, and miss the next election. Capped at 1 s, a
 * returning voter is dialled again within about one election timeout.
 */
export const PLACEMENT_GRPC_CLIENT_OPTIONS: ChannelOptions = {
  ...PLACEMENT_GRPC_CHANNEL_OPTIONS,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1_000,
};

const LOADER_OPTIONS: Options = { keepCase: false, longs: Number, enums: String, bytes: Buffer, defaults: true, oneofs: false };

// Mirrors of placement.proto's messages as proto-loader decodes them (camelCase, defaults filled).
export interface StepRequest { clusterId: string; from: number; to: number; messages: Buffer[] }
export interface ProposeRequest { command: Buffer }
export interface ProposeResponse { index: number; resultJson: string }
export interface ReadRequest { parts: string[] }
export interface ReadResponse { appliedIndex: number; revision: number; nodesJson: string; shardsJson: string; mapsJson: string; settingsJson: string }
export interface WatchRequest { fromRevision: number }
export interface WireChange { revision: number; kind: string; key: string; op: string }
export interface WatchBatch { changes: WireChange[]; revision: number }
export interface StatusResponse { id: number; role: string; term: number; leader: number; leaderAddress: string; commitIndex: number; appliedIndex: number; revision: number; voters: number[]; clusterId: string; peers?: WirePeer[] }
export interface MemberRequest { nodeId: number; address?: string }
export interface WirePeer { id: number; address: string }
export interface MembersResponse { index: number; voters: number[]; peers?: WirePeer[] }
export type Empty = Record<string, never>;

export interface PlacementMethods {
  step: MethodDefinition<StepRequest, Empty>;
  stepStream: MethodDefinition<StepRequest, Empty>;
  propose: MethodDefinition<ProposeRequest, ProposeResponse>;
  read: MethodDefinition<ReadRequest, ReadResponse>;
  watch: MethodDefinition<WatchRequest, WatchBatch>;
  status: MethodDefinition<Empty, StatusResponse>;
  addVoter: MethodDefinition<MemberRequest, MembersResponse>;
  removeVoter: MethodDefinition<MemberRequest, MembersResponse>;
  transferLeader: MethodDefinition<MemberRequest, Empty>;
}

let loaded: { service: ServiceDefinition; methods: PlacementMethods } | null = null;

/** The service definition (Server.addService, makeGenericClientConstructor) and its typed methods; loaded once. */
export function placementService(): { service: ServiceDefinition; methods: PlacementMethods } {
  if (loaded !== null) return loaded;
  const service = loadSync(PLACEMENT_PROTO_PATH, LOADER_OPTIONS)[PLACEMENT_SERVICE_NAME] as unknown as ServiceDefinition;
  const method = (name: string): MethodDefinition<unknown, unknown> => {
    const definition = service[name];
    if (definition === undefined) throw new Error(`${PLACEMENT_PROTO_PATH} has no method ${PLACEMENT_SERVICE_NAME}.${name}`);
    return definition;
  };
  const methods: Record<keyof PlacementMethods, MethodDefinition<unknown, unknown>> = {
    step: method('Step'),
    stepStream: method('StepStream'),
    propose: method('Propose'),
    read: method('Read'),
    watch: method('Watch'),
    status: method('Status'),
    addVoter: method('AddVoter'),
    removeVoter: method('RemoveVoter'),
    transferLeader: method('TransferLeader'),
  };
  loaded = { service, methods: methods as unknown as PlacementMethods };
  return loaded;
}

/** host:port, with IPv6 hosts in brackets. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
