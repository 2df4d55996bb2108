// Goal: a journal node deletes its copy of a shard once placement has switched the shard's
// replica set away from it, and never before: not while it is in the set, not while it is a
// learner of a change (even when its view of placement is from before the change), and the new
// set keeps every acknowledged record.
// Method: a one-voter placement group, four journals with their gRPC servers and replication and
// the controller in this process (loopback), as replica-reassign.test.ts; each node's
// RemovedReplicas swept by hand with chosen views of placement.
import assert from 'node:assert/strict';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { Journal, JournalServer, ReplicaClient, ReplicationNode } from '../../journal/index.js';
import type { ShardRecord } from '../../placement/metadata/index.js';
import { CLUSTER_ID, CLUSTER_TOKEN, PlacementClient, startCluster } from '../../placement/service/testing.js';
import { RemovedReplicas, removedFromSet } from './removed-replicas.js';
import { ReplicationController } from './replication-controller.js';
import { until } from './test-support.js';

const silent = pino({ level: 'silent' });
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

const record = (replicas: string[], leaderEpoch: number, target?: string[]): ShardRecord => ({ name: 's', replicas, leader: replicas[0] ?? null, leaderEpoch, state: target === undefined ? 'active' : 'reassigning', ...(target === undefined ? {} : { target }) });

test('removedFromSet: only a shard placement knows, outside its set and its target, at an epoch not behind the node', () => {
  assert.equal(removedFromSet('4', record(['1', '2', '3'], 5), 5), true);
  assert.equal(removedFromSet('4', record(['1', '2', '3'], 6), 5), true, 'the node missed the switch');
  assert.equal(removedFromSet('3', record(['1', '2', '3'], 5), 4), false, 'in the set');
  assert.equal(removedFromSet('4', record(['1', '2', '3'], 5, ['1', '2', '4']), 5), false, 'a learner');
  assert.equal(removedFromSet('3', record(['1', '2', '3'], 5, ['1', '2', '4']), 5), false, 'leaving, but the switch has not happened');
  assert.equal(removedFromSet('4', undefined, 5), false, 'placement does not know the shard');
  assert.equal(removedFromSet('4', record(['1', '2', '3'], 5), 6), false, 'the node holds a newer epoch than placement');
});


interface Node {
  id: string;
  journal: Journal;
  replication: ReplicationNode;
  removed: RemovedReplicas;
}

test('after a move, the node the shard left deletes its copy; a learner and the kept replicas do not', { timeout: 120_000 }, async () => {
  const placement = await startCluster({ size: 1 });
  cleanups.push(() => placement.stop());
  const client = new PlacementClient({ addresses: [...placement.peers.values()], clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN });
  cleanups.push(async () => client.close());
  const peers = new Map<string, string>();
  const nodes = new Map<string, Node>();
  for (const id of ['j1', 'j2', 'j3', 'j4']) {
    const directory = await mkdtemp(join(tmpdir(), 'sl-removed-'));
    const journal = await Journal.open(directory, { retentionCheckMs: 0 });
    const replication = await ReplicationNode.open({ journal, self: id, peers, credentials: { clusterToken: CLUSTER_TOKEN }, logger: silent });
    const server = await JournalServer.start({ journal, port: 0, replication, credentials: { clusterToken: CLUSTER_TOKEN } });
    peers.set(id, server.address);
    const node: Node = { id, journal, replication, removed: new RemovedReplicas({ self: id, replication, client, logger: silent }) };
    nodes.set(id, node);
    cleanups.push(async () => {
      await node.removed.stop();
      server.forceStop();
      await server.stop(0);
      await replication.close();
      await journal.close();
      await rm(directory, { recursive: true, force: true });
    });
    assert.equal((await client.propose({ type: 'register-node', nodeId: id, roles: ['journal'], addresses: { journal: server.address }, leaseMs: 600_000 })).result.status, 'ok');
  }
  const node = (id: string): Node => nodes.get(id) as Node;
  for (const id of ['j1', 'j2', 'j3']) await node(id).journal.createShard('s', { durability: 'fsync' });
  assert.equal((await client.propose({ type: 'create-shard', shard: 's', replicas: ['j1', 'j2', 'j3'] })).result.status, 'ok');
  const controller = ReplicationController.start({ client, isLeader: () => true, replicaClient: (address) => new ReplicaClient(address, { clusterToken: CLUSTER_TOKEN }), logger: silent, passMs: 50 });
  cleanups.push(() => controller.stop());
  const shards = async (): Promise<Map<string, ShardRecord>> => new Map(((await client.read(['shards'])).shards ?? []).map((shard) => [shard.name, shard]));
  const shard = async (): Promise<ShardRecord> => (await shards()).get('s') ?? assert.fail('shard s');
  const leading = async (): Promise<ShardRecord | undefined> => {
    const now = await shard();
    return now.target === undefined && now.leader !== null && node(now.leader).replication.isReplicated('s') && node(now.leader).replication.status('s').role === 'leader' ? now : undefined;
  };
  const acknowledged: string[] = [];
  const appendSome = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) {
      const value = `m${acknowledged.length}`;
      const { leader } = await until('a leader', leading);
      await node(leader as string).replication.append('s', [{ key: null, value: Buffer.from(value), headers: [] }], 'quorum');
      acknowledged.push(value);
    }
  };
  await appendSome(20);
  const sweepAll = async (view: ReadonlyMap<string, ShardRecord>): Promise<string[]> => (await Promise.all([...nodes.values()].map(async (one) => (await one.removed.sweep(view)).map((name) => `${one.id}:${name}`)))).flat();
  assert.deepEqual(await sweepAll(await shards()), [], 'nothing is deleted while every copy is in the set');

  // A follower's replica moves to j4; j4 copies the shard as a learner.
  const before = await until('a leader', leading);
  const leaving = before.replicas.find((id) => id !== before.leader) as string;
  const target = before.replicas.map((id) => (id === leaving ? 'j4' : id));
  const viewBefore = await shards();
  assert.equal((await client.propose({ type: 'begin-reassign', shard: 's', expectedEpoch: before.leaderEpoch, replicas: target })).result.status, 'ok');
  await until('j4 taking the shard as a learner', async () => (node('j4').replication.isReplicated('s') && node('j4').replication.status('s').voter === false ? true : undefined));
  // j4's view may lag behind the change that made it a learner: the fresh read keeps its copy.
  assert.deepEqual(await node('j4').removed.sweep(viewBefore), [], 'a learner keeps its copy, whatever its view');
  assert.ok(node('j4').journal.hasShard('s'));
  assert.deepEqual(await node(leaving).removed.sweep(await shards()), [], 'a replica leaving keeps its copy until the switch');

  const moved = await until('the set switched to the target with a leader', async () => {
    const now = await leading();
    return now !== undefined && now.replicas.join(',') === target.join(',') ? now : undefined;
  });
  assert.ok(moved.leaderEpoch > before.leaderEpoch);
  await appendSome(20);

  // The node the shard left deletes its copy; the new set's do not.
  const directory = node(leaving).journal.shard('s').directory;
  assert.deepEqual(await sweepAll(await shards()), [`${leaving}:s`]);
  assert.equal(node(leaving).journal.hasShard('s'), false);
  assert.equal(node(leaving).replication.isReplicated('s'), false);
  await assert.rejects(access(directory), { code: 'ENOENT' }, 'the shard directory is gone');
  const [retired] = node(leaving).replication.retiredCopies();
  assert.equal(retired?.shard, 's');
  assert.ok((retired?.epoch ?? -1) >= before.leaderEpoch, JSON.stringify(retired));
  assert.deepEqual(await sweepAll(await shards()), [], 'a second sweep finds nothing');

  // The new set goes on, with every acknowledged record.
  await appendSome(10);
  const leader = node((await shard()).leader as string);
  const held = (await leader.journal.read('s', 0, { maxRecords: 10_000 })).map((entry) => String(entry.value));
  assert.deepEqual(held.filter((value) => value.startsWith('m')), acknowledged);
});
