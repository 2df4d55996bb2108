// Journal-level behaviour on real files: bad data directories, format versions, locking,
// durability across reopen, rolling, retention and compaction.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, truncate, writeFile, appendFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { checksum64 } from './checksum.js';
import { Journal } from './journal.js';

const directories: string[] = [];
async function freshDirectory(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'shardline-journal-'));
  directories.push(directory);
  return directory;
}
after(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

const value = (text: string) => Buffer.from(text);

async function expectCode(work: () => Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(work, (error: { code?: string }) => {
    assert.equal(error.code, code);
    return true;
  });
}

describe('journal data directory', () => {
  it('refuses a non-empty directory that is not a journal', async () => {
    const directory = await freshDirectory();
    await writeFile(join(directory, 'notes.txt'), 'hello');
    await expectCode(() => Journal.open(directory), 'SL_JOURNAL_NOT_A_JOURNAL');
  });

  it('refuses a path that is a file', async () => {
    const directory = await freshDirectory();
    await writeFile(join(directory, 'file'), 'x');
    await expectCode(() => Journal.open(join(directory, 'file')), 'SL_JOURNAL_NOT_A_JOURNAL');
  });

  it('refuses a journal of an unknown format version', async () => {
    const directory = await freshDirectory();
    const journal = await Journal.open(directory);
    await journal.close();
    await writeFile(join(directory, 'shardline-journal.json'), JSON.stringify({ format: 99 }));
    await expectCode(() => Journal.open(directory), 'SL_JOURNAL_UNSUPPORTED_FORMAT');
  });

  it('refuses a batch of an unknown format version instead of cutting it off', async () => {
    const directory = await freshDirectory();
    const journal = await Journal.open(directory);
    await journal.createShard('s');
    await journal.append('s', [{ value: value('a') }]);
    await journal.close();
    const log = join(directory, 'shards', 's', '00000000000000000000.log');
    const bytes = await readFile(log);
    // A batch that verifies but carries another version (written by a newer build).
    bytes.writeUInt8(7, 16);
    bytes.writeBigUInt64LE(checksum64(bytes.subarray(16, bytes.readUInt32LE(4))), 8);
    await writeFile(log, bytes);
    await expectCode(() => Journal.open(directory), 'SL_JOURNAL_UNSUPPORTED_FORMAT');
    assert.equal((await stat(log)).size, bytes.length, 'the file was not truncated');
  });

  it('holds a lock so a second live process cannot open it, and ignores a stale lock', async () => {
    const directory = await freshDirectory();
    const journal = await Journal.open(directory);
    await journal.close();
    // A lock naming a process that is alive and not us (pid 1) must be respected.
    await writeFile(join(directory, 'journal.lock'), '1');
    await expectCode(() => Journal.open(directory), 'SL_JOURNAL_LOCKED');
    // A lock of a dead process is stale.
    await writeFile(join(directory, 'journal.lock'), '2147483646');
    const reopened = await Journal.open(directory);
    await reopened.close();
  });

  it('refuses a shard directory without shard.json', async () => {
    const directory = await freshDirectory();
    const journal = await Journal.open(directory);
    await journal.close();
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(directory, 'shards', 'stray'));
    await expectCode(() => Journal.open(directory), 'SL_JOURNAL_NOT_A_JOURNAL');
  });
});

describe('journal files', () => {
  it('keeps acknowledged records across a reopen and continues their offsets', async () => {
    const directory = await freshDirectory();
    const journal = await Journal.open(directory);
    await journal.createShard('s', { segmentBytes: 2048 });
    for (let i = 0; i < 100; i += 1) await journal.append('s', [{ key: value(`k${i % 7}`), value: Buffer.alloc(40, i) }]);
    await journal.close();
    const reopened = await Journal.open(directory);
    const info = reopened.info('s');
    assert.equal(info.nextOffset, 100);
    assert.ok(info.segmentCount > 1, 'segments rolled by size');
    const records = await reopened.read('s', 0, { maxRecords: 200 });
    assert.equal(records.length, 100);
    records.forEach((record, i) => assert.deepEqual(record.value, Buffer.alloc(40, i)));
    assert.equal((await reopened.append('s', [{ value: value('next') }])).baseOffset, 100);
    await reopened.close();
  });

  it('cuts a torn tail and a garbage tail on open', async () => {
    const directory = await freshDirectory();
    const journal = await Journal.open(directory);
    await journal.createShard('s');
    for (let i = 0; i < 5; i += 1) await journal.append('s', [{ value: value(`m${i}`) }]);
    await journal.close();
    const log = join(directory, 'shards', 's', '00000000000000000000.log');
    const size = (await stat(log)).size;
    await truncate(log, size - 3);
    let reopened = await Journal.open(directory);
    assert.equal(reopened.info('s').nextOffset, 4);
    await reopened.close();
    await appendFile(log, Buffer.from('garbage that is not a batch at all, long enough for a header..........'));
    reopened = await Journal.open(directory);
    assert.equal(reopened.info('s').nextOffset, 4);
    assert.deepEqual((await reopened.read('s', 0)).map((r) => r.value?.toString()), ['m0', 'm1', 'm2', 'm3']);
    await reopened.close();
  });

  it('never returns a record of a sealed batch whose bytes were damaged', async () => {
    const directory = await freshDirectory();
    const journal = await Journal.open(directory);
    await journal.createShard('s', { segmentBytes: 1024 });
    for (let i = 0; i < 40; i += 1) await journal.append('s', [{ value: Buffer.alloc(60, 65 + (i % 26)) }]);
    await journal.close();
    const log = join(directory, 'shards', 's', '00000000000000000000.log');
    const bytes = await readFile(log);
    bytes.writeUInt8((bytes[bytes.length - 10] ?? 0) ^ 0xff, bytes.length - 10);
    await writeFile(log, bytes);
    const reopened = await Journal.open(directory);
    const first = await reopened.read('s', 0, { maxRecords: 1000 });
    assert.ok(first.length > 0 && first.length < 40, 'the read stops before the damage');
    for (const record of first) assert.deepEqual(record.value, Buffer.alloc(60, 65 + (record.offset % 26)));
    await expectCode(() => reopened.read('s', first.length), 'SL_JOURNAL_CORRUPT_BATCH');
    await reopened.close();
  });

  it('rebuilds a missing or stale index', async () => {
    const directory = await freshDirectory();
    const journal = await Journal.open(directory);
    await journal.createShard('s', { segmentBytes: 4096, indexIntervalBytes: 128 });
    for (let i = 0; i < 200; i += 1) await journal.append('s', [{ value: Buffer.alloc(50, i), timestamp: 1_000 + i }]);
    await journal.close();
    const shardDirectory = join(directory, 'shards', 's');
    const files = await readdir(shardDirectory);
    await rm(join(shardDirectory, files.find((file) => file.endsWith('.index')) ?? 'none'));
    await writeFile(join(shardDirectory, files.filter((file) => file.endsWith('.timeindex'))[1] ?? 'none'), 'stale');
    const reopened = await Journal.open(directory);
    assert.deepEqual((await reopened.read('s', 150, { maxRecords: 1 }))[0]?.value, Buffer.alloc(50, 150));
    assert.equal((await reopened.readByTime('s', 1_120, { maxRecords: 1 }))[0]?.offset, 120);
    await reopened.close();
  });

  it('deletes whole sealed segments by age and by size, never newer records', async () => {
    const directory = await freshDirectory();
    let now = 1_000_000;
    const journal = await Journal.open(directory, { clock: () => now, retentionCheckMs: 0 });
    await journal.createShard('s', { segmentBytes: 1024, retentionMs: 10_000 });
    for (let i = 0; i < 60; i += 1) {
      await journal.append('s', [{ value: Buffer.alloc(50, i) }]);
      now += 500;
    }
    const before = journal.info('s');
    const deleted = await journal.enforceRetention();
    const after = journal.info('s');
    assert.ok(deleted > 0 && after.segmentCount < before.segmentCount);
    const records = await journal.read('s', after.startOffset, { maxRecords: 100 });
    const cutoff = now - 10_000;
    const firstNewer = Math.ceil((cutoff - 1_000_000) / 500);
    assert.ok(records[0] !== undefined && records[0].offset <= firstNewer, 'every record newer than the limit is kept');
    await expectCode(() => journal.read('s', 0), 'SL_JOURNAL_OFFSET_OUT_OF_RANGE');
    await journal.close();
  });

  it('drops the sealed segments below an offset and keeps the rest across a reopen', async () => {
    const directory = await freshDirectory();
    const journal = await Journal.open(directory, { retentionCheckMs: 0 });
    await journal.createShard('s', { segmentBytes: 1024 });
    for (let i = 0; i < 60; i += 1) await journal.append('s', [{ value: Buffer.alloc(50, i) }]);
    const segments = journal.shard('s').segmentPaths();
    assert.ok(segments.length > 3);
    const keepFrom = segments[2]!.baseOffset;
    assert.equal(await journal.shard('s').dropSegmentsBelow(keepFrom + 1), 2);
    assert.equal(journal.info('s').startOffset, keepFrom);
    await journal.close();
    const reopened = await Journal.open(directory, { retentionCheckMs: 0 });
    assert.equal(reopened.info('s').startOffset, keepFrom);
    const records = await reopened.read('s', keepFrom, { maxRecords: 100 });
    assert.deepEqual(records.map((record) => record.value?.[0]), Array.from({ length: 60 - keepFrom }, (_, i) => keepFrom + i));
    await expectCode(() => reopened.read('s', keepFrom - 1), 'SL_JOURNAL_OFFSET_OUT_OF_RANGE');
    await reopened.close();
  });

  it('compacts sealed segments to the latest value per key; a tombstone deletes', async () => {
    const directory = await freshDirectory();
    const journal = await Journal.open(directory, { retentionCheckMs: 0 });
    await journal.createShard('c', { segmentBytes: 1024, compacted: true, tombstoneRetentionMs: 0 });
    for (let i = 0; i < 90; i += 1) await journal.append('c', [{ key: value(`k${i % 5}`), value: value(`v${i}`) }]);
    await journal.append('c', [{ key: value('k0'), value: null }]);
    await journal.shard('c').rollNow();
    const appending = journal.append('c', [{ key: value('k1'), value: value('during') }]);
    const report = await journal.compact('c');
    await appending;
    assert.ok(report.recordsRemoved > 0);
    const records = await journal.read('c', 0, { maxRecords: 1000 });
    const latest = new Map(records.map((record) => [record.key?.toString(), record.value?.toString() ?? null]));
    assert.equal(latest.get('k1'), 'during');
    assert.equal(latest.get('k2'), 'v87');
    assert.ok(!latest.has('k0'), 'the tombstoned key is gone');
    assert.ok(records.length <= 6);
    await journal.close();
    const reopened = await Journal.open(directory, { retentionCheckMs: 0 });
    assert.deepEqual((await reopened.read('c', 0, { maxRecords: 1000 })).map((r) => r.offset), records.map((r) => r.offset));
    await reopened.close();
  });
});

describe('journal housekeeping', () => {
  it('ignores a stray file in the shards directory', async () => {
    const directory = await freshDirectory();
    const journal = await Journal.open(directory);
    await journal.createShard('s');
    await journal.close();
    await writeFile(join(directory, 'shards', 'README'), 'operator notes');
    const reopened = await Journal.open(directory);
    assert.deepEqual(reopened.listShards().map((shard) => shard.name), ['s']);
    await reopened.close();
  });
});

describe('segment rolling', () => {
  it('rolls by age of the segment, not by the age of the records it holds', async () => {
    const directory = await freshDirectory();
    let now = 5_000_000;
    const journal = await Journal.open(directory, { clock: () => now, retentionCheckMs: 0 });
    await journal.createShard('s', { segmentMs: 1000 });
    // Records stamped long ago by their writer must not roll a segment per append.
    for (let i = 0; i < 5; i += 1) await journal.append('s', [{ value: value(`old${i}`), timestamp: 1_000 }]);
    assert.equal(journal.info('s').segmentCount, 1);
    now += 1_500;
    await journal.append('s', [{ value: value('late') }]);
    assert.equal(journal.info('s').segmentCount, 2);
    await journal.close();
  });

  it('writes back an index it had to rebuild', async () => {
    const directory = await freshDirectory();
    const journal = await Journal.open(directory);
    await journal.createShard('s', { segmentBytes: 1024 });
    for (let i = 0; i < 30; i += 1) await journal.append('s', [{ value: Buffer.alloc(60, i) }]);
    await journal.close();
    const index = join(directory, 'shards', 's', '00000000000000000000.index');
    await rm(index);
    const reopened = await Journal.open(directory);
    await reopened.close();
    assert.ok((await stat(index)).size > 0, 'the rebuilt index is on disk again');
  });
});

describe('batch reads', () => {
  it('returns verified batches that decode to exactly what read returns', async () => {
    const { decodeBatchRecords, readBatchHeader } = await import('./segment/batch-format.js');
    const directory = await freshDirectory();
    const journal = await Journal.open(directory, { retentionCheckMs: 0 });
    await journal.createShard('s', { segmentBytes: 4096, durability: 'none' });
    for (let i = 0; i < 60; i += 1) await journal.append('s', [{ value: Buffer.alloc(40, i) }, { value: Buffer.alloc(30, i) }]);
    const expected = await journal.read('s', 17, { maxRecords: 1000 });
    const decoded = [];
    let next = 17;
    for (let call = 0; call < 100 && next < 120; call += 1) {
      const { batches, next: after } = await journal.readBatches('s', next, { maxBytes: 700 });
      assert.ok(batches.length > 0);
      for (const batch of batches) decoded.push(...decodeBatchRecords(batch, 0, readBatchHeader(batch, 0)).filter((record) => record.offset >= 17));
      next = after;
    }
    assert.deepEqual(decoded.map((r) => [r.offset, r.value]), expected.map((r) => [r.offset, r.value]));
    assert.deepEqual(await journal.readBatches('s', 120), { batches: [], next: 120 });
    await expectCode(() => journal.readBatches('s', 121), 'SL_JOURNAL_OFFSET_OUT_OF_RANGE');
    await journal.close();
  });
});

describe('review findings', () => {
  it('keeps truncation and a concurrent compaction consistent', async () => {
    const directory = await freshDirectory();
    const journal = await Journal.open(directory, { retentionCheckMs: 0 });
    await journal.createShard('c', { segmentBytes: 1024, compacted: true, tombstoneRetentionMs: 0 });
    for (let i = 0; i < 60; i += 1) await journal.append('c', [{ key: value(`k${i % 4}`), value: value(`v${i}`) }]);
    const compaction = journal.compact('c');
    const truncation = journal.truncateAfter('c', 40);
    await Promise.all([compaction, truncation]);
    const next = await journal.append('c', [{ key: value('k9'), value: value('after') }]);
    const offsets = (await journal.read('c', 0, { maxRecords: 1000 })).map((record) => record.offset);
    assert.deepEqual(offsets, [...new Set(offsets)].sort((a, b) => a - b), 'offsets unique and increasing');
    assert.ok(offsets.every((offset) => offset <= 40 || offset === next.baseOffset), 'no truncated record came back');
    assert.ok(next.baseOffset <= 41);
    await journal.close();
  });

  it('refuses a damaged sealed batch even when its index had to be rebuilt, and compaction leaves it alone', async () => {
    const directory = await freshDirectory();
    const journal = await Journal.open(directory, { retentionCheckMs: 0 });
    await journal.createShard('c', { segmentBytes: 1024, compacted: true, tombstoneRetentionMs: 0 });
    for (let i = 0; i < 40; i += 1) await journal.append('c', [{ key: value(`k${i % 3}`), value: Buffer.alloc(50, i) }]);
    await journal.close();
    const shardDirectory = join(directory, 'shards', 'c');
    const log = join(shardDirectory, '00000000000000000000.log');
    const bytes = await readFile(log);
    const fifthBatch = 4 * bytes.readUInt32LE(4) + 60;
    bytes.writeUInt8((bytes[fifthBatch] ?? 0) ^ 0xff, fifthBatch);
    await writeFile(log, bytes);
    await rm(join(shardDirectory, '00000000000000000000.index'));
    const reopened = await Journal.open(directory, { retentionCheckMs: 0 });
    assert.deepEqual((await reopened.read('c', 0)).map((record) => record.offset), [0, 1, 2, 3]);
    await expectCode(() => reopened.read('c', 4), 'SL_JOURNAL_CORRUPT_BATCH');
    const report = await reopened.compact('c');
    assert.ok(report.segmentsSkipped >= 1 && report.segmentsRewritten === 0);
    assert.equal((await stat(log)).size, bytes.length, 'the damaged segment was not rewritten');
    await reopened.close();
  });

  it('keeps the start offset when truncation empties a shard whose start moved', async () => {
    const directory = await freshDirectory();
    let now = 1_000_000;
    const journal = await Journal.open(directory, { clock: () => now, retentionCheckMs: 0 });
    await journal.createShard('s', { segmentBytes: 1024, retentionMs: 1_000 });
    for (let i = 0; i < 40; i += 1) await journal.append('s', [{ value: Buffer.alloc(60, i) }]);
    now += 10_000;
    await journal.enforceRetention();
    const start = journal.info('s').startOffset;
    assert.ok(start > 0);
    await journal.truncateAfter('s', start - 1);
    await journal.close();
    const reopened = await Journal.open(directory, { clock: () => now, retentionCheckMs: 0 });
    assert.equal(reopened.info('s').startOffset, start);
    assert.equal((await reopened.append('s', [{ value: value('x') }])).baseOffset, start, 'offsets are not reissued');
    await reopened.close();
  });

  it('refuses a second open of the same directory in one process', async () => {
    const directory = await freshDirectory();
    const journal = await Journal.open(directory);
    await expectCode(() => Journal.open(directory), 'SL_JOURNAL_LOCKED');
    await journal.close();
    await (await Journal.open(directory)).close();
  });

  it('refuses appends beyond the queue bound and keeps every accepted one', async () => {
    const directory = await freshDirectory();
    const journal = await Journal.open(directory);
    await journal.createShard('s', { durability: 'fsync', maxQueuedAppendBytes: 4096 });
    const outcomes = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => journal.append('s', [{ value: Buffer.alloc(500, i % 256) }])));
    const refused = outcomes.filter((outcome) => outcome.status === 'rejected');
    assert.ok(refused.length > 0, 'the bound was reached');
    for (const outcome of refused) assert.equal((outcome.reason as { code?: string }).code, 'SL_JOURNAL_OVERLOADED');
    const accepted = outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
    assert.equal(journal.info('s').nextOffset, accepted);
    await journal.close();
  });
});
