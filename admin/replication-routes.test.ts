// Goal: /api/replication/* answers each replicated shard's state on this node and, on the
// leader, a follower's catch-up progress that shrinks to zero as it catches up; 404 for a shard
// not replicated here, 503 on a node without replication, 401 without the token. Method: two
// real journals on disk with their ReplicationNodes and journal gRPC servers in this process
// (replica set of two), an election through runElection, one real AdminServer over the leader,
// calls over HTTP with fetch.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { Journal, journalWire, JournalServer, ReplicaClient, ReplicationNode, runElection } from '../journal/index.js';
import { AdminServer } from './admin-server.js';
import { replicationAdminRoutes } from './replication-routes.js';

const TOKEN = 'admin-token-0123456789';
const CLUSTER_TOKEN = 'cluster-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const logger = pino({ level: 'silent' });
const admin = { id: 'n', roles: ['journal'], version: '0.1.0', addresses: {} };
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

interface Node {
  id: string;
  journal: Journal;
  replication: ReplicationNode;
  client: ReplicaClient;
}

// Bodies are checked field by field against the documented shapes.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function get(server: AdminServer, path: string, headers: Record<string, string> = auth): Promise<{ status: number; body: any }> {
  const response = await fetch(`${server.url}${path}`, { headers });
  return { status: response.status, body: await response.json() };
}

test("replication routes: each shard's state, a follower's progress to caught up, and the refusals", async () => {
  const peers = new Map<string, string>();
  const nodes: Node[] = [];
  for (const id of ['1', '2']) {
    const directory = await mkdtemp(join(tmpdir(), 'sl-replication-routes-'));
    const journal = await Journal.open(directory, { retentionCheckMs: 0 });
    const replication = await ReplicationNode.open({ journal, self: id, peers, credentials: { clusterToken: CLUSTER_TOKEN }, logger });
    const server = await JournalServer.start({ journal, port: 0, replication, credentials: { clusterToken: CLUSTER_TOKEN } });
    peers.set(id, server.address);
    const node: Node = { id, journal, replication, client: new ReplicaClient(server.address, { clusterToken: CLUSTER_TOKEN }) };
    cleanups.push(async () => {
      node.client.close();
      await server.stop(0);
      await node.replication.close();
      await journal.close();
      await rm(directory, { recursive: true, force: true });
    });
    await node.client.call('createShard', { name: 's', configJson: '{}' }, 5_000);
    await journal.createShard('plain');
    nodes.push(node);
  }
  const { leader: leaderId } = await runElection({ shard: 's', replicas: peers, credentials: { clusterToken: CLUSTER_TOKEN } });
  const leader = nodes.find((node) => node.id === leaderId) as Node;
  const follower = nodes.find((node) => node !== leader) as Node;
  const server = await AdminServer.start({ broker: undefined, store: undefined, node: admin, token: TOKEN, logger, settings: () => ({}), host: '127.0.0.1', port: 0, replication: replicationAdminRoutes(leader.replication) });
  cleanups.push(() => server.stop());

  // The follower stops; the leader alone takes (acks=leader) appends it is then behind on.
  await follower.replication.close();
  for (let i = 0; i < 20; i += 1) await leader.client.call('append', { shard: 's', records: journalWire.recordsToWire([{ key: null, value: Buffer.alloc(500, i), headers: [] }], 's'), acks: 'leader' }, 5_000);
  const behind = await get(server, '/api/replication/shards/s');
  assert.equal(behind.status, 200);
  assert.equal(behind.body.shard, 's');
  assert.equal(behind.body.role, 'leader');
  assert.equal(behind.body.voter, true);
  assert.deepEqual(behind.body.replicas, ['1', '2']);
  const [progress] = behind.body.followers;
  assert.equal(progress.node, follower.id);
  assert.equal(progress.recordsBehind, behind.body.logEnd - progress.fetched);
  assert.ok(progress.recordsBehind >= 20, `records behind: ${progress.recordsBehind}`);
  assert.ok(progress.bytesBehind >= 20 * 500, `bytes behind: ${progress.bytesBehind}`);
  const list = (await get(server, '/api/replication/shards')).body;
  assert.deepEqual(list.items.map((item: { shard: string }) => item.shard), ['s']);
  assert.deepEqual(list.removed, [], 'no copy deleted');

  follower.replication = await ReplicationNode.open({ journal: follower.journal, self: follower.id, peers, credentials: { clusterToken: CLUSTER_TOKEN }, logger });
  let caughtUp = false;
  for (let poll = 0; poll < 100 && !caughtUp; poll += 1) {
    const { body } = await get(server, '/api/replication/shards/s');
    caughtUp = body.followers[0].recordsBehind === 0 && body.followers[0].bytesBehind === 0 && body.highWatermark === body.logEnd;
    if (!caughtUp) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(caughtUp, 'the follower caught up: nothing behind, the HW at the log end');

  const plain = await get(server, '/api/replication/shards/plain');
  assert.equal(plain.status, 404);
  assert.equal(plain.body.error.code, 'SL_ADMIN_NOT_FOUND');
  assert.equal((await get(server, '/api/replication/shards/s', {})).status, 401);
  const without = await AdminServer.start({ broker: undefined, store: undefined, node: admin, token: TOKEN, logger, settings: () => ({}), host: '127.0.0.1', port: 0, replication: replicationAdminRoutes(undefined) });
  cleanups.push(() => without.stop());
  const unavailable = await get(without, '/api/replication/shards');
  assert.equal(unavailable.status, 503);
  assert.equal(unavailable.body.error.code, 'SL_ADMIN_NOT_AVAILABLE');
});
