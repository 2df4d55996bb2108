// JournalRaftLog on real files: saves survive a reopen, a conflicting suffix is overwritten, a
// received snapshot replaces the log, compaction frees disk and keeps the snapshot, a Ready that
// does not fit is refused before it reaches the disk, and damaged storage refuses to open with
// a coded error: a flipped byte in a sealed segment, a deleted first segment, and shards whose
// records do not form a Raft log (written through the journal directly: a gap in indices, terms
// going down, a commit past the last entry, a snapshot with the wrong term, an unknown format,
// a record that does not decode).
import assert from 'node:assert/strict';
import { cp, mkdtemp, open as openFile, readFile, readdir, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Journal } from '../../journal/index.js';
import type { Entry } from '../../placement/raft/index.js';
import { JournalRaftLog, RAFT_LOG_SHARD } from './journal-raft-log.js';
import { encodeRecord, type RaftLogRecord } from './raft-log-record.js';

const directories: string[] = [];
async function freshDirectory(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'shardline-raft-log-'));
  directories.push(directory);
  return directory;
}
after(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

const bytes = (text: string) => new Uint8Array(Buffer.from(text));
const entry = (index: number, term: number, text = `e${index}t${term}`): Entry => ({ index, term, type: 'normal', data: bytes(text) });
const range = (from: number, to: number, term: number): Entry[] => Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, term));
const terms = (log: JournalRaftLog): number[] => {
  const { storage } = log;
  if (storage.lastIndex() < storage.firstIndex()) return [];
  return storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Infinity).map((e) => e.term);
};

async function expectCode(work: () => Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(work, (error: { code?: string }) => {
    assert.equal(error.code, code);
    return true;
  });
}

/** A shard holding exactly these records, written through the journal (as a bug would). */
async function craftedLog(records: (RaftLogRecord | Buffer)[]): Promise<string> {
  const directory = await freshDirectory();
  const journal = await Journal.open(directory, { retentionCheckMs: 0 });
  await journal.createShard(RAFT_LOG_SHARD, { durability: 'fsync' });
  await journal.append(RAFT_LOG_SHARD, records.map((record) => ({ value: Buffer.isBuffer(record) ? record : encodeRecord(record) })));
  await journal.close();
  return directory;
}

async function segmentFiles(directory: string): Promise<string[]> {
  const shardDirectory = join(directory, 'shards', RAFT_LOG_SHARD);
  return (await readdir(shardDirectory)).filter((name) => name.endsWith('.log')).sort().map((name) => join(shardDirectory, name));
}

describe('JournalRaftLog', () => {
  it('keeps every save across a reopen: entries, hard state, an overwritten suffix, a received snapshot', async () => {
    const directory = await freshDirectory();
    let log = await JournalRaftLog.open({ directory });
    await log.save({ entries: range(1, 5, 1), hardState: { term: 1, vote: 2, commit: 3 } });
    // A new leader in term 2 replaces the uncommitted 4..5 with its own 4..6.
    await log.save({ entries: range(4, 6, 2), hardState: { term: 2, vote: 0, commit: 3 } });
    assert.deepEqual(terms(log), [1, 1, 1, 2, 2, 2]);
    await log.close();
    log = await JournalRaftLog.open({ directory });
    assert.deepEqual(terms(log), [1, 1, 1, 2, 2, 2]);
    assert.deepEqual(log.storage.initialState().hardState, { term: 2, vote: 0, commit: 3 });
    assert.deepEqual(Buffer.from(log.storage.entries(5, 6, Infinity)[0]!.data).toString(), 'e5t2');
    // A snapshot from the leader at 10 replaces the whole log; entries follow it in the same Ready.
    const snapshot = { metadata: { index: 10, term: 3, confState: { voters: [3, 1, 2] } }, data: bytes('state@10') };
    await log.save({ snapshot, entries: range(11, 12, 3), hardState: { term: 3, vote: 0, commit: 10 } });
    await log.close();
    log = await JournalRaftLog.open({ directory });
    assert.equal(log.storage.firstIndex(), 11);
    assert.equal(log.storage.term(10), 3);
    assert.deepEqual(terms(log), [3, 3]);
    assert.deepEqual(log.storage.snapshot().metadata.confState.voters, [1, 2, 3]);
    assert.equal(Buffer.from(log.storage.snapshot().data).toString(), 'state@10');
    await log.close();
  });

  it('refuses a Ready that does not fit the log before anything reaches the disk', async () => {
    const directory = await freshDirectory();
    const log = await JournalRaftLog.open({ directory });
    await log.save({ entries: range(1, 3, 2), hardState: { term: 2, vote: 1, commit: 1 } });
    const before = log.shardInfo().nextOffset;
    await assert.rejects(() => log.save({ entries: [entry(5, 2)] }), /gap/);
    await assert.rejects(() => log.save({ entries: [entry(4, 1)] }), /term 1, below 2/);
    await assert.rejects(() => log.save({ entries: [], hardState: { term: 2, vote: 1, commit: 9 } }), /commit 9 past the last index 3/);
    await assert.rejects(() => log.compact(2), /needs a snapshot/);
    assert.equal(log.shardInfo().nextOffset, before, 'nothing was written');
    await log.save({ entries: [entry(4, 2)] });
    assert.equal(log.storage.lastIndex(), 4, 'the log still takes saves');
    await log.close();
  });

  it('compaction deletes old segments, keeps disk bounded and keeps the snapshot and the prefix term', async () => {
    const directory = await freshDirectory();
    let log = await JournalRaftLog.open({ directory, segmentBytes: 1024 });
    let largest = 0;
    for (let round = 0; round < 20; round += 1) {
      const from = log.storage.lastIndex() + 1;
      for (let i = 0; i < 10; i += 1) {
        const index = from + i;
        await log.save({ entries: [{ index, term: 1 + round, type: 'normal', data: new Uint8Array(200).fill(index % 256) }], hardState: { term: 1 + round, vote: 0, commit: index } });
      }
      const last = log.storage.lastIndex();
      await log.createSnapshot({ metadata: { index: last - 2, term: log.storage.term(last - 2), confState: { voters: [1] } }, data: bytes(`state@${last - 2}`) });
      await log.compact(last - 4);
      largest = Math.max(largest, log.shardInfo().sizeBytes);
      assert.equal(log.storage.firstIndex(), last - 3);
    }
    // Without compaction the shard would hold 200 entries of 200 bytes (over 40 KB).
    assert.ok(largest < 6_000, `the shard stays small (${largest} bytes at most)`);
    await log.close();
    log = await JournalRaftLog.open({ directory, segmentBytes: 1024 });
    assert.equal(log.storage.firstIndex(), 197);
    assert.equal(log.storage.term(196), 20);
    assert.equal(log.storage.snapshot().metadata.index, 198);
    assert.equal(Buffer.from(log.storage.snapshot().data).toString(), 'state@198');
    assert.deepEqual(log.storage.initialState().confState.voters, [1]);
    await log.compact(150); // already compacted: nothing to do
    assert.equal(log.storage.firstIndex(), 197);
    await log.close();
  });

  it('finishes a compaction that a crash stopped while it deleted the segments before its checkpoint', async () => {
    // The deletion goes oldest first; a kill in the middle leaves a later old segment, and a
    // power cut may keep an older one and lose the unlink of a later one (a hole). Both are
    // made here by putting old segment files back after a real compaction.
    for (const keep of [[1, 2], [0]]) {
      const directory = await freshDirectory();
      let log = await JournalRaftLog.open({ directory, segmentBytes: 1024 });
      for (let index = 1; index <= 30; index += 1) await log.save({ entries: [{ index, term: 1, type: 'normal', data: new Uint8Array(100).fill(index) }], hardState: { term: 1, vote: 1, commit: index } });
      const before = await segmentFiles(directory);
      assert.ok(before.length >= 4);
      const saved = await Promise.all(before.map((path) => readFile(path)));
      await log.createSnapshot({ metadata: { index: 25, term: 1, confState: { voters: [1] } }, data: bytes('state@25') });
      await log.compact(20);
      const expected = terms(log);
      await log.close();
      assert.equal((await segmentFiles(directory)).length, 1);
      for (const i of keep) await writeFile(before[i]!, saved[i]!);
      log = await JournalRaftLog.open({ directory, segmentBytes: 1024 });
      assert.equal(log.storage.firstIndex(), 21, `kept old segments ${keep.join(',')}`);
      assert.deepEqual(terms(log), expected);
      assert.equal(log.storage.snapshot().metadata.index, 25);
      assert.equal(log.shardInfo().segmentCount, 1, 'the open deleted the leftovers');
      await log.close();
    }
  });

  it('refuses to open when a sealed segment fails its checksum (SL_RAFT_LOG_CORRUPT)', async () => {
    const directory = await freshDirectory();
    const log = await JournalRaftLog.open({ directory, segmentBytes: 1024 });
    for (let index = 1; index <= 30; index += 1) await log.save({ entries: [{ index, term: 1, type: 'normal', data: new Uint8Array(100).fill(7) }], hardState: { term: 1, vote: 1, commit: index } });
    await log.close();
    const [first] = await segmentFiles(directory);
    const file = await openFile(first!, 'r+');
    await file.write(Buffer.from([0xff ^ 7]), 0, 1, 300); // inside a record of a sealed segment
    await file.close();
    await expectCode(() => JournalRaftLog.open({ directory }), 'SL_RAFT_LOG_CORRUPT');
  });

  it('refuses damage in the active segment that valid saves follow, and cuts only a torn last save', async () => {
    const directory = await freshDirectory();
    const log = await JournalRaftLog.open({ directory });
    for (let index = 1; index <= 10; index += 1) await log.save({ entries: [{ index, term: 1, type: 'normal', data: new Uint8Array(100).fill(7) }], hardState: { term: 1, vote: 1, commit: index } });
    await log.close();
    const [active] = await segmentFiles(directory);
    const { size } = await stat(active!);
    const copy = await freshDirectory();
    await cp(directory, copy, { recursive: true });
    // A torn last write (the file ends inside the last batch): the journal cuts it, the nine
    // saves before it are served.
    await truncate(active!, size - 50);
    const torn = await JournalRaftLog.open({ directory });
    assert.equal(torn.storage.lastIndex(), 9);
    assert.equal(torn.storage.initialState().hardState.commit, 9);
    await torn.close();
    // A flipped byte in the second save, eight valid saves after it: damage, not a torn write.
    const [copied] = await segmentFiles(copy);
    const file = await openFile(copied!, 'r+');
    await file.write(Buffer.from([0xff ^ 7]), 0, 1, Math.floor(size / 10) + 150);
    await file.close();
    await expectCode(() => JournalRaftLog.open({ directory: copy }), 'SL_RAFT_LOG_CORRUPT');
  });

  it('refuses to open when its first segment is gone and no checkpoint starts the shard (SL_RAFT_LOG_GAP)', async () => {
    const directory = await freshDirectory();
    const log = await JournalRaftLog.open({ directory, segmentBytes: 1024 });
    for (let index = 1; index <= 30; index += 1) await log.save({ entries: [{ index, term: 1, type: 'normal', data: new Uint8Array(100) }], hardState: { term: 1, vote: 1, commit: index } });
    await log.close();
    const [first] = await segmentFiles(directory);
    await unlink(first!);
    await expectCode(() => JournalRaftLog.open({ directory }), 'SL_RAFT_LOG_GAP');
  });

  it('refuses shards whose records do not form a Raft log', async () => {
    const hs = (commit: number) => ({ kind: 'hardState', hardState: { term: 1, vote: 0, commit } }) as const;
    const e = (index: number, term: number) => ({ kind: 'entry', entry: entry(index, term) }) as const;
    await expectCode(async () => JournalRaftLog.open({ directory: await craftedLog([e(1, 1), e(3, 1)]) }), 'SL_RAFT_LOG_GAP');
    await expectCode(async () => JournalRaftLog.open({ directory: await craftedLog([e(1, 2), e(2, 1)]) }), 'SL_RAFT_LOG_GAP');
    await expectCode(async () => JournalRaftLog.open({ directory: await craftedLog([e(1, 1), e(2, 1), hs(5)]) }), 'SL_RAFT_LOG_COMMIT_BEYOND_END');
    const wrongTerm = { kind: 'snapshotLocal', snapshot: { metadata: { index: 1, term: 2, confState: { voters: [1] } }, data: bytes('s') } } as const;
    await expectCode(async () => JournalRaftLog.open({ directory: await craftedLog([e(1, 1), wrongTerm]) }), 'SL_RAFT_LOG_SNAPSHOT_MISMATCH');
    const newer = encodeRecord(e(1, 1));
    newer.writeUInt8(2, 0);
    await expectCode(async () => JournalRaftLog.open({ directory: await craftedLog([newer]) }), 'SL_RAFT_LOG_UNSUPPORTED_FORMAT');
    await expectCode(async () => JournalRaftLog.open({ directory: await craftedLog([encodeRecord(e(1, 1)).subarray(0, 12)]) }), 'SL_RAFT_LOG_CORRUPT');
    const compactedWithoutSnapshot = { kind: 'checkpoint', index: 5, term: 1 } as const;
    await expectCode(async () => JournalRaftLog.open({ directory: await craftedLog([compactedWithoutSnapshot, e(6, 1)]) }), 'SL_RAFT_LOG_GAP');
  });
});
