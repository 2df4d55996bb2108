// Joins on loopback with in-process servers: a server started with an empty log and no voter
// set asks the group to add it (AddVoter with its address, PlacementClient.join), gets the log
// from the leader and applies what the group applied; a retry of the join changes nothing; an
// id or address another voter has, or the id of a removed voter, is refused
// (SL_PLACEMENT_JOIN_CONFLICT); a second change
// while one is not applied is refused (SL_PLACEMENT_CHANGE_IN_PROGRESS) while the same one
// again waits for the first; a change that would leave too few running voters is refused
// (SL_PLACEMENT_QUORUM_AT_RISK); and a voter removed while it was down, started again, is told by
// the leader that it is not a member and does not disturb the group.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { recordingLogger } from '../../tests/support/recording-logger.js';
import { isShardlineError } from '../../base/index.js';
import { MemoryAppliedStatePersistence, MemoryRaftPersistence } from '../replica/index.js';
import { PlacementClient } from './client.js';
import { PlacementErrors } from './errors.js';
import { freeLoopbackPorts } from './free-ports.js';
import { PlacementServer, PEER_ADDRESSES_SETTING } from './server.js';
import { CLUSTER_ID, CLUSTER_TOKEN, startCluster, waitFor } from './test-cluster.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A server as a joining voter starts: its log empty, no initial voters, knowing only itself. */
async function joiner(nodeId: number, port: number, persistence = { raftPersistence: new MemoryRaftPersistence(), appliedPersistence: new MemoryAppliedStatePersistence() }): Promise<PlacementServer> {
  const server = await PlacementServer.start({ nodeId, clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN, peers: new Map([[nodeId, `127.0.0.1:${port}`]]), ...persistence, tickMs: 20, requestTimeoutMs: 2_000 });
  cleanups.push(() => server.stop(200));
  return server;
}

function client(addresses: string[]): PlacementClient {
  const c = new PlacementClient({ addresses, clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN, requestTimeoutMs: 8_000 });
  cleanups.push(() => c.close());
  return c;
}

async function refusal(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isShardlineError(error), `a coded error: ${String(error)}`);
    return { code: error.code, message: error.message };
  }
  assert.fail('expected a refusal');
}

test('a voter with an empty log joins, catches up, and a retry of its join changes nothing', async () => {
  const cluster = await startCluster();
  cleanups.push(() => cluster.stop());
  await waitFor('a leader', () => cluster.leader());
  const group = client([...cluster.peers.values()]);
  for (let i = 1; i <= 20; i++) await group.propose({ type: 'set-setting', key: `before-${i}`, value: i });
  const [port] = await freeLoopbackPorts(1);
  const newcomer = await joiner(4, port as number);
  assert.deepEqual(newcomer.status().voters, [], 'a joining voter writes no voter set of its own');
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(newcomer.status().role, 'follower', 'with no voter set it never campaigns');

  const answer = await group.join(4, `127.0.0.1:${port}`);
  assert.deepEqual(answer.voters, [1, 2, 3, 4]);
  assert.deepEqual(answer.peers?.map((peer) => peer.id).sort(), [1, 2, 3, 4], 'the answer lists every peer');
  newcomer.learnPeers((answer.peers ?? []).map((peer) => [peer.id, peer.address]));

  const leader = cluster.leader() as PlacementServer;
  await waitFor('the newcomer applies what the leader applied', () => (newcomer.status().appliedIndex >= leader.status().commitIndex && newcomer.status().voters.length === 4 ? true : undefined));
  assert.equal(newcomer.status().leader, leader.nodeId);
  // Every voter learned the address from the replicated state, not from its configuration.
  for (const server of cluster.servers) assert.equal(server.knownPeers().get(4), `127.0.0.1:${port}`, `node ${server.nodeId} knows node 4's address`);
  const peerSetting = await group.read(['settings']);
  assert.equal(peerSetting.settings?.find((s) => s.key === PEER_ADDRESSES_SETTING)?.value instanceof Object, true);

  const again = await group.join(4, `127.0.0.1:${port}`);
  assert.deepEqual(again.voters, [1, 2, 3, 4], 'the same join again is answered with the voter set');

  // The group takes writes with four voters, and the newcomer gets them.
  await group.propose({ type: 'set-setting', key: 'after', value: 'four voters' });
  await waitFor('the newcomer applies the write', () => (newcomer.status().appliedIndex >= leader.status().commitIndex ? true : undefined));

  const taken = await refusal(group.join(3, '127.0.0.1:1'));
  assert.equal(taken.code, PlacementErrors.joinConflict.code);
  assert.match(taken.message, /node id 3 is already a voter at 127\.0\.0\.1:\d+, not at 127\.0\.0\.1:1; pick another --node-id, or remove-member 3 first/);
  const sameAddress = await refusal(group.join(9, `127.0.0.1:${port}`));
  assert.equal(sameAddress.code, PlacementErrors.joinConflict.code);
  assert.match(sameAddress.message, /address 127\.0\.0\.1:\d+ belongs to voter 4/);
  await cluster.stop();
});

test('a second membership change while one is not applied is refused; the same one again waits for it', async () => {
  // 100 ms ticks, elections after 20: the leader keeps its role (check-quorum) and counts its
  // stopped followers as running (the quorum check) for about two seconds, long enough for the
  // calls below even on a loaded machine.
  const cluster = await startCluster({ tickMs: 100, replica: { electionTick: 20 } });
  cleanups.push(() => cluster.stop());
  const leader = await waitFor('a leader', () => cluster.leader(), 20_000);
  const group = client([leader.address]);
  // Without its followers the leader cannot commit: the first change stays in progress.
  await Promise.all(cluster.servers.filter((server) => server !== leader).map((server) => server.stop(100)));
  const [port4, port5] = await freeLoopbackPorts(2);
  const first = group.join(4, `127.0.0.1:${port4}`).then(() => null, (error: unknown) => error);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const second = await refusal(group.join(5, `127.0.0.1:${port5}`));
  assert.equal(second.code, PlacementErrors.changeInProgress.code);
  assert.match(second.message, /membership change for node 5 refused: the addition of node 4 is still in progress; retry once it is done/);
  // The same join again (a joining node retrying) is not refused: it waits for the first one.
  const same = group.join(4, `127.0.0.1:${port4}`).then(() => null, (error: unknown) => error);
  const removal = await refusal(group.removeVoter(2));
  assert.equal(removal.code, PlacementErrors.changeInProgress.code);
  // The first one never committed (no quorum): its outcome is unknown, not a refusal.
  for (const outcome of [await first, await same]) {
    assert.ok(isShardlineError(outcome) && outcome.code !== PlacementErrors.changeInProgress.code, `the first change ended without a refusal: ${String(outcome)}`);
  }
  // Now, not at the end of the file: its leader would keep dialing its followers' ports, which
  // the next test's servers may get (same cluster id and token in these tests).
  await cluster.stop();
});

test('a change that would leave too few running voters for a quorum is refused; removing the lost voter first works', async () => {
  const cluster = await startCluster();
  cleanups.push(() => cluster.stop());
  const leader = await waitFor('a leader', () => cluster.leader());
  const group = client([leader.address]);
  const [lost, live] = cluster.servers.filter((server) => server !== leader) as [PlacementServer, PlacementServer];
  await lost.stop(100);
  // More than two election timeouts (20 ms ticks) without a word from it: it counts as down.
  await new Promise((resolve) => setTimeout(resolve, 600));
  const [port] = await freeLoopbackPorts(1);
  const add = await refusal(group.join(4, `127.0.0.1:${port}`));
  assert.equal(add.code, PlacementErrors.quorumAtRisk.code);
  assert.match(add.message, new RegExp(`adding node 4 makes 4 voters, which need 3 running for every write, and only 2 of them answer now \\(not heard from within \\d+ ms: ${lost.nodeId}\\); bring it back or remove-member the lost one first`));
  const remove = await refusal(group.removeVoter(live.nodeId));
  assert.equal(remove.code, PlacementErrors.quorumAtRisk.code);
  assert.match(remove.message, new RegExp(`removing node ${live.nodeId} leaves 2 voters`));
  assert.deepEqual(leader.status().voters, [1, 2, 3], 'nothing changed');
  assert.equal(leader.status().commitIndex, leader.status().appliedIndex);
  // The order docs/operations.md gives: remove the lost voter, then join the new one.
  assert.deepEqual((await group.removeVoter(lost.nodeId)).voters, [1, 2, 3].filter((id) => id !== lost.nodeId));
  const newcomer = await joiner(4, port as number);
  const answer = await group.join(4, `127.0.0.1:${port}`);
  newcomer.learnPeers((answer.peers ?? []).map((peer) => [peer.id, peer.address]));
  assert.equal(answer.voters.length, 3);
  await waitFor('the newcomer catches up', () => (newcomer.status().appliedIndex >= leader.status().commitIndex && newcomer.status().voters.length === 3 ? true : undefined));
  await cluster.stop();
});

test('a voter removed while it was down does not disturb the group when it comes back, and is told why', async () => {
  const persistences = new Map([1, 2, 3].map((id) => [id, { raftPersistence: new MemoryRaftPersistence(), appliedPersistence: new MemoryAppliedStatePersistence() }]));
  const cluster = await startCluster({ persistence: (id) => persistences.get(id) as { raftPersistence: MemoryRaftPersistence; appliedPersistence: MemoryAppliedStatePersistence } });
  cleanups.push(() => cluster.stop());
  const leader = await waitFor('a leader', () => cluster.leader());
  const group = client([...cluster.peers.values()]);
  await group.propose({ type: 'set-setting', key: 'a', value: 1 });
  const victim = cluster.servers.find((server) => server !== leader) as PlacementServer;
  await waitFor('the victim has the write', () => (victim.status().appliedIndex >= leader.status().commitIndex ? true : undefined));
  await victim.stop(100);
  await group.removeVoter(victim.nodeId);
  const { term } = leader.status();
  // Back on its own log, which still lists it as a voter (it missed its removal): it campaigns.
  const logs = recordingLogger('warn');
  const returned = await PlacementServer.start({ nodeId: victim.nodeId, clusterId: CLUSTER_ID, clusterToken: CLUSTER_TOKEN, peers: cluster.peers, ...(persistences.get(victim.nodeId) as object as { raftPersistence: MemoryRaftPersistence; appliedPersistence: MemoryAppliedStatePersistence }), tickMs: 20, requestTimeoutMs: 2_000, logger: logs.logger });
  cleanups.push(() => returned.stop(200));
  await waitFor('the returned voter is told it is not a member', () => logs.lines().find((line) => String(line.msg).includes(`node ${victim.nodeId} is not a voter of this group`)), 5_000);
  // Twenty of its election timeouts at least.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  assert.equal(leader.status().role, 'leader', 'the leader kept its role');
  assert.equal(leader.status().term, term, 'and its term: the returned voter forced no election');
  assert.notEqual(returned.status().role, 'leader');
  await group.propose({ type: 'set-setting', key: 'b', value: 2 });
  // Its id is retired: a process joining under it with an empty data directory is refused.
  const [port] = await freeLoopbackPorts(1);
  const again = await refusal(group.join(victim.nodeId, `127.0.0.1:${port}`));
  assert.equal(again.code, PlacementErrors.joinConflict.code);
  assert.match(again.message, new RegExp(`node id ${victim.nodeId} was removed from this group and may not join again`));
  assert.deepEqual(leader.status().voters, [1, 2, 3].filter((id) => id !== victim.nodeId), 'nothing changed');
});
