// Goal: a replica-set change carried out by the controller's driver on real journals: a replica
// moved by hand (begin-reassign) to a fourth node copies the shard as a learner while appends go
// on, the set switches, and the new replica ends holding exactly the leader's records; then a
// node gone for good (deregistered) is replaced by the spare, which held an old copy of the shard
// and must not vote with it; finally the leader goes, and the remaining replicas elect one that
// holds every acknowledged record.
// Method: a one-voter placement group and four journals with their gRPC servers and replication
// in this process (loopback), as replication-controller.test.ts; appends from a loop that always
// writes to the leader placement names.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { Journal, JournalServer, readBatchHeader, ReplicaClient, ReplicationNode } from '../../journal/index.js';
import { CLUSTER_ID, CLUSTER_TOKEN, PlacementClient, startCluster } from '../../placement/service/testing.js';
import { REPLACE_AFTER_SETTING } from './controller-core.js';
import { ReplicationController } from './replication-controller.js';
import { sleep, until } from './test-support.js';

const silent = pino({ level: 'silent' });
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});


interface Node {
  id: string;
  journal: Journal;
  replication: ReplicationNode;
  server: JournalServer;
  open: boolean;
}

async function open(id: string, directory: string, peers: Map<string, string>): Promise<Node> {
  const journal = await Journal.open(directory, { retentionCheckMs: 0 });
  const replication = await ReplicationNode.open({ journal, self: id, peers, credentials: { clusterToken: CLUSTER_TOKEN }, logger: silent });
  const server = await JournalServer.start({ journal, port: 0, replication, credentials: { clusterToken: CLUSTER_TOKEN } });
  peers.set(id, server.address);
  return { id, journal, replication, server, open: true };
}

async function close(node: Node): Promise<void> {
  if (!node.open) return;
  node.open = false;
  node.server.forceStop();
  await node.server.stop(0);
  await node.replication.close();
  await node.journal.close();
}

test('a replica moved by hand and a node gone for good are replaced; nothing acknowledged is lost', { timeout: 240_000 }, async () => {
  const placement = await startCluster({ size: 1 });
  cleanups.push(() => placement.stop());
  const client = new PlacementClient({ addresses: [...placement.peers.values()], clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN });
  cleanups.push(async () => client.close());
  const peers = new Map<string, string>();
  const nodes = new Map<string, Node>();
  for (const id of ['j1', 'j2', 'j3', 'j4']) {
    const directory = await mkdtemp(join(tmpdir(), 'sl-reassign-'));
    cleanups.push(() => rm(directory, { recursive: true, force: true }));
    const node = await open(id, directory, peers);
    nodes.set(id, node);
    assert.equal((await client.propose({ type: 'register-node', nodeId: id, roles: ['journal'], addresses: { journal: node.server.address }, leaseMs: 600_000 })).result.status, 'ok');
  }
  cleanups.push(async () => {
    for (const node of nodes.values()) await close(node).catch(() => undefined);
  });
  for (const id of ['j1', 'j2', 'j3']) await nodes.get(id)?.journal.createShard('s', { durability: 'fsync' });
  assert.equal((await client.propose({ type: 'create-shard', shard: 's', replicas: ['j1', 'j2', 'j3'] })).result.status, 'ok');
  const controller = ReplicationController.start({ client, isLeader: () => true, replicaClient: (address) => new ReplicaClient(address, { clusterToken: CLUSTER_TOKEN }), logger: silent, passMs: 50, calmPassMs: 50, unreachableElectMs: 500 });
  cleanups.push(() => controller.stop());
  const record = async (): Promise<{ replicas: readonly string[]; leader: string | null; leaderEpoch: number; target?: readonly string[] }> => (await client.read(['shards'])).shards?.find((shard) => shard.name === 's') ?? assert.fail('shard s');
  const status = (id: string): ReturnType<ReplicationNode['status']> | undefined => {
    try {
      return nodes.get(id)?.replication.status('s');
    } catch {
      return undefined; // not reached by an election yet
    }
  };
  await until('a leader', async () => ((await record()).leader !== null && status((await record()).leader as string)?.role === 'leader' ? true : undefined));

  // Appends go on throughout, always to the leader placement names. A failed one (its leader was
  // deposed while it waited) may or may not be kept; only acknowledged ones are checked.
  const acknowledged: string[] = [];
  let writing = true;
  let sent = 0;
  const writer = (async (): Promise<void> => {
    while (writing && sent < 5_000) {
      const value = `m${sent++}`;
      try {
        const leader = (await record()).leader;
        const node = leader === null ? undefined : nodes.get(leader);
        if (node === undefined || !node.open) throw new Error('no leader');
        await node.replication.append('s', [{ key: null, value: Buffer.from(value), headers: [] }], 'quorum');
        acknowledged.push(value);
      } catch {
        await sleep(50);
      }
    }
  })();
  cleanups.push(async () => {
    writing = false;
    await writer;
  });
  const ackedAtLeast = async (count: number): Promise<void> => {
    await until(`${count} acknowledged appends`, async () => (acknowledged.length >= count ? true : undefined));
  };
  await ackedAtLeast(30);

  // By hand: j3 moves to j4.
  const epoch = (await record()).leaderEpoch;
  assert.equal((await client.propose({ type: 'begin-reassign', shard: 's', expectedEpoch: epoch, replicas: ['j1', 'j2', 'j4'] })).result.status, 'ok');
  const moved = await until('the set switched to j1,j2,j4 with a leader', async () => {
    const now = await record();
    return now.target === undefined && now.replicas.join(',') === 'j1,j2,j4' && now.leader !== null ? now : undefined;
  });
  assert.ok(moved.leaderEpoch > epoch, 'the switch took a new epoch');
  await ackedAtLeast(acknowledged.length + 20);
  await until('j4 follows the leader as a voter, caught up', async () => {
    const j4 = status('j4');
    const leader = status(moved.leader as string);
    return j4?.voter === true && j4.epoch === moved.leaderEpoch && leader !== undefined && j4.highWatermark > 0 ? true : undefined;
  });

  // j2 is gone for good: stopped and deregistered; replacement is on (1 ms after its lease).
  await close(nodes.get('j2') as Node);
  assert.equal((await client.propose({ type: 'deregister-node', nodeId: 'j2' })).result.status, 'ok');
  assert.equal((await client.propose({ type: 'set-setting', key: REPLACE_AFTER_SETTING, value: 1 })).result.status, 'ok');
  const replaced = await until('j2 replaced by j3 (the only live spare)', async () => {
    const now = await record();
    return now.target === undefined && now.replicas.join(',') === 'j1,j3,j4' && now.leader !== null ? now : undefined;
  });
  await ackedAtLeast(acknowledged.length + 20);
  // j3 held an old copy (it was a replica until the move): it must catch up before it votes.
  await until('j3 votes again, in the replaced set\'s epoch', async () => (status('j3')?.voter === true && status('j3')?.epoch === replaced.leaderEpoch ? true : undefined));

  // The leader goes: the other two elect one that holds every acknowledged record.
  const oldLeader = replaced.leader as string;
  await close(nodes.get(oldLeader) as Node);
  const next = await until('a new leader', async () => {
    const now = await record();
    return now.leader !== null && now.leader !== oldLeader && status(now.leader)?.role === 'leader' ? now.leader : undefined;
  });
  await ackedAtLeast(acknowledged.length + 10);
  writing = false;
  await writer;
  const leader = nodes.get(next) as Node;
  const values = async (node: Node): Promise<string[]> => (await node.journal.read('s', 0, { maxRecords: 100_000 })).map((entry) => String(entry.value));
  const held = await values(leader);
  let at = 0;
  for (const value of acknowledged) {
    at = held.indexOf(value, at);
    assert.ok(at >= 0, `acknowledged ${value} is missing from the new leader ${next}, or out of order`);
  }
  // Every live replica holds the leader's records below the HW, byte for byte.
  const hw = leader.replication.highWatermark('s') as number;
  const batches = async (node: Node): Promise<string> => (await node.journal.shard('s').readBatches(0, { maxBytes: 64 * 1024 * 1024 })).batches.filter((bytes) => readBatchHeader(bytes, 0).baseOffset < hw).map((bytes) => bytes.toString('hex')).join('');
  for (const id of ['j1', 'j3', 'j4'].filter((one) => one !== oldLeader && one !== next)) {
    const follower = nodes.get(id) as Node;
    await until(`${id} caught up to the HW`, async () => ((follower.replication.highWatermark('s') ?? 0) >= hw ? true : undefined));
    assert.equal(await batches(follower), await batches(leader), `${id}'s batches below the HW differ from the leader's`);
  }
});
