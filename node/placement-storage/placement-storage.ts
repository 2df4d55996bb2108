// Opening a placement voter's storage as a whole: the Raft log (data-dir/raft, a journal) and
// the applied state (data-dir/applied, LevelDB), checked against each other before anything is
// served, and the state the driver restarts its state machine from.
//
// The cross-checks: the applied state may lag the log (its batches are not fsynced, see
// level-applied-state.ts) but never lead it: an applied index past what the log knows to be
// committed (the larger of the hard state's commit and the snapshot's index) means the two
// stores come from different histories or the log lost entries (SL_RAFT_APPLIED_BEYOND_COMMIT);
// an applied index the log still holds must carry the term of the log's entry there
// (SL_RAFT_APPLIED_TERM_MISMATCH).
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Storage } from '../../placement/raft/index.js';
import { PlacementStorageErrors } from './errors.js';
import { JournalRaftLog } from './journal-raft-log.js';
import { LevelAppliedState, type StoredAppliedState } from './level-applied-state.js';

export interface PlacementStorage {
  log: JournalRaftLog;
  applied: LevelAppliedState;
  /**
   * Where the state machine restarts from: the newer of the applied store and the log's
   * snapshot. The driver restores `state` (undefined: a fresh state machine), then applies the
   * committed entries after `appliedIndex`.
   */
  restart: StoredAppliedState;
}

export interface PlacementStorageOptions {
  directory: string;
  lockWaitMs?: number;
  logger?: Logger;
}

export async function openPlacementStorage(options: PlacementStorageOptions): Promise<PlacementStorage> {
  const log = await JournalRaftLog.open({
    directory: join(options.directory, 'raft'),
    ...(options.lockWaitMs === undefined ? {} : { lockWaitMs: options.lockWaitMs }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  let applied: LevelAppliedState | undefined;
  try {
    applied = await LevelAppliedState.open({ directory: join(options.directory, 'applied') });
    const loaded = await applied.load();
    checkAppliedAgainstLog(loaded, log.storage);
    return { log, applied, restart: restartPoint(loaded, log.storage) };
  } catch (error) {
    await applied?.close();
    await log.close();
    throw error;
  }
}

export function checkAppliedAgainstLog(applied: Pick<StoredAppliedState, 'appliedIndex' | 'appliedTerm'>, storage: Storage): void {
  const { hardState } = storage.initialState();
  const snapshotIndex = storage.snapshot().metadata.index;
  const committed = Math.max(hardState.commit, snapshotIndex);
  if (applied.appliedIndex > committed) throw PlacementStorageErrors.appliedBeyondCommit.create({ offset: applied.appliedIndex }, applied.appliedIndex, committed);
  if (applied.appliedIndex > 0 && applied.appliedIndex >= storage.firstIndex() - 1 && applied.appliedIndex <= storage.lastIndex()) {
    const logTerm = storage.term(applied.appliedIndex);
    if (logTerm !== applied.appliedTerm) throw PlacementStorageErrors.appliedTermMismatch.create({ offset: applied.appliedIndex }, applied.appliedIndex, applied.appliedTerm, logTerm);
  }
}

function restartPoint(loaded: StoredAppliedState, storage: Storage): StoredAppliedState {
  const snapshot = storage.snapshot();
  if (snapshot.metadata.index > loaded.appliedIndex) {
    return { appliedIndex: snapshot.metadata.index, appliedTerm: snapshot.metadata.term, confState: snapshot.metadata.confState, state: snapshot.data };
  }
  return loaded;
}
