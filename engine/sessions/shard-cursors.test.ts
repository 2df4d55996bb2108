// Goal: delivery cursors (with the offsets acknowledged above them) are stored by data shard name
// and read back at the positions of the same shards; records without those offsets read as none;
// cursors release 0.1.0 stored by position are read as the shards they were positions of, in the
// real release fixture too (a misread would resume sessions at the wrong offsets).
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { LocalShardStore, MqttShardMap } from '../../shard-model/index.js';
import { cursorRecord, SESSIONS_SHARD, SessionTable, type DeliveryCursors } from './session-events.js';
import { cursorsByName, cursorsByPosition, readStoredCursors } from './shard-cursors.js';
import { numRuns, replay } from '../../tests/support/fast-check.js';

const FIXTURE = new URL('../../tests/fixtures/release-0.1.0/data', import.meta.url);

describe('shard cursors', () => {
  test('cursors by position, stored by name and read back, are the same cursors (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }).chain((count) =>
          fc.record({
            count: fc.constant(count),
            acked: fc.array(fc.nat(1000), { minLength: count, maxLength: count }),
            sent: fc.oneof(fc.constant<number[]>([]), fc.array(fc.nat(1000), { minLength: count, maxLength: count })),
            released: fc.array(fc.tuple(fc.integer({ min: 1, max: 0xffff }), fc.nat(count - 1), fc.nat(1000)), { maxLength: 3 }),
            ackedAbove: fc.oneof(fc.constant(undefined), fc.array(fc.uniqueArray(fc.nat(1000), { maxLength: 4 }).map((offsets) => offsets.sort((a, b) => a - b)), { minLength: count, maxLength: count })),
          }),
        ),
        ({ count, acked, sent, released, ackedAbove }) => {
          const shards = new MqttShardMap(count).names;
          const cursors: DeliveryCursors = released.length === 0 ? { acked, sent } : { acked, sent, released };
          // Kept only when some shard has one (records stay as before when none has).
          if (ackedAbove?.some((offsets) => offsets.length > 0) === true) cursors.ackedAbove = ackedAbove;
          const table = new SessionTable();
          table.apply(cursorRecord('c', cursorsByName(cursors, shards)));
          assert.deepEqual(cursorsByPosition(table.sessions.get('c')?.cursors ?? { acked: {}, sent: {} }, shards), cursors);
        },
      ),
      { numRuns: numRuns(200), ...replay },
    );
  });

  test('a position is kept by its shard name, not by its place in the list of shards', () => {
    const stored = cursorsByName({ acked: [5, 7], sent: [6, 8], released: [[3, 1, 7]] }, ['mqtt.0', 'mqtt.1']);
    assert.deepEqual(stored, { acked: { 'mqtt.0': 5, 'mqtt.1': 7 }, sent: { 'mqtt.0': 6, 'mqtt.1': 8 }, released: [[3, 'mqtt.1', 7]] });
    // Read against a list in another order, each offset still goes to its shard.
    assert.deepEqual(cursorsByPosition(stored, ['mqtt.1', 'mqtt.0']), { acked: [7, 5], sent: [8, 6], released: [[3, 0, 7]] });
    // A shard without a position starts at its start.
    assert.deepEqual(cursorsByPosition({ acked: { 'mqtt.1': 4 }, sent: {} }, ['mqtt.0', 'mqtt.1']), { acked: [0, 4], sent: [] });
  });

  test('offsets acknowledged above the cursor are kept by shard name; records without them (written before they existed) read as none', () => {
    const stored = cursorsByName({ acked: [5, 7], sent: [9, 9], ackedAbove: [[6, 8], []] }, ['mqtt.0', 'mqtt.1']);
    assert.deepEqual(stored, { acked: { 'mqtt.0': 5, 'mqtt.1': 7 }, sent: { 'mqtt.0': 9, 'mqtt.1': 9 }, ackedAbove: { 'mqtt.0': [6, 8] } });
    assert.deepEqual(cursorsByPosition(stored, ['mqtt.1', 'mqtt.0']), { acked: [7, 5], sent: [9, 9], ackedAbove: [[], [6, 8]] });
    // A shard no longer among the data shards: its offsets go with it.
    assert.deepEqual(cursorsByPosition(stored, ['mqtt.1']), { acked: [7], sent: [9] });
    const older = readStoredCursors(Buffer.from(JSON.stringify({ acked: { 'mqtt.0': 5 }, sent: { 'mqtt.0': 9 } })));
    assert.deepEqual(cursorsByPosition(older, ['mqtt.0']), { acked: [5], sent: [9] });
  });

  test("release 0.1.0's cursors (arrays by position) read as the data shards mqtt.<position>", () => {
    const stored = readStoredCursors(Buffer.from(JSON.stringify({ acked: [0, 2, null, 9], sent: [1, 3], released: [[4, 3, 8]] })));
    assert.deepEqual(stored, { acked: { 'mqtt.0': 0, 'mqtt.1': 2, 'mqtt.3': 9 }, sent: { 'mqtt.0': 1, 'mqtt.1': 3 }, released: [[4, 'mqtt.3', 8]] });
  });

  test('the release 0.1.0 fixture: its sessions resume at the positions that release stored', async () => {
    const copy = await mkdtemp(join(tmpdir(), 'shardline-cursors-'));
    try {
      await cp(FIXTURE, copy, { recursive: true });
      const store = await LocalShardStore.open(copy, { retentionCheckMs: 0 });
      const table = new SessionTable();
      try {
        for (let from = 0; ; ) {
          const records = await store.read(SESSIONS_SHARD, from);
          if (records.length === 0) break;
          for (const record of records) table.apply(record);
          from = (records.at(-1)?.offset ?? from) + 1;
        }
      } finally {
        await store.close();
      }
      const shards = new MqttShardMap(4).names;
      // Stored by 0.1.0 as {"acked":[0,2,0,0],...} and {"sent":[0,2,0,0]}: data shard mqtt.1.
      assert.deepEqual(cursorsByPosition(table.sessions.get('fx-v5-will')?.cursors ?? { acked: {}, sent: {} }, shards).acked, [0, 2, 0, 0]);
      assert.deepEqual(cursorsByPosition(table.sessions.get('fx-v311-inflight')?.cursors ?? { acked: {}, sent: {} }, shards).sent, [0, 2, 0, 0]);
      assert.equal(table.sessions.get('fx-v5-will')?.cursors.acked['mqtt.1'], 2);
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });
});
