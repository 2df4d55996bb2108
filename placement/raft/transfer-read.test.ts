// Goal: leadership transfer (MsgTimeoutNow once the target is caught up) and ReadIndex
// (a read is answered with a commit index only after a heartbeat round confirms leadership,
// and only once the leader has committed an entry of its own term).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProposalDroppedError } from './errors.js';
import { TestNetwork, text } from './test-network.js';

test('leadership moves to an up-to-date target at once, even through the followers\' lease', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 41, preVote: true, checkQuorum: true });
  const lead = net.electLeader();
  const term = net.get(lead).node.status().term;
  const target = [1, 2, 3].find((id) => id !== lead)!;
  net.get(lead).node.transferLeader(target);
  net.stabilize();
  assert.deepEqual(net.leaders(), [target]);
  assert.equal(net.get(target).node.status().term, term + 1);
  net.propose(target, 'after-transfer');
  for (const n of net.nodes.values()) assert.deepEqual(n.state, ['after-transfer']);
});

test('a lagging target is caught up first, then told to campaign', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 42, checkQuorum: true });
  const lead = net.electLeader();
  const target = [1, 2, 3].find((id) => id !== lead)!;
  net.isolate(target);
  for (let i = 0; i < 5; i++) net.propose(lead, `e${i}`);
  net.heal();
  // Asked through a follower: the request is forwarded to the leader.
  net.get(target).node.transferLeader(target);
  net.stabilize();
  const timeoutNow = net.delivered.filter((m) => m.type === 'timeoutNow');
  assert.equal(timeoutNow.length, 1);
  assert.deepEqual(net.leaders(), [target]);
  assert.equal(net.get(target).state.length, 5);
});

test('proposals are refused during a transfer, and a transfer that cannot finish is abandoned after an election timeout', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 43 });
  const lead = net.electLeader();
  const target = [1, 2, 3].find((id) => id !== lead)!;
  net.isolate(target);
  net.get(lead).node.transferLeader(target);
  net.stabilize();
  assert.throws(() => net.get(lead).node.propose(text('refused')), ProposalDroppedError);
  net.tick(10);
  assert.deepEqual(net.leaders(), [lead]);
  net.propose(lead, 'accepted');
  assert.deepEqual(net.get(lead).state, ['accepted']);
});

test('ReadIndex on the leader and through a follower yields the commit index after a heartbeat round', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 44 });
  const lead = net.electLeader();
  net.propose(lead, 'w1');
  const commit = net.get(lead).node.status().commit;
  net.get(lead).node.readIndex(text('r1'));
  net.stabilize();
  assert.deepEqual(net.get(lead).readStates, [{ index: commit, context: text('r1') }]);
  const follower = net.get([1, 2, 3].find((id) => id !== lead)!);
  follower.node.readIndex(text('r2'));
  net.stabilize();
  assert.deepEqual(follower.readStates, [{ index: commit, context: text('r2') }]);
  assert.ok(follower.appliedIndex >= commit, 'the follower can serve the read from its state machine');
});

test('a leader cut off from the majority cannot answer a read (it might be stale)', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 45 });
  const lead = net.electLeader();
  net.isolate(lead);
  net.get(lead).node.readIndex(text('stale?'));
  net.tick(5);
  assert.deepEqual(net.get(lead).readStates, []);
  net.heal();
  net.tick(1);
  // Five ticks are less than an election timeout, so it is still the leader; the next heartbeat
  // round carries the pending read's context and a majority confirms it.
  assert.deepEqual(net.leaders(), [lead]);
  assert.equal(net.get(lead).readStates.length, 1);
});

test('a new leader holds reads until an entry of its term is committed', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 46 });
  const first = net.electLeader();
  net.propose(first, 'w');
  const next = net.get([1, 2, 3].find((id) => id !== first)!);
  net.filter = (m) => m.type !== 'appResp';
  next.node.campaign();
  net.stabilize();
  assert.equal(next.node.status().role, 'leader');
  const ownEntry = next.node.status().lastIndex;
  next.node.readIndex(text('early'));
  net.stabilize();
  assert.deepEqual(next.readStates, [], 'its commit index may still be behind the previous leader\'s');
  net.heal();
  net.tick(2);
  const [read] = next.readStates as { index: number }[];
  assert.ok(read !== undefined && read.index >= ownEntry, 'the read index covers the new term\'s first entry');
});
