// Property of the broker's projections across compaction of their shards.
//
// Goal: compaction (each key's latest record kept at its offset, earlier ones dropped, latest
// tombstones dropped once past tombstoneRetentionMs) never changes what a replay rebuilds, with
// or without snapshots: the state after compaction plus replay equals the live state. Before
// MemoryShardStore could compact, no test replayed a compacted shard; broker-replay only
// simulates compaction of `$sessions` in its check (a).
// Method: the random broker scripts of broker-replay (property-tests/broker-script.ts), with
// compaction steps at random points. Every compacted system shard the broker has is compacted:
// `$sessions`, `$retained`, `$snapshots` and `$snapshots.data` (data shards `mqtt.N` are not
// system shards and are left alone). The store's clock is the script's manual clock and the
// tombstone retention is drawn per script (0, 5 s, a day), so tombstones go at once, after some
// script time, or never. A compaction step runs either
//  - live: the broker keeps running; a replay of the compacted `$sessions` and `$retained` from
//    offset 0 must give the live session table and retained set, or
//  - while closed: between Broker.close (which writes the shutdown snapshots, so snapshots are
//    present and their shards get compacted too) and Broker.open, which rebuilds from the
//    newest snapshot plus the tail of the compacted shards; the harness's restart checks (b)
//    compare the replay and the reopened broker with the live state before the close.
// After every step the harness checks (a) (live state = replay of the shards, which after a
// compaction have gaps and go on growing past them) and (c) (the MQTT model). Each script ends
// with a restart that compacts while closed. The test also fails if no run removed a record or
// none compacted with a `$sessions` snapshot present, so it cannot pass without exercising both.
// A failure prints the seed and the shrunk script; set FC_SEED (and FC_PATH) to replay it,
// FC_NUM_RUNS to run more scripts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DATA_SHARD_PREFIX, SESSIONS_SHARD } from '../engine/index.js';
import { SNAPSHOTS_SHARD } from '../engine/index.js';
import { MemoryShardStore } from '../shard-model/index.js';
import { settle } from '../tests/support/manual-clock.js';
import { numRuns, replay } from '../tests/support/fast-check.js';
import { Harness, opArb, replayRetained, replaySessions, type Op } from './broker-script.js';

fc.configureGlobal({ includeErrorInReport: true });

type Step = { kind: 'op'; op: Op } | { kind: 'compact'; whileClosed: boolean };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 8, arbitrary: opArb(true).map((op): Step => ({ kind: 'op', op })) },
  { weight: 2, arbitrary: fc.boolean().map((whileClosed): Step => ({ kind: 'compact', whileClosed })) },
);

const DAY_MS = 24 * 3600 * 1000;

/** Compacts every compacted shard but the MQTT data shards; returns the records removed. */
async function compactSystemShards(store: MemoryShardStore): Promise<number> {
  let removed = 0;
  for (const info of await store.list()) {
    if (!info.config.compacted || info.name.startsWith(DATA_SHARD_PREFIX)) continue;
    removed += (await store.compact(info.name)).recordsRemoved;
  }
  return removed;
}

/** Whether `$snapshots` holds a manifest of a `$sessions` snapshot (key `m:$sessions\0ID`). */
async function hasSessionsSnapshot(store: MemoryShardStore): Promise<boolean> {
  const names = new Set((await store.list()).map((info) => info.name));
  if (!names.has(SNAPSHOTS_SHARD)) return false;
  const records = await store.read(SNAPSHOTS_SHARD, 0, { maxRecords: 100_000 });
  return records.some((record) => record.value !== null && record.key?.toString('latin1').startsWith(`m:${SESSIONS_SHARD}\0`) === true);
}

test('compacting the system shards, live or while closed, with snapshots present, replays to the live state', async () => {
  let removedTotal = 0;
  let compactionsWithSnapshot = 0;
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(0, 5_000, DAY_MS), fc.array(stepArb, { maxLength: 40, size: 'max' }), async (tombstoneRetentionMs, steps) => {
      const harness = new Harness((clock) => new MemoryShardStore({ clock: () => clock.now(), shardDefaults: { tombstoneRetentionMs } }));
      const compactWhileClosed = async () => {
        if (await hasSessionsSnapshot(harness.store)) compactionsWithSnapshot += 1;
        removedTotal += await compactSystemShards(harness.store);
      };
      await harness.open();
      try {
        for (const [index, step] of steps.entries()) {
          const when = `after step ${index} (${step.kind === 'op' ? step.op.kind : `compact${step.whileClosed ? ' while closed' : ''}`})`;
          if (step.kind === 'op') {
            await harness.run(step.op);
          } else if (step.whileClosed) {
            await harness.restart(compactWhileClosed);
          } else {
            await settle();
            const sessions = harness.broker.sessionTable.snapshot();
            const retained = harness.broker.retained.snapshot();
            if (await hasSessionsSnapshot(harness.store)) compactionsWithSnapshot += 1;
            removedTotal += await compactSystemShards(harness.store);
            assert.deepEqual(await replaySessions(harness.store), sessions, `$sessions compacted and replayed differs from the live session table ${when}`);
            assert.deepEqual(await replayRetained(harness.store), retained, `$retained compacted and replayed differs from the live retained set ${when}`);
          }
          await settle();
          await harness.checkReplay(when);
          harness.checkModel(when);
        }
        await harness.restart(compactWhileClosed);
        await harness.checkReplay('after the final restart');
        harness.checkModel('after the final restart');
      } finally {
        await harness.close();
      }
    }),
    { numRuns: numRuns(150), ...replay },
  );
  // Guards against a vacuous pass (a compaction that never removes anything, or snapshots that
  // are never there when it runs); FC_SEED replays a single run, which need not do both.
  if (replay.seed === undefined) {
    assert.ok(removedTotal > 0, 'no compaction removed a record');
    assert.ok(compactionsWithSnapshot > 0, 'no compaction ran with a $sessions snapshot present');
  }
});
