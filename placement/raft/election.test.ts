// Goal: leader election and log replication through the Ready loop, on the in-test network.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage } from './storage.js';
import { RawNode } from './raw-node.js';
import { TestNetwork, text } from './test-network.js';
import { bootstrapEntries, bootstrapHardState } from './bootstrap.js';
import { message, type Entry } from './types.js';

test('a single node applies its bootstrap voter, elects itself and commits a proposal', () => {
  const net = new TestNetwork([1]);
  net.stabilize();
  assert.deepEqual(net.get(1).confState.voters, [1], 'the voter set comes from the log');
  const lead = net.electLeader();
  assert.equal(lead, 1);
  net.propose(1, 'x');
  assert.deepEqual(net.get(1).state, ['x']);
  const status = net.get(1).node.status();
  assert.equal(status.commit, status.lastIndex);
});

for (const size of [3, 5]) {
  test(`${size} nodes elect exactly one leader per term, across many seeds and forced elections`, () => {
    for (let seed = 1; seed <= 8; seed++) {
      const ids = Array.from({ length: size }, (_, i) => i + 1);
      const net = new TestNetwork(ids, { seed });
      net.electLeader();
      // Force more elections by cutting off the current leader now and then.
      for (let round = 0; round < 4; round++) {
        const lead = net.leaders()[0]!;
        net.isolate(lead);
        net.tick(25);
        net.heal();
        net.tick(25);
      }
      const leaderOfTerm = new Map<number, number>();
      for (const n of net.nodes.values()) {
        for (const term of n.leaderTerms) {
          const other = leaderOfTerm.get(term);
          assert.ok(other === undefined || other === n.id, `seed ${seed}: term ${term} has leaders ${other} and ${n.id}`);
          leaderOfTerm.set(term, n.id);
        }
      }
      assert.ok(leaderOfTerm.size >= 3, `seed ${seed}: several terms had leaders`);
    }
  });
}

test('entries replicate to every node and apply in the same order', () => {
  const net = new TestNetwork([1, 2, 3, 4, 5], { seed: 7 });
  const lead = net.electLeader();
  for (let i = 0; i < 20; i++) net.propose(lead, `e${i}`);
  // A follower forwards its proposal to the leader.
  const follower = [1, 2, 3, 4, 5].find((id) => id !== lead)!;
  net.propose(follower, 'via-follower');
  const expected = [...Array.from({ length: 20 }, (_, i) => `e${i}`), 'via-follower'];
  for (const n of net.nodes.values()) assert.deepEqual(n.state, expected, `node ${n.id}`);
});

test('a follower with a divergent uncommitted suffix is repaired by the new leader', () => {
  const net = new TestNetwork([1, 2, 3], { seed: 3 });
  const oldLead = net.electLeader();
  net.propose(oldLead, 'committed');
  // Cut the old leader off: its proposals stay in its log only, uncommitted.
  net.isolate(oldLead);
  for (let i = 0; i < 5; i++) net.get(oldLead).node.propose(text(`lost${i}`));
  net.stabilize();
  const oldLog = net.get(oldLead).storage.lastIndex();
  const newLead = [1, 2, 3].filter((id) => id !== oldLead);
  net.tick(40);
  const leadNow = net.leaders().find((id) => id !== oldLead)!;
  assert.ok(newLead.includes(leadNow));
  net.propose(leadNow, 'new1');
  net.propose(leadNow, 'new2');
  net.heal();
  net.tick(10);
  const logs = [...net.nodes.values()].map((n) => n.storage.entries(1, n.storage.lastIndex() + 1, Infinity).map((e: Entry) => `${e.index}/${e.term}`).join(' '));
  assert.equal(new Set(logs).size, 1, `logs differ:\n${logs.join('\n')}`);
  assert.ok(oldLog > 0);
  for (const n of net.nodes.values()) assert.deepEqual(n.state, ['committed', 'new1', 'new2'], `node ${n.id}`);
  // Fast backtracking: the old leader's five extra entries cost one reject, not five.
  const rejects = net.delivered.filter((m) => m.type === 'appResp' && m.reject && m.from === oldLead);
  assert.ok(rejects.length <= 2, `rejections: ${rejects.length}`);
});

test('Figure 8: an entry of an older term is not committed by counting replicas, only with one of the current term', () => {
  // Node 1 holds entry 4 from term 2 (an old leader's, never committed); 2 and 3 do not.
  const storages = [1, 2, 3].map(() => {
    const s = new MemoryStorage();
    s.append(bootstrapEntries([1, 2, 3]));
    s.setHardState({ ...bootstrapHardState([1, 2, 3]), term: 3 });
    return s;
  });
  storages[0]!.append([{ term: 2, index: 4, type: 'normal', data: text('old') }]);
  const config = { electionTick: 10, heartbeatTick: 1, random: () => 0, maxSizePerMsg: 1, maxInflightMsgs: 8, preVote: false, checkQuorum: false };
  const node = new RawNode({ ...config, id: 1, storage: storages[0]! });
  const drain = (): void => {
    while (node.hasReady()) {
      const rd = node.ready();
      storages[0]!.append(rd.entries);
      if (rd.hardState) storages[0]!.setHardState(rd.hardState);
      for (const e of rd.committedEntries) if (e.type === 'conf') node.applyConfChange({ type: 'addVoter', nodeId: [1, 2, 3][e.index - 1]! });
      node.advance(rd);
    }
  };
  drain();
  node.campaign();
  drain();
  node.step(message({ type: 'voteResp', from: 2, to: 1, term: 4 }));
  drain();
  assert.equal(node.status().role, 'leader');
  assert.equal(node.status().term, 4);
  assert.equal(node.status().lastIndex, 5, 'the new leader appended an empty entry of term 4');
  // Follower 2 now holds entry 4 (term 2) too: a majority has it, yet it must not commit.
  node.step(message({ type: 'appResp', from: 2, to: 1, term: 4, index: 4 }));
  drain();
  assert.equal(node.status().commit, 3, 'entry 4 of term 2 is on a majority but not committed');
  // Once the term-4 entry is on a majority, both commit.
  node.step(message({ type: 'appResp', from: 2, to: 1, term: 4, index: 5 }));
  drain();
  assert.equal(node.status().commit, 5);
});

test('a vote is refused to a candidate whose log is behind', () => {
  const storage = new MemoryStorage();
  storage.append(bootstrapEntries([1, 2, 3]));
  storage.append([{ term: 2, index: 4, type: 'normal', data: text('x') }]);
  storage.setHardState({ term: 2, vote: 0, commit: 3 });
  const node = new RawNode({ id: 1, storage, electionTick: 10, heartbeatTick: 1, random: () => 0, maxSizePerMsg: 1024, maxInflightMsgs: 8, preVote: false, checkQuorum: false });
  node.step(message({ type: 'vote', from: 2, to: 1, term: 3, index: 5, logTerm: 1 }));
  node.step(message({ type: 'vote', from: 3, to: 1, term: 3, index: 4, logTerm: 2 }));
  const rd = node.ready();
  assert.deepEqual(rd.messages.map((m) => [m.to, m.type, m.reject]), [[2, 'voteResp', true], [3, 'voteResp', false]]);
  assert.deepEqual(rd.hardState, { term: 3, vote: 3, commit: 3 }, 'the vote is in the hard state persisted before the reply is sent');
});
