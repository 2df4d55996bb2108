// The replication simulation with the real replication controller core electing
// (sim/replication-controller-suite.ts) over many seeds.
//
// Goal: elections run by ShardElection against placement's metadata state machine (reserve the
// epoch by compare-and-set, choose by the rule, record the leader) keep every guarantee the
// stand-in's do: no acknowledged append lost, log matching, reads below the HW, liveness after
// the heal; and placement records exactly the leader the replicas were told, one per epoch.
// Method: one seed is one simulated run; a failure names the command that replays it. Making
// the controller choose the least up-to-date replica fails 77 of the first 100 seeds (tried when
// written).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ControllerElector, replicationControllerSuite } from '../sim/replication-controller-suite.js';
import { replayCommand } from '../sim/suite.js';

const SEEDS = Number(process.env.SIM_SEEDS ?? 200);

describe('replication simulation with the replication controller (sim/replication-controller-suite.ts)', () => {
  it(`loses nothing acknowledged and records one leader per epoch (${SEEDS} seeds)`, async () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      const failure = await replicationControllerSuite.runSeed(seed, {});
      if (failure !== null) failures.push(`${replayCommand('replication-controller', seed)}  # ${failure.message}`);
    }
    assert.deepEqual(failures, [], `${failures.length} of ${SEEDS} seeds failed:\n${failures.join('\n')}`);
  });

  it('the elector refuses to record a leader for an epoch it did not reserve, and reserves by compare-and-set', () => {
    const elector = new ControllerElector(['r1', 'r2', 'r3']);
    assert.equal(elector.record(1, [{ node: 'r1', lastEpoch: 0, durableEnd: 0 }, { node: 'r2', lastEpoch: 0, durableEnd: 0 }]), null);
    assert.equal(elector.reserve(0), 1);
    assert.equal(elector.record(1, [{ node: 'r2', lastEpoch: 0, durableEnd: 3 }, { node: 'r3', lastEpoch: 0, durableEnd: 5 }]), 'r3');
    assert.equal(elector.state.shards.get('sim-shard')?.leader, 'r3');
    assert.equal(elector.problem, null);
    // The simulator thinks the epoch is older than placement's: flagged, and the CAS still decides.
    assert.equal(elector.reserve(0), 2);
    assert.match(elector.problem ?? '', /not the simulator's 0/);
  });
});
