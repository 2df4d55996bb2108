// Goal: log compaction. A leader whose log no longer holds what a follower needs sends its
// snapshot; the follower restores its state and voter set from it and then follows the log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestNetwork } from './test-network.js';

test('a lagging follower is caught up with a snapshot once the leader compacted its log', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 21 });
  const lead = net.electLeader();
  const lagging = [1, 2, 3].find((id) => id !== lead)!;
  net.propose(lead, 'before');
  net.isolate(lagging);
  for (let i = 0; i < 20; i++) net.propose(lead, `e${i}`);
  const snapIndex = net.snapshotAndCompact(lead);
  assert.ok(net.get(lead).storage.firstIndex() > net.get(lagging).storage.lastIndex() + 1, 'the follower needs compacted entries');
  net.heal();
  net.tick(3);
  net.propose(lead, 'after');
  const snaps = net.delivered.filter((m) => m.type === 'snap' && m.to === lagging);
  assert.equal(snaps.length, 1);
  const follower = net.get(lagging);
  assert.equal(follower.storage.snapshot().metadata.index, snapIndex);
  assert.deepEqual(follower.confState.voters, [1, 2, 3], 'the voter set comes with the snapshot');
  assert.deepEqual(follower.state, net.get(lead).state);
  assert.equal(follower.state.at(-1), 'after');
  assert.equal(net.get(lead).node.progressOf(lagging)?.state, 'replicate');
});

test('a node restarts from its snapshot and re-applies the log after it', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 8 });
  const lead = net.electLeader();
  for (let i = 0; i < 5; i++) net.propose(lead, `a${i}`);
  const follower = [1, 2, 3].find((id) => id !== lead)!;
  net.snapshotAndCompact(follower);
  for (let i = 0; i < 3; i++) net.propose(lead, `b${i}`);
  const before = [...net.get(follower).state];
  const restarted = net.restart(follower);
  assert.deepEqual(restarted.node.status().voters, [1, 2, 3], 'the voter set is restored from the snapshot');
  net.tick(3);
  assert.deepEqual(net.get(follower).state, before);
  net.propose(lead, 'c');
  assert.deepEqual(net.get(follower).state, [...before, 'c']);
});

test('a restarted node without snapshot re-applies its committed log, conf entries included', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 12 });
  const lead = net.electLeader();
  net.propose(lead, 'x');
  const restarted = net.restart(lead);
  assert.deepEqual(restarted.node.status().voters, [], 'voters are unknown until the conf entries are applied again');
  net.stabilize();
  assert.deepEqual(net.get(lead).confState.voters, [1, 2, 3]);
  assert.deepEqual(net.get(lead).state, ['x']);
  net.tick(30);
  assert.equal(net.leaders().length, 1);
});

test('a crash after persisting a snapshot but before the hard state restarts at the snapshot, while a commit past the log refuses to start', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 13 });
  const lead = net.electLeader();
  for (let i = 0; i < 4; i++) net.propose(lead, `a${i}`);
  const follower = [1, 2, 3].find((id) => id !== lead)!;
  const storage = net.get(follower).storage;
  const snapIndex = net.snapshotAndCompact(follower);
  storage.setHardState({ ...storage.initialState().hardState, commit: 2 });
  assert.equal(net.restart(follower).node.status().commit, snapIndex);
  storage.setHardState({ ...storage.initialState().hardState, commit: storage.lastIndex() + 1 });
  assert.throws(() => net.restart(follower), /past the last index/);
});
