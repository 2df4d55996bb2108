// Verification of one segment: every batch of its log (structure, checksum, offset and epoch
// order, records), then its index files (present, valid, fresh, and each entry and the header
// summary true to the log). Read-only.
//
// Tricky cases, and where they are handled:
// - A batch that is intact but out of order is reported and the scan goes on after it
//   (verifyLog); after a damaged batch the boundaries are unknown, so the rest is unchecked.
// - Index entries are checked only for an index the journal would trust (trustedIndexFiles); an
//   index it refuses is rebuilt on open, so only the refusal is reported (diagnoseIndexes).
// - On the active segment, a torn tail and every index problem are warnings: the journal
//   recovers the active segment from its log on every open.
import { checkBatch, decodeBatchRecords, lastOffsetOf, RecordDecodeError, type BatchHeader } from '../segment/batch-format.js';
import type { ScannedBatch } from '../segment/log-scan.js';
import { INDEX_HEADER_BYTES, OFFSET_INDEX_KIND, TIME_INDEX_KIND, type IndexSummary } from '../segment/segment-index.js';
import { HARD_MAX_BATCH_BYTES } from '../shard/shard-config.js';
import { AUDIT_PROBLEMS, problem, type AuditProblem, type ProblemSeverity } from './audit-problems.js';
import type { SegmentFile } from './data-directory.js';
import { IndexEntryCheck, type IndexEntryFinding } from './index-entry-check.js';
import { diagnoseIndexFile, indexFileNames, OFFSET_ENTRY_BYTES, readIndexEntries, readIndexFiles, readIndexSummary, TIME_ENTRY_BYTES, trustedIndexFiles, type IndexFiles } from './index-files.js';
import { ReadOnlyLog, scanLog, type LogChunk, type LogScanEnd } from './log-file.js';

export interface SegmentVerifyInput {
  shard: string;
  file: SegmentFile;
  /** The last segment, which takes appends and is recovered from its log on every open. */
  active: boolean;
  /** Lowest base offset the first batch may have, and the highest epoch before this segment. */
  expectedNextOffset: number;
  epoch: number;
  /** Bytes of this segment's log passed so far. */
  onBytes: (bytesDone: number) => void;
}

export interface SegmentVerifyResult {
  problems: AuditProblem[];
  batches: number;
  records: number;
  /** Log bytes verified, up to the first damage. */
  bytesChecked: number;
  /** Offset after the last valid batch, and the highest epoch including earlier segments. */
  nextOffset: number;
  epoch: number;
  /** True when the scan reached the end of the log (damage stopped it otherwise). */
  wholeLogScanned: boolean;
}

/** Null when the segment vanished (retention on a live journal) after it was listed. */
export async function verifySegment(input: SegmentVerifyInput): Promise<SegmentVerifyResult | null> {
  const log = await ReadOnlyLog.open(input.file.logPath);
  if (log === null) return null;
  try {
    const files = await readIndexFiles(input.file);
    const trusted = trustedIndexFiles(input.file, files, log.sizeBytes);
    const entryCheck = trusted === null ? null : new IndexEntryCheck(readIndexEntries(trusted), input.file.baseOffset);
    const state = await verifyLog(log, input, entryCheck);
    if (trusted === null || entryCheck === null) state.problems.unshift(...diagnoseIndexes(input, files, log.sizeBytes));
    else state.problems.push(...trustedIndexProblems(input, trusted, entryCheck, state));
    return state;
  } finally {
    await log.close();
  }
}

async function verifyLog(log: ReadOnlyLog, input: SegmentVerifyInput, entryCheck: IndexEntryCheck | null): Promise<SegmentVerifyResult> {
  const state: SegmentVerifyResult = { problems: [], batches: 0, records: 0, bytesChecked: 0, nextOffset: input.expectedNextOffset, epoch: input.epoch, wholeLogScanned: false };
  let from: number | null = 0;
  while (from !== null) {
    let last: { end: LogScanEnd; chunk: LogChunk } | null = null;
    for await (const chunk of scanLog(log, from, state.nextOffset, state.epoch)) {
      for (const batch of chunk.batches) acceptBatch(chunk, batch, state, input, entryCheck);
      input.onBytes(chunk.bytesPosition + chunk.bytes.length);
      if (chunk.end !== null) last = { end: chunk.end, chunk };
    }
    if (last === null) throw new Error('scanLog ended without an end chunk');
    state.nextOffset = last.end.nextOffset;
    state.epoch = last.end.epoch;
    from = handleStop(log, last.end, last.chunk, state, input, entryCheck);
  }
  return state;
}

function acceptBatch(chunk: LogChunk, batch: ScannedBatch, state: SegmentVerifyResult, input: SegmentVerifyInput, entryCheck: IndexEntryCheck | null): void {
  state.batches += 1;
  state.bytesChecked = batch.position + batch.header.batchBytes;
  entryCheck?.onBatch(batch.position, batch.header);
  const checked = checkBatchRecords(chunk.bytes, batch.position - chunk.bytesPosition, batch.header);
  if (typeof checked === 'string') state.problems.push(problem(AUDIT_PROBLEMS.recordStructure, 'error', logAt(input, batch.position), checked));
  else state.records += checked;
}

/** The batch's record count, or why its records do not match their (checksummed) header. */
function checkBatchRecords(bytes: Buffer, at: number, header: BatchHeader): number | string {
  let timestamps: number[];
  try {
    timestamps = decodeBatchRecords(bytes, at, header).map((record) => record.timestamp);
  } catch (error) {
    if (error instanceof RecordDecodeError) return error.message;
    throw error;
  }
  // The header timestamps drive retention and the time index, so they must be the records'.
  const maxTimestamp = timestamps.reduce((max, timestamp) => Math.max(max, timestamp), 0);
  if (timestamps[0] !== header.firstTimestamp) return `header first timestamp ${header.firstTimestamp}, first record has ${timestamps[0]}`;
  if (maxTimestamp !== header.maxTimestamp) return `header max timestamp ${header.maxTimestamp}, records have ${maxTimestamp}`;
  return timestamps.length;
}

/**
 * Reports why the scan stopped; returns where to go on (after an intact batch that is out of
 * order) or null when the segment is done.
 */
function handleStop(log: ReadOnlyLog, end: LogScanEnd, chunk: LogChunk, state: SegmentVerifyResult, input: SegmentVerifyInput, entryCheck: IndexEntryCheck | null): number | null {
  const stop = end.stop;
  if (stop.kind === 'end') {
    state.wholeLogScanned = true;
    return null;
  }
  const where = logAt(input, stop.position);
  const unchecked = log.sizeBytes - stop.position;
  if (stop.kind === 'incomplete') {
    const severity: ProblemSeverity = input.active ? 'warning' : 'error';
    state.problems.push(problem(AUDIT_PROBLEMS.tornTail, severity, where, `the log ends ${unchecked} bytes into a batch that needs ${stop.needBytes}`));
    return null;
  }
  const check = checkBatch(chunk.bytes, stop.position - chunk.bytesPosition, HARD_MAX_BATCH_BYTES);
  if (check.kind !== 'valid') {
    const definition = stop.unsupportedVersion !== undefined ? AUDIT_PROBLEMS.batchVersion : AUDIT_PROBLEMS.batchCorrupt;
    state.problems.push(problem(definition, 'error', where, `${stop.reason}; the ${unchecked} bytes from here to the end of the log are unchecked`));
    return null;
  }
  const header = check.header;
  const definition = header.baseOffset < end.nextOffset ? AUDIT_PROBLEMS.offsetOrder : AUDIT_PROBLEMS.epochOrder;
  state.problems.push(problem(definition, 'error', where, stop.reason));
  acceptBatch(chunk, { position: stop.position, header }, state, input, entryCheck);
  state.nextOffset = Math.max(end.nextOffset, lastOffsetOf(header) + 1);
  state.epoch = Math.max(end.epoch, header.leaderEpoch);
  return stop.position + header.batchBytes;
}

/** Why the journal would not use this segment's index files (it rebuilds them in memory). */
function diagnoseIndexes(input: SegmentVerifyInput, files: IndexFiles, logBytes: number): AuditProblem[] {
  const names = indexFileNames(input.file);
  const consequence = input.active ? 'the active segment is recovered from its log on open anyway' : 'the journal rescans this sealed segment on every open';
  const problems: AuditProblem[] = [];
  for (const [bytes, kind, name] of [[files.offsetFile, OFFSET_INDEX_KIND, names.offset], [files.timeFile, TIME_INDEX_KIND, names.time]] as const) {
    const where = { shard: input.shard, segment: name, position: 0 };
    const diagnosis = diagnoseIndexFile(bytes, kind, logBytes);
    if (diagnosis.kind === 'missing') problems.push(problem(AUDIT_PROBLEMS.indexMissing, 'warning', where, `${name} is missing; ${consequence}`));
    if (diagnosis.kind === 'invalid') problems.push(problem(AUDIT_PROBLEMS.indexInvalid, 'warning', where, `${name}: ${diagnosis.reason}; ${consequence}`));
    if (diagnosis.kind === 'stale') problems.push(problem(AUDIT_PROBLEMS.indexStale, 'warning', where, `${name} was written for ${diagnosis.coveredLogBytes} log bytes, the log has ${logBytes}; ${consequence}`));
  }
  if (problems.length === 0) {
    // Each file is fine alone, so SegmentIndex.decode refused the pair: counts or positions.
    const where = { shard: input.shard, segment: names.offset, position: 0 };
    problems.push(problem(AUDIT_PROBLEMS.indexInvalid, 'warning', where, `${names.offset} and ${names.time} disagree, or their positions are out of order or past the log; ${consequence}`));
  }
  return problems;
}

/** What is wrong in an index the journal trusts: its entries and both headers' summaries. */
function trustedIndexProblems(input: SegmentVerifyInput, files: { offsetFile: Buffer; timeFile: Buffer }, entryCheck: IndexEntryCheck, scanned: SegmentVerifyResult): AuditProblem[] {
  const problems = entryProblems(input, entryCheck.finish(scanned.wholeLogScanned));
  // After damage the log's next offset, epoch and max timestamp are unknown: nothing to compare.
  if (!scanned.wholeLogScanned) return problems;
  const names = indexFileNames(input.file);
  problems.push(...summaryProblems(input, names.offset, readIndexSummary(files.offsetFile, OFFSET_INDEX_KIND), scanned, entryCheck.maxTimestamp));
  problems.push(...summaryProblems(input, names.time, readIndexSummary(files.timeFile, TIME_INDEX_KIND), scanned, entryCheck.maxTimestamp));
  return problems;
}

function entryProblems(input: SegmentVerifyInput, findings: IndexEntryFinding[]): AuditProblem[] {
  const names = indexFileNames(input.file);
  const severity: ProblemSeverity = input.active ? 'warning' : 'error';
  return findings.map((finding) => {
    const [segment, entryBytes] = finding.file === 'offset' ? [names.offset, OFFSET_ENTRY_BYTES] : [names.time, TIME_ENTRY_BYTES];
    return problem(AUDIT_PROBLEMS.indexEntry, severity, { shard: input.shard, segment, position: INDEX_HEADER_BYTES + finding.entry * entryBytes }, finding.message);
  });
}

/**
 * The header fields the journal uses instead of a scan for a sealed segment. The index
 * checksum does not cover the header, so only this comparison with the log catches damage there.
 */
function summaryProblems(input: SegmentVerifyInput, fileName: string, summary: IndexSummary, scanned: SegmentVerifyResult, maxTimestamp: number): AuditProblem[] {
  const mismatches: string[] = [];
  if (Math.max(summary.nextOffset, input.expectedNextOffset) !== scanned.nextOffset) mismatches.push(`next offset ${summary.nextOffset} (log: ${scanned.nextOffset})`);
  // A segment created by a roll stores the highest epoch of its own batches, one recovered on
  // open also the epochs before it; the shard takes the maximum either way, so compare that.
  if (Math.max(summary.epoch, input.epoch) !== scanned.epoch) mismatches.push(`epoch ${summary.epoch} (log: ${scanned.epoch})`);
  if (summary.maxTimestamp !== maxTimestamp) mismatches.push(`max timestamp ${summary.maxTimestamp} (log: ${maxTimestamp})`);
  if (mismatches.length === 0) return [];
  const where = { shard: input.shard, segment: fileName, position: 0 };
  return [problem(AUDIT_PROBLEMS.indexSummary, input.active ? 'warning' : 'error', where, `index header says ${mismatches.join(', ')}`)];
}

function logAt(input: SegmentVerifyInput, position: number): { shard: string; segment: string; position: number } {
  return { shard: input.shard, segment: input.file.name, position };
}
