// Goal: membership changes one voter at a time through conf entries in the log, taking effect
// when applied; a removed leader steps down; only one change may be pending.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestNetwork } from './test-network.js';

test('a new voter joins with an empty log, receives the whole log (bootstrap voters included) and counts in the quorum', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 31 });
  const lead = net.electLeader();
  net.propose(lead, 'a');
  const joining = net.addNode(4);
  net.get(lead).node.proposeConfChange({ type: 'addVoter', nodeId: 4 });
  net.stabilize();
  net.tick(3);
  for (const n of net.nodes.values()) assert.deepEqual(n.confState.voters, [1, 2, 3, 4], `node ${n.id}`);
  assert.deepEqual(joining.storage.entries(1, 4, Infinity).map((e) => e.type), ['conf', 'conf', 'conf'], 'the bootstrap voters are in its log');
  assert.deepEqual(net.get(4).state, ['a']);
  // With four voters a majority is three: two nodes down stop commits.
  const others = [1, 2, 3, 4].filter((id) => id !== lead);
  net.isolate(others[0]!);
  net.isolate(others[1]!);
  net.propose(lead, 'b');
  assert.deepEqual(net.get(lead).state, ['a'], 'not committed by two of four');
  net.heal();
  net.tick(3);
  assert.deepEqual(net.get(lead).state, ['a', 'b']);
});

test('a removed follower no longer counts: the remaining two commit alone', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 32 });
  const lead = net.electLeader();
  const removed = [1, 2, 3].find((id) => id !== lead)!;
  net.get(lead).node.proposeConfChange({ type: 'removeVoter', nodeId: removed });
  net.stabilize();
  const remaining = [1, 2, 3].filter((id) => id !== removed);
  for (const id of remaining) assert.deepEqual(net.get(id).confState.voters, remaining);
  net.isolate(removed);
  net.propose(lead, 'x');
  for (const id of remaining) assert.deepEqual(net.get(id).state, ['x']);
});

test('a leader that removes itself steps down once the change applies, and the others elect a leader', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 33 });
  const lead = net.electLeader();
  net.get(lead).node.proposeConfChange({ type: 'removeVoter', nodeId: lead });
  net.stabilize();
  assert.equal(net.get(lead).node.status().role, 'follower');
  const remaining = [1, 2, 3].filter((id) => id !== lead);
  for (const id of remaining) assert.deepEqual(net.get(id).confState.voters, remaining);
  net.tick(40);
  const leaders = net.leaders();
  assert.equal(leaders.length, 1);
  assert.notEqual(leaders[0], lead);
  net.propose(leaders[0]!, 'y');
  for (const id of remaining) assert.deepEqual(net.get(id).state, ['y']);
});

test('at most one conf change is pending: a second proposal before the first applies becomes a no-op', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 34 });
  const lead = net.electLeader();
  net.addNode(4);
  net.addNode(5);
  const leader = net.get(lead);
  leader.node.proposeConfChange({ type: 'addVoter', nodeId: 4 });
  leader.node.proposeConfChange({ type: 'addVoter', nodeId: 5 });
  net.stabilize();
  net.tick(3);
  assert.deepEqual(leader.confState.voters, [1, 2, 3, 4]);
  const last = leader.storage.entries(leader.storage.lastIndex() - 1, leader.storage.lastIndex() + 1, Infinity);
  assert.deepEqual(last.map((e) => [e.type, e.data.length]), [['conf', last[0]!.data.length], ['normal', 0]]);
  // Once the first is applied, the next change is accepted.
  leader.node.proposeConfChange({ type: 'addVoter', nodeId: 5 });
  net.stabilize();
  net.tick(3);
  for (const n of net.nodes.values()) assert.deepEqual(n.confState.voters, [1, 2, 3, 4, 5], `node ${n.id}`);
});
