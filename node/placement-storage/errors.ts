// Error codes of the placement voter's durable storage (the Raft log on a journal shard and the
// applied state in LevelDB). Every one of them means "refuse to start": a voter that serves from
// a damaged log can grant a vote it already gave to another candidate or lose a committed
// entry, so the fix is always to restore this voter's data directory (or wipe it and let the
// voter rejoin as a new member), never to carry on.
import { defineError } from '../../base/index.js';

const restore = 'Stop this voter; remove it from the group and re-add it with an empty data directory (it catches up from the leader), or restore its data directory from a backup.';

export const PlacementStorageErrors = {
  logCorrupt: defineError({
    code: 'SL_RAFT_LOG_CORRUPT',
    meaning: 'A batch of the placement Raft log shard failed its checksum (in a sealed segment, or in the active segment with valid batches after it, which a torn write cannot leave), or a record in it does not decode as a Raft log record.',
    fix: restore,
    message: (directory: string, where: string, why: string) => `placement Raft log in ${directory} is damaged at ${where}: ${why}`,
  }),
  logUnsupportedFormat: defineError({
    code: 'SL_RAFT_LOG_UNSUPPORTED_FORMAT',
    meaning: 'A record of the placement Raft log carries a format version or record kind this build does not read (written by a newer Shardline).',
    fix: 'Run a Shardline version that reads this format version.',
    message: (directory: string, offset: number, version: number, kind: number) =>
      `placement Raft log in ${directory} has a record at journal offset ${offset} of format version ${version}, kind ${kind}; this build reads version 1, kinds 1-5`,
  }),
  logGap: defineError({
    code: 'SL_RAFT_LOG_GAP',
    meaning: 'The placement Raft log does not hold a dense run of entries: an entry skips indices, lies below the compacted prefix, has a lower term than the entry before it, or the first record after a deleted prefix is not a checkpoint.',
    fix: restore,
    message: (directory: string, offset: number, why: string) => `placement Raft log in ${directory} is not a dense log at journal offset ${offset}: ${why}`,
  }),
  logSnapshotMismatch: defineError({
    code: 'SL_RAFT_LOG_SNAPSHOT_MISMATCH',
    meaning: 'A snapshot record of the placement Raft log does not fit the log: it is older than the snapshot before it, lies outside the stored entries, or names another term than the entry at its index.',
    fix: restore,
    message: (directory: string, offset: number, why: string) => `placement Raft log in ${directory} has a snapshot record at journal offset ${offset} that does not fit the log: ${why}`,
  }),
  commitBeyondLog: defineError({
    code: 'SL_RAFT_LOG_COMMIT_BEYOND_END',
    meaning: 'The stored Raft hard state commits an index past the last stored entry: entries the group committed are missing from this voter\'s log.',
    fix: restore,
    message: (directory: string, commit: number, lastIndex: number) =>
      `placement Raft log in ${directory}: hard state commit ${commit} is past the last stored entry ${lastIndex}`,
  }),
  appliedBeyondCommit: defineError({
    code: 'SL_RAFT_APPLIED_BEYOND_COMMIT',
    meaning: 'The applied state (LevelDB) says it applied an index past what the Raft log knows to be committed: the two stores are from different histories, or the log lost entries.',
    fix: restore,
    message: (appliedIndex: number, committed: number) =>
      `applied state is at index ${appliedIndex}, but the Raft log has committed only up to ${committed}`,
  }),
  appliedTermMismatch: defineError({
    code: 'SL_RAFT_APPLIED_TERM_MISMATCH',
    meaning: 'The applied state (LevelDB) was applied up to an index whose entry has another term in the Raft log: the two stores are from different histories.',
    fix: restore,
    message: (appliedIndex: number, appliedTerm: number, logTerm: number) =>
      `applied state is at index ${appliedIndex} of term ${appliedTerm}, but the Raft log holds term ${logTerm} at that index`,
  }),
  appliedStateCorrupt: defineError({
    code: 'SL_APPLIED_STATE_CORRUPT',
    meaning: 'The placement applied state in LevelDB is unreadable: its metadata record is missing a field, of an unknown version, or present without the state it describes.',
    fix: restore,
    message: (directory: string, why: string) => `placement applied state in ${directory} is damaged: ${why}`,
  }),
  identityMismatch: defineError({
    code: 'SL_RAFT_IDENTITY_MISMATCH',
    meaning: 'The placement data directory was created by another voter or for another cluster (its identity.json names another node id or cluster id), or that file is unreadable. A voter that took over another\'s log would vote and acknowledge appends in its name.',
    fix: 'Start each voter on its own data directory with the node id and cluster id it was created with; a new voter starts from an empty directory.',
    message: (directory: string, why: string) => `placement data directory ${directory}: ${why}`,
  }),
};
