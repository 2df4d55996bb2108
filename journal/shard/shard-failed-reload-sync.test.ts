// Goal: when the fdatasync that ends a failed shard's reopen fails, the next reopen must not
// adopt what only the page cache holds: that sync doomed the pages, the next one reports
// success without saving them, and records built on top would sit behind a hole after a power
// cut (found by `npm run sim -- --suite journal --seed 599104488 --variant faults`: offsets
// 11..16 missing).
// Method: the simulated disk with scripted faults, a manual clock, durability `none` so the
// records are only in the page cache when the faults strike; then rolls, a power cut, reopen.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { journalOnSimulatedDisk } from '../sim/journal-on-simulated-disk.js';
import { RECOVERY_BACKOFF_MS } from './shard.js';

it('a failed sync while reopening a failed shard cuts the shard back to its last good sync', async () => {
  let now = 1_000_000;
  const { disk, open } = await journalOnSimulatedDisk(3, () => now);
  const journal = await open();
  await journal.createShard('s', { durability: 'none', segmentBytes: 1024 });
  const value = (label: string) => Buffer.from(label.padEnd(200, '.'));
  for (const label of ['a', 'b', 'c']) await journal.append('s', [{ value: value(label) }]);

  // A failed truncation fails the shard without syncing anything.
  disk.injectFault({ operation: 'truncate', code: 'EIO' });
  await assert.rejects(journal.truncateAfter('s', 0), { code: 'SL_JOURNAL_IO' });

  // The reopen's own fdatasync fails: a, b and c are doomed.
  now += RECOVERY_BACKOFF_MS;
  disk.injectFault({ operation: 'datasync', code: 'EIO' });
  await assert.rejects(journal.append('s', [{ value: value('x') }]), { code: 'SL_JOURNAL_IO' });

  // The next reopen cuts them off rather than building on them.
  now += RECOVERY_BACKOFF_MS;
  const resumed = await journal.append('s', [{ value: value('d') }]);
  assert.equal(resumed.baseOffset, 0, 'records whose pages a failed sync doomed must not stay in the shard');
  for (const label of ['e', 'f', 'g', 'h', 'i', 'j', 'k']) await journal.append('s', [{ value: value(label) }]);
  assert.ok(journal.info('s').segmentCount >= 3, 'the appends rolled the segment (which syncs it)');

  disk.powerCut();
  const reopened = await open();
  const { startOffset, nextOffset } = reopened.info('s');
  const records = await reopened.read('s', startOffset, { maxRecords: 100 });
  assert.deepEqual(records.map((record) => record.offset), Array.from({ length: nextOffset - startOffset }, (_, i) => startOffset + i), disk.describe());
  assert.ok(records.length >= 4, `the synced segments survive the power cut (${records.length} records)`);
  await reopened.close();
});

it('a truncation whose segment delete fails keeps that segment known, so a failed reopen sync still cuts it back', async () => {
  // Found by `npm run sim -- --suite journal --seed 1375433083 --variant faults`: truncateAfter
  // dropped a later segment from its list before deleting its files; the delete failed, the
  // reopen's fdatasync of that (still present) segment failed, and the next reopen adopted its
  // doomed records, which a power cut then turned into a damaged batch.
  let now = 1_000_000;
  const { disk, open } = await journalOnSimulatedDisk(4, () => now);
  const journal = await open();
  await journal.createShard('s', { durability: 'none', segmentBytes: 1024 });
  const value = (label: string) => Buffer.from(label.padEnd(200, '.'));
  // a, b, c fill the first segment; d rolls (which syncs the first) and stays unsynced.
  for (const label of ['a', 'b', 'c', 'd']) await journal.append('s', [{ value: value(label) }]);
  assert.equal(journal.info('s').segmentCount, 2);

  disk.injectFault({ operation: 'unlink', pathIncludes: '00000000000000000003.index', code: 'EIO' });
  await assert.rejects(journal.truncateAfter('s', 1), { code: 'SL_JOURNAL_IO' });
  now += RECOVERY_BACKOFF_MS;
  disk.injectFault({ operation: 'datasync', pathIncludes: '00000000000000000003.log', code: 'EIO' });
  await assert.rejects(journal.append('s', [{ value: value('x') }]), { code: 'SL_JOURNAL_IO' });
  now += RECOVERY_BACKOFF_MS;
  const resumed = await journal.append('s', [{ value: value('e') }]);
  assert.equal(resumed.baseOffset, 3, 'd, whose pages the failed sync doomed, must not stay in the shard');
  for (const label of ['f', 'g', 'h', 'i']) await journal.append('s', [{ value: value(label) }]);

  disk.powerCut();
  const reopened = await open();
  const { startOffset, nextOffset } = reopened.info('s');
  const records = await reopened.read('s', startOffset, { maxRecords: 100 });
  assert.deepEqual(records.map((record) => record.offset), Array.from({ length: nextOffset - startOffset }, (_, i) => startOffset + i), disk.describe());
  await reopened.close();
});
