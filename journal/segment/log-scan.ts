// Recovery planning: given the bytes of a segment's log, how much of it is a valid sequence of
// batches? Pure over a buffer; segment.ts feeds it chunks read from the file.
import { checkBatch, lastOffsetOf, type BatchHeader } from './batch-format.js';

export interface ScannedBatch {
  position: number;
  header: BatchHeader;
}

export type ScanStop =
  /** The buffer ends exactly on a batch boundary. */
  | { kind: 'end'; position: number }
  /** The batch at `position` needs `needBytes` bytes from there; the buffer holds fewer. */
  | { kind: 'incomplete'; position: number; needBytes: number }
  /** The batch at `position` is damaged or breaks the offset/epoch order. */
  | { kind: 'invalid'; position: number; reason: string; unsupportedVersion?: number };

export interface ScanResult {
  batches: ScannedBatch[];
  stop: ScanStop;
  /** Offset the next batch must start at or after. */
  nextOffset: number;
  /** Highest leader epoch seen. */
  epoch: number;
}

/**
 * Scans `bytes`, which hold the log from file position `filePosition`. `expectedNextOffset`
 * and `epoch` carry the order checks across chunks.
 */
export function scanBatches(bytes: Buffer, filePosition: number, expectedNextOffset: number, epoch: number, maxBatchBytes: number): ScanResult {
  const batches: ScannedBatch[] = [];
  let cursor = 0;
  let nextOffset = expectedNextOffset;
  let highestEpoch = epoch;
  while (cursor < bytes.length) {
    const check = checkBatch(bytes, cursor, maxBatchBytes);
    const position = filePosition + cursor;
    if (check.kind === 'incomplete') return { batches, stop: { kind: 'incomplete', position, needBytes: check.needBytes }, nextOffset, epoch: highestEpoch };
    if (check.kind === 'invalid') {
      const stop: ScanStop = { kind: 'invalid', position, reason: check.reason };
      if (check.unsupportedVersion !== undefined) stop.unsupportedVersion = check.unsupportedVersion;
      return { batches, stop, nextOffset, epoch: highestEpoch };
    }
    const header = check.header;
    if (header.baseOffset < nextOffset) {
      return { batches, stop: { kind: 'invalid', position, reason: `batch base offset ${header.baseOffset} is below the expected ${nextOffset}` }, nextOffset, epoch: highestEpoch };
    }
    if (header.leaderEpoch < highestEpoch) {
      return { batches, stop: { kind: 'invalid', position, reason: `batch leader epoch ${header.leaderEpoch} is below the previous ${highestEpoch}` }, nextOffset, epoch: highestEpoch };
    }
    batches.push({ position, header });
    nextOffset = lastOffsetOf(header) + 1;
    highestEpoch = header.leaderEpoch;
    cursor += header.batchBytes;
  }
  return { batches, stop: { kind: 'end', position: filePosition + cursor }, nextOffset, epoch: highestEpoch };
}
