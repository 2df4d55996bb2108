// The applied state in LevelDB and the cross-checks between it and the Raft log, on real files:
// the state and its applied index travel together, a fresh store loads as empty, damaged LevelDB
// metadata and an applied state ahead of (or beside) the log refuse the start with a coded
// error, and the restart point is the newer of the applied state and the log's own snapshot.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ClassicLevel } from 'classic-level';
import { LevelAppliedState } from './level-applied-state.js';
import { openPlacementStorage } from './placement-storage.js';

const directories: string[] = [];
async function freshDirectory(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'shardline-placement-storage-'));
  directories.push(directory);
  return directory;
}
after(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

const bytes = (text: string) => new Uint8Array(Buffer.from(text));

async function expectCode(work: () => Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(work, (error: { code?: string }) => {
    assert.equal(error.code, code);
    return true;
  });
}

/** A voter directory whose log holds entries 1..5 of term 2, committed up to `commit`. */
async function voterDirectory(commit: number): Promise<string> {
  const directory = await freshDirectory();
  const { log, applied } = await openPlacementStorage({ directory });
  const entries = [1, 2, 3, 4, 5].map((index) => ({ index, term: 2, type: 'normal' as const, data: bytes(`${index}`) }));
  await log.save({ entries, hardState: { term: 2, vote: 1, commit } });
  await applied.close();
  await log.close();
  return directory;
}

async function writeApplied(directory: string, appliedIndex: number, appliedTerm: number): Promise<void> {
  const applied = await LevelAppliedState.open({ directory: join(directory, 'applied') });
  await applied.saveApplied(appliedIndex, appliedTerm, { voters: [1] }, bytes(`state@${appliedIndex}`));
  await applied.close();
}

describe('LevelAppliedState', () => {
  it('loads empty when fresh and returns the state with its applied index after a reopen', async () => {
    const directory = await freshDirectory();
    let applied = await LevelAppliedState.open({ directory });
    assert.deepEqual(await applied.load(), { appliedIndex: 0, appliedTerm: 0, confState: { voters: [] }, state: undefined });
    await applied.saveApplied(7, 3, { voters: [3, 1] }, bytes('seven'));
    await applied.saveApplied(9, 3, { voters: [3, 1, 2] }, bytes('nine'));
    await assert.rejects(() => applied.saveApplied(8, 3, { voters: [1] }, bytes('back')), /goes back/);
    await applied.close();
    applied = await LevelAppliedState.open({ directory });
    const loaded = await applied.load();
    assert.deepEqual({ ...loaded, state: Buffer.from(loaded.state!).toString() }, { appliedIndex: 9, appliedTerm: 3, confState: { voters: [1, 2, 3] }, state: 'nine' });
    await applied.close();
  });

  it('refuses damaged metadata (SL_APPLIED_STATE_CORRUPT)', async () => {
    for (const [meta, state] of [['{"version":1,"appliedIndex":-1,"appliedTerm":1,"voters":[]}', 'x'], ['not json', 'x'], ['{"version":9,"appliedIndex":1,"appliedTerm":1,"voters":[]}', 'x'], ['{"version":1,"appliedIndex":1,"appliedTerm":1,"voters":[1]}', null]] as const) {
      const directory = await freshDirectory();
      const db = new ClassicLevel<string, Uint8Array>(directory, { keyEncoding: 'utf8', valueEncoding: 'view' });
      await db.put('applied', Buffer.from(meta));
      if (state !== null) await db.put('state', Buffer.from(state));
      await db.close();
      const applied = await LevelAppliedState.open({ directory });
      await expectCode(() => applied.load(), 'SL_APPLIED_STATE_CORRUPT');
      await applied.close();
    }
  });
});

describe('openPlacementStorage', () => {
  it('opens when the applied state lags the log, and restarts from it', async () => {
    const directory = await voterDirectory(4);
    await writeApplied(directory, 3, 2);
    const { log, applied, restart } = await openPlacementStorage({ directory });
    assert.equal(restart.appliedIndex, 3);
    assert.equal(Buffer.from(restart.state!).toString(), 'state@3');
    await applied.close();
    await log.close();
  });

  it('restarts from the log snapshot when the applied state lost batches a power cut took', async () => {
    const directory = await voterDirectory(5);
    let storage = await openPlacementStorage({ directory });
    await storage.log.createSnapshot({ metadata: { index: 4, term: 2, confState: { voters: [1, 2] } }, data: bytes('log-state@4') });
    await storage.log.compact(4);
    await storage.applied.close();
    await storage.log.close();
    await writeApplied(directory, 2, 2); // older than the log's snapshot
    storage = await openPlacementStorage({ directory });
    assert.deepEqual({ ...storage.restart, state: Buffer.from(storage.restart.state!).toString() }, { appliedIndex: 4, appliedTerm: 2, confState: { voters: [1, 2] }, state: 'log-state@4' });
    await storage.applied.close();
    await storage.log.close();
  });

  it('refuses an applied index past the log\'s commit (SL_RAFT_APPLIED_BEYOND_COMMIT)', async () => {
    const directory = await voterDirectory(3);
    await writeApplied(directory, 4, 2);
    await expectCode(() => openPlacementStorage({ directory }), 'SL_RAFT_APPLIED_BEYOND_COMMIT');
    // Refused, and nothing left locked: a second attempt fails the same way, not on the lock.
    await expectCode(() => openPlacementStorage({ directory }), 'SL_RAFT_APPLIED_BEYOND_COMMIT');
  });

  it('refuses an applied index whose term differs from the log\'s entry there (SL_RAFT_APPLIED_TERM_MISMATCH)', async () => {
    const directory = await voterDirectory(5);
    await writeApplied(directory, 3, 1);
    await expectCode(() => openPlacementStorage({ directory }), 'SL_RAFT_APPLIED_TERM_MISMATCH');
  });
});
