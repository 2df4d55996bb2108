// Read-only access to one segment log for the audit tools, and a chunked scan over it that
// feeds the pure scanBatches. Segment (segment.ts) cannot be used here: it opens its log for
// writing and cuts a damaged tail, which an audit must never do.
//
// The log's size is taken once, at open. A live journal may append meanwhile; the audit looks
// at the log as it was then, so a write in progress shows up as a torn tail at worst.
import { open, type FileHandle } from 'node:fs/promises';
import { ioError } from '../errors.js';
import { readAt } from '../segment/segment.js';
import { scanBatches, type ScannedBatch, type ScanStop } from '../segment/log-scan.js';
import { HARD_MAX_BATCH_BYTES } from '../shard/shard-config.js';

/** Bytes read per scan step; a larger batch gets one read of its own size. */
const SCAN_CHUNK_BYTES = 1024 * 1024;

export class ReadOnlyLog {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly sizeBytes: number,
  ) {}

  /** Null when the file is gone (retention or compaction removed it after it was listed). */
  static async open(path: string): Promise<ReadOnlyLog | null> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw ioError('open', path, error);
    }
    try {
      return new ReadOnlyLog(path, handle, (await handle.stat()).size);
    } catch (error) {
      await handle.close();
      throw ioError('stat', path, error);
    }
  }

  /** Up to `length` bytes from `position`; fewer only at the end of the file. */
  async read(position: number, length: number): Promise<Buffer> {
    return readAt(this.handle, position, length, this.path, { position });
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

export interface LogScanEnd {
  /** 'end' at the log size, 'incomplete' for a torn tail, 'invalid' at damage or broken order. */
  stop: ScanStop;
  /** Offset after the last valid batch (or the expected offset when there was none). */
  nextOffset: number;
  /** Highest leader epoch seen, including the one passed in. */
  epoch: number;
}

export interface LogChunk {
  /** Bytes read from the log at `bytesPosition`; batch positions are file positions. */
  bytes: Buffer;
  bytesPosition: number;
  /** Valid batches that start in this chunk, in log order, checksums checked. */
  batches: ScannedBatch[];
  /** Set on the last chunk only: why the scan ended. */
  end: LogScanEnd | null;
}

/**
 * Scans the log from `fromPosition` (a batch start) with the same order checks as recovery:
 * base offsets from `expectedNextOffset` on, epochs from `epoch` on. The last chunk carries
 * `end`; a consumer that stops early leaves the rest unread.
 */
export async function* scanLog(log: ReadOnlyLog, fromPosition: number, expectedNextOffset: number, epoch: number): AsyncGenerator<LogChunk> {
  let position = fromPosition;
  let nextOffset = expectedNextOffset;
  let highestEpoch = epoch;
  let wanted = SCAN_CHUNK_BYTES;
  while (position < log.sizeBytes) {
    const length = Math.min(Math.max(wanted, SCAN_CHUNK_BYTES), log.sizeBytes - position);
    const bytes = await log.read(position, length);
    const result = scanBatches(bytes, position, nextOffset, highestEpoch, HARD_MAX_BATCH_BYTES);
    nextOffset = result.nextOffset;
    highestEpoch = result.epoch;
    const stop = result.stop;
    // A short read means the file shrank under us (a live truncation): what we have is the end.
    const last = stop.kind === 'invalid' || bytes.length < length || (stop.kind === 'incomplete' && stop.position + stop.needBytes > log.sizeBytes);
    yield { bytes, bytesPosition: position, batches: result.batches, end: last ? { stop, nextOffset, epoch: highestEpoch } : null };
    if (last) return;
    wanted = stop.kind === 'incomplete' ? stop.needBytes : SCAN_CHUNK_BYTES;
    position = stop.position;
  }
  yield { bytes: Buffer.alloc(0), bytesPosition: position, batches: [], end: { stop: { kind: 'end', position }, nextOffset, epoch: highestEpoch } };
}
