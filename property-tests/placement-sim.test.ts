// The placement cluster simulation (sim/placement-suite.ts) over many seeds.
//
// Goal: the Raft core and its driver keep Raft's safety properties (one leader per term, log
// matching, leader completeness, state-machine safety), lose no acknowledged write, give
// clients a linearizable history, and make progress once the faults heal, under partitions of
// every shape, lossy and duplicating links, crashes with torn unsynced writes, clock drift,
// snapshots, leadership transfers and a voter removed and re-added.
// Method: one seed is one whole simulated run; a failure names the command that replays it
// with its event trace. The self-tests switch on a deliberate bug in the core or the driver
// and require the simulator to catch it: a checker that cannot catch its bug is worth nothing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCluster } from '../placement/sim/testing.js';
import { placementSuite } from '../sim/placement-suite.js';
import { replayCommand } from '../sim/suite.js';

const PLAIN_SEEDS = Number(process.env.SIM_SEEDS ?? 1000);
/**
 * Seeds within which each broken variant must be caught. Measured when written: vote without
 * the log check by seed 1, apply before persist by seed 1, commit by counting by seed 9 (it
 * needs the Figure 8 schedule: about one seed in thirty); the bound leaves a wide margin.
 */
const SELF_TEST_SEEDS = 400;

describe('placement cluster simulation (sim/placement-suite.ts)', () => {
  it(`keeps safety, linearizability and liveness after heal (${PLAIN_SEEDS} seeds)`, async () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= PLAIN_SEEDS; seed++) {
      const failure = await placementSuite.runSeed(seed, {});
      if (failure !== null) failures.push(`${replayCommand('placement', seed)}  # ${failure.message}`);
    }
    assert.deepEqual(failures, [], `${failures.length} of ${PLAIN_SEEDS} seeds failed:\n${failures.join('\n')}`);
  });

  it('replays a seed exactly: the same seed gives the same trace', () => {
    for (const seed of [1, 2, 3]) {
      const first = runCluster(seed);
      const second = runCluster(seed);
      assert.equal(second.trace, first.trace, `seed ${seed} did not replay: ${replayCommand('placement', seed)}`);
      assert.deepEqual(second.stats, first.stats);
    }
  });

  for (const variant of placementSuite.variants ?? []) {
    it(`self-test: catches ${variant} within ${SELF_TEST_SEEDS} seeds`, async () => {
      for (let seed = 1; seed <= SELF_TEST_SEEDS; seed++) {
        const failure = await placementSuite.runSeed(seed, { variant });
        if (failure !== null) {
          assert.match(failure.detail ?? '', /t=\d+ /, `the report of ${replayCommand('placement', seed, variant)} carries no event trace`);
          return;
        }
      }
      assert.fail(`no seed in 1..${SELF_TEST_SEEDS} caught ${variant}; try ${replayCommand('placement', 1, variant)} and strengthen the workload`);
    });
  }
});
