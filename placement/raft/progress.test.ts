// Goal: flow control. A follower in probe state gets one append at a time; in replicate state
// at most maxInflightMsgs unacknowledged appends of at most maxSizePerMsg bytes each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Inflights, Progress } from './progress.js';
import { TestNetwork } from './test-network.js';

test('inflights: full at the message or byte limit, freed cumulatively', () => {
  const inflights = new Inflights(3, 100);
  inflights.add(5, 10);
  inflights.add(7, 10);
  assert.equal(inflights.full(), false);
  inflights.add(9, 10);
  assert.equal(inflights.full(), true);
  inflights.freeLE(7);
  assert.equal(inflights.count(), 1);
  const bytes = new Inflights(10, 25);
  bytes.add(1, 20);
  assert.equal(bytes.full(), false);
  bytes.add(2, 20);
  assert.equal(bytes.full(), true, 'byte limit reached');
  assert.throws(() => bytes.add(3, 1), /full/);
});

test('progress: probe pauses after a send, stale rejections are ignored, acks move to replicate', () => {
  const pr = new Progress(10, 4, 0);
  assert.equal(pr.isPaused(), false);
  pr.msgAppFlowPaused = true;
  assert.equal(pr.isPaused(), true);
  assert.equal(pr.maybeDecrTo(5, 3), false, 'a rejection of an append we are not waiting on is stale');
  assert.equal(pr.maybeDecrTo(9, 3), true);
  assert.equal(pr.next, 4, 'jumps back to the hint, not one at a time');
  assert.equal(pr.maybeUpdate(6), true);
  pr.becomeReplicate();
  assert.equal(pr.next, 7);
  assert.equal(pr.maybeDecrTo(5, 0), false, 'a replicate-state rejection below match is stale');
});

test('a leader streams at most maxInflightMsgs appends to a follower whose acks are lost, then catches it up', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 9, maxInflightMsgs: 2, maxSizePerMsg: 1 });
  const lead = net.electLeader();
  const slow = [1, 2, 3].find((id) => id !== lead)!;
  net.propose(lead, 'warm-up');
  assert.equal(net.get(lead).node.progressOf(slow)?.state, 'replicate');
  net.filter = (m) => !(m.from === slow && m.type === 'appResp');
  const before = net.delivered.length;
  for (let i = 0; i < 10; i++) net.propose(lead, `e${i}`);
  const appsToSlow = net.delivered.slice(before).filter((m) => m.to === slow && m.type === 'app' && m.entries.length > 0);
  assert.equal(appsToSlow.length, 2, 'the window stops the stream');
  assert.ok(appsToSlow.every((m) => m.entries.length === 1), 'maxSizePerMsg of 1 byte allows one entry per message');
  assert.equal(net.get(lead).node.progressOf(slow)?.inflight, 2);
  // The other follower's acks keep the commit going.
  assert.equal(net.get(lead).state.length, 11);
  net.heal();
  net.tick(5);
  assert.deepEqual(net.get(slow).state, net.get(lead).state);
});

test('a follower whose appends were silently lost is caught up (heartbeat frees a slot, the gap is rejected, probe, replicate)', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 4, maxSizePerMsg: 1 });
  const lead = net.electLeader();
  const lagging = [1, 2, 3].find((id) => id !== lead)!;
  net.isolate(lagging);
  for (let i = 0; i < 6; i++) net.propose(lead, `e${i}`);
  net.heal();
  net.tick(3);
  assert.deepEqual(net.get(lagging).state, net.get(lead).state);
  assert.equal(net.get(lead).node.progressOf(lagging)?.state, 'replicate');
});
