// Where this node's admin API finds the replica sets for /api/replication/sets (the dashboard's
// Replication page), and how it asks a replica about a shard. The sets come, in this order of
// preference, from a copy of placement the node already keeps (a broker's PlacedShardStore view,
// a journal node's peer view), from a linearizable read of its own placement voter at each
// request (a voter-only node), or, on a journal node replicating without placement
// (--replica-peers), from its own replica state and its peer list. A single node has none.
// Replicas are asked over their journal gRPC port with this node's journal credentials; one
// client per address is kept, and dropped when the address leaves the sets.
import { ReplicaClient, type JournalCredentials, type journalWire, type ReplicationNode } from '../journal/index.js';
import type { PlacementClient } from '../placement/service/index.js';
import type { NodeRecord, ShardRecord } from '../placement/metadata/index.js';
import type { PlacementView } from '../shard-model/index.js';
import type { ReplicaSetRecord, ReplicaSetSource } from '../admin/index.js';

/** How long one replica may take to answer ReplicaStatus: under the dashboard's 2 s poll. */
export const REPLICA_STATUS_TIMEOUT_MS = 1_500;

export interface ReplicaSetSourceOptions {
  /** A copy of placement this node keeps anyway. */
  readonly view?: PlacementView;
  /** This node's placement voter's client, read at each request when there is no view. */
  readonly client?: PlacementClient;
  /** A journal node replicating without placement: its replicas and the --replica-peers addresses. */
  readonly replicaPeers?: { readonly node: ReplicationNode; readonly peers: ReadonlyMap<string, string> };
  readonly credentials: JournalCredentials;
}

function fromPlacement(nodes: Iterable<NodeRecord>, shards: Iterable<ShardRecord>): { shards: ReplicaSetRecord[]; addresses: Map<string, string> } {
  const addresses = new Map<string, string>();
  for (const node of nodes) if (node.addresses.journal !== undefined) addresses.set(node.id, node.addresses.journal);
  return { shards: [...shards].map((shard) => ({ name: shard.name, replicas: shard.replicas, leader: shard.leader, epoch: shard.leaderEpoch, learners: (shard.target ?? []).filter((node) => !shard.replicas.includes(node)) })), addresses };
}

function fromReplicaState(node: ReplicationNode, peers: ReadonlyMap<string, string>): { shards: ReplicaSetRecord[]; addresses: ReadonlyMap<string, string> } {
  const shards = node.shards().map((name) => {
    const status = node.status(name);
    return { name, replicas: status.replicas, leader: status.leader === '' ? null : status.leader, epoch: status.epoch };
  });
  return { shards, addresses: peers };
}

/** The source for replicaSetAdminRoutes; undefined on a node that has none of the three. */
export function replicaSetSource(options: ReplicaSetSourceOptions): ReplicaSetSource | undefined {
  const { view, client, replicaPeers } = options;
  let read: ReplicaSetSource['read'];
  if (view !== undefined) read = async () => fromPlacement(view.nodes.values(), view.shards.values());
  else if (client !== undefined) {
    read = async () => {
      const { nodes = [], shards = [] } = await client.read(['nodes', 'shards']);
      return fromPlacement(nodes, shards);
    };
  } else if (replicaPeers !== undefined) read = async () => fromReplicaState(replicaPeers.node, replicaPeers.peers);
  else return undefined;

  const clients = new Map<string, ReplicaClient>();
  return {
    origin: replicaPeers !== undefined && view === undefined && client === undefined ? 'replica-peers' : 'placement',
    async read() {
      const answer = await read();
      const current = new Set(answer.addresses.values());
      for (const [address, replicaClient] of clients) {
        if (current.has(address)) continue;
        replicaClient.close();
        clients.delete(address);
      }
      return answer;
    },
    status(address: string, shard: string): Promise<journalWire.ReplicaStatusResponse> {
      let replicaClient = clients.get(address);
      if (replicaClient === undefined) {
        replicaClient = new ReplicaClient(address, options.credentials);
        clients.set(address, replicaClient);
      }
      return replicaClient.call('replicaStatus', { shard }, REPLICA_STATUS_TIMEOUT_MS);
    },
    close() {
      for (const replicaClient of clients.values()) replicaClient.close();
      clients.clear();
    },
  };
}
