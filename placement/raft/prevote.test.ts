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

/**
 * Isolates the leader (as if its process died) and ticks: how many ticks until a follower
 * campaigns in a later term (a pre-vote was granted, so the other follower's lease is over), or
 * null within `limit`; and whether a new leader was elected within `limit` more ticks after that.
 */
function ticksToElection(reportToFollowers: boolean, seed: number, limit: number): { ticks: number | null; newLeader: boolean } {
  const net = new TestNetwork([1, 2, 3], { seed, preVote: true, checkQuorum: true });
  const lead = net.electLeader();
  const term = net.get(lead).node.status().term;
  const followers = [1, 2, 3].filter((id) => id !== lead);
  net.isolate(lead);
  // What PeerLink does when its connection to the leader drops.
  if (reportToFollowers) for (const id of followers) net.get(id).node.reportUnreachable(lead);
  let ticks: number | null = null;
  for (let tick = 1; tick <= limit && ticks === null; tick++) {
    net.tick();
    if (followers.some((id) => net.get(id).node.status().term > term)) ticks = tick;
  }
  // Split votes are resolved by later timeouts. This network ticks every node in lockstep, so
  // two followers that draw the same timeout campaign on the same tick and split (seed 10 does
  // twice, with or without the report); 60 ticks covers that.
  for (let tick = 0; tick < 60 && ticks !== null; tick++) {
    if (followers.some((id) => net.get(id).node.status().role === 'leader')) return { ticks, newLeader: true };
    net.tick();
  }
  return { ticks, newLeader: false };
}

test('a follower told its leader is unreachable ends the lease: an election within electionTick - 1 ticks (10 in the test network)', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const { ticks, newLeader } = ticksToElection(true, seed, 9);
    assert.ok(ticks !== null, `seed ${seed}: no follower campaigned within 9 ticks of the report`);
    assert.ok(newLeader, `seed ${seed}: no new leader after the election started`);
  }
});

test('without the report the followers wait out the lease and their timeout: no election within 9 ticks (the contrast)', () => {
  for (let seed = 1; seed <= 20; seed++) assert.equal(ticksToElection(false, seed, 9).ticks, null, `seed ${seed}`);
});

test('one follower that alone lost its link to a live leader does not depose it', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const net = new TestNetwork([1, 2, 3], { seed, preVote: true, checkQuorum: true });
    const lead = net.electLeader();
    const term = net.get(lead).node.status().term;
    const follower = [1, 2, 3].find((id) => id !== lead)!;
    net.get(follower).node.reportUnreachable(lead);
    net.tick(50);
    assert.deepEqual(net.leaders(), [lead], `seed ${seed}: the leader kept its place`);
    assert.equal(net.get(lead).node.status().term, term, `seed ${seed}: no new term`);
    assert.equal(net.get(follower).node.status().lead, lead, `seed ${seed}: the follower follows it again`);
  }
});

test('a report about a peer that is not the leader leaves the lease in force', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 2, preVote: true, checkQuorum: true });
  const lead = net.electLeader();
  const [follower, other] = [1, 2, 3].filter((id) => id !== lead) as [number, number];
  net.get(follower).node.reportUnreachable(other);
  const term = net.get(follower).node.status().term;
  net.get(follower).node.step(message({ type: 'preVote', from: other, to: follower, term: term + 1, index: 100, logTerm: term }));
  assert.equal(net.get(follower).node.hasReady(), false, 'the pre-vote is ignored: no reply');
});

/** The leader isolated, both followers start a pre-vote in the same instant (as when its connection drops on both); their states after the messages settle. */
function simultaneousPreVotes(seed: number): { term: number; followers: { id: number; role: string; term: number }[] } {
  const net = new TestNetwork([1, 2, 3], { seed, preVote: true, checkQuorum: true });
  const lead = net.electLeader();
  const term = net.get(lead).node.status().term;
  const followers = [1, 2, 3].filter((id) => id !== lead);
  net.isolate(lead);
  for (const id of followers) net.get(id).node.reportUnreachable(lead);
  for (const id of followers) net.get(id).node.campaign();
  net.stabilize();
  return { term, followers: followers.map((id) => ({ id, role: net.get(id).node.status().role, term: net.get(id).node.status().term })) };
}

test('two pre-candidates with equal logs do not split: the higher id wins the next term at once', () => {
  for (let seed = 1; seed <= 10; seed++) {
    const { term, followers } = simultaneousPreVotes(seed);
    const higher = Math.max(...followers.map((f) => f.id));
    for (const f of followers) {
      assert.equal(f.term, term + 1, `seed ${seed}: node ${f.id} is in the next term`);
      assert.equal(f.role, f.id === higher ? 'leader' : 'follower', `seed ${seed}: node ${f.id}`);
    }
  }
});

test('a pre-candidate with the better log still wins against a higher id', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 4, preVote: true, checkQuorum: true });
  const lead = net.electLeader();
  const [low, high] = [1, 2, 3].filter((id) => id !== lead) as [number, number];
  // The higher id misses an entry the lower one has.
  net.cutLink(lead, high);
  net.propose(lead, 'only-on-the-lower');
  net.isolate(lead);
  for (const id of [low, high]) net.get(id).node.reportUnreachable(lead);
  for (const id of [low, high]) net.get(id).node.campaign();
  net.stabilize();
  assert.equal(net.get(low).node.status().role, 'leader');
  assert.equal(net.get(high).node.status().role, 'follower');
});
