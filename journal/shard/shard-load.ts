// Opening a shard from its files: at open, and again when a failed shard is reopened for
// appends (reloadShard), because after a failure the state in memory cannot be trusted and the
// files can.
import { join } from 'node:path';
import { ioError } from '../errors.js';
import { parseSegmentFileName, Segment, syncDirectory } from '../segment/segment.js';
import { HARD_MAX_BATCH_BYTES } from './shard-config.js';
import type { ShardState } from './shard-state.js';
import { TRUNCATION_INTENT_DRAFT_SUFFIX, TRUNCATION_INTENT_SUFFIX, redoTruncationIntent } from './truncation-intent.js';

/**
 * Opens the shard's segments into `state` (which has none yet), recovering the active
 * segment's tail. With `removeLeftovers` (at open), files of an unfinished compaction are
 * deleted.
 */
export async function loadShard(state: ShardState, removeLeftovers = true): Promise<void> {
  let entries: string[];
  try {
    entries = await state.fs.readdir(state.directory);
  } catch (error) {
    throw ioError('list', state.directory, error, { shard: state.name });
  }
  const bases: number[] = [];
  for (const entry of entries) {
    // Leftovers of a compaction that did not finish: the original segment is still intact.
    if (removeLeftovers && entry.endsWith('.compacting')) await state.fs.unlink(join(state.directory, entry));
    // A sidecar still being written when the process stopped (never redone: it had not been
    // renamed into place, so the log was never touched for it).
    if (entry.endsWith(TRUNCATION_INTENT_DRAFT_SUFFIX)) await state.fs.unlink(join(state.directory, entry));
    const base = parseSegmentFileName(entry);
    if (base !== null) bases.push(base);
  }
  for (const entry of entries) {
    if (!entry.endsWith(TRUNCATION_INTENT_SUFFIX)) continue;
    const outcome = await redoTruncationIntent(state.fs, state.directory, entry, HARD_MAX_BATCH_BYTES);
    state.context.logger.warn({ shard: state.name, intent: entry, outcome }, 'finished a truncation that a crash or a failure interrupted');
  }
  bases.sort((a, b) => a - b);
  if (bases.length === 0) {
    state.segments = [await Segment.create(state.fs, state.directory, 0, state.settings)];
    await syncDirectory(state.fs, state.directory);
  }
  let expectedNext = 0;
  let epoch = 0;
  for (let i = 0; i < bases.length; i += 1) {
    const base = bases[i] ?? 0;
    const isLast = i === bases.length - 1;
    const { segment, recovery } = await Segment.open(state.fs, state.directory, base, state.settings, isLast, expectedNext, epoch);
    if (recovery.truncatedBytes > 0) {
      state.context.logger.warn({ shard: state.name, segment: segment.name, truncatedBytes: recovery.truncatedBytes, reason: recovery.truncateReason }, 'recovery cut a damaged tail');
    } else if (recovery.truncateReason !== null) {
      state.context.logger.error({ shard: state.name, segment: segment.name, position: segment.visibleBytes, reason: recovery.truncateReason }, 'sealed segment is damaged; reads stop at the damage');
    }
    if (recovery.indexRebuilt && !isLast && recovery.truncateReason === null) {
      // Written back so the next open does not scan this segment again.
      await segment.writeIndexFiles();
      state.context.logger.info({ shard: state.name, segment: segment.name }, 'rebuilt a missing or stale index');
    }
    state.segments.push(segment);
    expectedNext = Math.max(segment.nextOffset, base);
    epoch = Math.max(epoch, segment.epoch);
  }
  await dropUnfinishedRoll(state);
  state.nextOffset = state.active.nextOffset;
  state.visibleNextOffset = state.nextOffset;
  state.epoch = epoch;
  state.activeSinceMs = state.active.firstTimestamp;
  await removeOrphanIndexFiles(state, entries, new Set(bases));
  // The tail found may still be only in the page cache (a process crash does not flush it):
  // synced now, it is a durable end that a later failure can be cut back to.
  await state.syncData(state.active);
}

/**
 * Reopens the shard from its files, as a restart would: the directory is synced first so that
 * nothing is built on a name a power cut could still take back, then every segment is opened
 * again (the active one verified to its end) and the old ones are retired once their readers
 * let go. After a failure the in-memory state cannot be trusted, the files can.
 */
export async function reloadShard(state: ShardState): Promise<void> {
  await syncDirectory(state.fs, state.directory);
  const old = state.segments;
  state.segments = [];
  try {
    await loadShard(state, false);
  } catch (error) {
    // A sync that failed during the reload (the active segment's, at the end of load) doomed
    // that file's unsynced pages, and a later sync will report success without saving them:
    // the old segment of the same file must be cut back to its last good sync before the
    // next attempt adopts what only the page cache holds.
    for (const segment of state.segments) {
      if (segment.syncFailed) {
        const known = old.find((candidate) => candidate.baseOffset === segment.baseOffset);
        if (known !== undefined) known.syncFailed = true;
      }
      await segment.close();
    }
    state.segments = old;
    throw error;
  }
  for (const segment of old) await segment.retire(false);
  state.visibleNextOffset = state.nextOffset;
  state.wakeWaiters();
}

/**
 * An empty last segment based past where the one before it ends is the trace of a roll that
 * failed and whose clean-up a power cut took back (a create and a delete, neither synced). In
 * a shard with dense offsets it would make the next append skip offsets, so it goes. (In a
 * compacted shard such a segment may be truncateAfter's record of the next offset; it stays.)
 */
async function dropUnfinishedRoll(state: ShardState): Promise<void> {
  const last = state.segments[state.segments.length - 1];
  const previous = state.segments[state.segments.length - 2];
  if (state.config.compacted || last === undefined || previous === undefined) return;
  if (last.sizeBytes > 0 || last.baseOffset <= previous.nextOffset) return;
  await last.retire(true);
  state.segments.pop();
  await syncDirectory(state.fs, state.directory);
  state.context.logger.warn({ shard: state.name, segment: last.name, nextOffset: previous.nextOffset }, 'removed an empty segment left by a roll that did not complete');
}

/** Index files whose log is gone (a crash between deletes) would confuse audits; drop them. */
async function removeOrphanIndexFiles(state: ShardState, entries: string[], bases: Set<number>): Promise<void> {
  for (const entry of entries) {
    const match = /^(\d{20})\.(index|timeindex)$/.exec(entry);
    if (match !== null && !bases.has(Number(match[1]))) await state.fs.unlink(join(state.directory, entry)).catch(() => undefined);
  }
}
