// verifyJournal: checks every shard (or one) of a data directory, segment by segment, without
// the journal lock and without changing a byte, so it runs on a live journal and on a damaged
// one. Damage is reported as problems (audit-problems.ts); only a directory that is not a
// journal, an unknown journal format, an unknown --shard or an I/O failure throws.
import { isShardlineError } from '../../base/index.js';
import type { ShardConfig } from '../shard/shard-config.js';
import { Shard } from '../shard/shard.js';
import { AUDIT_PROBLEMS, problem, type AuditProblem } from './audit-problems.js';
import { byteProgress, type ByteProgress } from './byte-progress.js';
import { listShardFiles, listShardNames, liveLockHolder, openJournalDirectory, requireShard, type SegmentFile, type ShardFiles } from './data-directory.js';
import { verifySegment } from './verify-segment.js';

export interface VerifyOptions {
  /** Verify this shard only. */
  shard?: string;
  onProgress?: (bytesDone: number, totalBytes: number) => void;
}

export interface VerifyReport {
  shards: number;
  segments: number;
  batches: number;
  records: number;
  /** Log bytes verified (bytes after damage are not counted). */
  bytesChecked: number;
  /** In shard and file order. */
  problems: AuditProblem[];
  /** Pid of a live process holding the data directory's lock (a running node), else null. */
  lockHolder: number | null;
  /**
   * Each verified shard's active (last) segment log, e.g. { shard: 'orders', log:
   * '00000000000000000120.log' }: a live journal writes that segment's indexes only when it
   * seals or closes it, so index warnings there are expected beside a running node.
   */
  activeLogs: { shard: string; log: string }[];
}

export async function verifyJournal(dataDir: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const journalDirectory = await openJournalDirectory(dataDir);
  const report: VerifyReport = { shards: 0, segments: 0, batches: 0, records: 0, bytesChecked: 0, problems: [], lockHolder: await liveLockHolder(journalDirectory), activeLogs: [] };
  const shards = await shardsToVerify(journalDirectory, options.shard, report.problems);
  let totalBytes = 0;
  for (const shard of shards) for (const segment of shard.segments) totalBytes += segment.sizeBytes;
  const progress = byteProgress(totalBytes, options.onProgress);
  for (const shard of shards) await verifyShard(shard, report, progress);
  return report;
}

export function hasErrors(report: VerifyReport): boolean {
  return report.problems.some((found) => found.severity === 'error');
}

async function shardsToVerify(journalDirectory: string, only: string | undefined, problems: AuditProblem[]): Promise<ShardFiles[]> {
  if (only !== undefined) {
    await requireShard(journalDirectory, only);
    return [await listShardFiles(journalDirectory, only)];
  }
  const found = await listShardNames(journalDirectory);
  for (const name of found.leftovers) {
    problems.push(problem(AUDIT_PROBLEMS.leftoverFile, 'warning', { shard: name, segment: '', position: 0 }, `shards/${name} is left from an interrupted shard create or delete; the journal removes it on open`));
  }
  for (const name of found.foreign) {
    problems.push(problem(AUDIT_PROBLEMS.foreignDirectory, 'error', { shard: name, segment: '', position: 0 }, `shards/${name} is not a valid shard name; the journal refuses to open`));
  }
  const shards: ShardFiles[] = [];
  for (const name of found.names) shards.push(await listShardFiles(journalDirectory, name));
  return shards;
}

/** Where the previous segment left the order checks. */
interface Continuity {
  nextOffset: number;
  epoch: number;
  /** The previous segment's whole log was checked, so its next offset is the true one. */
  known: boolean;
}

async function verifyShard(shard: ShardFiles, report: VerifyReport, progress: ByteProgress): Promise<void> {
  report.shards += 1;
  const config = await checkShardConfig(shard, report.problems);
  for (const leftover of shard.leftovers) {
    report.problems.push(problem(AUDIT_PROBLEMS.leftoverFile, 'warning', { shard: shard.name, segment: leftover, position: 0 }, `${leftover} is left from an interrupted compaction or segment deletion`));
  }
  // Only compaction leaves offsets in no segment; in other shards a gap is a lost segment file.
  const gapsAllowed = config === null || config.compacted;
  let previous: Continuity = { nextOffset: 0, epoch: 0, known: false };
  const last = shard.segments.at(-1);
  if (last !== undefined) report.activeLogs.push({ shard: shard.name, log: last.name });
  for (const [index, file] of shard.segments.entries()) {
    const { expectedNextOffset, found } = checkContinuity(shard.name, file, previous, gapsAllowed);
    if (found !== null) report.problems.push(found);
    const active = index === shard.segments.length - 1;
    const result = await verifySegment({ shard: shard.name, file, active, expectedNextOffset, epoch: previous.epoch, onBytes: (bytes) => progress.within(bytes) });
    progress.complete(file.sizeBytes);
    if (result === null) {
      previous = { ...previous, known: false };
      continue;
    }
    report.segments += 1;
    report.batches += result.batches;
    report.records += result.records;
    report.bytesChecked += result.bytesChecked;
    report.problems.push(...result.problems);
    previous = { nextOffset: Math.max(result.nextOffset, file.baseOffset), epoch: result.epoch, known: result.wholeLogScanned };
  }
}

/** Segments must not overlap, and outside compacted shards must follow without a gap. */
function checkContinuity(shard: string, file: SegmentFile, previous: Continuity, gapsAllowed: boolean): { expectedNextOffset: number; found: AuditProblem | null } {
  const where = { shard, segment: file.name, position: 0 };
  if (file.baseOffset < previous.nextOffset) {
    // Reported once here; the segment's own batches are then checked against its base only.
    const message = `base offset ${file.baseOffset} is below ${previous.nextOffset}, the offset after the previous segment`;
    return { expectedNextOffset: file.baseOffset, found: problem(AUDIT_PROBLEMS.segmentOverlap, 'error', where, message) };
  }
  if (previous.known && !gapsAllowed && file.baseOffset > previous.nextOffset) {
    const message = `offsets ${previous.nextOffset} to ${file.baseOffset - 1} are in no segment: a segment file is missing`;
    return { expectedNextOffset: file.baseOffset, found: problem(AUDIT_PROBLEMS.segmentGap, 'error', where, message) };
  }
  return { expectedNextOffset: Math.max(previous.nextOffset, file.baseOffset), found: null };
}

/** Reads shard.json the way Shard.open does (read-only), turning its typed error into a problem. */
async function checkShardConfig(shard: ShardFiles, problems: AuditProblem[]): Promise<ShardConfig | null> {
  try {
    return await Shard.readConfig(shard.directory, shard.name);
  } catch (error) {
    if (!isShardlineError(error)) throw error;
    problems.push(problem(AUDIT_PROBLEMS.shardConfig, 'error', { shard: shard.name, segment: 'shard.json', position: 0 }, `${error.message} [${error.code}]`));
    return null;
  }
}
