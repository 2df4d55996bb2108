// PlacementReplica unit tests.
// Goal: the replica answers each request exactly as its contract says (replica.ts): applied
// results only after apply, not-leader with the leader's id, dropped when leadership changes
// under a proposal, ReadIndex reads only once applied up to their index, watches from a
// revision with a clear revision-compacted answer, and a snapshot install that restores state,
// revision and watch floor. Method: replicas over in-memory persistence, driven by hand one
// Ready at a time; a three-voter group exchanges messages through a queue the test controls.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bootstrapEntries, bootstrapHardState, type Message } from '../raft/index.js';
import { MemoryAppliedStatePersistence, MemoryRaftPersistence, PlacementReplica, type ReplicaAnswer } from './index.js';

interface Voter {
  replica: PlacementReplica;
  raft: MemoryRaftPersistence;
  applied: MemoryAppliedStatePersistence;
  answers: ReplicaAnswer[];
}

let now = 1_000;
const clock = (): number => now;

function voter(id: number, ids: number[], options: { snapshotEntries?: number; watchHistoryChanges?: number } = {}, disks?: { raft: MemoryRaftPersistence; applied: MemoryAppliedStatePersistence }): Voter {
  const raft = disks?.raft ?? new MemoryRaftPersistence();
  const applied = disks?.applied ?? new MemoryAppliedStatePersistence();
  if (disks === undefined) {
    raft.storage.append(bootstrapEntries(ids));
    raft.storage.setHardState(bootstrapHardState(ids));
  }
  let seed = id * 7919;
  const replica = new PlacementReplica({
    id,
    storage: raft.storage,
    applied: applied.load(),
    clock,
    random: () => ((seed = (seed * 48271) % 2147483647) / 2147483647),
    electionTick: 10,
    heartbeatTick: 1,
    preVote: false,
    checkQuorum: false,
    maxSizePerMsg: 1 << 20,
    maxInflightMsgs: 64,
    snapshotEntries: options.snapshotEntries ?? 1_000,
    snapshotKeepEntries: 2,
    watchHistoryChanges: options.watchHistoryChanges ?? 100,
    leaseCheckTicks: 5,
    maxPendingRequests: 4,
  });
  const v = { replica, raft, applied, answers: [] };
  // The voter set lives in the log: the core knows its peers only once the bootstrap entries
  // (or, after a restart, the entries after the snapshot) are applied.
  cycle(v);
  return v;
}

/** One turn of every voter's Ready loop, in the documented order; returns the messages sent. */
function cycle(v: Voter): Message[] {
  const sent: Message[] = [];
  for (let rd = v.replica.ready(); rd !== null; rd = v.replica.ready()) {
    v.raft.saveNow(rd.logUpdate);
    sent.push(...rd.messages);
    const { update } = v.replica.apply(rd);
    if (update !== null) v.applied.saveNow(update);
    const { compaction } = v.replica.advance(rd);
    if (compaction !== null) v.raft.compactNow(compaction.snapshot, compaction.compactIndex);
  }
  v.answers.push(...v.replica.takeAnswers());
  return sent;
}

/** Delivers messages until the group is quiet; `cut` drops messages to or from a node. */
function settle(voters: Map<number, Voter>, cut: Set<number> = new Set()): void {
  let queue: Message[] = [];
  for (let round = 0; round < 100; round++) {
    for (const v of voters.values()) queue.push(...cycle(v));
    if (queue.length === 0) return;
    const delivering = queue;
    queue = [];
    for (const m of delivering) if (!cut.has(m.to) && !cut.has(m.from)) voters.get(m.to)?.replica.step(m);
  }
  throw new Error('group did not settle in 100 rounds');
}

/** The leader's heartbeats (heartbeatTick is 1) reach everyone: a cut-off node hears of the new term and catches up. */
function heal(voters: Map<number, Voter>, leader: number): void {
  for (let round = 0; round < 5; round++) {
    voters.get(leader)!.replica.tick();
    settle(voters);
  }
}

function single(options: { snapshotEntries?: number; watchHistoryChanges?: number } = {}): Voter {
  const v = voter(1, [1], options);
  v.replica.campaign();
  cycle(v);
  assert.equal(v.replica.status().role, 'leader');
  return v;
}

function answerOf(v: Voter, id: number): ReplicaAnswer | undefined {
  return v.answers.find((answer) => answer.id === id);
}

const register = (clientId: string, sequence: number, nodeId: string) =>
  ({ type: 'register-node', clientId, sequence, nodeId, roles: ['journal'], addresses: { journal: `${nodeId}:1771` }, leaseMs: 10_000 }) as const;

describe('PlacementReplica', () => {
  it('single voter: a proposal is answered with its result only once applied, and at is stamped from the clock', () => {
    const v = single();
    now = 5_000;
    const id = v.replica.propose(register('c1', 1, 'n1'));
    v.answers.push(...v.replica.takeAnswers());
    assert.equal(answerOf(v, id), undefined, 'answered before the entry was persisted and applied');
    const rd = v.replica.ready()!;
    v.raft.saveNow(rd.logUpdate);
    assert.deepEqual(v.replica.takeAnswers(), [], 'answered before apply');
    v.replica.apply(rd);
    v.replica.advance(rd);
    cycle(v);
    const answer = answerOf(v, id);
    assert.equal(answer?.kind, 'proposal');
    assert.equal(answer.outcome.status, 'applied');
    assert.deepEqual(answer.outcome.status === 'applied' && answer.outcome.result, { status: 'ok', revision: 1 });
    assert.equal(v.replica.currentState.nodes.get('n1')?.leaseExpiresAt, 15_000);
  });

  it('a retry with the same client id and sequence returns the first result and is applied once', () => {
    const v = single();
    const first = v.replica.propose({ type: 'create-shard', clientId: 'c', sequence: 1, shard: 's', replicas: [] });
    cycle(v);
    const retry = v.replica.propose({ type: 'create-shard', clientId: 'c', sequence: 1, shard: 's', replicas: [] });
    cycle(v);
    const results = [first, retry].map((id) => answerOf(v, id)!.outcome);
    assert.deepEqual(results[1], { ...results[0], index: (results[0] as { index: number }).index + 1 });
    assert.equal(v.replica.currentState.revision, 1);
  });

  it('past maxPendingRequests a new request is dropped at once, and taken again once answers drain', () => {
    const v = single();
    const ids = Array.from({ length: 5 }, (_, i) => v.replica.propose({ type: 'set-setting', clientId: 'c', sequence: i + 1, key: 'k', value: i }));
    assert.equal(v.replica.takeAnswers().find((a) => a.id === ids[4])?.outcome.status, 'dropped');
    cycle(v);
    assert.deepEqual(ids.slice(0, 4).map((id) => answerOf(v, id)?.outcome.status), ['applied', 'applied', 'applied', 'applied']);
    const again = v.replica.propose({ type: 'set-setting', clientId: 'c', sequence: 5, key: 'k', value: 4 });
    cycle(v);
    assert.equal(answerOf(v, again)?.outcome.status, 'applied');
  });

  it('a follower refuses with not-leader and names the leader it knows', () => {
    const voters = new Map([1, 2, 3].map((id) => [id, voter(id, [1, 2, 3])]));
    voters.get(2)!.replica.campaign();
    settle(voters);
    const follower = voters.get(3)!;
    const id = follower.replica.propose(register('c', 1, 'n'));
    const readId = follower.replica.read();
    cycle(follower);
    assert.deepEqual(answerOf(follower, id)?.outcome, { status: 'not-leader', leader: 2 });
    assert.deepEqual(answerOf(follower, readId)?.outcome, { status: 'not-leader', leader: 2 });
  });

  it('a proposal is dropped when its leader loses the term before the entry commits', () => {
    const voters = new Map([1, 2, 3].map((id) => [id, voter(id, [1, 2, 3])]));
    voters.get(1)!.replica.campaign();
    settle(voters);
    const old = voters.get(1)!;
    const id = old.replica.propose(register('c', 1, 'n'));
    // The old leader's append never reaches the others; node 2 takes over in a higher term.
    settle(voters, new Set([1]));
    voters.get(2)!.replica.campaign();
    settle(voters, new Set([1]));
    assert.equal(voters.get(2)!.replica.status().role, 'leader');
    heal(voters, 2);
    const outcome = answerOf(old, id)?.outcome;
    assert.equal(outcome?.status, 'dropped', `got ${JSON.stringify(outcome)}`);
    assert.equal(old.replica.currentState.nodes.has('n'), false);
  });

  it('a ReadIndex read is answered only once the state has applied up to the read index', () => {
    const voters = new Map([1, 2, 3].map((id) => [id, voter(id, [1, 2, 3])]));
    voters.get(1)!.replica.campaign();
    settle(voters);
    const leader = voters.get(1)!;
    leader.replica.propose({ type: 'set-setting', clientId: 'c', sequence: 1, key: 'k', value: 1 });
    const readId = leader.replica.read();
    // Run the leader's cycle by hand and hold back apply: the read must not be served.
    let served = false;
    for (let round = 0; round < 20 && !served; round++) {
      const rd = leader.replica.ready();
      if (rd !== null) {
        leader.raft.saveNow(rd.logUpdate);
        for (const m of rd.messages) voters.get(m.to)!.replica.step(m);
        const appliedBefore = leader.replica.status().appliedIndex;
        leader.replica.apply(rd);
        leader.replica.advance(rd);
        const answer = leader.replica.takeAnswers().find((a) => a.id === readId);
        if (answer !== undefined) {
          served = true;
          assert.equal(answer.outcome.status, 'ok');
          const outcome = answer.outcome as { appliedIndex: number; state: { settings: ReadonlyMap<string, unknown> } };
          assert.ok(outcome.appliedIndex >= appliedBefore);
          assert.ok(outcome.state.settings.has('k'), 'the read missed a write committed before it');
        }
      }
      for (const id of [2, 3]) for (const m of cycle(voters.get(id)!)) voters.get(m.to)!.replica.step(m);
    }
    assert.ok(served, 'the read was never served');
  });

  it('watch: changes in revision order from a revision, with gaps only for refusals', () => {
    const v = single();
    v.replica.propose(register('c', 1, 'a'));
    cycle(v);
    v.replica.propose({ type: 'create-shard', clientId: 'c', sequence: 2, shard: 's', replicas: ['missing'] });
    cycle(v);
    v.replica.propose({ type: 'create-shard', clientId: 'c', sequence: 3, shard: 's', replicas: ['a'] });
    cycle(v);
    const answer = v.replica.watch(1);
    assert.equal(answer.status, 'ok');
    assert.deepEqual(answer.status === 'ok' && answer.changes.map((c) => [c.revision, c.kind, c.key]), [
      [1, 'node', 'a'],
      [3, 'shard', 's'],
    ]);
    assert.equal(answer.status === 'ok' && answer.revision, 3);
    assert.deepEqual(v.replica.watch(4), { status: 'ok', changes: [], revision: 3 });
  });

  it('watch: a watcher older than the kept history gets revision-compacted, then re-reads and watches on', () => {
    const v = single({ watchHistoryChanges: 3 });
    for (let sequence = 1; sequence <= 6; sequence++) {
      v.replica.propose({ type: 'set-setting', clientId: 'c', sequence, key: `k${sequence}`, value: sequence });
      cycle(v);
    }
    assert.deepEqual(v.replica.watch(2), { status: 'revision-compacted', fromRevision: 2, oldestRevision: 4 });
    const answer = v.replica.watch(4);
    assert.deepEqual(answer.status === 'ok' && answer.changes.map((c) => c.revision), [4, 5, 6]);
  });

  it('the leader proposes expire-node for a lapsed lease from its clock; a follower never does', () => {
    const voters = new Map([1, 2, 3].map((id) => [id, voter(id, [1, 2, 3])]));
    voters.get(1)!.replica.campaign();
    settle(voters);
    now = 100_000;
    voters.get(1)!.replica.propose({ ...register('c', 1, 'n'), leaseMs: 50 });
    settle(voters);
    assert.ok(voters.get(3)!.replica.currentState.nodes.has('n'));
    now = 200_000;
    // Followers tick too, but under the election timeout, so only the leader acts.
    for (let i = 0; i < 5; i++) for (const v of voters.values()) v.replica.tick();
    settle(voters);
    for (const v of voters.values()) assert.equal(v.replica.currentState.nodes.has('n'), false, `node ${v.replica.id} still holds n`);
    const duty = voters.get(3)!.replica.currentState.sessions.get('placement-1');
    assert.equal(duty?.result.status, 'ok');
    assert.equal(voters.get(2)!.replica.currentState.sessions.has('placement-2'), false);
  });

  it('snapshot: a lagging follower installs the leader snapshot and gets state, revision and watch floor', () => {
    const voters = new Map([1, 2, 3].map((id) => [id, voter(id, [1, 2, 3], { snapshotEntries: 5 })]));
    voters.get(1)!.replica.campaign();
    settle(voters);
    for (let sequence = 1; sequence <= 12; sequence++) {
      voters.get(1)!.replica.propose({ type: 'set-setting', clientId: 'c', sequence, key: `k${sequence % 4}`, value: sequence });
      settle(voters, new Set([3]));
    }
    assert.ok(voters.get(1)!.raft.storage.firstIndex() > voters.get(3)!.raft.storage.lastIndex() + 1, 'the leader still holds what the follower lacks');
    heal(voters, 1);
    const lagging = voters.get(3)!;
    assert.equal(lagging.raft.storage.snapshot().metadata.index > 0, true, 'the follower caught up without a snapshot');
    assert.deepEqual(lagging.replica.currentState, voters.get(1)!.replica.currentState);
    assert.equal(lagging.replica.currentState.revision, 12);
    assert.equal(lagging.replica.watch(5).status, 'revision-compacted');
    assert.equal(lagging.applied.load().state.revision, 12);
  });

  it('restart after a crash between installing a snapshot and saving the state: the state comes from the Raft snapshot', () => {
    const voters = new Map([1, 2, 3].map((id) => [id, voter(id, [1, 2, 3], { snapshotEntries: 5 })]));
    voters.get(1)!.replica.campaign();
    settle(voters);
    for (let sequence = 1; sequence <= 12; sequence++) {
      voters.get(1)!.replica.propose({ type: 'set-setting', clientId: 'c', sequence, key: 'k', value: sequence });
      settle(voters, new Set([3]));
    }
    heal(voters, 1);
    const lagging = voters.get(3)!;
    assert.ok(lagging.raft.storage.snapshot().metadata.index > 0);
    // The applied store never saw the install: a fresh one, as if the save was lost.
    const restarted = voter(3, [1, 2, 3], { snapshotEntries: 5 }, { raft: lagging.raft, applied: new MemoryAppliedStatePersistence() });
    assert.deepEqual(restarted.replica.currentState, lagging.replica.currentState);
    assert.equal(restarted.replica.watch(1).status, 'revision-compacted');
  });

  it('restart: the state comes back from the applied store, committed entries after it replay, voters are known', () => {
    const v = single({ snapshotEntries: 3 });
    for (let sequence = 1; sequence <= 7; sequence++) {
      v.replica.propose({ type: 'set-setting', clientId: 'c', sequence, key: 'k', value: sequence });
      cycle(v);
    }
    const before = v.replica.currentState;
    const restarted = voter(1, [1], { snapshotEntries: 3 }, { raft: v.raft, applied: v.applied });
    restarted.replica.campaign();
    cycle(restarted);
    assert.deepEqual(restarted.replica.currentState, before);
    assert.deepEqual(restarted.replica.status().voters, [1]);
    const id = restarted.replica.propose({ type: 'set-setting', clientId: 'c', sequence: 8, key: 'k', value: 8 });
    cycle(restarted);
    assert.equal(answerOf(restarted, id)?.outcome.status, 'applied');
  });
});
