// Journal.compactDue: the housekeeping pass that keeps compacted system shards small.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { pino } from 'pino';
import { Journal } from '../journal.js';

it('compacts compacted shards with sealed segments and leaves plain shards alone', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'shardline-compact-due-'));
  const journal = await Journal.open(directory, { logger: pino({ level: 'silent' }), retentionCheckMs: 0 });
  try {
    await journal.createShard('state', { compacted: true, segmentBytes: 4096, durability: 'none' });
    await journal.createShard('log', { segmentBytes: 4096, durability: 'none' });
    for (let i = 0; i < 200; i += 1) {
      const record = { key: Buffer.from(`k${i % 5}`), value: Buffer.alloc(100, i) };
      await journal.append('state', [record]);
      await journal.append('log', [record]);
    }
    const logBefore = journal.info('log').sizeBytes;
    assert.ok(journal.info('state').segmentCount > 1, 'the test needs sealed segments');
    const removed = await journal.compactDue();
    assert.ok(removed >= 150, `removed ${removed} superseded records`);
    assert.equal(journal.info('log').sizeBytes, logBefore, 'a plain shard is not compacted');
    const keys = new Map<string, number>();
    for (let offset = journal.info('state').startOffset; ; ) {
      const records = await journal.read('state', offset);
      if (records.length === 0) break;
      for (const record of records) keys.set(record.key!.toString(), record.value![0]!);
      offset = records[records.length - 1]!.offset + 1;
    }
    assert.deepEqual(Object.fromEntries(keys), { k0: 195, k1: 196, k2: 197, k3: 198, k4: 199 }, 'the latest value of each key survives');
  } finally {
    await journal.close();
    await rm(directory, { recursive: true, force: true });
  }
});
