// The ReplicaDriver over a slow disk: a one-voter replica whose saves resolve only after a
// timer. Goal: inputs that arrive while a save is pending wait for the cycle (the replica is
// never touched mid-cycle), the log is saved before the applied state, and a proposal is
// answered only after both.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { bootstrapEntries, bootstrapHardState, type Snapshot } from '../raft/index.js';
import { MemoryAppliedStatePersistence, MemoryRaftPersistence, PlacementReplica, type AppliedUpdate, type RaftLogUpdate, type ReplicaAnswer } from '../replica/index.js';
import { ReplicaDriver } from './replica-driver.js';
import { DEFAULT_REPLICA_TUNING } from './server.js';

test('inputs wait for a pending save; log before applied state; answers after both', async () => {
  const events: string[] = [];
  let saving = false;
  const raft = new MemoryRaftPersistence();
  raft.saveNow({ snapshot: null, entries: bootstrapEntries([1]), hardState: bootstrapHardState([1]), mustSync: true });
  const slowRaft = {
    storage: raft.storage,
    save: async (update: RaftLogUpdate) => {
      raft.saveNow(update);
      saving = true;
      events.push('save:start');
      await new Promise((resolve) => setTimeout(resolve, 30));
      saving = false;
      events.push('save:end');
    },
    compact: (snapshot: Snapshot, index: number) => raft.compact(snapshot, index),
  };
  const applied = new MemoryAppliedStatePersistence();
  const slowApplied = {
    load: () => applied.load(),
    saveApplied: async (update: AppliedUpdate) => {
      events.push('applied:start');
      await new Promise((resolve) => setTimeout(resolve, 10));
      applied.saveNow(update);
      events.push('applied:end');
    },
  };
  const replica = new PlacementReplica({ ...DEFAULT_REPLICA_TUNING, id: 1, storage: raft.storage, applied: applied.load(), clock: () => 1_000, random: () => 0.5 });
  const answers: ReplicaAnswer[] = [];
  const driver = new ReplicaDriver({
    replica,
    raftPersistence: slowRaft,
    appliedPersistence: slowApplied,
    logger: pino({ level: 'silent' }),
    tickMs: 5,
    maxQueuedInputs: 100,
    send: () => undefined,
    deliver: (list) => {
      for (const answer of list) {
        events.push(`answer:${answer.outcome.status}`);
        answers.push(answer);
      }
    },
    afterCycle: () => undefined,
    onFatal: (error) => assert.fail(String(error)),
  });
  driver.start();
  try {
    const deadline = Date.now() + 5_000;
    while (replica.status().role !== 'leader' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(replica.status().role, 'leader');
    // Queue the proposal while a save is pending, if one is: it must run only after it.
    while (!saving && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1));
    let ranDuringSave: boolean | null = null;
    driver.input(() => {
      ranDuringSave = saving;
      events.push('propose');
      replica.propose({ type: 'set-setting', clientId: 'c', sequence: 1, key: 'k', value: 1 });
    });
    while (!answers.some((a) => a.kind === 'proposal') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(ranDuringSave, false);
    const proposeAt = events.indexOf('propose');
    const after = events.slice(proposeAt);
    const answerAt = after.indexOf('answer:applied');
    assert.ok(answerAt > 0, events.join(' '));
    // The proposal's entry: saved (start and end) before its applied state, answered after both.
    const window = after.slice(0, answerAt);
    assert.ok(window.indexOf('save:end') < window.lastIndexOf('applied:start'), window.join(' '));
    assert.equal(window.at(-1), 'applied:end', window.join(' '));
    assert.equal(applied.load().state.settings.get('k')?.value, 1);
  } finally {
    await driver.stop();
  }
});
