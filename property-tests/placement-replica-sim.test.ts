// The placement replica simulation (sim/placement-replica-suite.ts) over many seeds.
//
// Goal: PlacementReplica, the Raft core wired to the metadata state machine, keeps Raft's
// safety properties and the metadata's own promises under partitions of every shape, lossy and
// duplicating links, crashes with torn unsynced writes on both the Raft disk and the applied
// store, clock drift, snapshots, leadership transfers and a voter removed and re-added: every
// replica applies the same command with the same result at each index, each command takes
// effect once and every acknowledged answer is the one applied, shard epochs rise strictly and
// two compare-and-sets on one epoch never both win, watch streams miss no change, the modelled
// client history is linearizable, and a write is acknowledged soon after the faults heal.
// Method: one seed is one whole simulated run; a failure names the command that replays it with
// its event trace. The self-tests switch on a deliberate bug (a proposal answered before it is
// committed; messages sent and entries applied before the Raft log is fsynced; followers
// proposing the leader's lease duties; a watch history that forgets what a restart or a
// snapshot install skipped) and require the simulation to catch it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runReplicaCluster } from '../placement/sim/testing.js';
import { placementReplicaSuite } from '../sim/placement-replica-suite.js';
import { replayCommand } from '../sim/suite.js';

const PLAIN_SEEDS = Number(process.env.SIM_SEEDS ?? 300);
/**
 * Seeds within which each broken variant must be caught. Measured when written: answer-before-
 * commit fails every seed of 1..30, apply-before-persist about one in three (first at seed
 * 15), duties-on-followers nine in ten (first at seed 1), watch-history-without-floor about
 * one in two (first at seed 3); the bound leaves a wide margin.
 */
const SELF_TEST_SEEDS = 60;

describe('placement replica simulation (sim/placement-replica-suite.ts)', () => {
  it(`keeps safety, exactly-once, epochs, watches, linearizability and liveness (${PLAIN_SEEDS} seeds)`, async () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= PLAIN_SEEDS; seed++) {
      const failure = await placementReplicaSuite.runSeed(seed, {});
      if (failure !== null) failures.push(`${replayCommand('placement-replica', seed)}  # ${failure.message}`);
    }
    assert.deepEqual(failures, [], `${failures.length} of ${PLAIN_SEEDS} seeds failed:\n${failures.join('\n')}`);
  });

  it('replays a seed exactly and exercises what it claims to (snapshots, expiries, watch resyncs)', () => {
    const totals = { snapshots: 0, expired: 0, watchResyncs: 0, acknowledged: 0 };
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const first = runReplicaCluster(seed);
      const second = runReplicaCluster(seed);
      assert.equal(second.trace, first.trace, `seed ${seed} did not replay: ${replayCommand('placement-replica', seed)}`);
      assert.deepEqual(second.stats, first.stats);
      for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += first.stats[key];
    }
    for (const [key, total] of Object.entries(totals)) assert.ok(total > 0, `seeds 1..6 never saw ${key}: the workload no longer exercises it`);
  });

  it('seed 1750063947, which failed the old 300-tick setup bound with a healthy group, passes', async () => {
    // Found by a random-seed run: one leader all along, seven of one registration's requests
    // and answers lost, so the setup took 303 ticks (see SETUP_BOUND_TICKS). Since the pre-vote
    // tie-break (raft.ts) its first election is quicker and its setup takes 137 ticks.
    const seed = 1750063947;
    const failure = await placementReplicaSuite.runSeed(seed, {});
    assert.equal(failure?.message ?? null, null, `${replayCommand('placement-replica', seed)} failed`);
  });

  it('a setup slower than the old 300-tick bound on lossy links passes (seed 1750061083)', async () => {
    // 379 ticks: the slowest setup of seeds 1750060000..1750069999 (four took over 300), a
    // healthy group on 10 %-loss links. If a change to the simulation makes it fast, this case
    // no longer tests the bound: find another seed whose stats.setupTicks is over 300.
    const seed = 1750061083;
    const failure = await placementReplicaSuite.runSeed(seed, {});
    assert.equal(failure?.message ?? null, null, `${replayCommand('placement-replica', seed)} failed`);
    assert.ok(runReplicaCluster(seed).stats.setupTicks > 300, `seed ${seed}'s setup no longer takes over 300 ticks`);
  });

  for (const variant of placementReplicaSuite.variants ?? []) {
    it(`self-test: catches ${variant} within ${SELF_TEST_SEEDS} seeds`, async () => {
      for (let seed = 1; seed <= SELF_TEST_SEEDS; seed++) {
        const failure = await placementReplicaSuite.runSeed(seed, { variant });
        if (failure !== null) {
          assert.match(failure.detail ?? '', /t=\d+ /, `the report of ${replayCommand('placement-replica', seed, variant)} carries no event trace`);
          return;
        }
      }
      assert.fail(`no seed in 1..${SELF_TEST_SEEDS} caught ${variant}; try ${replayCommand('placement-replica', 1, variant)} and strengthen the workload`);
    });
  }
});
