// One segment: a log file of batches plus its offset and time index files. This module owns
// the segment's file handle; everything it decides about bytes comes from the pure modules
// (batch-format, log-scan, segment-index).
//
// Concurrency: append, truncateTo, sync and writeIndexFiles must not run concurrently with
// each other (the shard serialises them under its write lock), with one exception: the shard's
// append pipeline runs one append alongside one sync. That is safe because sync counts as
// covered only the size at its call, and append grows the size only once its write completed.
// read may run at any time; it only reads below `visibleBytes`, which only grows except under
// truncateTo.
import { join } from 'node:path';
import { JournalErrors, ioError, type ErrorContext } from '../errors.js';
import type { JournalFile, JournalFileSystem } from '../file-system.js';
import { BATCH_FORMAT_VERSION, lastOffsetOf, type BatchHeader } from './batch-format.js';
import { scanBatches, type ScanStop, type ScannedBatch } from './log-scan.js';
import { SegmentIndex, type IndexSummary } from './segment-index.js';

const SCAN_CHUNK_BYTES = 1024 * 1024;

export function segmentFileStem(baseOffset: number): string {
  return String(baseOffset).padStart(20, '0');
}

export function parseSegmentFileName(fileName: string): number | null {
  const match = /^(\d{20})\.log$/.exec(fileName);
  if (match === null || match[1] === undefined) return null;
  const offset = Number(match[1]);
  return Number.isSafeInteger(offset) ? offset : null;
}

export interface SegmentSettings {
  indexIntervalBytes: number;
  /** Largest batch a reader or scan accepts before calling the bytes damaged. */
  maxBatchBytes: number;
}

/** What recovery did to a segment when it was opened. */
export interface SegmentRecovery {
  indexRebuilt: boolean;
  /** Bytes cut from the end of the log, with the reason; 0 when the tail was intact. */
  truncatedBytes: number;
  truncateReason: string | null;
}

export class Segment {
  readonly logPath: string;
  readonly offsetIndexPath: string;
  readonly timeIndexPath: string;
  sizeBytes = 0;
  visibleBytes = 0;
  /** Offset after the last batch; baseOffset while empty. */
  nextOffset: number;
  epoch = 0;
  /** Log bytes the last successful fsync or fdatasync of this file covered. */
  syncedBytes = 0;
  /**
   * A sync of this file failed since: the bytes written after syncedBytes may never reach the
   * disk although reads still see them (Linux marks such pages clean), so the shard cuts there.
   */
  syncFailed = false;
  /** Timestamp of the first batch, for rolling by age; null while empty. */
  firstTimestamp: number | null = null;
  index: SegmentIndex;
  private references = 0;
  private retired: { unlinkFiles: boolean } | null = null;
  private closed = false;

  private constructor(
    private readonly fs: JournalFileSystem,
    readonly directory: string,
    readonly baseOffset: number,
    private readonly settings: SegmentSettings,
    private readonly handle: JournalFile,
  ) {
    const stem = segmentFileStem(baseOffset);
    this.logPath = join(directory, `${stem}.log`);
    this.offsetIndexPath = join(directory, `${stem}.index`);
    this.timeIndexPath = join(directory, `${stem}.timeindex`);
    this.nextOffset = baseOffset;
    this.index = new SegmentIndex(baseOffset, settings.indexIntervalBytes);
  }

  get name(): string {
    return `${segmentFileStem(this.baseOffset)}.log`;
  }

  get maxTimestamp(): number {
    return this.index.maxTimestamp;
  }

  static async create(fs: JournalFileSystem, directory: string, baseOffset: number, settings: SegmentSettings): Promise<Segment> {
    const path = join(directory, `${segmentFileStem(baseOffset)}.log`);
    let handle: JournalFile;
    try {
      handle = await fs.open(path, 'w+');
    } catch (error) {
      throw ioError('create segment', path, error);
    }
    return new Segment(fs, directory, baseOffset, settings, handle);
  }

  /**
   * Opens an existing segment. With `recoverTail` (the newest segment after any shutdown) the
   * whole log is verified and a torn or corrupt tail is cut off. Otherwise the index files are
   * trusted when they match the log's size, and rebuilt by a scan when they do not.
   */
  static async open(fs: JournalFileSystem, directory: string, baseOffset: number, settings: SegmentSettings, recoverTail: boolean, expectedNextOffset: number, epoch: number): Promise<{ segment: Segment; recovery: SegmentRecovery }> {
    const path = join(directory, `${segmentFileStem(baseOffset)}.log`);
    let handle: JournalFile;
    try {
      handle = await fs.open(path, 'r+');
    } catch (error) {
      throw ioError('open segment', path, error);
    }
    const segment = new Segment(fs, directory, baseOffset, settings, handle);
    try {
      const recovery = await segment.load(recoverTail, Math.max(expectedNextOffset, baseOffset), epoch);
      return { segment, recovery };
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  private async load(recoverTail: boolean, expectedNextOffset: number, epoch: number): Promise<SegmentRecovery> {
    const logBytes = (await this.handle.stat()).size;
    const recovery: SegmentRecovery = { indexRebuilt: false, truncatedBytes: 0, truncateReason: null };
    if (!recoverTail) {
      const loaded = await this.loadIndexFiles(logBytes);
      if (loaded !== null) {
        this.index = loaded.index;
        this.adopt(logBytes, loaded.summary.nextOffset, loaded.summary.epoch);
        return recovery;
      }
    }
    recovery.indexRebuilt = true;
    const index = new SegmentIndex(this.baseOffset, this.settings.indexIntervalBytes);
    let firstTimestamp: number | null = null;
    const scan = await this.scan(logBytes, expectedNextOffset, epoch, (batch) => {
      index.addBatch(batch.position, batch.header.baseOffset, batch.header.batchBytes, batch.header.maxTimestamp);
      firstTimestamp ??= batch.header.firstTimestamp;
    });
    if (scan.stop.kind === 'invalid' && scan.stop.unsupportedVersion !== undefined) {
      throw JournalErrors.unsupportedFormat.create({ segment: this.logPath, position: scan.stop.position }, `batch in ${this.logPath}`, scan.stop.unsupportedVersion, BATCH_FORMAT_VERSION);
    }
    this.index = index;
    this.firstTimestamp = firstTimestamp;
    let validBytes = logBytes;
    if (scan.stop.kind !== 'end') {
      validBytes = scan.stop.position;
      recovery.truncateReason = scan.stop.kind === 'incomplete' ? 'torn batch at the end of the log' : scan.stop.reason;
      if (recoverTail) {
        recovery.truncatedBytes = logBytes - validBytes;
        await this.truncateFile(validBytes);
      }
    }
    this.adopt(recoverTail ? validBytes : logBytes, scan.nextOffset, scan.epoch);
    return recovery;
  }

  private adopt(logBytes: number, nextOffset: number, epoch: number): void {
    this.sizeBytes = logBytes;
    this.visibleBytes = logBytes;
    if (!this.syncFailed) this.syncedBytes = logBytes;
    this.nextOffset = nextOffset;
    this.epoch = epoch;
  }

  private async loadIndexFiles(logBytes: number): Promise<{ index: SegmentIndex; summary: IndexSummary } | null> {
    const offsetFile = await readWholeFile(this.fs, this.offsetIndexPath);
    const timeFile = await readWholeFile(this.fs, this.timeIndexPath);
    if (offsetFile === null || timeFile === null) return null;
    const decoded = SegmentIndex.decode(this.baseOffset, this.settings.indexIntervalBytes, offsetFile, timeFile, logBytes);
    if (decoded === null) return null;
    if (logBytes > 0) this.firstTimestamp = await this.readFirstTimestamp();
    return decoded;
  }

  private async readFirstTimestamp(): Promise<number | null> {
    const header = Buffer.alloc(56);
    const { bytesRead } = await this.handle.read(header, 0, header.length, 0);
    return bytesRead === header.length ? header.readUInt32LE(40) + header.readUInt32LE(44) * 2 ** 32 : null;
  }

  /** Scans the log from `fromPosition`, handing each valid batch to `onBatch`. */
  async scan(logBytes: number, expectedNextOffset: number, epoch: number, onBatch: (batch: ScannedBatch) => void, fromPosition = 0): Promise<{ stop: ScanStop; nextOffset: number; epoch: number }> {
    let position = fromPosition;
    let nextOffset = expectedNextOffset;
    let highestEpoch = epoch;
    let wanted = SCAN_CHUNK_BYTES;
    while (position < logBytes) {
      const length = Math.min(Math.max(wanted, SCAN_CHUNK_BYTES), logBytes - position);
      const bytes = await this.read(position, length);
      const result = scanBatches(bytes, position, nextOffset, highestEpoch, this.settings.maxBatchBytes);
      for (const batch of result.batches) onBatch(batch);
      nextOffset = result.nextOffset;
      highestEpoch = result.epoch;
      const stop = result.stop;
      if (stop.kind === 'invalid') return { stop, nextOffset, epoch: highestEpoch };
      // The file shrank under the scan (a truncation ran meanwhile): what was promised is gone.
      if (bytes.length < length) return { stop: { kind: 'invalid', position: position + bytes.length, reason: 'log ended early while being scanned' }, nextOffset, epoch: highestEpoch };
      if (stop.kind === 'incomplete' && stop.position + stop.needBytes > logBytes) return { stop, nextOffset, epoch: highestEpoch };
      wanted = stop.kind === 'incomplete' ? stop.needBytes : SCAN_CHUNK_BYTES;
      position = stop.position;
    }
    return { stop: { kind: 'end', position }, nextOffset, epoch: highestEpoch };
  }

  /**
   * Writes whole batches at the end of the log. `headers` describe `buffers` one to one.
   * The bytes become visible to readers only through makeVisible, after the durability wait.
   */
  async append(buffers: Buffer[], headers: BatchHeader[]): Promise<void> {
    this.assertOpen();
    let position = this.sizeBytes;
    let total = 0;
    for (const buffer of buffers) total += buffer.length;
    try {
      let written = 0;
      let pending = buffers;
      while (written < total) {
        const { bytesWritten } = await this.handle.writev(pending, position);
        written += bytesWritten;
        position += bytesWritten;
        if (written < total) pending = remainingAfter(pending, bytesWritten);
      }
    } catch (error) {
      throw ioError('write', this.logPath, error, { segment: this.name, position });
    }
    let batchPosition = this.sizeBytes;
    for (const header of headers) {
      this.index.addBatch(batchPosition, header.baseOffset, header.batchBytes, header.maxTimestamp);
      this.firstTimestamp ??= header.firstTimestamp;
      this.nextOffset = lastOffsetOf(header) + 1;
      this.epoch = Math.max(this.epoch, header.leaderEpoch);
      batchPosition += header.batchBytes;
    }
    this.sizeBytes += total;
  }

  /**
   * Lets readers see the log up to `end` (default: all written). The append pipeline passes a
   * group's end: bytes of a later group may already be written but not yet synced.
   */
  makeVisible(end = this.sizeBytes): void {
    this.visibleBytes = Math.max(this.visibleBytes, Math.min(end, this.sizeBytes));
  }

  async sync(): Promise<void> {
    this.assertOpen();
    const covered = this.sizeBytes;
    try {
      await this.handle.datasync();
    } catch (error) {
      this.syncFailed = true;
      throw ioError('fdatasync', this.logPath, error, { segment: this.name });
    }
    if (!this.syncFailed) this.syncedBytes = covered;
  }

  async read(position: number, length: number): Promise<Buffer> {
    this.assertOpen();
    return readAt(this.handle, position, length, this.logPath, { segment: this.name, position });
  }

  /**
   * Cuts the log at `position` (a batch boundary) and rebuilds the index, offsets and epoch
   * from what remains. Truncation is rare (replication divergence), so a rescan is fine.
   */
  async truncateTo(position: number): Promise<void> {
    await this.truncateFile(position);
    this.firstTimestamp = null;
    await this.load(true, this.baseOffset, 0);
  }

  /**
   * Cuts the log back to `position` (its size before a write that failed): bytes a failed
   * writev left past the known size are dropped without a rescan; when the failed write had
   * completed (a failed fdatasync after it), the index and offsets are rebuilt as truncateTo does.
   */
  async rollBackTo(position: number): Promise<void> {
    if (this.sizeBytes === position) {
      await this.truncateFile(position);
      return;
    }
    await this.truncateTo(position);
  }

  /**
   * Overwrites bytes at `position` (inside the log) and syncs them. Truncation uses it to put a
   * shortened batch in place before cutting the file, so a crash in between loses nothing kept.
   */
  async overwriteAt(position: number, bytes: Buffer): Promise<void> {
    this.assertOpen();
    try {
      let written = 0;
      while (written < bytes.length) {
        const { bytesWritten } = await this.handle.write(bytes, written, bytes.length - written, position + written);
        written += bytesWritten;
      }
      await this.handle.datasync();
    } catch (error) {
      this.syncFailed = true;
      throw ioError('write', this.logPath, error, { segment: this.name, position });
    }
  }

  private async truncateFile(position: number): Promise<void> {
    try {
      await this.handle.truncate(position);
    } catch (error) {
      throw ioError('truncate', this.logPath, error, { segment: this.name, position });
    }
    try {
      await this.handle.sync();
    } catch (error) {
      this.syncFailed = true;
      throw ioError('truncate', this.logPath, error, { segment: this.name, position });
    }
    // Cut at or below the last good sync: what is left was durable before any failure.
    if (position <= this.syncedBytes) {
      this.syncedBytes = position;
      this.syncFailed = false;
    }
  }

  summary(): IndexSummary {
    return { coveredLogBytes: this.sizeBytes, nextOffset: this.nextOffset, maxTimestamp: this.maxTimestamp, epoch: this.epoch };
  }

  /** Writes both index files durably (write, fsync). */
  async writeIndexFiles(): Promise<void> {
    const summary = this.summary();
    await writeDurably(this.fs, this.offsetIndexPath, this.index.encodeOffsetIndex(summary));
    await writeDurably(this.fs, this.timeIndexPath, this.index.encodeTimeIndex(summary));
  }

  /** A reader holds the segment open across awaits; retire waits for it. */
  retain(): void {
    this.references += 1;
  }

  release(): void {
    this.references -= 1;
    // The last reader let go of a retired segment: close it now; a close failure only leaks a handle.
    if (this.references === 0 && this.retired !== null) this.finishRetire().catch(() => undefined);
  }

  /**
   * Takes the segment out of service: its handle is closed once no reader holds it, and with
   * `unlinkFiles` its files are removed (at once: open handles stay valid on POSIX).
   */
  async retire(unlinkFiles: boolean): Promise<void> {
    this.retired = { unlinkFiles };
    if (unlinkFiles) await this.unlinkFiles();
    if (this.references === 0) await this.finishRetire();
  }

  private async finishRetire(): Promise<void> {
    await this.close();
  }

  async unlinkFiles(): Promise<void> {
    // Indexes first: a crash in between leaves a log without indexes (rebuilt on open), never
    // index files without their log.
    for (const path of [this.offsetIndexPath, this.timeIndexPath, this.logPath]) {
      await this.fs.unlink(path).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw ioError('delete', path, error, { segment: this.name });
      });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close().catch(() => undefined);
  }

  private assertOpen(): void {
    if (this.closed) throw JournalErrors.closed.create({ segment: this.logPath }, `segment ${this.logPath}`);
  }
}

/** Up to `length` bytes from `position`; fewer only at the end of the file. */
export async function readAt(handle: JournalFile, position: number, length: number, path: string, context: ErrorContext): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  try {
    while (filled < length) {
      const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
  } catch (error) {
    throw ioError('read', path, error, context);
  }
  return filled === length ? buffer : buffer.subarray(0, filled);
}

/** The part of `buffers` a writev that wrote `bytesWritten` bytes left unwritten. */
export function remainingAfter(buffers: Buffer[], bytesWritten: number): Buffer[] {
  const remaining: Buffer[] = [];
  let skip = bytesWritten;
  for (const buffer of buffers) {
    if (skip >= buffer.length) {
      skip -= buffer.length;
      continue;
    }
    remaining.push(skip > 0 ? buffer.subarray(skip) : buffer);
    skip = 0;
  }
  return remaining;
}

async function readWholeFile(fs: JournalFileSystem, path: string): Promise<Buffer | null> {
  let handle: JournalFile;
  try {
    handle = await fs.open(path, 'r');
  } catch {
    return null;
  }
  try {
    return await handle.readFile();
  } catch {
    return null;
  } finally {
    await handle.close();
  }
}

export async function writeDurably(fs: JournalFileSystem, path: string, bytes: Buffer): Promise<void> {
  let handle: JournalFile | null = null;
  try {
    handle = await fs.open(path, 'w');
    await handle.writeFile(bytes);
    await handle.sync();
  } catch (error) {
    throw ioError('write', path, error);
  } finally {
    await handle?.close();
  }
}

export async function syncDirectory(fs: JournalFileSystem, path: string): Promise<void> {
  try {
    await fs.syncDirectory(path);
  } catch (error) {
    throw ioError('fsync directory', path, error);
  }
}
