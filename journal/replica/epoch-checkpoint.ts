// epochs.json, beside a replicated shard's segments: the epoch history (Kafka's leader-epoch
// checkpoint) as of a log offset, so opening a replica reads only the log past that offset, not
// the whole shard. It is a cache of what the batches' epochs say, kept correct by two rules:
//
// - it is written (new file, fsync, rename, directory fsync) with the history truncated at a cut
//   BEFORE the log is cut, and emptied before the log restarts at a later offset; so a checkpoint
//   never lists an epoch start the log no longer has below `through`, whatever a crash
//   interrupts (the log past `through` is scanned on open);
// - after an append that starts an epoch it is written with `through` = the synced log end; if
//   that write fails or a crash comes first, the older checkpoint is still true, just shorter.
//
// On open every entry at or past the log start is checked against the batch at its offset (its
// base offset and epoch); any mismatch, an unreadable file or a `through` past the log end falls
// back to a full scan, which also writes a fresh checkpoint.
import { join } from 'node:path';
import { ioError } from '../errors.js';
import type { JournalFileSystem } from '../file-system.js';
import type { EpochEntry } from '../replication/index.js';
import { syncDirectory, writeDurably } from '../segment/segment.js';

export const EPOCH_CHECKPOINT_FILE = 'epochs.json';
const EPOCH_CHECKPOINT_VERSION = 1;

export interface EpochCheckpoint {
  entries: EpochEntry[];
  /** The history is complete for the log below this offset. */
  through: number;
}

/** The checkpoint, or null when there is none or it does not parse (the caller scans the log). */
export async function readEpochCheckpoint(fs: JournalFileSystem, directory: string): Promise<EpochCheckpoint | null> {
  let text: string;
  try {
    text = (await fs.readFile(join(directory, EPOCH_CHECKPOINT_FILE))).toString('utf8');
  } catch {
    return null;
  }
  try {
    const parsed = JSON.parse(text) as { version?: unknown; through?: unknown; entries?: unknown };
    if (parsed.version !== EPOCH_CHECKPOINT_VERSION || !Number.isSafeInteger(parsed.through) || !Array.isArray(parsed.entries)) return null;
    const entries: EpochEntry[] = [];
    for (const entry of parsed.entries as { epoch?: unknown; startOffset?: unknown }[]) {
      if (!Number.isSafeInteger(entry?.epoch) || !Number.isSafeInteger(entry?.startOffset)) return null;
      entries.push({ epoch: entry.epoch as number, startOffset: entry.startOffset as number });
    }
    return { entries, through: parsed.through as number };
  } catch {
    return null;
  }
}

export async function writeEpochCheckpoint(fs: JournalFileSystem, directory: string, shard: string, checkpoint: EpochCheckpoint): Promise<void> {
  const path = join(directory, EPOCH_CHECKPOINT_FILE);
  await writeDurably(fs, `${path}.new`, Buffer.from(JSON.stringify({ version: EPOCH_CHECKPOINT_VERSION, ...checkpoint })));
  try {
    await fs.rename(`${path}.new`, path);
  } catch (error) {
    throw ioError('rename', `${path}.new`, error, { shard });
  }
  await syncDirectory(fs, directory);
}
