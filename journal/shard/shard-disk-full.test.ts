// Goal: a shard on a file system that fills up fails the appends that do not fit with
// SL_JOURNAL_DISK_FULL, loses nothing it acknowledged, keeps its offsets dense, refuses
// appends until it is reopened, and is reopened by an append once space is freed.
// Method: a real 4 MiB tmpfs (real ENOSPC from the kernel: short writev, failed rolls), a
// filler file to free later, small segments so the filling also crosses rolls, and rounds of
// concurrent appends so group commits fail as a whole.
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mountSmallFilesystem, type SmallFilesystem } from '../../tests/support/small-filesystem.js';
import { Journal } from '../journal.js';
import { RECOVERY_BACKOFF_MS } from './shard.js';

let filesystem: SmallFilesystem;
before(async () => {
  filesystem = await mountSmallFilesystem(4 * 1024 * 1024);
});
after(async () => {
  await filesystem.unmount();
});

const RECORD_BYTES = 3000;
const valueOf = (index: number): Buffer => Buffer.alloc(RECORD_BYTES, index % 251);

describe('a shard on a full file system', () => {
  it('fails what does not fit with SL_JOURNAL_DISK_FULL, keeps every acknowledged record, and resumes when space returns', async () => {
    const directory = join(filesystem.directory, 'data');
    const filler = join(filesystem.directory, 'filler');
    await writeFile(filler, Buffer.alloc(512 * 1024, 1));
    const options = { retentionCheckMs: 0, shardDefaults: { segmentBytes: 64 * 1024 } };
    let journal = await Journal.open(directory, options);
    await journal.createShard('s');

    const acknowledged = new Map<number, number>();
    let next = 0;
    let failedRounds = 0;
    let diskFullErrors = 0;
    while (failedRounds < 3) {
      const round = Array.from({ length: 4 }, () => next++);
      const results = await Promise.allSettled(round.map((index) => journal.append('s', [{ value: valueOf(index) }])));
      let failures = 0;
      for (const [i, result] of results.entries()) {
        if (result.status === 'fulfilled') acknowledged.set(result.value.baseOffset, round[i] as number);
        else {
          assert.equal((result.reason as { code?: string }).code, 'SL_JOURNAL_DISK_FULL', String(result.reason));
          failures += 1;
          diskFullErrors += 1;
        }
      }
      failedRounds = failures === round.length ? failedRounds + 1 : 0;
      assert.ok(next < 10_000, 'the file system never filled up');
    }
    assert.ok(diskFullErrors > 0);
    assert.ok(acknowledged.size > 100, `only ${acknowledged.size} appends fitted`);

    // Offsets stay dense: the failed appends took none.
    const info = journal.info('s');
    assert.equal(info.nextOffset, acknowledged.size);
    await assertHolds(journal, acknowledged);

    // Space returns: the failed shard refuses appends for RECOVERY_BACKOFF_MS, then the next
    // append reopens it, and appends continue the offsets where they were.
    await rm(filler);
    const resumed = await appendOnceReopened(journal, valueOf(next));
    assert.equal(resumed.baseOffset, acknowledged.size);
    acknowledged.set(resumed.baseOffset, next);
    await assertHolds(journal, acknowledged);

    await journal.close();
    journal = await Journal.open(directory, options);
    await assertHolds(journal, acknowledged);
    const afterReopen = await journal.append('s', [{ value: valueOf(next + 1) }]);
    assert.equal(afterReopen.baseOffset, acknowledged.size);
    await journal.close();
  });
});

async function appendOnceReopened(journal: Journal, value: Buffer): Promise<{ baseOffset: number }> {
  const deadline = Date.now() + RECOVERY_BACKOFF_MS * 5;
  for (;;) {
    try {
      return await journal.append('s', [{ value }]);
    } catch (error) {
      assert.equal((error as { code?: string }).code, 'SL_JOURNAL_DISK_FULL', String(error));
      assert.ok(Date.now() < deadline, 'the shard was not reopened after space returned');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function assertHolds(journal: Journal, acknowledged: Map<number, number>): Promise<void> {
  const seen: number[] = [];
  let offset = 0;
  for (;;) {
    const records = await journal.read('s', offset, { maxRecords: 1000 });
    if (records.length === 0) break;
    for (const record of records) {
      const index = acknowledged.get(record.offset);
      assert.notEqual(index, undefined, `offset ${record.offset} was never acknowledged`);
      assert.deepEqual(record.value, valueOf(index as number), `offset ${record.offset}`);
      seen.push(record.offset);
      offset = record.offset + 1;
    }
  }
  assert.deepEqual(seen, [...acknowledged.keys()].sort((a, b) => a - b));
}
