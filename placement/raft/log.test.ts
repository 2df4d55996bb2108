// Goal: the log's term lookup, conflict search and truncation over storage plus unstable entries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CompactedError } from './errors.js';
import { RaftLog } from './log.js';
import { MemoryStorage } from './storage.js';
import type { Entry } from './types.js';

function entries(...terms: number[]): Entry[] {
  return terms.map((term, i) => ({ term, index: i + 1, type: 'normal', data: new Uint8Array(0) }));
}

function at(index: number, term: number): Entry {
  return { term, index, type: 'normal', data: new Uint8Array(0) };
}

test('term lookup spans storage and unstable entries, 0 past the end', () => {
  const storage = new MemoryStorage();
  storage.append(entries(1, 1, 2));
  const log = new RaftLog(storage);
  log.append([at(4, 3), at(5, 3)]);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((i) => log.term(i)), [0, 1, 1, 2, 3, 3, 0]);
  assert.equal(log.lastIndex(), 5);
  assert.equal(log.stableLastIndex(), 3);
});

test('maybeAppend truncates a conflicting uncommitted suffix and commits only what the leader vouched for', () => {
  const storage = new MemoryStorage();
  storage.append(entries(1, 1, 2, 2, 2));
  const log = new RaftLog(storage);
  log.commitTo(2);
  // The leader has term 3 from index 4: our entries 4 and 5 (term 2) must go.
  const last = log.maybeAppend(3, 2, 9, [at(4, 3)]);
  assert.equal(last, 4);
  assert.equal(log.lastIndex(), 4);
  assert.equal(log.term(4), 3);
  assert.equal(log.committed, 4, 'commit is capped at the last index this append proved');
  assert.equal(log.maybeAppend(4, 2, 9, []), undefined, 'a mismatched previous term is refused');
});

test('a conflict at or below the commit index is a broken invariant', () => {
  const storage = new MemoryStorage();
  storage.append(entries(1, 1, 2));
  const log = new RaftLog(storage);
  log.commitTo(3);
  assert.throws(() => log.maybeAppend(2, 1, 3, [at(3, 5)]), /conflicts with committed/);
});

test('findConflict and findConflictByTerm', () => {
  const storage = new MemoryStorage();
  storage.append(entries(1, 1, 2, 2, 2, 4));
  const log = new RaftLog(storage);
  assert.equal(log.findConflict([at(2, 1), at(3, 2)]), 0);
  assert.equal(log.findConflict([at(5, 2), at(6, 3)]), 6);
  assert.equal(log.findConflict([at(7, 4)]), 7);
  assert.deepEqual(log.findConflictByTerm(6, 3), { index: 5, term: 2 });
  assert.deepEqual(log.findConflictByTerm(6, 1), { index: 2, term: 1 });
  assert.deepEqual(log.findConflictByTerm(6, 0), { index: 0, term: 0 });
});

test('compacted indexes throw CompactedError; the snapshot index keeps its term', () => {
  const storage = new MemoryStorage();
  storage.append(entries(1, 1, 2, 2, 3));
  storage.createSnapshot(3, { voters: [1] }, new Uint8Array(0));
  storage.compact(3);
  const log = new RaftLog(storage);
  assert.equal(log.firstIndex(), 4);
  assert.equal(log.term(3), 2);
  assert.throws(() => log.term(2), CompactedError);
  assert.throws(() => log.slice(2, 4, 100), CompactedError);
  assert.deepEqual(log.slice(4, 6, 1000).map((e) => e.index), [4, 5]);
});

test('MemoryStorage.append replaces a stored suffix and limits entries by bytes', () => {
  const storage = new MemoryStorage();
  storage.append(entries(1, 1, 1, 1));
  storage.append([at(3, 2)]);
  assert.equal(storage.lastIndex(), 3);
  assert.equal(storage.term(3), 2);
  assert.deepEqual(storage.entries(1, 4, 0).length, 1, 'at least one entry even over the limit');
  assert.deepEqual(storage.entries(1, 4, 32).length, 2);
});
