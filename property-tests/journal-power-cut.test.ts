// The journal power-cut properties (sim/journal-suite.ts) over many seeds.
//
// Goal: every append acknowledged in fsync mode survives power cuts intact, nothing is served
// corrupt, offsets stay dense and are never handed out twice; with disk faults, a failed append
// is refused with a coded error and the shard refuses appends until the backoff passed.
// Method: the journal simulation suite, one seed per run, on the simulated disk; a failure
// names the command that replays it. The self-tests run the suite with durability turned off
// on purpose and require it to fail: a check that cannot catch its bug is worth nothing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { journalSuite } from '../sim/journal-suite.js';
import { replayCommand } from '../sim/suite.js';

const PLAIN_SEEDS = Number(process.env.SIM_SEEDS ?? 600);
const FAULT_SEEDS = Number(process.env.SIM_FAULT_SEEDS ?? 200);
/** Both unsafe variants are caught within the first few seeds; 200 leaves a wide margin. */
const SELF_TEST_SEEDS = 200;

async function assertSeedsPass(count: number, variant?: string): Promise<void> {
  const failures: string[] = [];
  for (let seed = 1; seed <= count; seed++) {
    const failure = await journalSuite.runSeed(seed, variant === undefined ? {} : { variant });
    if (failure !== null) failures.push(`${replayCommand('journal', seed, variant)}  # ${failure.message}`);
  }
  assert.deepEqual(failures, [], `${failures.length} of ${count} seeds failed:\n${failures.join('\n')}`);
}

describe('journal power cuts (sim/journal-suite.ts)', () => {
  it(`keeps every fsync-acknowledged append intact across power cuts (${PLAIN_SEEDS} seeds)`, async () => {
    await assertSeedsPass(PLAIN_SEEDS);
  });

  it(`with random EIO/ENOSPC: coded errors, refusal until the backoff, nothing acknowledged lost (${FAULT_SEEDS} seeds)`, async () => {
    await assertSeedsPass(FAULT_SEEDS, 'faults');
  });

  for (const variant of ['skip-data-sync', 'skip-roll-directory-sync']) {
    it(`self-test: catches a journal with ${variant} within ${SELF_TEST_SEEDS} seeds`, async () => {
      for (let seed = 1; seed <= SELF_TEST_SEEDS; seed++) {
        const failure = await journalSuite.runSeed(seed, { variant });
        if (failure !== null) {
          // A property finding (lost, corrupt, gap), not a crash of the harness itself.
          assert.doesNotMatch(failure.message, /^unexpected error/, `${replayCommand('journal', seed, variant)}: ${failure.message}`);
          return;
        }
      }
      assert.fail(`no seed in 1..${SELF_TEST_SEEDS} caught ${variant}: the power-cut checks cannot see that bug`);
    });
  }
});
