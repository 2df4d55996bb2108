// A journal created on first start must survive a power cut as a whole: the names of the
// directories Journal.open creates are durable only once their parents are synced, and an
// acknowledged append is worth nothing if the directory holding it is gone after the cut.
// Found by sim/broker-suite.ts (seed 24 lost every persistent session).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Journal } from '../journal.js';
import { SimulatedDisk } from './simulated-disk.js';

describe('a new journal directory across a power cut', () => {
  for (const directory of ['/data', '/srv/shardline/data']) {
    it(`${directory}: created by Journal.open, an acknowledged append survives a cut right after it`, async () => {
      for (let seed = 1; seed <= 20; seed += 1) {
        const disk = new SimulatedDisk({ seed });
        const journal = await Journal.open(directory, { fileSystem: disk.mount(), retentionCheckMs: 0 });
        await journal.createShard('s');
        await journal.append('s', [{ value: Buffer.from('acknowledged') }]);
        disk.powerCut();
        const reopened = await Journal.open(directory, { fileSystem: disk.mount(), retentionCheckMs: 0 });
        const records = await reopened.read('s', 0);
        assert.deepEqual(
          records.map((record) => record.value?.toString()),
          ['acknowledged'],
          `seed ${seed}`,
        );
        await reopened.close();
      }
    });
  }
});
