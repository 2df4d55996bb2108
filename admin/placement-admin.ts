// What the admin API needs from a placement voter (PlacementAdmin), and the one adapter from a
// PlacementServer to it. The routes (placement-routes.ts) and the metrics (metrics.ts) see only
// the interface, so they are tested over real servers without knowing how a node builds them.
//
// Membership changes and transfers go to this node's own voter: the routes let only the leader
// take them (a follower answers 409 with the leader it knows), so what an operator asked of one
// node is what that node did. The adapter's client is pinned to the local address first; should
// leadership move between the routes' check and the call, the client follows the redirect.
import type { CommandResult, JsonValue, NodeRecord, ShardRecord } from '../placement/metadata/index.js';
import type { PlacementServer, PlacementTls, StatusResponse } from '../placement/service/index.js';
import { PlacementClient } from '../placement/service/index.js';

/** One voter's own view of the group (its Status RPC). */
export type PlacementStatus = StatusResponse;

/** One configured placement peer, as this node sees it now. */
export interface PlacementMember {
  readonly id: number;
  readonly address: string;
  /** Its own Status; null when it did not answer within the probe time. */
  readonly status: PlacementStatus | null;
  /** Why status is null. */
  readonly error: string | null;
}

export interface PlacementAdmin {
  /** This node's view, read locally (no network). */
  status(): PlacementStatus;
  /** Every configured peer with its own Status, asked in parallel. */
  members(): Promise<PlacementMember[]>;
  /** Adds a configured peer as a voter; resolves with the voter set once applied. */
  addMember(id: number): Promise<{ index: number; voters: number[] }>;
  removeMember(id: number): Promise<{ index: number; voters: number[] }>;
  /** Asks the leader to hand over to `id`; resolves when the request was taken (the change shows in status()). */
  transferLeader(id: number): Promise<void>;
  /** Placement's nodes and shards, read linearizably (through the leader). */
  shards(): Promise<{ nodes: readonly NodeRecord[]; shards: readonly ShardRecord[] }>;
  /** Placement's settings (key → value), read linearizably (through the leader). */
  settings(): Promise<ReadonlyMap<string, JsonValue>>;
  /** Proposes set-setting. */
  setSetting(key: string, value: JsonValue): Promise<CommandResult>;
  /** Proposes begin-reassign: the shard at `expectedEpoch` starts moving to `replicas`. */
  beginReassign(shard: string, expectedEpoch: number, replicas: readonly string[]): Promise<CommandResult>;
  /** Times this node learned of a new leader since it started. */
  leaderChanges(): number;
  /** Calls `listener` with the wait, ms, of each proposal this node answered as applied; returns the unsubscribe. */
  onProposalApplied(listener: (latencyMs: number) => void): () => void;
  close(): void;
}

export interface PlacementAdminOptions {
  /** Every placement node, this one included: Raft id → host:port (the server's own peer list). */
  readonly peers: ReadonlyMap<number, string>;
  readonly clusterId: string;
  readonly clusterToken: string;
  readonly tls?: PlacementTls;
  /** How long members() waits for one peer's Status, ms (default 1000): a down peer must not stall the page. */
  readonly probeTimeoutMs?: number;
  /** A membership change or transfer, every retry included, ms (default 8000). */
  readonly requestTimeoutMs?: number;
}

export function placementAdmin(server: PlacementServer, options: PlacementAdminOptions): PlacementAdmin {
  const self = server.address;
  const others = [...options.peers].filter(([id]) => id !== server.nodeId).map(([, address]) => address);
  const client = new PlacementClient({
    addresses: [self, ...others],
    clusterId: options.clusterId,
    clusterToken: options.clusterToken,
    requestTimeoutMs: options.requestTimeoutMs ?? 8_000,
    ...(options.tls === undefined ? {} : { tls: options.tls }),
  });
  const probeTimeoutMs = options.probeTimeoutMs ?? 1_000;

  const probe = async (id: number, address: string): Promise<PlacementMember> => {
    if (id === server.nodeId) return { id, address, status: server.status(), error: null };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${probeTimeoutMs} ms`)), probeTimeoutMs);
    });
    try {
      return { id, address, status: await Promise.race([client.status(address), timeout]), error: null };
    } catch (error) {
      return { id, address, status: null, error: error instanceof Error ? error.message : String(error) };
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    status: () => server.status(),
    // The server's peers, not the configured ones: a voter that joined later is listed too.
    members: () => Promise.all([...server.knownPeers()].sort(([a], [b]) => a - b).map(([id, address]) => probe(id, address))),
    addMember: (id) => client.addVoter(id),
    removeMember: (id) => client.removeVoter(id),
    transferLeader: (id) => client.transferLeader(id),
    shards: async () => {
      const read = await client.read(['nodes', 'shards']);
      return { nodes: read.nodes ?? [], shards: read.shards ?? [] };
    },
    settings: async () => new Map(((await client.read(['settings'])).settings ?? []).map((setting) => [setting.key, setting.value])),
    setSetting: async (key, value) => (await client.propose({ type: 'set-setting', key, value })).result,
    beginReassign: async (shard, expectedEpoch, replicas) => (await client.propose({ type: 'begin-reassign', shard, expectedEpoch, replicas: [...replicas] })).result,
    leaderChanges: () => server.leaderChanges,
    onProposalApplied: (listener) => server.onProposalApplied(listener),
    close: () => client.close(),
  };
}
