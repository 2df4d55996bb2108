// Goal: pre-vote keeps a partitioned node from disrupting the term when it rejoins; check-quorum
// makes a leader cut off from a majority step down; the leader lease makes followers that hear
// from a leader ignore vote requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestNetwork } from './test-network.js';
import { message } from './types.js';

function partitionedFollowerRejoins(preVote: boolean): { termBefore: number; termAfter: number; isolatedTerm: number; leaderBefore: number; leaderAfter: number } {
  const net = new TestNetwork([1, 2, 3], { seed: 11, preVote, checkQuorum: true });
  const leaderBefore = net.electLeader();
  const termBefore = net.get(leaderBefore).node.status().term;
  const isolated = [1, 2, 3].find((id) => id !== leaderBefore)!;
  net.isolate(isolated);
  net.tick(100);
  const isolatedTerm = net.get(isolated).node.status().term;
  net.heal();
  net.tick(50);
  const leaderAfter = net.leaders()[0]!;
  return { termBefore, termAfter: net.get(leaderAfter).node.status().term, isolatedTerm, leaderBefore, leaderAfter };
}

test('with pre-vote, a partitioned follower does not bump its term, and rejoining disturbs nothing', () => {
  const r = partitionedFollowerRejoins(true);
  assert.equal(r.isolatedTerm, r.termBefore, 'pre-votes failed without changing the term');
  assert.equal(r.termAfter, r.termBefore);
  assert.equal(r.leaderAfter, r.leaderBefore);
});

test('without pre-vote, the same partition inflates the term and forces a new election (the contrast)', () => {
  const r = partitionedFollowerRejoins(false);
  assert.ok(r.isolatedTerm > r.termBefore + 3, `isolated term ${r.isolatedTerm}`);
  assert.ok(r.termAfter > r.termBefore);
});

test('check-quorum: a leader that hears from no majority for an election timeout steps down', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 5, checkQuorum: true });
  const lead = net.electLeader();
  net.isolate(lead);
  // At most two election timeouts: one to clear recentActive, one to find the quorum inactive.
  net.tick(20);
  assert.equal(net.get(lead).node.status().role, 'follower');
});

test('without check-quorum an isolated leader keeps believing it leads (the contrast)', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 5, checkQuorum: false });
  const lead = net.electLeader();
  net.isolate(lead);
  net.tick(20);
  assert.equal(net.get(lead).node.status().role, 'leader');
});

test('leader lease: a follower that heard from its leader lately ignores a higher-term vote request', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 2, checkQuorum: true });
  const lead = net.electLeader();
  const follower = net.get([1, 2, 3].find((id) => id !== lead)!);
  const outsider = [1, 2, 3].find((id) => id !== lead && id !== follower.id)!;
  const term = follower.node.status().term;
  follower.node.step(message({ type: 'vote', from: outsider, to: follower.id, term: term + 5, index: 100, logTerm: term + 4 }));
  assert.equal(follower.node.status().term, term);
  assert.equal(follower.node.hasReady(), false, 'no reply, no state change');
});
