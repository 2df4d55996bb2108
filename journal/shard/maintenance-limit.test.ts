// Goal: a shard whose maintenance is limited (replication's high watermark) neither compacts
// away a record because of a record at or above the limit, nor removes one there; and restartAt
// empties a shard to start at a later offset, durably (a reopen keeps it), refusing to go back.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Journal } from '../index.js';
import { journalOnSimulatedDisk } from '../sim/journal-on-simulated-disk.js';

async function withDirectory(run: (directory: string) => Promise<void>): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), 'sl-maintenance-limit-'));
  try {
    await run(directory);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

const keyed = (key: string, value: string) => ({ key: Buffer.from(key), value: Buffer.from(value.padEnd(120, '.')) });

test('compaction below the limit only: a newer value at or above it supersedes nothing and is kept', async () => {
  await withDirectory(async (directory) => {
    const journal = await Journal.open(directory, { retentionCheckMs: 0 });
    try {
      await journal.createShard('c', { compacted: true, segmentBytes: 1024 });
      // offsets 0..9: a0 b0 a1 b1 ...; then the newest values of both at 10 and 11.
      for (let i = 0; i < 5; i += 1) await journal.append('c', [keyed('a', `a${i}`), keyed('b', `b${i}`)]);
      await journal.append('c', [keyed('a', 'a-new'), keyed('b', 'b-new')]);
      await journal.shard('c').rollNow();
      await journal.append('c', [keyed('z', 'active')]);
      // Everything from 9 on may still be truncated: a8 (offset 8) is a's latest below it.
      journal.shard('c').limitMaintenance(() => 9);
      await journal.compact('c');
      const kept = (await journal.read('c', 0)).map((record) => [record.offset, record.value?.toString().replace(/\.+$/, '')]);
      assert.deepEqual(kept, [[7, 'b3'], [8, 'a4'], [9, 'b4'], [10, 'a-new'], [11, 'b-new'], [12, 'active']]);
      // Lifted: the newest values now supersede.
      journal.shard('c').limitMaintenance(null);
      await journal.compact('c');
      assert.deepEqual((await journal.read('c', 0)).map((record) => record.offset), [10, 11, 12]);
    } finally {
      await journal.close();
    }
  });
});

test('restartAt empties a shard to start at a later offset, and a reopen keeps it', async () => {
  await withDirectory(async (directory) => {
    let journal = await Journal.open(directory, { retentionCheckMs: 0 });
    await journal.createShard('s', { segmentBytes: 1024 });
    for (let i = 0; i < 20; i += 1) await journal.append('s', [{ value: Buffer.alloc(100, i) }]);
    await assert.rejects(journal.shard('s').restartAt(5), (error: unknown) => (error as { code?: string }).code === 'SL_JOURNAL_OFFSET_OUT_OF_RANGE');
    await journal.shard('s').restartAt(50);
    assert.deepEqual([journal.info('s').startOffset, journal.info('s').nextOffset], [50, 50]);
    assert.deepEqual(await journal.read('s', 50), []);
    assert.equal((await journal.append('s', [{ value: Buffer.from('first') }])).baseOffset, 50);
    await journal.close();
    journal = await Journal.open(directory, { retentionCheckMs: 0 });
    try {
      assert.deepEqual([journal.info('s').startOffset, journal.info('s').nextOffset], [50, 51]);
      assert.deepEqual((await journal.read('s', 50)).map((record) => record.value?.toString()), ['first']);
    } finally {
      await journal.close();
    }
  });
});

test('restartAt across a power cut at any step: a prefix of the old log, or empty at the new start; never old records beside the new start', async () => {
  let cutsThatStruck = 0;
  for (let seed = 0; seed < 20; seed++) {
    for (let operations = 1; operations <= 16; operations++) {
      for (const compacted of [false, true]) {
        const { disk, open } = await journalOnSimulatedDisk(seed);
        const journal = await open();
        await journal.createShard('s', { durability: 'fsync', segmentBytes: 1024, compacted });
        for (let i = 0; i < 12; i += 1) await journal.append('s', [{ key: Buffer.from(`k${i}`), value: Buffer.alloc(150, i) }]);
        const oldEnd = journal.info('s').nextOffset;
        disk.powerCutAfterOperations(operations);
        const restarted = await journal.shard('s').restartAt(100).then(() => true, () => false);
        if (restarted) disk.powerCut();
        else cutsThatStruck += 1;

        const reopened = await open();
        const { startOffset, nextOffset } = reopened.info('s');
        const offsets = (await reopened.read('s', startOffset, { maxRecords: 100 })).map((record) => record.offset);
        const context = `seed ${seed}, compacted ${compacted}, power cut after ${operations} operations${restarted ? ' (after restartAt)' : ''}: start ${startOffset}, next ${nextOffset}, offsets ${offsets.join(',')}\n${disk.describe()}`;
        if (nextOffset >= 100) {
          assert.deepEqual([startOffset, nextOffset, offsets], [100, 100, []], context);
        } else {
          // A prefix of the old log (possibly empty): dense offsets from its start, none past the old end.
          assert.ok(startOffset === 0 && nextOffset <= oldEnd && !restarted, context);
          assert.deepEqual(offsets, Array.from({ length: nextOffset - startOffset }, (_, i) => startOffset + i), context);
        }
        await reopened.close();
      }
    }
  }
  assert.ok(cutsThatStruck > 100, `power cuts struck inside restartAt (${cutsThatStruck})`);
});
