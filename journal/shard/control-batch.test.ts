// Goal: a control batch (replication's epoch start) is invisible to every reader of records:
// read, readByTime, tail and a read that starts on it see its offset as a gap, while
// readBatches (what replicas copy) returns it, compaction keeps it, and the mark survives a
// reopen. A batch written before the mark existed (attributes 0) reads as an ordinary one.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isControlBatch, Journal, readBatchHeader } from '../index.js';

async function withJournal(run: (journal: Journal) => Promise<void>): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), 'sl-control-'));
  try {
    const journal = await Journal.open(directory, { retentionCheckMs: 0 });
    try {
      await run(journal);
    } finally {
      await journal.close();
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

const value = (text: string): { key: Buffer; value: Buffer; timestamp: number } => ({ key: Buffer.from(text.slice(0, 1)), value: Buffer.from(text), timestamp: 1_000 });
const CONTROL = { key: null, value: null, headers: [{ key: 'sl-epoch-start', value: Buffer.from('1') }], timestamp: 2_000 };

test('reads of records skip a control batch; readBatches returns it', async () => {
  await withJournal(async (journal) => {
    await journal.createShard('s');
    await journal.append('s', [value('a0'), value('a1')]);
    const control = await journal.append('s', [CONTROL], { control: true });
    assert.equal(control.baseOffset, 2);
    await journal.append('s', [{ ...value('b3'), timestamp: 3_000 }]);

    assert.deepEqual((await journal.read('s', 0)).map((record) => record.offset), [0, 1, 3]);
    // A read that starts on the control batch goes on after it.
    assert.deepEqual((await journal.read('s', 2)).map((record) => record.offset), [3]);
    // The control record's timestamp (2000) is not a record's: by time it finds offset 3.
    assert.deepEqual((await journal.readByTime('s', 1_500)).map((record) => record.offset), [3]);
    const batches = (await journal.readBatches('s', 0)).batches.map((batch) => readBatchHeader(batch, 0));
    assert.deepEqual(batches.map((header) => [header.baseOffset, isControlBatch(header)]), [[0, false], [2, true], [3, false]]);

    // A tail from the control batch's offset waits past it for the next record.
    const controller = new AbortController();
    const seen: number[] = [];
    const tailing = (async () => {
      for await (const record of journal.tail('s', 2, { signal: controller.signal })) {
        seen.push(record.offset);
        if (seen.length === 2) controller.abort();
      }
    })();
    await journal.append('s', [CONTROL], { control: true });
    await journal.append('s', [value('c5')]);
    await tailing;
    assert.deepEqual(seen, [3, 5]);
  });
});

test('an ordinary batch holding the same record is a record (attributes 0, as older segments hold)', async () => {
  await withJournal(async (journal) => {
    await journal.createShard('s');
    await journal.append('s', [CONTROL]);
    const [record] = await journal.read('s', 0);
    assert.equal(record?.headers[0]?.key, 'sl-epoch-start');
    assert.equal(isControlBatch(readBatchHeader((await journal.readBatches('s', 0)).batches[0]!, 0)), false);
  });
});

test('compaction keeps a control batch, and the mark survives a reopen', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'sl-control-'));
  try {
    let journal = await Journal.open(directory, { retentionCheckMs: 0 });
    await journal.createShard('c', { compacted: true, segmentBytes: 1024, tombstoneRetentionMs: 0 });
    await journal.append('c', [value('k0')]);
    await journal.append('c', [CONTROL], { control: true });
    for (let i = 0; i < 30; i += 1) await journal.append('c', [value(`k${'x'.repeat(60)}${i}`)]);
    const report = await journal.compact('c');
    assert.ok(report.recordsRemoved > 0, 'compaction removed superseded records');
    await journal.close();
    journal = await Journal.open(directory, { retentionCheckMs: 0 });
    try {
      const headers = (await journal.readBatches('c', 0)).batches.map((batch) => readBatchHeader(batch, 0));
      assert.deepEqual(headers.filter(isControlBatch).map((header) => header.baseOffset), [1]);
      assert.ok(!(await journal.read('c', 0)).some((record) => record.offset === 1));
    } finally {
      await journal.close();
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});
