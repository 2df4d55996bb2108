// Goal: the source behind /api/replication/sets takes the replica sets from the node's copy of
// placement first, then from its voter's client, then (journal nodes without placement) from
// its own replica state with the --replica-peers addresses; a single node has none; a replica
// that does not answer rejects (the route shows why). Method: stand-ins for the view, the
// client and the ReplicationNode (only the members the source reads), and one real ReplicaClient
// dialling a loopback port nothing listens on.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';
import type { journalWire, ReplicationNode } from '../journal/index.js';
import type { NodeRecord, ShardRecord } from '../placement/metadata/index.js';
import type { PlacementClient } from '../placement/service/index.js';
import type { PlacementView } from '../shard-model/index.js';
import { replicaSetSource } from './replica-set-source.js';

const credentials = { clusterToken: 'cluster-token-0123456789' };

function nodeRecord(id: string, journal?: string): NodeRecord {
  return { id, roles: journal === undefined ? ['broker'] : ['journal'], addresses: journal === undefined ? { broker: 'b:1883' } : { journal }, registeredAt: 0, leaseExpiresAt: 1 };
}

const shard: ShardRecord = { name: 'mqtt.0', replicas: ['11', '12'], leader: '12', leaderEpoch: 4, state: 'active' } as ShardRecord;

test('a copy of placement: the shard records and every journal address, brokers left out', async () => {
  const moving: ShardRecord = { ...shard, name: 'mqtt.1', state: 'reassigning', target: ['11', '13'] };
  const view = { nodes: new Map([['11', nodeRecord('11', 'j11:1771')], ['12', nodeRecord('12', 'j12:1771')], ['21', nodeRecord('21')]]), shards: new Map([['mqtt.0', shard], ['mqtt.1', moving]]) } as unknown as PlacementView;
  const failingClient = { read: () => Promise.reject(new Error('the view comes first')) } as unknown as PlacementClient;
  const source = replicaSetSource({ view, client: failingClient, credentials });
  assert.ok(source !== undefined);
  assert.equal(source.origin, 'placement');
  const { shards, addresses } = await source.read();
  // A change in progress: the target's nodes outside the set are its learners.
  assert.deepEqual(shards, [{ name: 'mqtt.0', replicas: ['11', '12'], leader: '12', epoch: 4, learners: [] }, { name: 'mqtt.1', replicas: ['11', '12'], leader: '12', epoch: 4, learners: ['13'] }]);
  assert.deepEqual([...addresses], [['11', 'j11:1771'], ['12', 'j12:1771']]);
});

test("a voter-only node reads its voter's client at each request", async () => {
  let reads = 0;
  const client = { read: async (parts: string[]) => { reads += 1; assert.deepEqual(parts, ['nodes', 'shards']); return { appliedIndex: 1, revision: 1, nodes: [nodeRecord('11', 'j11:1771')], shards: [shard] }; } } as unknown as PlacementClient;
  const source = replicaSetSource({ client, credentials });
  assert.equal((await source?.read())?.shards[0]?.epoch, 4);
  await source?.read();
  assert.equal(reads, 2);
});

test('a journal node without placement: its own replicated shards and the --replica-peers addresses', async () => {
  const status = { node: '1', role: 'follower', epoch: 7, leader: '', replicas: ['1', '2', '3'], highWatermark: 0, logEnd: 0, lastEpoch: 7, voter: true, logStart: 0, followers: [] } satisfies journalWire.ReplicaStatusResponse;
  const replication = { shards: () => ['orders'], status: () => status } as unknown as ReplicationNode;
  const peers = new Map([['1', 'h1:1771'], ['2', 'h2:1771'], ['3', 'h3:1771']]);
  const source = replicaSetSource({ replicaPeers: { node: replication, peers }, credentials });
  assert.equal(source?.origin, 'replica-peers');
  const answer = await source?.read();
  assert.deepEqual(answer?.shards, [{ name: 'orders', replicas: ['1', '2', '3'], leader: null, epoch: 7 }]);
  assert.equal(answer?.addresses, peers);
});

test('a single node has no source; a replica that does not answer rejects', async () => {
  assert.equal(replicaSetSource({ credentials }), undefined);
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  const view = { nodes: new Map([['11', nodeRecord('11', `127.0.0.1:${port}`)]]), shards: new Map([['mqtt.0', shard]]) } as unknown as PlacementView;
  const source = replicaSetSource({ view, credentials });
  try {
    await source?.read();
    await assert.rejects(source!.status(`127.0.0.1:${port}`, 'mqtt.0'));
  } finally {
    source?.close?.();
  }
});
