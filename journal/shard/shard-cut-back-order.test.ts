// Goal: cutting a failed group commit back never leaves a hole in the offsets, even when the
// directory sync of the cut fails and a power cut follows: the later segments' deletion must be
// durable before the segment that stays is shortened (found by `npm run sim -- --suite journal
// --seed 625779484 --variant faults`: offset 21 missing).
// Method: the simulated disk with scripted faults; one group commit that rolls twice, its
// last fdatasync failing, the cut back's directory sync failing, then a power cut and reopen.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { journalOnSimulatedDisk } from '../sim/journal-on-simulated-disk.js';

it('a cut back whose directory sync fails leaves dense offsets after a power cut', async () => {
  const { disk, open } = await journalOnSimulatedDisk(5);
  const journal = await open();
  await journal.createShard('s', { durability: 'fsync', segmentBytes: 1024 });
  const value = (label: string) => Buffer.from(label.padEnd(200, '.'));
  await journal.append('s', [{ value: value('first') }]);

  // One append written alone, the rest queued behind it form one group that rolls twice.
  const labels = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'];
  disk.injectFault({ operation: 'datasync', pathIncludes: '00000000000000000009.log', code: 'EIO' });
  // The three rolls' directory syncs succeed; the cut back's fails.
  disk.injectFault({ operation: 'syncDirectory', pathIncludes: '/shards/s', code: 'EIO', after: 3 });
  const results = await Promise.allSettled(labels.map((label) => journal.append('s', [{ value: value(label) }])));
  const failed = results.filter((result) => result.status === 'rejected').length;
  assert.ok(failed > 0, `the fault struck a group (${results.map((result) => result.status).join(' ')})`);

  disk.powerCut();
  const reopened = await open();
  const { startOffset, nextOffset } = reopened.info('s');
  const records = await reopened.read('s', startOffset, { maxRecords: 100 });
  assert.deepEqual(records.map((record) => record.offset), Array.from({ length: nextOffset - startOffset }, (_, i) => startOffset + i), disk.describe());
  const acknowledged = results.flatMap((result, i) => (result.status === 'fulfilled' ? [labels[i]] : []));
  const stored = new Set(records.map((record) => record.value?.toString().replace(/\.+$/, '')));
  for (const label of ['first', ...acknowledged]) assert.ok(stored.has(label), `acknowledged ${label} survives`);
  await reopened.close();
});
