// Goal: the controller's driver acts only while its voter leads placement, elects a new shard's
// leader once it does, and records it in placement and on the replicas alike; a replica that
// restarted after leading is brought back as a follower of a newer epoch; it passes seldom while
// all is calm and often again once a replica stops answering.
// Method: a one-voter placement group and three journals with their gRPC servers and replication
// in this process (loopback); the shard is created by hand on placement and the journals.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { Journal, JournalServer, ReplicaClient, ReplicationNode } from '../../journal/index.js';
import { CLUSTER_ID, CLUSTER_TOKEN, PlacementClient, startCluster } from '../../placement/service/testing.js';
import { CREATE_GRACE_SETTING } from './controller-core.js';
import { ReplicationController } from './replication-controller.js';
import { sleep, until } from './test-support.js';

const silent = pino({ level: 'silent' });
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});


interface Node {
  id: string;
  directory: string;
  peers: Map<string, string>;
  journal: Journal;
  replication: ReplicationNode;
  server: JournalServer;
}

async function open(id: string, directory: string, peers: Map<string, string>, port = 0): Promise<Node> {
  const journal = await Journal.open(directory, { retentionCheckMs: 0 });
  const replication = await ReplicationNode.open({ journal, self: id, peers, credentials: { clusterToken: CLUSTER_TOKEN }, logger: silent });
  const server = await JournalServer.start({ journal, port, replication, credentials: { clusterToken: CLUSTER_TOKEN } });
  peers.set(id, server.address);
  return { id, directory, peers, journal, replication, server };
}

async function close(node: Node): Promise<void> {
  node.server.forceStop();
  await node.server.stop(0);
  await node.replication.close();
  await node.journal.close();
}

test('elects only while leading placement; a restarted leader comes back as a follower', { timeout: 120_000 }, async () => {
  const placement = await startCluster({ size: 1 });
  cleanups.push(() => placement.stop());
  const client = new PlacementClient({ addresses: [...placement.peers.values()], clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN });
  cleanups.push(async () => client.close());
  const peers = new Map<string, string>();
  const nodes: Node[] = [];
  for (const id of ['j1', 'j2', 'j3']) {
    const directory = await mkdtemp(join(tmpdir(), 'sl-controller-'));
    cleanups.push(() => rm(directory, { recursive: true, force: true }));
    const node = await open(id, directory, peers);
    nodes.push(node);
    await node.journal.createShard('s', { durability: 'fsync' });
    assert.equal((await client.propose({ type: 'register-node', nodeId: id, roles: ['journal'], addresses: { journal: node.server.address }, leaseMs: 600_000 })).result.status, 'ok');
  }
  cleanups.push(async () => {
    for (const node of nodes) await close(node).catch(() => undefined);
  });
  assert.equal((await client.propose({ type: 'create-shard', shard: 's', replicas: ['j2', 'j1', 'j3'] })).result.status, 'ok');

  let leading = false;
  // Every placement read of the controller starts a pass: counted to see how often it runs.
  let passes = 0;
  const counted = new Proxy(client, {
    get(target, property, receiver) {
      if (property === 'read') return (...args: Parameters<PlacementClient['read']>) => ((passes += 1), target.read(...args));
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  const controller = ReplicationController.start({ client: counted, isLeader: () => leading, replicaClient: (address) => new ReplicaClient(address, { clusterToken: CLUSTER_TOKEN }), logger: silent, passMs: 50, calmPassMs: 600 });
  cleanups.push(() => controller.stop());
  const shard = async (): Promise<{ leader: string | null; leaderEpoch: number }> => (await client.read(['shards'])).shards?.find((record) => record.name === 's') ?? assert.fail('shard s');
  await sleep(500);
  const idle = await shard();
  assert.equal(idle.leader, null, 'nothing happens while this voter does not lead');
  assert.equal(idle.leaderEpoch, 0);

  leading = true;
  const first = await until('a leader', async () => {
    const record = await shard();
    return record.leader === null ? undefined : record;
  });
  // Equal empty logs: the replica set's first, the preferred leader, wins.
  assert.equal(first.leader, 'j2');
  assert.equal(first.leaderEpoch, 1);
  const status = (node: Node): ReturnType<ReplicationNode['status']> => node.replication.status('s');
  await until('every replica in epoch 1 under j2', async () => (nodes.every((node) => status(node).epoch === 1 && status(node).leader === 'j2') ? true : undefined));
  assert.equal(status(nodes[1] as Node).role, 'leader');

  // Calm (every replica answers, nothing to do): a pass every 600 ms, not every 50 ms.
  await sleep(700);
  const calmFrom = passes;
  await sleep(1_800);
  assert.ok(passes - calmFrom <= 4, `${passes - calmFrom} passes in 1.8 s while calm`);

  // The leader restarts on its port: it may not lead epoch 1 again, so the controller elects anew
  // and the old leader follows the new one.
  const old = nodes[1] as Node;
  const port = Number(old.server.address.slice(old.server.address.lastIndexOf(':') + 1));
  await close(old);
  // Not calm while a replica does not answer: passes every 50 ms again.
  const downFrom = passes;
  await sleep(1_500);
  assert.ok(passes - downFrom >= 8, `${passes - downFrom} passes in 1.5 s with the leader down`);
  nodes[1] = await open('j2', old.directory, peers, port);
  const second = await until('a new epoch', async () => {
    const record = await shard();
    return record.leaderEpoch > 1 && record.leader !== null ? record : undefined;
  });
  await until('every replica following the new leader', async () => (nodes.every((node) => status(node).epoch === second.leaderEpoch && status(node).leader === second.leader && status(node).role === (node.id === second.leader ? 'leader' : 'follower')) ? true : undefined));
});

test('a replica whose data directory is wiped is created again, catches up without a vote, and then holds every acknowledged record', { timeout: 180_000 }, async () => {
  const placement = await startCluster({ size: 1 });
  cleanups.push(() => placement.stop());
  const client = new PlacementClient({ addresses: [...placement.peers.values()], clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN });
  cleanups.push(async () => client.close());
  const peers = new Map<string, string>();
  const nodes: Node[] = [];
  for (const id of ['j1', 'j2', 'j3']) {
    const directory = await mkdtemp(join(tmpdir(), 'sl-controller-wipe-'));
    cleanups.push(() => rm(directory, { recursive: true, force: true }));
    const node = await open(id, directory, peers);
    nodes.push(node);
    await node.journal.createShard('s', { durability: 'fsync', maxRecordBytes: 4096 });
    assert.equal((await client.propose({ type: 'register-node', nodeId: id, roles: ['journal'], addresses: { journal: node.server.address }, leaseMs: 600_000 })).result.status, 'ok');
  }
  cleanups.push(async () => {
    for (const node of nodes) await close(node).catch(() => undefined);
  });
  assert.equal((await client.propose({ type: 'create-shard', shard: 's', replicas: ['j1', 'j2', 'j3'] })).result.status, 'ok');
  // The shard is on every replica already, so the wiped one need not wait the default 10 s.
  assert.equal((await client.propose({ type: 'set-setting', key: CREATE_GRACE_SETTING, value: 500 })).result.status, 'ok');
  const controller = ReplicationController.start({ client, isLeader: () => true, replicaClient: (address) => new ReplicaClient(address, { clusterToken: CLUSTER_TOKEN }), logger: silent, passMs: 50, calmPassMs: 50, unreachableElectMs: 500 });
  cleanups.push(() => controller.stop());
  const status = (node: Node): ReturnType<ReplicationNode['status']> => node.replication.status('s');
  const roleOf = (node: Node): string | undefined => {
    try {
      return status(node).role;
    } catch {
      return undefined; // no election has reached it yet
    }
  };
  await until('j1 leads', async () => (roleOf(nodes[0] as Node) === 'leader' ? true : undefined));
  const acknowledged: string[] = [];
  const appendSome = async (leader: Node, prefix: string): Promise<void> => {
    for (let i = 0; i < 20; i++) {
      await leader.replication.append('s', [{ key: null, value: Buffer.from(`${prefix}-${i}`), headers: [] }], 'quorum');
      acknowledged.push(`${prefix}-${i}`);
    }
  };
  await appendSome(nodes[0] as Node, 'before');

  // j3 loses its disk: same id and port, an empty data directory.
  const wiped = nodes[2] as Node;
  const port = Number(wiped.server.address.slice(wiped.server.address.lastIndexOf(':') + 1));
  await close(wiped);
  await rm(wiped.directory, { recursive: true, force: true });
  const empty = await mkdtemp(join(tmpdir(), 'sl-controller-wiped-'));
  cleanups.push(() => rm(empty, { recursive: true, force: true }));
  nodes[2] = await open('j3', empty, peers, port);
  await appendSome(nodes[0] as Node, 'during');
  const values = async (node: Node): Promise<string[]> => (await node.journal.read('s', 0, { maxRecords: 1000 })).map((record) => String(record.value));
  const caughtUp = await until('j3 created again, following and caught up', async () => {
    const j3 = nodes[2] as Node;
    if (!j3.journal.hasShard('s')) return undefined;
    let seen: ReturnType<ReplicationNode['status']>;
    try {
      seen = status(j3);
    } catch {
      return undefined; // created, not told of the epoch yet
    }
    return seen.role === 'follower' && seen.logEnd === status(nodes[0] as Node).logEnd && seen.voter ? seen : undefined;
  }, 60_000);
  assert.equal(caughtUp.leader, 'j1');
  assert.equal((nodes[2] as Node).journal.info('s').config.maxRecordBytes, 4096, 'created with the leader\'s config');
  await until('the wiped replica reads what the leader acknowledged, in order', async () => (JSON.stringify(await values(nodes[2] as Node)) === JSON.stringify(acknowledged) ? true : undefined));

  // Now the leader goes: j2 and the repaired j3 elect a leader that has every acknowledged record.
  await close(nodes[0] as Node);
  const next = await until('a new leader among j2 and j3', async () => {
    const record = (await client.read(['shards'])).shards?.find((shard) => shard.name === 's');
    return record?.leader === 'j2' || record?.leader === 'j3' ? record.leader : undefined;
  }, 60_000);
  const leader = nodes.find((node) => node.id === next) as Node;
  await until('the new leader leads', async () => (roleOf(leader) === 'leader' ? true : undefined));
  await appendSome(leader, 'after');
  await until('the new leader reads every acknowledged record, in order', async () => (JSON.stringify(await values(leader)) === JSON.stringify(acknowledged) ? true : undefined));
});
