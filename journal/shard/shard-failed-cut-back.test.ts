// Goal: when a failed append's cut back fails too, the append that reopens the shard and fails
// again cuts back to the durable end, not to the state of the first failed write (found by
// `npm run sim -- --suite journal --seed 10 --variant faults`: offsets 4..6 were skipped).
// Method: the simulated disk with scripted faults and a manual clock.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { journalOnSimulatedDisk } from '../sim/journal-on-simulated-disk.js';
import { RECOVERY_BACKOFF_MS } from './shard.js';

it('a second failure after a failed cut back keeps offsets dense', async () => {
  let now = 1_000_000;
  const { disk, open } = await journalOnSimulatedDisk(1, () => now);
  const journal = await open();
  await journal.createShard('s', { segmentBytes: 64 * 1024 });
  assert.equal((await journal.append('s', [{ value: Buffer.from('a') }])).baseOffset, 0);

  // The write fails and so does the truncate of the cut back.
  disk.injectFault({ operation: 'writev', code: 'ENOSPC' });
  disk.injectFault({ operation: 'truncate', code: 'EIO' });
  await assert.rejects(journal.append('s', [{ value: Buffer.from('b') }, { value: Buffer.from('c') }]), { code: 'SL_JOURNAL_DISK_FULL' });

  // The next append reopens the shard (the cut back now works) and fails on its own write.
  // (Not on an fdatasync: reopening syncs the log, and a fault there would fail the reopen.)
  now += RECOVERY_BACKOFF_MS;
  disk.injectFault({ operation: 'writev', code: 'EIO' });
  await assert.rejects(journal.append('s', [{ value: Buffer.from('d') }]), { code: 'SL_JOURNAL_IO' });

  now += RECOVERY_BACKOFF_MS;
  assert.equal((await journal.append('s', [{ value: Buffer.from('e') }])).baseOffset, 1);
  const records = await journal.read('s', 0);
  assert.deepEqual(records.map((record) => [record.offset, record.value?.toString()]), [[0, 'a'], [1, 'e']]);
  await journal.close();
});
