// Goal: the Raft core runs on JournalRaftLog as it does on MemoryStorage, and a restart over
// the reopened log picks up where it stopped. Method: a one-voter group on real files, driven
// through the documented Ready loop (save, then apply, then advance), proposes entries, takes
// a snapshot and compacts, closes, and a new RawNode over the reopened log must have the same
// term, commit and entries, win the next election and keep committing.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { RawNode, bootstrapEntries, bootstrapHardState, decodeConfChange, type Entry } from '../../placement/raft/index.js';
import { JournalRaftLog } from './journal-raft-log.js';

const directories: string[] = [];
after(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

/** Runs Ready loops until none is left; returns the normal entries applied. */
async function drive(node: RawNode, log: JournalRaftLog): Promise<Entry[]> {
  const applied: Entry[] = [];
  while (node.hasReady()) {
    const rd = node.ready();
    await log.save({ entries: rd.entries, ...(rd.hardState === null ? {} : { hardState: rd.hardState }), ...(rd.snapshot === null ? {} : { snapshot: rd.snapshot }) });
    assert.deepEqual(rd.messages, [], 'a single voter sends nothing');
    for (const entry of rd.committedEntries) {
      if (entry.type === 'conf') node.applyConfChange(decodeConfChange(entry.data));
      else if (entry.data.byteLength > 0) applied.push(entry);
    }
    node.advance(rd);
  }
  return applied;
}

const newNode = (log: JournalRaftLog, applied = 0) =>
  new RawNode({ id: 1, storage: log.storage, electionTick: 10, heartbeatTick: 1, random: () => 0.5, maxSizePerMsg: 1 << 20, maxInflightMsgs: 8, preVote: false, checkQuorum: false, applied });

test('a one-voter RawNode commits on JournalRaftLog and restarts from it', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'shardline-raft-node-'));
  directories.push(directory);
  let log = await JournalRaftLog.open({ directory });
  await log.save({ entries: bootstrapEntries([1]), hardState: bootstrapHardState([1]) });
  let node = newNode(log);
  await drive(node, log);
  node.campaign();
  await drive(node, log);
  for (let i = 0; i < 5; i += 1) node.propose(new Uint8Array(Buffer.from(`cmd${i}`)));
  const applied = await drive(node, log);
  assert.deepEqual(applied.map((e) => Buffer.from(e.data).toString()), ['cmd0', 'cmd1', 'cmd2', 'cmd3', 'cmd4']);
  const status = node.status();
  assert.equal(status.role, 'leader');
  await log.createSnapshot({ metadata: { index: status.commit, term: status.term, confState: { voters: [1] } }, data: new Uint8Array(Buffer.from('five commands')) });
  await log.compact(status.commit - 1);
  await log.close();

  log = await JournalRaftLog.open({ directory });
  assert.deepEqual(log.storage.initialState().hardState, { term: status.term, vote: 1, commit: status.commit });
  node = newNode(log, status.commit);
  assert.deepEqual(node.status().voters, [1], 'the voter set comes back from the snapshot');
  node.campaign();
  await drive(node, log);
  node.propose(new Uint8Array(Buffer.from('after restart')));
  const more = await drive(node, log);
  assert.deepEqual(more.map((e) => Buffer.from(e.data).toString()), ['after restart']);
  assert.equal(node.status().term, status.term + 1);
  await log.close();
});
