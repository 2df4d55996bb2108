// A truncation inside a batch rewrites that batch in place, shortened. An in-place write is not
// atomic: a power cut in the middle can leave a mix of the old and the new batch, which fails
// its checksum, and recovery would then cut the records before the truncation point too,
// acknowledged ones included. So the shortened batch is first written, synced and named
// durably in a sidecar file (`<segment>.truncating`), a one-entry redo log: the in-place write
// and the cut follow, then the sidecar is deleted and its deletion synced. Opening the shard
// redoes a sidecar it finds (the same write and cut again are harmless), or deletes it when it
// is torn, which means the in-place write had not started.
//
// The log is touched only once the sidecar is durable, and "durable" must be earned by a sync
// that succeeded on pages written for it: after a failed fsync a later one reports success
// without saving the doomed pages. So the sidecar is always written whole under a temporary
// name, fsynced and renamed into place (and the directory synced), also when a redo finds one
// whose sync may have failed: the rename keeps either the old or the new copy, never neither.
import { join } from 'node:path';
import { ioError } from '../errors.js';
import type { JournalFileSystem } from '../file-system.js';
import { checkBatch } from '../segment/batch-format.js';
import { segmentFileStem, syncDirectory, writeDurably } from '../segment/segment.js';

export const TRUNCATION_INTENT_SUFFIX = '.truncating';
/** A sidecar being written: never redone, deleted on open. */
export const TRUNCATION_INTENT_DRAFT_SUFFIX = '.truncating.new';

const INTENT_MAGIC = 0x52544c53; // "SLTR"
const INTENT_HEADER_BYTES = 12;

export interface TruncationIntent {
  /** Where the shortened batch goes in the segment's log; the log is cut right after it. */
  readonly position: number;
  /** The shortened batch, sealed (it carries its own checksum). */
  readonly batch: Buffer;
}

export function truncationIntentPath(directory: string, baseOffset: number): string {
  return join(directory, `${segmentFileStem(baseOffset)}${TRUNCATION_INTENT_SUFFIX}`);
}

export function encodeTruncationIntent(intent: TruncationIntent): Buffer {
  const bytes = Buffer.alloc(INTENT_HEADER_BYTES + intent.batch.length);
  bytes.writeUInt32LE(INTENT_MAGIC, 0);
  bytes.writeBigUInt64LE(BigInt(intent.position), 4);
  intent.batch.copy(bytes, INTENT_HEADER_BYTES);
  return bytes;
}

/** The intent, or null when the bytes are torn or damaged (then the log was never touched). */
export function decodeTruncationIntent(bytes: Buffer, maxBatchBytes: number): TruncationIntent | null {
  if (bytes.length <= INTENT_HEADER_BYTES || bytes.readUInt32LE(0) !== INTENT_MAGIC) return null;
  const check = checkBatch(bytes, INTENT_HEADER_BYTES, maxBatchBytes);
  if (check.kind !== 'valid' || check.header.batchBytes !== bytes.length - INTENT_HEADER_BYTES) return null;
  return { position: Number(bytes.readBigUInt64LE(4)), batch: bytes.subarray(INTENT_HEADER_BYTES) };
}

/** Makes the intent durable (file and name) before the log is touched. */
export async function recordTruncationIntent(fs: JournalFileSystem, directory: string, baseOffset: number, intent: TruncationIntent): Promise<void> {
  await writeIntent(fs, directory, truncationIntentPath(directory, baseOffset), intent);
}

async function writeIntent(fs: JournalFileSystem, directory: string, path: string, intent: TruncationIntent): Promise<void> {
  const draft = `${path.slice(0, -TRUNCATION_INTENT_SUFFIX.length)}${TRUNCATION_INTENT_DRAFT_SUFFIX}`;
  await writeDurably(fs, draft, encodeTruncationIntent(intent));
  try {
    await fs.rename(draft, path);
  } catch (error) {
    throw ioError('rename', draft, error);
  }
  await syncDirectory(fs, directory);
}

/** Deletes the intent once the log holds its result; synced, so no later open redoes it over newer appends. */
export async function clearTruncationIntent(fs: JournalFileSystem, directory: string, baseOffset: number): Promise<void> {
  const path = truncationIntentPath(directory, baseOffset);
  try {
    await fs.unlink(path);
  } catch (error) {
    throw ioError('delete', path, error);
  }
  await syncDirectory(fs, directory);
}

/**
 * Finishes the truncation a sidecar file records (run when a shard opens, before its segments
 * are read): writes the shortened batch, cuts the log after it, syncs, then deletes the sidecar.
 * Returns what it did, for the log.
 */
export async function redoTruncationIntent(fs: JournalFileSystem, directory: string, fileName: string, maxBatchBytes: number): Promise<'redone' | 'torn' | 'moot'> {
  const path = join(directory, fileName);
  const logPath = join(directory, `${fileName.slice(0, -TRUNCATION_INTENT_SUFFIX.length)}.log`);
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(path);
  } catch (error) {
    throw ioError('read', path, error);
  }
  const intent = decodeTruncationIntent(bytes, maxBatchBytes);
  let outcome: 'redone' | 'torn' | 'moot' = intent === null ? 'torn' : 'moot';
  if (intent !== null) {
    // Written again before the log is touched: this sidecar's own sync may have failed.
    await writeIntent(fs, directory, path, intent);
    const log = await fs.open(logPath, 'r+').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw ioError('open segment', logPath, error);
    });
    if (log !== null) {
      try {
        // A log already cut before the batch (a failed write's cut back reached further) has
        // nothing left to shorten; writing there would leave a hole of zeros.
        if ((await log.stat()).size >= intent.position) {
          let written = 0;
          while (written < intent.batch.length) {
            const { bytesWritten } = await log.write(intent.batch, written, intent.batch.length - written, intent.position + written);
            written += bytesWritten;
          }
          await log.truncate(intent.position + intent.batch.length);
          await log.sync();
          outcome = 'redone';
        }
      } catch (error) {
        throw ioError('truncate', logPath, error);
      } finally {
        await log.close().catch(() => undefined);
      }
    }
  }
  try {
    await fs.unlink(path);
  } catch (error) {
    throw ioError('delete', path, error);
  }
  await syncDirectory(fs, directory);
  return outcome;
}
