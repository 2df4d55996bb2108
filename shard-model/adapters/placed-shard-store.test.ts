// Goal: brokers' PlacedShardStore over placement-driven replication: two stores creating one shard
// at once both succeed (one shard, three replicas, one leader); appends and reads go to the
// leader, readers never see the epoch-start records; when the leader's journal node stops, the
// controller elects another and the next appends succeed there (late, not failed), a tail follows
// onto the new leader without a gap or a repeat, and every acknowledged record is readable.
// Method: a one-voter placement group, three journals with their gRPC servers and replication in
// this process (loopback), the controller's driver running against them, two stores.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { Journal, JournalServer, ReplicaClient, ReplicationNode, type JournalRecord } from '../../journal/index.js';
import { CLUSTER_ID, CLUSTER_TOKEN, PlacementClient, startCluster } from '../../placement/service/testing.js';
import { ReplicationController } from '../controller/replication-controller.js';
import { PlacedShardStore } from './placed-shard-store.js';

const silent = pino({ level: 'silent' });
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

interface JournalNode {
  id: string;
  server: JournalServer;
  stop: () => Promise<void>;
}

async function journalNode(id: string, peers: Map<string, string>): Promise<JournalNode> {
  const directory = await mkdtemp(join(tmpdir(), 'sl-placed-store-'));
  const journal = await Journal.open(directory, { retentionCheckMs: 0 });
  const replication = await ReplicationNode.open({ journal, self: id, peers, credentials: { clusterToken: CLUSTER_TOKEN }, logger: silent });
  const server = await JournalServer.start({ journal, port: 0, replication, credentials: { clusterToken: CLUSTER_TOKEN } });
  peers.set(id, server.address);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    server.forceStop();
    await server.stop(0);
    await replication.close();
    await journal.close();
    await rm(directory, { recursive: true, force: true });
  };
  cleanups.push(stop);
  return { id, server, stop };
}

function client(addresses: string[]): PlacementClient {
  const made = new PlacementClient({ addresses, clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN });
  cleanups.push(async () => made.close());
  return made;
}

const values = (records: readonly JournalRecord[]): string[] => records.map((record) => record.value?.toString() ?? '-');

test('two brokers create one replicated shard, write through its leader, and follow a failover', { timeout: 120_000 }, async () => {
  const placement = await startCluster({ size: 1 });
  cleanups.push(() => placement.stop());
  const addresses = [...placement.peers.values()];
  const admin = client(addresses);
  const peers = new Map<string, string>();
  const journals = [await journalNode('j1', peers), await journalNode('j2', peers), await journalNode('j3', peers)];
  for (const node of journals) {
    const { result } = await admin.propose({ type: 'register-node', nodeId: node.id, roles: ['journal'], addresses: { journal: node.server.address }, leaseMs: 600_000 });
    assert.equal(result.status, 'ok');
  }
  const controller = ReplicationController.start({ client: client(addresses), isLeader: () => true, replicaClient: (address) => new ReplicaClient(address, { clusterToken: CLUSTER_TOKEN }), logger: silent, passMs: 100, calmPassMs: 100, unreachableElectMs: 500 });
  cleanups.push(() => controller.stop());
  const [a, b] = await Promise.all([PlacedShardStore.open({ client: client(addresses), logger: silent, retryDeadlineMs: 30_000, remote: { credentials: { clusterToken: CLUSTER_TOKEN } } }), PlacedShardStore.open({ client: client(addresses), logger: silent, retryDeadlineMs: 30_000, remote: { credentials: { clusterToken: CLUSTER_TOKEN } } })]);
  cleanups.push(() => a.close(), () => b.close());

  // Both creates succeed; placement holds one shard on all three journals, with a leader.
  const [infoA, infoB] = await Promise.all([a.create('orders'), b.create('orders')]);
  assert.equal(infoA.name, 'orders');
  assert.equal(infoB.name, 'orders');
  const { shards = [] } = await admin.read(['shards']);
  assert.equal(shards.length, 1);
  assert.deepEqual([...(shards[0]?.replicas ?? [])].sort(), ['j1', 'j2', 'j3']);
  const leader = shards[0]?.leader;
  assert.ok(leader !== null && leader !== undefined);
  await assert.rejects(a.create('orders'), { code: 'SL_JOURNAL_SHARD_EXISTS' });

  for (let i = 0; i < 5; i++) await a.append('orders', [{ key: null, value: Buffer.from(`r${i}`) }]);
  assert.deepEqual(values(await b.read('orders', 0)), ['r0', 'r1', 'r2', 'r3', 'r4'], 'no epoch-start record among them');

  const tailed: string[] = [];
  const stopTail = new AbortController();
  const tail = (async () => {
    for await (const record of b.tail('orders', 0, { signal: stopTail.signal })) tailed.push(record.value?.toString() ?? '-');
  })();

  // The leader's node goes away: the next appends wait for the new leader, then succeed.
  await (journals.find((node) => node.id === leader) as JournalNode).stop();
  for (let i = 5; i < 10; i++) await a.append('orders', [{ key: null, value: Buffer.from(`r${i}`) }]);
  const after = (await admin.read(['shards'])).shards?.[0];
  assert.ok(after !== undefined && after.leader !== leader && after.leaderEpoch > 1, `a new leader: ${JSON.stringify(after)}`);
  const expected = Array.from({ length: 10 }, (_, i) => `r${i}`);
  assert.deepEqual(values(await b.read('orders', 0, { maxRecords: 100 })), expected);
  for (let waited = 0; tailed.length < expected.length && waited < 300; waited++) await new Promise((resolve) => setTimeout(resolve, 100));
  stopTail.abort();
  await tail;
  assert.deepEqual(tailed, expected, 'the tail went on at the new leader, without a gap or a repeat');
});
