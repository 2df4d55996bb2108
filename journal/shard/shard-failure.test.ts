// Goal: after a failed write or fdatasync the shard refuses appends until it is reopened,
// loses nothing acknowledged, and keeps offsets dense, also across a power cut; the reopen is
// done by the first append RECOVERY_BACKOFF_MS (journal clock) after the failure.
// Method: the journal over a SimulatedDisk (journal/sim), one injected fault at a time, a
// manual clock; a failed fdatasync dooms its pages as Linux does, so anything built on top of
// them would be lost by the power cut at the end.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Journal } from '../journal.js';
import { SimulatedDisk, type DiskOperation, type FaultCode } from '../sim/simulated-disk.js';
import { RECOVERY_BACKOFF_MS } from './shard.js';

const value = (i: number): Buffer => Buffer.from(`record-${i}`);

async function openJournal(disk: SimulatedDisk, clock: () => number): Promise<Journal> {
  return Journal.open('/data', { fileSystem: disk.mount(), clock, retentionCheckMs: 0 });
}

async function readAll(journal: Journal): Promise<string[]> {
  const records = await journal.read('s', journal.info('s').startOffset, { maxRecords: 10_000 });
  return records.map((record) => `${record.offset}:${record.value?.toString() ?? ''}`);
}

const cases: { operation: DiskOperation; code: FaultCode; expected: string }[] = [
  { operation: 'datasync', code: 'EIO', expected: 'SL_JOURNAL_IO' },
  { operation: 'datasync', code: 'ENOSPC', expected: 'SL_JOURNAL_DISK_FULL' },
  { operation: 'writev', code: 'EIO', expected: 'SL_JOURNAL_IO' },
  { operation: 'writev', code: 'ENOSPC', expected: 'SL_JOURNAL_DISK_FULL' },
];

describe('a shard after a failed write or fdatasync', () => {
  for (const { operation, code, expected } of cases) {
    it(`${operation} ${code}: ${expected}, refused until reopened, nothing acknowledged lost`, async () => {
      const disk = new SimulatedDisk({ seed: 7 });
      let now = 1_000_000;
      const clock = () => now;
      const journal = await openJournal(disk, clock);
      await journal.createShard('s', { durability: 'fsync' });
      const acknowledged: string[] = [];
      for (let i = 0; i < 5; i += 1) {
        const { baseOffset } = await journal.append('s', [{ value: value(i) }]);
        acknowledged.push(`${baseOffset}:record-${i}`);
      }

      disk.injectFault({ operation, pathIncludes: '/shards/s/', code });
      await assert.rejects(journal.append('s', [{ value: value(100) }]), (error: { code?: string }) => error.code === expected);
      // Refused, with the same code, while the shard is failed; nothing reached the disk.
      now += RECOVERY_BACKOFF_MS - 1;
      const before = disk.operationCount;
      await assert.rejects(journal.append('s', [{ value: value(101) }]), (error: { code?: string }) => error.code === expected);
      assert.equal(disk.operationCount, before, 'a refused append must not touch the disk');
      assert.deepEqual(await readAll(journal), acknowledged);

      // The first append after the backoff reopens the shard and takes the next dense offset.
      now += 1;
      const resumed = await journal.append('s', [{ value: value(5) }]);
      assert.equal(resumed.baseOffset, 5);
      acknowledged.push('5:record-5');
      assert.deepEqual(await readAll(journal), acknowledged);

      // A power cut: the doomed pages of a failed fdatasync are gone, everything acknowledged
      // (written after the cut back) is not.
      disk.powerCut();
      const reopened = await openJournal(disk, clock);
      assert.deepEqual(await readAll(reopened), acknowledged, disk.describe());
      const next = await reopened.append('s', [{ value: value(6) }]);
      assert.equal(next.baseOffset, 6);
      await reopened.close();
    });
  }
});
