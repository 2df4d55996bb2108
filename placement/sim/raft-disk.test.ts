// Goal: the simulated Raft disk keeps what was synced and, on a crash, at most an in-order
// prefix of what was not (the last write maybe torn), and a restart reads exactly that.
// Method: write, sync, write more, crash with many seeds, and compare the recovered storage.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Entry } from '../raft/index.js';
import { RaftDisk } from './raft-disk.js';
import { createRandom } from './random.js';

const entry = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: new TextEncoder().encode(`e${index}`) });
const range = (from: number, to: number, term: number): Entry[] => Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, term));

describe('RaftDisk', () => {
  it('keeps every synced write and at most an in-order prefix of the rest across a crash', () => {
    const outcomes = new Set<number>();
    for (let seed = 1; seed <= 200; seed++) {
      const disk = new RaftDisk();
      disk.append(range(1, 3, 1));
      disk.setHardState({ term: 1, vote: 1, commit: 3 });
      disk.sync();
      disk.append(range(4, 8, 2));
      disk.setHardState({ term: 2, vote: 2, commit: 3 });
      disk.crash(createRandom(seed));
      const storage = disk.recover();
      const last = storage.lastIndex();
      outcomes.add(last);
      assert.ok(last >= 3 && last <= 8, `seed ${seed}: last index ${last}`);
      const hardState = storage.initialState().hardState;
      // The hard state was written after the entries: if it survived, so did all of them.
      if (hardState.term === 2) assert.equal(last, 8);
      else assert.deepEqual(hardState, { term: 1, vote: 1, commit: 3 });
    }
    // Lost, kept, and torn in between all happen.
    assert.ok(outcomes.has(3) && outcomes.has(8) && [...outcomes].some((last) => last > 3 && last < 8), [...outcomes].join(','));
  });

  it('recovers a snapshot with compaction and the entries after it', () => {
    const disk = new RaftDisk();
    disk.append(range(1, 10, 1));
    disk.setHardState({ term: 1, vote: 0, commit: 10 });
    disk.snapshotAndCompact(8, [1, 2, 3], new Uint8Array([7]), 6);
    disk.sync();
    disk.crash(createRandom(1));
    const storage = disk.recover();
    assert.equal(storage.snapshot().metadata.index, 8);
    assert.equal(storage.lastIndex(), 10);
    assert.equal(storage.term(9), 1);
    assert.deepEqual(disk.durableSnapshot()?.data, new Uint8Array([7]));
  });

  it('a truncating append replaces the durable suffix', () => {
    const disk = new RaftDisk();
    disk.append(range(1, 5, 1));
    disk.append(range(3, 4, 2));
    disk.sync();
    const storage = disk.recover();
    assert.equal(storage.lastIndex(), 4);
    assert.equal(storage.term(3), 2);
    assert.equal(storage.term(2), 1);
  });
});
