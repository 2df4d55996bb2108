// The MQTT node across power cuts on a simulated disk (sim/broker-suite.ts): acknowledged
// publishes, persistent sessions and retained messages survive. The self-tests break
// durability on purpose and require the same property to catch it, so a pass above means
// something. Replay one seed with `npm run sim -- --suite broker --seed S [--variant V]`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { brokerPowerCutSuite } from '../sim/broker-suite.js';
import { replayCommand } from '../sim/suite.js';

const SEEDS = 50;
/** About a third of the seeds catch ack-before-durable; 40 misses in a row would be a real regression of the check. */
const SELF_TEST_SEEDS = 40;

describe('broker across power cuts (simulated disk, real mqtt.js clients)', () => {
  it(`${SEEDS} seeds: every acknowledged publish reaches each persistent session, sessions and subscriptions survive, retained messages keep their last acknowledged value`, { timeout: 120_000 }, async () => {
    for (let seed = 1; seed <= SEEDS; seed += 1) {
      const failure = await brokerPowerCutSuite.runSeed(seed, {});
      assert.equal(failure, null, failure === null ? '' : `seed ${seed}: ${failure.message}\nreplay: ${replayCommand('broker', seed)}\n${failure.detail ?? ''}`);
    }
  });

  for (const variant of ['ack-before-durable', 'skip-data-sync']) {
    it(`self-test: with ${variant}, the property fails for some seed within ${SELF_TEST_SEEDS}`, { timeout: 120_000 }, async () => {
      for (let seed = 1; seed <= SELF_TEST_SEEDS; seed += 1) {
        if ((await brokerPowerCutSuite.runSeed(seed, { variant })) !== null) return;
      }
      assert.fail(`no seed in 1..${SELF_TEST_SEEDS} caught ${variant}: the workload no longer exercises what it must (try ${replayCommand('broker', 1, variant)})`);
    });
  }
});
