// Goal: retention and segment settings of existing shards can change (a node's data-retention
// settings apply to shards created before, and live), durably, and only those settings.
// Method: real files; a shard policy like the node's (data shards only), appends past a small
// size limit, retention runs, reopen.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Journal, type ShardPolicy } from '../journal.js';

const directories: string[] = [];
after(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});
async function freshDirectory(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'shardline-reconfigure-'));
  directories.push(directory);
  return directory;
}

const dataOnly = (retentionBytes: number | null): ShardPolicy => (name, config) => (name.startsWith('data.') && !config.compacted ? { retentionBytes, segmentBytes: 4096 } : undefined);

describe('shard settings that change on an existing shard', () => {
  it('applies a policy to existing and new shards, deletes old segments by size, and keeps the settings across a reopen', async () => {
    const directory = await freshDirectory();
    let journal = await Journal.open(directory, { retentionCheckMs: 0 });
    await journal.createShard('data.0');
    await journal.createShard('state', { compacted: true });
    assert.equal(journal.info('data.0').config.retentionBytes, null);
    await journal.close();

    journal = await Journal.open(directory, { retentionCheckMs: 0, shardPolicy: dataOnly(16 * 1024) });
    assert.equal(journal.info('data.0').config.retentionBytes, 16 * 1024);
    assert.equal(journal.info('data.0').config.segmentBytes, 4096);
    assert.equal(journal.info('state').config.retentionBytes, null, 'a compacted shard keeps its own rules');
    await journal.createShard('data.1');
    assert.equal(journal.info('data.1').config.retentionBytes, 16 * 1024);

    for (let i = 0; i < 200; i += 1) await journal.append('data.0', [{ value: Buffer.alloc(500, i) }]);
    assert.ok(journal.info('data.0').sizeBytes > 90_000);
    const deleted = await journal.enforceRetention();
    assert.ok(deleted > 0);
    const info = journal.info('data.0');
    assert.ok(info.sizeBytes <= 16 * 1024 + 4096, `size ${info.sizeBytes}`);
    assert.ok(info.startOffset > 0);
    assert.equal(info.nextOffset, 200);
    await assert.rejects(journal.read('data.0', 0), (error: { code?: string }) => error.code === 'SL_JOURNAL_OFFSET_OUT_OF_RANGE');
    assert.equal((await journal.read('data.0', info.startOffset, { maxRecords: 1 }))[0]?.offset, info.startOffset);

    // Live change: no size limit any more, written to shard.json.
    await journal.setShardPolicy(dataOnly(null));
    assert.equal(journal.info('data.0').config.retentionBytes, null);
    await journal.close();
    journal = await Journal.open(directory, { retentionCheckMs: 0 });
    assert.equal(journal.info('data.0').config.retentionBytes, null);
    assert.equal(journal.info('data.0').config.segmentBytes, 4096);
    assert.equal(journal.info('data.0').startOffset, info.startOffset);
    await journal.close();
  });

  it('refuses to change a setting that is fixed by the stored data', async () => {
    const directory = await freshDirectory();
    const journal = await Journal.open(directory, { retentionCheckMs: 0 });
    await journal.createShard('s');
    await assert.rejects(journal.shard('s').reconfigure({ compacted: true } as never), (error: { code?: string }) => error.code === 'SL_JOURNAL_INVALID_CONFIG');
    await assert.rejects(journal.shard('s').reconfigure({ retentionMs: -5 }), (error: { code?: string }) => error.code === 'SL_JOURNAL_INVALID_CONFIG');
    await journal.close();
  });
});
