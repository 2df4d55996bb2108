// Tests of the placement group's admin routes (placement-routes.ts over placement-admin.ts) and
// the shardline_placement_* metrics.
//
// Goal: every /api/cluster route answers with its documented shape over a live 3-voter group,
// and every failure with its documented status and code: 401 without the token, 400 for a bad
// id, 404 for a node that is not a peer or not a voter, 409 with the leader's id and address on
// a follower, 503 when the group cannot finish the change. Transfer, remove and add act on the
// group (the voter set and the leader change as answered). /metrics carries the placement series.
// Method: three in-process PlacementServers on loopback gRPC (placement/service/test-cluster.ts),
// one real AdminServer per node on loopback, every call over real HTTP with fetch.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CLUSTER_ID, CLUSTER_TOKEN, PlacementClient, waitFor } from '../placement/service/testing.js';
import { startAdminCluster, type AdminTestCluster, type AdminTestNode as Node } from '../tests/support/placement-admin-group.js';

const TOKEN = 'admin-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

// Bodies are checked field by field against the documented shapes.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

async function call(node: Node, method: string, path: string, body?: unknown, headers: Record<string, string> = auth): Promise<{ status: number; body: Json }> {
  const withBody = body === undefined ? {} : { body: JSON.stringify(body), headers: { ...headers, 'content-type': 'application/json' } };
  const response = await fetch(`${node.http.url}${path}`, { method, headers, ...withBody });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
}

function assertError(result: { status: number; body: Json }, status: number, code: string): void {
  assert.equal(result.status, status, JSON.stringify(result.body));
  assert.equal(result.body.error.code, code);
  assert.ok(result.body.error.message.length > 0);
}

describe('placement admin routes over a 3-voter group', () => {
  let group: AdminTestCluster;
  let cluster: AdminTestCluster['cluster'];
  let nodes: readonly Node[];
  const leaderNode = (): Node => group.leader();
  const followers = (): Node[] => group.followers();

  before(async () => {
    group = await startAdminCluster(TOKEN, { transferWaitMs: 1_000 });
    cluster = group.cluster;
    nodes = group.nodes;
  });

  after(() => group.stop());

  test('status: each node\'s own view; no token is 401', async () => {
    const leader = leaderNode();
    for (const node of nodes) {
      const { status, body } = await call(node, 'GET', '/api/cluster/status');
      assert.equal(status, 200);
      assert.equal(body.id, node.id);
      assert.equal(body.role, node.id === leader.id ? 'leader' : 'follower');
      assert.equal(body.leader, leader.id);
      assert.equal(body.leaderAddress, cluster.peers.get(leader.id));
      assert.deepEqual([...body.voters].sort(), [1, 2, 3]);
      assert.equal(body.clusterId, CLUSTER_ID);
      assert.ok(body.term >= 1 && body.commitIndex >= 1);
      assert.equal(body.applyLag, body.commitIndex - body.appliedIndex);
      // In quorum and caught up: every voter of the fresh group is ready, no token needed.
      assert.deepEqual(await call(node, 'GET', '/readyz', undefined, {}), { status: 200, body: { status: 'ready' } });
    }
    const openapi = await call(nodes[0] as Node, 'GET', '/docs/json', undefined, {});
    assert.deepEqual(Object.keys(openapi.body.paths).filter((path) => path.startsWith('/api/cluster')).sort(), ['/api/cluster/members', '/api/cluster/members/{id}', '/api/cluster/settings', '/api/cluster/settings/{key}', '/api/cluster/shards/{name}', '/api/cluster/shards/{name}/reassign', '/api/cluster/status', '/api/cluster/transfer-leader']);
    assertError(await call(nodes[0] as Node, 'GET', '/api/cluster/status', undefined, {}), 401, 'SL_ADMIN_UNAUTHORIZED');
    assertError(await call(nodes[0] as Node, 'GET', '/api/cluster/members', undefined, { authorization: 'Bearer wrong' }), 401, 'SL_ADMIN_UNAUTHORIZED');
  });

  test('shard reassign: clear refusals, then the change recorded as the shard\'s target; a second change is 409', async () => {
    const client = new PlacementClient({ addresses: [...cluster.peers.values()], clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN });
    try {
      for (const id of ['j1', 'j2', 'j3', 'j4']) assert.equal((await client.propose({ type: 'register-node', nodeId: id, roles: ['journal'], addresses: { journal: `127.0.0.1:${id.length}` }, leaseMs: 600_000 })).result.status, 'ok');
      assert.equal((await client.propose({ type: 'register-node', nodeId: 'b1', roles: ['broker'], addresses: { broker: '127.0.0.1:9' }, leaseMs: 600_000 })).result.status, 'ok');
      assert.equal((await client.propose({ type: 'create-shard', shard: 'orders', replicas: ['j1', 'j2', 'j3'] })).result.status, 'ok');
    } finally {
      client.close();
    }
    const leader = leaderNode();
    const reassign = (node: Node, shard: string, replicas: unknown): Promise<{ status: number; body: Json }> => call(node, 'POST', `/api/cluster/shards/${shard}/reassign`, { replicas });
    assertError(await reassign(leader, 'nope', ['j1', 'j2', 'j4']), 404, 'SL_ADMIN_NOT_FOUND');
    const unknown = await reassign(leader, 'orders', ['j1', 'j2', 'j9']);
    assertError(unknown, 400, 'SL_ADMIN_BAD_REQUEST');
    assert.match(unknown.body.error.message, /j9 is not registered/);
    const broker = await reassign(leader, 'orders', ['j1', 'j2', 'b1']);
    assertError(broker, 400, 'SL_ADMIN_BAD_REQUEST');
    assert.match(broker.body.error.message, /b1 is not a journal node/);
    assert.match((await reassign(leader, 'orders', ['j1', 'j2', 'j3'])).body.error.message, /already has the replicas/);
    assertError(await reassign(leader, 'orders', ['j4']), 400, 'SL_ADMIN_BAD_REQUEST');
    assertError(await reassign(leader, 'orders', []), 400, 'SL_ADMIN_BAD_REQUEST');
    assertError(await reassign(followers()[0] as Node, 'orders', ['j1', 'j2', 'j4']), 409, 'SL_ADMIN_NOT_LEADER');
    const begun = await reassign(leader, 'orders', ['j1', 'j2', 'j4']);
    assert.equal(begun.status, 200, JSON.stringify(begun.body));
    assert.deepEqual({ replicas: begun.body.replicas, target: begun.body.target, state: begun.body.state, learners: begun.body.learners }, { replicas: ['j1', 'j2', 'j3'], target: ['j1', 'j2', 'j4'], state: 'reassigning', learners: [{ node: 'j4', durable: -1 }] });
    assertError(await reassign(leader, 'orders', ['j1', 'j4', 'j3']), 409, 'SL_ADMIN_CHANGE_IN_PROGRESS');
    const seen = await call(followers()[0] as Node, 'GET', '/api/cluster/shards/orders');
    assert.equal(seen.status, 200);
    assert.deepEqual(seen.body.target, ['j1', 'j2', 'j4']);
  });

  test('settings: read from any voter, changed on the leader only, bad values and unknown keys refused', async () => {
    const before = await call(followers()[0] as Node, 'GET', '/api/cluster/settings');
    assert.equal(before.status, 200, JSON.stringify(before.body));
    const replaceAfter = (body: Json): Json => body.items.find((item: Json) => item.key === 'replication.replace-after-ms');
    assert.deepEqual(before.body.items.map((item: Json) => item.key), ['replication.factor', 'replication.replace-after-ms', 'replication.create-grace-ms']);
    assert.deepEqual({ ...replaceAfter(before.body), summary: undefined }, { key: 'replication.replace-after-ms', value: null, default: 600000, meaning: 'a journal node gone 10 m is replaced', summary: undefined });
    const set = (node: Node, key: string, value: unknown): Promise<{ status: number; body: Json }> => call(node, 'PUT', `/api/cluster/settings/${key}`, { value });
    assertError(await set(followers()[0] as Node, 'replication.replace-after-ms', '30m'), 409, 'SL_ADMIN_NOT_LEADER');
    for (const bad of ['soon', -5, '10d', 'NaN']) assertError(await set(leaderNode(), 'replication.replace-after-ms', bad), 400, 'SL_ADMIN_BAD_REQUEST');
    assertError(await set(leaderNode(), 'replication.factor', 6), 400, 'SL_ADMIN_BAD_REQUEST');
    const unknown = await set(leaderNode(), 'replication.speed', 1);
    assertError(unknown, 404, 'SL_ADMIN_NOT_FOUND');
    assert.match(unknown.body.error.message, /replication\.replace-after-ms/);
    const changed = await set(leaderNode(), 'replication.replace-after-ms', '30m');
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.deepEqual([changed.body.value, changed.body.meaning], [1_800_000, 'a journal node gone 30 m is replaced']);
    // Placement holds it: a placement client (what the controller reads) sees the value.
    const client = new PlacementClient({ addresses: [...cluster.peers.values()], clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN });
    try {
      assert.equal((await client.read(['settings'])).settings?.find((setting) => setting.key === 'replication.replace-after-ms')?.value, 1_800_000);
    } finally {
      client.close();
    }
    const off = await set(leaderNode(), 'replication.replace-after-ms', 0);
    assert.deepEqual([off.body.value, off.body.meaning], ['never', 'journal nodes are never replaced automatically']);
    assert.equal(replaceAfter((await call(followers()[0] as Node, 'GET', '/api/cluster/settings')).body).value, 'never');
    assert.equal((await call(leaderNode(), 'GET', '/api/cluster/settings', undefined, {})).status, 401);
  });

  test('members from a follower: every peer with its status and its lag behind the leader', async () => {
    const follower = followers()[0] as Node;
    const { status, body } = await call(follower, 'GET', '/api/cluster/members');
    assert.equal(status, 200);
    assert.equal(body.leader, leaderNode().id);
    assert.equal(typeof body.commitIndex, 'number');
    assert.deepEqual(body.members.map((m: Json) => m.id), [1, 2, 3]);
    for (const member of body.members) {
      assert.equal(member.address, cluster.peers.get(member.id));
      assert.equal(member.self, member.id === follower.id);
      assert.equal(member.voter, true);
      assert.equal(member.reachable, true, member.error);
      assert.equal(member.error, null);
      assert.equal(member.role, member.id === body.leader ? 'leader' : 'follower');
      assert.equal(member.lag, Math.max(0, body.commitIndex - member.appliedIndex));
    }
  });

  test('changes on a follower are 409 with the leader\'s id and address; nothing changes', async () => {
    const follower = followers()[0] as Node;
    const leader = leaderNode();
    for (const [method, path, body] of [['POST', '/api/cluster/members', { id: 2 }], ['DELETE', `/api/cluster/members/${leader.id}`, undefined], ['POST', '/api/cluster/transfer-leader', { id: follower.id }]] as const) {
      const result = await call(follower, method, path, body);
      assertError(result, 409, 'SL_ADMIN_NOT_LEADER');
      assert.deepEqual(result.body.error.leader, { id: leader.id, address: cluster.peers.get(leader.id) });
    }
    assert.equal(leaderNode().id, leader.id);
    assert.deepEqual([...leader.admin.status().voters].sort(), [1, 2, 3]);
  });

  test('bad input is 400, a node that is not a peer or not a voter 404', async () => {
    const leader = leaderNode();
    for (const body of [{ id: 'two' }, { id: 0 }, { id: 1.5 }, {}, { id: { n: 2 } }]) assertError(await call(leader, 'POST', '/api/cluster/members', body), 400, 'SL_ADMIN_BAD_REQUEST');
    assertError(await call(leader, 'POST', '/api/cluster/transfer-leader', { id: -1 }), 400, 'SL_ADMIN_BAD_REQUEST');
    assertError(await call(leader, 'DELETE', '/api/cluster/members/abc'), 400, 'SL_ADMIN_BAD_REQUEST');
    assertError(await call(leader, 'POST', '/api/cluster/members', { id: 9 }), 404, 'SL_ADMIN_NOT_FOUND');
    assertError(await call(leader, 'DELETE', '/api/cluster/members/9'), 404, 'SL_ADMIN_NOT_FOUND');
    assertError(await call(leader, 'POST', '/api/cluster/transfer-leader', { id: 9 }), 404, 'SL_ADMIN_NOT_FOUND');
  });

  test('transfer-leader hands over and answers once the target leads', async () => {
    const before = leaderNode();
    const target = followers()[0] as Node;
    const { status, body } = await call(before, 'POST', '/api/cluster/transfer-leader', { id: target.id });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.leader, target.id);
    assert.ok(body.term > 0);
    await waitFor('the target to lead', () => (cluster.leader()?.nodeId === target.id ? true : undefined));
    assert.equal((await call(target, 'GET', '/api/cluster/status')).body.role, 'leader');
  });

  test('remove a follower, then add it back: the voter set changes as answered', async () => {
    const leader = leaderNode();
    const victim = followers()[0] as Node;
    const removed = await call(leader, 'DELETE', `/api/cluster/members/${victim.id}`);
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    assert.deepEqual([...removed.body.voters].sort(), [1, 2, 3].filter((id) => id !== victim.id));
    assert.ok(removed.body.index > 0);
    const members = await call(leader, 'GET', '/api/cluster/members');
    assert.equal(members.body.members.find((m: Json) => m.id === victim.id).voter, false);
    assertError(await call(leader, 'DELETE', `/api/cluster/members/${victim.id}`), 404, 'SL_ADMIN_NOT_FOUND');
    const added = await call(leader, 'POST', '/api/cluster/members', { id: victim.id });
    assert.equal(added.status, 200, JSON.stringify(added.body));
    assert.deepEqual([...added.body.voters].sort(), [1, 2, 3]);
    assert.ok(added.body.index > removed.body.index);
    const again = await call(leader, 'POST', '/api/cluster/members', { id: victim.id });
    assert.equal(again.status, 200, 'adding a voter again changes nothing and answers the same set');
    assert.deepEqual([...again.body.voters].sort(), [1, 2, 3]);
    await waitFor('the re-added voter to catch up', () => (cluster.servers[victim.id - 1]?.status().voters.length === 3 ? true : undefined));
  });

  test('/metrics: term, leadership, indexes, lag per member, leader changes, proposal latency', async () => {
    const leader = leaderNode();
    const client = new PlacementClient({ addresses: [...cluster.peers.values()], clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN });
    try {
      for (let i = 0; i < 3; i++) await client.propose({ type: 'set-setting', key: `k${i}`, value: i });
    } finally {
      client.close();
    }
    const response = await fetch(`${leader.http.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(response.status, 200);
    const page = await response.text();
    const value = (series: string): number => {
      const line = page.split('\n').find((candidate) => candidate.startsWith(series));
      assert.ok(line !== undefined, `${series} in\n${page}`);
      return Number(line.split(' ').pop());
    };
    const status = leader.admin.status();
    assert.equal(value('shardline_placement_is_leader{'), 1);
    assert.equal(value('shardline_placement_term{'), status.term);
    assert.ok(value('shardline_placement_commit_index{') >= status.commitIndex - 1);
    assert.ok(value('shardline_placement_applied_index{') > 0);
    assert.ok(value('shardline_placement_apply_lag_entries{') >= 0);
    // The first leader, then the transfer: at least two on the node that now leads.
    assert.ok(value('shardline_placement_leader_changes_total{') >= 2);
    for (const id of [1, 2, 3]) assert.ok(value(`shardline_placement_member_lag_entries{member="${id}"`) >= 0);
    assert.equal(value('shardline_placement_proposal_latency_seconds_count{'), 3);
    const follower = followers()[0] as Node;
    const followerPage = await (await fetch(`${follower.http.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    assert.match(followerPage, /^shardline_placement_is_leader\{node="p\d"\} 0$/m);
    assert.doesNotMatch(followerPage, /^shardline_placement_member_lag_entries\{/m, 'only the leader reports member lag');
  });

  // Last: it stops a node.
  test('a down member is unreachable with no lag, and a transfer to it is 503', async () => {
    const leader = leaderNode();
    const down = followers()[0] as Node;
    await cluster.servers[down.id - 1]?.stop(100);
    const members = await call(leader, 'GET', '/api/cluster/members');
    assert.equal(members.status, 200);
    const entry = members.body.members.find((m: Json) => m.id === down.id);
    assert.equal(entry.reachable, false);
    assert.equal(entry.lag, null);
    assert.equal(typeof entry.error, 'string');
    assertError(await call(leader, 'POST', '/api/cluster/transfer-leader', { id: down.id }), 503, 'SL_ADMIN_CLUSTER_UNAVAILABLE');
    // Two of three still make a quorum: the running voters stay ready.
    for (const node of nodes.filter((candidate) => candidate.id !== down.id)) assert.deepEqual(await call(node, 'GET', '/readyz', undefined, {}), { status: 200, body: { status: 'ready' } }, `voter ${node.id}`);
  });
});
