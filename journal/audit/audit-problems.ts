// Problem codes of the audit tools (`shardline shard verify`). A problem is a finding about the
// bytes on disk, not an error the journal throws, so the codes live in their own registry
// beside the journal's (errors.ts); docs/errors.md lists both. Tests assert codes, never
// wording.
//
// Severity: 'error' is damage that loses or misplaces data, or stops the journal from opening;
// 'warning' is something the journal repairs or ignores on its next open (a stale index, a torn
// tail on the active segment) or that costs only time or disk space.

export type ProblemSeverity = 'error' | 'warning';

export interface AuditProblem {
  severity: ProblemSeverity;
  code: AuditProblemCode;
  shard: string;
  /** The file the problem is in: a segment's .log, .index or .timeindex, or shard.json. */
  segment: string;
  /** Byte position in that file. */
  position: number;
  message: string;
}

interface ProblemDefinition {
  code: string;
  meaning: string;
  fix: string;
}

export const AUDIT_PROBLEMS = {
  batchCorrupt: {
    code: 'SL_AUDIT_BATCH_CORRUPT',
    meaning: 'A batch has a bad magic number, a length outside the allowed range, or a checksum mismatch. The bytes after it in the segment are not checked, because the batch boundaries past it are unknown.',
    fix: 'Restore the shard from a replica or backup. On the active segment the journal cuts the log at this batch on its next open (later batches are lost); on a sealed segment reads stop there.',
  },
  batchVersion: {
    code: 'SL_AUDIT_BATCH_VERSION',
    meaning: 'A batch carries a format version this build does not read.',
    fix: 'Run a Shardline version that reads it; this build refuses to open the shard.',
  },
  recordStructure: {
    code: 'SL_AUDIT_RECORD_STRUCTURE',
    meaning: 'A batch passed its checksum but its records do not decode, or its header timestamps disagree with its records. The writer produced a bad batch.',
    fix: 'Report it as a bug with the segment file; restore the shard from a replica. Reads of this batch fail.',
  },
  offsetOrder: {
    code: 'SL_AUDIT_OFFSET_ORDER',
    meaning: 'A batch starts below the offset after the previous batch (or below its segment\'s base offset): offsets overlap or go back.',
    fix: 'Restore the shard from a replica. On the active segment the journal cuts the log at this batch on its next open.',
  },
  epochOrder: {
    code: 'SL_AUDIT_EPOCH_ORDER',
    meaning: 'A batch has a lower leader epoch than an earlier batch of the shard.',
    fix: 'Restore the shard from a replica. On the active segment the journal cuts the log at this batch on its next open.',
  },
  tornTail: {
    code: 'SL_AUDIT_TORN_TAIL',
    meaning: 'The log ends inside a batch. A warning on the active segment: a write was cut by a crash (or is in progress on a live journal) and the journal cuts it off on its next open; in fsync mode those records were never acknowledged. An error on a sealed segment, which was complete when sealed.',
    fix: 'Active segment: nothing to do. Sealed segment: restore the shard from a replica; reads stop at this position.',
  },
  segmentOverlap: {
    code: 'SL_AUDIT_SEGMENT_OVERLAP',
    meaning: 'A segment\'s base offset is below the offset after the previous segment\'s last batch: two segments claim the same offsets.',
    fix: 'Restore the shard from a replica; a segment file may have been copied or renamed by hand.',
  },
  segmentGap: {
    code: 'SL_AUDIT_SEGMENT_GAP',
    meaning: 'A segment of a shard that is not compacted starts above the offset after the previous segment: the offsets between are in no segment, so a segment file is missing. (Compaction may leave such gaps in compacted shards, where they are not reported.)',
    fix: 'Restore the missing segment file from a backup or the shard from a replica; the journal serves the shard with the records missing.',
  },
  indexMissing: {
    code: 'SL_AUDIT_INDEX_MISSING',
    meaning: 'A segment\'s .index or .timeindex file is absent. Normal for the active segment of a live journal, whose indexes are written when it is sealed or closed.',
    fix: 'None needed: the journal rebuilds the index in memory from the log when it opens the shard (a slower open).',
  },
  indexInvalid: {
    code: 'SL_AUDIT_INDEX_INVALID',
    meaning: 'An index file has a bad header, an unknown version, a wrong length or checksum, or the offset and time index disagree.',
    fix: 'None needed: the journal ignores the file and rebuilds the index in memory from the log (a slower open).',
  },
  indexStale: {
    code: 'SL_AUDIT_INDEX_STALE',
    meaning: 'An index file was written for a different log size than the log has now. Normal for the active segment of a live journal.',
    fix: 'None needed: the journal ignores the file and rebuilds the index in memory from the log (a slower open).',
  },
  indexEntry: {
    code: 'SL_AUDIT_INDEX_ENTRY',
    meaning: 'An index the journal trusts (right size, valid checksum) has an entry that does not point at a batch start, names another offset than the batch there, or records a wrong timestamp. An error on a sealed segment, where reads by offset or time may start in the wrong place; a warning on the active segment, whose index is rebuilt on open.',
    fix: 'Stop the journal, delete the segment\'s .index and .timeindex files (they are rebuilt from the log) and report the bug.',
  },
  indexSummary: {
    code: 'SL_AUDIT_INDEX_SUMMARY',
    meaning: 'A trusted index header names a next offset, epoch or largest timestamp that disagrees with the log. An error on a sealed segment, whose header the journal uses instead of scanning; a warning on the active segment.',
    fix: 'Stop the journal, delete the segment\'s .index and .timeindex files (they are rebuilt from the log) and report the bug.',
  },
  shardConfig: {
    code: 'SL_AUDIT_SHARD_CONFIG',
    meaning: 'A shard\'s shard.json is missing, not valid JSON, of an unknown version, or holds invalid settings; the journal refuses to open.',
    fix: 'Restore shard.json from a replica or backup, or correct the named setting.',
  },
  foreignDirectory: {
    code: 'SL_AUDIT_FOREIGN_DIRECTORY',
    meaning: 'The shards/ directory holds a directory whose name is not a valid shard name; the journal refuses to open.',
    fix: 'Move the directory out of the data directory, or rename it to a valid shard name if it is a shard.',
  },
  leftoverFile: {
    code: 'SL_AUDIT_LEFTOVER_FILE',
    meaning: 'A file left by an interrupted operation: a compaction rewrite (.compacting), a shard being created or deleted (shards/.NAME), or an index file whose log is gone.',
    fix: 'None needed for .compacting files and shards/.NAME directories, which the journal removes on its next open; an orphan index file may be deleted.',
  },
} as const satisfies Record<string, ProblemDefinition>;

type AuditProblemDefinition = (typeof AUDIT_PROBLEMS)[keyof typeof AUDIT_PROBLEMS];
export type AuditProblemCode = AuditProblemDefinition['code'];

export interface ProblemLocation {
  shard: string;
  segment: string;
  position: number;
}

export function problem(definition: AuditProblemDefinition, severity: ProblemSeverity, where: ProblemLocation, message: string): AuditProblem {
  return { severity, code: definition.code, shard: where.shard, segment: where.segment, position: where.position, message };
}
